"""Collection: find the day's files in the inbox and read them into rows, whatever the county sent.

Every figure that comes out is exactly what the county wrote; whatever the reader cannot account for
(cells under no known column, rows after the instructions, other sheets holding figures, formulas
without results) is a finding, never a silence.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from closeout.catalogue import Catalogue, normalise_label
from closeout.findings import Finding
from closeout.limits import Limits
from closeout.numbers import ValueProblem, clean_text, parse_report_date, parse_value, render_value
from closeout.readers import CellError, FileRefused, FormulaWithoutValue, Sheet, decode_bytes, read_workbook
from closeout.registry import Registry, Unit
from closeout.textclean import printable_name, strip_invisible

FIGURE_SUFFIXES = (".csv", ".xlsx")
NARRATIVE_SUFFIX = ".md"
HEADER_SCAN_ROWS = 10
COLUMN_ALIASES = {
    "metric": ("metric", "指标", "指标名称", "项目", "统计指标"),
    "value": ("value", "数值", "数量", "数据", "本日", "当日", "当日数"),
    "unit_code": ("unit_code", "单位代码", "区划代码", "行政区划代码", "报送单位"),
    "report_date": ("report_date", "日期", "报告日期", "统计日期", "填报日期"),
    "note": ("note", "备注", "说明"),
    "part": ("part", "分项", "乡镇", "乡镇(街道)", "片区"),
    "attributed_unit": ("attributed_unit", "归属单位", "通报单位"),
    "measure": ("measure", "计量单位", "单位"),  # 人/例/万元 …: applies to the value beside it
    "seq": ("seq", "序号", "编号", "行号"),  # row numbers: read and ignored
}
HEADER_LOOKUP = {normalise_label(alias): column for column, aliases in COLUMN_ALIASES.items() for alias in aliases}
# A part (or a metric-column label) naming the whole: checked against the sum of the parts, never added to it.
TOTAL_LABEL = re.compile(
    r"^(?:全(?:县|区|市|镇|乡|街道)|本(?:县|区|市))?(?:合计|小计|总计|共计|汇总|总数|总量|合计数|总计数)?$"
)
INSTRUCTION_WORDS = ("填表说明", "说明：", "说明:", "注：", "注:", "备注：")
SPLIT_THOUSANDS_HEAD = re.compile(r"^-?\d{1,3}$")
SPLIT_THOUSANDS_TAIL = re.compile(r"^\d{3}$")
MAX_FINDINGS_PER_FILE = 50  # past that, one line says how many more: a bad file can't flood the store


def is_total_label(text: str, unit: Unit | None = None) -> bool:
    key = normalise_label(text)
    if not key:
        return False
    if unit is not None and key in {normalise_label(n) for n in (unit.name, unit.slug, *unit.aliases)}:
        return True
    return bool(TOTAL_LABEL.match(key))


@dataclass
class DayInbox:
    report_date: date
    figure_files: dict[str, list[Path]] = field(default_factory=dict)
    narratives: dict[str, Path] = field(default_factory=dict)
    unmatched: list[Path] = field(default_factory=list)
    refused_folder: str = ""  # why the day's folder itself was not read (a link, or outside the inbox)


@dataclass(frozen=True)
class FigureRow:
    row: int  # the row number the county sees in its spreadsheet (1-based)
    metric: str
    value: int | float | None  # int when whole: exactly what was written
    qualifier: str
    raw: str
    note: str = ""
    part: str = ""
    missing: str = ""  # "blank" or "unknown" when value is None
    declared_unit: str = ""  # unit code written in the file, resolved through the registry
    declared_date: str = ""  # ISO date written in the file
    attributed_unit: str = ""
    is_total: bool = False  # a 合计/全县 row or a whole beside its parts: checked against the parts, not added


@dataclass
class Submission:
    unit: Unit
    path: Path
    report_date: date
    rows: list[FigureRow] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    overflow: int = 0  # findings past MAX_FINDINGS_PER_FILE, counted, not stored

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
        if stage == "load" and len(self.findings) >= MAX_FINDINGS_PER_FILE:
            self.overflow += 1
            return
        self.findings.append(
            Finding(
                self.report_date,
                self.unit.code,
                self.unit.name,
                severity,
                stage,
                rule,
                message,
                file=printable_name(self.path.name),
                row=row,
                metric=metric,
                value=_shown(value),
            )
        )


@dataclass(frozen=True)
class Narrative:
    headline: str
    byline: str
    paragraphs: tuple[str, ...]


def discover(inbox: Path, report_date: date, registry: Registry) -> DayInbox:
    """The day's folder, listed without following anything: links are kept as links (refused when loaded)."""
    day = DayInbox(report_date)
    folder = inbox / report_date.isoformat()
    if folder.is_symlink() or not folder.is_dir() or not _inside(folder, inbox):
        if folder.is_symlink() or (folder.exists() and not _inside(folder, inbox)):
            day.refused_folder = f"收件日期目录 {folder.name} 是链接或指向收件目录以外，不读取"
        return day
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.startswith((".", "~$")) or entry.is_dir(follow_symlinks=False):
                continue
            path = folder / entry.name
            unit = registry.resolve(path.stem)
            if unit is None:
                day.unmatched.append(path)
            elif path.suffix.lower() == NARRATIVE_SUFFIX:
                day.narratives[unit.code] = path
            else:  # an .xls or .et (or a link) under a unit's name is that unit's report, refused clearly
                day.figure_files.setdefault(unit.code, []).append(path)
    return day


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def read_narrative(data: bytes, limits: Limits | None = None) -> tuple[Narrative, list[str]]:
    """The narrative and the invisible/control characters removed from it ("U+0000" codes)."""
    limits = limits or Limits()
    text, _ = decode_bytes(data)
    text, removed = strip_invisible(text, multiline=True)
    if len(text) > limits.max_narrative_chars:
        raise FileRefused(
            "narrative_too_long",
            f"文字稿有 {len(text)} 字，超过上限 {limits.max_narrative_chars} 字：请精简后重报",
        )
    lines = [line.strip() for line in text.splitlines()]
    headline = lines[0].lstrip("#").strip() if lines else ""
    byline = lines[1] if len(lines) > 1 else ""
    paragraphs = tuple(line for line in lines[2:] if line)
    return Narrative(headline, byline, paragraphs), removed


def _shown(value: object) -> str:
    """A value as the clerk typed it, one line, bounded: messages must never carry a whole file."""
    text = printable_name(str(value)).replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "…"


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, FormulaWithoutValue | CellError):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    return clean_text(value)


def _find_header(rows: list[tuple[int, list[object]]]) -> tuple[int, dict[str, int], int] | None:
    """The header row → column positions; rows under it that hold only header names (merged multi-row
    headers) are folded in. Returns the index (in rows) of the last header row, the columns and the width."""
    for index, (_, row) in enumerate(rows[:HEADER_SCAN_ROWS]):
        columns = _header_columns(row)
        if "metric" not in columns:
            continue
        width = _width(row)
        while index + 1 < len(rows) and _is_header_continuation(rows[index + 1][1]):
            index += 1
            width = max(width, _width(rows[index][1]))
            for column, position in _header_columns(rows[index][1]).items():
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


def _holds_figures(rows: list[tuple[int, list[object]]], catalogue: Catalogue) -> bool:
    """Some row names a catalogue metric and carries a number: what a sheet or a trailing block of figures looks like."""
    return any(_row_holds_figure(row, catalogue) for _, row in rows)


def _row_holds_figure(row: list[object], catalogue: Catalogue) -> bool:
    texts = [_cell(v) for v in row]
    names_metric = any(t and catalogue.resolve(t) is not None for t in texts)
    has_number = any(re.search(r"\d", t) for t in texts if t and catalogue.resolve(t) is None)
    return names_metric and has_number


def _choose_sheet(sheets: list[Sheet], catalogue: Catalogue, sub: Submission) -> tuple[Sheet, tuple] | None:
    """The first visible sheet with a header; every other sheet that holds figures is a finding."""
    headed = [(sheet, _find_header(sheet.rows)) for sheet in sheets]
    chosen = next(((s, h) for s, h in headed if h is not None and s.visible), None)
    for sheet, header in headed:
        if chosen is not None and sheet is chosen[0]:
            continue
        if header is not None or _holds_figures(sheet.rows, catalogue):
            hidden = "（隐藏的）" if not sheet.visible else ""
            read = f"，只读了工作表“{chosen[0].name}”" if chosen else "，而可见的工作表里没有表头"
            sub.finding(
                "hard",
                "unread_sheet",
                f"{hidden}工作表“{sheet.name}”里也有数据{read}：一个文件只能有一张数据表，请删去或合并多余的工作表后重报",
            )
    return chosen


def parse_submission(
    path: Path,
    unit: Unit,
    report_date: date,
    catalogue: Catalogue,
    registry: Registry,
    data: bytes | None = None,
    limits: Limits | None = None,
) -> Submission:
    """One county file → its figure rows and findings. `data` is the file's bytes as archived (read here if not given)."""
    limits = limits or Limits()
    submission = Submission(unit, path, report_date)
    suffix = path.suffix.lower()
    if suffix not in FIGURE_SUFFIXES:
        submission.finding(
            "hard",
            "unsupported_format",
            f"不支持 {printable_name(path.suffix) or '无扩展名'} 文件，请另存为 .xlsx 或 .csv（UTF-8/GBK）后重报",
        )
        return submission
    try:
        workbook = read_workbook(path.read_bytes() if data is None else data, suffix, limits)
    except FileRefused as refused:
        submission.finding("hard", refused.rule, refused.message, row=refused.row, value=refused.value)
        return submission
    for note in workbook.notes:
        submission.finding(note.severity, note.rule, note.message, row=note.row, value=note.value)
    chosen = _choose_sheet(workbook.sheets, catalogue, submission)
    if chosen is None:
        if not any(f.rule == "unread_sheet" for f in submission.findings):
            submission.finding("hard", "missing_header", "找不到表头：需要“指标”(metric) 和“数值”(value) 两列")
        return submission
    sheet, (header_index, columns, width) = chosen
    if "value" not in columns:
        submission.finding("hard", "missing_header", "表头缺少“数值”(value) 列", row=sheet.rows[header_index][0])
        return submission
    _read_rows(submission, sheet, header_index, columns, width, catalogue, registry, limits)
    _mark_totals(submission)
    if not submission.rows and not submission.findings:
        submission.finding("hard", "empty_file", "文件中没有任何指标行：请在“指标”“数值”两列下逐行填写后重报")
    if submission.overflow:
        submission.findings.append(
            Finding(
                report_date,
                unit.code,
                unit.name,
                "hard",
                "load",
                "too_many_problems",
                f"另有 {submission.overflow} 处问题未逐条列出：请先改正以上问题后重报",
                file=printable_name(path.name),
            )
        )
    return submission


def _read_rows(sub, sheet, header_index, columns, width, catalogue, registry, limits) -> None:
    csv_sheet = sheet.name == "CSV"
    known = set(columns.values())
    value_position = columns["value"]
    instructions_at: int | None = None

    def get(row: list[object], column: str) -> object:
        position = columns.get(column)
        return row[position] if position is not None and position < len(row) else None

    def column_text(cells: list[str], column: str) -> str:  # _cell(get(row, column)), from the row's cells read once
        position = columns.get(column)
        return cells[position] if position is not None and position < len(cells) else ""

    for line, raw_row in sheet.rows[header_index + 1 :]:
        row = [_visible(sub, line, v) for v in raw_row]
        cells = [_cell(v) for v in row]
        if not any(cells):
            continue  # spacer row
        if instructions_at is not None:
            if _row_holds_figure(row, catalogue):
                sub.finding(
                    "hard",
                    "data_after_instructions",
                    f"第{instructions_at}行的说明之后还有数据：说明行须放在表格最后（或删去），否则其后的数据不会被读入",
                    row=line,
                    metric=next((c for c in cells if c), ""),
                )
            continue
        first = next(c for c in cells if c)
        if first.startswith(INSTRUCTION_WORDS):
            instructions_at = line  # the instructions block closes the data; figures below it are a finding
            continue
        label, part = column_text(cells, "metric"), column_text(cells, "part")
        raw_value = get(row, "value")
        shown_value = _cell(raw_value)
        unplaced = [(i, c) for i, c in enumerate(cells) if c and i not in known]
        split_tail = cells[value_position + 1] if value_position + 1 < len(cells) else ""
        if (
            csv_sheet and SPLIT_THOUSANDS_HEAD.match(shown_value) and SPLIT_THOUSANDS_TAIL.match(split_tail)
        ):  # "志愿者,6,720": the unquoted comma split 6,720 over two columns
            tail = [c for c in cells[value_position + 1 :] if SPLIT_THOUSANDS_TAIL.match(c)]
            sub.finding(
                "hard",
                "unquoted_thousands_separator",
                f"数值中的千分位逗号没有加引号，被拆到了后面的列（读成“{shown_value}”和“{'”“'.join(tail)}”）："
                "请去掉数值里的逗号，或把整个数值用英文双引号括起来后重报",
                row=line,
                metric=label,
                value=",".join([shown_value, *tail]),
            )
            continue
        if unplaced:
            position, text = unplaced[0]
            where = "表头以外" if position >= width else "没有列名（或列名不认识）的列里"
            sub.finding(
                "hard",
                "cells_beyond_header",
                f"{where}还有内容“{'、'.join(c for _, c in unplaced)}”，这些内容没有被读入："
                "请删去，或放到“备注”列；数值里的千分位逗号须去掉或整格加引号",
                row=line,
                metric=label,
                value=text,
            )
            continue
        bad_cells = [v for v in row if isinstance(v, FormulaWithoutValue | CellError)]
        if bad_cells:
            for cell in bad_cells:
                if isinstance(cell, FormulaWithoutValue):
                    sub.finding(
                        "hard",
                        "formula_without_value",
                        f"{cell.coordinate} 是公式，但文件里没有保存计算结果（由程序生成或未重新计算）："
                        "请在 Excel/WPS 中打开后保存，或把公式改为数值后重报",
                        row=line,
                        metric=label,
                        value=cell.coordinate,
                    )
                else:
                    sub.finding(
                        "hard",
                        "formula_error",
                        f"{cell.coordinate} 是错误值 {cell.text}（公式出错）：请改正公式或填入数值后重报",
                        row=line,
                        metric=label,
                        value=cell.text,
                    )
            continue
        if is_total_label(label) and not part:
            continue  # a 合计 row over different metrics means nothing in long format
        if not label:
            sub.finding("hard", "missing_metric_name", "指标名称为空", row=line, value=shown_value)
            continue
        metric = catalogue.resolve(label)
        if metric is None:
            sub.finding(
                "hard",
                "unknown_metric",
                "指标不在目录中（见 docs/submission-format.md）",
                row=line,
                metric=label,
                value=shown_value,
            )
            continue
        measure = column_text(cells, "measure")
        to_parse = (
            f"{shown_value}{measure}"
            if measure and shown_value and not re.search(r"[^\d.,\-万亿]", shown_value)
            else raw_value
        )
        try:
            parsed = parse_value(to_parse, metric, catalogue, limits.max_value)
        except ValueProblem as problem:
            sub.finding("hard", problem.rule, problem.detail, row=line, metric=metric.display, value=shown_value)
            continue
        note = _cell_text(get(row, "note"))
        if len(note) > limits.max_note_chars:
            sub.finding(
                "hard",
                "note_too_long",
                f"备注有 {len(note)} 字，超过上限 {limits.max_note_chars} 字：请精简（详细情况可写在文字稿 .md 中）后重报",
                row=line,
                metric=metric.display,
                value=note[:20] + "…",
            )
            continue
        declared_unit = column_text(cells, "unit_code")
        if declared_unit:
            resolved = registry.resolve(declared_unit)
            declared_unit = resolved.code if resolved else declared_unit
        attributed = column_text(cells, "attributed_unit")
        if attributed:
            resolved = registry.resolve(attributed)
            if resolved is None:
                sub.finding(
                    "hard", "unknown_unit", "归属单位不在名录中", row=line, metric=metric.display, value=attributed
                )
                continue
            attributed = resolved.code
        try:
            declared_date = parse_report_date(get(row, "report_date"))
        except ValueError as exc:
            sub.finding(
                "hard", "bad_date", str(exc), row=line, metric=metric.display, value=column_text(cells, "report_date")
            )
            continue
        sub.rows.append(
            FigureRow(
                row=line,
                metric=metric.key,
                value=parsed.value,
                qualifier=parsed.qualifier,
                raw=shown_value if isinstance(raw_value, str) or raw_value is None else render_value(parsed.value),
                note=note,
                part=part,
                missing=parsed.missing,
                declared_unit=declared_unit,
                declared_date=declared_date.isoformat() if declared_date else "",
                attributed_unit=attributed,
            )
        )


def _cell_text(value: object) -> str:
    """A free-text cell (a note) as written, trimmed, NFKC-free: notes are published as the county wrote them."""
    return "" if value is None else str(value).strip()


def _visible(sub: Submission, line: int, value: object) -> object:
    """A text cell without control/invisible characters; removing any is a soft finding naming them."""
    if not isinstance(value, str):
        return value
    clean, removed = strip_invisible(value)
    if removed:
        sub.finding(
            "soft",
            "invisible_characters",
            f"单元格里有不可见字符或控制字符（{'、'.join(removed)}），已删除后读入；请核对该行",
            row=line,
            value=clean,
        )
    return clean


def _mark_totals(sub: Submission) -> None:
    """Rows that state a whole — a 合计/全县 part, or a row without a part beside part rows of the same metric —
    are checked against the sum of the parts and never added to it."""
    with_parts = {r.metric for r in sub.rows if r.part and not is_total_label(r.part, sub.unit)}
    marked = []
    for r in sub.rows:
        whole = (r.part and is_total_label(r.part, sub.unit)) or (
            not r.part and not r.attributed_unit and r.metric in with_parts
        )
        marked.append(FigureRow(**{**r.__dict__, "is_total": bool(whole)}) if whole else r)
    sub.rows = marked
