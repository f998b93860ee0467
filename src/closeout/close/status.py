"""The day's status, read from the store: each unit's status, the units holding the day open, and the editions
waiting for a sign-off. Notices, sign-off, the bulletin, the CLI and the loaders read it here, one way."""

from __future__ import annotations

from datetime import date

from closeout.core.vocabulary import SETTLED, SignoffDecision, UnitStatus
from closeout.store.context import Context

# Why a required unit still holds the day open, as ops and approvers read it.
OPEN_BECAUSE = {
    UnitStatus.REJECTED: "文件被退回未重报",
    UnitStatus.BREAK: "未结清（与前日接不上）",
    UnitStatus.RECEIVED: "已收到文件但未能入库",
    UnitStatus.LOADED: "已受理，待对账",
    UnitStatus.MISSING: "缺报（未收到文件）",
}


def unit_days(ctx: Context, report_date: date) -> dict[str, dict]:
    """Each unit's unit_day row for the day (status, detail, updated_at), by unit code; units with none are absent."""
    return {r["unit_code"]: r for r in ctx.store.rows("select_unit_days", {"report_date": report_date.isoformat()})}


def unit_statuses(ctx: Context, report_date: date) -> dict[str, UnitStatus]:
    """Each unit's status for the day, by unit code; a unit with no row yet is absent from the map."""
    return {code: UnitStatus(row["status"]) for code, row in unit_days(ctx, report_date).items()}


def open_units(ctx: Context, report_date: date) -> list[tuple[str, str]]:
    """Required units holding the day open, with why: (name, reason)."""
    rows = unit_days(ctx, report_date)
    found = []
    for unit in ctx.registry.units:
        status = rows.get(unit.code, {}).get("status", UnitStatus.MISSING)
        if unit.required and status not in SETTLED:
            detail = rows.get(unit.code, {}).get("detail", "")
            found.append((unit.name, OPEN_BECAUSE.get(status, status) + (f"：{detail}" if detail else "")))
    return found


def pending_signoffs(ctx: Context, report_date: date) -> list[dict]:
    """The day's editions waiting for a person's sign-off (edition_signoff rows, oldest first)."""
    rows = ctx.store.rows("select_signoffs", {"report_date": report_date.isoformat()})
    return [r for r in rows if r["decision"] == SignoffDecision.PENDING]


def is_published(ctx: Context, report_date: date) -> bool:
    """Whether the day's bulletin went out, or may have (an attempt is being sent)."""
    return bool(ctx.store.rows("select_published", {"report_date": report_date.isoformat()}))
