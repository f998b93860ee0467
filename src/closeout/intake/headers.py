"""Where a county's figures are: the sheet that has the header, and the header's columns (merged multi-row headers
folded in). Another sheet that also holds figures is a finding, never a silence: a hard one when it too has a header
(or the only header is on a hidden sheet), a soft one when it has none (a scratch calculation beside the report)."""

from __future__ import annotations

import re

from closeout.core.catalogue import Catalogue, normalise_label
from closeout.intake.spreadsheets import Sheet
from closeout.intake.submission import Submission, cell_text

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
    # the running total beside 本日: read and not stored (the city derives cumulatives), one soft finding per file
    "cumulative": ("cumulative", "累计", "累计数", "累计值", "本轮累计", "累计总数"),
}
HEADER_LOOKUP = {normalise_label(alias): column for column, aliases in COLUMN_ALIASES.items() for alias in aliases}


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
    return max((i + 1 for i, v in enumerate(row) if cell_text(v)), default=0)


def _is_header_continuation(row: list[object]) -> bool:
    cells = [cell_text(v) for v in row if cell_text(v)]
    return bool(cells) and all(normalise_label(c) in HEADER_LOOKUP for c in cells)


def _header_columns(row: list[object]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for position, value in enumerate(row):
        column = HEADER_LOOKUP.get(normalise_label(cell_text(value)))
        if column and column not in columns:
            columns[column] = position
    return columns


def _holds_figures(rows: list[tuple[int, list[object]]], catalogue: Catalogue) -> bool:
    """Some row names a catalogue metric and carries a number: what a sheet or a trailing block of figures looks like."""
    return any(row_holds_figure(row, catalogue) for _, row in rows)


def row_holds_figure(row: list[object], catalogue: Catalogue) -> bool:
    texts = [cell_text(v) for v in row]
    names_metric = any(t and catalogue.resolve(t) is not None for t in texts)
    has_number = any(re.search(r"\d", t) for t in texts if t and catalogue.resolve(t) is None)
    return names_metric and has_number


def choose_sheet(sheets: list[Sheet], catalogue: Catalogue, sub: Submission) -> tuple[Sheet, tuple] | None:
    """The first visible sheet with the header (指标 and 数值; failing that, the first with 指标, whose missing 数值 is
    then refused). Every other sheet that holds figures is a finding: hard when it has the header too (two tables:
    which one is the report?) or when no visible sheet has it; soft when the read sheet is the only one with the
    header and the other has none (a scratch calculation beside the report: not read, named)."""
    headed = [(sheet, _find_header(sheet.rows)) for sheet in sheets]
    chosen = next(((s, h) for s, h in headed if _whole(h) and s.visible), None) or next(
        ((s, h) for s, h in headed if h is not None and s.visible), None
    )
    for sheet, header in headed:
        if chosen is not None and sheet is chosen[0]:
            continue
        hidden = "（隐藏的）" if not sheet.visible else ""
        if chosen is not None and _whole(chosen[1]) and not _whole(header):
            if _holds_figures(sheet.rows, catalogue):
                sub.finding(
                    "soft",
                    "scratch_sheet",
                    f"{hidden}工作表“{sheet.name}”没有表头（指标/数值），像是草稿或计算过程，没有读入；只读了有表头的"
                    f"工作表“{chosen[0].name}”。如果其中有要报的数，请移到“{chosen[0].name}”后重报",
                )
            continue
        if header is not None or _holds_figures(sheet.rows, catalogue):
            read = f"，只读了工作表“{chosen[0].name}”" if chosen else "，而可见的工作表里没有表头"
            sub.finding(
                "hard",
                "unread_sheet",
                f"{hidden}工作表“{sheet.name}”里也有数据{read}：一个文件只能有一张数据表，请删去或合并多余的工作表后重报",
            )
    return chosen


def _whole(header: tuple | None) -> bool:
    """The header names both the metric and the value column."""
    return header is not None and "value" in header[1]
