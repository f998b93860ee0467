"""Messages of the same-day loop: a receipt (回执) per judged file, reminders to late units, the deadline alert.

Each notice has a natural key — (kind, report date, unit, file hash or reminder time) — and is sent at
most once through the protocol of the bulletin (closeout.deliver.transport.send_once), message by message on a
session shared by a batch (send_notices); which notices are due is decided from the store, so a re-run, or the
cutoff run after intake, sends only what is missing, and from the outbox, where each message is kept as sent
(<outbox>/<date>/notices/), so a store lost or restored from an older backup does not mail everyone again.
Chinese, plain and short: the clerk reads them on a phone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import formatdate
from pathlib import Path

from closeout.close.status import open_units, pending_signoffs, unit_statuses
from closeout.core.clock import LOCAL_TZ, month_day, now_local
from closeout.core.numbers import render_value
from closeout.core.vocabulary import ANSWERED, UnitStatus
from closeout.deliver.transport import REFUSED, Connect, message_id
from closeout.store.context import Context

MESSAGES_PER_SESSION = 100  # servers cap the messages of one connection; a login per hundred costs little
LIVE = ("sending", "sent")  # a notice in either state is never sent again; 'released' is sent again, same key
KINDS = ("receipt", "reminder", "deadline_alert", "reclose_summary")


class NoticesNeedOperator(RuntimeError):
    """Notices that a retry cannot send: a person decides or fixes something first (one line each)."""


class NoticesUncertain(NoticesNeedOperator):
    """Notices the store has no record of, though the outbox keeps them as handed to a server: possibly delivered,
    so recorded as unconfirmed and not sent without an operator's decision (closeout confirm-notice / retry-notice)."""


class UnaddressableNotices(NoticesNeedOperator):
    """Notices to a contact no message can be addressed to (a line break in the registry's address): not recorded,
    so they go once the registry is fixed (closeout check-registry names them); the other notices went."""


@dataclass(frozen=True)
class Notice:
    kind: str  # receipt | reminder | deadline_alert
    report_date: str
    unit_code: str  # '' for the whole day
    key: str  # the file's SHA-256 for a receipt, the reminder time, '' for the deadline alert
    recipients: tuple[str, ...]
    subject: str
    body: str

    @property
    def ident(self) -> dict:
        return {"kind": self.kind, "report_date": self.report_date, "unit_code": self.unit_code, "notice_key": self.key}


# --- what is due ---------------------------------------------------------------------------------------------


def receipts_due(ctx: Context, report_date: date) -> list[Notice]:
    """One receipt for every file judged that day and not yet receipted, oldest first."""
    day = report_date.isoformat()
    sent = _sent_keys(ctx, day, "receipt")
    due = [
        sub
        for sub in ctx.store.rows("select_judged_submissions", {"report_date": day})
        if (sub["unit_code"], sub["sha256"]) not in sent
    ]
    if not due:
        return []
    scope = {"report_date": day, "unit_codes": sorted({sub["unit_code"] for sub in due})}
    findings: dict[tuple[str, str], list[dict]] = {}
    for f in ctx.store.rows("select_file_findings", scope):
        findings.setdefault((f["unit_code"], f["file_name"]), []).append(f)
    figures: dict[tuple[str, str], dict[str, dict]] = {}
    for r in ctx.store.rows("select_figures_of_files", scope):
        figures.setdefault((r["unit_code"], r["source_sha256"]), {})[r["metric"]] = r
    return [
        _receipt(
            ctx,
            report_date,
            ctx.registry.get(sub["unit_code"]),
            sub,
            findings.get((sub["unit_code"], sub["file_name"]), []),
            figures.get((sub["unit_code"], sub["sha256"]), {}),
        )
        for sub in due
    ]


def _receipt(
    ctx: Context, report_date: date, unit, sub: dict, findings: list[dict], figures: dict[str, dict]
) -> Notice:
    day, when = report_date.isoformat(), sub["received_at"][11:16]
    head = f"{unit.name}：\n你单位 {when} 报送的{month_day(report_date)}日报文件 {sub['file_name']}"
    if sub["status"] == "rejected":
        subject = f"【退回】{unit.name}{month_day(report_date)}日报未通过校验，请更正后重报"
        lines = [line for line in sub["reasons"].splitlines() if line]
        body = (
            f"{head} 未通过校验，已退回（未入库）。原因：\n"
            + "\n".join(f"  {i}. {line}" for i, line in enumerate(lines, start=1))
            + f"\n\n请按上述原因改正后，在 {ctx.settings.cutoff} 前用同一文件名重新放入收件目录 {day}/。"
            "\n填报要求见《日报报送格式说明》（docs/submission-format.md）。"
        )
    else:
        subject = f"【回执】{unit.name}{month_day(report_date)}日报已受理"
        shown = [
            f"  {m.label}：{render_value(figures[m.key]['value'], figures[m.key]['qualifier'])}{m.unit}"
            for m in ctx.catalogue.metrics
            if m.key in figures
        ]
        notes = [f"  {f['line']}" for f in findings if f["severity"] != "hard"]
        superseded = "（此后已被更新的文件替代）" if sub["status"] == "superseded" else ""
        body = (
            f"{head} 已受理{superseded}。读入的数字如下，请核对：\n"
            + "\n".join(shown)
            + (("\n\n提示：\n" + "\n".join(notes)) if notes else "")
            + f"\n\n如有错误，请在 {ctx.settings.cutoff} 前用同一文件名重报；日报发布后再改须在备注列写明原因。"
        )
    return Notice("receipt", day, unit.code, sub["sha256"], unit.contacts, subject, body + _footer(sub["sha256"]))


def reminders_due(ctx: Context, report_date: date, now: datetime) -> list[Notice]:
    """At each reminder time passed (before the cutoff), units still without an accepted file, once each."""
    day = report_date.isoformat()
    statuses = unit_statuses(ctx, report_date)
    excused = {r["unit_code"] for r in ctx.store.rows("select_excusals", {"report_date": day})}
    sent = _sent_keys(ctx, day, "reminder")
    notices = []
    if now >= _local(report_date, ctx.settings.cutoff):
        return []  # after the cutoff a reminder helps no one: the day is judged
    for at in ctx.settings.reminders:
        if at >= ctx.settings.cutoff or now < _local(report_date, at):
            continue
        for unit in ctx.registry.units:
            status = statuses.get(unit.code)
            if not unit.required or unit.code in excused or status in ANSWERED or (unit.code, at) in sent:
                continue
            why = "报送的文件未通过校验，尚未重报" if status == UnitStatus.REJECTED else "尚未收到报送文件"
            subject = f"【提醒】{unit.name}{month_day(report_date)}日报{why}（{ctx.settings.cutoff}截止）"
            body = (
                f"{unit.name}：\n截至 {at}，你单位{month_day(report_date)}的日报{why}。"
                f"\n请在 {ctx.settings.cutoff} 前把文件放入收件目录 {day}/（文件名用单位代码 {unit.code}、拼音 {unit.slug}"
                f" 或中文名 {unit.name}，.csv 或 .xlsx）。逾期按缺报处理。"
                "\n如今天确实无法报送，请告知值班人员。"
            )
            notices.append(
                Notice("reminder", day, unit.code, at, unit.contacts + ctx.settings.ops_emails, subject, body)
            )
    return notices


def deadline_alert_due(ctx: Context, report_date: date, now: datetime) -> list[Notice]:
    """After the deadline, if the day is not closed (bulletin sent, every required unit cleared or excused): one alert."""
    day = report_date.isoformat()
    if now < _deadline(ctx, report_date) or _sent_keys(ctx, day, "deadline_alert"):
        return []
    units = open_units(ctx, report_date)
    deliveries = ctx.store.rows("select_deliveries", {"report_date": day})
    bulletin_sent = any(d["status"] == "sent" for d in deliveries)
    if not units and bulletin_sent:
        return []
    lines = [f"  {name}：{why}" for name, why in units]
    if not bulletin_sent:
        uncertain = any(d["status"] == "sending" for d in deliveries)
        lines.insert(0, "  日报尚未发出" + ("（发送未确认）" if uncertain else ""))
    for request in pending_signoffs(ctx, report_date):
        why = request["reasons"].replace("\n", "；")
        lines.insert(1, f"  第{request['edition_no']}版日报等待审核签发（{request['requested_at'][11:16]}起）：{why}")
    subject = f"【告警】{month_day(report_date)}日报截至 {ctx.settings.deadline} 仍未结清（{len(units)}个单位）"
    body = (
        f"{month_day(report_date)}的日清日结截至 {ctx.settings.deadline} 仍未完成：\n"
        + "\n".join(lines)
        + f"\n\n处理办法见运维手册 docs/operations.md；当天状态：closeout status {day}；"
        f"\nAirflow：{ctx.settings.ui_base_url}/dags/daily_closeout"
    )
    return [Notice("deadline_alert", day, "", "", ctx.settings.ops_emails, subject, body)]


def _deadline(ctx: Context, report_date: date) -> datetime:
    """The deadline is on the report date, or past midnight on the next day when it is earlier than the cutoff."""
    deadline = _local(report_date, ctx.settings.deadline)
    if ctx.settings.deadline <= ctx.settings.cutoff:
        deadline += timedelta(days=1)
    return deadline


def _local(day: date, hhmm: str) -> datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=LOCAL_TZ)


def _sent_keys(ctx: Context, day: str, kind: str) -> set[tuple[str, str]]:
    """Notices recorded (sent, or being sent: never twice) of one kind for the day, as (unit, key); a released one
    is due again."""
    return {
        (r["unit_code"], r["notice_key"])
        for r in ctx.store.rows("select_notices", {"report_date": day})
        if r["kind"] == kind and r["status"] in LIVE
    }


def _footer(sha256: str) -> str:
    return f"\n\n（文件校验码 SHA-256 前12位：{sha256[:12]}。本邮件由日清日结系统自动发送，请勿直接回复。）"


# --- sending -------------------------------------------------------------------------------------------------


def build_notice_message(notice: Notice, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = notice.subject
    message["From"] = sender
    message["To"] = ", ".join(notice.recipients)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = message_id(f"closeout-{notice.kind}-{notice.report_date}", sender)
    message.set_content(notice.body, charset="utf-8")
    return message


def notice_file(outbox: Path, notice: Notice | dict) -> Path:
    """Where a notice's message is kept as sent: <outbox>/<date>/notices/<kind>-<unit>-<key, 12 characters>.eml."""
    ident = notice.ident if isinstance(notice, Notice) else notice
    key = re.sub(r"[^0-9A-Za-z]", "", ident["notice_key"])[:12] or "0"
    return outbox / ident["report_date"] / "notices" / f"{ident['kind']}-{ident['unit_code'] or 'day'}-{key}.eml"


def send_notices(ctx: Context, notices: list[Notice], sender: str, connect: Connect) -> list[Notice]:
    """Send each notice at most once; a batch of up to MESSAGES_PER_SESSION shares one login (2,850 receipts are
    not 2,850 logins), each message its own claim and confirmation (the protocol of the bulletin).

    What is already recorded is read in one query per day. A notice the store has no record of whose message the
    outbox keeps (notice_file) may have reached the unit: it is recorded as unconfirmed ('sending', the file's
    Message-ID and time) and not sent; NoticesUncertain names it once the rest went. Each other batch: log in (a
    failure records nothing); then for each message, claim it ('sending', or a released one taken again) just before
    it goes — in the transaction that records the previous message's answer — keep it on disk, hand it to the
    server, and record the answer right after: 'sent', or 'released' for a refusal (with a notice_event) so a later
    run sends it, the rest of the batch still going. The first refusal is raised once every batch is done. Anything
    else (a timeout, a dropped line, the process killed) may come after the server accepted that one message, so it
    alone stays 'sending' (never twice, listed by `closeout status` once CLOSEOUT_NOTICE_CONFIRM_MINUTES passed);
    the messages not yet handed over were never claimed. A notice with no recipients is recorded as such, not
    mailed. Returns the notices mailed, in the given order."""
    store = ctx.store
    recorded = _recorded(store, notices)
    todo: dict[tuple, Notice] = {}
    for notice in notices:
        if recorded.get(_ident_key(notice.ident)) not in LIVE:
            todo.setdefault(_ident_key(notice.ident), notice)  # the same notice twice in the list: once
    uncertain = [
        (n, path)
        for key, n in todo.items()
        if key not in recorded and (path := notice_file(ctx.settings.outbox, n)).exists()
    ]
    uncertain = [(n, path) for n, path in uncertain if _record_found(store, n, path, sender)]
    for n, _ in uncertain:
        del todo[_ident_key(n.ident)]
    unmailable = [n for n in todo.values() if not n.recipients]
    if unmailable:  # no contact in the registry: kept for the record and the board, not mailed
        stamp = now_local()
        with store.transaction() as conn:
            store.run(
                conn,
                "claim_notice",
                [
                    {**_record(n, build_notice_message(n, sender), stamp), "recipients": "（名录中无联系人）"}
                    | {"status": "sent", "sent_at": stamp}
                    for n in unmailable
                ],
            )
    mailable, unaddressable = [], []
    for notice in (n for n in todo.values() if n.recipients):
        try:
            mailable.append((notice, build_notice_message(notice, sender)))
        except ValueError as exc:  # a CR/LF in a contact: this message alone waits for the registry to be fixed
            unaddressable.append(
                f"{notice.kind} {notice.unit_code} → {', '.join(map(repr, notice.recipients))}：联系人地址无法用于邮件"
                f"（{exc}），未发送；改正名录后重跑（closeout check-registry）/ not sent: fix the registry's contact"
            )
    sent: set[tuple] = set()
    refusals: list[tuple[Notice, Exception]] = []
    for start in range(0, len(mailable), MESSAGES_PER_SESSION):
        batch = mailable[start : start + MESSAGES_PER_SESSION]
        done, refused = _send_batch(ctx, batch, connect)
        sent.update(_ident_key(n.ident) for n in done)
        refusals += refused
    found = [_uncertain_line(n, path) for n, path in uncertain]
    if refusals:
        notice, first = refusals[0]
        first.add_note(
            f"{len(refusals)} notice(s) refused by the mail server and left unsent for the next run: "
            + ", ".join(f"{n.kind} {n.unit_code or n.report_date} {n.key[:12]}" for n, _ in refusals)
        )
        for line in found + unaddressable:
            first.add_note(line)
        raise first
    if found:
        raise NoticesUncertain("\n".join(found + unaddressable))
    if unaddressable:
        raise UnaddressableNotices("\n".join(unaddressable))
    return [n for key, n in todo.items() if key in sent]


def _send_batch(
    ctx: Context, batch: list[tuple[Notice, EmailMessage]], connect: Connect
) -> tuple[list[Notice], list[tuple[Notice, Exception]]]:
    """One session, a message at a time (see send_notices): the answer to each message is recorded in the
    transaction that claims the next (one more for the last), so at any moment at most one message is claimed and
    unanswered. Returns (sent, refused)."""
    store, outbox = ctx.store, ctx.settings.outbox
    done: list[Notice] = []
    refused: list[tuple[Notice, Exception]] = []
    answer: list[tuple[str, dict]] = []  # the last message's answer, not yet recorded
    with connect() as send:
        for notice, message in batch:
            with store.transaction() as conn:
                for name, params in answer:
                    store.run(conn, name, params)
                answer = []
                row = _record(notice, message, now_local()) | {"status": "sending", "sent_at": None}
                claimed = store.run(conn, "claim_notice", row).rowcount == 1
            if not claimed:  # recorded by a parallel run since it was found due: never twice
                continue
            kept = notice_file(outbox, notice)
            try:  # written once claimed: a file here is a message that may have gone
                kept.parent.mkdir(parents=True, exist_ok=True)
                kept.write_bytes(bytes(message))
            except OSError:  # not handed over: nothing left unconfirmed
                with store.transaction() as conn:
                    store.run(conn, "release_notice", {**notice.ident, "status_was": "sending"})
                raise
            try:
                send(message)
            except REFUSED as exc:
                refused.append((notice, exc))
                answer = _refusal(notice, message, exc)
                continue
            done.append(notice)
            answer = [("mark_notice_sent", {**notice.ident, "sent_at": now_local()})]
        if answer:
            with store.transaction() as conn:
                for name, params in answer:
                    store.run(conn, name, params)
    return done, refused


def _refusal(notice: Notice, message: EmailMessage, exc: Exception) -> list[tuple[str, dict]]:
    """A refused message is released (the next run sends it under the same key) and the refusal kept."""
    event = {
        **notice.ident,
        "event": "refused",
        "message_id": message["Message-ID"],
        "actor": "closeout (邮件服务器拒收 / refused by the mail server)",
        "reason": " ".join(str(exc).split())[:500],
        "at": now_local(),
    }
    return [("release_notice", {**notice.ident, "status_was": "sending"}), ("insert_notice_event", event)]


def _record_found(store, notice: Notice, path: Path, sender: str) -> bool:
    """A notice kept in the outbox but unknown to the store, recorded as unconfirmed with the file's Message-ID and
    time and a found_on_disk event naming the file; False when a parallel run recorded it first."""
    try:
        with open(path, "rb") as kept:
            mid = str(BytesHeaderParser(policy=policy.default).parse(kept)["Message-ID"] or "").strip()
        started = datetime.fromtimestamp(path.stat().st_mtime, LOCAL_TZ).isoformat(timespec="milliseconds")
    except (OSError, ValueError):
        mid, started = "", now_local()
    row = _record(notice, build_notice_message(notice, sender), started) | {
        "message_id": mid,
        "status": "sending",
        "sent_at": None,
    }
    with store.transaction() as conn:
        if store.run(conn, "claim_notice", row).rowcount != 1:
            return False
        event = {
            **notice.ident,
            "event": "found_on_disk",
            "message_id": mid,
            "actor": "closeout (发件目录核对 / outbox check)",
            "reason": f"{path}：发件目录里有这封邮件，报送库里没有它的发送记录",
            "at": now_local(),
        }
        store.run(conn, "insert_notice_event", event)
    return True


def _uncertain_line(notice: Notice, path: Path) -> str:
    who = notice.unit_code or "全市"
    args = f"{notice.report_date} --kind {notice.kind}" + (f" --unit {notice.unit_code}" if notice.unit_code else "")
    args += f" --key {notice.key[:12]}" if notice.key else ""
    return (
        f"{notice.kind} {who} {notice.key[:12]}：报送库里没有记录，但发件目录里有发出过的邮件 {path}，可能已经送达，"
        f'不自动再发。已收到 → closeout confirm-notice {args} --reason "…"；'
        f'确认未收到 → closeout retry-notice {args} --reason "…"'
    )


def _record(notice: Notice, message: EmailMessage, started_at: str) -> dict:
    return {
        **notice.ident,
        "subject": notice.subject,
        "recipients": ", ".join(notice.recipients),
        "message_id": message["Message-ID"],
        "body": notice.body,
        "started_at": started_at,
    }


def _ident_key(row: dict) -> tuple[str, str, str, str]:
    return (row["kind"], row["report_date"], row["unit_code"], row["notice_key"])


def _recorded(store, rows: list) -> dict[tuple[str, str, str, str], str]:
    """The notices already recorded on the days of these notices or rows, with their status, one query a day."""
    days = {row.report_date if isinstance(row, Notice) else row["report_date"] for row in rows}
    return {
        (r["kind"], day, r["unit_code"], r["notice_key"]): r["status"]
        for day in sorted(days)
        for r in store.rows("select_notices", {"report_date": day})
    }
