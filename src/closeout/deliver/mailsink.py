"""A local SMTP sink on loopback (aiosmtpd) that keeps every message it receives as a .eml file.

Used by `make demo` as the embedded default mail server, and by the tests as a real SMTP peer.
"""

from __future__ import annotations

import argparse
import signal
import smtplib
import socket
import threading
from contextlib import contextmanager
from pathlib import Path

from aiosmtpd.controller import Controller

_lock = threading.Lock()


class EmlWriter:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.refusing: dict[str, int] = {}  # recipient → how many more messages to it are refused (a fault drill)
        self.refused = 0
        # numbered in arrival order, continuing after earlier runs' files: counted once here, not per message (a
        # glob of a folder of 5,700 files for each of a country's 2,850 receipts cost the sink seconds)
        self.count = len(list(self.folder.glob("*.eml")))

    def refuse_next(self, recipient: str, count: int) -> None:
        """Answer the next `count` messages to `recipient` with a temporary failure (451), as a busy server does."""
        self.refusing[recipient] = count

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's hook name)
        for recipient in envelope.rcpt_tos:
            if self.refusing.get(recipient, 0) > 0:
                self.refusing[recipient] -= 1
                self.refused += 1
                return "451 4.3.0 Temporary failure, try again later"
        with _lock:
            self.count += 1
            while (self.folder / f"{self.count:04d}.eml").exists():  # another sink wrote to the same folder
                self.count += 1
            name = f"{self.count:04d}.eml"
            (self.folder / name).write_bytes(envelope.original_content or envelope.content)
            (self.folder / (name + ".rcpt")).write_text("\n".join(envelope.rcpt_tos) + "\n", encoding="utf-8")
        return "250 Message accepted for delivery"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def start_sink(folder: Path, host: str = "127.0.0.1", port: int | None = None) -> Controller:
    """Start the sink (on a free port when none is given); `controller.port` tells which."""
    controller = Controller(EmlWriter(folder), hostname=host, port=port or free_port(host))
    controller.start()
    return controller


def sink_session(controller: Controller):
    """connect() for a running sink, as closeout.orchestration.airflow_glue.smtp gives one for smtp_default: a session yielding
    its send function (no login: the sink takes anyone)."""

    @contextmanager
    def connect():
        with smtplib.SMTP(controller.hostname, controller.port) as client:
            yield client.send_message

    return connect


def main() -> None:
    parser = argparse.ArgumentParser(description="Local SMTP sink writing .eml files")
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args()
    controller = start_sink(args.dir, args.host, args.port)
    print(f"SMTP sink on {args.host}:{controller.port}, writing to {args.dir}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
