"""A real Airflow deployment on loopback, for the distributed test: api-server, scheduler, dag-processor,
triggerer and Celery workers as separate processes, PostgreSQL for the metadata database and for the
reporting store, Redis as the Celery broker. No Docker: the same commands the compose services run.

Each component runs in a session of its own. Airflow's supervisor moves every task process into a process
group of its own but never out of the session, so stopping or killing a component sweeps its whole session,
orphans included; `stop()` ends everything, whatever state the test left it in.

This module is also imported by the workers themselves (`worker_name` is their `[core] hostname_callable`),
so it imports nothing heavy at module level.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
DAG_ID = "daily_closeout"
WORKER_NAME_VARIABLE = "CLOSEOUT_TEST_WORKER_NAME"


def deployment_env(
    work: Path, api_port: int, meta_url: str, store_url: str, smtp_port: int, executor: str, **extra: str
) -> dict[str, str]:
    """What every test deployment shares: this repo's DAGs, a metadata database, a reporting store, the mail sink,
    secrets of its own; nothing inherited from the caller's AIRFLOW_*/CLOSEOUT_* settings."""
    import secrets

    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CLOSEOUT_"))},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # airflow-init.sh calls airflow
        "AIRFLOW_HOME": str(work / "airflow"),
        "AIRFLOW__CORE__EXECUTOR": executor,
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta_url,
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW_CONN_SMTP_DEFAULT": (
            f"smtp://127.0.0.1:{smtp_port}?disable_ssl=true&disable_tls=true&from_email=closeout%40quzhou.closeout.invalid"
        ),
        "CLOSEOUT_INBOX": str(work / "inbox"),
        "CLOSEOUT_ARCHIVE": str(work / "archive"),
        "CLOSEOUT_OUTBOX": str(work / "outbox"),
        "CLOSEOUT_DB_URL": store_url,
        "CLOSEOUT_RECIPIENTS": "duty@test.invalid,office@test.invalid",
        "GX_ANALYTICS_ENABLED": "False",
        **extra,
    }


def worker_name() -> str:
    """Each worker on this one machine records its own name as the task instance's hostname."""
    return os.environ[WORKER_NAME_VARIABLE]


@dataclass
class Process:
    name: str
    argv: list[str]
    log: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen | None = None

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


@dataclass
class Users:
    admin: tuple[str, str] = ("admin", "admin-test-password")
    ops: tuple[str, str] = ("duty-ops", "ops-test-password")
    viewer: tuple[str, str] = ("city-viewer", "viewer-test-password")


class AirflowCluster:
    def __init__(self, workdir: Path, env: dict[str, str], api_port: int, workers: tuple[str, ...], concurrency: int):
        self.workdir = workdir
        self.env = env
        self.api_port = api_port
        self.base_url = f"http://127.0.0.1:{api_port}"
        self.users = Users()
        self.worker_names = workers
        self.logs = workdir / "process-logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        from closeout.deliver.mailsink import free_port  # not at module level: workers import this module too

        self.processes: dict[str, Process] = {}
        self._tokens: dict[str, str] = {}
        self.killed: set[str] = set()
        self._add("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(api_port), "--workers", "1"])
        self._add("scheduler", ["scheduler"])
        self._add("dag-processor", ["dag-processor"])
        self._add("triggerer", ["triggerer"], AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()))
        for name in workers:
            self._add(
                name,
                [
                    "celery",
                    "worker",
                    "--concurrency",
                    str(concurrency),
                    "--celery-hostname",
                    f"{name}@%h",
                    "--without-mingle",
                ],
                AIRFLOW__CORE__HOSTNAME_CALLABLE="cluster.worker_name",
                AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
                PYTHONPATH=str(ROOT / "tests"),
                **{WORKER_NAME_VARIABLE: name},
            )

    def _add(self, name: str, args: list[str], **extra_env: str) -> None:
        self.processes[name] = Process(name, [AIRFLOW, *args], self.logs / f"{name}.log", extra_env)

    # ---- life cycle --------------------------------------------------------------------------------------

    def initialise(self) -> None:
        """What compose's airflow-init runs (migrate, pool, roles, the first admin)."""
        admin_user, admin_password = self.users.admin
        self.env.update(_AIRFLOW_WWW_USER_USERNAME=admin_user, _AIRFLOW_WWW_USER_PASSWORD=admin_password)
        log = self.logs / "airflow-init.log"
        with log.open("wb") as out:
            result = subprocess.run(
                [str(ROOT / "scripts" / "airflow-init.sh")], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        if result.returncode != 0:
            raise RuntimeError(f"airflow-init failed ({result.returncode}):\n{tail(log)}")

    def create_users(self) -> None:
        """The ops and read-only users, created by the admin through the FAB REST API, as an admin would."""
        import httpx

        for (user, password), role in ((self.users.ops, "Closeout Ops"), (self.users.viewer, "Closeout Viewer")):
            body = {"username": user, "password": password, "email": f"{user}@test.invalid", "first_name": user,
                    "last_name": "test", "roles": [{"name": role}]}  # fmt: skip
            response = httpx.post(
                f"{self.base_url}/auth/fab/v1/users",
                json=body,
                headers={"Authorization": f"Bearer {self.token(self.users.admin)}"},
                timeout=30,
            )
            assert response.status_code in (200, 201), response.text

    def start(self) -> None:
        for process in self.processes.values():
            with process.log.open("ab") as out:
                process.popen = subprocess.Popen(
                    process.argv,
                    env={**self.env, **process.extra_env},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                    start_new_session=True,  # like a service of its own, apart from pytest's terminal
                )

    def kill(self, name: str) -> None:
        """SIGKILL a component and every process it started, as when its machine dies."""
        self.killed.add(name)
        _kill_sessions({self.processes[name].popen.pid})

    def stop(self) -> None:
        """SIGTERM every component, give them 30 s, then SIGKILL whatever is left in their sessions."""
        leaders = [p.popen for p in self.processes.values() if p.popen is not None]
        for popen in leaders:
            if popen.poll() is None:
                popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for popen in leaders:
            try:
                popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        _kill_sessions(self.sessions)
        for popen in leaders:
            popen.wait(timeout=30)

    @property
    def sessions(self) -> set[int]:
        return {p.popen.pid for p in self.processes.values() if p.popen is not None}

    def leftovers(self) -> list[str]:
        """Processes still alive in any component's session."""
        return [f"{proc.pid} {' '.join(proc.cmdline()[:4])}" for proc in _session_members(self.sessions)]

    def assert_alive(self) -> None:
        dead = [p.name for p in self.processes.values() if p.popen and not p.running and p.name not in self.killed]
        if dead:
            raise AssertionError(
                f"{', '.join(dead)} exited early:\n" + "\n".join(tail(self.processes[n].log) for n in dead)
            )

    # ---- REST API ----------------------------------------------------------------------------------------

    def token(self, user: tuple[str, str]) -> str:
        import httpx

        if user[0] not in self._tokens:
            response = httpx.post(
                f"{self.base_url}/auth/token", json={"username": user[0], "password": user[1]}, timeout=30
            )
            response.raise_for_status()
            self._tokens[user[0]] = response.json()["access_token"]
        return self._tokens[user[0]]

    def api(self, method: str, path: str, user: tuple[str, str] | None = None, headers: dict | None = None, **kwargs):
        import httpx

        headers = {**(headers or {}), "Authorization": f"Bearer {self.token(user or self.users.admin)}"}
        return httpx.request(method, f"{self.base_url}/api/v2{path}", headers=headers, timeout=30, **kwargs)

    def get(self, path: str, **kwargs) -> dict:
        response = self.api("GET", path, **kwargs)
        response.raise_for_status()
        return response.json()

    def wait_until_ready(self, timeout: float = 300) -> float:
        """Until the api-server answers, the scheduler, triggerer and dag-processor report healthy, the DAG is
        parsed and every worker is online; returns the seconds it took."""
        import httpx

        started = time.monotonic()
        deadline = started + timeout
        pending = "api-server"
        while time.monotonic() < deadline:
            self.assert_alive()
            try:
                pending = self._not_ready()
            except (httpx.HTTPError, KeyError) as exc:
                pending = f"api-server ({exc.__class__.__name__})"
            if not pending:
                return time.monotonic() - started
            time.sleep(2)
        raise AssertionError(f"cluster not ready after {timeout:.0f} s, waiting for {pending}:\n" + self.log_tails())

    def _not_ready(self) -> str:
        import httpx

        health = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=10).json()
        for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
            if (health.get(component) or {}).get("status") != "healthy":
                return component
        if self.api("GET", f"/dags/{DAG_ID}").status_code != 200:
            return f"{DAG_ID} to be parsed"
        for name in self.worker_names:
            log = self.processes[name].log.read_text(errors="replace")
            if f"{name}@" not in log or " ready." not in log:  # Celery's "celery@<name> ready."
                return name
        return ""

    def log_tails(self) -> str:
        return "\n".join(tail(p.log) for p in self.processes.values())


def tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    return f"---- {path.name} (last {lines} lines)\n" + "\n".join(text[-lines:])


def _session_members(sessions: set[int]) -> list:
    import psutil

    members = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) in sessions:
                members.append(proc)
        except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
            pass
    return members


def _kill_sessions(sessions: set[int]) -> None:
    """SIGKILL every process in the sessions, again until none is left (one may fork while we sweep)."""
    import psutil

    for _ in range(20):
        members = _session_members(sessions)
        if not members:
            return
        for proc in members:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(members, timeout=5)
    raise RuntimeError(f"processes survive SIGKILL in sessions {sorted(sessions)}")
