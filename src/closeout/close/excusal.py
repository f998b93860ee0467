"""Marking a unit 缺报 on purpose: an operator records that it will not report today, and why."""

from __future__ import annotations

from datetime import date

from closeout.close.status import is_published
from closeout.core.clock import now_local, refuse_future
from closeout.store.context import Context


def mark_absent(ctx: Context, report_date: date, unit_text: str, reason: str, marked_by: str) -> str:
    """Record the decision (a reason is required; a second decision is appended, the first kept: the latest is the
    one in force); the next reconcile closes the day without the unit. Refused for a day that has not come yet and
    for a published day (a change to what went out goes through a correction).

    The unit may be named by code, slug, Chinese name or alias. Returns the one-line confirmation."""
    unit = ctx.registry.resolve(unit_text)
    if unit is None or unit.code == ctx.registry.region_code:
        raise ValueError(f"名录中没有单位“{unit_text}”（可用单位代码、拼音或中文名）")
    reason = " ".join(reason.split())
    if not reason:
        raise ValueError("标记缺报必须写明原因")
    refuse_future(report_date)
    if is_published(ctx, report_date):
        raise ValueError(
            f"{report_date} 的日报已发出：标记缺报会改变已发布的内容，请走更正流程（closeout reclose {report_date} "
            f'--unit {unit.code} --reason "…"，或单位补报后自动生成补报版）/ the day was published: use a correction'
        )
    decision = {
        "report_date": report_date.isoformat(),
        "unit_code": unit.code,
        "reason": reason,
        "marked_by": marked_by,
        "marked_at": now_local(),
    }
    with ctx.store.transaction() as conn:
        ctx.store.run(conn, "insert_excusal_history", decision)
        ctx.store.run(conn, "upsert_excusal", decision)
    return f"{report_date} {unit.label} 已标记缺报（{reason}），由 {marked_by} 记录；重跑 reconcile_day 后生效"
