"""Re-closing a published day D: stocks and cumulatives carry over, so every later closed day D+1 … (the last one
whose bulletin went out) is checked again. A derived figure that changes becomes a correction record of its own
(kind recalculated, signed like the re-close); a balance that breaks becomes a finding on the day it breaks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

from closeout.core.clock import now_local, refuse_future
from closeout.store.context import Context


@dataclass(frozen=True)
class Signature:
    """An operator re-closing a day: who (the Airflow user) and why. A correction of a published figure needs a
    reason; the file's own 备注 gives one, else this one does, and the register names the operator."""

    actor: str
    reason: str


def published(ctx: Context, report_date: date) -> bool:
    return bool(ctx.store.rows("select_published", {"report_date": report_date.isoformat()}))


def recheck_later_days(ctx: Context, report_date: date, actor: str = "", because: str = "") -> dict[str, list[str]]:
    """Reconcile every later published day again; {day: one line per changed figure or new break}, only the days
    that changed. Safe to repeat: a second pass finds nothing new."""
    report: dict[str, list[str]] = {}
    because = because or f"随{report_date.month}月{report_date.day}日数据更正重算"
    for row in ctx.store.rows("select_published_days_after", {"report_date": report_date.isoformat()}):
        later = date.fromisoformat(row["report_date"])
        lines = reconcile_recording(ctx, later, because, actor)
        if lines:
            report[later.isoformat()] = lines
    return report


def reconcile_recording(ctx: Context, day: date, because: str, actor: str = "", build_docs: bool = True) -> list[str]:
    """Reconcile a published day again: a derived figure that changes is recorded as a recalculated revision
    (signed `actor`, reason `because`); one line per changed figure or new break. `build_docs`: as for
    reconcile_day."""
    from closeout.close.reconcile import reconcile_day

    key = {"report_date": day.isoformat()}
    names = ctx.unit_names()
    derived_before = _derived(ctx, day)
    breaks_before = {(r["unit_code"], r["rule"], r["metric"]) for r in ctx.store.rows("select_hard_findings", key)}
    reconcile_day(ctx, day, build_docs)
    derived_after = _derived(ctx, day)
    recorded_at = now_local()
    revisions, lines = [], []
    for unit_metric in sorted(set(derived_before) | set(derived_after)):
        old, new = derived_before.get(unit_metric), derived_after.get(unit_metric)
        if old == new:
            continue
        unit_code, metric = unit_metric
        stamp = hashlib.sha256(f"{because}|{new}|{recorded_at}".encode()).hexdigest()[:16]
        revisions.append(
            {
                **key,
                "unit_code": unit_code,
                "metric": metric,
                "old_value": old,
                "new_value": new,
                "old_qualifier": "",
                "new_qualifier": "",
                "old_sha256": "derived",
                "new_sha256": f"derived-{stamp}",
                "kind": "recalculated",
                "reason": because,
                "recorded_at": recorded_at,
                "recorded_by": actor,
            }
        )
        label = ctx.catalogue.by_key[metric].label
        lines.append(f"{names.get(unit_code, unit_code)} {label} {whole_number(old)} → {whole_number(new)}")
    if revisions:
        with ctx.store.transaction() as conn:
            ctx.store.insert_rows(conn, "insert_revision", revisions)
    for r in ctx.store.rows("select_hard_findings", key):
        if (r["unit_code"], r["rule"], r["metric"]) not in breaks_before:
            lines.append(f"新的不平衡 / new break: {r['line']}")
    return lines


def report_lines(report_date: date, changed: dict[str, list[str]]) -> list[str]:
    """What a re-close prints about the later days (the run's log, the CLI): each day that changed, its lines."""
    if not changed:
        return [f"{report_date} 之后已发布的日期没有变化 / no later published day changed"]
    lines = []
    for day, changes in changed.items():
        lines.append(f"{day} 随 {report_date} 重算后有变化：")
        lines += [f"  {change}" for change in changes]
    return lines


def _derived(ctx: Context, day: date) -> dict[tuple[str, str], float]:
    rows = ctx.store.rows("select_derived_figures", {"report_date": day.isoformat()})
    return {(r["unit_code"], r["metric"]): r["value"] for r in rows}


def whole_number(value) -> str:
    """A derived figure as a re-close reports it: whole, or — when there is none."""
    return "—" if value is None else f"{value:.0f}"


class ReasonRequired(ValueError):
    """Re-closing a day whose bulletin went out changes what leaders were told: it needs a stated reason."""


@dataclass(frozen=True)
class RunRequest:
    """What a daily_closeout run was asked to do by its trigger form: which units to load again (empty: all) and,
    when re-closing a published day, who asked and why (their signature on the corrections it records)."""

    units: tuple[str, ...]
    signed: Signature | None

    def groups(self, planned: list[dict]) -> list[dict]:
        if not self.units:
            return planned
        kept = [{**g, "codes": [c for c in g["codes"] if c in self.units]} for g in planned]
        return [g for g in kept if g["codes"]]


def run_request(ctx: Context, report_date: date, conf: dict | None, user: str | None) -> RunRequest:
    """What a run (or `closeout reclose`) is asked to do; refused in one line, before anything is written, for a
    report date that has not come yet, a unit not in the registry, or a published day re-closed without a reason."""
    refuse_future(report_date)
    conf = conf or {}
    chosen = conf.get("units") or []
    if isinstance(chosen, str):
        chosen = [part for part in chosen.replace("，", ",").split(",") if part.strip()]
    units = []
    for text in chosen:
        unit = ctx.registry.resolve(str(text).strip())
        if unit is None:
            raise ValueError(f"表单里的单位“{text}”不在名录中 / unknown unit in the form: {text!r}")
        units.append(unit.code)
    reason = str(conf.get("reason") or "").strip()
    if conf.get("report_date") and not conf.get("reissue") and not reason and published(ctx, report_date):
        raise ReasonRequired(
            f"{report_date} 的日报已发出：重新结清须在表单“原因 reason”中写明原因（记入更正登记，并随更正版发出）"
        )
    return RunRequest(tuple(units), Signature(user or "（未具名）", reason) if reason else None)
