"""The publishing steps of the daily close-out (loading is closeout.load, reconciling closeout.reconcile)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date
from email.message import EmailMessage
from pathlib import Path

from closeout.bulletin import STATUS_LABELS, build_bulletin, render, write_outputs
from closeout.context import Context
from closeout.mailer import Delivery, deliver_once


def plan_unit_groups(ctx: Context) -> list[dict]:
    """The registry's load groups, in code order; also makes sure the store's tables exist."""
    ctx.store.ensure_schema()
    return [{"key": g.key, "codes": list(g.codes), "label": g.label} for g in ctx.registry.groups()]


def render_bulletin(ctx: Context, report_date: date) -> Path:
    bulletin = build_bulletin(ctx, report_date)
    return write_outputs(ctx, bulletin, render(ctx, bulletin))


def email_bulletin(
    ctx: Context,
    report_date: date,
    sender: str,
    connect: Callable[[], AbstractContextManager[Callable[[EmailMessage], object]]],
) -> Delivery:
    bulletin = build_bulletin(ctx, report_date)  # deterministic: the same store gives the same bulletin
    return deliver_once(ctx, bulletin, render(ctx, bulletin), sender, connect)


def open_units(ctx: Context, report_date: date) -> list[str]:
    """Required units whose day is not cleared, as "衢江区 拒收" for the operator."""
    statuses = {
        r["unit_code"]: r["status"]
        for r in ctx.store.rows("select_unit_days", {"report_date": report_date.isoformat()})
    }
    return [
        f"{u.name} {STATUS_LABELS.get(statuses.get(u.code, 'missing'), statuses.get(u.code))}"
        for u in ctx.registry.units
        if u.required and statuses.get(u.code) != "cleared"
    ]
