"""Issue 24 (point 7): a file still being written is refused, never published blank; what a careful operator reads
exactly is read (a scratch sheet, a 累计 column, a long note); a refusal says its cause and its place."""

import io
import re
import zipfile
from datetime import date
from pathlib import Path

import openpyxl
import pytest

from closeout.core.catalogue import load_catalogue
from closeout.core.limits import Limits
from closeout.core.registry import load_registry
from closeout.core.settings import load_settings
from closeout.intake.rows import parse_submission
from closeout.intake.spreadsheets import nul_padding

pytestmark = pytest.mark.unit
DAY = date(2022, 3, 19)
UNIT = "330825"
ROWS = [("采样人次", 12345, "全员检测"), ("阴性", 12000, ""), ("志愿者", 3375, "")]


@pytest.fixture(scope="module")
def setup():
    settings = load_settings({})
    return load_catalogue(settings.catalogue_path, settings.checks_path), load_registry(settings.registry_path)


def parse(setup, data: bytes, name: str = "330825.csv", limits: Limits | None = None):
    catalogue, registry = setup
    return parse_submission(Path(name), registry.get(UNIT), DAY, catalogue, registry, data=data, limits=limits)


def rules(sub, severity: str | None = None) -> list[str]:
    return [f.rule for f in sub.findings if severity is None or f.severity == severity]


def figures(sub) -> dict:
    return {r.metric: r.value for r in sub.rows}


def csv_text(rows=ROWS, header="指标,数值,备注", end="\n") -> bytes:
    return (header + "\n" + "\n".join(f"{m},{v},{n}" for m, v, n in rows) + end).encode("utf-8")


def workbook(*sheets: tuple[str, list[list], str]) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows, state in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
        sheet.sheet_state = state
    book.active = next(i for i, (_, _, state) in enumerate(sheets) if state == "visible")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


REPORT = [["指标", "数值", "备注"], *[list(r) for r in ROWS]]


def with_cell(data: bytes, ref: str, cell_xml: str) -> bytes:
    """The workbook with sheet1's cell `ref` replaced by cell_xml."""
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                text, count = re.subn(rf'<c r="{ref}"(?:[^>]*/>|[^>]*>.*?</c>)', cell_xml, content.decode(), count=1)
                assert count == 1
                content = text.encode()
            target.writestr(info.filename, content)
    return buffer.getvalue()


# --- 1. a file still being written -------------------------------------------------------------------------------


@pytest.mark.parametrize("written", [0.0, 0.3, 0.5, 0.9, 1.0])
def test_a_csv_pre_sized_with_nul_bytes_is_refused_whole(setup, written):
    whole = csv_text()
    cut = int(len(whole) * written)
    sub = parse(setup, whole[:cut] + b"\x00" * (len(whole) - cut + 64))
    assert rules(sub) == ["file_incomplete"] and sub.rows == []
    line = sub.findings[0].line()
    assert "NUL" in line and "写入" in line and "重新发送" in line


@pytest.mark.parametrize("written", [0.2, 0.6, 0.95, 1.0])
def test_an_xlsx_pre_sized_with_nul_bytes_is_refused_whole(setup, written):
    whole = workbook(("日报", REPORT, "visible"))
    cut = int(len(whole) * written)
    sub = parse(setup, whole[:cut] + b"\x00" * (len(whole) - cut + 100), "330825.xlsx")
    assert rules(sub) == ["file_incomplete"] and sub.rows == []


def test_a_whole_xlsx_ends_in_its_own_two_nul_bytes_and_is_not_padding(setup):
    data = workbook(("日报", REPORT, "visible"))
    assert data.endswith(b"\x00\x00") and nul_padding(data) == 0
    assert figures(parse(setup, data, "330825.xlsx")) == {"sampled": 12345, "negative": 12000, "volunteers": 3375}
    # a zip cut short ends in a few NUL bytes of its own headers now and then: still "damaged", not padding
    assert all(nul_padding(data[:end]) == 0 for end in range(1, len(data)))


def test_utf16_text_keeps_its_encoding_refusal(setup):
    sub = parse(setup, csv_text().decode("utf-8").encode("utf-16"))
    assert rules(sub) == ["unreadable_encoding"]


def test_a_nul_inside_a_cell_stays_a_soft_finding(setup):
    sub = parse(setup, csv_text([("采样人次", 12345, "全员\x00检测")]))
    assert rules(sub) == ["invisible_characters"] and sub.rows[0].note == "全员检测"


def test_a_csv_whose_last_row_is_cut_is_refused(setup):
    data = csv_text(end="")[: -len("3375,")] + b"33"  # "志愿者,33": the copy stopped mid-row, no line break
    sub = parse(setup, data)
    assert rules(sub) == ["file_incomplete"] and sub.rows == []
    assert "第4行" in sub.findings[0].line() and "截断" in sub.findings[0].line()


def test_a_csv_cut_inside_a_quoted_last_cell_is_refused(setup):
    data = csv_text(ROWS[:2], end="\n") + '志愿者,3375,"全员检'.encode()  # as many cells as the header, cut in a quote
    assert rules(parse(setup, data)) == ["file_incomplete"]


def test_a_csv_without_a_final_line_break_but_whole_rows_is_read(setup):
    assert figures(parse(setup, csv_text(end=""))) == {"sampled": 12345, "negative": 12000, "volunteers": 3375}
    instructions = csv_text() + "填表说明：不清楚的填不详".encode()  # one cell, no line break: no figure is cut
    sub = parse(setup, instructions)
    assert sub.findings == [] and len(sub.rows) == 3


# --- 2. read as a careful operator would -------------------------------------------------------------------------


def test_a_headerless_scratch_sheet_is_named_softly_and_the_report_is_read(setup):
    scratch = [["采样人次", 5000, 7345, 12345], ["志愿者", 3000, 375]]
    sub = parse(setup, workbook(("日报", REPORT, "visible"), ("计算", scratch, "visible")), "330825.xlsx")
    assert rules(sub) == ["scratch_sheet"] and sub.findings[0].severity == "soft"
    assert "计算" in sub.findings[0].line() and "日报" in sub.findings[0].line()
    assert figures(sub) == {"sampled": 12345, "negative": 12000, "volunteers": 3375}
    hidden = parse(setup, workbook(("日报", REPORT, "visible"), ("草稿", scratch, "hidden")), "330825.xlsx")
    assert rules(hidden, "soft") == ["scratch_sheet"] and "隐藏" in hidden.findings[0].line()
    assert not rules(hidden, "hard")


def test_a_scratch_sheet_naming_only_its_metric_column_has_no_header_of_its_own(setup):
    scratch = [["指标", "上午", "下午"], ["采样人次", 5000, 7345]]  # 指标 but no 数值: not a second report
    sub = parse(setup, workbook(("计算", scratch, "visible"), ("日报", REPORT, "visible")), "330825.xlsx")
    assert rules(sub) == ["scratch_sheet"] and len(sub.rows) == 3


def test_two_headed_sheets_or_only_a_hidden_header_stay_refused(setup):
    old = [["指标", "数值"], ["采样人次", 99999]]
    two = parse(setup, workbook(("日报", REPORT, "visible"), ("上周", old, "visible")), "330825.xlsx")
    assert "unread_sheet" in rules(two, "hard")
    hidden = parse(setup, workbook(("封面", [["龙游县日报"]], "visible"), ("日报", REPORT, "hidden")), "330825.xlsx")
    assert rules(hidden, "hard") == ["unread_sheet"] and "隐藏" in hidden.findings[0].line()


def test_a_cumulative_column_beside_today_is_read_not_stored_with_one_finding(setup):
    data = "指标,本日,累计,备注\n采样人次,12345,99999,\n阳性,10,183,\n新增本土确诊,1,123,\n".encode()
    sub = parse(setup, data)
    assert rules(sub) == ["cumulative_column_not_read"] and sub.findings[0].severity == "soft"
    assert figures(sub) == {"sampled": 12345, "positive": 10, "new_confirmed": 1}
    # a real split still is one: 6,720 unquoted pushes the cumulative past the header
    split = parse(setup, "指标,本日,累计\n志愿者,6,720,8795\n".encode())
    assert "unquoted_thousands_separator" in rules(split, "hard")


@pytest.mark.parametrize("name", ["累计数", "累计值", "本轮累计", "累计总数"])
def test_cumulative_aliases_in_a_workbook(setup, name):
    rows = [["指标", "本日", name], ["采样人次", 12345, 200000], ["志愿者", 3375, 9000]]
    data = with_cell(workbook(("日报", rows, "visible")), "C3", '<c r="C3"><f>C2+B3</f></c>')  # never calculated
    sub = parse(setup, data, "330825.xlsx")
    assert rules(sub) == ["cumulative_column_not_read"] and figures(sub) == {"sampled": 12345, "volunteers": 3375}


def test_a_long_note_is_cut_and_the_figure_kept(setup):
    sub = parse(setup, csv_text([("志愿者", 3375, "隔离点" * 100)]))
    (row,) = sub.rows
    assert (row.metric, row.value) == ("volunteers", 3375)
    assert len(row.note) == 200 and row.note == ("隔离点" * 100)[:199] + "…"
    (finding,) = sub.findings
    assert (finding.rule, finding.severity, finding.row) == ("note_too_long", "soft", 2) and "志愿者" in finding.metric
    small = parse(setup, csv_text([("志愿者", 3375, "志愿者" * 15)]), limits=Limits(max_note_chars=40))
    assert len(small.rows[0].note) == 40 and rules(small) == ["note_too_long"]


# --- 3. a refusal says its cause and its place -------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_a_csv_named_xlsx_is_named_as_a_csv(setup, encoding):
    sub = parse(setup, csv_text().decode().encode(encoding), "330825.xlsx")
    assert rules(sub) == ["csv_named_xlsx"]
    assert "CSV" in sub.findings[0].line() and ".csv" in sub.findings[0].line()


def test_an_xlsx_named_csv_is_named_as_a_workbook(setup):
    sub = parse(setup, workbook(("日报", REPORT, "visible")), "330825.csv")
    assert rules(sub) == ["xlsx_named_csv"] and "Excel" in sub.findings[0].line()
    ole = parse(setup, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 1000, "330825.csv")
    assert rules(ole) == ["unsupported_format"] and ".xls" in ole.findings[0].line()
    assert rules(parse(setup, b"not a zip", "330825.xlsx")) == ["unreadable_file"]


@pytest.mark.parametrize(
    "cell",
    [
        '<c r="B4"><f>SUM(3000,375)</f></c>',
        '<c r="B4"><f>SUM(3000,375)</f><v></v></c>',
        '<c r="B4" t="n"><f>SUM(3000,375)</f><v/></c>',
        '<c r="B4" t="n"><f>SUM(3000,375)</f><v> </v></c>',
    ],
)
def test_a_formula_without_a_result_is_named_with_its_cell_row_and_metric(setup, cell):
    sub = parse(setup, with_cell(workbook(("日报", REPORT, "visible")), "B4", cell), "330825.xlsx")
    (finding,) = [f for f in sub.findings if f.severity == "hard"]
    line = finding.line()
    assert finding.rule == "formula_without_value" and finding.row == 4
    assert all(word in line for word in ("B4", "第4行", "志愿者", "公式", "SUM(3000,375)")), line


def test_a_formula_in_the_metric_column_is_named(setup):
    data = with_cell(workbook(("日报", REPORT, "visible")), "A4", '<c r="A4" t="str"><f>名录!A5</f></c>')
    (finding,) = parse(setup, data, "330825.xlsx").findings
    assert finding.rule == "formula_without_value"
    assert all(word in finding.line() for word in ("A4", "第4行", "公式", "指标名称")), finding.line()


def test_a_text_formula_whose_saved_result_is_empty_reads_as_empty(setup):
    # Excel saves a formula giving "" as t="str" with an empty <v>: a blank note, not a missing result
    data = with_cell(workbook(("日报", REPORT, "visible")), "C3", '<c r="C3" t="str"><f>IF(1,"","x")</f><v></v></c>')
    sub = parse(setup, data, "330825.xlsx")
    assert sub.findings == [] and sub.rows[1].note == ""


def test_a_one_megabyte_note_is_refused_saying_where_and_why(setup):
    note = "博悦大酒店隔离点部分人员解除集中隔离，" * 18000  # 342,000 characters: past the csv module's 131,072
    sub = parse(setup, csv_text([ROWS[0], ("志愿者", 3375, note)]))
    (finding,) = sub.findings
    line = finding.line()
    assert (finding.rule, finding.severity, finding.row) == ("cell_too_long", "hard", 3)
    assert all(word in line for word in ("第3行", "备注", "志愿者", "太长", "342000")), line
    assert len(line) < 400


def test_a_100kb_note_is_read_and_cut(setup):
    note = "博悦大酒店隔离点部分人员解除集中隔离，" * 1800  # 34,200 characters
    sub = parse(setup, csv_text([("志愿者", 3375, note)]))
    assert rules(sub) == ["note_too_long"] and sub.rows[0].value == 3375 and len(sub.rows[0].note) == 200


def test_the_cell_limit_is_a_setting(setup):
    limits = Limits.from_env({"CLOSEOUT_MAX_CELL_CHARS": "500"})
    assert limits.max_cell_chars == 500
    sub = parse(setup, csv_text([("志愿者", 3375, "x" * 501)]), limits=limits)
    assert rules(sub) == ["cell_too_long"]


def test_an_unclosed_quote_swallowing_a_long_rest_is_still_named(setup):
    rest = "".join(f"志愿者,{i},说明\n" for i in range(20000))  # > 131,072 characters after the stray quote
    data = ('指标,数值,备注\n采样人次,12345,"全员\n' + rest).encode()
    assert rules(parse(setup, data, limits=Limits(max_rows=30000, max_cells=100000))) == ["unclosed_quote"]
