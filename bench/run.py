"""make bench: how long one reporting day takes at city, province and country scale, on SQLite and PostgreSQL,
measured three ways in the same run, and whether the store then holds exactly the figures that were sent.

  limit       the physical floor: read every file of the day and bulk-load every figure in one transaction
              (PostgreSQL COPY, SQLite executemany) into a plain table — no archive, no checks, no history;
  in-process  the package's own path in one process: plan_unit_groups, load_group for every group,
              reconcile_day, render_bulletin — for the second day, so the cross-day checks run (the first day
              is closed, untimed, just before);
  Airflow     `airflow dags test daily_closeout DAY` in a subprocess (a mail sink on loopback, no sign-off),
              timed as a whole command, the first day again closed untimed in-process beforehand;
  floor       Airflow's own part of that: `airflow dags test` of a DAG of the same shape (one task, as many
              mapped instances as load groups, then the same number of tasks after them) whose tasks do nothing,
              without this project's DAGs or plugins — start-up, the in-process execution API, running each task;
  DAG parse   every DAG file parsed with the scale's registry in a fresh interpreter that has imported airflow.sdk,
              as the dag-processor parses them every few seconds: it should not grow with the units.

After every measurement the store is queried and compared with the generated data (every figure, the per-metric
sums, the derived cumulatives, every unit cleared, no finding); any difference makes the run exit non-zero.
Timings are printed, never asserted.

    python -m bench.run                                  # city, province, country; Airflow for city and province
    python -m bench.run --scales province --skip-airflow --backends postgresql   # what CI runs (tests/test_bench.py)
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import json
import os
import pstats
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from bench.generate import DEFAULT_SEED, SCALES, Dataset, generate

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
BACKENDS = ("sqlite", "postgresql")
# Country scale through `airflow dags test` is not run by default: one process runs every mapped task in turn,
# which says little about a deployment with workers and takes a long time on a small machine.
AIRFLOW_SCALES = ("city", "province")
DEFAULT_PG_ADMIN_URL = os.environ.get("CLOSEOUT_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
AIRFLOW_TIMEOUT_SECONDS = 3600
LIMIT_TABLE = "bench_limit_figure"


@dataclass
class Measurement:
    scale: str
    backend: str
    units: int
    figures: int  # reported figures of the timed day (units × 25)
    limit_s: float | None = None
    in_process_s: float | None = None
    airflow_s: float | None = None
    floor_s: float | None = None  # Airflow's own part of airflow_s: the same DAG shape doing nothing
    dag_parse_s: float | None = None  # every DAG file parsed with this scale's registry, beyond airflow.sdk
    in_process_steps: dict[str, float] = field(default_factory=dict)  # plan, load, reconcile, render; GX within
    airflow_steps: dict[str, float] = field(default_factory=dict)  # start-up, then seconds per task id
    problems: list[str] = field(default_factory=list)  # correctness: anything here fails the run

    @property
    def ok(self) -> bool:
        return not self.problems


class BenchFailure(RuntimeError):
    """The package did not close the day cleanly (a unit refused or missing): a correctness failure."""


# ---- stores ------------------------------------------------------------------------------------------------


@contextmanager
def fresh_store(backend: str, label: str, work: Path, pg_admin_url: str) -> Iterator[str]:
    """An empty store for one measurement: a new SQLite file, or a new PostgreSQL database dropped afterwards."""
    if backend == "sqlite":
        path = work / f"{label}.db"
        path.unlink(missing_ok=True)
        yield f"sqlite:///{path}"
        return
    from sqlalchemy import create_engine, text

    name = f"closeout_bench_{label}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield pg_admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def closeout_env(dataset: Dataset, db_url: str, work: Path) -> dict[str, str]:
    """The settings of one close-out: the generated registry and inbox, a private archive and outbox."""
    return {
        "CLOSEOUT_REGISTRY": str(dataset.registry_path),
        "CLOSEOUT_INBOX": str(dataset.inbox),
        "CLOSEOUT_DATA": str(work),
        "CLOSEOUT_ARCHIVE": str(work / "archive"),
        "CLOSEOUT_OUTBOX": str(work / "outbox"),
        "CLOSEOUT_DB_URL": db_url,
        "CLOSEOUT_INCLUDE": str(ROOT / "include"),
        "CLOSEOUT_SETTLE_SECONDS": "0",  # generated files are written whole before the run
        "CLOSEOUT_SIGNOFF": "off",  # `airflow dags test` has nobody to sign off; never wait
        "CLOSEOUT_RECIPIENTS": "duty@bench.closeout.invalid",
        "CLOSEOUT_SENDER": "closeout@bench.closeout.invalid",
        "CLOSEOUT_OPS_EMAIL": "",
    }


def context_for(env: dict[str, str]):
    from closeout.context import Context
    from closeout.settings import load_settings

    return Context(load_settings(env))


# ---- a: the physical limit ---------------------------------------------------------------------------------


def read_day_files(files: list[Path]) -> list[tuple[str, str, str, str]]:
    """(report_date, unit_code, metric, value) of every row of every file, as written."""
    rows = []
    for path in files:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader)  # the header
            rows += [(report_date, unit_code, metric, value) for metric, value, unit_code, report_date, _ in reader]
    return rows


def bulk_load_limit(files: list[Path], db_url: str) -> float:
    """Seconds to read every file and load every figure in one transaction: nothing the package does is cheaper."""
    create = f"CREATE TABLE {LIMIT_TABLE} (report_date TEXT, unit_code TEXT, metric TEXT, value DOUBLE PRECISION)"
    if db_url.startswith("sqlite:///"):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        conn.execute(create)
        conn.commit()
        started = time.perf_counter()
        rows = [(d, u, m, float(v)) for d, u, m, v in read_day_files(files)]
        conn.executemany(f"INSERT INTO {LIMIT_TABLE} VALUES (?, ?, ?, ?)", rows)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.close()
        return elapsed
    from sqlalchemy import create_engine

    engine = create_engine(db_url)
    conn = engine.raw_connection()  # psycopg2's own connection: copy_expert
    try:
        with conn.cursor() as cursor:
            cursor.execute(create)
        conn.commit()
        started = time.perf_counter()
        buffer = io.StringIO()
        csv.writer(buffer).writerows(read_day_files(files))
        buffer.seek(0)
        with conn.cursor() as cursor:
            cursor.copy_expert(
                f"COPY {LIMIT_TABLE} (report_date, unit_code, metric, value) FROM STDIN WITH (FORMAT csv)", buffer
            )
        conn.commit()
        return time.perf_counter() - started
    finally:
        conn.close()
        engine.dispose()


def verify_limit_table(db_url: str, dataset: Dataset, day: date) -> list[str]:
    """The bulk-loaded table holds the day's figures: as many rows, the same per-metric sums."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.connect() as conn:
        stored = {
            r.metric: (r.n, r.total)
            for r in conn.execute(
                text(f"SELECT metric, COUNT(*) AS n, SUM(value) AS total FROM {LIMIT_TABLE} GROUP BY metric")
            )
        }
    engine.dispose()
    units = len(dataset.unit_codes)
    expected = {metric: (units, total) for metric, total in dataset.sums(day).items()}
    return _compare_sums("limit table", stored, expected)


# ---- b: the package in one process -------------------------------------------------------------------------


@contextmanager
def time_spent_in(owner, name: str, totals: dict[str, float], key: str) -> Iterator[None]:
    """Add the seconds spent in owner.name (a module function or a method, looked up when called) to totals[key]."""
    original = getattr(owner, name)

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[key] = totals.get(key, 0.0) + time.perf_counter() - started

    setattr(owner, name, timed)
    try:
        yield
    finally:
        setattr(owner, name, original)


def close_day_in_process(ctx, day: date) -> dict[str, float]:
    """What the DAG does for one day, in one process, timed step by step; raises if a unit is not loaded. Of those
    steps' time, what Great Expectations took: its validation runs (load and reconcile) and the Data Docs site."""
    from closeout import datadocs
    from closeout.checks import GxRunner

    steps: dict[str, float] = {"gx validations": 0.0, "data docs": 0.0}
    with (
        time_spent_in(GxRunner, "_run", steps, "gx validations"),
        time_spent_in(datadocs, "build", steps, "data docs"),
    ):
        return _close_day_in_process(ctx, day, steps)


def _close_day_in_process(ctx, day: date, steps: dict[str, float]) -> dict[str, float]:
    from closeout.load import load_group
    from closeout.pipeline import plan_unit_groups, render_bulletin
    from closeout.reconcile import reconcile_day

    started = time.perf_counter()
    groups = plan_unit_groups(ctx)
    steps["plan"] = time.perf_counter() - started
    started = time.perf_counter()
    failed = [o for g in groups for o in load_group(ctx, day, g["codes"]) if o.failed]
    steps["load"] = time.perf_counter() - started
    if failed:
        raise BenchFailure(f"{day}: {len(failed)} units not loaded: " + " | ".join(o.lines[0] for o in failed[:5]))
    started = time.perf_counter()
    reconcile_day(ctx, day)
    steps["reconcile"] = time.perf_counter() - started
    started = time.perf_counter()
    render_bulletin(ctx, day)
    steps["render"] = time.perf_counter() - started
    return steps


def close_earlier_days(ctx, dataset: Dataset) -> None:
    """Every day before the timed one, closed untimed, so the timed day reconciles against closed history."""
    for day in dataset.days[:-1]:
        close_day_in_process(ctx, day)


# ---- c: Airflow --------------------------------------------------------------------------------------------


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
FLOOR_DAG = '''"""Airflow's own cost of running daily_closeout's shape: every task does nothing (bench/run.py)."""
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


# ---- d: parsing the DAG files ------------------------------------------------------------------------------

DAG_FILES = tuple(sorted((ROOT / "dags").glob("*.py")))
DAG_PARSE_REPEATS = 3


@dataclass(frozen=True)
class DagParse:
    seconds: float  # beyond importing airflow.sdk, which a dag-processor has already imported
    modules: frozenset[str]  # the top-level modules the files imported
    registry_parsed: bool  # whether the registry was parsed whole (for a trigger form's pick list)


def dag_parse(files: tuple[Path, ...], **env: str) -> DagParse:
    """Parse DAG files in a new interpreter that has imported airflow.sdk first, as a dag-processor has."""
    probe = (
        "import json, sys, time, runpy\n"
        "import airflow.sdk, pendulum\n"
        "before = set(sys.modules)\n"
        "started = time.perf_counter()\n"
        f"for path in {[str(f) for f in files]!r}: runpy.run_path(path)\n"
        "seconds = time.perf_counter() - started\n"
        "registry = sys.modules.get('closeout.registry')\n"
        "parsed = bool(registry and registry._parsed_registry.cache_info().currsize)\n"
        "print(json.dumps([seconds, sorted({m.split('.')[0] for m in set(sys.modules) - before}), parsed]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env={**os.environ, **env}
    )
    seconds, modules, parsed = json.loads(result.stdout.strip().splitlines()[-1])
    return DagParse(seconds, frozenset(modules), parsed)


def dag_parse_seconds(registry: Path) -> float:
    """All DAG files parsed with this registry, the quickest of a few fresh interpreters."""
    env = {"CLOSEOUT_REGISTRY": str(registry), "CLOSEOUT_DB_URL": "postgresql://nowhere.invalid/none"}
    return min(dag_parse(DAG_FILES, **env).seconds for _ in range(DAG_PARSE_REPEATS))


# ---- correctness -------------------------------------------------------------------------------------------


def verify_store(db_url: str, dataset: Dataset, day: date, delivered: bool = False) -> list[str]:
    """What the store says about `day` against what was generated; [] when they agree.

    Every reported figure of every unit, the per-metric sums, the derived cumulatives (one per unit, their sum
    the flow summed to this day), every unit cleared and the optional city level absent, not one finding (the
    data is generated clean), an edition rendered — and, for an Airflow run, the bulletin mailed once."""
    from sqlalchemy import create_engine, text

    problems = []
    key = {"report_date": day.isoformat()}
    engine = create_engine(db_url)
    with engine.connect() as conn:
        figures = conn.execute(
            text("SELECT unit_code, metric, value, source_sha256 FROM figure WHERE report_date = :report_date"), key
        ).all()
        statuses = dict(
            conn.execute(
                text("SELECT status, COUNT(*) FROM unit_day WHERE report_date = :report_date GROUP BY status"), key
            ).all()
        )
        findings = conn.execute(
            text(
                "SELECT severity, rule, COUNT(*) FROM finding WHERE report_date = :report_date "
                "GROUP BY severity, rule ORDER BY 3 DESC"
            ),
            key,
        ).all()
        editions = conn.execute(text("SELECT COUNT(*) FROM edition WHERE report_date = :report_date"), key).scalar()
        sent = conn.execute(
            text("SELECT COUNT(*) FROM delivery WHERE report_date = :report_date AND status = 'sent'"), key
        ).scalar()
    engine.dispose()

    reported = [f for f in figures if f.source_sha256 != "derived"]
    derived = [f for f in figures if f.source_sha256 == "derived"]
    expected_rows = dataset.figure_count(day)
    if len(reported) != expected_rows:
        problems.append(f"{day}: {len(reported)} reported figure rows stored, {expected_rows} generated")
    truth = dataset.figures[day]
    wrong = [
        f"{f.unit_code}/{f.metric} stored {f.value} generated {truth.get(f.unit_code, {}).get(f.metric)}"
        for f in reported
        if truth.get(f.unit_code, {}).get(f.metric) != f.value
    ]
    if wrong:
        problems.append(f"{day}: {len(wrong)} figures differ from the files, e.g. " + "; ".join(wrong[:5]))
    units = len(dataset.unit_codes)
    problems += _compare_sums(
        f"{day} reported figures",
        _sums(reported),
        {metric: (units, total) for metric, total in dataset.sums(day).items()},
    )
    problems += _compare_sums(
        f"{day} derived figures",
        _sums(derived),
        {metric: (units, total) for metric, total in dataset.cumulative_sums(day).items()},
    )
    if statuses != {"cleared": units, "absent": 1}:
        problems.append(f"{day}: unit statuses {statuses}, expected {units} cleared and the city level absent")
    if findings:
        problems.append(
            f"{day}: findings on generated-clean data: " + ", ".join(f"{s}/{r}×{n}" for s, r, n in findings)
        )
    if not editions:
        problems.append(f"{day}: no bulletin edition rendered")
    if delivered and sent != 1:
        problems.append(f"{day}: {sent} bulletin deliveries sent, expected exactly 1")
    return problems


def _sums(rows) -> dict[str, tuple[int, float]]:
    sums: dict[str, tuple[int, float]] = {}
    for row in rows:
        count, total = sums.get(row.metric, (0, 0.0))
        sums[row.metric] = (count + 1, total + row.value)
    return sums


def _compare_sums(what: str, stored: dict, expected: dict) -> list[str]:
    """Per metric: (rows, sum) stored against generated; sums of whole numbers compared exactly."""
    problems = []
    for metric in sorted(set(stored) | set(expected)):
        have, want = stored.get(metric), expected.get(metric)
        if have is None or want is None or have[0] != want[0] or float(have[1]) != float(want[1]):
            problems.append(f"{what}: {metric} stored (rows, sum) {have}, generated {want}")
    return problems


# ---- the run -----------------------------------------------------------------------------------------------


def measure_scale(
    dataset: Dataset,
    backend: str,
    work: Path,
    pg_admin_url: str,
    with_airflow: bool,
    airflow_settings: dict[str, str] | None,
    profile_dir: Path | None,
    floors: dict[tuple[int, int], float | None],
) -> Measurement:
    """One row of the table. `floors` keeps Airflow's floor per DAG shape: one scale's backends share it."""
    day = dataset.days[-1]
    result = Measurement(dataset.scale, backend, len(dataset.unit_codes), dataset.figure_count(day))
    label = f"{dataset.scale}_{backend}"

    def attempt(step: str, action) -> None:
        """A step that raises is a correctness failure of this row, reported with where it happened."""
        try:
            action()
        except Exception as exc:
            where = _where(exc)
            message = " ".join(str(exc).split())[:400]  # one line; the whole traceback is kept beside the logs
            result.problems.append(f"{step}: {type(exc).__name__}: {message}" + (f" (at {where})" if where else ""))
            (work / f"{label}-{step}-traceback.txt").write_text(traceback.format_exc(), encoding="utf-8")

    def limit() -> None:
        with fresh_store(backend, f"{dataset.scale}_limit", work, pg_admin_url) as url:
            result.limit_s = bulk_load_limit(dataset.files(day), url)
            result.problems += verify_limit_table(url, dataset, day)

    def in_process() -> None:
        folder = work / f"{label}-in-process"
        shutil.rmtree(folder, ignore_errors=True)  # a kept work dir: editions are never overwritten
        with fresh_store(backend, f"{dataset.scale}_inproc", folder.parent, pg_admin_url) as url:
            ctx = context_for(closeout_env(dataset, url, folder))
            try:
                close_earlier_days(ctx, dataset)
                with profiled(profile_dir / f"{label}.prof" if profile_dir else None):
                    started = time.perf_counter()
                    result.in_process_steps = close_day_in_process(ctx, day)
                    result.in_process_s = time.perf_counter() - started
            finally:
                ctx.store.dispose()
            result.problems += [p for d in dataset.days for p in verify_store(url, dataset, d)]

    def through_airflow() -> None:
        folder = work / f"{label}-airflow"
        shutil.rmtree(folder, ignore_errors=True)
        with fresh_store(backend, f"{dataset.scale}_airflow", folder.parent, pg_admin_url) as url:
            env = closeout_env(dataset, url, folder)
            ctx = context_for(env)
            try:
                close_earlier_days(ctx, dataset)
            finally:
                ctx.store.dispose()
            log = work / f"{label}-airflow-dags-test.log"
            result.airflow_s, code, result.airflow_steps = airflow_day({**env, **(airflow_settings or {})}, day, log)
            if code != 0:
                result.problems.append(f"airflow dags test exited {code}; log: {log}")
            result.problems += [p for d in dataset.days[:-1] for p in verify_store(url, dataset, d)]
            result.problems += verify_store(url, dataset, day, delivered=True)  # the day Airflow closed and mailed
            if code == 0:
                result.floor_s = floor_of(dag_shape(log))

    def floor_of(shape: tuple[int, int]) -> float | None:
        """Airflow's floor for this shape, measured once per scale; None (and a problem) when its run failed."""
        if shape not in floors:
            seconds, code, log = airflow_floor(airflow_settings or {}, day, shape, work)
            if code != 0:
                result.problems.append(f"airflow dags test of the floor DAG exited {code}; log: {log}")
            floors[shape] = seconds if code == 0 else None
        return floors[shape]

    attempt("limit", limit)
    attempt("in-process", in_process)
    if with_airflow:
        attempt("airflow", through_airflow)
    return result


def _where(exc: BaseException) -> str:
    """The innermost frame in this project's code (src/closeout or bench) where the exception was raised."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if str(ROOT) in f.filename]
    return f"{Path(frames[-1].filename).relative_to(ROOT)}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""


@contextmanager
def profiled(path: Path | None) -> Iterator[None]:
    """cProfile the block into `path` and print its top 30 functions by cumulative time; nothing when None."""
    if path is None:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        path.parent.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(path)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        print(f"\n== cProfile of the in-process day, top 30 by cumulative time ({path})\n{out.getvalue()}", flush=True)


def run_bench(
    scales: list[str],
    backends: list[str],
    airflow_scales: list[str],
    work: Path,
    pg_admin_url: str = DEFAULT_PG_ADMIN_URL,
    days: int = 2,
    seed: int = DEFAULT_SEED,
    profile_dir: Path | None = None,
    progress=print,
) -> list[Measurement]:
    """Generate each scale once, then measure it on each backend; the measurements, with any problems."""
    results = []
    sink, airflow_settings = None, None
    try:
        if airflow_scales:
            from closeout.mailsink import start_sink

            sink = start_sink(work / "mail")
            airflow_settings = airflow_env(work, sink.hostname, sink.port)
            seconds = migrate_airflow(airflow_settings, work / "airflow-db-migrate.log")
            progress(f"Airflow metadata database migrated in {seconds:.0f} s (untimed)")
        for scale in scales:
            dataset = generate(scale, work / scale / "data", days=days, seed=seed)
            progress(
                f"{scale}: {len(dataset.unit_codes)} units, {dataset.groups} load groups, "
                f"{len(dataset.days)} days generated; timing {dataset.days[-1]}"
            )
            floors: dict[tuple[int, int], float | None] = {}
            try:
                parse_s, parse_problems = dag_parse_seconds(dataset.registry_path), []
            except subprocess.CalledProcessError as exc:
                parse_s, parse_problems = None, [f"parsing the DAG files failed: {' '.join(exc.stderr.split())[-400:]}"]
            for backend in backends:
                measurement = measure_scale(
                    dataset,
                    backend,
                    work / scale,
                    pg_admin_url,
                    scale in airflow_scales,
                    airflow_settings,
                    profile_dir,
                    floors,
                )
                measurement.dag_parse_s = parse_s
                measurement.problems += parse_problems
                parse_problems = []  # reported once per scale
                progress(row_line(measurement) + ("" if measurement.ok else "  ← PROBLEMS"))
                results.append(measurement)
    finally:
        if sink is not None:
            sink.stop()
    return results


# ---- the table ---------------------------------------------------------------------------------------------

TABLE_HEAD = (
    "| scale | backend | units | figures | limit s | in-process s | in-process / limit | Airflow s | Airflow / limit "
    "| Airflow floor s | Airflow − floor s |\n"
    "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
)


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"  # the limit is milliseconds at city scale


def _ratio(value: float | None, limit: float | None) -> str:
    return "—" if value is None or not limit else f"{value / limit:,.0f}×"


def row_line(m: Measurement) -> str:
    return (
        f"| {m.scale} | {m.backend} | {m.units:,} | {m.figures:,} | {_seconds(m.limit_s)} | "
        f"{_seconds(m.in_process_s)} | {_ratio(m.in_process_s, m.limit_s)} | {_seconds(m.airflow_s)} | "
        f"{_ratio(m.airflow_s, m.limit_s)} | {_seconds(m.floor_s)} | "
        f"{_seconds(None if m.airflow_s is None or m.floor_s is None else m.airflow_s - m.floor_s)} |"
    )


def steps_table(results: list[Measurement]) -> str:
    """The in-process day by step; then, across load and reconcile, what GX took: its validation runs and building
    the day's Data Docs."""
    lines = [
        "| scale | backend | plan s | load s | reconcile s | render s | of which GX validations s | GX Data Docs s |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for m in results:
        if m.in_process_steps:
            s = m.in_process_steps
            lines.append(
                f"| {m.scale} | {m.backend} | {s['plan']:.2f} | {s['load']:.2f} | {s['reconcile']:.2f} | "
                f"{s['render']:.2f} | {s['gx validations']:.2f} | {s['data docs']:.2f} |"
            )
    return "\n".join(lines)


AIRFLOW_COLUMNS = ("start-up", "plan_unit_groups", "load_unit_group", "reconcile_day", "render_bulletin")


def airflow_steps_table(results: list[Measurement]) -> str:
    """Where the Airflow column's seconds went, from the `dags test` log; "other" is the remaining tasks (receipts,
    re-check, sign-off check, email, confirm), "rest" what lies between tasks and after the last."""
    head = " | ".join(f"{c} s" for c in AIRFLOW_COLUMNS)
    lines = [
        f"| scale | backend | {head} | other tasks s | rest s |",
        "|---|---|" + "--:|" * (len(AIRFLOW_COLUMNS) + 2),
    ]
    for m in results:
        if m.airflow_steps and m.airflow_s is not None:
            shown = [m.airflow_steps.get(c, 0.0) for c in AIRFLOW_COLUMNS]
            other = sum(v for k, v in m.airflow_steps.items() if k not in AIRFLOW_COLUMNS)
            rest = m.airflow_s - sum(shown) - other
            cells = " | ".join(f"{v:.2f}" for v in [*shown, other, rest])
            lines.append(f"| {m.scale} | {m.backend} | {cells} |")
    return "\n".join(lines)


def dag_parse_table(results: list[Measurement]) -> str:
    """Per scale, every DAG file parsed with its registry: flat when nothing at parse time grows with the units."""
    lines = ["| scale | units | DAG files parsed s |", "|---|--:|--:|"]
    shown = {m.scale: m for m in results if m.dag_parse_s is not None}
    lines += [f"| {m.scale} | {m.units:,} | {m.dag_parse_s:.3f} |" for m in shown.values()]
    return "\n".join(lines)


def _machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), Python {sys.version.split()[0]}, load {load}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="city,province,country", help="comma-separated: " + ",".join(SCALES))
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated: " + ",".join(BACKENDS))
    parser.add_argument(
        "--airflow-scales",
        default=",".join(AIRFLOW_SCALES),
        help="scales also run through `airflow dags test` (slow); default: city,province",
    )
    parser.add_argument("--skip-airflow", action="store_true", help="no `airflow dags test` at any scale")
    parser.add_argument("--days", type=int, default=2, help="days generated; all but the last are closed untimed")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL, help="where fresh databases are created")
    parser.add_argument("--work-dir", type=Path, help="keep generated files, stores and logs here")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="cProfile each timed in-process day into DIR")
    parser.add_argument("--json", type=Path, help="also write the measurements as JSON")
    args = parser.parse_args(argv)

    scales = _choices(args.scales, SCALES)
    backends = _choices(args.backends, BACKENDS)
    airflow_scales = [] if args.skip_airflow else [s for s in _choices(args.airflow_scales, SCALES) if s in scales]
    if args.days < 2:
        parser.error("--days must be at least 2: the timed day reconciles against a closed day before it")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="closeout-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"closeout bench: {_machine()}; work dir {work}", flush=True)
    if args.profile:
        print("cProfile is on: the in-process column includes the profiler's overhead", flush=True)
    print(TABLE_HEAD, flush=True)
    results = run_bench(
        scales,
        backends,
        airflow_scales,
        work,
        args.pg_admin_url,
        args.days,
        args.seed,
        args.profile,
        progress=lambda line: print(line, flush=True),
    )
    if args.work_dir is None and all(m.ok for m in results):
        shutil.rmtree(work, ignore_errors=True)
    elif args.work_dir is None:
        print(f"\nWork dir kept for inspection (logs, tracebacks, SQLite stores): {work}")
    print("\n" + TABLE_HEAD + "\n" + "\n".join(row_line(m) for m in results))
    print("\nIn-process steps of the timed day:\n" + steps_table(results))
    if any(m.airflow_steps for m in results):
        print("\nThe Airflow day, from its log:\n" + airflow_steps_table(results))
    print(
        f"\nThe {len(DAG_FILES)} DAG files parsed with each scale's registry, beyond importing airflow.sdk "
        f"(quickest of {DAG_PARSE_REPEATS}):\n" + dag_parse_table(results)
    )
    if args.json:
        args.json.write_text(json.dumps([asdict(m) for m in results], indent=1), encoding="utf-8")
    failed = [m for m in results if not m.ok]
    for m in failed:
        print(f"\nCORRECTNESS FAILED: {m.scale} on {m.backend}", file=sys.stderr)
        for problem in m.problems:
            print("  " + problem, file=sys.stderr)
    if not failed:
        print("\nCorrectness: every store holds exactly the generated figures; every unit cleared, no findings.")
    return 1 if failed else 0


def _choices(raw: str, allowed) -> list[str]:
    chosen = [item.strip() for item in raw.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in allowed]
    if unknown:
        raise SystemExit(f"unknown {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return chosen


if __name__ == "__main__":
    sys.exit(main())
