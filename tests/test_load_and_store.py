"""Loading, reconciling and publishing against a real store: SQLite and the machine's PostgreSQL."""

import json
import smtplib
from datetime import date

import pytest
from conftest import SAMPLE_INBOX, copy_day
from sqlalchemy import create_engine, text

from closeout import pipeline
from closeout.archive import sha256_of
from closeout.mailer import DeliveryUncertain

DAY = date(2022, 3, 19)
TABLES = ("submission", "figure", "figure_revision", "finding", "unit_day", "narrative", "delivery")


def snapshot(db_url: str) -> dict:
    """Every row of every table except processing timestamps, to prove a re-run changed nothing."""
    engine = create_engine(db_url)
    with engine.connect() as conn:
        state = {t: sorted(map(repr, conn.execute(text(f"SELECT * FROM {t}")).all())) for t in TABLES}
    engine.dispose()
    return state


def close_day(ctx, day=DAY):
    outcomes = [o for g in pipeline.plan_unit_groups(ctx) for o in pipeline.load_units(ctx, day, g["codes"])]
    return {o.unit_code: o for o in outcomes}, pipeline.reconcile(ctx, day)


def figure(ctx, unit, metric, day=DAY):
    rows = ctx.store.rows("select_figures_between", {"first_date": day.isoformat(), "last_date": day.isoformat()})
    return next((r["value"], r["qualifier"]) for r in rows if r["unit_code"] == unit and r["metric"] == metric)


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
        sha = sha256_of(source)
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


def published_day(db_url, ctx_for, tmp_path, smtp_sink):
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / "2022-03-18", inbox, "2022-03-18")
    copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    ctx = ctx_for(db_url, inbox)
    day = date(2022, 3, 18)
    close_day(ctx, day)
    pipeline.render_bulletin(ctx, day)
    pipeline.email_bulletin(ctx, day, "closeout@test.invalid", smtp_send(smtp_sink))
    return ctx, folder / "330802.csv", day


def smtp_send(sink):
    def send(message):
        with smtplib.SMTP(sink.hostname, sink.port) as client:
            client.send_message(message)

    return send


def change_isolation_new(path, new_value, note):
    lines = path.read_text(encoding="utf-8").splitlines()
    lines = [
        f"isolation_new,{new_value},330802,2022-03-18,{note}" if ln.startswith("isolation_new,") else ln for ln in lines
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


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
    folder = pipeline.render_bulletin(ctx, DAY)
    text_bulletin = (folder / "bulletin.txt").read_text(encoding="utf-8")
    expected = f"3月18日柯城区新增集中隔离由{int(old)}人订正为{int(old) + 6}人，原因：漏报一处隔离点。"
    assert expected in text_bulletin
    assert expected in (pipeline.render_bulletin(ctx, DAY) / "bulletin.txt").read_text(encoding="utf-8")  # re-run
    assert len(list(smtp_sink.folder.glob("*.eml"))) == 1  # the correction does not resend the 18th


def test_bulletin_is_sent_once_and_a_refused_send_may_retry(db_url, ctx_for, tmp_path, smtp_sink):
    ctx, _, day = published_day(db_url, ctx_for, tmp_path, smtp_sink)
    again = pipeline.email_bulletin(ctx, day, "closeout@test.invalid", smtp_send(smtp_sink))
    assert again.status == "already_sent"
    assert len(list(smtp_sink.folder.glob("*.eml"))) == 1

    close_day(ctx)

    def refused(message):
        raise smtplib.SMTPServerDisconnected("connection lost")

    with pytest.raises(smtplib.SMTPServerDisconnected):
        pipeline.email_bulletin(ctx, DAY, "closeout@test.invalid", refused)
    assert pipeline.email_bulletin(ctx, DAY, "closeout@test.invalid", smtp_send(smtp_sink)).status == "sent"
    assert len(list(smtp_sink.folder.glob("*.eml"))) == 2


def test_unconfirmed_send_is_never_repeated_blindly(db_url, ctx_for, tmp_path, smtp_sink):
    ctx, _, _ = published_day(db_url, ctx_for, tmp_path, smtp_sink)
    close_day(ctx)
    with ctx.store.transaction() as conn:  # a worker died after the server accepted, before recording it
        ctx.store.run(
            conn,
            "insert_delivery",
            {
                "report_date": "2022-03-19",
                "subject": "s",
                "recipients": "r",
                "message_id": "<m@x>",
                "content_sha256": "0",
                "started_at": "t",
            },
        )
    with pytest.raises(DeliveryUncertain, match="closeout forget-delivery 2022-03-19"):
        pipeline.email_bulletin(ctx, DAY, "closeout@test.invalid", smtp_send(smtp_sink))
    from closeout.cli import forget_delivery

    forget_delivery(ctx, DAY)
    assert pipeline.email_bulletin(ctx, DAY, "closeout@test.invalid", smtp_send(smtp_sink)).status == "sent"


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


def test_two_files_for_one_unit_are_both_rejected(db_url, ctx_for, tmp_path):
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    (folder / "kecheng.csv").write_bytes((folder / "330802.csv").read_bytes())
    ctx = ctx_for(db_url, inbox)
    outcomes, _ = close_day(ctx)
    assert outcomes["330802"].status == "rejected"
    assert "同一单位当日有多个数据文件（330802.csv、kecheng.csv）" in outcomes["330802"].lines[0]
    outcomes, _ = close_day(ctx)  # re-run: same verdict, no duplicate rows
    assert outcomes["330802"].status == "rejected"


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
