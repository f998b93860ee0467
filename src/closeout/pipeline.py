"""The steps of the daily close-out, one function per DAG task. Tests call these without Airflow."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from email.message import EmailMessage
from pathlib import Path

from closeout.bulletin import STATUS_LABELS, build_bulletin, render, write_outputs
from closeout.context import Context
from closeout.load import UnitOutcome, load_group
from closeout.mailer import Delivery, deliver_once
from closeout.reconcile import reconcile_day


def plan_unit_groups(ctx: Context) -> list[dict]:
    """The registry's load groups, in code order; also makes sure the store's tables exist."""
    ctx.store.ensure_schema()
    return [{"key": g.key, "codes": list(g.codes), "label": g.label} for g in ctx.registry.groups()]


def load_units(ctx: Context, report_date: date, codes: list[str]) -> list[UnitOutcome]:
    return load_group(ctx, report_date, codes)


def reconcile(ctx: Context, report_date: date) -> dict[str, str]:
    return reconcile_day(ctx, report_date)


def render_bulletin(ctx: Context, report_date: date) -> Path:
    bulletin = build_bulletin(ctx, report_date)
    return write_outputs(ctx, bulletin, render(ctx, bulletin))


def email_bulletin(ctx: Context, report_date: date, sender: str, send: Callable[[EmailMessage], None]) -> Delivery:
    bulletin = build_bulletin(ctx, report_date)  # deterministic: the same store gives the same bulletin
    return deliver_once(ctx, bulletin, render(ctx, bulletin), sender, send)


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
