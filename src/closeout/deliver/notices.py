"""Messages of the same-day loop: a receipt (回执) per judged file, reminders to late units, the deadline alert.

Each notice has a natural key — (kind, report date, unit, file hash or reminder time) — and is sent at
most once through the protocol of the bulletin (closeout.deliver.transport.send_once), a session's batch at a time
(send_notices); which notices are due is decided from the store alone, so a re-run, or the cutoff run after
intake, sends only what is missing. Chinese, plain and short: the clerk reads them on a phone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate

from sqlalchemy.exc import DBAPIError

from closeout.close.status import open_units, pending_signoffs, unit_statuses
from closeout.core.clock import LOCAL_TZ, month_day, now_local
from closeout.core.numbers import render_value
from closeout.core.vocabulary import ANSWERED, UnitStatus
from closeout.deliver.transport import REFUSED, Connect, message_id
from closeout.store.context import Context

MESSAGES_PER_SESSION = 100  # servers cap the messages of one connection; a login per hundred costs little


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
    """Notices recorded (sent, or being sent: never twice) of one kind for the day, as (unit, key)."""
    return {
        (r["unit_code"], r["notice_key"])
        for r in ctx.store.rows("select_notices", {"report_date": day})
        if r["kind"] == kind
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


def send_notices(ctx: Context, notices: list[Notice], sender: str, connect: Connect) -> list[Notice]:
    """Send each notice at most once, in batches: 2,850 receipts are not 2,850 logins nor 5,700 transactions.

    What is already recorded is read in one query per day. Each batch of up to MESSAGES_PER_SESSION notices
    then goes through the protocol of closeout.deliver.transport.send_once, a batch at a time: log in (a failure records
    nothing), record the whole batch as 'sending' in one transaction, send each message on that session, and
    record in one transaction the ones the server accepted as 'sent'. A message the server refuses is released
    (its row deleted) so a later run sends it, and the rest of the batch still goes; the first refusal is raised
    once every batch is done. Anything else (a timeout, a dropped line) may come after the server accepted that
    message, so its row stays 'sending' (never twice); the messages of the batch not yet handed to the server
    are released, those already accepted confirmed. A notice with no recipients is recorded as such, not mailed.
    Returns the notices mailed, in the given order."""
    store = ctx.store
    recorded = _recorded(store, notices)
    todo: dict[tuple, Notice] = {}
    for notice in notices:
        if _ident_key(notice.ident) not in recorded:
            todo.setdefault(_ident_key(notice.ident), notice)  # the same notice twice in the list: once
    unmailable = [n for n in todo.values() if not n.recipients]
    if unmailable:  # no contact in the registry: kept for the record and the board, not mailed
        stamp = now_local()
        rows = [
            {**_record(n, build_notice_message(n, sender), stamp), "recipients": "（名录中无联系人）"}
            | {"status": "sent", "sent_at": stamp}
            for n in unmailable
        ]
        _claim(store, rows)
    mailable = [n for n in todo.values() if n.recipients]
    sent: set[tuple] = set()
    refusals: list[tuple[Notice, Exception]] = []
    for start in range(0, len(mailable), MESSAGES_PER_SESSION):
        batch = [(n, build_notice_message(n, sender)) for n in mailable[start : start + MESSAGES_PER_SESSION]]
        done, refused = _send_batch(store, batch, connect)
        sent.update(_ident_key(n.ident) for n in done)
        refusals += refused
    if refusals:
        notice, first = refusals[0]
        first.add_note(
            f"{len(refusals)} notice(s) refused by the mail server and left unsent for the next run: "
            + ", ".join(f"{n.kind} {n.unit_code or n.report_date} {n.key[:12]}" for n, _ in refusals)
        )
        raise first
    return [n for key, n in todo.items() if key in sent]


def _send_batch(
    store, batch: list[tuple[Notice, EmailMessage]], connect: Connect
) -> tuple[list[Notice], list[tuple[Notice, Exception]]]:
    """One session: claim the batch, send it, confirm what was accepted and release what was refused or never
    handed to the server (see send_notices). Returns (sent, refused)."""
    done: list[Notice] = []
    refused: list[tuple[Notice, Exception]] = []
    with connect() as send:
        stamp = now_local()
        claimed = _claim(store, [_record(n, m, stamp) | {"status": "sending", "sent_at": None} for n, m in batch])
        pending = [(n, m) for n, m in batch if _ident_key(n.ident) in claimed]
        pending.reverse()
        try:
            while pending:
                notice, message = pending.pop()
                try:
                    send(message)
                except REFUSED as exc:
                    refused.append((notice, exc))
                    continue
                done.append(notice)
        finally:  # the one in flight when something else went wrong is in neither list: it stays 'sending'
            stamp = now_local()
            with store.transaction() as conn:
                store.run(conn, "mark_notice_sent", [{**n.ident, "sent_at": stamp} for n in done])
                store.run(conn, "delete_unsent_notice", [n.ident for n, _ in refused] + [n.ident for n, _ in pending])
    return done, refused


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


def _recorded(store, rows: list) -> set[tuple[str, str, str, str]]:
    """The notices already recorded (sent, or being sent) on the days of these notices or rows, one query a day."""
    days = {row.report_date if isinstance(row, Notice) else row["report_date"] for row in rows}
    return {
        (r["kind"], day, r["unit_code"], r["notice_key"])
        for day in sorted(days)
        for r in store.rows("select_notices", {"report_date": day})
    }


def _claim(store, rows: list[dict]) -> set[tuple[str, str, str, str]]:
    """Record rows in one transaction; the keys recorded. A parallel run that recorded some of them since they
    were found due makes the insert fail: those are dropped (never twice) and the rest recorded."""
    while rows:
        try:
            with store.transaction() as conn:
                store.insert_rows(conn, "claim_notices", rows)
            return {_ident_key(r) for r in rows}
        except DBAPIError:
            recorded = _recorded(store, rows)
            fewer = [r for r in rows if _ident_key(r) not in recorded]
            if len(fewer) == len(rows):
                raise  # not a notice recorded meanwhile
            rows = fewer
    return set()
