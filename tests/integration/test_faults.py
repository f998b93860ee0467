"""The reporting database dropping connections: a loopback TCP proxy sits between the store and PostgreSQL
and cuts every connection (RST, both sides) in the middle of a load, or while the pool is idle.

A load cut mid-transaction must leave nothing of that unit's day half-written, raise an infrastructure error
(so Airflow retries the task), and the retry must complete exactly once; pooled connections the database
dropped while idle are replaced by pre-ping, so the next load never sees them.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
import time
from datetime import date

import pytest
from conftest import SAMPLE_INBOX, copy_day, fresh_database
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from closeout.close.load import load_group

pytestmark = pytest.mark.services

DAY = date(2022, 3, 19)
UNIT = "330802"  # 柯城区
OTHER = "330803"
FIGURE_WRITE = b"COPY figure ("  # not figure_revision: the bulk write of a load's figures
WRITE_TAGS = (b"INSERT 0 ", b"UPDATE ", b"DELETE ", b"COPY ")  # the server's replies to writes
# What one unit's load writes, in the load transaction or just before it.
TABLES = ("figure", "figure_revision", "submission", "finding", "unit_day", "narrative")


class TcpProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL. One thread runs a selector over every socket, so a cut closes
    sockets nobody is blocked on: SO_LINGER 0 makes each close an RST, on the client and the server side."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.refusing = False  # while set, a new connection is accepted and reset at once (the database "down")
        self.accepted = 0
        self.cuts: list[int] = []  # live pairs each cut closed
        self._peer: dict[socket.socket, socket.socket] = {}
        self._trip: tuple[bytes, int] | None = None
        self._seen = 0  # occurrences of the trip pattern sent towards the server since armed
        self.acked_before_trip = 0  # writes the server acknowledged while armed, before the cut
        self.tripped = threading.Event()
        self._requests: list[threading.Event] = []
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="pg-fault-proxy", daemon=True)
        self._thread.start()

    # -- control, from the test's thread --------------------------------------------------------------------
    def cut(self) -> int:
        """Reset every live connection pair now; returns how many pairs there were."""
        done = threading.Event()
        with self._lock:
            self._requests.append(done)
        self._wake_w.send(b"x")
        assert done.wait(5), "proxy did not cut"
        return self.cuts[-1]

    def trip_on(self, pattern: bytes, occurrence: int) -> None:
        """Cut everything when the client sends `pattern` for the `occurrence`-th time, before forwarding it."""
        self._trip, self._seen, self.acked_before_trip = (pattern, occurrence), 0, 0
        self.tripped.clear()

    def close(self) -> None:
        self.cut()
        self._running = False
        self._wake_w.send(b"x")
        self._thread.join(5)
        self.listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the proxy thread -----------------------------------------------------------------------------------
    @staticmethod
    def _reset(sock: socket.socket) -> None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        sock.close()

    def _cut_all(self) -> None:
        pairs = len(self._peer) // 2
        for sock in list(self._peer):
            self._selector.unregister(sock)
            self._reset(sock)
        self._peer.clear()
        self.cuts.append(pairs)

    def _drop(self, sock: socket.socket) -> None:
        for s in (sock, self._peer.get(sock)):
            if s is not None and s in self._peer:
                self._selector.unregister(s)
                del self._peer[s]
                s.close()

    def _accept(self) -> None:
        client, _ = self.listener.accept()
        self.accepted += 1
        if self.refusing:
            self._reset(client)
            return
        server = socket.create_connection(self.upstream, timeout=5)
        for s in (client, server):
            s.setblocking(True)
            s.settimeout(5)
        self._peer[client], self._peer[server] = server, client
        self._selector.register(client, selectors.EVENT_READ, "client")
        self._selector.register(server, selectors.EVENT_READ, "server")

    def _forward(self, sock: socket.socket, side: str) -> None:
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop(sock)
            return
        if self._trip and not self.tripped.is_set():
            pattern, occurrence = self._trip
            if side == "client":
                self._seen += data.count(pattern)
                if self._seen >= occurrence:
                    self.tripped.set()
                    self._cut_all()  # this chunk never reaches the server
                    return
            else:
                self.acked_before_trip += sum(data.count(tag) for tag in WRITE_TAGS)
        try:
            self._peer[sock].sendall(data)
        except OSError:
            self._drop(sock)

    def _loop(self) -> None:
        while self._running:
            for key, _ in self._selector.select(0.5):
                if key.data == "wake":
                    self._wake_r.recv(4096)
                    with self._lock:
                        requests, self._requests = self._requests, []
                    if requests:
                        self._cut_all()
                    for done in requests:
                        done.set()
                elif key.data == "accept":
                    self._accept()
                elif key.fileobj in self._peer:  # not closed by a cut earlier in this round
                    self._forward(key.fileobj, key.data)


def through(db_url: str, proxy: TcpProxy) -> str:
    """The same database, reached through the proxy (no TLS, so the proxy can see which statement is sent)."""
    url = make_url(db_url).set(host="127.0.0.1", port=proxy.port).update_query_dict({"sslmode": "disable"})
    return url.render_as_string(hide_password=False)


def upstream_of(db_url: str) -> tuple[str, int]:
    url = make_url(db_url)
    return url.host or "127.0.0.1", url.port or 5432


def unit_state(db_url: str, unit: str = UNIT) -> dict[str, list]:
    """Every row of the tables a load touches for the unit's day, read straight from PostgreSQL (not the proxy)."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return {
                t: sorted(
                    tuple(r)
                    for r in conn.execute(
                        text(f"SELECT * FROM {t} WHERE report_date = :d AND unit_code = :u"),
                        {"d": DAY.isoformat(), "u": unit},
                    )
                )
                for t in TABLES
            }
    finally:
        engine.dispose()


def figures_of(state: dict) -> dict[str, tuple]:
    return {row[2]: row for row in state["figure"]}  # metric -> whole row


def rows(state: dict, table: str, *columns: str) -> list[tuple]:
    """Some columns of a table's rows in a unit_state (column order of include/sql/schema.sql)."""
    names = {
        "submission": ("report_date", "unit_code", "sha256", "file_name", "archived_path", "received_at", "status"),
        "unit_day": ("report_date", "unit_code", "status"),
        "figure_revision": ("report_date", "unit_code", "metric", "old_value", "new_value"),
    }[table]
    return sorted(tuple(r[names.index(c)] for c in columns) for r in state[table])


@pytest.fixture
def clean_load(ctx_for, tmp_path):
    """The unit's figures as a load with no fault writes them, into a database of their own."""

    def load(inbox) -> dict[str, tuple]:
        with fresh_database("closeout_fault_ref") as url:
            ctx = ctx_for(url, inbox, CLOSEOUT_ARCHIVE=str(tmp_path / "ref-archive"))
            try:
                assert [o.status for o in load_group(ctx, DAY, [UNIT])] == ["loaded"]
            finally:
                ctx.store.dispose()
            return figures_of(unit_state(url))

    return load


def test_cut_in_the_middle_of_a_load_leaves_nothing_and_the_retry_completes(ctx_for, tmp_path, clean_load):
    inbox = tmp_path / "inbox"
    copy_day(SAMPLE_INBOX / DAY.isoformat(), inbox, DAY.isoformat())
    expected = clean_load(inbox)
    assert len(expected) >= 10
    with fresh_database("closeout_fault") as url, TcpProxy(upstream_of(url)) as proxy:
        ctx = ctx_for(through(url, proxy), inbox)
        statements: list[str] = []
        event.listen(ctx.store.engine, "begin", lambda conn: statements.clear())
        event.listen(ctx.store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        ctx.store.rows("select_unit_days", {"report_date": DAY.isoformat()})  # schema made before the fault

        # The figures go out: the transaction has already deleted the unit's findings and figures when the line
        # drops.
        proxy.trip_on(FIGURE_WRITE, occurrence=1)
        with pytest.raises(DBAPIError) as failed:
            load_group(ctx, DAY, [UNIT])
        assert proxy.tripped.is_set() and proxy.acked_before_trip >= 2
        assert isinstance(failed.value, OperationalError) and failed.value.connection_invalidated
        assert failed.value.statement.startswith("COPY figure (")
        load_tx = [s.split()[0] + " " + s.split()[2] for s in statements]  # "DELETE finding", "DELETE figure", ...
        assert "DELETE finding" in load_tx and "DELETE figure" in load_tx  # earlier statements of the same tx ran

        # Straight from PostgreSQL: nothing of the transaction is there, only the receipt committed before it.
        after_cut = unit_state(url)
        assert after_cut["figure"] == [] and after_cut["figure_revision"] == []
        assert after_cut["submission"] == [] and after_cut["finding"] == []
        assert after_cut["narrative"] == []  # loaded after the figures: never reached
        assert rows(after_cut, "unit_day", "status") == [("received",)]  # not 未报送, and not loaded

        # Airflow's first retry while the database still refuses connections: fails again, changes nothing.
        proxy.refusing = True
        with pytest.raises(OperationalError):
            load_group(ctx, DAY, [UNIT])
        assert unit_state(url) == after_cut
        proxy.refusing = False

        # The next retry, the line healthy: complete, every figure exactly once, as a clean load writes them.
        assert [o.status for o in load_group(ctx, DAY, [UNIT])] == ["loaded"]
        loaded = unit_state(url)
        assert figures_of(loaded) == expected
        assert len(loaded["figure"]) == len(expected)  # no metric twice
        assert rows(loaded, "submission", "file_name", "status") == [(f"{UNIT}.csv", "loaded")]
        assert rows(loaded, "unit_day", "status") == [("loaded",)]
        assert loaded["figure_revision"] == []  # a first report: nothing was revised
        assert len(loaded["narrative"]) == 1

        # And once more: nothing to do.
        assert [o.status for o in load_group(ctx, DAY, [UNIT])] == ["unchanged"]
        assert unit_state(url) == loaded
        ctx.store.dispose()


def test_cut_while_a_resubmission_replaces_figures_keeps_the_previous_file_whole(ctx_for, tmp_path):
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / DAY.isoformat(), inbox, DAY.isoformat())
    with fresh_database("closeout_fault") as url, TcpProxy(upstream_of(url)) as proxy:
        ctx = ctx_for(through(url, proxy), inbox)
        assert [o.status for o in load_group(ctx, DAY, [UNIT])] == ["loaded"]
        first = unit_state(url)
        old = figures_of(first)["needs_resolved"][3]

        path = folder / f"{UNIT}.csv"
        lines = path.read_text(encoding="utf-8").splitlines()
        lines = [
            f"needs_resolved,{int(old) + 7},{UNIT},{DAY}," if ln.startswith("needs_resolved,") else ln for ln in lines
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

        # When the figures go out this transaction has written a revision and deleted every old figure.
        proxy.trip_on(FIGURE_WRITE, occurrence=1)
        with pytest.raises(OperationalError):
            load_group(ctx, DAY, [UNIT])
        assert proxy.tripped.is_set() and proxy.acked_before_trip >= 2
        assert unit_state(url) == first  # the first file's figures, submission and status, untouched

        assert [o.status for o in load_group(ctx, DAY, [UNIT])] == ["loaded"]
        second = unit_state(url)
        new, before = figures_of(second), figures_of(first)
        assert new.keys() == before.keys() and len(second["figure"]) == len(first["figure"])
        assert new["needs_resolved"][3] == old + 7
        assert {m: r[3] for m, r in new.items() if m != "needs_resolved"} == {
            m: r[3] for m, r in before.items() if m != "needs_resolved"
        }
        assert rows(second, "figure_revision", "metric", "old_value", "new_value") == [("needs_resolved", old, old + 7)]
        assert sorted(s for (s,) in rows(second, "submission", "status")) == ["loaded", "superseded"]

        assert [o.status for o in load_group(ctx, DAY, [UNIT])] == ["unchanged"]
        assert unit_state(url) == second
        ctx.store.dispose()


def test_pooled_connections_cut_while_idle_are_replaced_by_pre_ping(ctx_for, tmp_path):
    inbox = tmp_path / "inbox"
    copy_day(SAMPLE_INBOX / DAY.isoformat(), inbox, DAY.isoformat())
    with fresh_database("closeout_fault") as url, TcpProxy(upstream_of(url)) as proxy:
        # Without pre-ping, the same cut hands the next caller a dead connection: the cut is real.
        bare = create_engine(through(url, proxy))
        with bare.connect() as conn:
            conn.execute(text("SELECT 1"))
        assert proxy.cut() == 1
        with pytest.raises(OperationalError), bare.connect() as conn:
            conn.execute(text("SELECT 1"))
        bare.dispose()

        ctx = ctx_for(through(url, proxy), inbox)
        connects: list[float] = []
        event.listen(ctx.store.engine, "connect", lambda *a: connects.append(time.monotonic()))
        assert [o.status for o in load_group(ctx, DAY, [UNIT])] == ["loaded"]
        pooled = ctx.store.engine.pool.checkedin()
        assert pooled >= 1

        assert proxy.cut() == pooled  # every connection in the pool is now dead, idle
        before = len(connects)
        assert [o.status for o in load_group(ctx, DAY, [OTHER])] == ["loaded"]  # first try, no error
        assert len(connects) > before  # the dead one was pinged, found dead and replaced
        assert len(figures_of(unit_state(url, OTHER))) >= 10
        assert rows(unit_state(url, OTHER), "unit_day", "status") == [("loaded",)]
        ctx.store.dispose()


# ---- SMTP refusing, then back -----------------------------------------------------------------------------


def test_a_refusing_or_unreachable_smtp_server_still_gets_exactly_one_copy_per_recipient(
    db_url, ctx_for, tmp_path, smtp_sink
):
    import smtplib
    from contextlib import contextmanager

    from conftest import received_mails
    from days import close_day, smtp_connect

    from closeout.deliver.mailsink import free_port
    from closeout.orchestration import pipeline

    inbox = tmp_path / "inbox"
    copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    ctx = ctx_for(db_url, inbox)
    close_day(ctx, DAY)
    edition = pipeline.render_bulletin(ctx, DAY)
    nowhere = free_port()

    @contextmanager
    def server_down():
        with smtplib.SMTP("127.0.0.1", nowhere, timeout=5) as client:
            yield client.send_message

    with pytest.raises(ConnectionRefusedError):  # not listening: nothing was tried, nothing recorded
        pipeline.email_bulletin(ctx, edition, "closeout@test.invalid", server_down)
    assert ctx.store.rows("select_deliveries", {"report_date": DAY.isoformat()}) == []
    smtp_sink.handler.refuse_next(ctx.settings.recipients[0], 2)  # busy: "451 try again later", twice
    for _ in range(2):
        with pytest.raises(smtplib.SMTPDataError):
            pipeline.email_bulletin(ctx, edition, "closeout@test.invalid", smtp_connect(smtp_sink))
    delivery = pipeline.email_bulletin(ctx, edition, "closeout@test.invalid", smtp_connect(smtp_sink))
    again = pipeline.email_bulletin(ctx, edition, "closeout@test.invalid", smtp_connect(smtp_sink))
    assert (delivery.status, again.status) == ("sent", "already_sent")
    attempts = ctx.store.rows("select_deliveries", {"report_date": DAY.isoformat()})
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, "refused"), (2, "refused"), (3, "sent")]
    mails = received_mails(smtp_sink.folder)
    assert len(mails) == 1 and smtp_sink.handler.refused == 2
    rcpt = (sorted(smtp_sink.folder.glob("*.rcpt"))[0]).read_text(encoding="utf-8").split()
    assert sorted(rcpt) == sorted(ctx.settings.recipients)  # each recipient: one copy
