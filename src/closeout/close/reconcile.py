"""Reconciliation of a day: against yesterday's close-out and the trailing week, and across units."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from closeout.close.status import unit_statuses
from closeout.core.findings import Finding
from closeout.core.textclean import printable_name
from closeout.core.vocabulary import UnitStatus
from closeout.intake.archive import quarantine_file, take_file
from closeout.intake.discovery import discover
from closeout.store.context import Context
from closeout.store.database import unit_day

DERIVED = {"qualifier": "", "note": "", "source_sha256": "derived", "source_rows": "", "attributed_unit": ""}


@dataclass
class DayFigures:
    """Figures of a day and the days before it, as {date: {unit_code: {metric: (value, qualifier)}}}."""

    report_date: date
    by_day: dict[date, dict[str, dict[str, tuple[float, str]]]]
    submitted: dict[date, set[str]]  # units whose figures that day came from a file (not only derived ones)
    cleared: dict[date, set[str]]  # units whose day was closed (已结清): the only history checks trust

    def today(self) -> dict[str, dict[str, tuple[float, str]]]:
        return self.by_day.get(self.report_date, {})

    def day(self, offset: int) -> dict[str, dict[str, tuple[float, str]]]:
        return self.by_day.get(self.report_date - timedelta(days=offset), {})

    def closed(self, offset: int, unit_code: str) -> dict[str, tuple[float, str]] | None:
        day = self.report_date - timedelta(days=offset)
        return self.by_day.get(day, {}).get(unit_code) if unit_code in self.cleared.get(day, set()) else None

    def reporting_today(self) -> set[str]:
        return self.submitted.get(self.report_date, set())


def read_figures(ctx: Context, report_date: date) -> DayFigures:
    """The day's figures and yesterday's (the trailing week's checks run in the store: closeout.checks.compile)."""
    span = {"first_date": (report_date - timedelta(days=1)).isoformat(), "last_date": report_date.isoformat()}
    by_day: dict = {}
    submitted: dict = {}
    for r in ctx.store.rows("select_figures_between", span):
        day = date.fromisoformat(r["report_date"])
        by_day.setdefault(day, {}).setdefault(r["unit_code"], {})[r["metric"]] = (r["value"], r["qualifier"])
        if r["source_sha256"] != "derived":
            submitted.setdefault(day, set()).add(r["unit_code"])
    cleared: dict = {}
    for r in ctx.store.rows("select_unit_days_between", span):
        if r["status"] == UnitStatus.CLEARED:
            cleared.setdefault(date.fromisoformat(r["report_date"]), set()).add(r["unit_code"])
    return DayFigures(report_date, by_day, submitted, cleared)


def previous_day_open(ctx: Context, figures: DayFigures) -> list[Finding]:
    """A unit whose yesterday exists but was not closed: today's stock balances wait for it."""
    yesterday = figures.report_date - timedelta(days=1)
    names = ctx.unit_names()
    return [
        Finding(
            figures.report_date,
            code,
            names[code],
            "soft",
            "reconcile",
            "previous_day_open",
            f"前日（{yesterday.month}月{yesterday.day}日）未结清，存量平衡暂不核验，待前日订正后重跑",
        )
        for code in sorted(figures.reporting_today())
        if code in figures.submitted.get(yesterday, set()) and figures.closed(1, code) is None
    ]


def derive_cumulative(ctx: Context, report_date: date) -> list[Finding]:
    """C metrics: the city derives them from flows for every unit with any (so a missing unit's running
    total carries forward and the city's never falls); a unit's own C figure is checked against that."""
    findings = []
    day = report_date.isoformat()
    names = ctx.unit_names()
    rows: list[dict] = []
    with ctx.store.transaction() as conn:
        ctx.store.run(conn, "delete_derived_figures", {"report_date": day})
        submitted = {
            (r.unit_code, r.metric): r.value
            for r in ctx.store.run(conn, "select_figures_between", {"first_date": day, "last_date": day})
        }
        for metric in (m for m in ctx.catalogue.metrics if m.kind == "C"):
            totals = {
                r.unit_code: r.total
                for r in ctx.store.run(
                    conn, "select_flow_totals_until", {"metric": metric.derived_from, "report_date": day}
                )
            }
            units = set(totals) | {unit for unit, key in submitted if key == metric.key}
            for unit_code in sorted(units):
                derived, own = totals.get(unit_code, 0.0), submitted.get((unit_code, metric.key))
                if own is None:
                    rows.append(
                        {"report_date": day, "unit_code": unit_code, "metric": metric.key, "value": derived, **DERIVED}
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
        ctx.store.insert_rows(conn, "insert_derived_figure", rows)
    return findings


def reconcile_checks(ctx: Context, report_date: date, build_docs: bool = True) -> list[Finding]:
    """The reconcile checks of checks.yaml, run by GX against the store; the day's Data Docs are built after
    (or, `build_docs=False`, by the caller: closeout.checks.datadocs.rebuild)."""
    from closeout.checks.datadocs import keep_results, rebuild
    from closeout.checks.engine import GxRunner, run_store_checks  # GX only in the task that validates

    checks = [c for c in ctx.catalogue.checks if c.stage == "reconcile"]
    results: list = []
    runner = GxRunner.shared()
    findings = run_store_checks(runner, ctx.store.engine, checks, ctx.catalogue, report_date, ctx.unit_names(), results)
    keep_results(ctx.settings, report_date, "reconcile", results)
    if build_docs:
        rebuild(ctx, report_date)
    return findings


def quarantine_unmatched(ctx: Context, report_date: date) -> list[Finding]:
    """Files whose name names no unit in the registry: kept in quarantine, listed in the data notes."""
    findings = []
    region = ctx.registry.region_code
    for path in discover(ctx.settings.inbox, report_date, ctx.registry).unmatched:
        item = take_file(path, ctx.settings.archive_dir, report_date, "unmatched", ctx.settings.limits)
        shared = ctx.registry.sharing(path.stem)
        message = (
            f"文件名是名录中多个单位共用的名称（{'、'.join(u.label for u in shared)}），请用单位代码命名"
            if shared
            else "文件名无法对应名录中的任何单位（应为单位代码、拼音或中文名，扩展名 .csv/.xlsx/.md）"
        )
        finding = Finding(
            report_date, region, "未识别单位", "hard", "load", "unknown_unit", message, file=printable_name(path.name)
        )
        quarantine_file(item, ctx.settings.quarantine_dir, report_date, "unmatched", [finding.line()])
        findings.append(finding)
    return findings


def reconcile_day(ctx: Context, report_date: date, build_docs: bool = True) -> dict[str, str]:
    """Store reconcile findings and each unit's close-out status; returns {unit_code: status}. `build_docs=False`
    leaves building the day's Data Docs to the caller (a range builds its days' in parallel)."""
    day = report_date.isoformat()
    findings = derive_cumulative(ctx, report_date) + quarantine_unmatched(ctx, report_date)
    figures = read_figures(ctx, report_date)
    findings += previous_day_open(ctx, figures)
    findings += reconcile_checks(ctx, report_date, build_docs)
    loaded_status = unit_statuses(ctx, report_date)
    excused = {
        r["unit_code"]: f"{r['reason']}（{r['marked_by']} 标记）"
        for r in ctx.store.rows("select_excusals", {"report_date": day})
    }
    statuses = {}
    with ctx.store.transaction() as conn:
        ctx.store.run(conn, "delete_stage_findings", {"report_date": day, "stage": "reconcile"})
        ctx.store.run(
            conn, "delete_findings", {"report_date": day, "unit_code": ctx.registry.region_code, "stage": "load"}
        )
        ctx.store.insert_rows(conn, "insert_finding", [f.as_record() for f in findings])
        changed, breaks = [], {}
        for finding in findings:
            if finding.severity == "hard":
                breaks.setdefault(finding.unit_code, finding)  # the first hard finding is the unit's detail
        for unit in ctx.registry.all_units:
            before = loaded_status.get(unit.code)
            if before in (UnitStatus.REJECTED, UnitStatus.RECEIVED):  # received: its load failed and will be retried
                status, detail = before, ""
            elif unit.code in figures.reporting_today():
                status, detail = (
                    (UnitStatus.BREAK, breaks[unit.code].line()) if unit.code in breaks else (UnitStatus.CLEARED, "")
                )
            elif unit.code in excused:  # an operator recorded that it will not report today
                status, detail = UnitStatus.EXCUSED, excused[unit.code]
            else:
                status, detail = (UnitStatus.MISSING if unit.required else UnitStatus.ABSENT), ""
            statuses[unit.code] = status
            if detail or status != before:
                changed.append(unit_day(day, unit.code, status, detail))
        ctx.store.run(conn, "upsert_unit_day", changed)
    return statuses
