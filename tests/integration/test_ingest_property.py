"""Property-based tests of the county-file reader (docs/submission-format.md, issue 7 loader contract).

A Hypothesis strategy writes county files the way the format document allows: CSV in utf-8, utf-8-sig,
gbk or gb18030 with \\n or \\r\\n, header synonyms in any column order, title rows above the header, blank
spacer rows, 填表说明 rows at the end; XLSX built with openpyxl with the same variety, values as number
cells or as text. Rows are the catalogue's reported metrics under random accepted labels, with values
written plainly, as 1,234,567, in full-width digits, with 万/亿, with the metric's unit word, and (soft
metrics only) with 约/余/多. Sometimes a value is above CLOSEOUT_MAX_VALUE (10**12) or a long digit string,
and sometimes required metrics are left out: both must be refused by a named rule.

The property: the reader stores exactly what was written (integers as int, never a float round trip;
qualifiers kept), or refuses the file with named rules. It never produces a different number.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from closeout.core.catalogue import load_catalogue
from closeout.core.registry import Unit, load_registry
from closeout.intake.rows import parse_submission

ROOT = Path(__file__).resolve().parents[2]
INCLUDE = ROOT / "include"
CATALOGUE = load_catalogue(INCLUDE / "catalogue" / "metrics.yaml", INCLUDE / "rules" / "checks.yaml")
REGISTRY = load_registry(INCLUDE / "registry" / "quzhou.yaml")
DAY = date(2022, 3, 19)
MAX_VALUE = 10**12  # CLOSEOUT_MAX_VALUE default

REPORTED = CATALOGUE.reported()  # 25: every metric except the derived (kind C) one
REQUIRED = tuple(m for m in REPORTED if m.severity == "hard")  # 23
SOFT = tuple(m for m in REPORTED if m.severity == "soft")  # donations_value_yuan, donated_goods_kg
assert (len(REPORTED), len(REQUIRED), {m.key for m in SOFT}) == (25, 23, {"donations_value_yuan", "donated_goods_kg"})

# Header spellings the format document and the loader contract accept (指标/metric/项目…, 数值/value/数量/本日…).
HEADERS = {
    "metric": ("metric", "指标", "指标名称", "项目", "统计指标"),
    "value": ("value", "数值", "数量", "数据", "本日", "当日", "当日数"),
    "unit_code": ("unit_code", "单位代码", "区划代码", "行政区划代码"),
    "report_date": ("report_date", "日期", "报告日期", "统计日期", "填报日期"),
    "note": ("note", "备注", "说明"),
}
FULL_WIDTH = str.maketrans({**{str(d): chr(0xFF10 + d) for d in range(10)}, ",": "，", ".": "．"})
FULL_WIDTH_LETTERS = {chr(c): chr(c + 0xFEE0) for c in range(ord("a"), ord("z") + 1)} | {"_": "＿"}
MAGNITUDES = {"": Decimal(1), "万": Decimal(10_000), "亿": Decimal(100_000_000)}
TEMPLATE_INSTRUCTIONS = (
    "填表说明：每个指标一行，数值填阿拉伯数字整数（可写1,234或1.2万）；不清楚的填“不详”，不要填0；"
    "流量指标填当日0—24时数，存量指标填24时在隔/待出结果数。详见 docs/submission-format.md。"
)
TRAILER_ROWS = (
    "注：数值须为确数，软指标可写约数。",
    "说明：本表由区卫健局汇总。",
    "联系人：值班室",
    "审核人：王某某",
)
NOTE_BITS = ("含", "街道", "数据", "核实", "通报", "卫健局", *",\"“”、Ab3';()")  # commas and quotes included


@dataclass(frozen=True)
class Written:
    """One data row as the county wrote it, and what the reader must make of it."""

    line: int  # 1-based row in the file / sheet
    metric: str
    value: int
    qualifier: str
    note: str
    too_large: bool
    cell: object  # what is in the value cell


@dataclass(frozen=True)
class CountyFile:
    unit: Unit
    file_name: str
    content: bytes
    rows: tuple[Written, ...]
    dropped: tuple[str, ...]  # required metrics left out
    description: str
    grid: tuple[tuple, ...] = field(repr=False, default=())

    @property
    def refused_by(self) -> set[str]:
        """The rules that must refuse this file (empty: it must load)."""
        rules = set()
        if any(w.too_large for w in self.rows):
            rules.add("value_too_large")
        if self.dropped:
            rules.add("missing_metrics")
        return rules

    def __repr__(self) -> str:
        shown = "\n".join(f"  {i:>2}: {row!r}" for i, row in enumerate(self.grid, 1))
        return (
            f"CountyFile({self.file_name}, {self.description}, dropped={list(self.dropped)}, "
            f"expect={sorted(self.refused_by) or 'loaded'})\n{shown}"
        )

    def _repr_pretty_(self, printer, cycle) -> None:  # Hypothesis prints falsifying examples with this
        printer.text(repr(self))


def plain(number: Decimal) -> str:
    return format(number.normalize(), "f")  # 12.3 for 12.3000, 10 for 1E+1


@st.composite
def valid_value(draw, metric, n: int, xlsx: bool):
    """(cell, qualifier) for the integer n, written in one of the documented ways."""
    if xlsx and draw(st.integers(0, 3)) == 0:
        return n, ""  # a number cell
    if n == 0 and draw(st.integers(0, 5)) == 5:
        return "无", ""  # 无 = 0
    qualifier = ""
    if metric.severity == "soft" and n > 0 and draw(st.booleans()):
        qualifier = draw(st.sampled_from(["约", "余", "多"]))
    mag = draw(st.sampled_from(["", "", "", "万", "亿"]))  # 12.3万; 亿 only for round figures
    if mag == "亿" and n % 10_000:
        mag = "万"
    words = CATALOGUE.unit_words.get(metric.unit, {metric.unit: 1})
    word = draw(st.sampled_from(sorted(words))) if draw(st.integers(0, 3)) == 3 else ""  # 126人, 5万斤, 6万元
    for mag, word in ((mag, word), (mag, ""), ("", "")):  # noqa: B020 - fall back to simpler forms
        number = Decimal(n) / (MAGNITUDES[mag] * Decimal(str(words.get(word, 1))))
        if number * MAGNITUDES[mag] * Decimal(str(words.get(word, 1))) == n and number <= MAX_VALUE:
            break
    text = plain(number)
    style = draw(st.sampled_from(["plain", "thousands", "full_width", "full_width_thousands"]))
    if "thousands" in style and "." not in text:
        text = f"{int(text):,}"
    if style.startswith("full_width"):
        text = text.translate(FULL_WIDTH)
    pre = qualifier if qualifier == "约" else ""
    post = qualifier if qualifier in ("余", "多") else ""
    return f"{pre}{text}{mag}{post}{word}", qualifier


@st.composite
def oversize_value(draw, xlsx: bool):
    """(cell, value) above CLOSEOUT_MAX_VALUE: must be refused with value_too_large."""
    if draw(st.booleans()):
        n = draw(st.one_of(st.just(MAX_VALUE + 1), st.integers(MAX_VALUE + 1, 10**15)))
    else:
        digits = draw(st.text("0123456789", min_size=15, max_size=24))
        n = int(draw(st.sampled_from("123456789")) + digits)
    if xlsx:
        kind = draw(st.sampled_from(["int", "float", "text"]))
        if kind == "int":
            return n, n
        if kind == "float":
            return float(n), int(float(n))
    style = draw(st.sampled_from(["plain", "thousands", "full_width", "wan"]))
    text = {
        "plain": str(n),
        "thousands": f"{n:,}",
        "full_width": str(n).translate(FULL_WIDTH),
        "wan": plain(Decimal(n) / 10_000) + "万",
    }[style]
    return text, n


@st.composite
def labels(draw, metric):
    names = [metric.key, metric.label, *metric.aliases]
    name = draw(st.sampled_from(names))
    variant = draw(st.sampled_from(["as is", "as is", "unit suffix", "upper", "full width"]))
    if variant == "unit suffix" and not name.isascii():
        return draw(st.sampled_from([f"{name}（{metric.unit}）", f"{name}({metric.unit})"]))
    if variant == "upper" and name.isascii():
        return name.upper()
    if variant == "full width" and name.isascii():
        return "".join(FULL_WIDTH_LETTERS.get(c, c) for c in name)
    return name


notes = st.builds(
    lambda prefix, bits: prefix + "".join(bits),
    st.sampled_from(["据", "含", "其中", "系"]),
    st.lists(st.sampled_from(NOTE_BITS), max_size=12),
)

integers = st.one_of(
    st.integers(0, 100),
    st.integers(0, 10**6),
    st.integers(0, MAX_VALUE),
    st.sampled_from([0, 1, 9999, 10_000, 12_000, 123_000, 99_999_999, 10**8, MAX_VALUE - 1, MAX_VALUE]),
)


@st.composite
def figures(draw):
    """Consistent figures for every reported metric (the same-day hard checks hold), then adjusted."""
    values = {m.key: draw(integers) for m in REPORTED}
    values["sampling_lanes"] = max(values["sampling_lanes"], values["sampling_points"])
    values["new_confirmed"] = max(values["new_confirmed"], values["asymptomatic_to_confirmed"])
    values["negative"] = min(values["negative"], MAX_VALUE - values["positive"])
    values["tested"] = values["negative"] + values["positive"]
    return values


@st.composite
def county_files(draw):
    unit = draw(st.sampled_from(REGISTRY.units))
    xlsx = draw(st.booleans())
    stem = draw(st.sampled_from([unit.code, unit.name, unit.slug, *unit.aliases]))
    values = draw(figures())

    # Which metrics: usually all 23 required ones; the soft ones most of the time; sometimes drop some.
    chosen = list(REQUIRED)
    dropped: tuple[str, ...] = ()
    if draw(st.integers(0, 7)) == 0:
        gone = draw(st.sets(st.sampled_from([m.key for m in REQUIRED]), min_size=1, max_size=23))
        dropped = tuple(m.key for m in REQUIRED if m.key in gone)
        chosen = [m for m in chosen if m.key not in gone]
    chosen += [m for m in SOFT if draw(st.integers(0, 3)) > 0]
    chosen = draw(st.permutations(chosen))
    oversize = set()
    if chosen and draw(st.integers(0, 7)) == 0:
        oversize = draw(st.sets(st.sampled_from([m.key for m in chosen]), min_size=1, max_size=2))

    optional = draw(st.sets(st.sampled_from(["unit_code", "report_date", "note"])))
    columns = draw(st.permutations(["metric", "value", *sorted(optional)]))
    header = [draw(st.sampled_from(HEADERS[c])) for c in columns]
    width = len(columns)
    unit_style = draw(st.sampled_from(["code", "code", "name", "slug"]))
    unit_text = {"code": unit.code, "name": unit.name, "slug": unit.slug}[unit_style]
    date_styles = ["2022-03-19", "2022/3/19", "2022年3月19日"] + (["date cell", "serial"] if xlsx else [])
    date_style = draw(st.sampled_from(date_styles))
    date_cell = {
        "date cell": datetime(2022, 3, 19),
        "serial": (DAY - date(1899, 12, 30)).days,
    }.get(date_style, date_style)

    grid: list[list] = []
    title_rows = draw(st.integers(0, 2))
    for i in range(title_rows):
        grid.append([f"{unit.name}疫情防控日报" if i == 0 else "（2022年3月19日0—24时）"])
    if title_rows and draw(st.booleans()):
        grid.append([])
    grid.append(list(header))

    written = []
    for metric in chosen:
        for _ in range(draw(st.integers(0, 1)) * draw(st.integers(0, 2))):
            grid.append([])  # a blank spacer row
        if metric.key in oversize:
            cell, value = draw(oversize_value(xlsx))
            qualifier, too_large = "", True
        else:
            value = values[metric.key]
            cell, qualifier = draw(valid_value(metric, value, xlsx))
            too_large = False
        note = draw(notes) if "note" in columns and draw(st.integers(0, 3)) == 0 else ""
        by_column = {
            "metric": draw(labels(metric)),
            "value": cell,
            "unit_code": unit_text if draw(st.integers(0, 5)) else "",
            "report_date": date_cell if draw(st.integers(0, 5)) else "",
            "note": note,
        }
        grid.append([by_column[c] for c in columns])
        written.append(Written(len(grid), metric.key, value, qualifier, note, too_large, cell))

    if draw(st.booleans()):  # the 填表说明 block closes the data
        if draw(st.booleans()):
            grid.append([])
        grid.append([draw(st.sampled_from([TEMPLATE_INSTRUCTIONS, "填表说明：数值填阿拉伯数字。"]))])
        grid.extend([line] for line in draw(st.lists(st.sampled_from(TRAILER_ROWS), max_size=2)))

    if xlsx:
        content, description = _xlsx(draw, grid, width, title_rows)
        suffix = ".xlsx"
    else:
        content, description = _csv(draw, grid, width)
        suffix = ".csv"
    description += f", header={header}"
    return CountyFile(unit, stem + suffix, content, tuple(written), dropped, description, tuple(map(tuple, grid)))


def _csv(draw, grid: list[list], width: int) -> tuple[bytes, str]:
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "gbk", "gb18030"]))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    quote_all = draw(st.booleans())
    pad = draw(st.booleans())  # Excel's "save as CSV" pads every row to the same width
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=ending, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    for row in grid:
        cells = ["" if c is None else str(c) for c in row]
        writer.writerow(cells + [""] * (width - len(cells)) if pad and len(cells) < width else cells)
    content = buffer.getvalue().encode(encoding)
    return content, f"csv {encoding} {ending!r} {'quote all' if quote_all else 'quote minimal'}"


def _xlsx(draw, grid: list[list], width: int, title_rows: int) -> tuple[bytes, str]:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = draw(st.sampled_from(["日报", "Sheet1", "数据"]))
    for r, row in enumerate(grid, 1):
        for c, value in enumerate(row, 1):
            if value is None or value == "":
                continue
            cell = sheet.cell(row=r, column=c, value=value)
            if isinstance(value, datetime):
                cell.number_format = "yyyy-mm-dd"
    merge = width > 1 and draw(st.booleans())
    if merge:  # merged title and instruction rows, as counties do
        for r, row in enumerate(grid, 1):
            if len(row) == 1 and width > 1 and (r <= title_rows or str(row[0]).startswith(("填表说明", "注", "说明"))):
                sheet.merge_cells(start_row=r, start_column=1, end_row=r, end_column=width)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue(), f"xlsx{' merged' if merge else ''}"


RULE_TAG = re.compile(r"\[rule: ([a-z_0-9]+)\]$")


def _rules_of_lines(lines: list[str]) -> list[str]:
    rules = []
    for line in lines:
        match = RULE_TAG.search(line)
        assert match, f"message without a named rule: {line!r}"
        rules.append(match[1])
    return rules


# ---------------------------------------------------------------------------------------------------
# Property A: the reader alone (no store, no Great Expectations)


@pytest.mark.unit
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(county=county_files())
def test_reader_returns_exactly_what_was_written_or_refuses_by_rule(county: CountyFile):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / county.file_name
        path.write_bytes(county.content)
        sub = parse_submission(path, county.unit, DAY, CATALOGUE, REGISTRY)
    hard = [f for f in sub.findings if f.severity == "hard"]
    for finding in hard:
        assert finding.rule and f"[rule: {finding.rule}]" in finding.line(), finding
    event("refused" if hard else "accepted")

    written = {w.line: w for w in county.rows}
    for row in sub.rows:  # never a different number, whatever else happens
        assert row.row in written, f"row {row.row} read but no data was written there: {row}"
        w = written[row.row]
        assert row.metric == w.metric, (row, w)
        if row.value is None:
            assert w.too_large and hard, f"value of row {row.row} lost: {row} (written {w.cell!r})"
            continue
        assert type(row.value) is int, f"row {row.row}: {w.cell!r} read as {type(row.value).__name__} {row.value!r}"
        assert row.value == w.value, f"row {row.row}: {w.cell!r} read as {row.value!r}, written {w.value}"
        assert row.qualifier == w.qualifier, (row, w)
        assert row.note == w.note, (row, w)

    too_large = [w for w in county.rows if w.too_large]
    if too_large:
        refused_rows = {f.row for f in hard if f.rule == "value_too_large"}
        for w in too_large:
            assert w.line in refused_rows, (
                f"row {w.line} value {w.cell!r} > {MAX_VALUE} not refused with value_too_large; "
                f"findings: {[f.line() for f in sub.findings]}"
            )
        return
    # A file written as the format document says is read whole: every row, no hard finding
    # (missing_metrics, a validate rule, may already be raised here when required metrics are left out).
    allowed = {"missing_metrics"} if county.dropped else set()
    assert [f.line() for f in hard if f.rule not in allowed] == []
    assert sorted(r.row for r in sub.rows) == sorted(written), "rows left out without a finding"


# ---------------------------------------------------------------------------------------------------
# Property B: the real loading path (archive, parse, Great Expectations validation, store) on SQLite


@pytest.mark.services
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(county=county_files())
def test_load_group_stores_exactly_what_was_written_or_rejects_by_rule(county: CountyFile):
    from closeout.close.load import load_group
    from closeout.core.settings import load_settings
    from closeout.store.context import Context

    with tempfile.TemporaryDirectory(prefix="closeout-prop-") as tmp:
        root = Path(tmp)
        folder = root / "inbox" / DAY.isoformat()
        folder.mkdir(parents=True)
        source = folder / county.file_name
        source.write_bytes(county.content)
        env = {
            "CLOSEOUT_INBOX": str(root / "inbox"),
            "CLOSEOUT_ARCHIVE": str(root / "archive"),
            "CLOSEOUT_OUTBOX": str(root / "outbox"),
            "CLOSEOUT_DB_URL": f"sqlite:///{root / 'closeout.db'}",
            "CLOSEOUT_SETTLE_SECONDS": "0",
        }
        ctx = Context(load_settings(env))
        try:
            (outcome,) = load_group(ctx, DAY, [county.unit.code])
            stored = ctx.store.rows(
                "select_reported_figures", {"report_date": DAY.isoformat(), "unit_codes": [county.unit.code]}
            )
        finally:
            ctx.store.dispose()
        rules = _rules_of_lines(outcome.lines)
        quarantine = root / "archive" / "quarantine" / DAY.isoformat() / county.unit.code
        kept = sorted(quarantine.iterdir()) if quarantine.is_dir() else []
        kept_content = {p.name: p.read_bytes() for p in kept}

    expected = county.refused_by
    event(f"expected {sorted(expected) or 'loaded'}; got {outcome.status}")
    if not expected:
        assert outcome.status == "loaded", outcome.lines
        assert {r["metric"]: (r["value"], r["qualifier"], r["note"]) for r in stored} == {
            w.metric: (w.value, w.qualifier, w.note) for w in county.rows
        }
        return
    assert outcome.status == "rejected", f"expected refusal by {sorted(expected)}: {outcome.status} {outcome.lines}"
    assert expected <= set(rules), f"expected rules {sorted(expected)}, got {rules}: {outcome.lines}"
    assert stored == [], "a rejected first submission stored figures"
    copies = [name for name in kept_content if name.endswith("-" + county.file_name)]
    assert len(copies) == 1 and kept_content[copies[0]] == county.content, sorted(kept_content)
    reasons = kept_content.get(copies[0] + ".reasons.txt", b"").decode("utf-8").splitlines()
    assert reasons == outcome.lines
