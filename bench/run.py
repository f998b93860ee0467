"""make bench: how long one reporting day takes at city, province and country scale, on SQLite and PostgreSQL,
measured three ways in the same run, and whether the store then holds exactly the figures that were sent.

What is measured (the limit, in process, through `airflow dags test` and its floor, the DAG parse, the store checked
after every measurement) is bench.scenarios; how it is printed is bench.report; this is the command line.

    python -m bench.run                                  # city, province, country; Airflow for city and province
    python -m bench.run --scales province --skip-airflow --backends postgresql   # what CI runs (tests/integration/test_bench.py)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.airflow_day import airflow_env, migrate_airflow
from bench.generate import DEFAULT_SEED, SCALES, generate
from bench.report import TABLE_HEAD, machine, print_results, row_line
from bench.scenarios import (
    AIRFLOW_SCALES,
    BACKENDS,
    DEFAULT_PG_ADMIN_URL,
    Measurement,
    dag_parse_seconds,
    measure_scale,
)


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
            from closeout.deliver.mailsink import start_sink

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
    print(f"closeout bench: {machine()}; work dir {work}", flush=True)
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
    return print_results(results, args.json)


def _choices(raw: str, allowed) -> list[str]:
    chosen = [item.strip() for item in raw.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in allowed]
    if unknown:
        raise SystemExit(f"unknown {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return chosen


if __name__ == "__main__":
    sys.exit(main())
