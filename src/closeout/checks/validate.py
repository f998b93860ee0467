"""Validation of one batch of submissions: row rules, then the same-day checks of checks.yaml."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from closeout.checks.engine import ROW_RULES, GxRunner, completeness_expectations, row_expectations, run_checks
from closeout.core.catalogue import Catalogue
from closeout.core.findings import blocking
from closeout.core.numbers import render_value
from closeout.intake.submission import Submission


@dataclass(frozen=True)
class Figure:
    """One unit's figure for the day after parts are summed: what the store keeps."""

    metric: str
    value: int | float  # int when whole: exactly what the county wrote
    qualifier: str = ""
    note: str = ""
    source_rows: str = ""  # spreadsheet rows it came from, e.g. "5" or "5,6,7"
    attributed_unit: str = ""


def long_frame(submissions: list[Submission], catalogue: Catalogue) -> pd.DataFrame:
    records = []
    for sub in submissions:
        for r in sub.rows:
            if r.value is None:
                continue
            records.append(
                {
                    "unit_code": sub.unit.code,
                    "file": sub.path.name,
                    "row": r.row,
                    "metric": r.metric,
                    "value": r.value,
                    "raw": r.raw,
                    "part": r.part,
                    "severity": catalogue.by_key[r.metric].severity,
                    "declared_unit": r.declared_unit or None,
                    "declared_date": r.declared_date or None,
                    "report_date": sub.report_date.isoformat(),
                    "is_subtotal": r.is_total,
                }
            )
    frame = pd.DataFrame.from_records(
        records,
        columns=[
            "unit_code",
            "file",
            "row",
            "metric",
            "value",
            "raw",
            "part",
            "severity",
            "declared_unit",
            "declared_date",
            "report_date",
            "is_subtotal",
        ],
    )
    frame["value"] = frame["value"].astype(float)
    frame["fraction"] = frame["value"] % 1
    parts = frame[~frame["is_subtotal"] & (frame["part"] != "")].groupby(["unit_code", "metric"])["value"].sum()
    frame["parts_sum"] = [
        parts.get((u, m)) if sub else None
        for u, m, sub in zip(frame["unit_code"], frame["metric"], frame["is_subtotal"], strict=True)
    ]
    return frame


def validate_batch(
    submissions: list[Submission], catalogue: Catalogue, runner: GxRunner, keep: list | None = None
) -> None:
    """Add validation findings to each submission (in place). GX runs once for the whole batch; `keep`
    collects GX's validation results (for the day's Data Docs)."""
    by_unit = {sub.unit.code: sub for sub in submissions}
    frame = long_frame(submissions, catalogue)
    for failure in runner.failures(frame, row_expectations(runner.gx), "validate-rows", keep):
        rule = failure.meta["rule"]
        for index in failure.indices:
            row = frame.iloc[index]
            sub = by_unit[row["unit_code"]]
            metric = catalogue.by_key[row["metric"]]
            message = ROW_RULES[rule]
            if rule == "subtotal_mismatch":
                message += f"（分项之和为{render_value(row['parts_sum'])}）"
            if rule in ("unit_code_mismatch", "report_date_mismatch"):
                declared = row["declared_unit"] if rule == "unit_code_mismatch" else row["declared_date"]
                message += f"（文件内写的是{declared}）"
            sub.finding(
                "hard", rule, message, row=int(row["row"]), metric=metric.display, value=row["raw"], stage="validate"
            )
    for sub in submissions:
        for r in sub.rows:
            if r.value is None:
                state = "填报为“不详”（按未知处理，不计为0）" if r.missing == "unknown" else "未填写数值"
                sub.finding(
                    "missing",
                    f"value_{r.missing}",
                    state,
                    row=r.row,
                    metric=catalogue.by_key[r.metric].display,
                    value=r.raw,
                    stage="validate",
                )
    _check_completeness(submissions, catalogue, runner, keep)
    same_day = [c for c in catalogue.checks if c.stage == "validate"]
    wide = pd.DataFrame.from_dict(
        {sub.unit.code: {f.metric: f.value for f in collapse(sub)} for sub in submissions},
        orient="index",
        columns=[m.key for m in catalogue.metrics],
    )
    names = {sub.unit.code: sub.unit.name for sub in submissions}
    report_date = submissions[0].report_date if submissions else None
    for finding in run_checks(runner, wide, same_day, catalogue, report_date, names, "validate", keep):
        sub = by_unit[finding.unit_code]
        sub.findings.append(replace(finding, file=sub.path.name))


def _check_completeness(
    submissions: list[Submission], catalogue: Catalogue, runner: GxRunner, keep: list | None
) -> None:
    """缺项: every required metric must be reported; "不详" counts as reported (unknown is not missing).

    A metric already named by another finding of the file (a value that could not be read) is not listed
    again, and a file that could not be read at all gets no 缺项 line on top of its refusal."""
    required = [m for m in catalogue.metrics if m.required]
    records = []
    for sub in submissions:
        if not sub.unit.required or (not sub.rows and blocking(sub.findings)):
            continue  # an optional unit (市本级) reports only what it runs
        reported = {r.metric for r in sub.rows if r.value is not None or r.missing == "unknown"}
        named = {f.metric.split("(")[0] for f in blocking(sub.findings) if f.metric}
        for metric in required:
            if metric.key not in named:
                records.append({"unit_code": sub.unit.code, "metric": metric.key, "reported": metric.key in reported})
    frame = pd.DataFrame.from_records(records, columns=["unit_code", "metric", "reported"])
    missing: dict[str, list[str]] = {}
    for failure in runner.failures(frame, completeness_expectations(runner.gx), "validate-completeness", keep):
        for index in failure.indices:
            missing.setdefault(frame.iloc[index]["unit_code"], []).append(frame.iloc[index]["metric"])
    by_unit = {sub.unit.code: sub for sub in submissions}
    for code, keys in missing.items():
        labels = "、".join(catalogue.by_key[k].label for k in keys)
        by_unit[code].finding(
            "hard",
            "missing_metrics",
            f"缺项：未报送{labels}（共{len(keys)}项）；没有发生的填 0，不清楚的填“不详”，不要空着或删去该行",
            metric=",".join(keys),
            stage="validate",
        )


def collapse(sub: Submission) -> list[Figure]:
    """Sum parts per metric (subtotal rows were checked, not added), in catalogue order of first row."""
    merged: dict[str, list] = {}
    for r in sub.rows:
        if r.value is None or r.is_total:
            continue
        merged.setdefault(r.metric, []).append(r)
    figures = []
    for metric, rows in merged.items():
        figures.append(
            Figure(
                metric=metric,
                value=sum(r.value for r in rows),
                qualifier=next((r.qualifier for r in rows if r.qualifier), ""),
                note="；".join(r.note for r in rows if r.note),
                source_rows=",".join(str(r.row) for r in rows),
                attributed_unit=next((r.attributed_unit for r in rows if r.attributed_unit), ""),
            )
        )
    return figures
