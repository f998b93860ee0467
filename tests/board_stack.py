"""A store that looks like a real fortnight, and an Airflow api-server serving the close-out board over it.

The store holds the sample week 2022-03-13..19, published, and the hard day 2022-03-20: 柯城区 sends a file the
checks reject, 常山县 sends nothing (缺报), 开化县's file arrives at 22:05, after the 21:00 cutoff, and is loaded
late. Files are stamped as received at realistic local times (not the test's clock), so punctuality means
something.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from unittest import mock

from conftest import ROOT, SAMPLE_INBOX, copy_day

from closeout.core.clock import LOCAL_TZ

AIRFLOW = str(Path(sys.executable).parent / "airflow")
WEEK = [date(2022, 3, 13) + timedelta(days=n) for n in range(7)]
HARD_DAY = date(2022, 3, 20)
AFTERNOON = ROOT / "sample" / "afternoon" / HARD_DAY.isoformat()
REJECTED, MISSING, LATE = "330802", "330822", "330824"  # 柯城区, 常山县, 开化县 on the hard day
HOSTILE_NOTE = '<img src=x onerror="window.__xss=1">'
USERS = {"duty-ops": "USER", "city-viewer": "VIEWER"}  # simple auth manager roles: USER may clear tasks


@contextmanager
def received_at(day: date, clock: str):
    """Files archived inside this block are stamped as received at `clock` local time on `day`."""
    stamp = datetime.combine(day, datetime.strptime(clock, "%H:%M").time(), LOCAL_TZ).isoformat(timespec="seconds")
    with mock.patch("closeout.intake.archive.now_local", return_value=stamp):
        yield


def seed_fortnight(ctx, inbox: Path, connect) -> None:
    """Close out, render and mail the sample week and the hard day through the package, then load 开化's late file
    and mail its 补报 edition."""
    from closeout.close.load import load_group
    from closeout.close.plan import plan_unit_groups
    from closeout.close.reconcile import reconcile_day
    from closeout.orchestration import pipeline

    def close(day: date, codes=None) -> None:
        for group in plan_unit_groups(ctx):
            if codes is None or set(group["codes"]) & set(codes):
                load_group(ctx, day, group["codes"])
        reconcile_day(ctx, day)

    def publish(day: date) -> None:
        pipeline.email_bulletin(ctx, pipeline.render_bulletin(ctx, day), "closeout@test.invalid", connect)

    for n, day in enumerate(WEEK):
        copy_day(SAMPLE_INBOX / day.isoformat(), inbox, day.isoformat())
        with received_at(day, f"{17 + n % 3}:{5 * n:02d}"):
            close(day)
        publish(day)

    folder = inbox / HARD_DAY.isoformat()
    for step in ("15-00", "17-30"):
        copy_day(AFTERNOON / step, inbox, HARD_DAY.isoformat())
    (folder / "changshan.csv").unlink()  # 常山县 sends nothing
    rejected = folder / "330802.csv"
    rejected.write_text(
        "".join(
            "counseling_sessions,600余,330802,2022-03-20,\n" if line.startswith("counseling_sessions,") else line
            for line in rejected.read_text(encoding="utf-8").splitlines(keepends=True)
        ),
        encoding="utf-8",
    )
    noted = folder / "330803.csv"  # a note that would run if the board did not escape it
    noted.write_text(
        "".join(
            line.rstrip("\n") + HOSTILE_NOTE + "\n" if line.startswith("sampled,") else line
            for line in noted.read_text(encoding="utf-8").splitlines(keepends=True)
        ),
        encoding="utf-8",
    )
    with received_at(HARD_DAY, "18:40"):
        close(HARD_DAY)
    publish(HARD_DAY)
    copy_day(AFTERNOON / "22-00", inbox, HARD_DAY.isoformat())
    with received_at(HARD_DAY, "22:05"):
        close(HARD_DAY, codes=[LATE])
    publish(HARD_DAY)  # the 补报 edition with 开化县's figures


def api_server_env(work: Path, port: int, store_url: str) -> dict[str, str]:
    """An api-server of its own: SQLite metadata, the simple auth manager with an ops and a viewer user, this
    repo's plugins, the seeded store."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CLOSEOUT_"))},
        "AIRFLOW_HOME": str(work / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{work / 'airflow' / 'airflow.db'}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(work / "airflow" / "passwords.json"),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "CLOSEOUT_DB_URL": store_url,
        "CLOSEOUT_INBOX": str(work / "inbox"),
        "CLOSEOUT_ARCHIVE": str(work / "archive"),
        "CLOSEOUT_OUTBOX": str(work / "outbox"),
        "GX_ANALYTICS_ENABLED": "False",
    }


class ApiServer:
    def __init__(self, work: Path, port: int, env: dict[str, str]):
        self.work, self.port, self.env = work, port, env
        self.base_url = f"http://127.0.0.1:{port}"
        self.log = work / "api-server.log"
        self.popen: subprocess.Popen | None = None

    def start(self, timeout: float = 180) -> None:
        (self.work / "airflow").mkdir(parents=True, exist_ok=True)
        subprocess.run([AIRFLOW, "db", "migrate"], env=self.env, check=True, capture_output=True)
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
                env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise AssertionError(f"api-server exited:\n{self.tail()}")
            try:
                if httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise AssertionError(f"api-server not up after {timeout:.0f} s:\n{self.tail()}")

    def token(self, user: str) -> str:
        import json

        import httpx

        passwords = json.loads((self.work / "airflow" / "passwords.json").read_text())
        response = httpx.post(
            f"{self.base_url}/auth/token", json={"username": user, "password": passwords[user]}, timeout=30
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, 15)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, 9)
                self.popen.wait(timeout=30)

    def tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join(text[-lines:])
