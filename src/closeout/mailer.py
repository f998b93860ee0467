"""The bulletin email: a UTF-8 EmailMessage (HTML + text + attachment), sent at most once per day."""

from __future__ import annotations

from collections.abc import Callable
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


def deliver_once(
    ctx: Context, bulletin: Bulletin, rendered: Rendered, sender: str, send: Callable[[EmailMessage], None]
) -> Delivery:
    """Record the intent, send, record the success. A retry or re-run after success sends nothing."""
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
    with store.transaction() as conn:
        store.run(
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
        )
    try:
        send(build_message(bulletin, rendered, sender, recipients, message_id))
    except Exception:
        # The server never accepted the message (send raised): forget the intent so a retry sends.
        with store.transaction() as conn:
            store.run(conn, "delete_unsent_delivery", {"report_date": day})
        raise
    with store.transaction() as conn:
        store.run(conn, "mark_delivery_sent", {"report_date": day, "sent_at": now_local()})
    return Delivery("sent", message_id, recipients)
