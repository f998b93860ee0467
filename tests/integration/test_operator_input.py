"""What operators type is recorded as who they are, answered in one line when it is wrong, and never rewrites
history: the `closeout` command itself, run as a process, on both stores."""

import os
import pwd
import socket
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from conftest import SAMPLE_INBOX, copy_day, publish, received_mails
from days import change_isolation_new, close_day, smtp_connect
from sqlalchemy import create_engine, inspect, text

from closeout.orchestration import pipeline

DAY = date(2022, 3, 19)
CLOSEOUT = str(Path(sys.executable).parent / "closeout")


def closeout(env: dict, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CLOSEOUT, *args], env={**os.environ, **env, **extra}, capture_output=True, text=True, timeout=120
    )


def rows(db_url: str, sql: str) -> list[tuple]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def table_rows(db_url: str, table: str) -> list[tuple]:
    """The table's rows; none when the store was never even created."""
    engine = create_engine(db_url)
    try:
        present = table in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    return rows(db_url, f"SELECT * FROM {table}") if present else []


def one_line_refusal(result: subprocess.CompletedProcess) -> str:
    """Exit 2, one line on stderr, no traceback."""
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr.strip()


def test_the_cli_records_the_os_account_and_host_never_a_name_from_the_environment(db_url, make_env, tmp_path):
    env = make_env(db_url)
    forged = {"LOGNAME": "市长 (Airflow admin)", "USER": "市长 (Airflow admin)", "USERNAME": "市长"}
    result = closeout(env, "mark-absent", DAY.isoformat(), "kaihua", "--reason", "停电", **forged)
    assert result.returncode == 0, result.stderr
    [(marked_by,)] = rows(db_url, "SELECT marked_by FROM unit_excusal")
    account = pwd.getpwuid(os.geteuid()).pw_name
    assert marked_by == f"{account}@{socket.gethostname()} (closeout CLI, OS account)"
    assert "市长" not in marked_by


def test_marking_a_unit_absent_twice_keeps_both_reasons_and_the_latest_is_in_force(db_url, make_env):
    env = make_env(db_url)
    for reason in ("停电", "通信中断，经领导同意"):
        assert closeout(env, "mark-absent", DAY.isoformat(), "330824", "--reason", reason).returncode == 0
    history = rows(db_url, "SELECT reason FROM unit_excusal_history WHERE unit_code = '330824' ORDER BY marked_at")
    assert history == [("停电",), ("通信中断，经领导同意",)]
    assert rows(db_url, "SELECT reason FROM unit_excusal") == [("通信中断，经领导同意",)]


@pytest.mark.parametrize(
    "args",
    [
        ("reclose", "2099-01-01", "--reason", "复核"),  # a day that has not come
        ("mark-absent", "2099-12-31", "kecheng", "--reason", "停电"),
        ("reclose", DAY.isoformat(), "--unit", "nosuch", "--reason", "复核"),  # a unit not in the registry
        ("reclose", "2099-01-01", "2099-01-03", "--reason", "复核"),  # a range
        ("mark-absent", DAY.isoformat(), "火星县", "--reason", "停电"),
    ],
)
def test_bad_operator_input_is_one_line_exit_2_and_writes_nothing(db_url, make_env, args):
    env = make_env(db_url)
    line = one_line_refusal(closeout(env, *args))
    assert any(word in line for word in ("还没到", "名录", "not in the registry", "future")), line
    for table in ("unit_day", "unit_excusal", "unit_excusal_history", "submission", "figure"):
        assert table_rows(db_url, table) == [], table


def test_a_delivery_is_never_released_without_the_operators_own_reason(db_url, make_env):
    env = make_env(db_url)
    for command in ("retry-delivery", "forget-delivery", "confirm-delivery"):
        result = closeout(env, command, DAY.isoformat())
        assert result.returncode == 2 and "--reason" in result.stderr  # argparse: the reason is required


def test_a_published_day_is_not_marked_absent_a_change_goes_through_a_correction(
    db_url, make_env, ctx_for, tmp_path, smtp_sink
):
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / DAY.isoformat(), inbox, DAY.isoformat())
    (folder / "开化县.xlsx").unlink()
    ctx = ctx_for(db_url, inbox)
    close_day(ctx)
    pipeline.render_bulletin(ctx, DAY)
    publish(ctx, DAY, smtp_connect(smtp_sink))
    before = rows(db_url, "SELECT unit_code, status FROM unit_day ORDER BY unit_code")
    line = one_line_refusal(
        closeout(make_env(db_url, inbox), "mark-absent", DAY.isoformat(), "kaihua", "--reason", "x")
    )
    assert "已发出" in line and "closeout reclose" in line
    assert rows(db_url, "SELECT * FROM unit_excusal") == []
    assert rows(db_url, "SELECT unit_code, status FROM unit_day ORDER BY unit_code") == before


def test_check_registry_fails_naming_a_unit_whose_contact_is_no_address(tmp_path, make_env):
    registry = (Path(__file__).resolve().parents[2] / "include" / "registry" / "quzhou.yaml").read_text("utf-8")
    # a CR/LF in a contact (YAML's double-quoted escapes): a header smuggled into every receipt to 柯城区
    bad = registry.replace(
        "email: kecheng-report@example.invalid", 'email: "kecheng@x.invalid\\r\\nBcc: x@evil.invalid"'
    )
    assert bad != registry
    path = tmp_path / "registry.yaml"
    path.write_text(bad, encoding="utf-8")
    result = closeout(make_env(f"sqlite:///{tmp_path / 'c.db'}"), "check-registry", CLOSEOUT_REGISTRY=str(path))
    assert result.returncode == 1 and "柯城区(330802)" in result.stdout and "contact" in result.stdout, result.stdout


def test_issue_numbers_follow_the_report_date_on_a_store_made_before_they_existed(db_url, ctx_for, tmp_path, smtp_sink):
    """A store from before 第N期 (no bulletin_issue table) with two published days: opened by today's code, the days
    take their numbers by report date, whatever is rendered first, and a 更正 of the first carries its number."""
    from closeout.publish.masthead import issue_of
    from closeout.store.context import Context

    inbox = tmp_path / "inbox"
    march_18 = copy_day(SAMPLE_INBOX / "2022-03-18", inbox, "2022-03-18")
    copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    ctx = ctx_for(db_url, inbox)
    for day in (date(2022, 3, 18), DAY):
        close_day(ctx, day)
        publish(ctx, day, smtp_connect(smtp_sink))
    ctx.store.dispose()
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE bulletin_issue"))  # what the older commit's store lacks
    engine.dispose()
    upgraded = Context.from_env()
    assert [issue_of(upgraded, d).number for d in (date(2022, 3, 18), DAY)] == [1, 2]
    change_isolation_new(march_18 / "330802.csv", 126, "流调复核")  # a correction of the published 18th
    close_day(upgraded, date(2022, 3, 18))
    pipeline.render_bulletin(upgraded, DAY)  # the later day rendered first: nothing is renumbered
    correction = pipeline.render_bulletin(upgraded, date(2022, 3, 18))
    assert correction.kind == "correction"
    assert "第1期" in (correction.folder(upgraded) / "bulletin.txt").read_text(encoding="utf-8")
    assert [issue_of(upgraded, d).number for d in (date(2022, 3, 18), DAY)] == [1, 2]


def test_one_contact_no_mail_can_carry_holds_back_only_its_own_receipt(db_url, ctx_for, tmp_path, smtp_sink):
    from closeout.deliver import notices

    registry = (Path(__file__).resolve().parents[2] / "include" / "registry" / "quzhou.yaml").read_text("utf-8")
    path = tmp_path / "registry.yaml"
    path.write_text(
        registry.replace(
            "email: kecheng-report@example.invalid", 'email: "kecheng@x.invalid\\r\\nBcc: x@evil.invalid"'
        ),
        encoding="utf-8",
    )
    inbox = tmp_path / "inbox"
    copy_day(SAMPLE_INBOX / DAY.isoformat(), inbox, DAY.isoformat())
    ctx = ctx_for(db_url, inbox, CLOSEOUT_REGISTRY=str(path))
    close_day(ctx)
    due = notices.receipts_due(ctx, DAY)
    assert len(due) == 6
    with pytest.raises(notices.UnaddressableNotices, match="330802"):
        notices.send_notices(ctx, due, "closeout@test.invalid", smtp_connect(smtp_sink))
    mailed = received_mails(smtp_sink.folder)
    assert len(mailed) == 5 and not any("evil" in str(m["To"]) or "kecheng" in str(m["To"]) for m in mailed)
    path.write_text(registry, encoding="utf-8")  # the registry fixed: the held-back receipt goes, once
    fixed = ctx_for(db_url, inbox, CLOSEOUT_REGISTRY=str(path))
    [receipt] = notices.send_notices(
        fixed, notices.receipts_due(fixed, DAY), "closeout@test.invalid", smtp_connect(smtp_sink)
    )
    assert receipt.unit_code == "330802" and len(received_mails(smtp_sink.folder)) == 6
