"""Shared fixtures. Tests use the real services: PostgreSQL on 127.0.0.1:5432, an SMTP server on loopback.

Airflow's own settings are fixed here, before anything imports Airflow: a throwaway AIRFLOW_HOME with a
SQLite metadata database, this repo's dags folder, no examples.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Fixtures of the shared test cases (make_ctx, ctx_with) for every test folder.
pytest_plugins = ["bulletin_cases"]
SAMPLE_INBOX = ROOT / "sample" / "inbox"
PG_ADMIN_URL = os.environ.get("CLOSEOUT_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="closeout-airflow-"))
os.environ.update(
    AIRFLOW_HOME=str(_AIRFLOW_HOME),
    AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
    AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
    GX_ANALYTICS_ENABLED="False",
)


# A test that takes one of these needs a running service; `pytest -m unit` leaves it out.
SERVICE_FIXTURES = {"db_url", "postgres_url", "smtp_sink", "airflow_db", "e2e"}
FOLDERS = ("unit", "integration", "browser")  # tests/<folder>/: what a test file may need at most


def pytest_collection_modifyitems(config, items):
    """Markers follow the folders. tests/unit: `unit` (no services, seconds), and a test there that asks for a
    service is an error, not a slow unit test. tests/browser: `browser`. tests/integration: `services` when the test
    takes a service fixture, else `integration` (whole pipelines, fresh interpreters, Airflow), unless the test says
    otherwise (an SQLite variant of a test that also runs on PostgreSQL stays `unit`)."""
    for item in items:
        folder = item.path.relative_to(ROOT / "tests").parts[0]
        if folder not in FOLDERS:
            raise pytest.UsageError(f"{item.nodeid}: a test lives under tests/unit, tests/integration or tests/browser")
        uses_service = bool(SERVICE_FIXTURES & set(item.fixturenames))
        if folder == "unit":
            if uses_service or any(item.get_closest_marker(m) for m in ("services", "browser", "integration")):
                raise pytest.UsageError(f"{item.nodeid}: uses a service or a browser; move it to tests/integration")
            item.add_marker("unit")
        elif folder == "browser":
            item.add_marker("browser")
        elif not any(item.get_closest_marker(m) for m in ("unit", "services", "browser", "integration")):
            item.add_marker("services" if uses_service else "integration")


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata database, migrated once per session (dag.test needs it)."""
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return _AIRFLOW_HOME


@contextmanager
def fresh_database(prefix: str = "closeout_test"):
    """A new, empty database on the machine's PostgreSQL, dropped afterwards. Fails (never skips) when unreachable."""
    from sqlalchemy import create_engine, text

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.fail(f"PostgreSQL is required at {PG_ADMIN_URL} (set CLOSEOUT_TEST_PG_URL): {exc}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url():
    with fresh_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Each test that takes this runs on both stores; PostgreSQL gets an empty schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'closeout.db'}"
        return
    from sqlalchemy import create_engine, text

    base = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{base}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@contextmanager
def running_sink(folder: Path):
    """A real SMTP server (aiosmtpd) on loopback that writes each message it accepts as a .eml file."""
    from closeout.deliver.mailsink import start_sink

    controller = start_sink(folder)
    controller.folder = folder
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture
def smtp_sink(tmp_path):
    with running_sink(tmp_path / "mail") as controller:
        yield controller


def received_mails(folder: Path) -> list:
    """The messages an SMTP sink has accepted, in arrival order."""
    from email import policy
    from email.parser import BytesParser

    return [BytesParser(policy=policy.default).parsebytes(p.read_bytes()) for p in sorted(folder.glob("*.eml"))]


@pytest.fixture
def make_env(tmp_path):
    """Environment for one close-out: a private inbox, archive, outbox and the given store."""

    def make(db_url: str, inbox: Path | None = None, **extra: str) -> dict[str, str]:
        env = {
            "CLOSEOUT_INBOX": str(inbox or tmp_path / "inbox"),
            "CLOSEOUT_ARCHIVE": str(tmp_path / "archive"),
            "CLOSEOUT_OUTBOX": str(tmp_path / "outbox"),
            "CLOSEOUT_DB_URL": db_url,
            "CLOSEOUT_RECIPIENTS": "duty@test.invalid,office@test.invalid",
            "CLOSEOUT_SENDER": "closeout@test.invalid",
            "CLOSEOUT_SETTLE_SECONDS": "0",  # test files are written whole; tests of settling set their own
        }
        env.update(extra)
        return env

    return make


@pytest.fixture
def ctx_for(monkeypatch, make_env):
    """A closeout Context built from a test environment (the settings module reads os.environ)."""
    from closeout.store.context import Context

    def build(db_url: str, inbox: Path | None = None, **extra: str) -> Context:
        for key, value in make_env(db_url, inbox, **extra).items():
            monkeypatch.setenv(key, value)
        return Context.from_env()

    return build


def copy_day(source_day: Path, inbox: Path, report_date: str) -> Path:
    """Copy a sample day's files into a test inbox under the given date."""
    target = inbox / report_date
    target.mkdir(parents=True, exist_ok=True)
    for path in source_day.iterdir():
        shutil.copy2(path, target / path.name)
    return target


def publish(ctx, day, connect, sender: str = "closeout@test.invalid"):
    """What the cutoff run does after reconciling: render the day's edition, then mail it (at most once)."""
    from closeout.orchestration import pipeline

    return pipeline.email_bulletin(ctx, pipeline.render_bulletin(ctx, day), sender, connect)
