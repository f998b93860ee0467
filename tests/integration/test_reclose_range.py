"""Re-closing a range of published days in one run (closeout.close.reclose_range, `closeout reclose FROM TO`): days in
order so stocks carry over, the later days re-checked once, one edition per corrected day, one summary mail, and a
second run that changes nothing; on both stores."""

import time
from datetime import date, timedelta

import pytest
from conftest import SAMPLE_INBOX, copy_day, publish, received_mails
from days import close_day, figure, register, set_line, smtp_connect

from closeout.checks.datadocs import checks_folder
from closeout.close.reclose import ReasonRequired
from closeout.close.reclose_range import RangeRefused
from closeout.deliver.reclose_summary import changed_days, send_summary
from closeout.orchestration.reclose import reclose_range
from closeout.publish.editions import editions_of

FIRST = date(2022, 3, 13)
DAYS = [FIRST + timedelta(days=n) for n in range(6)]  # 13th … 18th published; the range is 13th … 17th
LAST = DAYS[4]
TODAY = date(2022, 3, 20)
KECHENG = "330802"


def published_week(db_url, ctx_for, tmp_path, smtp_sink):
    inbox = tmp_path / "inbox"
    folders = [copy_day(SAMPLE_INBOX / d.isoformat(), inbox, d.isoformat()) for d in DAYS]
    copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")  # received, never closed
    ctx = ctx_for(db_url, inbox)
    for day in DAYS:
        close_day(ctx, day)
        publish(ctx, day, smtp_connect(smtp_sink))
    return ctx, folders


def test_a_range_recloses_in_order_signs_everything_and_a_second_run_changes_nothing(
    db_url, ctx_for, tmp_path, smtp_sink
):
    ctx, folders = published_week(db_url, ctx_for, tmp_path, smtp_sink)
    cumulative = {d: figure(ctx, KECHENG, "confirmed_cumulative", d)[0] for d in DAYS}
    # 柯城 re-sends the 13th to the 17th: one more confirmed case on the 13th (one asymptomatic less), and 40 more
    # isolated on the 13th carried in its isolation stock every day after; its 18th file is not re-sent
    set_line(folders[0] / f"{KECHENG}.csv", "new_confirmed", 2)
    set_line(folders[0] / f"{KECHENG}.csv", "new_asymptomatic", 0)
    set_line(folders[0] / f"{KECHENG}.csv", "isolation_new", int(figure(ctx, KECHENG, "isolation_new", FIRST)[0]) + 40)
    for day, folder in zip(DAYS[:5], folders, strict=False):
        stock = int(figure(ctx, KECHENG, "isolation_central", day)[0])
        set_line(folder / f"{KECHENG}.csv", "isolation_central", stock + 40)
    editions_before = {d: len(editions_of(ctx, d)) for d in DAYS}
    mails_before = len(received_mails(smtp_sink.folder))
    started = time.time()

    result = reclose_range(ctx, FIRST, LAST, [], "流调复核：补录一处隔离点", "ops.wang", TODAY)

    assert result.failed == []
    for day in DAYS:  # each re-checked day's Data Docs were built again from its new results
        assert (checks_folder(ctx.settings, day) / "index.html").stat().st_mtime >= started, day
    for day in DAYS:  # the cumulative shifted on the day itself and on every later published day
        assert figure(ctx, KECHENG, "confirmed_cumulative", day)[0] == cumulative[day] + 1, day
    # loaded in date order, each day's stock balances against the day before it as re-closed; the 18th, whose
    # file still starts from the old stock, breaks — found by the one re-check after the last day
    assert all(not _breaks(ctx, day) for day in DAYS[:5])
    assert _breaks(ctx, DAYS[5]) == {(KECHENG, "isolation_balance")}
    assert list(result.changed) == [d.isoformat() for d in DAYS]
    assert any(line.startswith("新的不平衡") for line in result.changed["2022-03-18"])
    rows = register(ctx, FIRST)
    assert {r["signed_by"] for r in rows} == {"ops.wang"}
    corrections = [(r["report_date"], r["metric"]) for r in rows if r["kind"] == "更正"]
    assert sorted(corrections) == sorted(
        [(d.isoformat(), "isolation_central") for d in DAYS[:5]]
        + [("2022-03-13", m) for m in ("isolation_new", "new_asymptomatic", "new_confirmed")]
    )
    assert {r["reason"] for r in rows if r["kind"] == "更正"} == {"流调复核：补录一处隔离点"}
    recalculated = [r for r in rows if r["kind"] == "重算"]
    assert [(r["report_date"], r["unit_code"]) for r in recalculated] == [(d.isoformat(), KECHENG) for d in DAYS]
    assert {r["reason"] for r in recalculated} == {"随3月13日至3月17日重新结清重算"}
    # one 更正 edition per corrected day, rendered, not mailed; the 18th only recalculated keeps its edition
    assert [len(editions_of(ctx, d)) - editions_before[d] for d in DAYS] == [1, 1, 1, 1, 1, 0]
    assert result.editions == [f"{d.isoformat()} 第2版（更正）" for d in DAYS[:5]]
    assert len(received_mails(smtp_sink.folder)) == mails_before

    days = changed_days(ctx, FIRST, result.since, result.signed_by)
    assert [d.report_date for d in days] == [d.isoformat() for d in DAYS]
    assert days[0].counts == {"更正": 4, "重算": 1} and days[0].edition == "第2版（更正）"
    assert days[5].counts == {"重算": 1} and days[5].breaks == 1 and days[5].edition == ""
    connect = smtp_connect(smtp_sink)
    args = (ctx, FIRST, LAST, result.since, result.signed_by, "流调复核：补录一处隔离点", "closeout@test.invalid")
    subject = send_summary(*args, connect)
    assert subject == "【重新结清】2022-03-13 至 2022-03-17：6 天已发布的数字有变化"
    [mail] = received_mails(smtp_sink.folder)[mails_before:]
    assert mail["Subject"] == subject and "duty@test.invalid" in mail["To"]
    body = mail.get_body(("plain",)).get_content()
    assert "2022-03-13 更正 4 项，重算 1 项；已生成第2版（更正），未单独发送" in body
    assert "2022-03-18 重算 1 项；仍有不平衡 1 条" in body
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "更正登记.csv"
    assert len(attachment.get_payload(decode=True).decode("utf-8-sig").splitlines()) == 1 + len(rows)
    assert send_summary(*args, connect) is None  # mailed once

    # the same range again: nothing new is recorded, rendered or mailed
    again = reclose_range(ctx, FIRST, LAST, [], "流调复核：补录一处隔离点", "ops.wang", TODAY)
    assert again.changed == {} and again.editions == [] and again.failed == []
    assert len(register(ctx, FIRST)) == len(rows)
    assert [len(editions_of(ctx, d)) - editions_before[d] for d in DAYS] == [1, 1, 1, 1, 1, 0]
    assert changed_days(ctx, FIRST, again.since, again.signed_by) == []
    assert send_summary(ctx, FIRST, LAST, again.since, again.signed_by, "x", "closeout@test.invalid", connect) is None
    assert len(received_mails(smtp_sink.folder)) == mails_before + 1


def _breaks(ctx, day) -> set[tuple[str, str]]:
    return {
        (r["unit_code"], r["rule"]) for r in ctx.store.rows("select_hard_findings", {"report_date": day.isoformat()})
    }


def test_a_range_is_refused_backwards_in_the_future_unpublished_or_without_a_reason(
    db_url, ctx_for, tmp_path, smtp_sink
):
    ctx, _ = published_week(db_url, ctx_for, tmp_path, smtp_sink)
    with pytest.raises(RangeRefused, match="晚于结束日期"):
        reclose_range(ctx, LAST, FIRST, [], "复核", "w", TODAY)
    with pytest.raises(RangeRefused, match="还没到"):
        reclose_range(ctx, FIRST, date(2022, 3, 21), [], "复核", "w", TODAY)
    with pytest.raises(RangeRefused, match="2022-03-19 尚未结清发布"):  # received and loaded, never published
        reclose_range(ctx, date(2022, 3, 17), date(2022, 3, 19), [], "复核", "w", TODAY)
    with pytest.raises(RangeRefused, match="2022-03-10、2022-03-11、2022-03-12 尚未结清发布"):
        reclose_range(ctx, date(2022, 3, 10), LAST, [], "复核", "w", TODAY)
    with pytest.raises(ReasonRequired):
        reclose_range(ctx, FIRST, LAST, [], "  ", "w", TODAY)
    with pytest.raises(RangeRefused, match="不在名录中"):
        reclose_range(ctx, FIRST, LAST, ["火星县"], "复核", "w", TODAY)
    assert register(ctx, FIRST) == []  # refused before anything was loaded


def test_the_command_line_recloses_a_range_and_keeps_one_day_as_it_was(db_url, ctx_for, tmp_path, smtp_sink, capsys):
    from closeout.orchestration.cli import cli_actor
    from closeout.orchestration.cli import main as cli

    ctx, folders = published_week(db_url, ctx_for, tmp_path, smtp_sink)
    set_line(folders[1] / f"{KECHENG}.csv", "new_confirmed", 2)
    set_line(folders[1] / f"{KECHENG}.csv", "new_asymptomatic", 1)
    capsys.readouterr()
    assert cli(["reclose", "2022-03-14", "2022-03-16", "--unit", "柯城区", "--reason", "流调复核"]) == 0
    out = capsys.readouterr().out
    assert "2022-03-14:\n  柯城区(330802): loaded" in out
    assert "2022-03-13 至" not in out and "衢江区(" not in out  # only the unit named, only the range
    assert "2022-03-14 至 2022-03-16 重新结清：5 天已发布的数字有变化" in out
    assert "已生成 2022-03-14 第2版（更正）（未发送）" in out
    assert {r["signed_by"] for r in register(ctx, FIRST)} == {cli_actor()}  # the OS account and host
    assert cli(["reclose", "2022-03-14", "2022-03-16", "--reason", "流调复核"]) == 0  # again: nothing changes
    assert "没有任何已发布的数字变化" in capsys.readouterr().out
    assert cli(["reclose", "2022-03-16", "2022-03-14", "--reason", "流调复核"]) == 2
    assert "晚于结束日期" in capsys.readouterr().err
    # one date: the one-day re-close as before (no range checks, later days re-checked)
    assert cli(["reclose", "2022-03-18", "--unit", "柯城区", "--reason", "复核"]) == 0
    assert "2022-03-18 之后已发布的日期没有变化" in capsys.readouterr().out
