"""Collection: find the day's files in the inbox and read them into rows, whatever the county sent."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from closeout.catalogue import Catalogue, normalise_label
from closeout.findings import Finding
from closeout.numbers import ValueProblem, clean_text, parse_report_date, parse_value, render_value
from closeout.registry import Registry, Unit

FIGURE_SUFFIXES = (".csv", ".xlsx")
NARRATIVE_SUFFIX = ".md"
# utf-8-sig reads UTF-8 with or without a BOM. GBK bytes (almost) never decode as UTF-8, while UTF-8
# bytes decode "successfully" as GBK into mojibake: so UTF-8 first, then GB18030 (a superset of GBK).
ENCODINGS = ("utf-8-sig", "gb18030")
HEADER_SCAN_ROWS = 10
COLUMN_ALIASES = {
    "metric": ("metric", "指标", "指标名称", "项目", "统计指标"),
    "value": ("value", "数值", "数量", "数据", "本日", "当日", "当日数"),
    "unit_code": ("unit_code", "单位代码", "区划代码", "行政区划代码", "报送单位"),
    "report_date": ("report_date", "日期", "报告日期", "统计日期", "填报日期"),
    "note": ("note", "备注", "说明"),
    "part": ("part", "分项", "乡镇", "乡镇(街道)", "片区"),
    "attributed_unit": ("attributed_unit", "归属单位", "通报单位"),
}
HEADER_LOOKUP = {normalise_label(alias): column for column, aliases in COLUMN_ALIASES.items() for alias in aliases}
TOTAL_WORDS = ("合计", "小计", "总计")
INSTRUCTION_WORDS = ("填表说明", "说明：", "说明:", "注：", "注:", "备注：")


@dataclass
class DayInbox:
    report_date: date
    figure_files: dict[str, list[Path]] = field(default_factory=dict)
    narratives: dict[str, Path] = field(default_factory=dict)
    unmatched: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class FigureRow:
    row: int  # the row number the county sees in its spreadsheet (1-based)
    metric: str
    value: float | None
    qualifier: str
    raw: str
    note: str = ""
    part: str = ""
    missing: str = ""  # "blank" or "unknown" when value is None
    declared_unit: str = ""  # unit code written in the file, resolved through the registry
    declared_date: str = ""  # ISO date written in the file
    attributed_unit: str = ""


@dataclass
class Submission:
    unit: Unit
    path: Path
    report_date: date
    rows: list[FigureRow] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def finding(
        self,
        severity: str,
        rule: str,
        message: str,
        row: int | None = None,
        metric: str = "",
        value="",
        stage: str = "load",
    ) -> None:
        self.findings.append(
            Finding(
                self.report_date,
                self.unit.code,
                self.unit.name,
                severity,
                stage,
                rule,
                message,
                file=self.path.name,
                row=row,
                metric=metric,
                value=str(value),
            )
        )


@dataclass(frozen=True)
class Narrative:
    headline: str
    byline: str
    paragraphs: tuple[str, ...]


def discover(inbox: Path, report_date: date, registry: Registry) -> DayInbox:
    day = DayInbox(report_date)
    folder = inbox / report_date.isoformat()
    if not folder.is_dir():
        return day
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith((".", "~$")):
            continue
        unit = registry.resolve(path.stem)
        if unit is None:
            day.unmatched.append(path)
        elif path.suffix.lower() == NARRATIVE_SUFFIX:
            day.narratives[unit.code] = path
        else:  # an .xls or .et under a unit's name is that unit's report in a format to refuse clearly
            day.figure_files.setdefault(unit.code, []).append(path)
    return day


def decode_bytes(data: bytes) -> tuple[str, str]:
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise UnicodeDecodeError("gb18030", data, 0, len(data), "not UTF-8 or GB18030")


def read_cells(path: Path) -> list[list[object]]:
    """Rows of raw cells: strings from CSV, typed values (numbers, datetimes) from XLSX."""
    if path.suffix.lower() == ".xlsx":
        import openpyxl

        workbook = openpyxl.load_workbook(path, data_only=True, read_only=True)
        try:
            sheet = workbook.worksheets[0]
            return [list(row) for row in sheet.iter_rows(values_only=True)]
        finally:
            workbook.close()
    text, _ = decode_bytes(path.read_bytes())
    return [list(row) for row in csv.reader(io.StringIO(text))]


def read_narrative(path: Path) -> Narrative:
    text, _ = decode_bytes(path.read_bytes())
    lines = [line.strip() for line in text.splitlines()]
    headline = lines[0].lstrip("#").strip() if lines else ""
    byline = lines[1] if len(lines) > 1 else ""
    paragraphs = tuple(line for line in lines[2:] if line)
    return Narrative(headline, byline, paragraphs)


def _cell(value: object) -> str:
    return "" if value is None else clean_text(value)


def _find_header(rows: list[list[object]]) -> tuple[int, dict[str, int], int] | None:
    """The header row → column positions; rows under it that hold only header names (merged multi-row
    headers) are folded in. Returns the index of the last header row, the columns and the header's width."""
    for index, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        columns = _header_columns(row)
        if "metric" not in columns:
            continue
        width = _width(row)
        while index + 1 < len(rows) and _is_header_continuation(rows[index + 1]):
            index += 1
            width = max(width, _width(rows[index]))
            for column, position in _header_columns(rows[index]).items():
                columns.setdefault(column, position)
        return index, columns, width
    return None


def _width(row: list[object]) -> int:
    return max((i + 1 for i, v in enumerate(row) if _cell(v)), default=0)


def _is_header_continuation(row: list[object]) -> bool:
    cells = [_cell(v) for v in row if _cell(v)]
    return bool(cells) and all(normalise_label(c) in HEADER_LOOKUP for c in cells)


def _header_columns(row: list[object]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for position, value in enumerate(row):
        column = HEADER_LOOKUP.get(normalise_label(_cell(value)))
        if column and column not in columns:
            columns[column] = position
    return columns


def parse_submission(path: Path, unit: Unit, report_date: date, catalogue: Catalogue, registry: Registry) -> Submission:
    submission = Submission(unit, path, report_date)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        submission.finding(
            "hard",
            "unsupported_format",
            f"不支持 {path.suffix or '无扩展名'} 文件，请另存为 .xlsx 或 .csv（UTF-8/GBK）后重报",
        )
        return submission
    try:
        rows = read_cells(path)
    except UnicodeDecodeError:
        submission.finding("hard", "unreadable_encoding", "文件编码既非 UTF-8 也非 GBK/GB18030，无法读取")
        return submission
    except Exception as exc:  # a corrupt workbook must not stop the other units
        submission.finding("hard", "unreadable_file", f"文件无法打开（{type(exc).__name__}: {exc}）")
        return submission
    header = _find_header(rows)
    if header is None:
        submission.finding("hard", "missing_header", "找不到表头：需要“指标”(metric) 和“数值”(value) 两列")
        return submission
    header_index, columns, width = header
    if "value" not in columns:
        submission.finding("hard", "missing_header", "表头缺少“数值”(value) 列", row=header_index + 1)
        return submission

    def get(row: list[object], column: str) -> object:
        position = columns.get(column)
        return row[position] if position is not None and position < len(row) else None

    for index in range(header_index + 1, len(rows)):
        row, line = rows[index], index + 1
        cells = [_cell(v) for v in row]
        if not any(cells):
            continue  # spacer row
        first = next(c for c in cells if c)
        if first.startswith(INSTRUCTION_WORDS):
            break  # the instructions block closes the data
        label, part = _cell(get(row, "metric")), _cell(get(row, "part"))
        raw_value = get(row, "value")
        beyond = [c for c in cells[width:] if c]
        if beyond:  # "采样人次,118,420": an unquoted thousands separator would silently load 118
            submission.finding(
                "hard",
                "cells_beyond_header",
                f"表头以外还有内容“{'、'.join(beyond)}”：数值里的千分位逗号须去掉或整格加引号",
                row=line,
                metric=label,
                value=",".join([_cell(raw_value), *beyond]),
            )
            continue
        if label in TOTAL_WORDS and not part:
            continue  # a 合计 row over different metrics means nothing in long format
        if not label:
            submission.finding("hard", "missing_metric_name", "指标名称为空", row=line, value=_cell(raw_value))
            continue
        metric = catalogue.resolve(label)
        if metric is None:
            submission.finding(
                "hard",
                "unknown_metric",
                "指标不在目录中（见 docs/submission-format.md）",
                row=line,
                metric=label,
                value=_cell(raw_value),
            )
            continue
        try:
            parsed = parse_value(raw_value, metric, catalogue)
        except ValueProblem as problem:
            submission.finding(
                "hard", problem.rule, problem.detail, row=line, metric=metric.display, value=_cell(raw_value)
            )
            continue
        declared_unit = _cell(get(row, "unit_code"))
        if declared_unit:
            resolved = registry.resolve(declared_unit)
            declared_unit = resolved.code if resolved else declared_unit
        attributed = _cell(get(row, "attributed_unit"))
        if attributed:
            resolved = registry.resolve(attributed)
            if resolved is None:
                submission.finding(
                    "hard", "unknown_unit", "归属单位不在名录中", row=line, metric=metric.display, value=attributed
                )
                continue
            attributed = resolved.code
        try:
            declared_date = parse_report_date(get(row, "report_date"))
        except ValueError as exc:
            submission.finding(
                "hard", "bad_date", str(exc), row=line, metric=metric.display, value=_cell(get(row, "report_date"))
            )
            continue
        submission.rows.append(
            FigureRow(
                row=line,
                metric=metric.key,
                value=parsed.value,
                qualifier=parsed.qualifier,
                raw=_cell(raw_value) if not isinstance(raw_value, int | float) else render_value(parsed.value),
                note=_cell(get(row, "note")),
                part=part,
                missing=parsed.missing,
                declared_unit=declared_unit,
                declared_date=declared_date.isoformat() if declared_date else "",
                attributed_unit=attributed,
            )
        )
    if not submission.rows and not submission.findings:
        submission.finding("hard", "empty_file", "文件中没有任何指标行")
    return submission
