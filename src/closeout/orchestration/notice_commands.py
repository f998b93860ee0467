"""An operator's decision about a notice (回执, 提醒, 告警) whose sending was never confirmed.

A notice stays 'sending' when the run sending it died or lost the line after handing it to the server (at most one
per run: closeout.deliver.notices.send_notices), or when the outbox kept it as sent but the store had no record of
it (a store lost or restored from an older backup). Whether it arrived only the mailbox can say: `closeout status`
lists each one older than CLOSEOUT_NOTICE_CONFIRM_MINUTES with the two commands here. `confirm-notice` (it arrived)
marks it sent; `retry-notice` (it did not) releases it, so the next run (intake's send_receipts, the cutoff run)
sends it again under the same key. Each decision is a notice_event with who and why; nothing is deleted.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, timedelta

from closeout.core.clock import LOCAL_TZ, now_local
from closeout.store.context import Context

KINDS = ("receipt", "reminder", "deadline_alert", "reclose_summary")  # closeout.deliver.notices.KINDS
LABELS = {"receipt": "回执", "reminder": "提醒", "deadline_alert": "告警", "reclose_summary": "重新结清汇总"}
NEXT_RUN = {
    "receipt": "下一次收件运行（closeout_intake 的 send_receipts）或截止运行会再发一次",
    "reminder": "截止前下一次收件运行（send_reminders）会再发一次；截止后不再提醒",
    "deadline_alert": "下一次收件运行的 watch_deadline 会再发一次",
    "reclose_summary": "再触发同一段日期的 closeout_reclose_range 会再发一次",
}
COMMANDS = ("confirm-notice", "retry-notice")


def unconfirmed(ctx: Context, day: date, now: datetime | None = None) -> list[dict]:
    """The day's notices still 'sending' CLOSEOUT_NOTICE_CONFIRM_MINUTES after they started: no run is sending
    them any more, and nobody knows whether they arrived."""
    now = now or datetime.now(LOCAL_TZ)
    limit = now - timedelta(minutes=ctx.settings.notice_confirm_minutes)
    return [
        r
        for r in ctx.store.rows("select_notices", {"report_date": day.isoformat()})
        if r["status"] == "sending" and datetime.fromisoformat(r["started_at"]) <= limit
    ]


def status_lines(ctx: Context, day: date) -> list[str]:
    """One line per unconfirmed notice, with the commands that resolve it (for `closeout status`)."""
    lines = []
    for r in unconfirmed(ctx, day):
        args = _args(day, r)
        lines.append(
            f"{LABELS.get(r['kind'], r['kind'])}发送未确认：{_who(ctx, r['unit_code'])} {r['notice_key'][:12]}"
            f"（{r['started_at'][:16].replace('T', ' ')} 起，{r['message_id']}）→ 核对收件箱，"
            f'已收到：closeout confirm-notice {args} --reason "…"；'
            f'未收到：closeout retry-notice {args} --reason "…"'
        )
    return lines


def _asked(ctx: Context, day: date, kind: str, unit: str, key: str, reason: str) -> tuple[str, list[dict], str]:
    """The operator's own reason (none: refused) and the notices their arguments name, or why they name none."""
    reason = " ".join((reason or "").split())
    if not reason:
        return reason, [], "必须写明原因（--reason）/ a reason is required"
    rows, refusal = _matching(ctx, day, kind, unit, key)
    return reason, rows, refusal or ""


def confirm_notice(ctx: Context, day: date, kind: str, unit: str, key: str, reason: str, actor: str) -> int:
    """The operator found the notice in the unit's mailbox: 'sending' becomes 'sent', recorded with who and why."""
    reason, rows, refusal = _asked(ctx, day, kind, unit, key, reason)
    if refusal:
        return _refuse(refusal)
    pending = [r for r in rows if r["status"] == "sending"]
    if not pending:
        states = "、".join(sorted({r["status"] for r in rows}))
        return _refuse(f"{_title(ctx, day, kind, unit)}：没有待确认的发送（{states}）")
    if len(pending) > 1:
        return _refuse(_ambiguous(ctx, day, kind, unit, pending))
    [row] = pending
    ident = _ident(day, row)
    with ctx.store.transaction() as conn:
        if ctx.store.run(conn, "mark_notice_sent", {**ident, "sent_at": now_local()}).rowcount != 1:
            return _refuse(f"{_title(ctx, day, kind, unit)}：状态已被另一操作改变，请重新查看 closeout status")
        _event(ctx, conn, ident, row, "confirmed", actor, reason)
    print(f"{_title(ctx, day, kind, unit)} {row['notice_key'][:12]}：已确认送达（{actor}：{reason}）")
    return 0


def retry_notice(
    ctx: Context, day: date, kind: str, unit: str, key: str, reason: str, actor: str, even_if_sent: bool = False
) -> int:
    """The operator checked: the notice did not arrive. 'sending' becomes 'released', so the next run sends it again
    under the same key; a confirmed one only with `even_if_sent`."""
    reason, rows, refusal = _asked(ctx, day, kind, unit, key, reason)
    if refusal:
        return _refuse(refusal)
    chosen = [r for r in rows if r["status"] == "sending"]
    sent = [r for r in rows if r["status"] == "sent"]
    if not chosen and sent and not even_if_sent:
        r = sent[-1]
        return _refuse(
            f"{_title(ctx, day, kind, unit)} {r['notice_key'][:12]} 已确认发出（{r['sent_at']}，{r['message_id']}）。"
            "确实要再发一次，请加 --even-if-sent 并写明原因"
        )
    if not chosen and even_if_sent:
        chosen = sent
    if not chosen:
        print(f"{_title(ctx, day, kind, unit)}：没有需要放行的发送记录（已放行的下一次运行即会发送）")
        return 0
    if len(chosen) > 1:
        return _refuse(_ambiguous(ctx, day, kind, unit, chosen))
    [row] = chosen
    ident = _ident(day, row)
    event = "released_after_sent" if row["status"] == "sent" else "released"
    with ctx.store.transaction() as conn:
        if ctx.store.run(conn, "release_notice", {**ident, "status_was": row["status"]}).rowcount != 1:
            return _refuse(f"{_title(ctx, day, kind, unit)}：状态已被另一操作改变，请重新查看 closeout status")
        _event(ctx, conn, ident, row, event, actor, reason)
    print(f"{_title(ctx, day, kind, unit)} {row['notice_key'][:12]}：已放行，{NEXT_RUN[kind]}（{actor}：{reason}）")
    return 0


def add_parsers(commands) -> None:
    """`closeout confirm-notice` and `closeout retry-notice` (registered by closeout.orchestration.cli.main)."""
    for name, helptext in (
        ("confirm-notice", "a receipt, reminder or alert did arrive: mark its unconfirmed send as sent"),
        ("retry-notice", "a receipt, reminder or alert did not arrive: let the next run send it again"),
    ):
        command = commands.add_parser(name, help=helptext)
        command.add_argument("report_date", type=date.fromisoformat, help="YYYY-MM-DD")
        command.add_argument("--kind", required=True, choices=KINDS, help="which notice")
        command.add_argument("--unit", default="", help="unit code, slug or name (none for the day's alert)")
        command.add_argument("--key", default="", help="the start of its key (a receipt's SHA-256, a reminder's time)")
        command.add_argument("--reason", required=True, help="why, in your words (kept with the record)")
        if name == "retry-notice":
            command.add_argument("--even-if-sent", action="store_true", help="also release a confirmed send")


def run(ctx: Context, args: argparse.Namespace, actor: str) -> int:
    if args.command == "confirm-notice":
        return confirm_notice(ctx, args.report_date, args.kind, args.unit, args.key, args.reason, actor)
    return retry_notice(ctx, args.report_date, args.kind, args.unit, args.key, args.reason, actor, args.even_if_sent)


# --- helpers -------------------------------------------------------------------------------------------------


def _matching(ctx: Context, day: date, kind: str, unit: str, key: str) -> tuple[list[dict], str]:
    """The day's notices of that kind for the unit (by code, slug or name) whose key starts with `key`."""
    code = _unit_code(ctx, unit)
    rows = [
        r
        for r in ctx.store.rows("select_notices", {"report_date": day.isoformat()})
        if r["kind"] == kind and r["unit_code"] == code and r["notice_key"].lower().startswith(key.strip().lower())
    ]
    if not rows:
        return [], f"{_title(ctx, day, kind, unit)}{' ' + key if key else ''}：没有这样的通知记录 / no such notice"
    return rows, ""


def _unit_code(ctx: Context, unit: str) -> str:
    if not unit.strip():
        return ""
    try:
        found = ctx.registry.resolve(unit)
    except (OSError, ValueError, KeyError):
        found = None
    return found.code if found is not None else unit.strip()


def _who(ctx: Context, code: str) -> str:
    if not code:
        return "全市"
    try:
        return ctx.registry.get(code).label
    except (OSError, ValueError, KeyError):
        return code


def _title(ctx: Context, day: date, kind: str, unit: str) -> str:
    return f"{day} {LABELS.get(kind, kind)} {_who(ctx, _unit_code(ctx, unit))}"


def _ambiguous(ctx: Context, day: date, kind: str, unit: str, rows: list[dict]) -> str:
    keys = "、".join(r["notice_key"][:12] for r in rows)
    return f"{_title(ctx, day, kind, unit)}：有 {len(rows)} 封（{keys}），请用 --key 指明哪一封"


def _args(day: date, row: dict) -> str:
    args = f"{day.isoformat()} --kind {row['kind']}"
    if row["unit_code"]:
        args += f" --unit {row['unit_code']}"
    if row["notice_key"]:
        args += f" --key {row['notice_key'][:12]}"
    return args


def _ident(day: date, row: dict) -> dict:
    return {
        "kind": row["kind"],
        "report_date": day.isoformat(),
        "unit_code": row["unit_code"],
        "notice_key": row["notice_key"],
    }


def _event(ctx: Context, conn, ident: dict, row: dict, event: str, actor: str, reason: str) -> None:
    ctx.store.run(
        conn,
        "insert_notice_event",
        {**ident, "event": event, "message_id": row["message_id"], "actor": actor, "reason": reason, "at": now_local()},
    )


def _refuse(message: str) -> int:
    print(message, file=sys.stderr)
    return 2
