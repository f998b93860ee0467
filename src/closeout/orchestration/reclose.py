"""A range re-close as the DAG and the CLI run it: the days in order (closeout.close.reclose_range), then each
re-closed day's Data Docs and the 更正/补报 edition of every day it corrected, shared among the cores."""

from __future__ import annotations

from datetime import date

from closeout.close.reclose_range import RangeResult, days_of, range_request, reclose_days, signed_revisions
from closeout.core.clock import now_local
from closeout.core.vocabulary import RevisionKind
from closeout.orchestration.forked import map_forked
from closeout.store.context import Context


def reclose_range(
    ctx: Context,
    first: date,
    last: date,
    units: list[str],
    reason: str,
    actor: str,
    today: date,
    since: str | None = None,
) -> RangeResult:
    """Re-close every day from `first` to `last` in order, re-check the later published days once, render each
    changed day's edition. `since`: when the run started (a retry of the run passes the same), for the summary."""
    request = range_request(ctx, first, last, units, reason, actor, today)
    result = reclose_days(ctx, first, last, request, since or now_local())
    result.editions = finish_days(ctx, first, last, result.since, result.signed_by)
    return result


def finish_days(ctx: Context, first: date, last: date, since: str, actor: str) -> list[str]:
    """Each re-closed day's Data Docs, and the 更正/补报 edition of every day this re-close corrected (kept in the
    outbox, never overwritten); returns the new editions' labels. An unchanged store renders no new one.
    Recalculated-only days keep their editions, as after a one-day re-close. The days are independent once
    reconciled, so they are shared among the cores (closeout.orchestration.forked)."""
    from closeout.publish.editions import editions_of

    signed = signed_revisions(ctx, first, since, actor)
    corrected = {date.fromisoformat(r["report_date"]) for r in signed if r["kind"] != RevisionKind.RECALCULATED}
    before = {(e.report_date, e.number) for day in corrected for e in editions_of(ctx, day)}
    days = sorted(set(days_of(first, last)) | corrected)
    finished = map_forked(ctx, _finish_day, [(day, day in corrected) for day in days])
    return [e.label for e in finished if e is not None and (e.report_date, e.number) not in before]


def _finish_day(ctx: Context, day_and_corrected: tuple[date, bool]):
    """One day's Data Docs, and its new edition when it was corrected (in a child of finish_days)."""
    from closeout.checks.datadocs import rebuild
    from closeout.publish.editions import render_edition

    day, corrected = day_and_corrected
    rebuild(ctx, day)
    return render_edition(ctx, day) if corrected else None
