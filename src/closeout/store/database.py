"""The reporting store: SQLAlchemy 2 Core running the named SQL blocks of include/sql/*.sql."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, bindparam, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from closeout.core.clock import now_local

_BLOCK = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_PLAIN_INSERT = re.compile(r"INSERT INTO (\w+)\s*\(([^)]*)\)\s*VALUES\s*\(([^)]*)\)", re.DOTALL)
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


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


class Store:
    """The store at `db_url` with the named SQL of `sql_dir`. Opening one creates or upgrades its tables; a
    `read_only` one (the board's) creates nothing, not even a SQLite file's folder, and every connection it makes
    refuses to write."""

    def __init__(self, db_url: str, sql_dir: Path, *, read_only: bool = False):
        self.read_only = read_only
        if db_url.startswith("sqlite:///") and not read_only:
            Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        options: dict = {"connect_args": {"timeout": 30}} if db_url.startswith("sqlite") else {}
        if make_url(db_url).get_dialect().driver == "psycopg2":
            # executemany of the named statements (upserts, deletes) goes 500 to a round trip, not one each
            options |= {"executemany_mode": "values_plus_batch", "executemany_batch_page_size": 500}
        # pre-ping: a connection the database dropped (restart, failover, idle cut) is replaced, not handed out
        self.engine = create_engine(db_url, pool_pre_ping=True, **options)
        if read_only:
            event.listen(self.engine, "connect", _read_only)
        elif self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", lambda conn, _: conn.execute("PRAGMA journal_mode=WAL"))
        self.queries = load_queries(sql_dir)
        if not read_only:
            self.ensure_schema()

    def ensure_schema(self) -> None:
        try:
            with self.engine.begin() as conn:
                self._apply_schema(conn)
        except DBAPIError:
            # Two workers creating the same table at once on PostgreSQL: the loser finds it made.
            with self.engine.begin() as conn:
                self._apply_schema(conn)

    def _apply_schema(self, conn: Connection) -> None:
        from sqlalchemy import inspect

        existing = set(inspect(conn).get_table_names())
        self._upgrade(conn)
        for name in (name for name in self.queries if name.startswith("create_")):
            conn.execute(text(self.queries[name]))
        self._fill_new_tables(conn, existing)

    def _fill_new_tables(self, conn: Connection, existing: set[str]) -> None:
        """A store made before a table existed gets what that table would hold: 第N期 for every day that already has
        an edition, numbered in report-date order within its year (never in the order this code happens to render
        them), and the 标记缺报 decisions already in force as their first history."""
        if existing and "edition" in existing and "bulletin_issue" not in existing:
            conn.execute(text(self.queries["backfill_bulletin_issues"]))
        if "unit_excusal" in existing and "unit_excusal_history" not in existing:
            conn.execute(text(self.queries["backfill_excusal_history"]))

    def _upgrade(self, conn: Connection) -> None:
        """Stores made before editions: one delivery per day becomes attempt 1 of edition 1 (kept, never
        dropped), revisions learn which same-day edition sent them and who signed them, and editions what the approver
        reads (their outline; {} for the editions recorded before)."""
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
        if "edition" in tables and "outline" not in {c["name"] for c in inspect(conn).get_columns("edition")}:
            conn.execute(text("ALTER TABLE edition ADD COLUMN outline TEXT NOT NULL DEFAULT '{}'"))
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
        """A named statement: once with a dict, or once per row of a list of dicts (batched on PostgreSQL)."""
        if isinstance(params, list):
            if not params:
                return None
            return conn.execute(text(self.queries[name]), params)
        return conn.execute(self._statement(name, params or {}), params or {})

    def _statement(self, name: str, params: dict):
        """The named SQL; a list or tuple parameter fills an `IN :name`."""
        statement = text(self.queries[name])
        expanding = [bindparam(k, expanding=True) for k, v in params.items() if isinstance(v, list | tuple)]
        return statement.bindparams(*expanding) if expanding else statement

    def insert_rows(self, conn: Connection, name: str, rows: list[dict]) -> None:
        """A named plain INSERT for many rows at once: COPY on PostgreSQL (ten times faster than batched INSERTs
        there), executemany elsewhere. Part of the caller's transaction either way."""
        if not rows:
            return
        if self.engine.dialect.name != "postgresql":
            conn.execute(text(self.queries[name]), rows)
            return
        table, columns, params = self._insert_target(name)
        data = io.StringIO()
        for row in rows:
            data.write("\t".join(_copy_field(row[p]) for p in params) + "\n")
        data.seek(0)
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        raw = conn.connection.dbapi_connection
        dbapi = self.engine.dialect.loaded_dbapi
        try:
            with raw.cursor() as cursor:
                cursor.copy_expert(statement, data)
        except dbapi.Error as exc:  # raised as SQLAlchemy raises a failed statement, the connection dropped if cut
            cut = self.engine.dialect.is_disconnect(exc, raw, None)
            if cut:
                conn.invalidate()
            raise DBAPIError.instance(statement, None, exc, dbapi.Error, connection_invalidated=cut) from exc

    def _insert_target(self, name: str) -> tuple[str, list[str], list[str]]:
        match = _PLAIN_INSERT.fullmatch(self.queries[name])
        if match is None:
            raise ValueError(f"{name} is not a plain INSERT INTO t (columns) VALUES (:params)")
        table, columns, params = match.groups()
        columns = [c.strip() for c in columns.split(",")]
        params = [p.strip().removeprefix(":") for p in params.split(",")]
        if len(columns) != len(params):
            raise ValueError(f"{name}: {len(columns)} columns but {len(params)} values")
        return table, columns, params

    def rows(self, name: str, params: dict | None = None) -> list[dict]:
        with self.engine.connect() as conn:
            result = conn.execute(self._statement(name, params or {}), params or {})
            keys = list(result.keys())
            return [dict(zip(keys, row, strict=True)) for row in result]

    def dispose(self) -> None:
        self.engine.dispose()


def unit_day(report_date: str, unit_code: str, status: str, detail: str = "") -> dict:
    """A row of upsert_unit_day (a unit's close-out status for the day; an unchanged one leaves the row alone)."""
    return {
        "report_date": report_date,
        "unit_code": unit_code,
        "status": str(status),  # a UnitStatus as its stored text
        "detail": detail,
        "updated_at": now_local(),
    }


def _read_only(dbapi_connection, _record) -> None:
    """Every connection of a read-only store refuses to write, so that a mistake there can never change the store."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        dbapi_connection.execute("PRAGMA query_only = ON")
        return
    # PostgreSQL: a session setting, made outside any transaction so that a rollback cannot undo it
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    dbapi_connection.autocommit = autocommit


def _copy_field(value) -> str:
    """One field of COPY's text format: \\N for NULL, backslash escapes for the separators."""
    if value is None:
        return "\\N"
    return str(value).translate(_COPY_ESCAPES)
