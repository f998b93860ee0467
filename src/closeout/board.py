"""The read-only data layer of the 日清日结看板 (close-out board): the unit × day matrix, one unit-day, punctuality.

The board is served by Airflow's api-server (plugins/), so this module stays light: SQLAlchemy Core, the settings,
the registry, the named SQL of include/sql/board.sql, and the catalogue for metric labels. It imports no pandas,
no Great Expectations and no Airflow (tests/test_board_data.py checks that in a fresh interpreter). It never writes:
it does not even create missing tables (closeout.store.Store would), and every view is one SQL statement, so
2,850 units × 14 days cost one round trip (bench/board.py).

Every value returned is JSON-serialisable: dates 'YYYY-MM-DD', times ISO strings in Asia/Shanghai.
"""

from __future__ import annotations

import csv
import io
import os
import statistics
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, event, inspect, text

from closeout.registry import Registry, Unit
from closeout.settings import LOCAL_TZ, PROJECT_ROOT
from closeout.store import load_queries

if TYPE_CHECKING:
    from closeout.catalogue import Catalogue

# Okabe–Ito colours (distinguishable with the common colour-vision deficiencies); black text reads on each of them
# (contrast ≥ 4.5:1), and the label is always shown beside the colour.
STATUSES: list[dict] = [
    {
        "key": "cleared",
        "label": "已结清",
        "colour": "#009e73",
        "text_colour": "#000000",
        "meaning": "数据已入库并通过对账",
    },
    {
        "key": "open",
        "label": "未结清",
        "colour": "#e69f00",
        "text_colour": "#000000",
        "meaning": "数据已收到，但尚未对账或对账未通过",
    },
    {
        "key": "rejected",
        "label": "拒收",
        "colour": "#d55e00",
        "text_colour": "#000000",
        "meaning": "文件未通过校验，已退回",
    },
    {"key": "missing", "label": "缺报", "colour": "#cc79a7", "text_colour": "#000000", "meaning": "截止时未收到数据"},
    {
        "key": "pending",
        "label": "待报",
        "colour": "#56b4e9",
        "text_colour": "#000000",
        "meaning": "尚无结论：截止时间前，或当日尚未结账",
    },
    {
        "key": "absent",
        "label": "已标记缺报",
        "colour": "#bbbbbb",
        "text_colour": "#000000",
        "meaning": "经值班人员标记不报，或本日无需单独报送",
    },
]
STATUS_LABELS = {s["key"]: s["label"] for s in STATUSES}
STATUS_KEYS = tuple(STATUS_LABELS)

# unit_day.status as the pipeline writes it → the board's status. `received` (a file taken but its load not
# finished) has no verdict yet; `excused` is an operator's 标记缺报; `absent` an optional unit that sent nothing.
_STORE_STATUS = {
    "cleared": "cleared",
    "loaded": "open",
    "break": "open",
    "rejected": "rejected",
    "missing": "missing",
    "absent": "absent",
    "excused": "absent",
    "received": "pending",
}
EDITION_KIND_LABELS = {"official": "正式", "late_report": "补报", "correction": "更正"}
EDITION_STATE_LABELS = {"held": "待签发", "rejected": "已驳回", "sent": "已发送", "unsent": "未发送"}
REVISION_KIND_LABELS = {"revision": "修订", "correction": "更正", "late_report": "补报", "recalculated": "重算"}
_FINDING_STAGES = {"load": 0, "validate": 1, "reconcile": 2, "narrative": 3}
CSV_DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may run as a formula (CSV injection)


# The tables the board reads; the pipeline's first run creates them all (closeout.store.Store.ensure_schema).
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


class UnknownUnit(KeyError):
    """A unit code the registry does not list."""


class StoreNotReady(RuntimeError):
    """The store has some of the board's tables but not all: made by an older version, not yet upgraded."""


def default_range(today: date, days: int = 14) -> tuple[date, date]:
    """The board's default columns: the `days` report dates ending today."""
    return today - timedelta(days=max(days, 1) - 1), today


def board_status(store_status: str | None, excused: bool) -> str:
    """A cell's status from the unit's stored verdict and whether an operator excused it; no verdict: pending."""
    if store_status in (None, "missing", "received") and excused:
        return "absent"  # an operator's 标记缺报 stands until the unit sends after all
    return _STORE_STATUS.get(store_status or "", "pending")


# board_status for every status the pipeline writes, looked up once per cell instead of computed
_BOARD_STATUS = {
    (stored, excused): board_status(stored, excused) for stored in (None, *_STORE_STATUS) for excused in (False, True)
}


def _dates(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _cutoff_at(report_date: str, cutoff: str) -> datetime:
    hours, minutes = cutoff.split(":")
    return datetime.combine(date.fromisoformat(report_date), time(int(hours), int(minutes)), LOCAL_TZ)


def _local(iso: str | None) -> datetime | None:
    """A stored time as an aware local datetime (a naive one is taken as local, as the store writes local times)."""
    if not iso:
        return None
    when = datetime.fromisoformat(iso)
    return when.replace(tzinfo=LOCAL_TZ) if when.tzinfo is None else when.astimezone(LOCAL_TZ)


# What the store says about one unit on one day, as _day_facts gathers it (a list: some 40,000 of them at
# national scale, each updated in place as its rows arrive).
_STATUS, _DETAIL, _EXCUSAL, _FIRST_RECEIVED, _LATEST_RECEIVED, _FILE_NAME, _RECEIPT_SENT, _REMINDERS = range(8)


def _new_facts() -> list:
    return [None, "", None, None, None, None, None, 0]


class BoardReader:
    """Reads the store for the board; one engine (pre-pinged) per reader, one statement per view."""

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
        _cutoff_at("2000-01-01", cutoff)  # a bad HH:MM fails here, not on the first request
        options: dict = {"connect_args": {"timeout": 30}} if db_url.startswith("sqlite") else {}
        # pre-ping: a connection the database dropped (restart, failover, idle cut) is replaced, not handed out
        self.engine = create_engine(db_url, pool_pre_ping=True, **options)
        event.listen(self.engine, "connect", _read_only)
        include = Path(os.environ.get("CLOSEOUT_INCLUDE", PROJECT_ROOT / "include"))  # as closeout.settings reads it
        queries = load_queries(sql_dir or include / "sql")
        self._queries = {name: text(sql) for name, sql in queries.items() if name.startswith("board_")}
        self._catalogue = catalogue
        self._metric_labels: dict[str, str] | None = None
        self._metric_order: dict[str, int] = {}
        self._store_ready = False

    @classmethod
    def from_env(cls) -> BoardReader:
        """A reader on the store, registry, cutoff and include folder the pipeline uses (the CLOSEOUT_* settings)."""
        from closeout.registry import load_registry
        from closeout.settings import load_settings

        settings = load_settings()
        return cls(
            settings.db_url,
            load_registry(settings.registry_path),
            settings.cutoff,
            sql_dir=settings.include_dir / "sql",
        )

    def dispose(self) -> None:
        self.engine.dispose()

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

    def _rows(self, name: str, params: dict) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(self._queries[name], params).mappings()]

    # --- the matrix -------------------------------------------------------------------------------------------

    def matrix(
        self, first: date, last: date, now: datetime, group: str | None = None, search: str | None = None
    ) -> dict:
        """The unit × day board for first..last (inclusive); `group` keeps one group, `search` units whose name or
        code contains it. Day and group counts cover every unit of the registry (of the group), filtered or not;
        `shown_counts` covers the units shown."""
        if last < first:
            first, last = last, first
        dates = [d.isoformat() for d in _dates(first, last)]
        facts, editions = self._day_facts(dates) if self.has_store() else ({}, {})
        cutoffs = {d: self._cutoff_text(d) for d in dates}
        nothing = _new_facts()
        needle = (search or "").strip().lower()
        day_counts = {d: dict.fromkeys(STATUS_KEYS, 0) for d in dates}
        shown_counts = {d: dict.fromkeys(STATUS_KEYS, 0) for d in dates}
        groups, total_units, shown_units = [], 0, 0
        for unit_group in self.registry.groups():
            group_counts = {d: dict.fromkeys(STATUS_KEYS, 0) for d in dates}
            units = []
            for code in unit_group.codes:
                unit = self.registry.get(code)
                total_units += 1
                shown = (group is None or unit_group.key == group) and (
                    not needle or needle in unit.code or needle in unit.name.lower()
                )
                row_cells = []
                for d in dates:
                    fact = facts.get((d, code), nothing)
                    excused = fact[_EXCUSAL] is not None
                    status = _BOARD_STATUS.get((fact[_STATUS], excused)) or board_status(fact[_STATUS], excused)
                    day_counts[d][status] += 1
                    group_counts[d][status] += 1
                    if not shown:
                        continue
                    shown_counts[d][status] += 1
                    first_received = fact[_FIRST_RECEIVED]
                    row_cells.append(
                        {
                            "date": d,
                            "status": status,
                            "label": STATUS_LABELS[status],
                            "detail": fact[_DETAIL] or (fact[_EXCUSAL] or "" if status == "absent" else ""),
                            "received_at": fact[_LATEST_RECEIVED],
                            "file_name": fact[_FILE_NAME],
                            "receipt_sent_at": fact[_RECEIPT_SENT],
                            "reminders_sent": fact[_REMINDERS],
                            "late": first_received is not None and self._late(d, first_received, cutoffs[d]),
                        }
                    )
                if shown:
                    units.append({**_unit_json(unit, unit_group.key), "cells": row_cells})
            shown_units += len(units)
            if units:
                groups.append(
                    {
                        "key": unit_group.key,
                        "name": self.registry.group_name(unit_group.key),
                        "counts": group_counts,
                        "units": units,
                    }
                )
        now_local = now.astimezone(LOCAL_TZ) if now.tzinfo else now.replace(tzinfo=LOCAL_TZ)
        return {
            "first": dates[0],
            "last": dates[-1],
            "today": now_local.date().isoformat(),
            "now": now_local.isoformat(timespec="seconds"),
            "cutoff": self.cutoff,
            "dates": dates,
            "statuses": STATUSES,
            "days": [
                {
                    "date": d,
                    "counts": day_counts[d],
                    "shown_counts": shown_counts[d],
                    "editions": sorted(editions.get(d, []), key=lambda e: e["edition_no"]),
                }
                for d in dates
            ],
            "groups": groups,
            "totals": {"units": total_units, "shown_units": shown_units},
        }

    def _day_facts(self, dates: list[str]) -> tuple[dict[tuple[str, str], list], dict[str, list[dict]]]:
        """The board_matrix rows merged per (date, unit), and the editions per date. Rows are read as plain
        tuples: at national scale there are some 40,000, and a dict per row would cost more than the query."""
        facts: dict[tuple[str, str], list] = {}
        editions: dict[str, list[dict]] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(self._queries["board_matrix"], {"first_date": dates[0], "last_date": dates[-1]}).all()
            for tag, d, code, status, detail, file_name, received_at, receipt_sent_at, n, *edition in rows:
                if tag == "edition":
                    editions.setdefault(d, []).append(_edition(status, int(n), *edition))
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
                    fact = facts[key] = _new_facts()
                if tag == "day":
                    fact[_STATUS], fact[_DETAIL] = status, detail or ""
                elif tag == "reminders":
                    fact[_REMINDERS] = int(n)
                elif tag == "excusal":
                    fact[_EXCUSAL] = detail or ""
                if received_at is not None:  # a file, on a 'day' or a 'file' row
                    if fact[_FIRST_RECEIVED] is None or received_at < fact[_FIRST_RECEIVED]:
                        fact[_FIRST_RECEIVED] = received_at
                    if fact[_LATEST_RECEIVED] is None or received_at > fact[_LATEST_RECEIVED]:
                        fact[_LATEST_RECEIVED], fact[_FILE_NAME], fact[_RECEIPT_SENT] = (
                            received_at,
                            file_name,
                            receipt_sent_at,
                        )
        return facts, editions

    def _cutoff_text(self, report_date: str) -> str:
        return f"{report_date}T{self.cutoff}:00.000"

    def _late(self, report_date: str, received_at: str, cutoff_text: str | None = None) -> bool:
        """After the cutoff on the report date. The store writes local times with +08:00: those are compared as
        text (fast, and exact to the millisecond); any other form is parsed."""
        if received_at.endswith("+08:00") and len(received_at) >= 23:
            return received_at[:23] > (cutoff_text or self._cutoff_text(report_date))
        arrived = _local(received_at)
        return arrived is not None and arrived > _cutoff_at(report_date, self.cutoff)

    # --- one unit-day -----------------------------------------------------------------------------------------

    def unit_day(self, report_date: date, unit_code: str) -> dict:
        """What the board shows when a cell is opened: verdict, files, findings, figures, revisions, notices.
        Raises UnknownUnit for a code the registry does not list."""
        try:
            unit = self.registry.get(unit_code)
        except KeyError:
            raise UnknownUnit(unit_code) from None
        day = report_date.isoformat()
        by_tag: dict[str, list[dict]] = {}
        rows = self._rows("board_unit_day", {"report_date": day, "unit_code": unit_code}) if self.has_store() else []
        for row in rows:
            by_tag.setdefault(row["tag"], []).append(row)
        verdict = (by_tag.get("day") or [{}])[0]
        excusal = (by_tag.get("excusal") or [None])[0]
        status = board_status(verdict.get("status"), excusal is not None)
        detail = verdict.get("detail") or ""
        if status == "absent" and not detail and excusal:
            detail = f"{excusal['reason']}（{excusal['actor']} 标记）"
        labels = self.metric_labels()
        files = sorted(by_tag.get("file", []), key=lambda r: (r["at"], r["line"] or ""))
        findings = sorted(
            by_tag.get("finding", []),
            key=lambda r: (
                _FINDING_STAGES.get(r["stage"], 9),
                r["row_no"] if r["row_no"] is not None else -1,
                r["rule"],
            ),
        )
        figures = sorted(
            by_tag.get("figure", []), key=lambda r: (self._metric_order.get(r["metric"], 999), r["metric"])
        )
        revisions = sorted(by_tag.get("revision", []), key=lambda r: (r["at"], r["metric"]))
        notices = sorted(by_tag.get("notice", []), key=lambda r: (r["at"] or "", r["kind"]))
        return {
            "date": day,
            "unit": {"code": unit.code, "name": unit.name, "label": unit.label, "group": unit.group or unit.code},
            "status": status,
            "label": STATUS_LABELS[status],
            "detail": detail,
            "excusal": (
                {"reason": excusal["reason"], "marked_by": excusal["actor"], "marked_at": excusal["at"]}
                if excusal
                else None
            ),
            "files": [
                {
                    "file_name": r["file_name"],
                    "size": _size(r["archived_path"]),
                    "sha256": r["sha256"],
                    "received_at": r["at"],
                    "status": r["status"],
                    "reasons": [line for line in (r["reason"] or "").splitlines() if line],
                    "archived_path": r["archived_path"],
                }
                for r in files
            ],
            "findings": [
                {
                    "stage": r["stage"],
                    "severity": r["severity"],
                    "rule": r["rule"],
                    "metric": r["metric"],
                    "row_no": r["row_no"],
                    "line": r["line"],
                    "file_name": r["file_name"],
                }
                for r in findings
            ],
            "figures": [
                {
                    "metric": r["metric"],
                    "label": labels.get(r["metric"], r["metric"]),
                    "value": _number(r["value"]),
                    "qualifier": r["qualifier"] or "",
                    "note": r["note"] or "",
                    "source_sha256": r["sha256"],
                }
                for r in figures
            ],
            "revisions": [
                {
                    "metric": r["metric"],
                    "label": labels.get(r["metric"], r["metric"]) if r["metric"] else "",
                    "old_value": _number(r["old_value"]),
                    "new_value": _number(r["new_value"]),
                    "old_qualifier": r["note"] or "",
                    "new_qualifier": r["qualifier"] or "",
                    "kind": r["kind"],
                    "kind_label": REVISION_KIND_LABELS.get(r["kind"], r["kind"]),
                    "reason": r["reason"] or "",
                    "recorded_by": r["actor"] or "",
                    "recorded_at": r["at"],
                }
                for r in revisions
            ],
            "notices": [
                {"kind": r["kind"], "status": r["status"], "subject": r["subject"], "sent_at": r["at"]} for r in notices
            ],
        }

    def metric_labels(self) -> dict[str, str]:
        """Metric key → Chinese label from the catalogue (read once); {} when it cannot be read (keys are shown)."""
        if self._metric_labels is None:
            catalogue = self._catalogue
            if catalogue is None:
                try:
                    from closeout.catalogue import load_catalogue
                    from closeout.settings import load_settings

                    settings = load_settings()
                    catalogue = load_catalogue(settings.catalogue_path, settings.checks_path)
                except (OSError, ValueError, KeyError, TypeError):  # a label is a nicety: the board still works
                    catalogue = None
            metrics = catalogue.metrics if catalogue is not None else ()
            self._metric_labels = {m.key: m.label for m in metrics}
            self._metric_order = {m.key: n for n, m in enumerate(metrics)}
        return self._metric_labels

    # --- punctuality ------------------------------------------------------------------------------------------

    def punctuality(self, first: date, last: date) -> list[dict]:
        """Per unit (code order) over first..last: days it had to report (a file came, or it was 缺报), on time
        (first file at or before the cutoff), late, 缺报, days ending rejected, days excused or absent, and the
        median time of the day's first file ("HH:MM" local; hours past 24 for a file after midnight)."""
        if last < first:
            first, last = last, first
        # (date, unit) → [stored verdict, excused, first file's arrival, rejected files], from plain tuples
        days: dict[str, dict[str, list]] = {}
        span = {"first_date": first.isoformat(), "last_date": last.isoformat()}
        rows = []
        if self.has_store():
            with self.engine.connect() as conn:
                rows = conn.execute(self._queries["board_punctuality"], span).all()
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
        result = []
        for unit in self.registry.all_units:
            counts = dict.fromkeys(("days", "on_time", "late", "missing", "rejected", "absent", "rejected_files"), 0)
            offsets = []
            for report_date, (stored, excused, arrived, rejected_files) in days.get(unit.code, {}).items():
                status = board_status(stored, excused)
                counts["rejected_files"] += rejected_files
                counts["missing"] += status == "missing"
                counts["rejected"] += status == "rejected"
                counts["absent"] += status == "absent"
                if arrived is None:
                    counts["days"] += status == "missing"
                    continue
                counts["days"] += 1
                counts["late" if self._late(report_date, arrived) else "on_time"] += 1
                offsets.append(_seconds_into(report_date, arrived))
            result.append(
                {
                    "code": unit.code,
                    "name": unit.name,
                    "group": unit.group or unit.code,
                    "group_name": self.registry.group_name(unit.group or unit.code),
                    "days": counts["days"],
                    "on_time": counts["on_time"],
                    "on_time_rate": counts["on_time"] / counts["days"] if counts["days"] else None,
                    "median_submission_time": _clock(statistics.median(offsets)) if offsets else None,
                    "late": counts["late"],
                    "missing": counts["missing"],
                    "rejected": counts["rejected"],
                    "absent": counts["absent"],
                    "rejected_files": counts["rejected_files"],
                }
            )
        return result


PUNCTUALITY_COLUMNS = (
    ("code", "单位代码 code"),
    ("name", "单位 name"),
    ("group", "分组 group"),
    ("days", "应报天数 days"),
    ("on_time", "按时 on_time"),
    ("on_time_rate", "按时率 on_time_rate"),
    ("median_submission_time", "报送时间中位数 median_submission_time"),
    ("late", "迟报 late"),
    ("missing", "缺报 missing"),
    ("rejected", "拒收 rejected"),
    ("absent", "已标记缺报 absent"),
)


def punctuality_csv(rows: list[dict]) -> str:
    """The punctuality table as CSV for Excel: a BOM (so Excel reads UTF-8), a bilingual header, CRLF lines, and
    any text that a spreadsheet would run as a formula (= + - @ first) prefixed with an apostrophe."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([header for _, header in PUNCTUALITY_COLUMNS])
    for row in rows:
        writer.writerow([_csv_value(row.get(key)) for key, _ in PUNCTUALITY_COLUMNS])
    return out.getvalue()


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value == value else ""
    text_value = str(value)
    return "'" + text_value if text_value.startswith(CSV_DANGEROUS_START) else text_value


# --- JSON shapes --------------------------------------------------------------------------------------------------


def _unit_json(unit: Unit, group_key: str) -> dict:
    return {"code": unit.code, "name": unit.name, "label": unit.label, "group": group_key, "required": unit.required}


def _edition(
    signoff: str | None, edition_no: int, kind: str, subject: str, sent_at: str | None, recipients: str | None
) -> dict:
    """An edition's state: sent (a delivery went out), else held (sign-off pending), rejected, or unsent."""
    if sent_at is not None:
        state = "sent"
    elif signoff == "pending":
        state = "held"
    elif signoff == "rejected":
        state = "rejected"
    else:
        state = "unsent"
    return {
        "edition_no": edition_no,
        "kind": kind,
        "kind_label": EDITION_KIND_LABELS.get(kind, kind),
        "state": state,
        "state_label": EDITION_STATE_LABELS[state],
        "sent_at": sent_at,
        "recipients": [r.strip() for r in (recipients or "").split(",") if r.strip()],
        "subject": subject,
    }


def _read_only(dbapi_connection, _record) -> None:
    """Every connection of the board is read-only, so that a mistake here can never change the store."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        dbapi_connection.execute("PRAGMA query_only = ON")
        return
    # PostgreSQL: a session setting, made outside any transaction so that a rollback cannot undo it
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    dbapi_connection.autocommit = autocommit


def _size(archived_path: str | None) -> int | None:
    """The archived file's size from the file system (never its content); None when it is not on this machine."""
    if not archived_path:
        return None
    try:
        return os.stat(archived_path).st_size
    except OSError:
        return None


def _number(value):
    """A stored DOUBLE as the int it usually is (JSON "12", not "12.0")."""
    if value is None:
        return None
    value = float(value)
    return int(value) if value.is_integer() else value


def _seconds_into(report_date: str, received_at: str) -> float:
    """Seconds from the report date's local midnight to the arrival (over 86,400 for a file after midnight)."""
    if received_at.endswith("+08:00") and received_at.startswith(report_date):  # the store's own form: no parsing
        hours, minutes, seconds = received_at[11:13], received_at[14:16], received_at[17:19]
        return int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    midnight = datetime.combine(date.fromisoformat(report_date), time(0), LOCAL_TZ)
    return (_local(received_at) - midnight).total_seconds()


def _clock(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
