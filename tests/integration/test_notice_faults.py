"""Mail that may or may not have gone, on a real store and a real SMTP server on loopback.

A run sending receipts is killed (SIGKILL, in a child process) while the server holds its second message: the store
must say exactly what happened — one receipt sent, one unconfirmed, the rest never claimed — `closeout status` must
name the unconfirmed one with the commands that resolve it, and the next run must send exactly the rest.

The store is lost after publication (the SQLite file deleted, the PostgreSQL schema dropped) and the day run again:
the outbox still holds what was mailed, so neither the bulletin nor the receipts go out a second time until an
operator decides, and then exactly once.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import subprocess
import sys
import threading
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from conftest import SAMPLE_INBOX, copy_day, publish, received_mails
from days import close_day, smtp_connect
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import closeout
from closeout.deliver import notices
from closeout.deliver.mailer import DeliveryUncertain
from closeout.deliver.mailsink import EmlWriter, free_port
from closeout.orchestration.cli import main as cli

pytestmark = pytest.mark.services

DAY = date(2022, 3, 19)
SENDER = "closeout@test.invalid"

# The run that gets killed: the day's receipts, sent by the package as the intake task sends them.
CHILD = """
import smtplib, sys
from contextlib import contextmanager
from datetime import date

from closeout.deliver.notices import receipts_due, send_notices
from closeout.store.context import Context

port = int(sys.argv[1])


@contextmanager
def connect():
    with smtplib.SMTP("127.0.0.1", port, timeout=300) as client:
        yield client.send_message


ctx = Context.from_env()
send_notices(ctx, receipts_due(ctx, date.fromisoformat(sys.argv[2])), "closeout@test.invalid", connect)
print("finished", flush=True)
"""


class StallingSink(EmlWriter):
    """The loopback sink, slow once: the `stall_at`-th message's data arrives and no answer goes back until
    `release` is set, so the client waits on it. With `keep`, the message is stored first (the server took it;
    only the client never heard)."""

    def __init__(self, folder: Path, stall_at: int, keep: bool):
        super().__init__(folder)
        self.stall_at, self.keep, self.seen = stall_at, keep, 0
        self.stalled, self.release = threading.Event(), threading.Event()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's hook name)
        self.seen += 1
        if self.seen != self.stall_at:
            return await super().handle_DATA(server, session, envelope)
        if self.keep:
            await super().handle_DATA(server, session, envelope)
        self.stalled.set()
        while not self.release.is_set():
            await asyncio.sleep(0.05)
        return "451 4.3.0 Try again later"


def recorded(ctx) -> dict[str, str]:
    return {r["unit_code"]: r["status"] for r in ctx.store.rows("select_notices", {"report_date": DAY.isoformat()})}


def per_unit(folder: Path) -> Counter:
    """Receipts the server accepted, by recipient (each unit has one contact)."""
    return Counter(m["To"] for m in received_mails(folder) if m["Subject"].startswith(("【回执】", "【退回】")))


def child_env() -> dict[str, str]:
    """The test's environment (its store, outbox, inbox) and this package on the path, as the task's would be."""
    src = str(Path(closeout.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}


def resolving_commands(out: str, unit: str) -> dict[str, list[str]]:
    """The commands the status line for the unit's unconfirmed notice gives, as argv without the reason."""
    [line] = [ln for ln in out.splitlines() if "发送未确认" in ln and f"--unit {unit}" in ln]
    found = dict(re.findall(r'closeout (confirm-notice|retry-notice) ([^"；]+?) --reason "…"', line))
    assert set(found) == {"confirm-notice", "retry-notice"}, line
    return {name: [name, *shlex.split(args)] for name, args in found.items()}


@pytest.mark.parametrize("arrived", [True, False], ids=["it-arrived", "it-did-not"])
def test_a_run_killed_mid_batch_leaves_one_receipt_unconfirmed_and_the_next_run_sends_only_the_rest(
    db_url, ctx_for, tmp_path, capsys, arrived
):
    inbox = tmp_path / "inbox"
    copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    ctx = ctx_for(db_url, inbox, CLOSEOUT_NOTICE_CONFIRM_MINUTES="0")
    close_day(ctx)
    due = notices.receipts_due(ctx, DAY)
    assert len(due) == 6 and len({n.unit_code for n in due}) == 6
    handler = StallingSink(tmp_path / "mail", stall_at=2, keep=arrived)
    sink = Controller(handler, hostname="127.0.0.1", port=free_port())
    sink.start()
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(sink.port), DAY.isoformat()],
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            if not handler.stalled.wait(120):
                child.kill()
                pytest.fail(f"the second receipt never reached the server: {child.communicate()}")
            child.kill()  # SIGKILL: no finally, no handler, no last transaction
            out, _ = child.communicate(timeout=30)
        finally:
            handler.release.set()
        assert child.returncode == -9 and "finished" not in out

        # one answered, the one in flight unconfirmed, the four never handed over never claimed nor kept
        assert recorded(ctx) == {due[0].unit_code: "sent", due[1].unit_code: "sending"}
        kept = sorted(p.name for p in (tmp_path / "outbox" / DAY.isoformat() / "notices").glob("*.eml"))
        assert kept == sorted(notices.notice_file(tmp_path / "outbox", n).name for n in due[:2])
        assert sum(per_unit(handler.folder).values()) == (2 if arrived else 1)

        # ops see it, in one line with the commands; its resolution is the operator's, with a reason
        capsys.readouterr()
        cli(["status", DAY.isoformat()])
        commands = resolving_commands(capsys.readouterr().out, due[1].unit_code)
        assert cli([*commands["confirm-notice"], "--reason", "  "]) == 2  # a reason is never invented
        decision = "confirm-notice" if arrived else "retry-notice"
        reason = "县里回电：已收到" if arrived else "县里核对邮箱：未收到"
        assert cli([*commands[decision], "--reason", reason]) == 0
        [event] = ctx.store.rows("select_notice_events", {"report_date": DAY.isoformat()})
        assert (event["unit_code"], event["event"], event["reason"]) == (
            due[1].unit_code,
            "confirmed" if arrived else "released",
            reason,
        )
        assert "closeout CLI" in event["actor"] and event["message_id"]
        capsys.readouterr()
        cli(["status", DAY.isoformat()])
        assert "发送未确认" not in capsys.readouterr().out

        # the next run sends exactly what was never handed over (and the one found not to have arrived)
        again = notices.send_notices(ctx, notices.receipts_due(ctx, DAY), SENDER, smtp_connect(sink))
        assert [n.unit_code for n in again] == [n.unit_code for n in due[1 if not arrived else 2 :]]
        assert notices.send_notices(ctx, notices.receipts_due(ctx, DAY), SENDER, smtp_connect(sink)) == []
        assert set(recorded(ctx).values()) == {"sent"}
        counts = per_unit(handler.folder)
        assert sorted(counts) == sorted(n.recipients[0] for n in due) and set(counts.values()) == {1}
    finally:
        handler.release.set()
        sink.stop()


def wipe(ctx, db_url: str) -> None:
    """The store is lost: the SQLite file deleted, or the PostgreSQL schema dropped and made again, empty."""
    ctx.store.dispose()
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(url.database + suffix).unlink(missing_ok=True)
        return
    schema = url.query["options"].split("search_path=", 1)[1]
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()


def test_a_lost_store_does_not_mail_the_bulletin_or_the_receipts_again_until_an_operator_decides(
    db_url, ctx_for, tmp_path, smtp_sink, capsys
):
    inbox = tmp_path / "inbox"
    copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    ctx = ctx_for(db_url, inbox, CLOSEOUT_NOTICE_CONFIRM_MINUTES="0")
    close_day(ctx)
    receipts = notices.send_notices(ctx, notices.receipts_due(ctx, DAY), SENDER, smtp_connect(smtp_sink))
    assert len(receipts) == 6
    assert publish(ctx, DAY, smtp_connect(smtp_sink)).status == "sent"
    mails = len(received_mails(smtp_sink.folder))
    assert mails == 7

    wipe(ctx, db_url)
    ctx = ctx_for(db_url, inbox, CLOSEOUT_NOTICE_CONFIRM_MINUTES="0")  # a new, empty store at the same address
    assert ctx.store.rows("select_deliveries", {"report_date": DAY.isoformat()}) == []
    close_day(ctx)  # load and reconcile again: the same files, the same receipts due
    assert {n.key for n in notices.receipts_due(ctx, DAY)} == {n.key for n in receipts}

    # the receipts: each found in the outbox, recorded unconfirmed, not sent; one line each says why and what to do
    with pytest.raises(notices.NoticesUncertain) as held:
        notices.send_notices(ctx, notices.receipts_due(ctx, DAY), SENDER, smtp_connect(smtp_sink))
    lines = str(held.value).splitlines()
    assert len(lines) == 6
    for notice in receipts:
        [line] = [ln for ln in lines if f"--unit {notice.unit_code}" in ln]
        assert str(notices.notice_file(tmp_path / "outbox", notice)) in line
        assert "closeout confirm-notice" in line and "closeout retry-notice" in line
    assert set(recorded(ctx).values()) == {"sending"}

    # the bulletin: rendered again (the old folder set aside), its mail found there, not sent; one line
    with pytest.raises(DeliveryUncertain) as uncertain:
        publish(ctx, DAY, smtp_connect(smtp_sink))
    why = str(uncertain.value)
    assert "\n" not in why and re.search(r"/2022-03-19/01\.unrecorded-[^/]+/email-1\.eml", why)
    assert "closeout confirm-delivery 2022-03-19 --edition 1" in why
    assert "closeout retry-delivery 2022-03-19 --edition 1" in why
    [attempt] = ctx.store.rows("select_deliveries", {"report_date": DAY.isoformat()})
    assert attempt["status"] == "sending"
    [found] = ctx.store.rows("select_delivery_events", {"report_date": DAY.isoformat()})
    assert found["event"] == "found_on_disk" and "email-1.eml" in found["reason"]
    assert len(received_mails(smtp_sink.folder)) == mails  # nothing a second time

    # run again: still nothing, now because the store says unconfirmed
    with pytest.raises(DeliveryUncertain, match="未确认"):
        publish(ctx, DAY, smtp_connect(smtp_sink))
    assert notices.send_notices(ctx, notices.receipts_due(ctx, DAY), SENDER, smtp_connect(smtp_sink)) == []
    assert len(received_mails(smtp_sink.folder)) == mails
    capsys.readouterr()
    assert cli(["status", DAY.isoformat()]) == 1
    out = capsys.readouterr().out
    assert sum("回执发送未确认" in ln for ln in out.splitlines()) == 6 and "发送未确认" in out

    # the operator decides: the bulletin again (exactly once), one county's receipt again, the others arrived
    assert cli(["retry-delivery", "2022-03-19", "--even-if-sent", "--reason", "报送库丢失，领导要求重发一次"]) == 0
    assert publish(ctx, DAY, smtp_connect(smtp_sink)).status == "sent"
    assert publish(ctx, DAY, smtp_connect(smtp_sink)).status == "already_sent"
    again, *arrived = receipts
    assert (
        cli(["retry-notice", "2022-03-19", "--kind", "receipt", "--unit", again.unit_code, "--reason", "未收到"]) == 0
    )
    for notice in arrived:
        unit = ctx.registry.get(notice.unit_code).name  # by name works as well as by code
        assert cli(["confirm-notice", "2022-03-19", "--kind", "receipt", "--unit", unit, "--reason", "已收到"]) == 0
    [resent] = notices.send_notices(ctx, notices.receipts_due(ctx, DAY), SENDER, smtp_connect(smtp_sink))
    assert resent.unit_code == again.unit_code
    assert notices.send_notices(ctx, notices.receipts_due(ctx, DAY), SENDER, smtp_connect(smtp_sink)) == []
    assert len(received_mails(smtp_sink.folder)) == mails + 2
    bulletins = [m for m in received_mails(smtp_sink.folder) if m["To"] == ", ".join(ctx.settings.recipients)]
    assert len(bulletins) == 2
    assert set(recorded(ctx).values()) == {"sent"}
    events = Counter(e["event"] for e in ctx.store.rows("select_notice_events", {"report_date": DAY.isoformat()}))
    assert events == {"found_on_disk": 6, "released": 1, "confirmed": 5}


def test_a_message_that_cannot_be_kept_in_the_outbox_is_neither_sent_nor_left_unconfirmed(
    db_url, ctx_for, tmp_path, smtp_sink
):
    inbox = tmp_path / "inbox"
    copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    ctx = ctx_for(db_url, inbox)
    close_day(ctx)
    due = notices.receipts_due(ctx, DAY)
    blocked = tmp_path / "outbox" / DAY.isoformat() / "notices"
    blocked.parent.mkdir(parents=True, exist_ok=True)  # the day's Data Docs made it already
    blocked.write_text("not a folder", encoding="utf-8")  # the outbox cannot keep the message
    with pytest.raises(OSError):
        notices.send_notices(ctx, due, SENDER, smtp_connect(smtp_sink))
    assert recorded(ctx) == {due[0].unit_code: "released"} and received_mails(smtp_sink.folder) == []
    blocked.unlink()
    assert len(notices.send_notices(ctx, notices.receipts_due(ctx, DAY), SENDER, smtp_connect(smtp_sink))) == 6
    assert set(recorded(ctx).values()) == {"sent"} and len(received_mails(smtp_sink.folder)) == 6
