"""Loading, reconciling and publishing against a real store: SQLite and the machine's PostgreSQL."""

import hashlib
import json
import re
import smtplib
from contextlib import contextmanager
from datetime import date

import pytest
from conftest import SAMPLE_INBOX, copy_day, publish
from days import (
    DAY,
    change_isolation_new,
    close_day,
    failing_session,
    figure,
    published_day,
    replace_row,
    smtp_connect,
    snapshot,
)

from closeout.close.reconcile import reconcile_day
from closeout.close.status import open_units
from closeout.deliver.mailer import DeliveryUncertain
from closeout.orchestration import pipeline
from closeout.publish.bulletin.model import build_bulletin


def test_loading_the_same_day_twice_changes_nothing(db_url, ctx_for, tmp_path):
    inbox = tmp_path / "inbox"
    copy_day(SAMPLE_INBOX / "2022-03-18", inbox, "2022-03-18")
    copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    ctx = ctx_for(db_url, inbox)
    close_day(ctx, date(2022, 3, 18))
    outcomes, statuses = close_day(ctx)
    assert {o.status for o in outcomes.values()} == {"loaded", "absent"}
    assert set(statuses.values()) == {"cleared", "absent"}
    before = snapshot(db_url)
    outcomes, _ = close_day(ctx)
    assert {o.status for o in outcomes.values()} == {"unchanged", "absent"}
    assert snapshot(db_url) == before


def test_every_file_is_archived_with_its_hash_before_parsing(db_url, ctx_for, tmp_path):
    inbox = tmp_path / "inbox"
    day_folder = copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    ctx = ctx_for(db_url, inbox)
    close_day(ctx)
    for source in day_folder.iterdir():
        unit = ctx.registry.resolve(source.stem)
        sha = hashlib.sha256(source.read_bytes()).hexdigest()
        archived = tmp_path / "archive" / "archive" / "2022-03-19" / unit.code / f"{sha[:16]}-{source.name}"
        assert archived.read_bytes() == source.read_bytes()
        manifest = json.loads(archived.with_name(archived.name + ".json").read_text(encoding="utf-8"))
        assert manifest["sha256"] == sha and manifest["received_at"].endswith("+08:00")


def test_bad_file_is_quarantined_with_reasons_and_others_still_load(db_url, ctx_for, tmp_path):
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    bad = folder / "330802.csv"
    lines = [
        ("counseling_sessions,600余,330802,2022-03-19," if ln.startswith("counseling_sessions,") else ln)
        for ln in bad.read_text(encoding="utf-8").splitlines()
    ]
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ctx = ctx_for(db_url, inbox)
    outcomes, statuses = close_day(ctx)
    assert outcomes["330802"].status == "rejected"
    (line,) = outcomes["330802"].lines
    assert line.startswith("[拒收] 柯城区(330802) 文件 330802.csv 第") and "指标 counseling_sessions(心理咨询)" in line
    assert "值“600余" in line and line.endswith("[rule: approximation_in_hard_metric]")
    assert statuses["330802"] == "rejected"
    assert [s for c, s in statuses.items() if c not in ("330802", "330801")] == ["cleared"] * 5
    quarantined = list((tmp_path / "archive" / "quarantine" / "2022-03-19" / "330802").iterdir())
    kept = next(p for p in quarantined if p.name.endswith("330802.csv"))
    assert kept.read_bytes() == bad.read_bytes() and bad.exists()
    reasons = next(p for p in quarantined if p.name.endswith(".reasons.txt")).read_text(encoding="utf-8")
    assert reasons == line + "\n"


def test_resubmission_before_publication_latest_wins_with_a_diff(db_url, ctx_for, tmp_path):
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    ctx = ctx_for(db_url, inbox)
    close_day(ctx)
    path = folder / "330802.csv"
    old_value, _ = figure(ctx, "330802", "needs_resolved")
    lines = path.read_text(encoding="utf-8").splitlines()
    lines = [
        f"needs_resolved,{int(old_value) + 7},330802,2022-03-19," if ln.startswith("needs_resolved,") else ln
        for ln in lines
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    outcomes, _ = close_day(ctx)
    assert outcomes["330802"].status == "loaded"
    assert figure(ctx, "330802", "needs_resolved") == (old_value + 7, "")
    assert ctx.store.rows("select_day_revisions", {"report_date": "2022-03-19"}) == [
        {
            "report_date": "2022-03-19",
            "unit_code": "330802",
            "metric": "needs_resolved",
            "old_value": old_value,
            "new_value": old_value + 7,
            "old_qualifier": "",
            "new_qualifier": "",
            "kind": "revision",
            "reason": "",
        }
    ]
    statuses = [
        r["status"]
        for r in ctx.store.rows("select_latest_submissions", {"report_date": "2022-03-19"})
        if r["unit_code"] == "330802"
    ]
    assert statuses == ["superseded", "loaded"]


def test_change_after_publication_needs_a_note(db_url, ctx_for, tmp_path, smtp_sink):
    ctx, path, day = published_day(db_url, ctx_for, tmp_path, smtp_sink)
    old, _ = figure(ctx, "330802", "isolation_new", day)
    change_isolation_new(path, int(old) + 6, "")
    outcomes, _ = close_day(ctx, day)
    assert outcomes["330802"].status == "rejected"
    assert outcomes["330802"].lines[0].endswith("日报已发布，更正须在备注列写明原因 [rule: correction_without_note]")
    assert figure(ctx, "330802", "isolation_new", day) == (old, "")  # the published figure stands


def test_correction_after_publication_is_kept_and_announced_next_day(db_url, ctx_for, tmp_path, smtp_sink):
    ctx, path, day = published_day(db_url, ctx_for, tmp_path, smtp_sink)
    old, _ = figure(ctx, "330802", "isolation_new", day)
    change_isolation_new(path, int(old) + 6, "漏报一处隔离点")
    close_day(ctx, day)
    assert figure(ctx, "330802", "isolation_new", day) == (old + 6, "")
    close_day(ctx)
    folder = pipeline.render_bulletin(ctx, DAY).folder(ctx)
    text_bulletin = (folder / "bulletin.txt").read_text(encoding="utf-8")
    expected = f"3月18日柯城区新增集中隔离由{int(old)}人订正为{int(old) + 6}人，原因：漏报一处隔离点。"
    assert expected in text_bulletin
    assert expected in (pipeline.render_bulletin(ctx, DAY).folder(ctx) / "bulletin.txt").read_text(
        encoding="utf-8"
    )  # re-run
    assert len(list(smtp_sink.folder.glob("*.eml"))) == 1  # the correction does not resend the 18th


def test_bulletin_is_sent_once(db_url, ctx_for, tmp_path, smtp_sink):
    ctx, _, day = published_day(db_url, ctx_for, tmp_path, smtp_sink)
    again = publish(ctx, day, smtp_connect(smtp_sink))
    assert again.status == "already_sent"
    assert len(list(smtp_sink.folder.glob("*.eml"))) == 1


def test_server_down_or_refusing_records_nothing_and_a_retry_sends(db_url, ctx_for, tmp_path, smtp_sink):
    ctx, _, _ = published_day(db_url, ctx_for, tmp_path, smtp_sink)
    close_day(ctx)

    @contextmanager
    def server_down():
        with smtplib.SMTP("127.0.0.1", 9, timeout=2) as client:  # nothing listens on the discard port
            yield client.send_message

    with pytest.raises(OSError):
        publish(ctx, DAY, server_down)
    refused = smtplib.SMTPSenderRefused(550, b"sender rejected", "closeout@test.invalid")
    with pytest.raises(smtplib.SMTPSenderRefused):
        publish(ctx, DAY, failing_session(refused))
    assert publish(ctx, DAY, smtp_connect(smtp_sink)).status == "sent"
    assert len(list(smtp_sink.folder.glob("*.eml"))) == 2


def test_a_send_that_may_have_gone_through_is_never_repeated_blindly(db_url, ctx_for, tmp_path, smtp_sink):
    from closeout.orchestration.cli import confirm_delivery, retry_delivery

    ctx, _, _ = published_day(db_url, ctx_for, tmp_path, smtp_sink)
    close_day(ctx)
    lost = smtplib.SMTPServerDisconnected("connection lost after DATA")  # the server may have accepted it
    with pytest.raises(smtplib.SMTPServerDisconnected):
        publish(ctx, DAY, failing_session(lost))
    with pytest.raises(DeliveryUncertain, match="closeout retry-delivery 2022-03-19 --edition 1"):
        publish(ctx, DAY, smtp_connect(smtp_sink))
    assert len(list(smtp_sink.folder.glob("*.eml"))) == 1
    assert retry_delivery(ctx, DAY, None, "值班员核对收件箱：未收到", "duty") == 0  # nothing arrived
    assert publish(ctx, DAY, smtp_connect(smtp_sink)).status == "sent"
    assert len(list(smtp_sink.folder.glob("*.eml"))) == 2
    # a confirmed send is not released without saying so explicitly
    assert retry_delivery(ctx, DAY, 1, "再发一次", "duty") == 2
    assert publish(ctx, DAY, smtp_connect(smtp_sink)).status == "already_sent"
    attempts = ctx.store.rows("select_deliveries", {"report_date": DAY.isoformat()})
    assert [(a["edition_no"], a["attempt"], a["status"]) for a in attempts] == [(1, 1, "released"), (1, 2, "sent")]
    assert confirm_delivery(ctx, DAY, 1, "已收到", "duty") == 2  # nothing left unconfirmed
    events = ctx.store.rows("select_delivery_events", {"report_date": DAY.isoformat()})
    assert [(e["attempt"], e["event"], e["actor"], e["reason"]) for e in events] == [
        (1, "released", "duty", "值班员核对收件箱：未收到")
    ]


def test_an_operator_can_confirm_a_send_that_did_arrive(db_url, ctx_for, tmp_path, smtp_sink):
    from closeout.orchestration.cli import confirm_delivery

    ctx, _, _ = published_day(db_url, ctx_for, tmp_path, smtp_sink)
    close_day(ctx)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        publish(ctx, DAY, failing_session(smtplib.SMTPServerDisconnected("lost after DATA")))
    assert confirm_delivery(ctx, DAY, None, "市办来电确认已收到", "duty") == 0
    assert publish(ctx, DAY, smtp_connect(smtp_sink)).status == "already_sent"
    assert len(list(smtp_sink.folder.glob("*.eml"))) == 1  # only the 18th's
    [event] = ctx.store.rows("select_delivery_events", {"report_date": DAY.isoformat()})
    assert (event["event"], event["reason"]) == ("confirmed", "市办来电确认已收到")


def test_missing_unit_and_unmatched_file(db_url, ctx_for, tmp_path):
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    (folder / "changshan.csv").rename(folder / "常山县报表.csv")  # a name no registry entry matches
    ctx = ctx_for(db_url, inbox)
    outcomes, statuses = close_day(ctx)
    assert outcomes["330822"].status == "missing" and statuses["330822"] == "missing"
    assert outcomes["330822"].lines[0].startswith("[缺报] 常山县(330822)：截至截止时间未收到2022-03-19的数据文件")
    findings = ctx.store.rows("select_findings", {"report_date": "2022-03-19"})
    assert [f["file_name"] for f in findings if f["rule"] == "unknown_unit"] == ["常山县报表.csv"]
    assert list((tmp_path / "archive" / "quarantine" / "2022-03-19" / "unmatched").glob("*常山县报表.csv"))


def test_a_missing_unit_stays_missing_on_a_rerun(db_url, ctx_for, tmp_path):
    inbox = tmp_path / "inbox"
    copy_day(SAMPLE_INBOX / "2022-03-18", inbox, "2022-03-18")
    folder = copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    (folder / "龙游县.csv").unlink()
    ctx = ctx_for(db_url, inbox)
    close_day(ctx, date(2022, 3, 18))
    close_day(ctx)  # derives 龙游's carried cumulative for the 19th
    outcomes, statuses = close_day(ctx)  # the operator clears the county's task
    assert outcomes["330825"].status == "missing" and statuses["330825"] == "missing"


def test_two_files_for_one_unit_are_rejected_until_one_is_removed(db_url, ctx_for, tmp_path):
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    (folder / "kecheng.csv").write_bytes((folder / "330802.csv").read_bytes())
    ctx = ctx_for(db_url, inbox)
    outcomes, _ = close_day(ctx)
    assert outcomes["330802"].status == "rejected"
    assert "同一单位当日有多个数据文件（330802.csv、kecheng.csv）" in outcomes["330802"].lines[0]
    before = snapshot(db_url)
    outcomes, _ = close_day(ctx)  # re-run: same verdict, nothing changes
    assert outcomes["330802"].status == "rejected" and snapshot(db_url) == before
    (folder / "kecheng.csv").unlink()  # the operator does what the message says
    outcomes, statuses = close_day(ctx)
    assert outcomes["330802"].status == "loaded" and statuses["330802"] == "cleared"


def test_a_file_sent_back_wins_again(db_url, ctx_for, tmp_path):
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    path = folder / "330802.csv"
    original = path.read_bytes()
    ctx = ctx_for(db_url, inbox)
    close_day(ctx)
    first, _ = figure(ctx, "330802", "needs_resolved")
    replace_row(path, "needs_resolved,", f"needs_resolved,{int(first) + 7},330802,2022-03-19,")
    close_day(ctx)
    assert figure(ctx, "330802", "needs_resolved")[0] == first + 7
    path.write_bytes(original)  # A, B, then A again: A is the latest
    outcomes, _ = close_day(ctx)
    assert outcomes["330802"].status == "loaded" and figure(ctx, "330802", "needs_resolved")[0] == first
    replace_row(path, "sampled,", "sampled,12万余,330802,2022-03-19,")  # a bad file …
    outcomes, statuses = close_day(ctx)
    assert outcomes["330802"].status == "rejected" and statuses["330802"] == "rejected"
    path.write_bytes(original)  # … then the good one again: the unit is cleared, not stuck as rejected
    outcomes, statuses = close_day(ctx)
    assert outcomes["330802"].status == "loaded" and statuses["330802"] == "cleared"
    assert open_units(ctx, DAY) == []


def test_unit_sends_its_own_cumulative_after_a_reconcile(db_url, ctx_for, tmp_path):
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    ctx = ctx_for(db_url, inbox)
    close_day(ctx)  # derives confirmed_cumulative for 柯城
    derived, _ = figure(ctx, "330802", "confirmed_cumulative")
    with open(folder / "330802.csv", "a", encoding="utf-8") as handle:
        handle.write(f"confirmed_cumulative,{int(derived)},330802,2022-03-19,\n")
    outcomes, statuses = close_day(ctx)
    assert outcomes["330802"].status == "loaded" and statuses["330802"] == "cleared"


def test_city_cumulative_never_falls_when_a_unit_is_missing(db_url, ctx_for, tmp_path):
    inbox = tmp_path / "inbox"
    copy_day(SAMPLE_INBOX / "2022-03-18", inbox, "2022-03-18")
    folder = copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    (folder / "330803.csv").unlink()  # 衢江, where most cases are
    ctx = ctx_for(db_url, inbox)
    close_day(ctx, date(2022, 3, 18))
    qujiang, _ = figure(ctx, "330803", "confirmed_cumulative", date(2022, 3, 18))
    close_day(ctx)
    assert figure(ctx, "330803", "confirmed_cumulative") == (qujiang, "")  # carried forward
    rows = build_bulletin(ctx, DAY).attachment_rows
    city = {(r["unit_code"], r["metric"]): r for r in rows}
    before = build_bulletin(ctx, date(2022, 3, 18)).attachment_rows
    city_before = {(r["unit_code"], r["metric"]): r for r in before}
    key = ("330800", "confirmed_cumulative")
    assert float(city[key]["value"]) >= float(city_before[key]["value"])


def test_bad_narrative_never_holds_up_the_figures(db_url, ctx_for, tmp_path):
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    (folder / "330802.md").write_bytes("# 标题\n作者\n正文\n".encode("utf-16"))  # Notepad's "Unicode"
    ctx = ctx_for(db_url, inbox)
    outcomes, statuses = close_day(ctx)
    assert outcomes["330802"].status == "loaded" and statuses["330802"] == "cleared"
    (finding,) = [
        f
        for f in ctx.store.rows("select_findings", {"report_date": "2022-03-19"})
        if f["rule"] == "narrative_unreadable"
    ]
    assert finding["line"].startswith("[提示] 柯城区(330802) 文件 330802.md：文字稿无法读取")


def test_unquoted_thousands_separator_is_caught_not_truncated(db_url, ctx_for, tmp_path):
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    path = folder / "330802.csv"
    path.write_text("metric,value\nsampled,118,420\n", encoding="utf-8")
    outcomes, _ = close_day(ctx_for(db_url, inbox))
    (line,) = outcomes["330802"].lines
    assert "第2行" in line and "值“118,420”" in line and line.endswith("[rule: unquoted_thousands_separator]")


def test_unsupported_format_is_rejected_not_reported_missing(db_url, ctx_for, tmp_path):
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    (folder / "330802.csv").rename(folder / "330802.xls")
    outcomes, statuses = close_day(ctx_for(db_url, inbox))
    assert outcomes["330802"].status == "rejected" and statuses["330802"] == "rejected"
    assert "不支持 .xls 文件，请另存为 .xlsx 或 .csv" in outcomes["330802"].lines[0]


def test_late_first_report_after_publication_is_announced_next_day(db_url, ctx_for, tmp_path, smtp_sink):
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / "2022-03-18", inbox, "2022-03-18")
    copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    late = (folder / "changshan.csv").rename(tmp_path / "changshan.csv")
    ctx = ctx_for(db_url, inbox)
    close_day(ctx, date(2022, 3, 18))
    publish(ctx, date(2022, 3, 18), smtp_connect(smtp_sink))
    late.rename(folder / "changshan.csv")  # 常山 sends the 18th after the bulletin went out
    outcomes, _ = close_day(ctx, date(2022, 3, 18))
    assert outcomes["330822"].status == "loaded"
    close_day(ctx)
    notes = build_bulletin(ctx, DAY).notes
    assert "3月18日常山县数据于当日日报发布后补报，已计入3月18日合计。" in notes


def test_a_correction_after_publication_goes_out_as_a_correction_edition_and_again_next_day(
    db_url, ctx_for, tmp_path, smtp_sink
):
    from email import policy
    from email.parser import BytesParser

    ctx, path, day = published_day(db_url, ctx_for, tmp_path, smtp_sink)  # the 18th is out
    old, _ = figure(ctx, "330802", "isolation_new", day)
    change_isolation_new(path, int(old) + 6, "漏报一处隔离点")
    close_day(ctx, day)
    sentence = f"3月18日柯城区新增集中隔离由{int(old)}人订正为{int(old) + 6}人，原因：漏报一处隔离点。"
    correction = pipeline.render_bulletin(ctx, day)  # the runbook's "clear render_bulletin" on the sent day
    assert (correction.number, correction.kind) == (2, "correction")
    assert pipeline.render_bulletin(ctx, day) == correction  # rendering again makes no third edition
    publish(ctx, day, smtp_connect(smtp_sink))
    publish(ctx, day, smtp_connect(smtp_sink))  # sent once
    mails = [
        BytesParser(policy=policy.default).parsebytes(p.read_bytes()) for p in sorted(smtp_sink.folder.glob("*.eml"))
    ]
    assert [m["Subject"] for m in mails] == [
        "衢州市疫情防控工作日报 2022年3月18日",
        "衢州市疫情防控工作日报 2022年3月18日（更正）",
    ]
    text = mails[1].get_body(("plain",)).get_content()
    # under the head, before the summary; the head keeps the day's 第N期: the 更正 is the same issue
    intro = text.index("\n【更正】3月18日日报发出后，以下数据有变化，本期数字已全部更新：\n")
    assert text.index("统计时段") < intro < text.index("【总体情况】")
    assert [m.get_body(("plain",)).get_content().splitlines()[1] for m in mails] == ["第1期", "第1期"]
    assert sentence in text
    assert pipeline.render_bulletin(ctx, day) == correction  # nothing new since: no new edition
    close_day(ctx)
    publish(ctx, DAY, smtp_connect(smtp_sink))  # the 19th's 正式 edition still lists it
    mail = BytesParser(policy=policy.default).parsebytes(sorted(smtp_sink.folder.glob("*.eml"))[-1].read_bytes())
    assert (
        mail["Subject"] == "衢州市疫情防控工作日报 2022年3月19日"
        and sentence in mail.get_body(("plain",)).get_content()
    )


def test_stock_balance_waits_for_an_open_previous_day(db_url, ctx_for, tmp_path):
    inbox = tmp_path / "inbox"
    folder18 = copy_day(SAMPLE_INBOX / "2022-03-18", inbox, "2022-03-18")
    copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    path = folder18 / "330802.csv"
    row = next(ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.startswith("isolation_central,"))
    value = int(row.split(",")[1])
    replace_row(path, "isolation_central,", row.replace(f",{value},", f",{value + 5},", 1))
    ctx = ctx_for(db_url, inbox)
    copy_day(SAMPLE_INBOX / "2022-03-17", inbox, "2022-03-17")
    close_day(ctx, date(2022, 3, 17))
    _, statuses = close_day(ctx, date(2022, 3, 18))
    assert statuses["330802"] == "break"
    _, statuses = close_day(ctx)  # the 19th balances against the true stock, not the broken 18th
    findings = {
        f["rule"]: f
        for f in ctx.store.rows("select_findings", {"report_date": "2022-03-19"})
        if f["unit_code"] == "330802"
    }
    assert "isolation_balance" not in findings and statuses["330802"] == "cleared"
    assert findings["previous_day_open"]["line"].startswith("[提示] 柯城区(330802)：前日（3月18日）未结清")


def test_stock_break_against_yesterday_leaves_the_unit_open(db_url, ctx_for, tmp_path):
    inbox = tmp_path / "inbox"
    copy_day(SAMPLE_INBOX / "2022-03-18", inbox, "2022-03-18")
    folder = copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    path = folder / "330802.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    row = next(ln for ln in lines if ln.startswith("isolation_central,"))
    value = int(row.split(",")[1])
    path.write_text(
        "\n".join(ln.replace(row, row.replace(f",{value},", f",{value + 5},", 1)) for ln in lines) + "\n",
        encoding="utf-8",
    )
    ctx = ctx_for(db_url, inbox)
    close_day(ctx, date(2022, 3, 18))
    _, statuses = close_day(ctx)
    assert statuses["330802"] == "break"
    (finding,) = [
        f for f in ctx.store.rows("select_findings", {"report_date": "2022-03-19"}) if f["severity"] == "hard"
    ]
    assert finding["rule"] == "isolation_balance" and finding["line"].startswith("[未结清] 柯城区(330802)")
    # GX's own results of the day as Data Docs: the load's batch and the reconcile, the failing one named
    index = ctx.settings.outbox / "2022-03-19" / "checks" / "index.html"
    pages = {p: p.read_text(encoding="utf-8") for p in (index.parent / "validations").rglob("*.html")}
    suites = {p.relative_to(index.parent / "validations").parts[0] for p in pages}
    assert suites == {"validate-rows", "validate-completeness", "validate-checks", "reconcile-checks"}
    (reconciled,) = [page for path, page in pages.items() if "reconcile-checks" in path.parts]
    assert re.findall(r'fa-times text-danger" ></i>.*?<span >\s*(\w+)：', reconciled, re.S) == ["isolation_balance"]
    links = re.findall(r'href="(?!https?:|#)([^"]+)"', index.read_text(encoding="utf-8"))
    assert "expectations/reconcile-checks.html" in links and all((index.parent / link).exists() for link in links)


def test_cumulative_is_derived_and_a_submitted_one_is_checked(db_url, ctx_for, tmp_path):
    inbox = tmp_path / "inbox"
    copy_day(SAMPLE_INBOX / "2022-03-18", inbox, "2022-03-18")
    folder = copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    ctx = ctx_for(db_url, inbox)
    close_day(ctx, date(2022, 3, 18))
    yesterday, _ = figure(ctx, "330803", "confirmed_cumulative", date(2022, 3, 18))
    with open(folder / "330803.csv", "a", encoding="gbk") as handle:
        handle.write(f"累计本土确诊,{int(yesterday) + 1},330803,2022/3/19,\n")  # a wrong running total
    _, statuses = close_day(ctx)
    today_flow, _ = figure(ctx, "330803", "new_confirmed")
    assert figure(ctx, "330802", "confirmed_cumulative")[0] > 0
    findings = [
        f for f in ctx.store.rows("select_findings", {"report_date": "2022-03-19"}) if f["rule"] == "cumulative_balance"
    ]
    assert [f["unit_code"] for f in findings] == ["330803"]
    assert f"报送累计{int(yesterday) + 1}与逐日新增之和{int(yesterday + today_flow)}不符" in findings[0]["message"]
    assert statuses["330803"] == "break"


def test_a_file_caught_mid_copy_is_refused_never_published_and_the_whole_file_loads_later(
    db_url, ctx_for, tmp_path, smtp_sink
):
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / "2022-03-18", inbox, "2022-03-18")
    path, day = folder / "330802.csv", date(2022, 3, 18)
    whole = path.read_bytes()
    assert whole.rstrip().endswith(b"donated_goods_kg,1240,330802,2022-03-18,")
    path.write_bytes(whole[: whole.rindex(b"1240") + 2])  # caught mid-copy: "donated_goods_kg,12"
    ctx = ctx_for(db_url, inbox)
    outcomes, _ = close_day(ctx, day)
    assert outcomes["330802"].status == "rejected"
    [line] = outcomes["330802"].lines
    assert "[rule: file_incomplete]" in line  # not 12 published for 1240
    assert not [
        r for r in ctx.store.rows("select_reported_figures", {"report_date": day.isoformat(), "unit_codes": ["330802"]})
    ]
    publish(ctx, day, smtp_connect(smtp_sink))
    path.write_bytes(whole)  # the complete file arrives after publication: 柯城区's report, late
    outcomes, _ = close_day(ctx, day)
    assert outcomes["330802"].status == "loaded"
    assert figure(ctx, "330802", "donated_goods_kg", day) == (1240, "")


def test_a_load_that_crashes_after_the_file_arrived_never_reads_as_not_sent(db_url, ctx_for, tmp_path, monkeypatch):
    from closeout.close import load

    inbox = tmp_path / "inbox"
    copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    ctx = ctx_for(db_url, inbox)
    real_commit = load._commit

    def commit(ctx, report_date, pending, loaded, signed=None):
        if any(sub.unit.code == "330803" for sub, _ in pending):
            raise ConnectionError("the store went away")
        return real_commit(ctx, report_date, pending, loaded, signed)

    monkeypatch.setattr(load, "_commit", commit)
    with pytest.raises(ConnectionError):
        close_day(ctx)
    reconcile_day(ctx, DAY)
    statuses = {r["unit_code"]: r["status"] for r in ctx.store.rows("select_unit_days", {"report_date": "2022-03-19"})}
    assert statuses["330803"] == "received"
    text = (pipeline.render_bulletin(ctx, DAY).folder(ctx) / "bulletin.txt").read_text(encoding="utf-8")
    assert "衢江区数据已收到，因处理故障截至发布时未能入库" in text and "衢江区数据截至发布时未报送" not in text
    monkeypatch.setattr(load, "_commit", real_commit)
    outcomes, statuses = close_day(ctx)  # the retry
    assert outcomes["330803"].status == "loaded" and statuses["330803"] == "cleared"
