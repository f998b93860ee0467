"""`closeout` — operator commands beside the Airflow UI (settings come from the same environment)."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from closeout.bulletin import STATUS_LABELS
from closeout.context import Context


def status(ctx: Context, day: date) -> int:
    """Each unit's close-out status, the blocking problems, the notices and the email, from the store named first.

    Exit 1 while any required unit is open (not 已结清 / 已标记缺报) or the bulletin is not confirmed sent."""
    from closeout.notices import open_units

    print(f"store: {redacted(ctx.settings.db_url)}")
    statuses = {r["unit_code"]: r for r in ctx.store.rows("select_unit_days", {"report_date": day.isoformat()})}
    if not statuses:
        print(f"{day}: 该日没有任何记录（未运行过？还是读错了库？）/ nothing recorded for this day in this store")
        return 1
    parts = []
    for unit in ctx.registry.all_units:
        state = statuses.get(unit.code, {}).get("status", "未处理")
        parts.append(f"{unit.name} {STATUS_LABELS.get(state, state)}")
    print(f"{day} " + "；".join(parts))
    for finding in ctx.store.rows("select_findings", {"report_date": day.isoformat()}):
        if finding["severity"] == "hard":
            print("  " + finding["line"])
    notices = ctx.store.rows("select_notices", {"report_date": day.isoformat()})
    for kind, label in (("receipt", "回执"), ("reminder", "提醒"), ("deadline_alert", "告警")):
        mine = [n for n in notices if n["kind"] == kind]
        if mine:
            print(f"  {label} {len(mine)} 封（{sum(n['status'] == 'sent' for n in mine)} 封已确认发出）")
    still_open = open_units(ctx, day)
    for name, why in still_open:
        print(f"  未结清：{name} {why}")
    delivery = ctx.store.rows("select_delivery", {"report_date": day.isoformat()})
    if not delivery:
        print("  日报未发送 (bulletin not sent)")
        return 1
    print(
        f"  日报{'已发送' if delivery[0]['status'] == 'sent' else '发送未确认'}：{delivery[0]['recipients']} "
        f"{delivery[0]['message_id']} {delivery[0]['sent_at'] or ''}"
    )
    return 0 if delivery[0]["status"] == "sent" and not still_open else 1


def redacted(url: str) -> str:
    """A database URL without its password, to say which store was read."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def mark_absent(ctx: Context, day: date, unit: str, reason: str) -> int:
    import getpass

    from closeout.excusal import mark_absent as mark

    try:
        print(mark(ctx, day, unit, reason, f"{getpass.getuser()} (closeout CLI)"))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


def forget_delivery(ctx: Context, day: date) -> int:
    with ctx.store.transaction() as conn:
        gone = ctx.store.run(conn, "delete_delivery", {"report_date": day.isoformat()}).rowcount
    print(f"{day}: {'已清除发送记录，重跑 email_bulletin 将再发送一次' if gone else '没有发送记录'}")
    return 0


def contract(ctx: Context, check: bool) -> int:
    """Rewrite the generated parts of docs/submission-format.md (or, with --check, fail if they are stale)."""
    from closeout.contract import generated_blocks, render_document
    from closeout.limits import Limits

    path = ctx.settings.include_dir.parent / "docs" / "submission-format.md"
    text = path.read_text(encoding="utf-8")
    fresh = render_document(text, generated_blocks(ctx.catalogue, Limits()))
    if fresh == text:
        print(f"{path.name}: up to date")
        return 0
    if check:
        print(f"{path.name}: stale; run `closeout contract`")
        return 1
    path.write_text(fresh, encoding="utf-8")
    print(f"{path.name}: rewritten")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="closeout", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    absent = commands.add_parser("mark-absent", help="record that a unit will not report on a day (标记缺报)")
    absent.add_argument("report_date", type=date.fromisoformat, help="YYYY-MM-DD")
    absent.add_argument("unit", help="unit code, slug or Chinese name")
    absent.add_argument("--reason", required=True, help="why (required, kept with the record)")
    contract_command = commands.add_parser("contract", help="regenerate docs/submission-format.md's tables")
    contract_command.add_argument("--check", action="store_true", help="fail if the document is stale")
    for name, helptext in (
        ("status", "a day's unit statuses, blocking problems and email"),
        ("forget-delivery", "after checking the mailbox: allow the day's bulletin to be sent again"),
    ):
        command = commands.add_parser(name, help=helptext)
        command.add_argument("report_date", type=date.fromisoformat, help="YYYY-MM-DD")
    args = parser.parse_args(argv)
    ctx = Context.from_env()
    if args.command == "contract":
        return contract(ctx, args.check)
    if args.command == "mark-absent":
        return mark_absent(ctx, args.report_date, args.unit, args.reason)
    handler = {"status": status, "forget-delivery": forget_delivery}[args.command]
    return handler(ctx, args.report_date)


if __name__ == "__main__":
    sys.exit(main())
