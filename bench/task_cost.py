"""make bench: the fixed cost of one fresh group task — what a worker pays before and around the work itself,
whatever the group's size. It runs what `load_unit_group` runs for a group of one unit, in a new process, and
times each step from inside that process, two ways:

  cold  a new interpreter, as a LocalExecutor worker or a Celery worker without closeout.orchestration.worker runs a task;
  warm  a process forked from one that ran closeout.orchestration.worker's warm-up first (untimed), as Airflow forks each task
        from a Celery worker started with AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=closeout.orchestration.worker.CELERY_CONFIG.

  start          python starting (cold) or the fork (warm), until the first line of the task runs
  imports        closeout.close.load and what it pulls in (pandas, SQLAlchemy, the parsers)
  context        settings, the registry, the store's engine and schema check
  gx             Great Expectations imported and its context built (only tasks that validate pay it)
  load           load_group for the one unit: archive, parse, validate, store

The process then ends as Airflow's task runner ends one (os._exit), so the total is what a worker pays.

    python -m bench.task_cost                      # SQLite
    python -m bench.task_cost --backend postgresql
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.generate import DEFAULT_SEED, generate
from bench.scenarios import DEFAULT_PG_ADMIN_URL, closeout_env, fresh_store

STEPS = ("start", "imports", "context", "gx", "load")
WORKERS = ("cold", "warm")

# Runs in the fresh interpreter (cold) or in a child it forks after the worker's warm-up (warm); prints its step
# times as JSON. Warm, the parent then prints the task's total, from the fork until the child has exited.
TASK = """
import json, os, sys, time
started = float(sys.argv[1])
if sys.argv[5] == "warm":
    from closeout.orchestration.worker import warm_up
    warm_up()  # what the worker did before forking its pool: no task pays it
    started = time.time()
    child = os.fork()
    if child:
        status = os.waitpid(child, 0)[1]
        print(json.dumps({"total": time.time() - started}), flush=True)
        os._exit(os.waitstatus_to_exitcode(status))
steps = {"start": time.time() - started, "gx preloaded": "great_expectations" in sys.modules}
t = time.perf_counter()
from datetime import date
from closeout.store.context import Context
from closeout.close.load import load_group
from closeout.core.settings import load_settings
steps["imports"] = time.perf_counter() - t
t = time.perf_counter()
ctx = Context(load_settings())
ctx.store.ensure_schema()
steps["context"] = time.perf_counter() - t
t = time.perf_counter()
from closeout.checks.engine import GxRunner
GxRunner.shared()
steps["gx"] = time.perf_counter() - t
t = time.perf_counter()
[outcome] = load_group(ctx, date.fromisoformat(sys.argv[2]), [sys.argv[3]])
assert outcome.status == "loaded", outcome
steps["load"] = time.perf_counter() - t
print(json.dumps(steps), flush=True)
# As Airflow's task runner ends a task process (os._exit after flushing, airflow.sdk.execution_time.supervisor):
# no interpreter finalisation, which with GX and pandas loaded would add 0.6-0.9 s a worker never pays.
if sys.argv[4] == "task-runner":
    import os
    os._exit(0)
"""


ROOT = Path(__file__).resolve().parents[1]


def _bytecode_env() -> dict[str, str]:
    """Where the caller keeps bytecode: without a .pyc cache every import compiles its source, and the GX
    import alone goes from ~2 s to ~9 s here. A worker image has its .pyc files (pip compiles them), so
    measure with a cache too: PYTHONPYCACHEPREFIX keeps one outside a read-only or shared environment."""
    keep = ("PYTHONPYCACHEPREFIX", "PYTHONDONTWRITEBYTECODE")
    return {k: os.environ[k] for k in keep if k in os.environ}


def measure(
    backend: str, work: Path, pg_admin_url: str, repeats: int, exit_as: str = "task-runner", worker: str = "cold"
) -> list[dict[str, float]]:
    dataset = generate("city", work / "data", days=1, seed=DEFAULT_SEED)
    day, unit = dataset.days[0], dataset.unit_codes[0]
    runs = []
    for attempt in range(repeats):
        with fresh_store(backend, f"task{attempt}", work, pg_admin_url) as db_url:
            env = closeout_env(dataset, db_url, work / f"run{attempt}")
            started = time.time()
            done = subprocess.run(
                [sys.executable, "-c", TASK, repr(started), day.isoformat(), unit, exit_as, worker],
                env={**env, **_bytecode_env(), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src")},
                capture_output=True,
                text=True,
                check=False,
            )
            total = time.time() - started
            if done.returncode != 0:
                raise SystemExit(f"the task failed:\n{done.stderr[-3000:]}")
            lines = done.stdout.strip().splitlines()
            if worker == "warm":  # the task is the forked child, from the fork to its exit; not the warm-up
                runs.append({**json.loads(lines[-2]), **json.loads(lines[-1])})
            else:
                runs.append({**json.loads(lines[-1]), "total": total})
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes; the quietest is reported")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument(
        "--exit",
        choices=("task-runner", "interpreter"),
        default="task-runner",
        help="end the process as Airflow's task runner does (os._exit), or with the interpreter's finalisation",
    )
    args = parser.parse_args(argv)
    best = {}
    for worker in WORKERS:
        with tempfile.TemporaryDirectory(prefix="closeout-task-cost-") as work:
            runs = measure(args.backend, Path(work), args.pg_admin_url, args.repeats, args.exit, worker)
        best[worker] = min(runs, key=lambda r: r["total"])
    print(f"\nA fresh group task ({args.backend}, quietest of {args.repeats} each):")
    print("| worker | " + " | ".join(f"{s} s" for s in (*STEPS, "total")) + " | fixed cost s |")
    print("|---|" + "--:|" * (len(STEPS) + 2))
    for worker, steps in best.items():
        cells = " | ".join(f"{steps[s]:.2f}" for s in (*STEPS, "total"))
        print(f"| {worker} | {cells} | {steps['total'] - steps['load']:.2f} |")
    print(
        "fixed cost: everything but the load itself; target ≤ 3 s. warm: forked from a worker that ran closeout.orchestration.worker"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
