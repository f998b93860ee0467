"""What the 日清日结看板 (close-out board) reads: the named SQL of include/sql/board.sql, one statement per view, as
rows and plain tuples, on a read-only store; and the registry, the cutoff and the catalogue's metric labels.
closeout.board.views builds what the board shows from them.

The board is served by Airflow's api-server (plugins/), so this module stays light: SQLAlchemy Core, the store
(closeout.store.database.Store, opened read-only), the settings and the registry. It imports no pandas, no Great
Expectations and no Airflow (tests/integration/test_board_data.py checks that in a fresh interpreter). It never writes: a
read-only Store does not even create missing tables, and its every connection refuses to write. Every view is one
SQL statement, so 2,850 units × 14 days cost one round trip (bench/board.py).
"""

from __future__ import annotations

import os
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Self

from sqlalchemy import inspect, text

from closeout.core.clock import LOCAL_TZ
from closeout.store.database import Store

if TYPE_CHECKING:
    from closeout.core.catalogue import Catalogue
    from closeout.core.registry import Registry

# The tables the board reads; the pipeline's first run creates them all (closeout.store.database.Store.ensure_schema).
BOARD_TABLES = (
    "unit_day",
    "submission",
    "notice",
    "unit_excusal",
    "edition",
    "edition_signoff",
    "delivery",
    "finding",
    "figure",
    "figure_revision",
)

# What the store says about one unit on one day, as BoardData.day_facts gathers it (a list: some 40,000 of them at
# national scale, each updated in place as its rows arrive).
(
    FACT_STATUS,
    FACT_DETAIL,
    FACT_EXCUSAL,
    FACT_FIRST_RECEIVED,
    FACT_LATEST_RECEIVED,
    FACT_FILE_NAME,
    FACT_RECEIPT_SENT,
    FACT_REMINDERS,
) = range(8)


class StoreNotReady(RuntimeError):
    """The store has some of the board's tables but not all: made by an older version, not yet upgraded."""


def new_facts() -> list:
    """A unit-day the store says nothing about: no verdict, no file, no reminder."""
    return [None, "", None, None, None, None, None, 0]


class BoardData:
    """What the board reads: the store (read-only, one pre-pinged engine), the registry, the cutoff (HH:MM) and the
    catalogue's metric labels. Before the pipeline's first run there is no store, and every view reads nothing.
    The include folder (the SQL) is the pipeline's settings' unless `sql_dir` is given."""

    def __init__(
        self,
        db_url: str,
        registry: Registry,
        cutoff: str = "21:00",
        *,
        sql_dir: Path | None = None,
        catalogue: Catalogue | None = None,
    ):
        self.registry = registry
        self.cutoff = cutoff
        cutoff_at("2000-01-01", cutoff)  # a bad HH:MM fails here, not on the first request
        if sql_dir is None:
            from closeout.core.settings import load_settings

            sql_dir = load_settings().include_dir / "sql"
        self.store = Store(db_url, sql_dir, read_only=True)
        self.engine = self.store.engine
        self._statements = {name: text(sql) for name, sql in self.store.queries.items() if name.startswith("board_")}
        self._store_ready = False
        self._catalogue = catalogue
        self._metric_labels: dict[str, str] | None = None
        self._metric_order: dict[str, int] = {}

    @classmethod
    def from_env(cls) -> Self:
        """On the store, registry, cutoff and include folder the pipeline uses (the CLOSEOUT_* settings)."""
        from closeout.core.registry import load_registry
        from closeout.core.settings import load_settings

        settings = load_settings()
        return cls(
            settings.db_url,
            load_registry(settings.registry_path),
            settings.cutoff,
            sql_dir=settings.include_dir / "sql",
        )

    def dispose(self) -> None:
        self.store.dispose()

    def has_store(self) -> bool:
        """Whether the store exists yet. Before the pipeline's first run it does not, and the board shows every
        unit pending rather than an error; a SQLite file is not created by looking. Checked until it exists."""
        if self._store_ready:
            return True
        url = self.engine.url
        if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
            return False
        with self.engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
        missing = [table for table in BOARD_TABLES if table not in present]
        if len(missing) == len(BOARD_TABLES):
            return False
        if missing:
            raise StoreNotReady(
                f"the store lacks {', '.join(missing)}: run the pipeline once (closeout status, or a DAG run) to "
                "upgrade it"
            )
        self._store_ready = True
        return True

    def day_facts(self, first_date: str, last_date: str) -> tuple[dict[tuple[str, str], list], dict[str, list]]:
        """board_matrix: its rows merged per (date, unit) (lists indexed by FACT_*), and the editions per date as
        (sign-off decision, edition_no, kind, subject, sent_at, recipients). Rows are read as plain tuples: at
        national scale there are some 40,000, and a dict per row would cost more than the query."""
        facts: dict[tuple[str, str], list] = {}
        editions: dict[str, list] = {}
        if not self.has_store():
            return facts, editions
        with self.engine.connect() as conn:
            span = {"first_date": first_date, "last_date": last_date}
            rows = conn.execute(self._statements["board_matrix"], span).all()
            for tag, d, code, status, detail, file_name, received_at, receipt_sent_at, n, *edition in rows:
                if tag == "edition":
                    editions.setdefault(d, []).append((status, int(n), *edition))
                    continue
                key = (d, code)
                fact = facts.get(key)
                if fact is None:
                    if tag == "day":  # the common case, a unit-day's first row: made whole at once
                        facts[key] = [
                            status,
                            detail or "",
                            None,
                            received_at,
                            received_at,
                            file_name,
                            receipt_sent_at,
                            0,
                        ]
                        continue
                    fact = facts[key] = new_facts()
                if tag == "day":
                    fact[FACT_STATUS], fact[FACT_DETAIL] = status, detail or ""
                elif tag == "reminders":
                    fact[FACT_REMINDERS] = int(n)
                elif tag == "excusal":
                    fact[FACT_EXCUSAL] = detail or ""
                if received_at is not None:  # a file, on a 'day' or a 'file' row
                    if fact[FACT_FIRST_RECEIVED] is None or received_at < fact[FACT_FIRST_RECEIVED]:
                        fact[FACT_FIRST_RECEIVED] = received_at
                    if fact[FACT_LATEST_RECEIVED] is None or received_at > fact[FACT_LATEST_RECEIVED]:
                        fact[FACT_LATEST_RECEIVED], fact[FACT_FILE_NAME], fact[FACT_RECEIPT_SENT] = (
                            received_at,
                            file_name,
                            receipt_sent_at,
                        )
        return facts, editions

    def unit_day_rows(self, report_date: str, unit_code: str) -> dict[str, list[dict]]:
        """board_unit_day: the unit-day's rows (dicts) by tag: day, excusal, file, finding, figure, revision,
        notice, and published (the day's sent deliveries)."""
        by_tag: dict[str, list[dict]] = {}
        if not self.has_store():
            return by_tag
        with self.engine.connect() as conn:
            params = {"report_date": report_date, "unit_code": unit_code}
            for row in conn.execute(self._statements["board_unit_day"], params).mappings():
                by_tag.setdefault(row["tag"], []).append(dict(row))
        return by_tag

    def punctuality_days(self, first_date: str, last_date: str) -> dict[str, dict[str, list]]:
        """board_punctuality: unit → report date → [stored verdict, excused, first file's arrival, rejected files],
        from plain tuples."""
        days: dict[str, dict[str, list]] = {}
        if not self.has_store():
            return days
        with self.engine.connect() as conn:
            span = {"first_date": first_date, "last_date": last_date}
            rows = conn.execute(self._statements["board_punctuality"], span).all()
        for tag, report_date, code, status, first_received_at, rejected_files in rows:
            day = days.setdefault(code, {}).get(report_date)
            if day is None:
                day = days[code][report_date] = [None, False, None, 0]
            if tag == "excusal":
                day[1] = True
                continue
            if tag == "day":
                day[0] = status
            day[2], day[3] = first_received_at, int(rejected_files or 0)
        return days

    def metric_labels(self) -> dict[str, str]:
        """Metric key → Chinese label from the catalogue (read once); {} when it cannot be read (keys are shown)."""
        if self._metric_labels is None:
            catalogue = self._catalogue
            if catalogue is None:
                try:
                    from closeout.core.catalogue import load_catalogue
                    from closeout.core.settings import load_settings

                    settings = load_settings()
                    catalogue = load_catalogue(settings.catalogue_path, settings.checks_path)
                except (OSError, ValueError, KeyError, TypeError):  # a label is a nicety: the board still works
                    catalogue = None
            metrics = catalogue.metrics if catalogue is not None else ()
            self._metric_labels = {m.key: m.label for m in metrics}
            self._metric_order = {m.key: n for n, m in enumerate(metrics)}
        return self._metric_labels

    # --- the store's times ------------------------------------------------------------------------------------

    def cutoff_text(self, report_date: str) -> str:
        return f"{report_date}T{self.cutoff}:00.000"

    def late(self, report_date: str, received_at: str, cutoff_text: str | None = None) -> bool:
        """After the cutoff on the report date. The store writes local times with +08:00: those are compared as
        text (fast, and exact to the millisecond); any other form is parsed."""
        if received_at.endswith("+08:00") and len(received_at) >= 23:
            return received_at[:23] > (cutoff_text or self.cutoff_text(report_date))
        arrived = stored_time(received_at)
        return arrived is not None and arrived > cutoff_at(report_date, self.cutoff)


def cutoff_at(report_date: str, cutoff: str) -> datetime:
    hours, minutes = cutoff.split(":")
    return datetime.combine(date.fromisoformat(report_date), time(int(hours), int(minutes)), LOCAL_TZ)


def stored_time(iso: str | None) -> datetime | None:
    """A stored time as an aware local datetime (a naive one is taken as local, as the store writes local times)."""
    if not iso:
        return None
    when = datetime.fromisoformat(iso)
    return when.replace(tzinfo=LOCAL_TZ) if when.tzinfo is None else when.astimezone(LOCAL_TZ)


def archived_size(archived_path: str | None) -> int | None:
    """The archived file's size from the file system (never its content); None when it is not on this machine."""
    if not archived_path:
        return None
    try:
        return os.stat(archived_path).st_size
    except OSError:
        return None


def stored_number(value):
    """A stored DOUBLE as the int it usually is (JSON "12", not "12.0")."""
    if value is None:
        return None
    value = float(value)
    return int(value) if value.is_integer() else value
