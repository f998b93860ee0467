"""A reporting day through `airflow dags test` (bench.scenarios' Airflow column): Airflow's own settings and
metadata database, the command timed as a whole and, from its log, where the time went; and Airflow's floor, the
same DAG shape with every task doing nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
AIRFLOW_TIMEOUT_SECONDS = 3600


def airflow_env(work: Path, smtp_host: str, smtp_port: int) -> dict[str, str]:
    """Airflow's own settings for `airflow dags test`: a private home and SQLite metadata, this repo's DAGs."""
    home = work / "airflow-home"
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "GX_ANALYTICS_ENABLED": "False",
        "AIRFLOW_CONN_SMTP_DEFAULT": f"smtp://{smtp_host}:{smtp_port}"
        "?disable_ssl=true&disable_tls=true&from_email=closeout%40bench.closeout.invalid",
    }


def migrate_airflow(env: dict[str, str], log: Path) -> float:
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        subprocess.run(
            [str(VENV_BIN / "airflow"), "db", "migrate"], env={**os.environ, **env}, stdout=out, stderr=out, check=True
        )
    return time.perf_counter() - started


def airflow_day(
    env: dict[str, str], day: date, log: Path, dag_id: str = "daily_closeout"
) -> tuple[float, int, dict[str, float]]:
    """Seconds for the whole `airflow dags test DAG_ID DAY` command, its exit code, and where the time
    went according to its log (start-up before the first task, then each task's seconds)."""
    started_at, started = datetime.now(UTC), time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        result = subprocess.run(
            [str(VENV_BIN / "airflow"), "dags", "test", dag_id, day.isoformat()],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=AIRFLOW_TIMEOUT_SECONDS,
        )
    return time.perf_counter() - started, result.returncode, airflow_task_seconds(log, started_at)


# `dags test` logs "[DAG TEST] starting task_id=… map_index=…" and "… end task task_id=…" with UTC timestamps.
DAG_TEST_LINE = re.compile(r"^(\S+Z) .*\[DAG TEST\] (starting|end task) task_id=(\w+) map_index=(-?\d+)")


# Airflow's floor for a day: daily_closeout's shape, every task doing nothing (filled in by airflow_floor)
FLOOR_DAG = '''"""Airflow's own cost of running daily_closeout's shape: every task does nothing (bench/airflow_day.py)."""
import pendulum
from airflow.sdk import dag, task


@dag(dag_id="airflow_floor", schedule=None, start_date=pendulum.datetime(2022, 1, 1, tz="Asia/Shanghai"))
def airflow_floor():
    @task
    def plan():
        return list(range({mapped}))

    @task
    def group(item):
        return item

    @task
    def step():
        return None

    previous = group.expand(item=plan())
    for n in range({after}):
        current = step.override(task_id=f"step_{{n}}")()
        previous >> current
        previous = current


airflow_floor()
'''


def dag_shape(log: Path) -> tuple[int, int]:
    """(mapped task instances, unmapped task instances) that a `dags test` log shows started."""
    starts = [m for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
              if (m := DAG_TEST_LINE.match(line)) and m[2] == "starting"]  # fmt: skip
    mapped = sum(1 for m in starts if int(m[4]) >= 0)
    return mapped, len(starts) - mapped


def airflow_floor(env: dict[str, str], day: date, shape: tuple[int, int], work: Path) -> tuple[float, int, Path]:
    """Seconds, exit code and log of `airflow dags test` for a DAG of this shape whose tasks do nothing, run with
    this project's DAGs and plugins out of the way: what Airflow itself costs for such a day."""
    mapped, unmapped = shape
    folder = work / f"floor-{mapped}-{unmapped}"
    (folder / "dags").mkdir(parents=True, exist_ok=True)
    (folder / "plugins").mkdir(exist_ok=True)
    (folder / "dags" / "airflow_floor.py").write_text(
        FLOOR_DAG.format(mapped=mapped, after=max(unmapped - 1, 0)), encoding="utf-8"
    )
    settings = {
        **env,
        "AIRFLOW__CORE__DAGS_FOLDER": str(folder / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(folder / "plugins"),
    }
    log = folder / "dags-test.log"
    seconds, code, _ = airflow_day(settings, day, log, dag_id="airflow_floor")
    return seconds, code, log


def airflow_task_seconds(log: Path, started_at: datetime) -> dict[str, float]:
    """Start-up (interpreter, Airflow, parsing the DAG, creating the run) and the seconds of each task id, mapped
    tasks summed; what remains of the command's time is between tasks and the exit."""
    started: dict[tuple[str, str], datetime] = {}
    steps: dict[str, float] = {}
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        match = DAG_TEST_LINE.match(line)
        if not match:
            continue
        when, event, task, map_index = datetime.fromisoformat(match[1]), match[2], match[3], match[4]
        if not steps:
            steps["start-up"] = (when - started_at).total_seconds()
        if event == "starting":
            started[(task, map_index)] = when
        elif (task, map_index) in started:
            steps[task] = steps.get(task, 0.0) + (when - started.pop((task, map_index))).total_seconds()
    return steps
