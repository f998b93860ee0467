"""The bulletin's attachments: the long CSV of a bulletin with a column per unit; by group (a large bulletin) the
per-unit .xlsx and, beside it, the zipped long CSV of every level. No cell can run as a formula, and the same
figures give the same bytes: an edition is known by its hash."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable
from datetime import date, datetime
from functools import partial
from typing import Any

from closeout.core.catalogue import Metric
from closeout.core.numbers import PREFIX_QUALIFIERS, render_value
from closeout.publish.bulletin.figures import DayCells, Figure, Line, Totals
from closeout.publish.bulletin.sections import Areas, named, within_name
from closeout.store.context import Context

ATTACHMENT_COLUMNS = (
    "report_date",
    "unit_code",
    "unit_name",
    "metric",
    "metric_name",
    "kind",
    "unit",
    "value",
    "qualifier",
    "display",
    "previous_value",
    "change",
    "status",
)
# The long CSV beside the .xlsx of a large bulletin: a row per unit and metric, then the totals of every level.
LEVEL_COLUMNS = (
    "report_date",
    "level",
    "unit_code",
    "unit_name",
    "parent_code",
    "metric",
    "metric_name",
    "unit",
    "value",
    "qualifier",
    "status",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def level_zip_name(attachment_name: str) -> str:
    """The zipped long CSV a large bulletin sends beside its .xlsx, named as the workbook."""
    return attachment_name.removesuffix(".xlsx") + ".csv.zip"


def attachment_rows(
    ctx: Context,
    report_date: date,
    lines: list[Line],
    region: Line,
    today: DayCells,
    yesterday: DayCells,
    totals: Totals,
) -> list[dict]:
    """The long CSV of a bulletin with a column per unit: a row per unit and metric, then the region's totals."""
    rows = []
    for ln in [*lines, region]:
        for metric in ctx.catalogue.metrics:
            if ln.is_total:
                value, before = totals.today[metric.key], totals.previous[metric.key]
                delta = totals.changes[metric.key].delta  # like with like: units present on both days
            else:
                value, before = today.get(ln.code, {}).get(metric.key), yesterday.get(ln.code, {}).get(metric.key)
                delta = None if value is None or before is None else value[0] - before[0]
            rows.append(
                {
                    "report_date": report_date.isoformat(),
                    "unit_code": ln.code,
                    "unit_name": ln.name,
                    "metric": metric.key,
                    "metric_name": metric.label,
                    "kind": metric.kind,
                    "unit": metric.unit,
                    "value": "" if value is None else render_value(value[0]),
                    "qualifier": "" if value is None else value[1],
                    "display": "—" if value is None else render_value(*value),
                    "previous_value": "" if before is None else render_value(before[0]),
                    "change": "" if delta is None else render_value(delta),
                    "status": "total" if ln.is_total else ln.status,
                }
            )
    return rows


def unit_sheet(
    ctx: Context,
    lines: list[Line],
    region: Line,
    today: DayCells,
    totals: Totals,
    areas: Areas,
    words: dict,
    english: bool,
) -> list[list]:
    """The per-unit spreadsheet: a header, one row per unit in code order, the totals of each division (when the
    registry has levels) and the region. A figure is its (value, qualifier), a missing one None."""
    registry, metrics, language = ctx.registry, ctx.catalogue.metrics, "en" if english else "zh"
    group = {u.code: within_name(registry, u.code, english) for u in registry.all_units}
    header = [*words["sheet_columns"], *(words["sheet_metric"].format(*m.heading(language)) for m in metrics)]
    rows = [
        [ln.code, ln.name, group[ln.code], ln.status_label, *(today.get(ln.code, {}).get(m.key) for m in metrics)]
        for ln in lines
    ]
    for division, members in areas.divisions:
        parent = registry.divisions.get(division.parent)
        within = named(parent, english) if parent else ""
        sums = areas.sums[members]
        rows.append([division.code, named(division, english), within, "", *(sums[m.key] for m in metrics)])
    return [header, *rows, [region.code, region.name, "", "", *(totals.today[m.key] for m in metrics)]]


def level_rows(
    ctx: Context,
    report_date: date,
    lines: list[Line],
    region: Line,
    today: DayCells,
    totals: Totals,
    areas: Areas,
    english: bool,
) -> list[dict]:
    """The long CSV: a row per unit and metric (exact figures), then per division at every level and for the
    region its total, so any level's sum can be checked against the rows beneath it."""
    registry, metrics = ctx.registry, ctx.catalogue.metrics
    day = report_date.isoformat()
    rows = []
    for ln in lines:
        parent = registry.get(ln.code).parent or registry.region_code
        figures = today.get(ln.code, {})
        rows += [_level_row(day, "unit", ln.code, ln.name, parent, m, figures.get(m.key), ln.status) for m in metrics]
    for division, members in areas.divisions:
        name, parent, sums = named(division, english), division.parent or registry.region_code, areas.sums[members]
        rows += [_level_row(day, "division", division.code, name, parent, m, sums[m.key], "total") for m in metrics]
    rows += [_level_row(day, "region", region.code, region.name, "", m, totals.today[m.key], "total") for m in metrics]
    return rows


def _level_row(
    day: str, level: str, code: str, name: str, parent: str, metric: Metric, figure: Figure | None, status: str
) -> dict:
    return {
        "report_date": day,
        "level": level,
        "unit_code": code,
        "unit_name": name,
        "parent_code": parent,
        "metric": metric.key,
        "metric_name": metric.label,
        "unit": metric.unit,
        "value": "" if figure is None else render_value(figure[0]),
        "qualifier": "" if figure is None else figure[1],
        "status": status,
    }


def inert_cell(value: object) -> object:
    """A spreadsheet cell that cannot run: text starting like a formula gets a leading ' (numbers stay numbers)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not NUMBER.match(value):
        return "'" + value
    return value


def csv_bytes(columns: tuple[str, ...], rows: list[dict]) -> bytes:
    """UTF-8 with a BOM so Excel opens the Chinese correctly; no cell can run as a formula."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({key: inert_cell(value) for key, value in row.items()} for row in rows)
    return buffer.getvalue().encode("utf-8-sig")


def zipped(name: str, data: bytes) -> bytes:
    """One file in a zip; the same bytes for the same data (the entry's time fixed), as an edition needs."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo(name, ZIP_EPOCH), data, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def unit_workbook(title: str, report_date: date, sheet: list[list]) -> bytes:
    """The per-unit figures as an .xlsx: zip-compressed (a country's 2,850 units in well under a megabyte), opened
    by Excel and WPS with the Chinese intact and without an import step, numbers kept as numbers so ops can sum
    and sort; a figure with a qualifier ("600余") is the number shown with it. The same sheet gives the same
    bytes — an edition is known by its hash — so the workbook's dates are the report date and every zip entry's
    time is fixed (openpyxl would write the time of saving)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.utils import get_column_letter
    from openpyxl.xml.functions import tostring

    workbook = Workbook(write_only=True)
    stamp = datetime(report_date.year, report_date.month, report_date.day)
    workbook.properties.creator, workbook.properties.title = "closeout", title
    worksheet = workbook.create_sheet("分单位数据")
    worksheet.freeze_panes = "C2"
    for column, width in enumerate((10, 14, 12, 10, *([12] * (len(sheet[0]) - 4))), start=1):
        worksheet.column_dimensions[get_column_letter(column)].width = width
    cell = partial(WriteOnlyCell, worksheet)
    for row in sheet:
        worksheet.append([_written(cell, value) for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    workbook.properties.created = workbook.properties.modified = stamp
    core = tostring(workbook.properties.to_tree())
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as saved, zipfile.ZipFile(out, "w") as fixed:
        for info in saved.infolist():
            data = core if info.filename == "docProps/core.xml" else saved.read(info)
            fixed.writestr(zipfile.ZipInfo(info.filename, ZIP_EPOCH), data, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _written(cell: Callable[[object], Any], value: object) -> object:
    """A cell of the sheet as the workbook writes it (`cell` makes one of the worksheet's): a number, with its
    qualifier as the number's format; text that never runs as a formula; "—" for a figure not there."""
    if value is None:
        return "—"
    if isinstance(value, tuple):
        number, qualifier = value
        if not qualifier:
            return number
        figure = cell(number)
        figure.number_format = f'"{qualifier}"General' if qualifier in PREFIX_QUALIFIERS else f'General"{qualifier}"'
        return figure
    text = cell(inert_cell(value))
    text.data_type = "s"  # text is never a formula, and keeps the ' in front that says so if it is edited
    return text
