"""One simulated afternoon under a real scheduler: the same-day loop as production runs it.

api-server, scheduler, dag-processor and triggerer on loopback with the LocalExecutor, PostgreSQL for the
metadata database and the reporting store, a real SMTP server on loopback. The day's clock is shortened:
opening, two reminders, the cutoff and the deadline are minutes apart, and `closeout_intake` runs every minute.

- 柯城 sends a good file: an "accepted" receipt (and its latency, file landing → receipt, is printed);
- 衢江 sends a bad file: a "rejected" receipt naming the row and the rule; then a fixed file: accepted;
- 常山's file is still being copied when intake looks: it is judged only once complete;
- 江山 never reports: both reminders, 缺报 at the cutoff, named in the deadline alert;
- 开化 is marked 缺报 by an operator through the trigger form's REST call: no reminder, does not hold the day;
- an operator's form with a blank reason fails: one failure alert whose link opens the task;
- yesterday, on which nobody reported, is closed from the trigger form: held for 审核签发 (under the quorum), mailed
  only once approved through the REST call the UI makes; today's cutoff run (half cleared) goes out unheld;
- the SMTP server refuses today's bulletin twice: retried with back-off, one copy per recipient;
- after publication: 龙游's late file → one 补报 edition, sent once without anyone re-running the day (the
  same file again → nothing); 柯城's
  correction without a note → refused, nothing sent; with a note → one 更正 edition naming old → new and why;
- the reporting store's connections are cut (a TCP proxy in front of PostgreSQL) in the middle of 龙游's load:
  nothing of it is stored, the task is retried and loads it once;
- yesterday re-closed through the form (units, reason) with 柯城's missing file: the late report is signed by the
  Airflow user, today's carried-over total is recalculated and reported, and yesterday's 补报 edition is approved.
Every mail is counted: none missing, none twice; what was mailed is each edition, byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from cluster import AirflowCluster, deployment_env
from conftest import SAMPLE_INBOX, fresh_database, received_mails, running_sink
from test_faults import FIGURE_WRITE, TcpProxy, through, upstream_of

from closeout.core.clock import LOCAL_TZ

pytestmark = pytest.mark.services
INTAKE, CLOSEOUT, MARK = "closeout_intake", "daily_closeout", "closeout_mark_absent"
STEP = timedelta(minutes=2)  # between the afternoon's milestones
ARTEFACTS = Path(os.environ.get("CLOSEOUT_ARTEFACTS", Path(__file__).resolve().parents[2] / "artefacts"))


def hhmm(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def dated(source: Path, day: str, encoding: str = "utf-8") -> bytes:
    """A sample file rewritten for another report date (the date column must match the folder)."""
    text = source.read_bytes().decode(encoding)
    year, month, mday = (int(part) for part in source.parent.name.split("-"))
    for written in (f"{year}-{month:02d}-{mday:02d}", f"{year}/{month}/{mday}", f"{year}年{month}月{mday}日"):
        text = text.replace(written, day)
    return text.encode(encoding)


class Afternoon:
    """Milestones relative to the moment the cluster is started, in Asia/Shanghai."""

    def __init__(self, start: datetime):
        base = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
        self.opening = base - timedelta(minutes=1)
        self.first_reminder = base + 2 * STEP
        self.second_reminder = base + 3 * STEP
        self.cutoff = base + 4 * STEP
        self.deadline = base + 9 * STEP  # after the cutoff: time for the 补报, 更正 and re-close editions
        self.day = start.date().isoformat()
        self.yesterday = (start.date() - timedelta(days=1)).isoformat()


def _midnight_margin() -> None:
    """The afternoon must not cross midnight (the report date would change): wait it out if needed."""
    now = datetime.now(LOCAL_TZ)
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=5, microsecond=0)
    if tomorrow - now < timedelta(minutes=35):
        time.sleep((tomorrow - now).total_seconds())


@pytest.fixture(scope="module")
def afternoon_cluster(tmp_path_factory):
    from closeout.deliver.mailsink import free_port

    _midnight_margin()
    work = tmp_path_factory.mktemp("afternoon")
    plan = Afternoon(datetime.now(LOCAL_TZ))
    api_port = free_port()
    with (
        running_sink(work / "mail") as sink,
        fresh_database("closeout_meta") as meta_url,
        fresh_database("closeout_store") as store_url,
        TcpProxy(upstream_of(store_url)) as proxy,  # the tasks reach the store through it; the test does not
    ):
        env = deployment_env(
            work,
            api_port,
            meta_url,
            through(store_url, proxy),
            sink.port,
            "LocalExecutor",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            AIRFLOW__CORE__DEFAULT_TIMEZONE="Asia/Shanghai",
            AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{api_port}",
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="20",
            CLOSEOUT_OPS_EMAIL="ops@test.invalid",
            CLOSEOUT_ALERT_GATHER_SECONDS="2",  # a store outage's one alert gathers the other failures briefly
            CLOSEOUT_UI_BASE_URL=f"http://127.0.0.1:{api_port}",
            CLOSEOUT_OPEN=hhmm(plan.opening),
            CLOSEOUT_REMINDERS=f"{hhmm(plan.first_reminder)},{hhmm(plan.second_reminder)}",
            CLOSEOUT_CUTOFF=hhmm(plan.cutoff),
            CLOSEOUT_DEADLINE=hhmm(plan.deadline),
            CLOSEOUT_INTAKE_EVERY="1",
            CLOSEOUT_SETTLE_SECONDS="5",
            CLOSEOUT_LOAD_POOL_SLOTS="4",
            CLOSEOUT_CORRECTION_BATCH="1",
            CLOSEOUT_SMTP_RETRY_DELAY="3",
        )
        (work / "inbox" / plan.day).mkdir(parents=True)
        deployment = AirflowCluster(work, env, api_port, (), 0)
        try:
            deployment.initialise()  # the same init script: migrate and the pool; no FAB roles to create here
            deployment.start()
            deployment._tokens[deployment.users.admin[0]] = _all_admins_token(deployment)
            deployment.wait_until_ready()
            deployment.plan, deployment.mail_dir, deployment.inbox = plan, work / "mail", work / "inbox" / plan.day
            deployment.sink, deployment.store_url, deployment.proxy = sink, store_url, proxy
            yield deployment
        finally:
            deployment.stop()
            keep = os.environ.get("CLOSEOUT_TEST_KEEP_LOGS")
            if keep:
                shutil.copytree(deployment.logs, keep, dirs_exist_ok=True)


def _all_admins_token(cluster: AirflowCluster) -> str:
    """The simple auth manager in all-admins mode hands out a token without a password (the local stack)."""
    import httpx

    for _ in range(120):
        try:
            response = httpx.get(f"{cluster.base_url}/auth/token", timeout=10)
            if response.status_code in (200, 201):
                return response.json()["access_token"]
        except httpx.HTTPError:
            pass
        cluster.assert_alive()
        time.sleep(2)
    raise AssertionError("api-server gave no token:\n" + cluster.log_tails())


def alerted_run(alert) -> str:
    """The run a task alert names (its body's 运行： line)."""
    return alert.get_body(("html",)).get_content().split("运行：", 1)[1].split("<", 1)[0]


def mails(cluster) -> list:
    return received_mails(cluster.mail_dir)


def wait_until(cluster, condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cluster.assert_alive()
        found = condition()
        if found:
            return found
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}; mails: {[m['Subject'] for m in mails(cluster)]}")


def sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(LOCAL_TZ)).total_seconds()))


TIMELINE = ARTEFACTS / "afternoon-timeline.txt"


def milestone(plan: Afternoon, what: str) -> None:
    """When each step of the afternoon was reached, minutes after the opening: how much of the shortened clock
    the work needs (kept with the CI artefacts, to tune STEP)."""
    minutes = (datetime.now(LOCAL_TZ) - plan.opening).total_seconds() / 60
    TIMELINE.parent.mkdir(parents=True, exist_ok=True)
    with TIMELINE.open("a", encoding="utf-8") as out:
        out.write(f"{minutes:6.2f} min  {what}\n")


def subjects(cluster, prefix: str, unit: str = "") -> list[str]:
    return [m["Subject"] for m in mails(cluster) if m["Subject"].startswith(prefix) and unit in m["Subject"]]


def bulletins(cluster, day: str = "") -> list:
    """Bulletin mails (to the distribution list), optionally of one report date."""
    month_day = f"{int(day[5:7])}月{int(day[8:10])}日" if day else ""
    return [m for m in mails(cluster) if "duty@test.invalid" in (m["To"] or "") and month_day in m["Subject"]]


def store_rows(cluster, sql: str, **params) -> list:
    from sqlalchemy import create_engine, text

    engine = create_engine(cluster.store_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def run_state(cluster, run_id: str) -> str:
    return cluster.get(f"/dags/{CLOSEOUT}/dagRuns/{run_id}")["state"]


def task_states(cluster, run_id: str) -> dict[str, str]:
    tis = cluster.get(f"/dags/{CLOSEOUT}/dagRuns/{run_id}/taskInstances")["task_instances"]
    return {ti["task_id"]: ti["state"] for ti in tis if ti["map_index"] == -1}


def trigger_closeout(cluster, conf: dict) -> str:
    """What the trigger form sends."""
    response = cluster.api("POST", f"/dags/{CLOSEOUT}/dagRuns", json={"logical_date": None, "conf": conf})
    assert response.status_code == 200, response.text
    return response.json()["dag_run_id"]


def wait_for_signoff(cluster, run_id: str) -> None:
    wait_until(
        cluster, lambda: task_states(cluster, run_id).get("sign_off") == "awaiting_input", 300, f"{run_id}'s sign-off"
    )


def sign_off(cluster, run_id: str, option: str, reason: str) -> None:
    """Answer as the UI's Required Action form does."""
    response = cluster.api(
        "PATCH",
        f"/dags/{CLOSEOUT}/dagRuns/{run_id}/taskInstances/sign_off/-1/hitlDetails",
        json={"chosen_options": [option], "params_input": {"reason": reason}},
    )
    assert response.status_code == 200, response.text


def finished(cluster, run_id: str, approval: str) -> str:
    """The run's final state. A sign-off try that died on this loaded machine is retried by Airflow and asks
    again: the same approval is given again (the edition's record keeps one decision)."""
    from closeout.core.vocabulary import APPROVE

    def done():
        state = run_state(cluster, run_id)
        if state in ("success", "failed"):
            return state
        if task_states(cluster, run_id).get("sign_off") == "awaiting_input":  # answered already: refused, fine
            cluster.api(
                "PATCH",
                f"/dags/{CLOSEOUT}/dagRuns/{run_id}/taskInstances/sign_off/-1/hitlDetails",
                json={"chosen_options": [APPROVE], "params_input": {"reason": approval}},
            )
        return None

    return wait_until(cluster, done, 300, f"{run_id} to finish")


def test_one_afternoon_under_the_scheduler(afternoon_cluster):
    from closeout.core.vocabulary import APPROVE
    from closeout.deliver.mailer import mailed_sha256

    cluster, plan = afternoon_cluster, afternoon_cluster.plan
    inbox, day, yesterday = cluster.inbox, plan.day, plan.yesterday
    TIMELINE.unlink(missing_ok=True)
    milestone(plan, "cluster ready")

    # 开化 will not report today: an operator records it through the trigger form (REST, as the UI does)
    response = cluster.api(
        "POST",
        f"/dags/{MARK}/dagRuns",
        json={"logical_date": None, "conf": {"report_date": day, "unit": "330824", "reason": "山区断网，电话确认"}},
    )
    assert response.status_code == 200, response.text
    # a form whose reason is only blanks passes the form schema but not the rule: the task fails, and ops get
    # one alert with a link to it
    bad = cluster.api(
        "POST",
        f"/dags/{MARK}/dagRuns",
        json={"logical_date": None, "conf": {"report_date": day, "unit": "330822", "reason": "   "}},
    )
    assert bad.status_code == 200, bad.text
    # yesterday nobody reported: closed from the form, it waits for a person (when-incomplete, the default)
    held = trigger_closeout(cluster, {"report_date": yesterday})

    # good files from 柯城, a bad one from 衢江 (an approximation in a hard metric); 龙游 will be late
    landed = time.time()
    (inbox / "330802.csv").write_bytes(dated(SAMPLE_INBOX / "2022-03-19" / "330802.csv", day))
    good_qujiang = dated(SAMPLE_INBOX / "2022-03-19" / "330803.csv", day, "gbk")
    text = good_qujiang.decode("gbk")
    bad_line = next(line for line in text.splitlines() if line.startswith("采样人次"))
    (inbox / "330803.csv").write_bytes(
        text.replace(bad_line, "采样人次,约38万," + bad_line.split(",", 2)[2]).encode("gbk")
    )

    kecheng = wait_until(cluster, lambda: subjects(cluster, "【回执】柯城区"), 300, "柯城's receipt")
    milestone(plan, "first receipt (柯城)")
    receipt_mail = next(m for m in mails(cluster) if m["Subject"] == kecheng[0])
    latency = parsedate_to_datetime(receipt_mail["Date"]).timestamp() - landed
    print(f"\nreceipt latency (file landing → receipt Date header): {latency:.0f} s")
    assert "采样人次：" in receipt_mail.get_content()

    rejected = wait_until(cluster, lambda: subjects(cluster, "【退回】衢江区"), 180, "衢江's rejection")
    body = next(m for m in mails(cluster) if m["Subject"] == rejected[0]).get_content()
    assert "第" in body and "行" in body and "[rule: approximation_in_hard_metric]" in body

    # yesterday's all-missing edition: nothing goes out before a person approves it
    wait_for_signoff(cluster, held)
    assert bulletins(cluster, yesterday) == []
    sign_off(cluster, held, APPROVE, "各县昨日均未报送，已电话核实，同意发布")
    finished(cluster, held, "各县昨日均未报送，已电话核实，同意发布")
    wait_until(cluster, lambda: bulletins(cluster, yesterday), 240, "yesterday's approved bulletin")
    milestone(plan, "yesterday approved and mailed")

    # 常山's file arrives slowly (still being copied): nothing may be judged before it is complete
    changshan = dated(SAMPLE_INBOX / "2022-03-19" / "changshan.csv", day)
    half = len(changshan) // 3
    with open(inbox / "changshan.csv", "wb") as out:
        out.write(changshan[:half])
        out.flush()
        for start in range(half, len(changshan), max(1, len(changshan) // 12)):
            time.sleep(1.5)
            out.write(changshan[start : start + max(1, len(changshan) // 12)])
            out.flush()
    # 衢江 fixes its file
    (inbox / "330803.csv").write_bytes(good_qujiang)
    wait_until(cluster, lambda: subjects(cluster, "【回执】衢江区"), 240, "衢江's fixed file accepted")
    wait_until(cluster, lambda: subjects(cluster, "【回执】常山县"), 240, "常山's receipt")
    milestone(plan, "常山 and fixed 衢江 receipts")
    assert subjects(cluster, "【退回】常山县") == []  # the half-written file was never judged
    changshan_receipt = next(m for m in mails(cluster) if m["Subject"].startswith("【回执】常山县")).get_content()
    assert "志愿者：" in changshan_receipt  # the complete file, down to its last rows

    # the cutoff: the SMTP server is busy and refuses the bulletin twice; it is retried with back-off
    cluster.sink.handler.refuse_next("duty@test.invalid", 2)
    sleep_until(plan.cutoff)
    [official] = wait_until(cluster, lambda: bulletins(cluster, day), 300, "today's bulletin")
    milestone(plan, "today's bulletin (cutoff)")
    assert cluster.sink.handler.refused == 2
    scheduled = next(r for r in cluster.get(f"/dags/{CLOSEOUT}/dagRuns")["dag_runs"] if r["run_type"] == "scheduled")
    assert task_states(cluster, scheduled["dag_run_id"])["sign_off"] == "skipped"  # half cleared: not held
    official_text = official.get_body(("plain",)).get_content()
    assert "江山市数据截至发布时未报送" in official_text and "开化县本日不报送" in official_text

    # after publication: 龙游's late file goes out as a 补报 edition, with nobody re-running the day. Its load is
    # cut off from the store as its figures go out: nothing of it stays, the retry loads it once.
    cluster.proxy.trip_on(FIGURE_WRITE, 1)
    longyou = dated(SAMPLE_INBOX / "2022-03-19" / "龙游县.csv", day)
    (inbox / "龙游县.csv").write_bytes(longyou)
    wait_until(cluster, cluster.proxy.tripped.is_set, 240, "龙游's load to reach the store")
    time.sleep(2)
    assert cluster.proxy.acked_before_trip >= 2  # writes had gone through before the cut
    longyou_rows = "SELECT count(*) FROM figure WHERE report_date = :d AND unit_code = '330825'"
    assert store_rows(cluster, longyou_rows, d=day) == [(0,)]  # none of them stayed
    [late] = wait_until(
        cluster, lambda: [m for m in bulletins(cluster, day) if "（补报）" in m["Subject"]], 300, "the 补报 edition"
    )
    milestone(plan, "补报 edition")
    assert "龙游县数据于日报发出后补报" in late.get_body(("plain",)).get_content()
    figures_in_file = sum(1 for line in longyou.decode("utf-8").splitlines()[1:] if line.strip())
    assert store_rows(cluster, longyou_rows + " AND source_sha256 <> 'derived'", d=day) == [(figures_in_file,)]
    assert store_rows(
        cluster, "SELECT status FROM submission WHERE report_date = :d AND unit_code = '330825'", d=day
    ) == [("loaded",)]

    # 龙游 sends the very same file again: nothing (no receipt, no edition; the final count would show it)
    (inbox / "龙游县.csv").write_bytes(longyou)

    # 柯城 corrects a figure without saying why: refused, nothing sent; then with a note: one 更正 edition
    original = dated(SAMPLE_INBOX / "2022-03-19" / "330802.csv", day).decode("utf-8")
    old_line = next(line for line in original.splitlines() if line.startswith("isolation_new,"))
    old_value = int(old_line.split(",")[1])
    corrected = original.replace(old_line, f"isolation_new,{old_value + 6},330802,{day},")
    (inbox / "330802.csv").write_text(corrected, encoding="utf-8")
    wait_until(cluster, lambda: subjects(cluster, "【退回】柯城区"), 240, "柯城's correction without a note refused")
    noted = corrected.replace(
        f"isolation_new,{old_value + 6},330802,{day},", f"isolation_new,{old_value + 6},330802,{day},漏报一处隔离点"
    )
    (inbox / "330802.csv").write_text(noted, encoding="utf-8")
    [correction] = wait_until(
        cluster, lambda: [m for m in bulletins(cluster, day) if "（更正）" in m["Subject"]], 300, "the 更正 edition"
    )
    milestone(plan, "更正 edition")
    assert (
        f"柯城区新增集中隔离由{old_value}人订正为{old_value + 6}人，原因：漏报一处隔离点"
        in correction.get_body(("plain",)).get_content()
    )

    # yesterday re-closed through the form: 柯城's file had never arrived; the operator loads it and says why
    (inbox.parent / yesterday).mkdir(exist_ok=True)
    (inbox.parent / yesterday / "330802.csv").write_bytes(dated(SAMPLE_INBOX / "2022-03-18" / "330802.csv", yesterday))
    reclose = trigger_closeout(
        cluster, {"report_date": yesterday, "units": ["330802"], "reason": "柯城区昨日文件漏传，电话核实后补录"}
    )
    wait_for_signoff(cluster, reclose)  # still 1 of 6 units cleared: held again
    sign_off(cluster, reclose, APPROVE, "补录柯城区，同意发布")
    assert (
        finished(cluster, reclose, "补录柯城区，同意发布") == "failed"
    )  # confirm_closeout: five units of yesterday are still open
    states = task_states(cluster, reclose)
    assert (states["recheck_later_days"], states["email_bulletin"]) == ("success", "success"), states
    later = cluster.get(f"/dags/{CLOSEOUT}/dagRuns/{reclose}/taskInstances/recheck_later_days/xcomEntries/return_value")
    changed = later["value"] if isinstance(later["value"], dict) else json.loads(later["value"])
    assert list(changed) == [day] and any("柯城区 累计本土确诊" in line for line in changed[day]), changed
    user = cluster.get(f"/dags/{CLOSEOUT}/dagRuns/{reclose}")["triggering_user_name"]
    assert user
    signed = store_rows(
        cluster,
        "SELECT report_date, kind, reason, recorded_by FROM figure_revision WHERE unit_code = '330802' "
        "AND kind IN ('late_report', 'recalculated') ORDER BY report_date",
    )
    assert signed == [
        (yesterday, "late_report", "柯城区昨日文件漏传，电话核实后补录", user),
        (day, "recalculated", f"随{int(yesterday[5:7])}月{int(yesterday[8:10])}日数据更正重算", user),
    ], signed
    wait_until(
        cluster,
        lambda: [m for m in bulletins(cluster, yesterday) if "（补报）" in m["Subject"]],
        240,
        "yesterday's 补报",
    )
    milestone(plan, "yesterday re-closed, its 补报")

    # the rest of the afternoon: the deadline watchdog
    sleep_until(plan.deadline + timedelta(seconds=90))
    wait_until(cluster, lambda: subjects(cluster, "【告警】"), 240, "the deadline alert")
    milestone(plan, "deadline alert")
    time.sleep(20)  # anything sent twice would arrive now

    everything = [m["Subject"] for m in mails(cluster)]
    headless = [m["Subject"] for m in mails(cluster) if not (m["Date"] and m["Message-ID"])]
    assert headless == [], headless  # every message: receipts, reminders, the bulletins, alerts
    # the bulletins: yesterday's approved one and its 补报, today's 正式, 补报 and 更正, each once, each exactly
    # the edition that was rendered and archived
    sent = bulletins(cluster)
    assert sorted(m["Subject"] for m in sent) == sorted(set(m["Subject"] for m in sent)) and len(sent) == 5, everything
    editions = {sha for (sha,) in store_rows(cluster, "SELECT content_sha256 FROM edition")}
    for mail in sent:
        assert mailed_sha256(mail) in editions, mail["Subject"]
    rcpt = [p.read_text(encoding="utf-8").split() for p in sorted(cluster.mail_dir.glob("*.rcpt"))]
    assert sum(1 for r in rcpt if "duty@test.invalid" in r) == 5  # one copy per recipient per edition

    reminders = subjects(cluster, "【提醒】")
    assert sorted(reminders) == sorted(
        [
            f"【提醒】{unit}{int(day[5:7])}月{int(day[8:10])}日日报尚未收到报送文件（{hhmm(plan.cutoff)}截止）"
            for unit in ("江山市", "龙游县")
            for _ in range(2)
        ]
    ), everything  # 开化 (marked 缺报) and the units that had reported get none
    reminder_to = [m["To"] for m in mails(cluster) if m["Subject"].startswith("【提醒】")]
    assert all("ops@test.invalid" in to for to in reminder_to)
    receipts = sorted(s for s in everything if s.startswith(("【回执】", "【退回】")))
    # 柯城 ×3 (its file, the refused and the noted correction), 衢江 ×2, 常山, 龙游, and yesterday's 柯城
    assert len(receipts) == 8, receipts
    [alert] = [m for m in mails(cluster) if m["Subject"].startswith("【告警】")]
    assert alert["To"] == "ops@test.invalid"
    assert "江山市" in alert.get_content() and "开化县" not in alert.get_content()

    # failure alerts: the bad form (one try, no retries); the county loads that had no file (yesterday's six,
    # today's 江山 and 龙游 at the cutoff); confirm_closeout of yesterday's two runs and today's. The 补报/更正 runs
    # fail nothing. A try retried (the refused bulletin, or one that died on this loaded machine) is alerted once.
    failures = [m for m in mails(cluster) if m["Subject"].startswith("【任务已失败】")]
    by_task = Counter(m["Subject"].split(" · ")[1] for m in failures)
    assert by_task == {"mark_unit_absent": 1, "load_unit_group": 8, "confirm_closeout": 3}, by_task
    retried_mails = [m for m in mails(cluster) if m["Subject"].startswith("【任务将自动重试】")]
    retried = [m["Subject"] for m in retried_mails]
    # one alert per try, never twice. A try is the subject's task, unit and try number within one run: yesterday's
    # two runs may each retry the same task (a sign-off try Airflow failed on this loaded machine)
    tries = [(m["Subject"], alerted_run(m)) for m in retried_mails]
    assert len(tries) == len(set(tries)), tries
    assert sum(" · email_bulletin" in s for s in retried) == 2, retried
    # the load the store's cut stopped: a shared outage is one 【故障】 alert per run and cause, not one per try
    incidents = [m["Subject"] for m in mails(cluster) if m["Subject"].startswith("【故障】")]
    assert len(incidents) == len(set(incidents)), incidents
    assert any(s.startswith("【故障】closeout_intake · 报送数据库无法连接") for s in incidents) or any(
        "closeout_intake · judge_arrivals" in s for s in retried
    ), (incidents, retried)
    form_alert = next(m for m in failures if "mark_unit_absent" in m["Subject"])
    html = form_alert.get_body(("html",)).get_content()
    assert "必须写明原因" in html
    link = html.split('href="')[1].split('"')[0]
    assert link.startswith(cluster.base_url + f"/dags/{MARK}/runs/")
    import httpx

    assert httpx.get(link, timeout=30).status_code == 200  # the UI serves the task instance page
    parts = link.removeprefix(cluster.base_url + "/").split("/")  # dags/<dag>/runs/<run>/tasks/<task>
    run_id, task_id = parts[3], parts[5]
    from urllib.parse import unquote

    instance = cluster.get(f"/dags/{MARK}/dagRuns/{unquote(run_id)}/taskInstances/{task_id}")
    assert instance["state"] == "failed"  # the link names the very task instance that failed

    # the day's close-out run: 江山 缺报, 开化 marked, the others cleared
    loads = {
        ti["rendered_map_index"]: ti
        for ti in cluster.get(f"/dags/{CLOSEOUT}/dagRuns/{scheduled['dag_run_id']}/taskInstances")["task_instances"]
        if ti["task_id"] == "load_unit_group"
    }
    statuses = {label: ti["state"] for label, ti in loads.items()}
    assert statuses["江山市"] == "failed" and statuses["柯城区"] == "success" and statuses["开化县"] == "success"

    # every run reads by its report date in the UI, whatever its UTC run id
    notes = {r["dag_run_id"]: r["note"] for r in cluster.get(f"/dags/{CLOSEOUT}/dagRuns")["dag_runs"]}
    assert notes[scheduled["dag_run_id"]] == f"统计日期 {day}", notes
    assert notes[held] == f"统计日期 {yesterday}（表单指定）"
    assert notes[reclose] == f"统计日期 {yesterday} · 重新结清：柯城区昨日文件漏传，电话核实后补录"
    reissued = [run for run in notes if run.startswith("reissue__")]
    assert len(reissued) == 2 and all(notes[run] == f"统计日期 {day} · 补报/更正版（收件自动触发）" for run in reissued)
    intake_notes = [r["note"] or "" for r in cluster.get(f"/dags/{INTAKE}/dagRuns")["dag_runs"]]
    assert intake_notes and all(note.startswith(f"统计日期 {day} · 收件 ") for note in intake_notes), intake_notes
    assert {r["note"] for r in cluster.get(f"/dags/{MARK}/dagRuns")["dag_runs"]} == {
        f"统计日期 {day} · 标记缺报 330824",
        f"统计日期 {day} · 标记缺报 330822",
    }
    # a data refusal fails its task with the one-line reason and no stack trace in the task's log
    jiangshan = loads["江山市"]
    log = cluster.get(
        f"/dags/{CLOSEOUT}/dagRuns/{scheduled['dag_run_id']}/taskInstances/load_unit_group/logs/{jiangshan['try_number']}",
        params={"map_index": jiangshan["map_index"], "full_content": "true"},
        headers={"Accept": "application/json"},
    )
    log_text = json.dumps(log["content"], ensure_ascii=False)
    assert "Task exited" in log_text and "[缺报] 江山市(330881)" in log_text, log_text[-2000:]
    assert "Traceback" not in log_text and "error_detail" not in log_text, log_text[-2000:]
    total = len(everything)
    assert total == len(receipts) + len(reminders) + len(sent) + 1 + len(failures) + len(retried) + len(incidents), (
        everything
    )
