"""Re-closing a published day (signed corrections, the cascade to later days) and the same-day 补报/更正 batch that
intake hands to daily_closeout, on both stores."""

from datetime import datetime, timedelta

import pytest
from conftest import SAMPLE_INBOX, copy_day, publish
from days import (
    MARCH_18,
    MARCH_19,
    change_isolation_new,
    close_day,
    figure,
    published_day,
    register,
    set_line,
    smtp_connect,
)

from closeout.close.load import load_group
from closeout.close.plan import plan_unit_groups
from closeout.close.reclose import ReasonRequired, Signature, recheck_later_days, run_request
from closeout.close.reconcile import reconcile_day
from closeout.core.clock import LOCAL_TZ
from closeout.orchestration import pipeline
from closeout.publish.reissue import due_reissues


def test_an_operator_signs_a_correction_the_file_gave_no_reason_for(db_url, ctx_for, tmp_path, smtp_sink):
    ctx, path, day = published_day(db_url, ctx_for, tmp_path, smtp_sink)
    old, _ = figure(ctx, "330802", "isolation_new", day)
    change_isolation_new(path, int(old) + 6, "")
    [unsigned] = load_group(ctx, day, ["330802"])
    assert unsigned.status == "rejected" and "correction_without_note" in unsigned.lines[0]
    [signed] = load_group(ctx, day, ["330802"], Signature("ops.wang", "县里电话确认：漏报一处隔离点"))
    assert signed.status == "loaded" and figure(ctx, "330802", "isolation_new", day)[0] == old + 6
    [row] = register(ctx)
    assert (row["kind"], row["old_value"], row["new_value"]) == ("更正", str(int(old)), str(int(old) + 6))
    assert (row["reason"], row["signed_by"], row["source"]) == (
        "县里电话确认：漏报一处隔离点",
        "ops.wang",
        "县报送文件 330802.csv",
    )
    # the file's own note wins over the operator's reason; the operator still signs
    change_isolation_new(path, int(old) + 7, "再次核实")
    load_group(ctx, day, ["330802"], Signature("ops.li", "复核"))
    latest = register(ctx)[-1]
    assert (latest["new_value"], latest["reason"], latest["signed_by"]) == (str(int(old) + 7), "再次核实", "ops.li")


def test_reclosing_a_published_day_takes_a_reason_and_known_units(db_url, ctx_for, tmp_path, smtp_sink):
    ctx, _, day = published_day(db_url, ctx_for, tmp_path, smtp_sink)
    with pytest.raises(ReasonRequired, match="须在表单“原因 reason”中写明原因"):
        run_request(ctx, day, {"report_date": day.isoformat(), "units": ["330802"], "reason": "  "}, "ops.wang")
    with pytest.raises(ValueError, match="不在名录中"):
        run_request(ctx, day, {"report_date": day.isoformat(), "units": ["火星县"], "reason": "x"}, "ops.wang")
    request = run_request(
        ctx, day, {"report_date": day.isoformat(), "units": ["柯城区", "330803"], "reason": "复核"}, "w"
    )
    assert request.units == ("330802", "330803") and request.signed == Signature("w", "复核")
    groups = request.groups(plan_unit_groups(ctx))
    assert [code for g in groups for code in g["codes"]] == ["330802", "330803"]
    # not a re-close: a scheduled run or a re-run (no form), a day not yet published, intake's 补报/更正 run
    assert run_request(ctx, day, None, None).signed is None
    assert run_request(ctx, MARCH_19, {"report_date": "2022-03-19"}, "w").units == ()
    assert run_request(ctx, day, {"report_date": day.isoformat(), "reissue": True}, None).signed is None


def two_published_days(db_url, ctx_for, tmp_path, smtp_sink):
    """The 18th and the 19th closed and mailed; the context and the 18th's inbox folder."""
    inbox = tmp_path / "inbox"
    march_18 = copy_day(SAMPLE_INBOX / "2022-03-18", inbox, "2022-03-18")
    copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    ctx = ctx_for(db_url, inbox)
    for day in (MARCH_18, MARCH_19):
        close_day(ctx, day)
        pipeline.render_bulletin(ctx, day)
        publish(ctx, day, smtp_connect(smtp_sink))
    return ctx, march_18


def test_a_reclose_rechecks_every_later_published_day_and_reports_what_changed(db_url, ctx_for, tmp_path, smtp_sink):
    ctx, march_18 = two_published_days(db_url, ctx_for, tmp_path, smtp_sink)
    cumulative_19 = figure(ctx, "330802", "confirmed_cumulative", MARCH_19)[0]
    isolation_balance_before = _hard_rules(ctx, MARCH_19)

    # the 18th, re-closed: 柯城 had two new cases, not one (and one asymptomatic less), and 40 more people
    # isolated that day: the 18th balances, but the 19th, which started from the old stock, no longer does
    set_line(march_18 / "330802.csv", "new_confirmed", 2)
    set_line(march_18 / "330802.csv", "new_asymptomatic", 2)
    for metric in ("isolation_new", "isolation_central"):
        set_line(march_18 / "330802.csv", metric, int(figure(ctx, "330802", metric, MARCH_18)[0]) + 40)
    [outcome] = load_group(ctx, MARCH_18, ["330802"], Signature("ops.wang", "流调复核"))
    assert outcome.status == "loaded", outcome.lines
    reconcile_day(ctx, MARCH_18)
    changed = recheck_later_days(ctx, MARCH_18, "ops.wang")

    assert figure(ctx, "330802", "confirmed_cumulative", MARCH_19)[0] == cumulative_19 + 1
    assert list(changed) == ["2022-03-19"]
    assert f"柯城区 累计本土确诊 {cumulative_19:.0f} → {cumulative_19 + 1:.0f}" in changed["2022-03-19"]
    assert {(u, rule) for u, rule, _ in _hard_rules(ctx, MARCH_19) - isolation_balance_before} == {
        ("330802", "isolation_balance")
    }
    assert not {rule for _, rule, _ in _hard_rules(ctx, MARCH_18)} & {"isolation_balance"}
    [new_break] = [line for line in changed["2022-03-19"] if line.startswith("新的不平衡")]
    assert "柯城区" in new_break and "[rule: isolation_balance]" in new_break
    recalculated = [r for r in register(ctx) if r["kind"] == "重算"]
    assert [(r["report_date"], r["unit_name"], r["metric_name"], r["signed_by"]) for r in recalculated] == [
        ("2022-03-19", "柯城区", "累计本土确诊", "ops.wang")
    ]
    assert recalculated[0]["reason"] == "随3月18日数据更正重算" and recalculated[0]["source"] == "由逐日新增重算"
    assert recheck_later_days(ctx, MARCH_18, "ops.wang") == {}  # again: nothing new, nothing recorded twice
    assert len([r for r in register(ctx) if r["kind"] == "重算"]) == 1


def _hard_rules(ctx, day) -> set[tuple[str, str, str]]:
    rows = ctx.store.rows("select_hard_findings", {"report_date": day.isoformat()})
    return {(r["unit_code"], r["rule"], r["metric"]) for r in rows}


def test_changes_after_publication_go_out_together_once_the_batch_time_has_passed(db_url, ctx_for, tmp_path, smtp_sink):
    ctx, path, day = published_day(db_url, ctx_for, tmp_path, smtp_sink)
    assert due_reissues(ctx, datetime.now(LOCAL_TZ)) == []  # published, nothing changed since
    old, _ = figure(ctx, "330802", "isolation_new", day)
    change_isolation_new(path, int(old) + 6, "漏报一处隔离点")
    close_day(ctx, day)
    [change] = ctx.store.rows("select_same_day_changes", {"report_date": day.isoformat()})
    first = datetime.fromisoformat(change["recorded_at"])
    batch = timedelta(minutes=ctx.settings.correction_batch)
    assert batch == timedelta(minutes=30)  # the default
    assert due_reissues(ctx, first + batch - timedelta(seconds=1)) == []  # still gathering
    [due] = due_reissues(ctx, first + batch)
    assert due.conf == {"report_date": "2022-03-18", "reissue": True, "units": ["330802"]}
    # a second change within the batch joins it: the same run id, so the batch is triggered once
    change_isolation_new(path, int(old) + 7, "再次核实")
    close_day(ctx, day)
    assert due_reissues(ctx, first + batch) == [due]
    # the run renders the 更正 edition: its changes are no longer due, whether it waits for a sign-off or goes
    edition = pipeline.render_bulletin(ctx, day)
    assert edition.kind == "correction"
    assert due_reissues(ctx, first + 10 * batch) == []
    pipeline.email_bulletin(ctx, edition, "closeout@test.invalid", smtp_connect(smtp_sink))
    assert due_reissues(ctx, first + 10 * batch) == []
    # a change after that edition starts a batch of its own
    change_isolation_new(path, int(old) + 8, "第三次核实")
    close_day(ctx, day)
    [later] = due_reissues(ctx, datetime.now(LOCAL_TZ) + batch)
    assert later.run_id != due.run_id and later.run_id.startswith("reissue__2022-03-18__")


def test_the_command_line_recloses_a_day_as_the_form_does(db_url, ctx_for, tmp_path, smtp_sink, capsys, monkeypatch):
    from closeout.orchestration.cli import cli_actor
    from closeout.orchestration.cli import main as cli

    ctx, march_18 = two_published_days(db_url, ctx_for, tmp_path, smtp_sink)
    set_line(march_18 / "330802.csv", "new_confirmed", 2)
    set_line(march_18 / "330802.csv", "new_asymptomatic", 2)
    capsys.readouterr()
    assert cli(["reclose", "2022-03-18", "--unit", "柯城区", "--reason", "流调复核"]) == 0
    out = capsys.readouterr().out
    assert "柯城区(330802) 2022-03-18: loaded" in out and "2022-03-19 随 2022-03-18 重算后有变化" in out
    assert "衢江区" not in out  # only the unit named was loaded again
    rows = register(ctx)
    assert {(r["kind"], r["report_date"]) for r in rows} == {("更正", "2022-03-18"), ("重算", "2022-03-19")}
    assert {r["signed_by"] for r in rows} == {cli_actor()}  # the OS account and host, never LOGNAME
    with pytest.raises(SystemExit):  # the reason is required
        cli(["reclose", "2022-03-18", "--unit", "柯城区"])
