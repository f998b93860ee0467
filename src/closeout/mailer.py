"""The bulletin email: a UTF-8 EmailMessage (HTML + text + attachment), sent at most once per day."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

from closeout.bulletin import Bulletin, Rendered
from closeout.context import Context
from closeout.store import now_local


class DeliveryUncertain(RuntimeError):
    """A previous attempt started sending and never confirmed: sending again could duplicate the mail."""


@dataclass(frozen=True)
class Delivery:
    status: str  # sent | already_sent
    message_id: str
    recipients: tuple[str, ...]


def build_message(
    bulletin: Bulletin, rendered: Rendered, sender: str, recipients: tuple[str, ...], message_id: str
) -> EmailMessage:
    message = EmailMessage()  # smtplib.sendmail with a str raises on Chinese text; send_message does not
    message["Subject"] = bulletin.subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Message-ID"] = message_id
    message.set_content(rendered.text, charset="utf-8")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8")
    # The policy encodes the Chinese file name per RFC 2231 (filename*=utf-8''...).
    message.add_attachment(
        rendered.attachment,
        maintype="text",
        subtype="csv",
        filename=bulletin.attachment_name,
        params={"charset": "utf-8"},
    )
    return message


# The server answered these with a refusal: nothing was delivered, so a retry may send.
REFUSED = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


def deliver_once(
    ctx: Context,
    bulletin: Bulletin,
    rendered: Rendered,
    sender: str,
    connect: Callable[[], AbstractContextManager[Callable[[EmailMessage], object]]],
) -> Delivery:
    """Send the day's bulletin at most once.

    `connect()` opens a logged-in SMTP session and yields its send function. A failure while connecting
    records nothing; the intent is recorded just before sending and confirmed right after; a refusal
    forgets it; anything else (a timeout, a dropped line) may come after the server accepted the mail, so
    the intent stays and the next try asks the operator instead of sending again.
    """
    store, day = ctx.store, bulletin.report_date.isoformat()
    recipients = ctx.settings.recipients
    if not recipients:
        raise ValueError("CLOSEOUT_RECIPIENTS is empty: no one to send the bulletin to")
    previous = store.rows("select_delivery", {"report_date": day})
    if previous and previous[0]["status"] == "sent":
        return Delivery("already_sent", previous[0]["message_id"], tuple(previous[0]["recipients"].split(", ")))
    if previous:
        raise DeliveryUncertain(
            f"{day} 日报上次发送未确认完成（Message-ID {previous[0]['message_id']}）。请先在收件箱核对是否已收到；"
            f"确认未收到后，执行 `closeout forget-delivery {day}` 清除记录，再清除（Clear）本任务重跑。"
        )
    domain = sender.rpartition("@")[2] or "closeout.invalid"
    message_id = make_msgid(idstring=f"closeout-{day}", domain=domain)
    message = build_message(bulletin, rendered, sender, recipients, message_id)
    send_once(
        store,
        message,
        connect,
        claim=lambda conn: store.run(
            conn,
            "insert_delivery",
            {
                "report_date": day,
                "subject": bulletin.subject,
                "recipients": ", ".join(recipients),
                "message_id": message_id,
                "content_sha256": rendered.sha256,
                "started_at": now_local(),
            },
        ),
        release=lambda conn: store.run(conn, "delete_unsent_delivery", {"report_date": day}),
        confirm=lambda conn: (
            store.run(conn, "mark_delivery_sent", {"report_date": day, "sent_at": now_local()}),
            store.run(conn, "mark_corrections_announced", {"report_date": day}),
        ),
    )
    return Delivery("sent", message_id, recipients)


def send_once(
    store,
    message: EmailMessage,
    connect: Callable[[], AbstractContextManager[Callable[[EmailMessage], object]]],
    claim: Callable,
    release: Callable,
    confirm: Callable,
) -> None:
    """The at-most-once protocol every mail uses: connect and log in first (a failure records nothing), record
    the intent (`claim`), send, record the success (`confirm`). A definite refusal `release`s the intent so a
    retry may send; anything else may come after the server accepted the mail, so the intent stays."""
    with connect() as send:
        with store.transaction() as conn:
            claim(conn)
        try:
            send(message)
        except REFUSED:
            with store.transaction() as conn:
                release(conn)
            raise
        with store.transaction() as conn:
            confirm(conn)
