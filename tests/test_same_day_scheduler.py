"""One simulated afternoon under a real scheduler: the same-day loop as production runs it.

api-server, scheduler, dag-processor and triggerer on loopback with the LocalExecutor, PostgreSQL for the
metadata database and the reporting store, a real SMTP server on loopback. The day's clock is shortened:
opening, two reminders, the cutoff and the deadline are minutes apart, and `closeout_intake` runs every minute.

- 柯城 sends a good file: an "accepted" receipt (and its latency, file landing → receipt, is printed);
- 衢江 sends a bad file: a "rejected" receipt naming the row and the rule; then a fixed file: accepted;
- 常山's file is still being copied when intake looks: it is judged only once complete;
- 江山 never reports: both reminders, 缺报 at the cutoff, named in the deadline alert;
- 开化 is marked 缺报 by an operator through the trigger form's REST call: no reminder, does not hold the day;
- 龙游 sends a good file;
- an operator's form with a blank reason fails: one failure alert whose link opens the task.
Every mail is counted: none missing, none twice.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from cluster import AirflowCluster, deployment_env
from conftest import SAMPLE_INBOX, fresh_database, received_mails, running_sink

from closeout.settings import LOCAL_TZ

pytestmark = pytest.mark.services
INTAKE, CLOSEOUT, MARK = "closeout_intake", "daily_closeout", "closeout_mark_absent"
STEP = timedelta(minutes=2)  # between the afternoon's milestones


def hhmm(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def dated(source: Path, day: str, encoding: str = "utf-8") -> bytes:
    """A sample file of the 19th rewritten for today's report date (the date column must match the folder)."""
    text = source.read_bytes().decode(encoding)
    year, month, mday = (int(part) for part in day.split("-"))
    for written in ("2022-03-19", "2022/3/19", "2022年3月19日"):
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
        self.deadline = base + 5 * STEP
        self.day = start.date().isoformat()


def _midnight_margin() -> None:
    """The afternoon must not cross midnight (the report date would change): wait it out if needed."""
    now = datetime.now(LOCAL_TZ)
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=5, microsecond=0)
    if tomorrow - now < timedelta(minutes=20):
        time.sleep((tomorrow - now).total_seconds())


@pytest.fixture(scope="module")
def afternoon_cluster(tmp_path_factory):
    from closeout.mailsink import free_port

    _midnight_margin()
    work = tmp_path_factory.mktemp("afternoon")
    plan = Afternoon(datetime.now(LOCAL_TZ))
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
            "LocalExecutor",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            AIRFLOW__CORE__DEFAULT_TIMEZONE="Asia/Shanghai",
            AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{api_port}",
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="20",
            CLOSEOUT_OPS_EMAIL="ops@test.invalid",
            CLOSEOUT_UI_BASE_URL=f"http://127.0.0.1:{api_port}",
            CLOSEOUT_OPEN=hhmm(plan.opening),
            CLOSEOUT_REMINDERS=f"{hhmm(plan.first_reminder)},{hhmm(plan.second_reminder)}",
            CLOSEOUT_CUTOFF=hhmm(plan.cutoff),
            CLOSEOUT_DEADLINE=hhmm(plan.deadline),
            CLOSEOUT_INTAKE_EVERY="1",
            CLOSEOUT_SETTLE_SECONDS="5",
            CLOSEOUT_LOAD_POOL_SLOTS="4",
        )
        (work / "inbox" / plan.day).mkdir(parents=True)
        deployment = AirflowCluster(work, env, api_port, (), 0)
        try:
            deployment.initialise()  # the same init script: migrate and the pool; no FAB roles to create here
            deployment.start()
            deployment._tokens[deployment.users.admin[0]] = _all_admins_token(deployment)
            deployment.wait_until_ready()
            deployment.plan, deployment.mail_dir, deployment.inbox = plan, work / "mail", work / "inbox" / plan.day
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


def subjects(cluster, prefix: str, unit: str = "") -> list[str]:
    return [m["Subject"] for m in mails(cluster) if m["Subject"].startswith(prefix) and unit in m["Subject"]]


def test_one_afternoon_under_the_scheduler(afternoon_cluster):
    cluster, plan = afternoon_cluster, afternoon_cluster.plan
    inbox, day = cluster.inbox, plan.day

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

    # good files from 柯城 and 龙游, a bad one from 衢江 (an approximation in a hard metric)
    landed = time.time()
    (inbox / "330802.csv").write_bytes(dated(SAMPLE_INBOX / "2022-03-19" / "330802.csv", day))
    (inbox / "龙游县.csv").write_bytes(dated(SAMPLE_INBOX / "2022-03-19" / "龙游县.csv", day))
    good_qujiang = dated(SAMPLE_INBOX / "2022-03-19" / "330803.csv", day, "gbk")
    text = good_qujiang.decode("gbk")
    bad_line = next(line for line in text.splitlines() if line.startswith("采样人次"))
    (inbox / "330803.csv").write_bytes(
        text.replace(bad_line, "采样人次,约38万," + bad_line.split(",", 2)[2]).encode("gbk")
    )

    kecheng = wait_until(cluster, lambda: subjects(cluster, "【回执】柯城区"), 300, "柯城's receipt")
    receipt_mail = next(m for m in mails(cluster) if m["Subject"] == kecheng[0])
    latency = parsedate_to_datetime(receipt_mail["Date"]).timestamp() - landed
    print(f"\nreceipt latency (file landing → receipt Date header): {latency:.0f} s")
    assert "采样人次：" in receipt_mail.get_content()

    rejected = wait_until(cluster, lambda: subjects(cluster, "【退回】衢江区"), 180, "衢江's rejection")
    body = next(m for m in mails(cluster) if m["Subject"] == rejected[0]).get_content()
    assert "第" in body and "行" in body and "[rule: approximation_in_hard_metric]" in body

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
    assert subjects(cluster, "【退回】常山县") == []  # the half-written file was never judged
    changshan_receipt = next(m for m in mails(cluster) if m["Subject"].startswith("【回执】常山县")).get_content()
    assert "志愿者：" in changshan_receipt  # the complete file, down to its last rows

    # the rest of the afternoon: reminders, the cutoff run, the deadline watchdog
    sleep_until(plan.deadline + timedelta(seconds=90))
    wait_until(cluster, lambda: subjects(cluster, "【告警】"), 240, "the deadline alert")
    time.sleep(20)  # anything sent twice would arrive now

    everything = [m["Subject"] for m in mails(cluster)]
    headless = [m["Subject"] for m in mails(cluster) if not (m["Date"] and m["Message-ID"])]
    assert headless == [], headless  # every message: receipts, reminders, the bulletin, alerts
    reminders = subjects(cluster, "【提醒】")
    assert sorted(reminders) == sorted(
        [f"【提醒】江山市{int(day[5:7])}月{int(day[8:10])}日日报尚未收到报送文件（{hhmm(plan.cutoff)}截止）"] * 2
    ), everything  # 开化 (marked 缺报) and the units that had reported get none
    reminder_to = [m["To"] for m in mails(cluster) if m["Subject"].startswith("【提醒】")]
    assert all("jiangshan-report@example.invalid" in to and "ops@test.invalid" in to for to in reminder_to)
    receipts = sorted(s for s in everything if s.startswith(("【回执】", "【退回】")))
    assert len(receipts) == 5, receipts  # 柯城, 龙游, 衢江 ×2, 常山: one per file judged
    bulletins = [m for m in mails(cluster) if "duty@test.invalid" in m["To"]]
    assert len(bulletins) == 1, everything
    bulletin_text = bulletins[0].get_body(("plain",)).get_content()
    assert "江山市数据截至发布时未报送" in bulletin_text and "开化县本日不报送" in bulletin_text
    [alert] = [m for m in mails(cluster) if m["Subject"].startswith("【告警】")]
    assert alert["To"] == "ops@test.invalid"
    assert "江山市" in alert.get_content() and "开化县" not in alert.get_content()

    # failure alerts: the bad form (one try, no retries), 江山's missing load and confirm_closeout at the cutoff;
    # a try that died on this loaded machine and was retried is alerted too ("将自动重试"), once per try
    failures = [m for m in mails(cluster) if m["Subject"].startswith("【任务已失败】")]
    by_task = sorted(m["Subject"].split(" · ")[1] for m in failures)
    assert by_task == ["confirm_closeout", "load_unit_group", "mark_unit_absent"], [m["Subject"] for m in failures]
    retried = [m["Subject"] for m in mails(cluster) if m["Subject"].startswith("【任务将自动重试】")]
    assert len(retried) == len(set(retried)), retried  # one alert per try, never twice
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
    runs = cluster.get(f"/dags/{CLOSEOUT}/dagRuns")["dag_runs"]
    assert len(runs) == 1 and runs[0]["run_type"] == "scheduled"
    loads = {
        ti["rendered_map_index"]: ti
        for ti in cluster.get(f"/dags/{CLOSEOUT}/dagRuns/{runs[0]['dag_run_id']}/taskInstances")["task_instances"]
        if ti["task_id"] == "load_unit_group"
    }
    statuses = {label: ti["state"] for label, ti in loads.items()}
    assert statuses["江山市"] == "failed" and statuses["柯城区"] == "success" and statuses["开化县"] == "success"

    # every run reads by its report date in the UI, whatever its UTC run id
    assert runs[0]["note"] == f"统计日期 {day}", runs[0]
    intake_notes = [r["note"] or "" for r in cluster.get(f"/dags/{INTAKE}/dagRuns")["dag_runs"]]
    assert intake_notes and all(note.startswith(f"统计日期 {day} · 收件 ") for note in intake_notes), intake_notes
    assert {r["note"] for r in cluster.get(f"/dags/{MARK}/dagRuns")["dag_runs"]} == {
        f"统计日期 {day} · 标记缺报 330824",
        f"统计日期 {day} · 标记缺报 330822",
    }
    # a data refusal fails its task with the one-line reason and no stack trace in the task's log
    jiangshan = loads["江山市"]
    log = cluster.get(
        f"/dags/{CLOSEOUT}/dagRuns/{runs[0]['dag_run_id']}/taskInstances/load_unit_group/logs/{jiangshan['try_number']}",
        params={"map_index": jiangshan["map_index"], "full_content": "true"},
        headers={"Accept": "application/json"},
    )
    log_text = json.dumps(log["content"], ensure_ascii=False)
    assert "Task exited" in log_text and "[缺报] 江山市(330881)" in log_text, log_text[-2000:]
    assert "Traceback" not in log_text and "error_detail" not in log_text, log_text[-2000:]
    total = len(everything)
    assert total == len(receipts) + len(reminders) + len(bulletins) + 1 + len(failures) + len(retried), everything
