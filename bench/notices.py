"""The cost of sending a country's receipts: `send_notices` for N synthetic notices on a fresh store, through a
loopback SMTP sink running in its own process (as the Airflow bench does). Times only the sending — the store
protocol (what is already recorded, a claim and a confirmation per message), each message kept in the outbox, and the
SMTP exchange.

    python -m bench.notices --count 2850 --backend postgresql --repeats 3
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from bench.scenarios import DEFAULT_PG_ADMIN_URL, fresh_store
from closeout.deliver.mailsink import free_port
from closeout.deliver.notices import Notice, send_notices
from closeout.store.database import Store

SQL_DIR = Path(__file__).resolve().parents[1] / "include" / "sql"


def notices(count: int, day: str = "2022-03-19") -> list[Notice]:
    body = (
        "某某区：\n你单位 10:00 报送的3月19日日报文件 x.csv 已受理。读入的数字如下，请核对：\n"
        + "  采样人次：1234人次\n" * 25
    )
    return [
        Notice("receipt", day, f"{i:06d}", f"{i:064x}", (f"u{i}@example.invalid",), f"【回执】单位{i}日报已受理", body)
        for i in range(count)
    ]


def measure(count: int, backend: str, work: Path, pg_admin_url: str) -> float:
    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-m", "closeout.deliver.mailsink", "--dir", str(work / "mail"), "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        sink.stdout.readline()  # started
        import smtplib
        from contextlib import contextmanager

        @contextmanager
        def connect():
            with smtplib.SMTP("127.0.0.1", port) as client:
                yield client.send_message

        with fresh_store(backend, "notices", work, pg_admin_url) as db_url:
            store = Store(db_url, SQL_DIR)
            try:
                due = notices(count)
                ctx = SimpleNamespace(store=store, settings=SimpleNamespace(outbox=work / "outbox"))
                started = time.perf_counter()
                sent = send_notices(ctx, due, "closeout@test.invalid", connect)
                elapsed = time.perf_counter() - started
                assert len(sent) == count, len(sent)
                assert send_notices(ctx, due, "closeout@test.invalid", connect) == []
            finally:
                store.dispose()
        return elapsed
    finally:
        sink.terminate()
        sink.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2850)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    args = parser.parse_args(argv)
    runs = []
    for attempt in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="closeout-notices-") as tmp:
            runs.append(measure(args.count, args.backend, Path(tmp), args.pg_admin_url))
        print(f"run {attempt + 1}: {runs[-1]:.2f} s for {args.count} notices", flush=True)
    print(f"best of {len(runs)}: {min(runs):.2f} s ({min(runs) / args.count * 1000:.2f} ms a notice)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
