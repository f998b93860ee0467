"""How `make bench` prints its results: the table (seconds, and the ratios to the physical limit), the in-process
and Airflow steps, the DAG parse per scale, the correctness verdict; and the JSON written on request."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from bench.scenarios import DAG_FILES, DAG_PARSE_REPEATS, Measurement

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


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), Python {sys.version.split()[0]}, load {load}"


def print_results(results: list[Measurement], json_path: Path | None = None) -> int:
    """The tables of the whole run, the JSON if asked for, and the correctness verdict; the exit code."""
    print("\n" + TABLE_HEAD + "\n" + "\n".join(row_line(m) for m in results))
    print("\nIn-process steps of the timed day:\n" + steps_table(results))
    if any(m.airflow_steps for m in results):
        print("\nThe Airflow day, from its log:\n" + airflow_steps_table(results))
    print(
        f"\nThe {len(DAG_FILES)} DAG files parsed with each scale's registry, beyond importing airflow.sdk "
        f"(quickest of {DAG_PARSE_REPEATS}):\n" + dag_parse_table(results)
    )
    if json_path:
        json_path.write_text(json.dumps([asdict(m) for m in results], indent=1), encoding="utf-8")
    failed = [m for m in results if not m.ok]
    for m in failed:
        print(f"\nCORRECTNESS FAILED: {m.scale} on {m.backend}", file=sys.stderr)
        for problem in m.problems:
            print("  " + problem, file=sys.stderr)
    if not failed:
        print("\nCorrectness: every store holds exactly the generated figures; every unit cleared, no findings.")
    return 1 if failed else 0
