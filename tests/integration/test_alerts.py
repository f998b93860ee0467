"""Failure alerts through the smtp provider's notifier to a real SMTP server on loopback: a shared outage (the store
unreachable) is one alert per run, listing the failures gathered with it, whatever the number of tasks; any other
failure keeps its alert per try."""

import threading
from types import SimpleNamespace

import pytest
from conftest import received_mails
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from closeout.core.clock import LOCAL_TZ
from closeout.orchestration.airflow_glue import alert_ops_on_failure, alert_ops_on_retry


def store_outage() -> OperationalError:
    """The error a task meets when the store's port answers nobody (a real driver error, not a made-up one)."""
    engine = create_engine("postgresql+psycopg2://postgres@127.0.0.1:9/test", connect_args={"connect_timeout": 2})
    try:
        engine.connect()
    except OperationalError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("port 9 answered")


def context(run_id: str, task_id: str, map_index: int, exception: BaseException, try_number: int = 1) -> dict:
    from datetime import datetime

    ti = SimpleNamespace(
        dag_id="daily_closeout",
        task_id=task_id,
        map_index=map_index,
        rendered_map_index=f"单位{map_index}" if map_index >= 0 else None,
        try_number=try_number,
    )
    when = datetime(2022, 3, 19, 21, 0, tzinfo=LOCAL_TZ)
    dag_run = SimpleNamespace(run_id=run_id, conf={}, logical_date=when, run_after=when)
    return {"ti": ti, "dag_run": dag_run, "exception": exception}


@pytest.fixture
def alerting(monkeypatch, smtp_sink, tmp_path):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        f"smtp://127.0.0.1:{smtp_sink.port}?disable_ssl=true&disable_tls=true&from_email=closeout%40test.invalid",
    )
    monkeypatch.setenv("CLOSEOUT_OPS_EMAIL", "ops@test.invalid")
    monkeypatch.setenv("CLOSEOUT_ARCHIVE", str(tmp_path / "archive"))
    monkeypatch.setenv("CLOSEOUT_ALERT_GATHER_SECONDS", "2")
    return smtp_sink


def test_a_store_outage_is_one_alert_per_run_listing_the_failures_gathered_with_it(alerting):
    outage = store_outage()

    def fail_together(run_id: str, tries: int) -> None:
        threads = [
            threading.Thread(
                target=alert_ops_on_retry if n % 2 else alert_ops_on_failure,
                args=(context(run_id, "load_unit_group", n, outage, try_number=1 + n % 2),),
            )
            for n in range(tries)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    fail_together("scheduled__2022-03-19T13:00:00+00:00", 27)
    [alert] = received_mails(alerting.folder)
    assert alert["Subject"].startswith("【故障】daily_closeout · 报送数据库无法连接")
    body = alert.get_body(("html",)).get_content()
    assert "另有 26 次失败" in body and body.count("<li>") == 26  # every other failure, each named once
    # a later failure of the same run and cause: recorded, not mailed; another run: its own alert
    alert_ops_on_failure(context("scheduled__2022-03-19T13:00:00+00:00", "reconcile_day", -1, outage, try_number=3))
    fail_together("manual__2022-03-19T14:00:00+00:00", 3)
    assert [m["Subject"].split(" · ")[-1] for m in received_mails(alerting.folder)] == [
        "scheduled__2022-03-19T13:00:00+00:00",
        "manual__2022-03-19T14:00:00+00:00",
    ]


def test_a_failure_of_its_own_keeps_its_alert_per_try(alerting):
    for try_number in (1, 2):
        alert_ops_on_retry(context("run", "send_receipts", -1, ValueError("坏数据"), try_number=try_number))
    subjects = [m["Subject"] for m in received_mails(alerting.folder)]
    assert subjects == [
        "【任务将自动重试】daily_closeout · send_receipts · 2022-03-19 · 第1次",
        "【任务将自动重试】daily_closeout · send_receipts · 2022-03-19 · 第2次",
    ]
