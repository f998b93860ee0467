"""The publishing steps of the daily close-out (loading is closeout.close.load, reconciling closeout.close.reconcile)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from closeout.store.context import Context

if TYPE_CHECKING:  # the publishing modules import pandas and Jinja: planning a run must not pay for them
    from closeout.deliver.mailer import Delivery
    from closeout.deliver.transport import Connect
    from closeout.publish.editions import Edition


def render_bulletin(ctx: Context, report_date: date) -> Edition:
    """The edition that says what the store says now (a new one only when that changed; see closeout.publish.editions)."""
    from closeout.publish.editions import render_edition

    return render_edition(ctx, report_date)


def email_bulletin(
    ctx: Context,
    edition: Edition | dict,
    sender: str,
    connect: Connect,
) -> Delivery:
    """Mail the given edition (or its key, as a task passes it on) at most once; an edition a person approved
    goes out as its copy naming them as 签发人."""
    from closeout.deliver.mailer import deliver_edition
    from closeout.publish.editions import Edition, find_edition
    from closeout.publish.signoff import release

    chosen = edition if isinstance(edition, Edition) else find_edition(ctx, edition)
    return deliver_edition(ctx, release(ctx, chosen), sender, connect)


def judge_arrivals(ctx: Context, report_date: date) -> list[str]:
    """Intake: load the units whose file in the inbox has not been judged yet (by its SHA-256), nothing else.

    Units without a file are left alone (they are 缺报 only at the cutoff), and a file already judged — loaded
    or rejected — is not judged again; the cutoff run judges everything afresh. Returns the units loaded.

    The inbox is listed once and each file taken once (settled, read, hashed and archived: archiving the same
    bytes again keeps the one copy); the units loaded get that listing and those files, not a second read."""
    from closeout.close.load import load_group, take_figure_files
    from closeout.intake.discovery import discover

    day = report_date.isoformat()
    judged: dict[str, set[str]] = {}
    for sub in ctx.store.rows("select_judged_submissions", {"report_date": day}):
        judged.setdefault(sub["unit_code"], set()).add(sub["sha256"])
    inbox = discover(ctx.settings.inbox, report_date, ctx.registry)
    taken = take_figure_files(ctx, report_date, inbox, inbox.figure_files)
    arrived = [  # a file refused unread (a link, an oversized file) is judged again each time
        code
        for code, files in taken.items()
        if any(item.refusal is not None or item.sha256 not in judged.get(code, set()) for item in files)
    ]
    if arrived:
        load_group(ctx, report_date, arrived, inbox=inbox, taken=taken)
    return arrived
