"""The close-out as it runs in production: CeleryExecutor with two workers, PostgreSQL for Airflow's metadata
and (separately) the reporting store, Redis as the broker, the FAB auth manager, an SMTP server on loopback.

One cluster serves the module, with 审核签发 on every edition (CLOSEOUT_SIGNOFF=always): nothing is mailed until
an operator approves through the REST call the UI makes. The first day runs undisturbed; on the second a worker
is killed in the middle of a county load and the task must be retried on the other worker with nothing
duplicated; then a Viewer's approval is refused, a rejection sends nothing, an approval sends the edition.
Timings (trigger to success, per task) are printed. Everything started here is stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import time
import unicodedata
from pathlib import Path

import pytest
from cluster import DAG_ID, ROOT, AirflowCluster, deployment_env
from conftest import SAMPLE_INBOX, copy_day, fresh_database, received_mails, running_sink
from sqlalchemy import bindparam, create_engine, text

from closeout.core.clock import now_local
from closeout.core.registry import load_registry

pytestmark = pytest.mark.services  # a whole cluster on PostgreSQL and Redis

REDIS_URL = os.environ.get("CLOSEOUT_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
WORKERS = ("worker-a", "worker-b")
WORKER_CONCURRENCY = 2  # four task slots in all ...
LOAD_POOL_SLOTS = 2  # ... of which county loads may take only two
CLEAN_DAY, KILL_DAY = "2022-03-18", "2022-03-19"
HELD_DAY, APPROVED_DAY = "2022-03-20", "2022-03-21"  # nobody reported: under the quorum, held for 审核签发
RUN_TIMEOUT = 600
UNIT_CODES = {"330802", "330803", "330822", "330824", "330825", "330881"}


@pytest.fixture(scope="module")
def redis_broker():
    """An empty Redis database for the broker. Fails (never skips) when Redis is not there."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is required at {REDIS_URL} (set CLOSEOUT_TEST_REDIS_URL): {exc}")
    client.flushdb()
    yield REDIS_URL
    client.flushdb()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, redis_broker):
    from closeout.deliver.mailsink import free_port

    work = tmp_path_factory.mktemp("cluster")
    for day in (CLEAN_DAY, KILL_DAY):
        copy_day(SAMPLE_INBOX / day, work / "inbox", day)
    api_port = free_port()
    with (
        running_sink(work / "mail") as sink,
        fresh_database("closeout_meta") as meta_url,
        fresh_database("closeout_store") as store_url,
    ):
        env = deployment_env(
            work,
            api_port,
            meta_url,
            store_url,
            sink.port,
            "CeleryExecutor",
            AIRFLOW__CORE__AUTH_MANAGER="airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
            AIRFLOW__CELERY__BROKER_URL=redis_broker,
            AIRFLOW__CELERY__RESULT_BACKEND="db+" + meta_url.replace("+psycopg2", ""),
            AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS="closeout.orchestration.worker.CELERY_CONFIG",  # as docker-compose.yaml
            # Only the runs this test triggers: no scheduled run for today's date.
            AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
            # A dead worker's task is noticed after 20 s instead of 5 min.
            AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="20",
            AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL="5",
            CLOSEOUT_LOAD_POOL_SLOTS=str(LOAD_POOL_SLOTS),
            CLOSEOUT_SIGNOFF="always",
        )
        deployment = AirflowCluster(work, env, api_port, WORKERS, WORKER_CONCURRENCY)
        deployment.store = create_engine(store_url)  # the test's own reads of the reporting store
        try:
            deployment.initialise()
            deployment.start()
            deployment.ready_seconds = deployment.wait_until_ready()
            deployment.create_users()
            deployment.mail_dir = work / "mail"
            deployment.archive_dir = work / "archive"
            deployment.inbox_dir = work / "inbox"
            yield deployment
        finally:
            deployment.stop()
            deployment.store.dispose()
            keep = os.environ.get("CLOSEOUT_TEST_KEEP_LOGS")
            if keep:
                shutil.copytree(deployment.logs, keep, dirs_exist_ok=True)
            leftovers = deployment.leftovers()
            assert not leftovers, f"still running after stop: {leftovers}"


# ---- helpers ---------------------------------------------------------------------------------------------


def trigger(cluster: AirflowCluster, report_date: str) -> tuple[str, float]:
    """Trigger the close-out of a report date through the REST API, as an operator would; (run_id, t0)."""
    response = cluster.api(
        "POST",
        f"/dags/{DAG_ID}/dagRuns",
        json={"logical_date": f"{report_date}T21:00:00+08:00", "dag_run_id": f"distributed__{report_date}"},
    )
    assert response.status_code == 200, response.text
    return response.json()["dag_run_id"], time.monotonic()


def task_instances(cluster: AirflowCluster, run_id: str) -> list[dict]:
    return cluster.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", params={"limit": 100})["task_instances"]


def wait_for_run(cluster: AirflowCluster, run_id: str, started: float, on_poll=None) -> tuple[str, float]:
    deadline = started + RUN_TIMEOUT
    while time.monotonic() < deadline:
        cluster.assert_alive()
        state = cluster.get(f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
        if state in ("success", "failed"):
            return state, time.monotonic() - started
        if on_poll:
            on_poll()
        time.sleep(0.5)
    raise AssertionError(f"{run_id} did not finish within {RUN_TIMEOUT} s:\n{cluster.log_tails()}")


def print_timings(capsys, title: str, seconds: float, tis: list[dict]) -> None:
    lines = [
        f"\n== {title}: trigger → {seconds:.1f} s",
        f"{'task':<34}{'worker':<10}{'try':>4}{'queued→start':>14}{'run':>8}",
    ]
    for ti in sorted(tis, key=lambda t: (t["start_date"] or "", t["map_index"])):
        label = ti["task_id"] + (f"[{ti['rendered_map_index'] or ti['map_index']}]" if ti["map_index"] >= 0 else "")
        wait = _seconds_between(ti.get("queued_when"), ti.get("start_date"))
        lines.append(
            f"{_pad(label, 34)}{ti['hostname'] or '-':<10}{ti['try_number']:>4}{wait:>13.1f}s{ti['duration'] or 0:>7.1f}s"
        )
    with capsys.disabled():
        print("\n".join(lines))


def _pad(text: str, width: int) -> str:
    """Left-justify by display width: a Chinese character takes two columns."""
    shown = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(1, width - shown)


def _seconds_between(earlier: str | None, later: str | None) -> float:
    from datetime import datetime

    if not earlier or not later:
        return 0.0
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


def most_at_once(tis: list[dict]) -> int:
    """The largest number of the task instances that were running at the same moment."""
    from datetime import datetime

    edges = sorted(
        (datetime.fromisoformat(ti[key]), step) for ti in tis for key, step in (("start_date", 1), ("end_date", -1))
    )  # at equal times an end (-1) sorts before a start (+1)
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def mails_for(cluster: AirflowCluster, report_date: str, receipts: bool = False) -> list:
    """The day's bulletin emails (or, with receipts=True, the receipts sent to the counties)."""
    month, day = int(report_date[5:7]), int(report_date[8:10])
    mails = [m for m in received_mails(cluster.mail_dir) if f"{month}月{day}日" in m["Subject"]]
    return [m for m in mails if m["Subject"].startswith(("【回执】", "【退回】")) == receipts]


def store_rows(cluster: AirflowCluster, sql: str, **params) -> list:
    statement = text(sql)
    expanding = [bindparam(k, expanding=True) for k, v in params.items() if isinstance(v, tuple)]
    if expanding:
        statement = statement.bindparams(*expanding)
    with cluster.store.connect() as conn:
        return conn.execute(statement, params).all()


def assert_day_closed_once(cluster: AirflowCluster, report_date: str) -> None:
    """The day's figures are in PostgreSQL exactly once, every county cleared, one email, one archived file."""
    statuses = dict(store_rows(cluster, "SELECT unit_code, status FROM unit_day WHERE report_date = :d", d=report_date))
    assert {code for code, status in statuses.items() if status == "cleared"} >= UNIT_CODES, statuses
    per_unit = store_rows(
        cluster,
        "SELECT unit_code, count(*) FROM submission WHERE report_date = :d GROUP BY unit_code",
        d=report_date,
    )
    assert {code for code, _ in per_unit} >= UNIT_CODES
    assert all(count == 1 for _, count in per_unit), per_unit
    figures = store_rows(
        cluster, "SELECT count(*) FROM figure WHERE report_date = :d AND source_sha256 <> 'derived'", d=report_date
    )
    assert figures[0][0] > 0
    duplicated_findings = store_rows(
        cluster,
        "SELECT unit_code, rule, metric, line, count(*) FROM finding WHERE report_date = :d"
        " GROUP BY unit_code, stage, severity, rule, metric, file_name, row_no, value, message, line HAVING count(*) > 1",
        d=report_date,
    )
    assert duplicated_findings == []
    assert store_rows(cluster, "SELECT count(*) FROM figure_revision WHERE report_date = :d", d=report_date)[0][0] == 0
    mails = mails_for(cluster, report_date)
    assert len(mails) == 1, [m["Subject"] for m in mails]
    receipts = mails_for(cluster, report_date, receipts=True)
    assert len(receipts) == len(UNIT_CODES), [m["Subject"] for m in receipts]  # one per file, even after the kill
    received = sorted(p.name for p in (cluster.inbox_dir / report_date).iterdir())
    archived = sorted(
        p.name.split("-", 1)[1]  # <sha16>-<file name>
        for p in (cluster.archive_dir / "archive" / report_date).rglob("*")
        if p.is_file() and p.suffix not in (".json", ".partial")
    )
    assert archived == received, "each file received is archived exactly once"


# ---- the runs --------------------------------------------------------------------------------------------


def test_clean_day_runs_across_both_workers(cluster, capsys):
    from closeout.core.vocabulary import APPROVE

    run_id, started = trigger(cluster, CLEAN_DAY)
    wait_for_signoff(cluster, run_id, started)
    assert mails_for(cluster, CLEAN_DAY) == []  # sign-off always: nothing before a person approves
    assert answer(cluster, run_id, cluster.users.ops, APPROVE, "同意发布").status_code == 200
    state, seconds = wait_for_run(cluster, run_id, started)
    tis = task_instances(cluster, run_id)
    print_timings(capsys, f"{CLEAN_DAY} (cluster ready in {cluster.ready_seconds:.0f} s)", seconds, tis)
    assert state == "success", cluster.log_tails()
    assert {ti["state"] for ti in tis} == {"success"}
    ran = tis
    assert {ti["hostname"] for ti in ran} <= set(WORKERS), "every task ran on one of the Celery workers"
    loads = [ti for ti in tis if ti["task_id"] == "load_unit_group"]
    assert len(loads) == 7 and {ti["pool"] for ti in loads} == {"closeout_unit_loads"}
    run_logs = Path(cluster.env["AIRFLOW_HOME"]) / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}"
    task_logs = sorted((run_logs / "task_id=load_unit_group").rglob("*.log"))
    assert len(task_logs) == len(loads)
    # Forked from a worker that imported Great Expectations before the task came: no load imports it again.
    texts = [task_log.read_text() for task_log in task_logs]
    assert not [t for t in texts if "Great Expectations: imported in" in t]
    submitted = store_rows(cluster, "SELECT DISTINCT unit_code FROM submission WHERE report_date = :d", d=CLEAN_DAY)
    validated = sum("Great Expectations: already imported in this process" in t for t in texts)
    assert validated == len(submitted)  # each group here is one unit; one without a file validates nothing
    most = most_at_once(loads)
    with capsys.disabled():
        print(
            f"   county loads at once: at most {most} (pool slots {LOAD_POOL_SLOTS}, worker slots {len(WORKERS) * WORKER_CONCURRENCY})"
        )
    assert most == LOAD_POOL_SLOTS, "the pool, not the workers, caps the loads, and lets that many run together"
    assert_day_closed_once(cluster, CLEAN_DAY)
    mail = mails_for(cluster, CLEAN_DAY)[0]
    assert mail["To"] and "duty@test.invalid" in mail["To"]


def test_worker_killed_mid_load_is_retried_on_the_other_worker(cluster, capsys):
    groups = load_registry(ROOT / "include" / "registry" / "quzhou.yaml").groups()  # map index order
    run_id, started = trigger(cluster, KILL_DAY)
    killed: dict = {}

    def kill_during_a_county_load():
        """Kill the first worker seen with a load that has archived its county's file but not yet stored it."""
        if killed:
            return
        for ti in task_instances(cluster, run_id):
            if (ti["task_id"], ti["state"]) != ("load_unit_group", "running") or ti["hostname"] not in WORKERS:
                continue
            codes = groups[ti["map_index"]].codes
            archived = any((cluster.archive_dir / "archive" / KILL_DAY / code).glob("*.json") for code in codes)
            stored = store_rows(
                cluster,
                "SELECT count(*) FROM submission WHERE report_date = :d AND unit_code IN :codes",
                d=KILL_DAY,
                codes=tuple(codes),
            )[0][0]
            if archived and not stored:
                cluster.kill(ti["hostname"])
                killed.update(
                    victim=ti["hostname"],
                    map_index=ti["map_index"],
                    try_number=ti["try_number"],
                    label=groups[ti["map_index"]].label,
                    codes=tuple(codes),
                    at=now_local(),
                )
                return

    def kill_then_approve():
        kill_during_a_county_load()
        approve_when_asked(cluster, run_id)

    state, seconds = wait_for_run(cluster, run_id, started, on_poll=kill_then_approve)
    tis = task_instances(cluster, run_id)
    assert killed, "no county load was ever seen under way: nothing was killed"
    victim = killed["victim"]
    survivor = next(name for name in WORKERS if name != victim)
    title = f"{KILL_DAY}, {victim} killed while loading {killed['label']} (archived, not yet stored)"
    print_timings(capsys, title, seconds, tis)
    assert state == "success", cluster.log_tails()
    tries = cluster.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/load_unit_group/{killed['map_index']}/tries")[
        "task_instances"
    ]
    by_try = {t["try_number"]: t for t in tries}
    assert by_try[killed["try_number"]]["hostname"] == victim
    assert by_try[killed["try_number"]]["state"] != "success"
    last = by_try[max(by_try)]
    assert (last["hostname"], last["state"]) == (survivor, "success"), tries
    with capsys.disabled():
        print(f"   retried: try {killed['try_number']} on {victim} ({by_try[killed['try_number']]['state']}) → "
              f"try {last['try_number']} on {survivor} (success)")  # fmt: skip
    # The killed try died with its worker: the figures were stored by the retry, after the kill.
    processed = store_rows(
        cluster,
        "SELECT unit_code, processed_at FROM submission WHERE report_date = :d AND unit_code IN :codes",
        d=KILL_DAY,
        codes=killed["codes"],
    )
    assert processed and all(at > killed["at"] for _, at in processed), (killed["at"], processed)
    assert_day_closed_once(cluster, KILL_DAY)
    assert_day_closed_once(cluster, CLEAN_DAY)  # the previous day untouched


def test_roles_ops_can_clear_a_task_viewer_can_only_look(cluster):
    run_id = f"distributed__{CLEAN_DAY}"
    clear = {"dag_run_id": run_id, "task_ids": ["render_bulletin"], "dry_run": True, "only_failed": False}
    viewer, ops = cluster.users.viewer, cluster.users.ops
    assert cluster.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", user=viewer).status_code == 200
    assert cluster.api("POST", f"/dags/{DAG_ID}/clearTaskInstances", user=viewer, json=clear).status_code == 403
    response = cluster.api("POST", f"/dags/{DAG_ID}/clearTaskInstances", user=ops, json=clear)
    assert response.status_code == 200, response.text
    assert [ti["task_id"] for ti in response.json()["task_instances"]] == ["render_bulletin"]
    assert cluster.api("GET", "/connections", user=ops).status_code == 403
    assert cluster.api("GET", "/variables", user=viewer).status_code == 403


def wait_for_signoff(cluster: AirflowCluster, run_id: str, started: float) -> dict:
    """Until the run's sign-off task waits for a person (it holds no worker slot meanwhile)."""
    while time.monotonic() < started + RUN_TIMEOUT:
        cluster.assert_alive()
        ti = cluster.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/sign_off")
        if ti["state"] == "awaiting_input":
            return cluster.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/sign_off/-1/hitlDetails")
        assert ti["state"] not in ("skipped", "failed", "upstream_failed"), ti
        time.sleep(1)
    raise AssertionError(f"{run_id}: the sign-off never asked:\n{cluster.log_tails()}")


def approve_when_asked(cluster: AirflowCluster, run_id: str) -> None:
    from closeout.core.vocabulary import APPROVE

    if cluster.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/sign_off")["state"] == "awaiting_input":
        assert answer(cluster, run_id, cluster.users.ops, APPROVE, "同意发布").status_code == 200


def answer(cluster: AirflowCluster, run_id: str, user, option: str, reason: str):
    """What the UI's Required Action form sends."""
    return cluster.api(
        "PATCH",
        f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/sign_off/-1/hitlDetails",
        user=user,
        json={"chosen_options": [option], "params_input": {"reason": reason}},
    )


def test_a_viewer_cannot_release_an_edition_a_rejection_sends_nothing_an_approval_sends_it(cluster):
    from closeout.core.vocabulary import APPROVE, REJECT
    from closeout.deliver.mailer import mailed_sha256

    viewer, ops = cluster.users.viewer, cluster.users.ops
    # rejected: nothing is sent, the reason is kept
    run_id, started = trigger(cluster, HELD_DAY)
    request = wait_for_signoff(cluster, run_id, started)
    assert "按设置每期都须审核签发" in request["body"] and "**已结清** 0/6" in request["body"]
    assert "**总体情况**" in request["body"]
    assert mails_for(cluster, HELD_DAY) == []  # held: nothing before a person answers
    assert answer(cluster, run_id, viewer, APPROVE, "看过了").status_code == 403  # read-only cannot release it
    response = answer(cluster, run_id, ops, REJECT, "全市无数据，先查收件目录")
    assert response.status_code == 200, response.text
    state, _ = wait_for_run(cluster, run_id, started)
    tis = {ti["task_id"]: ti["state"] for ti in task_instances(cluster, run_id)}
    assert (state, tis["sign_off"], tis["email_bulletin"]) == ("failed", "success", "failed")
    assert mails_for(cluster, HELD_DAY) == []
    [row] = store_rows(
        cluster, "SELECT decision, decided_by, comment FROM edition_signoff WHERE report_date = :d", d=HELD_DAY
    )
    assert tuple(row) == ("rejected", ops[0], "全市无数据，先查收件目录")

    # approved: sent once, exactly the edition that was approved
    run_id, started = trigger(cluster, APPROVED_DAY)
    wait_for_signoff(cluster, run_id, started)
    assert answer(cluster, run_id, ops, APPROVE, "确认各县停报，同意发布").status_code == 200
    wait_for_run(cluster, run_id, started)
    tis = {ti["task_id"]: ti["state"] for ti in task_instances(cluster, run_id)}
    assert tis["email_bulletin"] == "success", cluster.log_tails()
    [mail] = mails_for(cluster, APPROVED_DAY)
    # what goes out is the approved edition's signed copy: the same, naming the approver as 签发人
    draft, signed = store_rows(
        cluster,
        "SELECT edition_no, content_sha256 FROM edition WHERE report_date = :d ORDER BY edition_no",
        d=APPROVED_DAY,
    )
    assert mailed_sha256(mail) == signed[1] != draft[1]
    assert f"签发人：{ops[0]}" in mail.get_body(("plain",)).get_content()


# ---- 日清日结看板: the board plugin on this deployment (FAB roles) -------------------------------------------


def board_call(cluster: AirflowCluster, method: str, path: str, user=None, **kwargs):
    import httpx

    headers = kwargs.pop("headers", {})
    if user is not None:
        headers["Authorization"] = f"Bearer {cluster.token(user)}"
    return httpx.request(method, f"{cluster.base_url}/closeout/board{path}", headers=headers, timeout=60, **kwargs)


def test_the_board_refuses_strangers_lets_viewers_read_and_ops_rerun_a_county(cluster):
    """Runs last: the re-run it asks for clears 柯城区's load and what follows it in the clean day's run."""
    day, unit = CLEAN_DAY, "330802"
    unit_day = f"/unit-day?date={day}&unit={unit}&fragment=1"
    rerun = {"json": {"date": day, "unit": unit}, "headers": {"X-Closeout-Board": "1"}}
    sha = store_rows(cluster, "SELECT sha256 FROM submission WHERE report_date = :d AND unit_code = :u", d=day, u=unit)
    download = f"/files/{day}/{unit}/{sha[0][0]}"
    for method, path, kwargs in (("GET", "/", {}), ("GET", unit_day, {}), ("GET", "/api/matrix", {}),
                                 ("GET", "/punctuality.csv", {}), ("GET", download, {}), ("POST", "/rerun", rerun)):  # fmt: skip
        assert board_call(cluster, method, path, **kwargs).status_code == 401, path  # nobody
        forged = {**kwargs, "headers": {**kwargs.get("headers", {}), "Authorization": "Bearer not-a-token"}}
        assert board_call(cluster, method, path, **forged).status_code in (401, 403), path

    viewer, ops = cluster.users.viewer, cluster.users.ops
    plugins = cluster.get("/plugins", user=viewer)["plugins"]  # what the UI reads to put the board in its navigation
    [view] = [v for p in plugins if p["name"] == "closeout_board" for v in p["external_views"]]
    assert (view["name"], view["href"], view["destination"]) == ("日清日结看板", "/closeout/board/", "nav")
    page = board_call(cluster, "GET", f"/?first={day}&last={day}", viewer)
    assert page.status_code == 200 and f'data-status="cleared" data-date="{day}" data-unit="{unit}"' in page.text
    matrix = board_call(cluster, "GET", f"/api/matrix?first={day}&last={day}", viewer).json()
    statuses = {u["code"]: u["cells"][0]["status"] for g in matrix["groups"] for u in g["units"]}
    assert {code: statuses[code] for code in UNIT_CODES} == dict.fromkeys(UNIT_CODES, "cleared")
    detail = board_call(cluster, "GET", unit_day, viewer)
    assert detail.status_code == 200 and "load_unit_group[" in detail.text and "data-rerun" not in detail.text
    assert board_call(cluster, "GET", download, viewer).status_code == 403  # county files are for ops
    assert board_call(cluster, "POST", "/rerun", viewer, **rerun).status_code == 403
    assert board_call(cluster, "POST", "/rerun", ops, json=rerun["json"]).status_code == 403  # no board header: CSRF

    detail = board_call(cluster, "GET", unit_day, ops)
    assert "data-rerun" in detail.text
    archived = board_call(cluster, "GET", download, ops)
    assert archived.status_code == 200 and archived.content == (cluster.inbox_dir / day / "330802.csv").read_bytes()

    run_id = f"distributed__{day}"
    before = {(t["task_id"], t["map_index"]): t for t in task_instances(cluster, run_id)}
    response = board_call(cluster, "POST", "/rerun", ops, **rerun)
    assert response.status_code == 200, response.text
    result = response.json()
    index = result["map_index"]
    assert result["run_id"] == run_id and before[("load_unit_group", index)]["rendered_map_index"] == "柯城区"
    cleared = {(t["task_id"], t["map_index"]) for t in result["cleared"]}
    assert ("load_unit_group", index) in cleared and ("reconcile_day", -1) in cleared
    assert ("load_unit_group", (index + 1) % 6) not in cleared  # only that county's load
    ti = cluster.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/load_unit_group/{index}")
    assert ti["try_number"] > before[("load_unit_group", index)]["try_number"] or ti["state"] in (None, "scheduled",
                                                                                                   "queued", "running")  # fmt: skip
    deadline = time.monotonic() + RUN_TIMEOUT
    while ti["state"] != "success" and time.monotonic() < deadline:
        time.sleep(1)
        ti = cluster.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/load_unit_group/{index}")
    assert ti["state"] == "success" and ti["try_number"] > before[("load_unit_group", index)]["try_number"]
    assert_day_closed_once(cluster, day)  # loaded again: nothing twice
