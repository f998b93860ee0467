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
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, text

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


class UnknownUnit(KeyError):
    """A unit code the registry does not list."""


def default_range(today: date, days: int = 14) -> tuple[date, date]:
    """The board's default columns: the `days` report dates ending today."""
    return today - timedelta(days=max(days, 1) - 1), today


def board_status(store_status: str | None, excused: bool) -> str:
    """A cell's status from the unit's stored verdict and whether an operator excused it; no verdict: pending."""
    if store_status in (None, "missing", "received") and excused:
        return "absent"  # an operator's 标记缺报 stands until the unit sends after all
    return _STORE_STATUS.get(store_status or "", "pending")


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


@dataclass(frozen=True)
class _Cell:
    status: str
    detail: str
    received_at: str | None
    file_name: str | None
    receipt_sent_at: str | None
    reminders_sent: int
    late: bool


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
        queries = load_queries(sql_dir or PROJECT_ROOT / "include" / "sql")
        self._queries = {name: text(sql) for name, sql in queries.items() if name.startswith("board_")}
        self._catalogue = catalogue
        self._metric_labels: dict[str, str] | None = None
        self._metric_order: dict[str, int] = {}

    def dispose(self) -> None:
        self.engine.dispose()

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
        cells: dict[tuple[str, str], _Cell] = {}
        editions: dict[str, list[dict]] = {d: [] for d in dates}
        for row in self._rows("board_matrix", {"first_date": dates[0], "last_date": dates[-1]}):
            if row["tag"] == "edition":
                editions[row["report_date"]].append(_edition(row))
            else:
                cells[(row["report_date"], row["unit_code"])] = self._cell(row)
        pending = _Cell("pending", "", None, None, None, 0, False)
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
                    cell = cells.get((d, code), pending)
                    day_counts[d][cell.status] += 1
                    group_counts[d][cell.status] += 1
                    if shown:
                        shown_counts[d][cell.status] += 1
                        row_cells.append(_cell_json(d, cell))
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
        for rows in editions.values():
            rows.sort(key=lambda e: e["edition_no"])
        return {
            "first": dates[0],
            "last": dates[-1],
            "today": now_local.date().isoformat(),
            "now": now_local.isoformat(timespec="seconds"),
            "cutoff": self.cutoff,
            "dates": dates,
            "statuses": STATUSES,
            "days": [
                {"date": d, "counts": day_counts[d], "shown_counts": shown_counts[d], "editions": editions[d]}
                for d in dates
            ],
            "groups": groups,
            "totals": {"units": total_units, "shown_units": shown_units},
        }

    def _cell(self, row: dict) -> _Cell:
        status = board_status(row["status"], row["excusal_reason"] is not None)
        detail = row["detail"] or ""
        if status == "absent" and not detail and row["excusal_reason"]:
            detail = row["excusal_reason"]
        first = _local(row["first_received_at"])
        return _Cell(
            status=status,
            detail=detail,
            received_at=row["received_at"],
            file_name=row["file_name"],
            receipt_sent_at=row["receipt_sent_at"],
            reminders_sent=int(row["reminders_sent"] or 0),
            late=first is not None and first > _cutoff_at(row["report_date"], self.cutoff),
        )

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
        for row in self._rows("board_unit_day", {"report_date": day, "unit_code": unit_code}):
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
        per_unit: dict[str, dict[str, dict]] = {}
        for row in self._rows("board_punctuality", {"first_date": first.isoformat(), "last_date": last.isoformat()}):
            day = per_unit.setdefault(row["unit_code"], {}).setdefault(row["report_date"], {})
            if row["tag"] == "day":
                day["status"] = row["status"]
            elif row["tag"] == "files":
                day["first_received_at"] = row["first_received_at"]
                day["rejected_files"] = int(row["rejected_files"] or 0)
            else:
                day["excused"] = True
        result = []
        for unit in self.registry.all_units:
            counts = dict.fromkeys(("days", "on_time", "late", "missing", "rejected", "absent", "rejected_files"), 0)
            offsets = []
            for report_date, day in sorted(per_unit.get(unit.code, {}).items()):
                status = board_status(day.get("status"), day.get("excused", False))
                counts["rejected_files"] += day.get("rejected_files", 0)
                counts["missing"] += status == "missing"
                counts["rejected"] += status == "rejected"
                counts["absent"] += status == "absent"
                arrived = _local(day.get("first_received_at"))
                if arrived is None:
                    counts["days"] += status == "missing"
                    continue
                counts["days"] += 1
                on_time = arrived <= _cutoff_at(report_date, self.cutoff)
                counts["on_time" if on_time else "late"] += 1
                midnight = datetime.combine(date.fromisoformat(report_date), time(0), LOCAL_TZ)
                offsets.append((arrived - midnight).total_seconds())
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


def _cell_json(report_date: str, cell: _Cell) -> dict:
    return {
        "date": report_date,
        "status": cell.status,
        "label": STATUS_LABELS[cell.status],
        "detail": cell.detail,
        "received_at": cell.received_at,
        "file_name": cell.file_name,
        "receipt_sent_at": cell.receipt_sent_at,
        "reminders_sent": cell.reminders_sent,
        "late": cell.late,
    }


def _edition(row: dict) -> dict:
    if row["sent_at"] is not None:
        state = "sent"
    elif row["signoff"] == "pending":
        state = "held"
    elif row["signoff"] == "rejected":
        state = "rejected"
    else:
        state = "unsent"
    return {
        "edition_no": int(row["edition_no"]),
        "kind": row["edition_kind"],
        "kind_label": EDITION_KIND_LABELS.get(row["edition_kind"], row["edition_kind"]),
        "state": state,
        "state_label": EDITION_STATE_LABELS[state],
        "sent_at": row["sent_at"],
        "recipients": [r.strip() for r in (row["recipients"] or "").split(",") if r.strip()],
        "subject": row["subject"],
    }


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


def _clock(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
