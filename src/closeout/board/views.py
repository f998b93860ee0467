"""The 日清日结看板 (close-out board)'s views: the unit × day matrix, one unit-day, punctuality (and its CSV), built
from the rows closeout.board.queries reads. `BoardReader` is what the web app (closeout.board.web) uses.

Like the queries it imports no pandas, no Great Expectations and no Airflow (tests/integration/test_board_data.py checks that in
a fresh interpreter). Every value returned is JSON-serialisable: dates 'YYYY-MM-DD', times ISO strings in
Asia/Shanghai.

Figures before publication (docs/operations.md, "看板的查看权限 · Who sees what on the board"): until a day's
bulletin has been sent (a `delivery` row with status 'sent' for that report date), what a county reported is not
public. `matrix` and `unit_day` take `can_see_unpublished` (the web app passes whether the user is Closeout Ops);
without it, an unpublished day shows each unit's status, arrival, files (name, size, hash, status) and counts, but
no figure, revision, finding line, file reason or verdict text. The one place that decides is `_shown`.
"""

from __future__ import annotations

import statistics
from datetime import date, datetime, time, timedelta

from closeout.board.queries import (
    FACT_DETAIL,
    FACT_EXCUSAL,
    FACT_FILE_NAME,
    FACT_FIRST_RECEIVED,
    FACT_LATEST_RECEIVED,
    FACT_RECEIPT_SENT,
    FACT_REMINDERS,
    FACT_STATUS,
    BoardData,
    archived_size,
    new_facts,
    stored_number,
    stored_time,
)
from closeout.core.clock import LOCAL_TZ
from closeout.core.registry import Unit
from closeout.core.vocabulary import EditionKind, RevisionKind, SignoffDecision, Stage, UnitStatus

# The board's six cell statuses (a view of the store's UnitStatus, below). Okabe–Ito colours (distinguishable with
# the common colour-vision deficiencies); black text reads on each of them (contrast ≥ 4.5:1), and the label is
# always shown beside the colour.
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
    UnitStatus.CLEARED: "cleared",
    UnitStatus.LOADED: "open",
    UnitStatus.BREAK: "open",
    UnitStatus.REJECTED: "rejected",
    UnitStatus.MISSING: "missing",
    UnitStatus.ABSENT: "absent",
    UnitStatus.EXCUSED: "absent",
    UnitStatus.RECEIVED: "pending",
}
EDITION_STATE_LABELS = {"held": "待签发", "rejected": "已驳回", "sent": "已发送", "unsent": "未发送"}
_FINDING_STAGES = {stage: n for n, stage in enumerate(Stage)}  # load, validate, reconcile, narrative


class UnknownUnit(KeyError):
    """A unit code the registry does not list."""


def default_range(today: date, days: int = 14) -> tuple[date, date]:
    """The board's default columns: the `days` report dates ending today."""
    return today - timedelta(days=max(days, 1) - 1), today


def board_status(store_status: str | None, excused: bool) -> str:
    """A cell's status from the unit's stored verdict and whether an operator excused it; no verdict: pending."""
    if store_status in (None, UnitStatus.MISSING, UnitStatus.RECEIVED) and excused:
        return "absent"  # an operator's 标记缺报 stands until the unit sends after all
    return _STORE_STATUS.get(store_status or "", "pending")


# board_status for every status the pipeline writes, looked up once per cell instead of computed
_BOARD_STATUS = {
    (stored, excused): board_status(stored, excused) for stored in (None, *_STORE_STATUS) for excused in (False, True)
}


class BoardReader(BoardData):
    """The board's views over what it reads (closeout.board.queries.BoardData, whose constructors it has):
    `BoardReader(db_url, registry, cutoff, *, sql_dir=None, catalogue=None)` or `BoardReader.from_env()`."""

    # --- the matrix -------------------------------------------------------------------------------------------

    def matrix(
        self,
        first: date,
        last: date,
        now: datetime,
        group: str | None = None,
        search: str | None = None,
        *,
        can_see_unpublished: bool = True,
    ) -> dict:
        """The unit × day board for first..last (inclusive); `group` keeps one group, `search` units whose name or
        code contains it. Day and group counts cover every unit of the registry (of the group), filtered or not;
        `shown_counts` covers the units shown. Without `can_see_unpublished`, a cell of a day not yet published has
        no `detail` (an operator's 标记缺报 reason excepted), and `figures_hidden` says so."""
        if last < first:
            first, last = last, first
        dates = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
        facts, edition_rows = self.day_facts(dates[0], dates[-1])
        editions = {
            d: sorted((_edition(*e) for e in edition_rows.get(d, [])), key=lambda e: e["edition_no"]) for d in dates
        }
        published = {d: any(e["state"] == "sent" for e in editions[d]) for d in dates}
        shown = {d: _shown(published[d], can_see_unpublished) for d in dates}
        cutoffs = {d: self.cutoff_text(d) for d in dates}
        nothing = new_facts()
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
                unit_shown = (group is None or unit_group.key == group) and (
                    not needle or needle in unit.code or needle in unit.name.lower()
                )
                row_cells = []
                for d in dates:
                    fact = facts.get((d, code), nothing)
                    excused = fact[FACT_EXCUSAL] is not None
                    stored = fact[FACT_STATUS]
                    status = _BOARD_STATUS.get((stored, excused)) or board_status(stored, excused)
                    day_counts[d][status] += 1
                    group_counts[d][status] += 1
                    if not unit_shown:
                        continue
                    shown_counts[d][status] += 1
                    first_received = fact[FACT_FIRST_RECEIVED]
                    detail = fact[FACT_DETAIL] if shown[d] else ""  # the verdict's text may quote figures
                    row_cells.append(
                        {
                            "date": d,
                            "status": status,
                            "label": STATUS_LABELS[status],
                            "detail": detail or (fact[FACT_EXCUSAL] or "" if status == "absent" else ""),
                            "received_at": fact[FACT_LATEST_RECEIVED],
                            "file_name": fact[FACT_FILE_NAME],
                            "receipt_sent_at": fact[FACT_RECEIPT_SENT],
                            "reminders_sent": fact[FACT_REMINDERS],
                            "late": first_received is not None and self.late(d, first_received, cutoffs[d]),
                        }
                    )
                if unit_shown:
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
                    "editions": editions[d],
                    "published": published[d],
                }
                for d in dates
            ],
            "groups": groups,
            "totals": {"units": total_units, "shown_units": shown_units},
            "figures_hidden": not all(shown.values()),
        }

    # --- one unit-day -----------------------------------------------------------------------------------------

    def unit_day(self, report_date: date, unit_code: str, *, can_see_unpublished: bool = True) -> dict:
        """What the board shows when a cell is opened: verdict, files, findings, figures, revisions, notices.
        Raises UnknownUnit for a code the registry does not list. Without `can_see_unpublished`, a day not yet
        published has no verdict text (an operator's 标记缺报 reason excepted), file reasons, findings, figures or
        revisions; `figures_hidden` says so and `hidden` counts what was withheld."""
        try:
            unit = self.registry.get(unit_code)
        except KeyError:
            raise UnknownUnit(unit_code) from None
        day = report_date.isoformat()
        by_tag = self.unit_day_rows(day, unit_code)
        verdict = (by_tag.get("day") or [{}])[0]
        excusal = (by_tag.get("excusal") or [None])[0]
        status = board_status(verdict.get("status"), excusal is not None)
        published = bool(by_tag.get("published"))
        shown = _shown(published, can_see_unpublished)
        detail = (verdict.get("detail") or "") if shown else ""
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
        hidden = {"findings": 0, "figures": 0, "revisions": 0}
        if not shown:
            hidden = {"findings": len(findings), "figures": len(figures), "revisions": len(revisions)}
            findings, figures, revisions = [], [], []
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
            "published": published,
            "figures_hidden": not shown,
            "hidden": hidden,
            "files": [_file_json(r, reasons=shown) for r in files],
            "findings": [
                {key: r[key] for key in ("stage", "severity", "rule", "metric", "row_no", "line", "file_name")}
                for r in findings
            ],
            "figures": [
                {
                    "metric": r["metric"],
                    "label": labels.get(r["metric"], r["metric"]),
                    "value": stored_number(r["value"]),
                    "qualifier": r["qualifier"] or "",
                    "note": r["note"] or "",
                    "source_sha256": r["sha256"],
                }
                for r in figures
            ],
            "revisions": [_revision_json(r, labels) for r in revisions],
            "notices": [
                {"kind": r["kind"], "status": r["status"], "subject": r["subject"], "sent_at": r["at"]} for r in notices
            ],
        }

    # --- punctuality ------------------------------------------------------------------------------------------

    def punctuality(self, first: date, last: date) -> list[dict]:
        """Per unit (code order) over first..last: days it had to report (a file came, or it was 缺报), on time
        (first file at or before the cutoff), late, 缺报, days ending rejected, days excused or absent, and the
        median time of the day's first file ("HH:MM" local; hours past 24 for a file after midnight)."""
        if last < first:
            first, last = last, first
        days = self.punctuality_days(first.isoformat(), last.isoformat())
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
                counts["late" if self.late(report_date, arrived) else "on_time"] += 1
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


def _unit_json(unit: Unit, group_key: str) -> dict:
    return {"code": unit.code, "name": unit.name, "label": unit.label, "group": group_key, "required": unit.required}


def _edition(
    signoff: str | None, edition_no: int, kind: str, subject: str, sent_at: str | None, recipients: str | None
) -> dict:
    """An edition's state: sent (a delivery went out), else held (sign-off pending), rejected, or unsent."""
    if sent_at is not None:
        state = "sent"
    elif signoff == SignoffDecision.PENDING:
        state = "held"
    elif signoff == SignoffDecision.REJECTED:
        state = "rejected"
    else:
        state = "unsent"
    return {
        "edition_no": edition_no,
        "kind": kind,
        "kind_label": EditionKind.label_of(kind),
        "state": state,
        "state_label": EDITION_STATE_LABELS[state],
        "sent_at": sent_at,
        "recipients": [r.strip() for r in (recipients or "").split(",") if r.strip()],
        "subject": subject,
    }


def _shown(published: bool, can_see_unpublished: bool) -> bool:
    """Whether a day's figures, findings and verdict text may be shown: to Ops always, to everyone once the day's
    bulletin has been sent (docs/operations.md, "看板的查看权限 · Who sees what on the board")."""
    return published or can_see_unpublished


def _file_json(row: dict, reasons: bool = True) -> dict:
    return {
        "file_name": row["file_name"],
        "size": archived_size(row["archived_path"]),
        "sha256": row["sha256"],
        "received_at": row["at"],
        "status": row["status"],
        "reasons": [line for line in (row["reason"] or "").splitlines() if line] if reasons else [],
        "archived_path": row["archived_path"],
    }


def _revision_json(row: dict, labels: dict[str, str]) -> dict:
    return {
        "metric": row["metric"],
        "label": labels.get(row["metric"], row["metric"]) if row["metric"] else "",
        "old_value": stored_number(row["old_value"]),
        "new_value": stored_number(row["new_value"]),
        "old_qualifier": row["note"] or "",
        "new_qualifier": row["qualifier"] or "",
        "kind": row["kind"],
        "kind_label": RevisionKind.label_of(row["kind"]),
        "reason": row["reason"] or "",
        "recorded_by": row["actor"] or "",
        "recorded_at": row["at"],
    }


# --- times of day -------------------------------------------------------------------------------------------------


def _seconds_into(report_date: str, received_at: str) -> float:
    """Seconds from the report date's local midnight to the arrival (over 86,400 for a file after midnight)."""
    if received_at.endswith("+08:00") and received_at.startswith(report_date):  # the store's own form: no parsing
        hours, minutes, seconds = received_at[11:13], received_at[14:16], received_at[17:19]
        return int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    midnight = datetime.combine(date.fromisoformat(report_date), time(0), LOCAL_TZ)
    return (stored_time(received_at) - midnight).total_seconds()


def _clock(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
