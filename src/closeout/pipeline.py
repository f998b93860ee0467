"""The publishing steps of the daily close-out (loading is closeout.load, reconciling closeout.reconcile)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date
from email.message import EmailMessage
from typing import TYPE_CHECKING

from closeout.context import Context

if TYPE_CHECKING:  # the publishing modules import pandas and Jinja: planning a run must not pay for them
    from closeout.editions import Edition
    from closeout.mailer import Delivery


def plan_unit_groups(ctx: Context) -> list[dict]:
    """The registry's load groups, in code order; also makes sure the store's tables exist."""
    ctx.store.ensure_schema()
    return [{"key": g.key, "codes": list(g.codes), "label": g.label} for g in ctx.registry.groups()]


def render_bulletin(ctx: Context, report_date: date) -> Edition:
    """The edition that says what the store says now (a new one only when that changed; see closeout.editions)."""
    from closeout.editions import render_edition

    return render_edition(ctx, report_date)


def email_bulletin(
    ctx: Context,
    edition: Edition | dict,
    sender: str,
    connect: Callable[[], AbstractContextManager[Callable[[EmailMessage], object]]],
) -> Delivery:
    """Mail the given edition (or its key, as a task passes it on) at most once; an edition a person approved
    goes out as its copy naming them as 签发人."""
    from closeout.editions import Edition, find_edition
    from closeout.mailer import deliver_edition
    from closeout.signoff import as_signed

    chosen = edition if isinstance(edition, Edition) else find_edition(ctx, edition)
    return deliver_edition(ctx, as_signed(ctx, chosen), sender, connect)


def judge_arrivals(ctx: Context, report_date: date) -> list[str]:
    """Intake: load the units whose file in the inbox has not been judged yet (by its SHA-256), nothing else.

    Units without a file are left alone (they are 缺报 only at the cutoff), and a file already judged — loaded
    or rejected — is not judged again; the cutoff run judges everything afresh. Returns the units loaded."""
    from closeout.archive import inbox_fingerprint
    from closeout.ingest import discover
    from closeout.load import load_group

    day = report_date.isoformat()
    judged: dict[str, set[str]] = {}
    for sub in ctx.store.rows("select_judged_submissions", {"report_date": day}):
        judged.setdefault(sub["unit_code"], set()).add(sub["sha256"])
    inbox = discover(ctx.settings.inbox, report_date, ctx.registry)
    arrived = [
        code
        for code, paths in inbox.figure_files.items()
        if any(inbox_fingerprint(path, ctx.settings.limits) not in judged.get(code, set()) for path in paths)
    ]
    if arrived:
        load_group(ctx, report_date, arrived)
    return arrived
