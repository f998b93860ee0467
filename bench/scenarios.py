"""What `make bench` measures: how long one reporting day takes at city, province and country scale, on SQLite and
PostgreSQL, measured three ways in the same run, and whether the store then holds exactly the figures that were sent.

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
sums, the derived cumulatives, every unit cleared, no finding: bench.correctness); any difference makes the run exit
non-zero. `airflow dags test` is driven by bench.airflow_day, the results are printed by bench.report, and the
command line is bench.run. Timings are printed, never asserted.
"""

from __future__ import annotations

import cProfile
import csv
import io
import json
import os
import pstats
import shutil
import sqlite3
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from bench.airflow_day import airflow_day, airflow_floor, dag_shape
from bench.correctness import compare_sums, verify_store
from bench.generate import Dataset

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("sqlite", "postgresql")
# Country scale through `airflow dags test` is not run by default: one process runs every mapped task in turn,
# which says little about a deployment with workers and takes a long time on a small machine.
AIRFLOW_SCALES = ("city", "province")
DEFAULT_PG_ADMIN_URL = os.environ.get("CLOSEOUT_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
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
    from closeout.core.settings import load_settings
    from closeout.store.context import Context

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
    return compare_sums("limit table", stored, expected)


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
    from closeout.checks import datadocs
    from closeout.checks.engine import GxRunner

    steps: dict[str, float] = {"gx validations": 0.0, "data docs": 0.0}
    with (
        time_spent_in(GxRunner, "_run", steps, "gx validations"),
        time_spent_in(datadocs, "build", steps, "data docs"),
    ):
        return _close_day_in_process(ctx, day, steps)


def _close_day_in_process(ctx, day: date, steps: dict[str, float]) -> dict[str, float]:
    from closeout.close.load import load_group
    from closeout.close.plan import plan_unit_groups
    from closeout.close.reconcile import reconcile_day
    from closeout.orchestration.pipeline import render_bulletin

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


# ---- c: parsing the DAG files ------------------------------------------------------------------------------

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
        "registry = sys.modules.get('closeout.core.registry')\n"
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
