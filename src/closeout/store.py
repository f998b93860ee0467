"""The reporting store: SQLAlchemy 2 Core running the named SQL blocks of include/sql/*.sql."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.exc import DBAPIError

from closeout.settings import LOCAL_TZ

_BLOCK = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load_queries(sql_dir: Path) -> dict[str, str]:
    """Every `-- name: x` block of every .sql file; a name must be unique across files."""
    queries: dict[str, str] = {}
    for path in sorted(Path(sql_dir).glob("*.sql")):
        parts = _BLOCK.split(path.read_text(encoding="utf-8"))
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in queries:
                raise ValueError(f"{path.name}: query {name} is defined twice")
            lines = [ln for ln in body.strip().splitlines() if not ln.lstrip().startswith("--")]
            queries[name] = "\n".join(lines).strip().rstrip(";")
    return queries


def now_local() -> str:
    return datetime.now(LOCAL_TZ).isoformat(timespec="milliseconds")  # orders resubmissions within a second


class Store:
    def __init__(self, db_url: str, sql_dir: Path):
        if db_url.startswith("sqlite:///"):
            Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # pre-ping: a connection the database dropped (restart, failover, idle cut) is replaced, not handed out
        self.engine = create_engine(
            db_url, pool_pre_ping=True, connect_args={"timeout": 30} if db_url.startswith("sqlite") else {}
        )
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", lambda conn, _: conn.execute("PRAGMA journal_mode=WAL"))
        self.queries = load_queries(sql_dir)
        self.ensure_schema()

    def ensure_schema(self) -> None:
        creates = [name for name in self.queries if name.startswith("create_")]
        try:
            with self.engine.begin() as conn:
                self._upgrade(conn)
                for name in creates:
                    conn.execute(text(self.queries[name]))
        except DBAPIError:
            # Two workers creating the same table at once on PostgreSQL: the loser finds it made.
            with self.engine.begin() as conn:
                self._upgrade(conn)
                for name in creates:
                    conn.execute(text(self.queries[name]))

    def _upgrade(self, conn: Connection) -> None:
        """Stores made before editions: one delivery per day becomes attempt 1 of edition 1 (kept, never
        dropped), and revisions learn which same-day edition sent them and who signed them."""
        from sqlalchemy import inspect

        tables = set(inspect(conn).get_table_names())
        if "delivery" in tables and "edition_no" not in {c["name"] for c in inspect(conn).get_columns("delivery")}:
            conn.execute(text("ALTER TABLE delivery RENAME TO delivery_before_editions"))
            conn.execute(text(self.queries["create_delivery"]))
            conn.execute(
                text(
                    "INSERT INTO delivery (report_date, edition_no, attempt, status, subject, recipients, message_id, "
                    "content_sha256, started_at, sent_at) SELECT report_date, 1, 1, status, subject, recipients, "
                    "message_id, content_sha256, started_at, sent_at FROM delivery_before_editions"
                )
            )
        if "figure_revision" in tables:
            columns = {c["name"] for c in inspect(conn).get_columns("figure_revision")}
            if "in_edition" not in columns:
                conn.execute(text("ALTER TABLE figure_revision ADD COLUMN in_edition INTEGER"))
            if "recorded_by" not in columns:
                conn.execute(text("ALTER TABLE figure_revision ADD COLUMN recorded_by TEXT NOT NULL DEFAULT ''"))

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def run(self, conn: Connection, name: str, params: dict | list[dict] | None = None):
        if isinstance(params, list):
            if not params:
                return None
            return conn.execute(text(self.queries[name]), params)
        return conn.execute(text(self.queries[name]), params or {})

    def set_unit_day(self, conn: Connection, report_date: str, unit_code: str, status: str, detail: str = "") -> None:
        """A unit's close-out status for the day; unchanged status and detail leave the row untouched."""
        self.run(
            conn,
            "upsert_unit_day",
            {
                "report_date": report_date,
                "unit_code": unit_code,
                "status": status,
                "detail": detail,
                "updated_at": now_local(),
            },
        )

    def rows(self, name: str, params: dict | None = None) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text(self.queries[name]), params or {})]

    def dispose(self) -> None:
        self.engine.dispose()
