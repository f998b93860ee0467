"""The at-most-once mail transport every message uses: connect first, record the intent, send, record the result.

It sends what it is given. Whether an edition may go out (its sign-off) is decided in closeout.publish; what a
record's states mean lives with the records (closeout.core.vocabulary.DeliveryState, the notice table).
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from contextlib import AbstractContextManager
from email.message import EmailMessage
from email.utils import make_msgid

# connect(): opens a logged-in SMTP session and yields its send function (closeout.orchestration.airflow_glue.smtp
# for the smtp_default connection, closeout.deliver.mailsink.sink_session for the local sink).
Connect = Callable[[], AbstractContextManager[Callable[[EmailMessage], object]]]

# The server answered these with a refusal: nothing was delivered, so a retry may send.
REFUSED = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


def message_id(idstring: str, sender: str) -> str:
    """A Message-ID in the sender's domain (closeout.invalid when the sender has none)."""
    return make_msgid(idstring=idstring, domain=sender.rpartition("@")[2] or "closeout.invalid")


def send_once(
    store,
    message: EmailMessage,
    connect: Connect,
    claim: Callable,
    release: Callable,
    confirm: Callable,
    before_send: Callable[[], object] | None = None,
) -> None:
    """Connect and log in first (a failure records nothing), record the intent (`claim`), keep the message as sent
    (`before_send`, e.g. its .eml beside the edition: written only once the intent is recorded, so a file on disk is
    a message that may have reached the server), send, record the success (`confirm`). A definite refusal
    `release`s the intent so a retry may send; anything else may come after the server accepted the mail, so the
    intent stays."""
    with connect() as send:
        with store.transaction() as conn:
            claim(conn)
        if before_send is not None:
            try:
                before_send()
            except BaseException:  # never handed to the server: nothing delivered, a retry may send
                with store.transaction() as conn:
                    release(conn)
                raise
        try:
            send(message)
        except REFUSED:
            with store.transaction() as conn:
                release(conn)
            raise
        with store.transaction() as conn:
            confirm(conn)
