"""`closeout` — operator commands beside the Airflow UI (settings come from the same environment)."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from closeout.bulletin import STATUS_LABELS
from closeout.context import Context


def status(ctx: Context, day: date) -> int:
    """Print each unit's close-out status, the blocking problems and the email; 1 if the bulletin is unsent."""
    statuses = {r["unit_code"]: r for r in ctx.store.rows("select_unit_days", {"report_date": day.isoformat()})}
    parts = []
    for unit in ctx.registry.all_units:
        state = statuses.get(unit.code, {}).get("status", "未处理")
        parts.append(f"{unit.name} {STATUS_LABELS.get(state, state)}")
    print(f"{day} " + "；".join(parts))
    for finding in ctx.store.rows("select_findings", {"report_date": day.isoformat()}):
        if finding["severity"] == "hard":
            print("  " + finding["line"])
    delivery = ctx.store.rows("select_delivery", {"report_date": day.isoformat()})
    if not delivery:
        print("  日报未发送 (bulletin not sent)")
        return 1
    print(
        f"  日报{'已发送' if delivery[0]['status'] == 'sent' else '发送未确认'}：{delivery[0]['recipients']} "
        f"{delivery[0]['message_id']} {delivery[0]['sent_at'] or ''}"
    )
    return 0 if delivery[0]["status"] == "sent" else 1


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
    handler = {"status": status, "forget-delivery": forget_delivery}[args.command]
    return handler(ctx, args.report_date)


if __name__ == "__main__":
    sys.exit(main())
