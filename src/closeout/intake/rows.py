"""Reading one county file into figure rows: the sheet with the header, the header's columns, and every row
under it, whatever the county sent.

Every figure that comes out is exactly what the county wrote; whatever the reader cannot account for
(cells under no known column, rows after the instructions, other sheets holding figures, formulas
without results, a 累计 column it does not read, a note cut to its limit) is a finding, never a silence.
A CSV whose last row is cut (no line break at the end, fewer cells than the header) is still being
written, or its transfer broke: it is refused whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from closeout.core.catalogue import Catalogue, Metric, normalise_label
from closeout.core.findings import Finding
from closeout.core.limits import Limits
from closeout.core.numbers import ParsedValue, ValueProblem, parse_report_date, parse_value, render_value
from closeout.core.registry import Registry, Unit
from closeout.core.textclean import printable_name, strip_invisible
from closeout.intake.files import FileRefused
from closeout.intake.headers import choose_sheet, row_holds_figure
from closeout.intake.spreadsheets import CellError, CellTooLong, FormulaWithoutValue, Sheet, Workbook, read_workbook
from closeout.intake.submission import FigureRow, Submission, cell_text

FIGURE_SUFFIXES = (".csv", ".xlsx")
# A part (or a metric-column label) naming the whole: checked against the sum of the parts, never added to it.
TOTAL_LABEL = re.compile(
    r"^(?:全(?:县|区|市|镇|乡|街道)|本(?:县|区|市))?(?:合计|小计|总计|共计|汇总|总数|总量|合计数|总计数)?$"
)
INSTRUCTION_WORDS = ("填表说明", "说明：", "说明:", "注：", "注:", "备注：")
SPLIT_THOUSANDS_HEAD = re.compile(r"^-?\d{1,3}$")
SPLIT_THOUSANDS_TAIL = re.compile(r"^\d{3}$")
COLUMN_NAMES = {  # a known column as a finding names it
    "metric": "指标",
    "value": "数值",
    "unit_code": "单位代码",
    "report_date": "日期",
    "note": "备注",
    "part": "分项",
    "attributed_unit": "归属单位",
    "measure": "计量单位",
    "seq": "序号",
    "cumulative": "累计",
}


def is_total_label(text: str, unit: Unit | None = None) -> bool:
    key = normalise_label(text)
    if not key:
        return False
    if unit is not None and key in {normalise_label(n) for n in (unit.name, unit.slug, *unit.aliases)}:
        return True
    return bool(TOTAL_LABEL.match(key))


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
    chosen = choose_sheet(workbook.sheets, catalogue, submission)
    if chosen is None:
        for sheet in workbook.sheets:
            _too_long_cells(submission, sheet.rows, limits)
        if not any(f.rule == "unread_sheet" for f in submission.findings):
            submission.finding("hard", "missing_header", "找不到表头：需要“指标”(metric) 和“数值”(value) 两列")
        return submission
    sheet, (header_index, columns, width) = chosen
    if _last_row_cut(submission, workbook, sheet, header_index, width):
        return submission
    _too_long_cells(submission, sheet.rows[: header_index + 1], limits)
    if "value" not in columns:
        submission.finding("hard", "missing_header", "表头缺少“数值”(value) 列", row=sheet.rows[header_index][0])
        return submission
    if "cumulative" in columns:
        header_row, header_cells = sheet.rows[header_index]
        position = columns["cumulative"]
        written = cell_text(header_cells[position]) if position < len(header_cells) else ""
        place = f"第{position + 1}列" if sheet.name == "CSV" else f"{_column_letter(position)}列"
        submission.finding(
            "soft",
            "cumulative_column_not_read",
            f"“{written or '累计'}”列（{place}）没有读入：累计数由市里按“前一日累计 + 当日新增”推算，"
            "只读当日数（“数值/本日”列）；累计列可以保留",
            row=header_row,
        )
    RowReader(submission, sheet, columns, width, catalogue, registry, limits).read(header_index)
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


def _last_row_cut(sub: Submission, workbook: Workbook, sheet: Sheet, header_index: int, width: int) -> bool:
    """A CSV that does not end with a line break and whose last row has fewer cells than the header (or ends inside
    a quoted cell) was read while still being written, or its transfer broke: refused whole, never read as blanks.
    A last row in the instructions block (填表说明…) holds no figures: nothing of the report is cut."""
    if not workbook.open_end or len(sheet.rows) <= header_index + 1:
        return False
    number, cells = sheet.rows[-1]
    if not workbook.open_quote and len(cells) >= width:
        return False
    for row_number, row in sheet.rows[header_index + 1 :]:
        first = next((c for c in map(cell_text, row) if c), "")
        if first.startswith(INSTRUCTION_WORDS):
            if number >= row_number:
                return False
            break
    shown = "最后一格的引号没有闭合" if workbook.open_quote else f"只有 {len(cells)} 格（表头有 {width} 格）"
    sub.finding(
        "hard",
        "file_incomplete",
        f"文件的最后一行（第{number}行）{shown}，文件末尾也没有换行：最后一行被截断了，文件还在写入或者传输中断了，"
        "没有读入；请等文件完整后重新发送整个文件",
        row=number,
        value=",".join(cell_text(c) for c in cells),
    )
    return True


def _too_long_cells(sub: Submission, rows: list[tuple[int, list[object]]], limits: Limits) -> None:
    """Cells too long to read outside the data rows (title rows, or a file without a header): refused where they are.
    (Under the header, RowReader names each one's column and metric.)"""
    for number, cells in rows:
        for position, cell in enumerate(cells):
            if isinstance(cell, CellTooLong):
                sub.finding(
                    "hard",
                    "cell_too_long",
                    f"第{position + 1}列的单元格有 {cell.length} 字，超过上限 {limits.max_cell_chars} 字，太长了，"
                    "没有读入：请精简后重报",
                    row=number,
                    value=cell.preview + "…",
                )


class _Skip(Exception):
    """Not an error: a RowReader check has dealt with the row (its finding, if any, filed) and no figure comes of it."""


@dataclass(frozen=True)
class _Line:
    """One row under the header: its number as the clerk sees it, its values (invisible characters removed), their
    text, and the metric, part and value cells every check looks at."""

    number: int
    values: list[object]
    cells: list[str]
    label: str  # the metric column as written
    part: str
    raw_value: object
    shown_value: str  # the value column as text


class RowReader:
    """The rows under one sheet's header → the submission's figure rows, or a finding for each row that cannot be
    one. The checks run in this order, and the first that refuses a row ends it: cells too long to read, instruction
    rows, split thousands, cells under no column and formula cells (each named, both reported), then the figure itself
    (metric, measure and value, note, declared unit, attributed unit, declared date)."""

    def __init__(
        self,
        sub: Submission,
        sheet: Sheet,
        columns: dict[str, int],
        width: int,
        catalogue: Catalogue,
        registry: Registry,
        limits: Limits,
    ):
        self.sub, self.sheet, self.columns, self.width = sub, sheet, columns, width
        self.catalogue, self.registry, self.limits = catalogue, registry, limits
        self.csv_sheet = sheet.name == "CSV"
        self.known = set(columns.values())
        self.names = {position: COLUMN_NAMES.get(column, column) for column, position in columns.items()}
        self.value_position = columns["value"]
        self.instructions_at: int | None = None  # the row the instructions block starts at

    def read(self, header_index: int) -> None:
        for number, raw_values in self.sheet.rows[header_index + 1 :]:
            line = self._line(number, raw_values)
            if not any(line.cells):
                continue  # spacer row
            try:
                self._too_long(line)
                self._instructions(line)
                self._split_thousands(line)
                formulas = self._formula_cells(line)
                self._unplaced_cells(line)
                if formulas:
                    raise _Skip
                self.sub.rows.append(self._figure(line))
            except _Skip:
                continue

    def _hard(self, line: _Line, rule: str, message: str, metric: str = "", value: object = "") -> None:
        """A hard finding at this row (the caller ends the row with _Skip)."""
        self.sub.finding("hard", rule, message, row=line.number, metric=metric, value=value)

    def _line(self, number: int, raw_values: list[object]) -> _Line:
        values = [_visible(self.sub, number, v) for v in raw_values]
        cells = [cell_text(v) for v in values]
        raw_value = self._get(values, "value")
        return _Line(
            number,
            values,
            cells,
            label=self._text(cells, "metric"),
            part=self._text(cells, "part"),
            raw_value=raw_value,
            shown_value=cell_text(raw_value),
        )

    def _where(self, position: int) -> str:
        """A column as a finding names it: its name and its place (E列 in a workbook, 第5列 in a CSV)."""
        place = f"第{position + 1}列" if self.csv_sheet else f"{_column_letter(position)}列"
        name = self.names.get(position)
        return f"“{name}”列（{place}）" if name else place

    def _row_metric(self, line: _Line) -> str:
        """The row's metric as findings name it: the catalogue's display when the label resolves, else as written;
        "" when the metric cell itself is what cannot be read."""
        position = self.columns.get("metric")
        cell = line.values[position] if position is not None and position < len(line.values) else None
        if isinstance(cell, FormulaWithoutValue | CellError | CellTooLong):
            return ""
        metric = self.catalogue.resolve(line.label) if line.label else None
        return metric.display if metric else line.label

    def _too_long(self, line: _Line) -> None:
        """A cell too long to read (a CSV cell past max_cell_chars): which row, which column, which metric."""
        long_cells = [(i, v) for i, v in enumerate(line.values) if isinstance(v, CellTooLong)]
        if not long_cells:
            return
        metric = self._row_metric(line)
        for position, cell in long_cells:
            whose = "" if metric else "（这一行的指标名称读不到）"
            self._hard(
                line,
                "cell_too_long",
                f"{self._where(position)}的单元格有 {cell.length} 字，超过上限 {self.limits.max_cell_chars} 字，太长了，"
                f"没有读入{whose}：请精简（备注请写要点，详细情况可写在文字稿 .md 中）后重报",
                metric=metric,
                value=cell.preview + "…",
            )
        raise _Skip

    def _get(self, values: list[object], column: str) -> object:
        position = self.columns.get(column)
        return values[position] if position is not None and position < len(values) else None

    def _text(self, cells: list[str], column: str) -> str:  # cell_text(self._get(values, column)), from cells read once
        position = self.columns.get(column)
        return cells[position] if position is not None and position < len(cells) else ""

    def _instructions(self, line: _Line) -> None:
        """The instructions block (填表说明…) closes the data: it and every row below it are not read, and a row
        below it holding figures is a finding."""
        if self.instructions_at is not None:
            if row_holds_figure(line.values, self.catalogue):
                self._hard(
                    line,
                    "data_after_instructions",
                    f"第{self.instructions_at}行的说明之后还有数据：说明行须放在表格最后（或删去），否则其后的数据不会被读入",
                    metric=next((c for c in line.cells if c), ""),
                )
            raise _Skip
        first = next(c for c in line.cells if c)
        if first.startswith(INSTRUCTION_WORDS):
            self.instructions_at = line.number
            raise _Skip

    def _split_thousands(self, line: _Line) -> None:
        """In a CSV, "志愿者,6,720": the unquoted comma split 6,720 over two columns."""
        cells, shown_value, after = line.cells, line.shown_value, self.value_position + 1
        split_tail = cells[after] if after < len(cells) else ""
        if not (self.csv_sheet and SPLIT_THOUSANDS_HEAD.match(shown_value) and SPLIT_THOUSANDS_TAIL.match(split_tail)):
            return
        if self.columns.get("cumulative") == after and len(cells) <= self.width:
            return  # 本日 beside 累计 (12 and 345), nothing pushed past the header: two figures, not one split
        tail = [c for c in cells[after:] if SPLIT_THOUSANDS_TAIL.match(c)]
        self._hard(
            line,
            "unquoted_thousands_separator",
            f"数值中的千分位逗号没有加引号，被拆到了后面的列（读成“{shown_value}”和“{'”“'.join(tail)}”）："
            "请去掉数值里的逗号，或把整个数值用英文双引号括起来后重报",
            metric=line.label,
            value=",".join([shown_value, *tail]),
        )
        raise _Skip

    def _unplaced_cells(self, line: _Line) -> None:
        """Text beyond the header, or under a column without a known name, is never dropped silently."""
        unplaced = [(i, c) for i, c in enumerate(line.cells) if c and i not in self.known]
        if not unplaced:
            return
        position, text = unplaced[0]
        where = "表头以外" if position >= self.width else "没有列名（或列名不认识）的列里"
        self._hard(
            line,
            "cells_beyond_header",
            f"{where}还有内容“{'、'.join(c for _, c in unplaced)}”，这些内容没有被读入："
            "请删去，或放到“备注”列；数值里的千分位逗号须去掉或整格加引号",
            metric=line.label,
            value=text,
        )
        raise _Skip

    def _formula_cells(self, line: _Line) -> bool:
        """A formula without a saved result (or with an empty one), or an error value, under any column the row is
        read by: one finding each, naming the cell, its column, the row's metric and the formula. (The 累计 column is
        not read; cells under no known column are cells_beyond_header.) True when the row has any."""
        skipped = self.columns.get("cumulative")
        bad_cells = [
            (position, value)
            for position, value in enumerate(line.values)
            if isinstance(value, FormulaWithoutValue | CellError) and position in self.known and position != skipped
        ]
        if not bad_cells:
            return False
        metric = self._row_metric(line)
        for position, cell in bad_cells:
            name = self.names.get(position)
            where = f"“{name}”列" if name else f"{_column_letter(position)}列"
            if position == self.columns.get("metric"):
                where += "，即这一行的指标名称"
            if isinstance(cell, FormulaWithoutValue):
                formula = f" ={cell.formula}" if cell.formula else ""
                result = "保存的计算结果是空的" if cell.empty_result else "文件里没有保存计算结果"
                self._hard(
                    line,
                    "formula_without_value",
                    f"{cell.coordinate} 单元格（{where}）是公式{formula}，但{result}（由程序生成或未重新计算），"
                    "读不到这一格：请在 Excel/WPS 中打开后保存（让公式重新计算），或把公式改为数值后重报",
                    metric=metric,
                    value=cell.coordinate,
                )
            else:
                self._hard(
                    line,
                    "formula_error",
                    f"{cell.coordinate} 单元格（{where}）是错误值 {cell.text}（公式出错）：请改正公式或填入数值后重报",
                    metric=metric,
                    value=cell.text,
                )
        return True

    def _figure(self, line: _Line) -> FigureRow:
        if is_total_label(line.label) and not line.part:
            raise _Skip  # a 合计 row over different metrics means nothing in long format
        metric = self._metric(line)
        parsed = self._value(line, metric)
        note = self._note(line, metric)
        declared_unit = self._declared_unit(line)
        attributed = self._attributed_unit(line, metric)
        declared_date = self._declared_date(line, metric)
        raw_value, shown_value = line.raw_value, line.shown_value
        return FigureRow(
            row=line.number,
            metric=metric.key,
            value=parsed.value,
            qualifier=parsed.qualifier,
            raw=shown_value if isinstance(raw_value, str) or raw_value is None else render_value(parsed.value),
            note=note,
            part=line.part,
            missing=parsed.missing,
            declared_unit=declared_unit,
            declared_date=declared_date.isoformat() if declared_date else "",
            attributed_unit=attributed,
        )

    def _metric(self, line: _Line) -> Metric:
        if not line.label:
            self._hard(line, "missing_metric_name", "指标名称为空", value=line.shown_value)
            raise _Skip
        metric = self.catalogue.resolve(line.label)
        if metric is None:
            self._hard(
                line,
                "unknown_metric",
                "指标不在目录中（见 docs/submission-format.md）",
                metric=line.label,
                value=line.shown_value,
            )
            raise _Skip
        return metric

    def _value(self, line: _Line, metric: Metric) -> ParsedValue:
        """The value, read with the measure written beside it (人/例/万元 …) when the value is a bare number."""
        measure, shown_value = self._text(line.cells, "measure"), line.shown_value
        to_parse = (
            f"{shown_value}{measure}"
            if measure and shown_value and not re.search(r"[^\d.,\-万亿]", shown_value)
            else line.raw_value
        )
        try:
            return parse_value(to_parse, metric, self.catalogue, self.limits.max_value)
        except ValueProblem as problem:
            self._hard(line, problem.rule, problem.detail, metric=metric.display, value=shown_value)
            raise _Skip from None

    def _note(self, line: _Line, metric: Metric) -> str:
        """The note as written; a note past max_note_chars is kept cut to that length (ending in …) with a soft
        finding: the row's figure does not depend on it."""
        note = _as_written(self._get(line.values, "note"))
        limit = self.limits.max_note_chars
        if len(note) > limit:
            self.sub.finding(
                "soft",
                "note_too_long",
                f"备注有 {len(note)} 字，超过上限 {limit} 字：该行数值照常读入，备注只保留前 {limit - 1} 字、以“…”结尾；"
                "请精简备注（详细情况可写在文字稿 .md 中）",
                row=line.number,
                metric=metric.display,
                value=note[:20] + "…",
            )
            return note[: limit - 1] + "…"
        return note

    def _declared_unit(self, line: _Line) -> str:
        """The unit code written in the file, as the registry's code when it resolves (checked later, not here)."""
        declared_unit = self._text(line.cells, "unit_code")
        if declared_unit:
            resolved = self.registry.resolve(declared_unit)
            declared_unit = resolved.code if resolved else declared_unit
        return declared_unit

    def _attributed_unit(self, line: _Line, metric: Metric) -> str:
        attributed = self._text(line.cells, "attributed_unit")
        if not attributed:
            return attributed
        resolved = self.registry.resolve(attributed)
        if resolved is None:
            self._hard(line, "unknown_unit", "归属单位不在名录中", metric=metric.display, value=attributed)
            raise _Skip
        return resolved.code

    def _declared_date(self, line: _Line, metric: Metric) -> date | None:
        try:
            return parse_report_date(self._get(line.values, "report_date"))
        except ValueError as exc:
            self._hard(
                line,
                "bad_date",
                str(exc),
                metric=metric.display,
                value=self._text(line.cells, "report_date"),
            )
            raise _Skip from None


def _column_letter(position: int) -> str:
    """0 → A, 25 → Z, 26 → AA: a column as Excel names it."""
    letters, number = "", position + 1
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _as_written(value: object) -> str:
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
