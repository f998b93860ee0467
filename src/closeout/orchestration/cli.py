"""`closeout` — operator commands beside the Airflow UI (settings come from the same environment)."""

from __future__ import annotations

import argparse
import os
import pwd
import socket
import sys
from datetime import date, datetime

from closeout.core.vocabulary import DeliveryState, EditionKind, UnitStatus
from closeout.orchestration import notice_commands
from closeout.store.context import Context


def status(ctx: Context, day: date) -> int:
    """Each unit's close-out status, the blocking problems, the notices and the email, from the store named first.

    Exit 1 while any required unit is open (not 已结清 / 已标记缺报) or the bulletin is not confirmed sent."""
    from closeout.close.status import open_units
    from closeout.publish.editions import editions_of

    print(f"store: {redacted(ctx.settings.db_url)}")
    statuses = {r["unit_code"]: r for r in ctx.store.rows("select_unit_days", {"report_date": day.isoformat()})}
    if not statuses:
        print(f"{day}: 该日没有任何记录（未运行过？还是读错了库？）/ nothing recorded for this day in this store")
        return 1
    parts = []
    for unit in ctx.registry.all_units:
        state = statuses.get(unit.code, {}).get("status", "未处理")
        parts.append(f"{unit.name} {UnitStatus.label_of(state, state)}")
    print(f"{day} " + "；".join(parts))
    for finding in ctx.store.rows("select_findings", {"report_date": day.isoformat()}):
        if finding["severity"] == "hard":
            print("  " + finding["line"])
    notices = ctx.store.rows("select_notices", {"report_date": day.isoformat()})
    for kind, label in (("receipt", "回执"), ("reminder", "提醒"), ("deadline_alert", "告警")):
        mine = [n for n in notices if n["kind"] == kind]
        if mine:
            print(f"  {label} {len(mine)} 封（{sum(n['status'] == 'sent' for n in mine)} 封已确认发出）")
    for line in notice_commands.status_lines(ctx, day):  # unconfirmed: each with the command that resolves it
        print("  " + line)
    still_open = open_units(ctx, day)
    for name, why in still_open:
        print(f"  未结清：{name} {why}")
    attempts = ctx.store.rows("select_deliveries", {"report_date": day.isoformat()})
    for edition in editions_of(ctx, day):
        mine = [a for a in attempts if a["edition_no"] == edition.number]
        state = DeliveryState.label_of(mine[-1]["status"]) if mine else "未发送"
        sent_at = next((a["sent_at"] for a in mine if a["status"] == "sent"), "")
        print(
            f"  第{edition.number}版（{EditionKind(edition.kind).label}）{state} {sent_at or ''} "
            f"{edition.sha256[:12]} {edition.folder(ctx)}"
        )
    if not any(a["status"] == "sent" for a in attempts):
        print("  日报未发送 (bulletin not sent)")
        return 1
    return 0 if not still_open else 1


def cli_actor() -> str:
    """Who runs a command, as the operating system knows them: the process's OS account and the host, never a name
    taken from the environment (LOGNAME or USER can be set to anyone's name, an Airflow user's included)."""
    uid = os.geteuid()
    try:
        account = pwd.getpwuid(uid).pw_name
    except KeyError:
        account = f"uid {uid}"
    return f"{account}@{socket.gethostname()} (closeout CLI, OS account)"


def redacted(url: str) -> str:
    """A database URL without its password, to say which store was read."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def mark_absent(ctx: Context, day: date, unit: str, reason: str) -> int:
    from closeout.close.excusal import mark_absent as mark

    try:
        print(mark(ctx, day, unit, reason, cli_actor()))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


def confirm_delivery(ctx: Context, day: date, edition_no: int | None, reason: str, actor: str) -> int:
    """The operator found the mail in the mailbox: an attempt left `sending` becomes `sent`, recorded with who
    and why. Nothing is deleted."""
    from closeout.deliver.mailer import mark_sent

    edition, attempt = _last_attempt(ctx, day, edition_no)
    if attempt is None or attempt["status"] != "sending":
        print(
            f"{day} 第{edition.number}版：没有待确认的发送（{attempt['status'] if attempt else '从未发送'}）",
            file=sys.stderr,
        )
        return 2
    with ctx.store.transaction() as conn:
        mark_sent(ctx, conn, edition, attempt["attempt"])
        _record(ctx, conn, edition, attempt["attempt"], "confirmed", actor, reason)
    print(f"{day} 第{edition.number}版：已确认送达（第{attempt['attempt']}次发送，{actor}）")
    return 0


def retry_delivery(ctx: Context, day: date, edition_no: int | None, reason: str, actor: str, even_if_sent=False) -> int:
    """The operator checked the mailbox and the mail did not arrive: the last attempt is `released` so the next
    run sends the edition again. A confirmed send is refused unless `even_if_sent` says so explicitly."""
    edition, attempt = _last_attempt(ctx, day, edition_no)
    if attempt is None or attempt["status"] in ("refused", "released"):
        print(f"{day} 第{edition.number}版：没有需要放行的发送记录，重跑即会发送")
        return 0
    if attempt["status"] == "sent" and not even_if_sent:
        print(
            f"{day} 第{edition.number}版已确认发出（{attempt['sent_at']}，{attempt['message_id']}）。确实要再发一次，"
            "请加 --even-if-sent 并写明原因",
            file=sys.stderr,
        )
        return 2
    event = "released_after_sent" if attempt["status"] == "sent" else "released"
    with ctx.store.transaction() as conn:
        ctx.store.run(
            conn,
            "set_delivery_status",
            {**edition.key, "attempt": attempt["attempt"], "status": "released", "sent_at": attempt["sent_at"]},
        )
        _record(ctx, conn, edition, attempt["attempt"], event, actor, reason)
    print(f"{day} 第{edition.number}版：已放行，重跑 email_bulletin 将再发送一次（{actor}：{reason}）")
    return 0


def _last_attempt(ctx: Context, day: date, edition_no: int | None):
    from closeout.deliver.mailer import attempts_of
    from closeout.publish.editions import editions_of

    editions = editions_of(ctx, day)
    if edition_no is not None:
        editions = [e for e in editions if e.number == edition_no]
    tried = [(e, attempts_of(ctx, e)) for e in editions]
    tried = [(e, a) for e, a in tried if a] or tried
    if not tried:
        raise SystemExit(f"{day}: 没有{'第' + str(edition_no) + '期' if edition_no else '任何'}日报 / no such edition")
    edition, attempts = tried[-1]
    return edition, (attempts[-1] if attempts else None)


def _record(ctx: Context, conn, edition, attempt: int, event: str, actor: str, reason: str) -> None:
    from closeout.core.clock import now_local

    ctx.store.run(
        conn,
        "insert_delivery_event",
        {**edition.key, "attempt": attempt, "event": event, "actor": actor, "reason": reason, "at": now_local()},
    )


def corrections(ctx: Context, since: date | None, out=None) -> int:
    """The corrections register as CSV, one row per change to a published figure, oldest first
    (closeout.publish.register)."""
    from closeout.publish.register import register_rows, write_csv

    write_csv(register_rows(ctx, since), out or sys.stdout)
    return 0


def check_registry(ctx: Context) -> int:
    """Load the registry (codes unique, names unique within their parent, every contact an e-mail address) and check
    its load groups fit Airflow's [core] max_map_length; exit 1 with the fix, so init and CI catch it, not the 21:00
    run."""
    from airflow.sdk.configuration import conf

    try:
        registry = ctx.registry
    except (OSError, ValueError, KeyError) as exc:
        print(f"{ctx.settings.registry_path}: {exc}")
        return 1
    problems = registry.problems(conf.getint("core", "max_map_length", fallback=1024)) + registry.contact_problems()
    for problem in problems:
        print(problem)
    if not problems:
        print(f"{ctx.settings.registry_path}: {len(registry.units)} units in {len(registry.groups())} load groups: ok")
    return 1 if problems else 0


def reclose(ctx: Context, day: date, units: list[str], reason: str, actor: str) -> int:
    """Re-close a day from the command line, as the trigger form does: load the chosen units again (all when none
    is named) signed by the operator, reconcile the day, re-check every later published day and list what changed.
    The day's 补报/更正 edition then goes out with intake's next batch (or a daily_closeout run for the day)."""
    from closeout.close.load import load_group
    from closeout.close.plan import plan_unit_groups
    from closeout.close.reclose import recheck_later_days, report_lines, run_request
    from closeout.close.reconcile import reconcile_day

    try:
        request = run_request(ctx, day, {"report_date": day.isoformat(), "units": units, "reason": reason}, actor)
    except ValueError as exc:  # a future date, a unit not in the registry, no reason for a published day
        print(exc, file=sys.stderr)
        return 2
    codes = [code for group in request.groups(plan_unit_groups(ctx)) for code in group["codes"]]
    for outcome in load_group(ctx, day, codes, request.signed):
        print(f"{outcome.unit_name}({outcome.unit_code}) {day}: {outcome.status}")
        for line in outcome.lines:
            print("  " + line)
    reconcile_day(ctx, day)
    print("\n".join(report_lines(day, recheck_later_days(ctx, day, actor))))
    return 0


def reclose_days(ctx: Context, first: date, last: date, units: list[str], reason: str, actor: str) -> int:
    """Re-close every day from `first` to `last` in one go (closeout.orchestration.reclose): days in order, the later
    published days re-checked once, each changed day's edition rendered into the outbox. Mails nothing: what
    changed is printed here (the Airflow DAG closeout_reclose_range mails one summary)."""
    from closeout.close.reclose import ReasonRequired
    from closeout.close.reclose_range import RangeRefused
    from closeout.core.clock import LOCAL_TZ
    from closeout.deliver.reclose_summary import changed_days, summary_lines
    from closeout.orchestration.reclose import reclose_range

    try:
        result = reclose_range(ctx, first, last, units, reason, actor, datetime.now(LOCAL_TZ).date())
    except (RangeRefused, ReasonRequired) as exc:  # refused before anything changed
        print(exc, file=sys.stderr)
        return 2
    for day, lines in result.changed.items():
        print(f"{day}:")
        print("\n".join(f"  {line}" for line in lines))
    print("\n".join(summary_lines(first, last, changed_days(ctx, first, result.since, result.signed_by))))
    for label in result.editions:
        print(f"已生成 {label}（未发送）")
    for line in result.failed:
        print(f"未入库：{line}", file=sys.stderr)
    return 1 if result.failed else 0


def contract(ctx: Context, check: bool) -> int:
    """Rewrite the generated parts of docs/submission-format.md (or, with --check, fail if they are stale)."""
    from closeout.checks.contract import generated_blocks, render_document
    from closeout.core.limits import Limits

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
    register = commands.add_parser("corrections", help="the corrections register (CSV) of published figures")
    register.add_argument("--since", type=date.fromisoformat, help="report dates from YYYY-MM-DD")
    reclose_command = commands.add_parser(
        "reclose", help="re-close a published day, or every day FROM..TO in order: reload units, re-check later days"
    )
    reclose_command.add_argument("report_date", type=date.fromisoformat, help="YYYY-MM-DD (FROM with a TO)")
    reclose_command.add_argument(
        "through", nargs="?", type=date.fromisoformat, help="YYYY-MM-DD: re-close every day up to this one too"
    )
    reclose_command.add_argument("--unit", action="append", default=[], help="unit code, slug or name (repeatable)")
    reclose_command.add_argument("--reason", required=True, help="why (signs the corrections, kept in the register)")
    commands.add_parser("check-registry", help="check the registry as the day will use it (names, codes, groups)")
    status_command = commands.add_parser("status", help="a day's unit statuses, blocking problems and editions")
    status_command.add_argument("report_date", type=date.fromisoformat, help="YYYY-MM-DD")
    for name, helptext in (
        ("confirm-delivery", "the bulletin did arrive: mark an unconfirmed send as sent"),
        ("retry-delivery", "the bulletin did not arrive: let the next run send the edition again"),
        ("forget-delivery", "old name of retry-delivery"),
    ):
        command = commands.add_parser(name, help=helptext)
        command.add_argument("report_date", type=date.fromisoformat, help="YYYY-MM-DD")
        command.add_argument("--edition", type=int, help="edition number (default: the last one mailed)")
        command.add_argument("--reason", required=True, help="why, in your words (kept with the record)")
        if name != "confirm-delivery":
            command.add_argument("--even-if-sent", action="store_true", help="also release a confirmed send")
    notice_commands.add_parsers(commands)
    args = parser.parse_args(argv)
    ctx = Context.from_env()
    if args.command == "contract":
        return contract(ctx, args.check)
    if args.command == "mark-absent":
        return mark_absent(ctx, args.report_date, args.unit, args.reason)
    if args.command == "status":
        return status(ctx, args.report_date)
    if args.command == "check-registry":
        return check_registry(ctx)
    if args.command == "corrections":
        return corrections(ctx, args.since)
    actor = cli_actor()
    if args.command == "reclose" and args.through is not None:
        return reclose_days(ctx, args.report_date, args.through, args.unit, args.reason, actor)
    if args.command == "reclose":
        return reclose(ctx, args.report_date, args.unit, args.reason, actor)
    if args.command in notice_commands.COMMANDS:
        return notice_commands.run(ctx, args, actor)
    if args.command == "confirm-delivery":
        return confirm_delivery(ctx, args.report_date, args.edition, args.reason, actor)
    return retry_delivery(ctx, args.report_date, args.edition, args.reason, actor, args.even_if_sent)


if __name__ == "__main__":
    sys.exit(main())
