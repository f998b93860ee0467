"""Re-closing a range of published days in one run (`closeout reclose FROM TO`, the closeout_reclose_range DAG).

Days go in date order: each day's files are loaded again with the operator's signature and the day reconciled
before the next, so stocks and cumulatives carry over in order; the later published days are re-checked once,
after the last. The changed days' 更正/补报 editions are rendered by closeout.orchestration.reclose and the one
summary mail is closeout.deliver.reclose_summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from closeout.close.reclose import ReasonRequired, RunRequest, recheck_later_days, reconcile_recording, run_request
from closeout.core.clock import month_day
from closeout.store.context import Context


class RangeRefused(ValueError):
    """A range that cannot be re-closed as asked: the operator fixes the dates, nothing was changed."""


@dataclass
class RangeResult:
    first: date
    last: date
    signed_by: str  # the actor on every revision it records
    since: str  # when it started: its revisions are the ones recorded since, signed by signed_by
    failed: list[str] = field(default_factory=list)  # one line per unit-day not loaded (refused, missing)
    changed: dict[str, list[str]] = field(default_factory=dict)  # day → loads, recalculations, new breaks
    editions: list[str] = field(default_factory=list)  # the 更正/补报 editions rendered


def days_of(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def range_request(
    ctx: Context, first: date, last: date, units: list[str], reason: str, actor: str, today: date
) -> RunRequest:
    """The range's units and signature; refused when the dates are backwards, reach past today (Asia/Shanghai) or
    include a day never published, and (as for one day) when a published day would change without a reason."""
    if first > last:
        raise RangeRefused(f"起始日期 {first} 晚于结束日期 {last} / FROM is after TO")
    if last > today:
        raise RangeRefused(f"{last} 还没到（北京时间今天是 {today}）：只能重新结清已发布的日期 / TO is in the future")
    span = {"first_date": first.isoformat(), "last_date": last.isoformat()}
    published = {r["report_date"] for r in ctx.store.rows("select_published_days_between", span)}
    unpublished = [d.isoformat() for d in days_of(first, last) if d.isoformat() not in published]
    if unpublished:
        shown = "、".join(unpublished[:5]) + (f" 等 {len(unpublished)} 天" if len(unpublished) > 5 else "")
        raise RangeRefused(
            f"{shown} 尚未结清发布：重新结清只用于日报已发出的日期，这些日期请先用 daily_closeout 结清 / "
            "the range includes days never published"
        )
    try:
        return run_request(ctx, first, {"report_date": first.isoformat(), "units": units, "reason": reason}, actor)
    except ReasonRequired:
        raise
    except ValueError as exc:  # a unit not in the registry
        raise RangeRefused(str(exc)) from exc


def reclose_days(ctx: Context, first: date, last: date, request: RunRequest, since: str) -> RangeResult:
    """Re-close every day from `first` to `last` in order, as `request` (closeout.close.reclose_range.range_request)
    asks, and re-check the later published days once; the changed days' editions are rendered by
    closeout.orchestration.reclose. `since`: when the run started (a retry of the run passes the same)."""
    from closeout.close.load import load_group
    from closeout.close.plan import plan_unit_groups

    signed = request.signed
    codes = [code for group in request.groups(plan_unit_groups(ctx)) for code in group["codes"]]
    because = f"随{month_day(first)}至{month_day(last)}重新结清重算"
    result = RangeResult(first, last, signed.actor, since)
    for day in days_of(first, last):
        lines = []
        for outcome in load_group(ctx, day, codes, signed):
            if outcome.status != "loaded" and not outcome.failed:
                continue  # the file already loaded, or an optional unit without one: nothing to say 365 times
            lines.append(f"{outcome.unit_name}({outcome.unit_code}): {outcome.status}")
            lines += [f"  {line}" for line in outcome.lines]
            if outcome.failed:
                result.failed.append(f"{day} {outcome.lines[0] if outcome.lines else outcome.unit_name}")
        lines += reconcile_recording(ctx, day, because, signed.actor, build_docs=False)  # docs: finish_days
        if lines:
            result.changed[day.isoformat()] = lines
    result.changed.update(recheck_later_days(ctx, last, signed.actor, because))
    return result


def signed_revisions(ctx: Context, first: date, since: str, actor: str) -> list[dict]:
    """The revisions a re-close from `first` recorded since `since`, signed by `actor`."""
    return ctx.store.rows(
        "select_revisions_signed_since", {"first_date": first.isoformat(), "since": since, "recorded_by": actor}
    )
