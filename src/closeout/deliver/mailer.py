"""The bulletin email: one edition as a UTF-8 message, sent at most once per edition.

multipart/mixed
  multipart/alternative
    text/plain              the bulletin readable on its own, the charts as figures
    multipart/related
      text/html             CSS inlined, readable on a phone and in desktop clients
      image/png ...         the charts, by Content-ID
  the spreadsheet (.csv, or .xlsx by group), 更正登记.csv when the edition lists corrections, the PDF
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING

from closeout.core.clock import LOCAL_TZ, now_local
from closeout.deliver.transport import Connect, send_once
from closeout.deliver.transport import message_id as make_message_id
from closeout.publish.bulletin.render import Rendered, content_sha256
from closeout.publish.bulletin.spreadsheet import level_zip_name
from closeout.publish.register import FILE_NAME as REGISTER_FILE
from closeout.store.context import Context

if TYPE_CHECKING:
    from closeout.publish.editions import Edition


class DeliveryUncertain(RuntimeError):
    """A previous attempt started sending and never confirmed: sending again could duplicate the mail."""


@dataclass(frozen=True)
class Delivery:
    status: str  # sent | already_sent
    message_id: str
    recipients: tuple[str, ...]


XLSX = "vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def build_message(
    subject: str, rendered: Rendered, attachment_name: str, sender: str, recipients: tuple[str, ...], message_id: str
) -> EmailMessage:
    """The parts carry the edition's bytes unchanged (base64), so what is mailed hashes to the edition's hash."""
    message = EmailMessage()  # smtplib.sendmail with a str raises on Chinese text; send_message does not
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = message_id
    message.set_content(rendered.text.encode("utf-8"), maintype="text", subtype="plain", params={"charset": "utf-8"})
    message.add_alternative(rendered.html.encode("utf-8"), maintype="text", subtype="html", params={"charset": "utf-8"})
    html = message.get_body(("html",))
    for name, png in rendered.images:  # the HTML's <img src="cid:..."> (closeout.publish.charts.Chart.cid)
        html.add_related(png, maintype="image", subtype="png", cid=f"<{name}@closeout>", filename=name)
    # The policy encodes the Chinese file name per RFC 2231 (filename*=utf-8''...).
    if attachment_name.endswith(".xlsx"):
        message.add_attachment(rendered.attachment, maintype="application", subtype=XLSX, filename=attachment_name)
    else:
        message.add_attachment(
            rendered.attachment, maintype="text", subtype="csv", filename=attachment_name, params={"charset": "utf-8"}
        )
    if rendered.level_zip:
        message.add_attachment(
            rendered.level_zip, maintype="application", subtype="zip", filename=level_zip_name(attachment_name)
        )
    if rendered.register:
        message.add_attachment(
            rendered.register, maintype="text", subtype="csv", filename=REGISTER_FILE, params={"charset": "utf-8"}
        )
    if rendered.pdf:
        pdf_name = subject.replace(" ", "_") + ".pdf"
        message.add_attachment(rendered.pdf, maintype="application", subtype="pdf", filename=pdf_name)
    return message


def mailed_sha256(message: EmailMessage) -> str:
    """The hash of what a received message carries (its parts decoded), to compare with its edition's."""
    html, plain = (message.get_body((kind,)).get_payload(decode=True) for kind in ("html", "plain"))
    attachments = [part.get_payload(decode=True) for part in message.iter_attachments()]
    images = [part.get_payload(decode=True) for part in message.walk() if part["Content-ID"]]
    return content_sha256(html, plain, *attachments, *images)


def attempts_of(ctx: Context, edition: Edition) -> list[dict]:
    rows = ctx.store.rows("select_deliveries", {"report_date": edition.report_date.isoformat()})
    return [r for r in rows if r["edition_no"] == edition.number]


def deliver_edition(
    ctx: Context,
    edition: Edition,
    sender: str,
    connect: Connect,
) -> Delivery:
    """Mail one edition at most once: exactly its files, checked against its hash just before sending.

    `connect()` opens a logged-in SMTP session and yields its send function. A failure while connecting
    records nothing; the attempt is recorded just before sending and confirmed right after; a refusal marks it
    refused (kept); anything else (a timeout, a dropped line) may come after the server accepted the mail, so
    the attempt stays `sending` and the next try asks the operator instead of sending again. The message as
    sent is kept beside the edition (email-<attempt>.eml, written once the attempt is recorded, just before sending;
    never overwritten: an attempt's number is past every recorded attempt and every file in the folder).

    What is on disk is evidence: a bulletin message of the day in the outbox that the store has no record of (the
    store lost, or restored from an older backup) may have reached its readers, so the edition is not mailed; that
    is recorded as an unconfirmed (`sending`) attempt for an operator to resolve (confirm-delivery / retry-delivery).
    """
    from closeout.publish.editions import read_files

    store, day = ctx.store, edition.report_date.isoformat()
    recipients = ctx.settings.recipients
    if not recipients:
        raise ValueError("CLOSEOUT_RECIPIENTS is empty: no one to send the bulletin to")
    attempts = attempts_of(ctx, edition)
    sent = [a for a in attempts if a["status"] == "sent"]
    if sent:
        return Delivery("already_sent", sent[-1]["message_id"], tuple(sent[-1]["recipients"].split(", ")))
    if attempts and attempts[-1]["status"] == "sending":
        last = attempts[-1]
        raise DeliveryUncertain(
            f"{edition.label}上次发送（第{last['attempt']}次，Message-ID {last['message_id']}）未确认完成。请先在收件箱核对："
            f'已收到 → `closeout confirm-delivery {day} --edition {edition.number} --reason "…"`；确认未收到 → '
            f'`closeout retry-delivery {day} --edition {edition.number} --reason "…"`，再清除（Clear）本任务重跑。'
        )
    found = unrecorded_messages(ctx, edition.report_date)
    if found:
        _record_found(ctx, edition, _next_attempt(ctx, edition, attempts), found)
        path, _ = found[-1]
        others = f"（另有 {len(found) - 1} 封）" if len(found) > 1 else ""
        raise DeliveryUncertain(
            f"{edition.label}：报送库里没有这天日报已发出的记录，但发件目录里有发出过的邮件 {path}{others}，"
            "可能已经送达（报送库丢失或从旧备份恢复过？），不自动再发。请先在收件箱核对："
            f'已收到 → `closeout confirm-delivery {day} --edition {edition.number} --reason "…"`；确认未收到 → '
            f'`closeout retry-delivery {day} --edition {edition.number} --reason "…"`，再清除（Clear）本任务重跑。'
        )
    rendered = read_files(ctx, edition)
    attempt = _next_attempt(ctx, edition, attempts)
    message_id = make_message_id(f"closeout-{day}-{edition.number}-{attempt}", sender)
    message = build_message(edition.subject, rendered, edition.attachment_name, sender, recipients, message_id)
    kept = edition.folder(ctx) / f"email-{attempt}.eml"
    key = {**edition.key, "attempt": attempt}
    send_once(
        store,
        message,
        connect,
        claim=lambda conn: store.run(
            conn,
            "insert_delivery",
            {
                **key,
                "subject": edition.subject,
                "recipients": ", ".join(recipients),
                "message_id": message_id,
                "content_sha256": edition.sha256,
                "started_at": now_local(),
            },
        ),
        release=lambda conn: store.run(conn, "mark_delivery_refused", key),
        confirm=lambda conn: mark_sent(ctx, conn, edition, attempt),
        before_send=lambda: kept.write_bytes(bytes(message)),
    )
    return Delivery("sent", message_id, recipients)


_EMAIL_FILE = re.compile(r"email-(\d+)\.eml")


def unrecorded_messages(ctx: Context, report_date: date) -> list[tuple[Path, str]]:
    """The bulletin messages kept in the outbox for the day (every <outbox>/<date>/*/email-*.eml, folders set aside
    as NN.unrecorded-… included) that the store knows nothing of, oldest first, each with its Message-ID: not the
    message of a recorded attempt, nor a file already found and recorded (a found_on_disk delivery_event names its
    Message-ID, or its path when it has none)."""
    day = report_date.isoformat()
    folder = ctx.settings.outbox / day
    if not folder.is_dir():
        return []
    known = {r["message_id"] for r in ctx.store.rows("select_deliveries", {"report_date": day})}
    noted = [
        e["reason"]
        for e in ctx.store.rows("select_delivery_events", {"report_date": day})
        if e["event"] == "found_on_disk"
    ]
    found = []
    for path in sorted(folder.glob("*/email-*.eml"), key=lambda p: (p.stat().st_mtime, p.as_posix())):
        mid = _message_id_in(path)
        ident = mid or path.relative_to(ctx.settings.outbox).as_posix()
        if (mid and mid in known) or any(ident in reason for reason in noted):
            continue
        found.append((path, mid))
    return found


def _message_id_in(path: Path) -> str:
    try:
        with open(path, "rb") as kept:
            return str(BytesHeaderParser(policy=policy.default).parse(kept)["Message-ID"] or "").strip()
    except (OSError, ValueError):
        return ""


def _next_attempt(ctx: Context, edition: Edition, attempts: list[dict]) -> int:
    """Past every recorded attempt of the edition and every email-<n>.eml in its folder: a file is never overwritten."""
    kept = [int(m.group(1)) for p in edition.folder(ctx).glob("email-*.eml") if (m := _EMAIL_FILE.fullmatch(p.name))]
    return max([a["attempt"] for a in attempts] + kept, default=0) + 1


def _record_found(ctx: Context, edition: Edition, attempt: int, found: list[tuple[Path, str]]) -> None:
    """The messages found as one unconfirmed attempt of the edition (the newest one's Message-ID and time), each
    file named in a found_on_disk event, so an operator's confirm-delivery or retry-delivery resolves them."""
    store = ctx.store
    newest, newest_id = found[-1]
    started = datetime.fromtimestamp(newest.stat().st_mtime, LOCAL_TZ).isoformat(timespec="milliseconds")
    with store.transaction() as conn:
        store.run(
            conn,
            "insert_delivery",
            {
                **edition.key,
                "attempt": attempt,
                "subject": edition.subject,
                "recipients": ", ".join(ctx.settings.recipients),
                "message_id": newest_id,
                "content_sha256": edition.sha256,
                "started_at": started,
            },
        )
        for path, mid in found:
            rel = path.relative_to(ctx.settings.outbox).as_posix()
            store.run(
                conn,
                "insert_delivery_event",
                {
                    **edition.key,
                    "attempt": attempt,
                    "event": "found_on_disk",
                    "actor": "closeout (发件目录核对 / outbox check)",
                    "reason": f"{rel}（Message-ID {mid or '无'}）：发件目录里有这封邮件，报送库里没有它的发送记录",
                    "at": now_local(),
                },
            )


def mark_sent(ctx: Context, conn, edition: Edition, attempt: int) -> None:
    """An attempt went out (the server accepted it, or an operator confirmed it arrived): the revisions the
    edition listed are now announced — only those."""
    store, day = ctx.store, edition.report_date.isoformat()
    store.run(
        conn, "set_delivery_status", {**edition.key, "attempt": attempt, "status": "sent", "sent_at": now_local()}
    )
    notes = [r for r in edition.announces if r["role"] == "note"]
    changes = [r for r in edition.announces if r["role"] == "change"]
    keys = ("report_date", "unit_code", "metric", "new_sha256")
    store.run(conn, "mark_corrections_announced", [{k: r[k] for k in keys} | {"announced_in": day} for r in notes])
    store.run(
        conn,
        "mark_changes_sent_in_edition",
        [{k: r[k] for k in keys} | {"edition_no": edition.number} for r in changes],
    )
