"""Reconciliation of a day: against yesterday's close-out and the trailing week, and across units."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from closeout.archive import archive_file, quarantine_file
from closeout.checks import GxRunner, run_checks
from closeout.context import Context
from closeout.findings import Finding
from closeout.ingest import discover

HISTORY_DAYS = 7


@dataclass
class DayFigures:
    """Figures of a day and the week before it, as {date: {unit_code: {metric: (value, qualifier)}}}."""

    report_date: date
    by_day: dict[date, dict[str, dict[str, tuple[float, str]]]]

    def today(self) -> dict[str, dict[str, tuple[float, str]]]:
        return self.by_day.get(self.report_date, {})

    def day(self, offset: int) -> dict[str, dict[str, tuple[float, str]]]:
        return self.by_day.get(self.report_date - timedelta(days=offset), {})


def read_figures(ctx: Context, report_date: date, days_before: int = HISTORY_DAYS) -> DayFigures:
    rows = ctx.store.rows(
        "select_figures_between",
        {"first_date": (report_date - timedelta(days=days_before)).isoformat(), "last_date": report_date.isoformat()},
    )
    by_day: dict = {}
    for r in rows:
        day = date.fromisoformat(r["report_date"])
        by_day.setdefault(day, {}).setdefault(r["unit_code"], {})[r["metric"]] = (r["value"], r["qualifier"])
    return DayFigures(report_date, by_day)


def wide_with_history(ctx: Context, figures: DayFigures) -> pd.DataFrame:
    """One row per unit that has figures today: metric columns plus prev_, prev2_, mean7_, days7_ columns."""
    keys = [m.key for m in ctx.catalogue.metrics]
    records = {}
    for unit in ctx.registry.all_units:
        today = figures.today().get(unit.code)
        if not today:
            continue
        record = {k: today[k][0] for k in today}
        for key in keys:
            earlier = [figures.day(n).get(unit.code, {}).get(key) for n in range(1, HISTORY_DAYS + 1)]
            values = [v[0] for v in earlier if v is not None]
            record[f"prev_{key}"] = earlier[0][0] if earlier[0] else None
            record[f"prev2_{key}"] = earlier[1][0] if earlier[1] else None
            record[f"mean7_{key}"] = sum(values) / len(values) if values else None
            record[f"days7_{key}"] = len(values)
        records[unit.code] = record
    return pd.DataFrame.from_dict(records, orient="index")


def derive_cumulative(ctx: Context, report_date: date) -> list[Finding]:
    """C metrics: the city derives them from flows; a unit's own C figure is checked against that."""
    findings = []
    day = report_date.isoformat()
    names = ctx.unit_names()
    with ctx.store.transaction() as conn:
        ctx.store.run(conn, "delete_derived_figures", {"report_date": day})
        submitted = {
            (r.unit_code, r.metric): r.value
            for r in ctx.store.run(conn, "select_figures_between", {"first_date": day, "last_date": day})
        }
        reporting = {unit for unit, _ in submitted}
        for metric in (m for m in ctx.catalogue.metrics if m.kind == "C"):
            totals = {
                r.unit_code: r.total
                for r in ctx.store.run(
                    conn, "select_flow_totals_until", {"metric": metric.derived_from, "report_date": day}
                )
            }
            for unit_code in sorted(reporting):
                derived = totals.get(unit_code, 0.0)
                own = submitted.get((unit_code, metric.key))
                if own is None:
                    ctx.store.run(
                        conn,
                        "insert_derived_figure",
                        {"report_date": day, "unit_code": unit_code, "metric": metric.key, "value": derived},
                    )
                elif own != derived:
                    findings.append(
                        Finding(
                            report_date,
                            unit_code,
                            names[unit_code],
                            "hard",
                            "reconcile",
                            "cumulative_balance",
                            f"报送累计{own:.0f}与逐日新增之和{derived:.0f}不符",
                            metric=metric.display,
                            value=f"{own:.0f}",
                        )
                    )
    return findings


def quarantine_unmatched(ctx: Context, report_date: date) -> list[Finding]:
    """Files whose name names no unit in the registry: kept in quarantine, listed in the data notes."""
    findings = []
    region = ctx.registry.region_code
    for path in discover(ctx.settings.inbox, report_date, ctx.registry).unmatched:
        item = archive_file(path, ctx.settings.archive_dir, report_date, "unmatched")
        finding = Finding(
            report_date,
            region,
            "未识别单位",
            "hard",
            "load",
            "unknown_unit",
            "文件名无法对应名录中的任何单位（应为单位代码、拼音或中文名，扩展名 .csv/.xlsx/.md）",
            file=path.name,
        )
        quarantine_file(item, ctx.settings.quarantine_dir, report_date, "unmatched", [finding.line()])
        findings.append(finding)
    return findings


def reconcile_day(ctx: Context, report_date: date) -> dict[str, str]:
    """Store reconcile findings and each unit's close-out status; returns {unit_code: status}."""
    day = report_date.isoformat()
    findings = derive_cumulative(ctx, report_date) + quarantine_unmatched(ctx, report_date)
    figures = read_figures(ctx, report_date)
    wide = wide_with_history(ctx, figures)
    checks = [c for c in ctx.catalogue.checks if c.stage == "reconcile"]
    if not wide.empty:
        findings += run_checks(GxRunner(), wide, checks, ctx.catalogue, report_date, ctx.unit_names(), "reconcile")
    loaded_status = {r["unit_code"]: r["status"] for r in ctx.store.rows("select_unit_days", {"report_date": day})}
    statuses = {}
    with ctx.store.transaction() as conn:
        ctx.store.run(conn, "delete_stage_findings", {"report_date": day, "stage": "reconcile"})
        ctx.store.run(
            conn, "delete_findings", {"report_date": day, "unit_code": ctx.registry.region_code, "stage": "load"}
        )
        ctx.store.run(conn, "insert_finding", [f.as_record() for f in findings])
        for unit in ctx.registry.all_units:
            breaks = [f for f in findings if f.unit_code == unit.code and f.severity == "hard"]
            before = loaded_status.get(unit.code)
            if before == "rejected":
                status, detail = "rejected", ""
            elif unit.code in figures.today():
                status, detail = ("break", breaks[0].line()) if breaks else ("cleared", "")
            else:
                status, detail = ("missing" if unit.required else "absent"), ""
            statuses[unit.code] = status
            if detail or status != before:
                ctx.store.set_unit_day(conn, day, unit.code, status, detail)
    return statuses
