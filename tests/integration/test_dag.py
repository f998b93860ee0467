"""The DAG: integrity and policy (parse time, no heavy imports, tags, retries), and end-to-end dag.test() runs
against a real SMTP server on loopback and both stores, on a clean day, a missing unit and a rejected file."""

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import ROOT, SAMPLE_INBOX, copy_day, received_mails

DAG_FILE = ROOT / "dags" / "daily_closeout.py"
HEAVY = ("pandas", "great_expectations", "openpyxl", "sqlalchemy", "jinja2", "weasyprint")
PARSE_BUDGET_SECONDS = 1.0  # for the DAG file itself, on top of importing airflow.sdk


def fresh_python(code: str, **env: str) -> list[str]:
    """Run code in a new interpreter (nothing imported yet) with extra environment; its output lines."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ, **env}
    )
    return result.stdout.strip().splitlines()


@pytest.fixture(scope="module")
def national_registry(tmp_path_factory):
    from bench.generate import generate_registry

    return generate_registry("country", tmp_path_factory.mktemp("national") / "registry.yaml")


@pytest.mark.parametrize("scale", ["city", "country"])
@pytest.mark.parametrize("dag_file", sorted(p.name for p in (ROOT / "dags").glob("*.py")))
def test_dag_file_parses_fast_without_heavy_imports(dag_file, scale, request):
    """At every scale: nothing heavy is imported, and a national registry (2,850 units) is not parsed — its units
    are too many for a pick list, and the dag-processor parses every file again every few seconds."""
    from bench.scenarios import dag_parse

    registry = {} if scale == "city" else {"CLOSEOUT_REGISTRY": str(request.getfixturevalue("national_registry"))}
    parsed = dag_parse((ROOT / "dags" / dag_file,), CLOSEOUT_DB_URL="postgresql://nowhere.invalid/none", **registry)
    assert parsed.seconds < PARSE_BUDGET_SECONDS
    assert not parsed.modules & set(HEAVY), parsed.modules
    if scale == "country":
        assert not parsed.registry_parsed


def test_dagbag_integrity(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    assert sorted(bag.dags) == ["closeout_intake", "closeout_mark_absent", "closeout_reclose_range", "daily_closeout"]
    for dag in bag.dags.values():
        assert {"closeout", "日清日结"} <= set(dag.tags)
        assert dag.doc_md and "runbook" in dag.doc_md and "| 任务 task |" in dag.doc_md
        assert "\n\n|" not in dag.doc_md.split("| 任务 task |")[1].split("\n\n")[0], "one table, no blank rows"
        for task in dag.tasks:
            assert task.on_failure_callback, (dag.dag_id, task.task_id)  # ops hear of every failure
            if dag.schedule is not None:
                assert task.retries >= 1, task.task_id
    dag = bag.dags["daily_closeout"]
    assert {t.task_id for t in dag.tasks} == {
        "plan_unit_groups",
        "load_unit_group",
        "send_receipts",
        "reconcile_day",
        "recheck_later_days",
        "render_bulletin",
        "needs_signoff",
        "sign_off",
        "email_bulletin",
        "confirm_closeout",
    }
    # the email waits for the sign-off when one is needed, and goes without it only when none is (skipped)
    assert dag.get_task("email_bulletin").upstream_task_ids == {"render_bulletin", "sign_off"}
    assert dag.get_task("email_bulletin").trigger_rule == "none_failed"
    assert dag.get_task("sign_off").upstream_task_ids == {"needs_signoff"}
    assert {t.task_id for t in bag.dags["closeout_intake"].tasks} == {
        "judge_arrivals",
        "send_receipts",
        "send_reminders",
        "reissue_edition",
        "watch_deadline",
    }
    assert dag.get_task("reconcile_day").trigger_rule == "all_done"
    assert (dag.timetable.expression, str(dag.timetable.timezone)) == ("0 21 * * *", "Asia/Shanghai")
    intake = bag.dags["closeout_intake"].timetable
    assert (intake.expression, str(intake.timezone)) == ("*/2 12-23 * * *", "Asia/Shanghai")
    form = bag.dags["closeout_mark_absent"].params
    assert {"report_date", "unit", "reason"} <= set(form)
    # re-closing a published day: the units as a pick list of Chinese names, and a reason
    reclose = dag.params
    assert reclose.get_param("units").schema["examples"][0] == "330802"
    assert reclose.get_param("units").schema["values_display"]["330802"] == "柯城区（330802）"
    assert reclose.get_param("reason").schema["type"] == ["null", "string"]
    # the bulletin's mail is retried with growing waits while the SMTP server refuses
    email = dag.get_task("email_bulletin")
    assert email.retries == 6 and email.retry_exponential_backoff == 2.0


def test_cutoff_comes_from_the_environment():
    probe = f"import runpy; d = runpy.run_path({str(DAG_FILE)!r})['closeout_dag']; print(d.timetable.expression)"
    assert fresh_python(probe, CLOSEOUT_CUTOFF="20:30")[-1] == "30 20 * * *"


# ---- end to end ------------------------------------------------------------------------------------------


def run_day(monkeypatch, env: dict, report_date: str, smtp_sink, conf: dict | None = None):
    """`dag.test()` for one report date (the logical date's day), with the environment an operator would set."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        f"smtp://{smtp_sink.hostname}:{smtp_sink.port}"
        "?disable_ssl=true&disable_tls=true&from_email=closeout%40test.invalid",
    )
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAG_FILE)).dags["daily_closeout"]
    for task in dag.tasks:  # dag.test() sleeps through retry delays: a second, not minutes, in tests
        task.retry_delay = timedelta(seconds=1)
    logical = datetime.fromisoformat(report_date).replace(hour=21, tzinfo=ZoneInfo("Asia/Shanghai"))
    run = dag.test(logical_date=logical, run_conf=conf)
    return {(ti.task_id, ti.map_index): ti for ti in run.get_task_instances()}, run


def emails(smtp_sink):
    """The bulletin emails the sink received (receipts to the counties go through the same server)."""
    return [m for m in received_mails(smtp_sink.folder) if "duty@test.invalid" in m["To"]]


def receipts(smtp_sink):
    return [m for m in received_mails(smtp_sink.folder) if m["Subject"].startswith(("【回执】", "【退回】"))]


def attachment_rows(message):
    import csv
    import io

    attachment = next(message.iter_attachments())  # the spreadsheet; the PDF follows
    return list(csv.DictReader(io.StringIO(attachment.get_payload(decode=True).decode("utf-8-sig"))))


@pytest.fixture
def e2e(airflow_db, db_url, make_env, ctx_for, tmp_path):
    """The 18th closed out (without Airflow, to save time) so the 19th's stock balances run end to end."""
    from closeout.close.load import load_group
    from closeout.close.reconcile import reconcile_day

    inbox = tmp_path / "inbox"
    copy_day(SAMPLE_INBOX / "2022-03-18", inbox, "2022-03-18")
    folder = copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    ctx = ctx_for(db_url, inbox)
    yesterday = datetime(2022, 3, 18).date()
    for group in ctx.registry.groups():
        load_group(ctx, yesterday, list(group.codes))
    assert set(reconcile_day(ctx, yesterday).values()) == {"cleared", "absent"}
    ctx.store.dispose()
    return make_env(db_url, inbox), folder, db_url


def states(tis):
    return {key: str(ti.state) for key, ti in tis.items()}


def published_unattended(tis) -> bool:
    """Every task succeeded; the sign-off was not needed, so it was skipped."""
    others = {key: state for key, state in states(tis).items() if key != ("sign_off", -1)}
    return set(others.values()) == {"success"} and states(tis)[("sign_off", -1)] == "skipped"


def test_clean_day_sends_one_email_with_totals_and_rerun_sends_none(e2e, monkeypatch, smtp_sink, tmp_path):
    env, folder, db_url = e2e
    tis, run = run_day(monkeypatch, env, "2022-03-19", smtp_sink)
    assert published_unattended(tis) and str(run.state) == "success"
    labels = sorted(ti.rendered_map_index for (task, _), ti in tis.items() if task == "load_unit_group")
    assert labels == sorted(["柯城区", "衢江区", "常山县", "开化县", "龙游县", "江山市", "市本级"])
    (message,) = emails(smtp_sink)
    assert message["Subject"] == "衢州市疫情防控工作日报 2022年3月19日"
    assert message["To"] == "duty@test.invalid, office@test.invalid"
    envelopes = [p.read_text(encoding="utf-8").split() for p in sorted(smtp_sink.folder.glob("*.eml.rcpt"))]
    assert ["duty@test.invalid", "office@test.invalid"] in envelopes
    assert sorted(m["To"] for m in receipts(smtp_sink)) == sorted(
        f"{slug}-report@example.invalid"
        for slug in ("kecheng", "qujiang", "changshan", "kaihua", "longyou", "jiangshan")
    )  # one receipt per county file, to the county's contact
    rows = attachment_rows(message)
    for metric in ("sampled", "tested", "new_confirmed", "isolation_central", "donations_value_yuan"):
        units = [float(r["value"]) for r in rows if r["metric"] == metric and r["unit_code"] != "330800" and r["value"]]
        (total,) = [float(r["value"]) for r in rows if r["metric"] == metric and r["unit_code"] == "330800"]
        assert len(units) == 6 and total == sum(units), metric
    assert (tmp_path / "outbox" / "2022-03-19" / "01" / "bulletin.html").exists()

    from days import snapshot

    before = snapshot(db_url)
    tis, _ = run_day(monkeypatch, env, "2022-03-19", smtp_sink)
    assert published_unattended(tis)
    assert len(emails(smtp_sink)) == 1 and len(receipts(smtp_sink)) == 6  # the re-run sent nothing
    assert snapshot(db_url) == before  # and changed nothing


def test_the_trigger_forms_report_date_decides_the_day_not_the_clock_or_the_logical_date(e2e, monkeypatch, smtp_sink):
    env, _, _ = e2e
    tis, run = run_day(monkeypatch, env, "2026-11-29", smtp_sink, conf={"report_date": "2022-03-19"})
    assert published_unattended(tis) and str(run.state) == "success"
    (message,) = emails(smtp_sink)
    assert message["Subject"] == "衢州市疫情防控工作日报 2022年3月19日"


def test_missing_unit_fails_its_task_and_the_bulletin_still_goes(e2e, monkeypatch, smtp_sink):
    env, folder, _ = e2e
    (folder / "龙游县.csv").unlink()
    tis, run = run_day(monkeypatch, env, "2022-03-19", smtp_sink)
    failed = [ti for ti in tis.values() if str(ti.state) == "failed"]
    assert sorted((ti.task_id, ti.rendered_map_index) for ti in failed) == [
        ("confirm_closeout", None),
        ("load_unit_group", "龙游县"),
    ]
    assert str(tis[("email_bulletin", -1)].state) == "success"
    assert str(run.state) == "failed"  # the day is not closed until 龙游 reports
    (message,) = emails(smtp_sink)
    text = message.get_body(("plain",)).get_content()
    assert "（龙游县数据截至发布时未报送，按缺报处理，次日补报后订正）" in text
    longyou = [r for r in attachment_rows(message) if r["unit_code"] == "330825"]
    assert {r["status"] for r in longyou} == {"missing"}
    assert {r["value"] for r in longyou if r["kind"] != "C"} == {""}  # only the carried cumulative has a value

    # 龙游 reports late; the re-run sends one 补报 edition with its figures, a further re-run sends nothing
    copy_day(SAMPLE_INBOX / "2022-03-19", folder.parent, "2022-03-19")
    tis, run = run_day(monkeypatch, env, "2022-03-19", smtp_sink)
    assert published_unattended(tis) and str(run.state) == "success"
    first, late_report = emails(smtp_sink)
    assert late_report["Subject"] == "衢州市疫情防控工作日报 2022年3月19日（补报）"
    assert "龙游县数据于日报发出后补报，已计入本期各项合计。" in late_report.get_body(("plain",)).get_content()
    run_day(monkeypatch, env, "2022-03-19", smtp_sink)
    assert len(emails(smtp_sink)) == 2


def test_rejected_file_fails_its_task_is_quarantined_and_named_in_the_bulletin(
    e2e, monkeypatch, smtp_sink, tmp_path, capfd
):
    env, folder, _ = e2e
    path = folder / "330803.csv"  # 衢江, GBK with Chinese labels
    text = path.read_bytes().decode("gbk")
    text = "\n".join(("阴性,-3,330803,2022/3/19," if line.startswith("阴性,") else line) for line in text.splitlines())
    path.write_bytes((text + "\n").encode("gbk"))
    tis, _ = run_day(monkeypatch, env, "2022-03-19", smtp_sink)
    failed = [ti for ti in tis.values() if str(ti.state) == "failed" and ti.task_id == "load_unit_group"]
    assert [ti.rendered_map_index for ti in failed] == ["衢江区"]
    assert failed[0].try_number == 1  # a data problem is not retried
    log = capfd.readouterr()
    log = log.out + log.err
    assert "Task exited" in log and "[rule: non_negative]" in log  # the task's log ends on the one-line reason
    assert "Traceback" not in log and "Task failed with exception" not in log  # and shows no stack trace
    assert list((tmp_path / "archive" / "quarantine" / "2022-03-19" / "330803").glob("*330803.csv"))
    (message,) = emails(smtp_sink)
    body = message.get_body(("plain",)).get_content()
    assert "衢江区报送的数据未通过核验，已退回更正：阴性“-3”，不得为负数" in body and "[rule:" not in body
    assert str(tis[("email_bulletin", -1)].state) == "success"
    [returned] = [m for m in receipts(smtp_sink) if m["To"] == "qujiang-report@example.invalid"]
    assert returned["Subject"].startswith("【退回】衢江区3月19日日报")
    assert "[rule: non_negative]" in returned.get_content()  # the county hears why, the same day


def test_airflow_cli_closes_out_the_day_with_one_email(airflow_db, postgres_url, make_env, smtp_sink, tmp_path):
    """The acceptance command itself: `airflow dags test daily_closeout 2022-03-19` with CLOSEOUT_INBOX,
    CLOSEOUT_ARCHIVE, CLOSEOUT_DB_URL, CLOSEOUT_RECIPIENTS and AIRFLOW_CONN_SMTP_DEFAULT pointing at a test
    directory, the machine's PostgreSQL and an SMTP server on loopback."""
    from closeout.checks.validate import collapse
    from closeout.core.settings import load_settings
    from closeout.intake.discovery import discover
    from closeout.intake.rows import parse_submission
    from closeout.store.context import Context

    inbox = tmp_path / "inbox"
    copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    env = {
        **os.environ,
        **make_env(postgres_url, inbox),
        "AIRFLOW_CONN_SMTP_DEFAULT": f"smtp://{smtp_sink.hostname}:{smtp_sink.port}"
        "?disable_ssl=true&disable_tls=true&from_email=closeout%40test.invalid",
    }
    airflow = Path(sys.executable).parent / "airflow"
    result = subprocess.run(
        [str(airflow), "dags", "test", "daily_closeout", "2022-03-19"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (message,) = emails(smtp_sink)
    rows = attachment_rows(message)
    totals = {r["metric"]: float(r["value"]) for r in rows if r["unit_code"] == "330800" and r["value"]}
    ctx = Context(load_settings(env))
    expected: dict[str, float] = {}
    for code, (path,) in discover(inbox, datetime(2022, 3, 19).date(), ctx.registry).figure_files.items():
        sub = parse_submission(path, ctx.registry.get(code), datetime(2022, 3, 19).date(), ctx.catalogue, ctx.registry)
        for fig in collapse(sub):
            expected[fig.metric] = expected.get(fig.metric, 0) + fig.value
    assert {k: v for k, v in totals.items() if k != "confirmed_cumulative"} == expected


# The sign-off rules are checked on both stores in test_editions; through the DAG, the production store is enough.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_an_all_missing_day_is_never_mailed_unread(e2e, monkeypatch, smtp_sink, tmp_path):
    """CLOSEOUT_SIGNOFF's default (when-incomplete): under half the units cleared, the edition waits for a person;
    `airflow dags test` has nobody to ask, so it says so and sends nothing."""
    env, folder, db_url = e2e
    for path in folder.iterdir():
        path.unlink()
    tis, run = run_day(monkeypatch, env, "2022-03-19", smtp_sink)
    assert str(tis[("needs_signoff", -1)].state) == "failed"
    assert {str(tis[(t, -1)].state) for t in ("sign_off", "email_bulletin")} == {"upstream_failed"}
    assert emails(smtp_sink) == [] and str(run.state) == "failed"
    from closeout.store.context import Context

    ctx = Context.from_env()
    [request] = ctx.store.rows("select_signoffs", {"report_date": "2022-03-19"})
    assert request["decision"] == "pending" and "仅0/6个必报单位已结清，不足50%" in request["reasons"]
    assert (tmp_path / "outbox" / "2022-03-19" / "01" / "bulletin.html").exists()  # the edition waits, rendered


# The sign-off rules are checked on both stores in test_editions; through the DAG, the production store is enough.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_load_that_failed_for_infrastructure_is_never_published_unattended(e2e, monkeypatch, smtp_sink):
    """Whatever CLOSEOUT_SIGNOFF says: a fan-out Airflow refused (more groups than max_map_length) leaves every
    county unloaded, and a bulletin built from that must not go out on its own."""
    env, _, _ = e2e
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "3")
    tis, run = run_day(monkeypatch, {**env, "CLOSEOUT_SIGNOFF": "off"}, "2022-03-19", smtp_sink)
    assert str(tis[("reconcile_day", -1)].state) == "success"  # ops still see the day's statuses
    assert str(tis[("needs_signoff", -1)].state) == "failed" and emails(smtp_sink) == []
    from closeout.store.context import Context

    [request] = Context.from_env().store.rows("select_signoffs", {"report_date": "2022-03-19"})
    assert "基础设施故障" in request["reasons"]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_published_day_reclosed_from_the_form_loads_only_its_units_and_mails_one_correction(
    e2e, monkeypatch, smtp_sink
):
    """The form's values (units, reason) through `dag.test(run_conf=…)`: one mapped load, signed corrections."""
    env, folder, _ = e2e
    tis, _ = run_day(monkeypatch, env, "2022-03-19", smtp_sink)
    assert published_unattended(tis)

    def six_more(line: str) -> str:  # six more isolated that day (new and in isolation), and no note
        metric, value, rest = line.split(",", 2)
        if metric not in ("isolation_new", "isolation_central"):
            return line
        return f"{metric},{int(value) + 6},{rest.rsplit(',', 1)[0]},"

    lines = (folder / "330802.csv").read_text(encoding="utf-8").splitlines()
    (folder / "330802.csv").write_text("\n".join(map(six_more, lines)) + "\n", encoding="utf-8")
    bare = {"report_date": "2022-03-19", "units": ["柯城区"]}
    tis, run = run_day(monkeypatch, env, "2022-03-19", smtp_sink, conf=bare)
    assert states(tis)[("plan_unit_groups", -1)] == "failed" and len(emails(smtp_sink)) == 1  # no reason: refused
    conf = {**bare, "reason": "县里电话核实：漏报一处隔离点"}
    tis, run = run_day(monkeypatch, env, "2022-03-19", smtp_sink, conf=conf)
    assert [key for key in tis if key[0] == "load_unit_group"] == [("load_unit_group", 0)]  # only 柯城
    assert published_unattended(tis) and str(run.state) == "success"
    correction = emails(smtp_sink)[-1]
    assert correction["Subject"] == "衢州市疫情防控工作日报 2022年3月19日（更正）"
    assert "原因：县里电话核实：漏报一处隔离点" in correction.get_body(("plain",)).get_content()
    from closeout.store.context import Context

    signed = Context.from_env().store.rows("select_corrections_register", {"since": "2022-03-19"})
    assert sorted((r["metric"], r["kind"], r["recorded_by"]) for r in signed) == [
        ("isolation_central", "correction", "dag_test"),  # signed by the user who triggered the run
        ("isolation_new", "correction", "dag_test"),
    ]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_intake_hands_a_due_batch_of_changes_to_one_closeout_run(e2e, monkeypatch, smtp_sink):
    """After publication, a correction intake loads is gathered for CLOSEOUT_CORRECTION_BATCH minutes, then
    intake creates one daily_closeout run for that day (its id names the batch); a later tick creates no other."""
    env, folder, _ = e2e
    tis, _ = run_day(monkeypatch, env, "2022-03-19", smtp_sink)
    assert published_unattended(tis)
    lines = (folder / "330802.csv").read_text(encoding="utf-8").splitlines()
    (folder / "330802.csv").write_text(
        "\n".join(
            f"{ln.rstrip(',')},县里核实后补充说明" if ln.startswith("needs_resolved,") else ln for ln in lines
        ).replace("needs_resolved,233", "needs_resolved,240")
        + "\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("CLOSEOUT_CORRECTION_BATCH", "0")
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun

    intake = DagBag(dag_folder=str(ROOT / "dags" / "closeout_intake.py")).dags["closeout_intake"]
    for minute in (0, 2):  # two ticks: the second finds the batch already handed over
        tick = intake.test(logical_date=datetime(2022, 3, 19, 22, minute, tzinfo=ZoneInfo("Asia/Shanghai")))
        reissue = {ti.task_id: str(ti.state) for ti in tick.get_task_instances()}["reissue_edition"]
        assert reissue == ("success" if minute == 0 else "skipped"), reissue
    [run] = [r for r in DagRun.find(dag_id="daily_closeout") if r.run_id.startswith("reissue__2022-03-19__")]
    assert run.conf == {"report_date": "2022-03-19", "reissue": True, "units": ["330802"]}


def test_a_range_of_published_days_is_reclosed_in_one_run_with_one_summary_mail(
    airflow_db, db_url, ctx_for, make_env, monkeypatch, smtp_sink, tmp_path
):
    """closeout_reclose_range through `dag.test(run_conf=…)`: the 18th and 19th re-closed in order, one summary
    mail, no 更正 mail per day; the same range again mails nothing; a backwards range fails before changing."""
    from conftest import publish
    from days import close_day, set_line, smtp_connect

    from closeout.publish.editions import editions_of

    inbox = tmp_path / "inbox"
    march_18 = copy_day(SAMPLE_INBOX / "2022-03-18", inbox, "2022-03-18")
    copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    ctx = ctx_for(db_url, inbox)
    days = [datetime(2022, 3, 18).date(), datetime(2022, 3, 19).date()]
    for day in days:
        close_day(ctx, day)
        publish(ctx, day, smtp_connect(smtp_sink))
    set_line(march_18 / "330802.csv", "new_confirmed", 2)
    set_line(march_18 / "330802.csv", "new_asymptomatic", 2)
    bulletins = len(received_mails(smtp_sink.folder))
    conf = {"from_date": "2022-03-18", "through_date": "2022-03-19", "units": ["柯城区"], "reason": "流调复核"}

    def run_range(conf):
        for key, value in make_env(db_url, inbox).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv(
            "AIRFLOW_CONN_SMTP_DEFAULT",
            f"smtp://{smtp_sink.hostname}:{smtp_sink.port}?disable_ssl=true&disable_tls=true",
        )
        from airflow.dag_processing.dagbag import DagBag

        dag = DagBag(dag_folder=str(ROOT / "dags" / "closeout_reclose_range.py")).dags["closeout_reclose_range"]
        run = dag.test(logical_date=datetime(2022, 3, 25, 10, tzinfo=ZoneInfo("Asia/Shanghai")), run_conf=conf)
        return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}, run

    tis, run = run_range(conf)
    assert set(tis.values()) == {"success"} and str(run.state) == "success", tis
    [summary] = received_mails(smtp_sink.folder)[bulletins:]
    assert summary["Subject"] == "【重新结清】2022-03-18 至 2022-03-19：2 天已发布的数字有变化"
    assert (
        "2022-03-18 更正 2 项，重算 1 项；已生成第2版（更正），未单独发送" in summary.get_body(("plain",)).get_content()
    )
    assert [len(editions_of(ctx, day)) for day in days] == [2, 1]  # the 19th only recalculated
    signed = ctx.store.rows("select_corrections_register", {"since": "2022-03-18"})
    assert {(r["kind"], r["recorded_by"]) for r in signed} == {("correction", "dag_test"), ("recalculated", "dag_test")}

    tis, run = run_range(conf)  # the same range again: nothing changes, nothing is mailed
    assert set(tis.values()) == {"success"}
    assert len(received_mails(smtp_sink.folder)) == bulletins + 1
    assert len(ctx.store.rows("select_corrections_register", {"since": "2022-03-18"})) == len(signed)
    tis, run = run_range({**conf, "from_date": "2022-03-19", "through_date": "2022-03-18"})
    assert tis["reclose_days"] == "failed" and tis["confirm_reclosed"] == "upstream_failed"
    assert str(run.state) == "failed" and len(received_mails(smtp_sink.folder)) == bulletins + 1
