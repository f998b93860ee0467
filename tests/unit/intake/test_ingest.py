"""Reading what counties send: encodings, headers, spacer/total/instruction rows, XLSX quirks, file names."""

from datetime import date, datetime

import openpyxl
import pytest

from closeout.core.catalogue import load_catalogue
from closeout.core.registry import load_registry
from closeout.core.settings import load_settings
from closeout.intake.discovery import discover
from closeout.intake.narrative import read_narrative
from closeout.intake.rows import parse_submission
from closeout.intake.spreadsheets import decode_bytes

DAY = date(2022, 3, 19)


@pytest.fixture(scope="module")
def setup():
    settings = load_settings({})
    return load_catalogue(settings.catalogue_path, settings.checks_path), load_registry(settings.registry_path)


def parse(setup, path, unit="330825"):
    catalogue, registry = setup
    return parse_submission(path, registry.get(unit), DAY, catalogue, registry)


def figures(sub):
    return {r.metric: r.value for r in sub.rows}


CHINESE = "指标,数值,单位代码,日期,备注\n采样人次,12345,330825,2022-03-19,\n阴性,12000,330825,2022-03-19,全员检测\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_encodings_with_chinese_headers(setup, tmp_path, encoding):
    path = tmp_path / "330825.csv"
    path.write_bytes(CHINESE.encode(encoding))
    sub = parse(setup, path)
    assert sub.findings == []
    assert figures(sub) == {"sampled": 12345, "negative": 12000}
    assert sub.rows[1].note == "全员检测"


def test_gbk_bytes_are_never_decoded_as_mojibake():
    text, encoding = decode_bytes("采样人次".encode("gbk"))
    assert (text, encoding) == ("采样人次", "gb18030")
    text, encoding = decode_bytes("\ufeff采样人次".encode("utf-8"))
    assert (text, encoding) == ("采样人次", "utf-8-sig")  # the BOM is gone


def test_blank_rows_total_rows_and_instructions(setup, tmp_path):
    path = tmp_path / "330825.csv"
    path.write_text(
        "metric,value\n"
        "sampled,100\n"
        ",\n"  # spacer
        "合计,100\n"  # a 合计 row over different metrics is dropped
        "tested,90\n"
        "填表说明：数值填当日0—24时\n"
        "1. 不清楚的填不详\n",  # more instructions: text, no figures
        encoding="utf-8",
    )
    sub = parse(setup, path)
    assert sub.findings == []
    assert figures(sub) == {"sampled": 100, "tested": 90}


def test_figures_after_the_instructions_are_a_finding_not_a_silence(setup, tmp_path):
    path = tmp_path / "330825.csv"
    path.write_text("metric,value\nsampled,100\n填表说明：数值填当日0—24时\ntested,90\n", encoding="utf-8")
    sub = parse(setup, path)
    assert [(f.rule, f.row, f.severity) for f in sub.findings] == [("data_after_instructions", 4, "hard")]
    assert "第3行的说明之后还有数据" in sub.findings[0].line()


def test_parts_are_kept_for_summing_and_subtotal_checking(setup, tmp_path):
    path = tmp_path / "330825.csv"
    path.write_text("指标,分项,数值\n采样人次,东华街道,100\n采样人次,湖镇镇,50\n采样人次,合计,150\n", encoding="utf-8")
    sub = parse(setup, path)
    assert [(r.part, r.value) for r in sub.rows] == [("东华街道", 100), ("湖镇镇", 50), ("合计", 150)]


def test_unknown_metric_and_bad_value_are_one_line_each(setup, tmp_path):
    path = tmp_path / "龙游县.csv"
    path.write_text("指标,数值\n采样人次,600余\n核酸采样人数,12\n阴性,5万3\n", encoding="utf-8")
    sub = parse(setup, path)
    lines = [f.line() for f in sub.findings]
    assert lines == [
        "[拒收] 龙游县(330825) 文件 龙游县.csv 第2行 指标 sampled(采样人次) 值“600余”：硬性指标须为确数，不接受约数 "
        "[rule: approximation_in_hard_metric]",
        "[拒收] 龙游县(330825) 文件 龙游县.csv 第3行 指标 核酸采样人数 值“12”：指标不在目录中（见 docs/submission-format.md） "
        "[rule: unknown_metric]",
        "[拒收] 龙游县(330825) 文件 龙游县.csv 第4行 指标 negative(阴性) 值“5万3”：口语化数字，请写阿拉伯数字（如 35000 或 3.5万） "
        "[rule: colloquial_number]",
    ]


def test_missing_header_is_rejected(setup, tmp_path):
    path = tmp_path / "330825.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    assert [f.rule for f in parse(setup, path).findings] == ["missing_header"]


def test_xlsx_title_row_merged_header_serial_dates_and_text_numbers(setup, tmp_path):
    path = tmp_path / "330825.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["龙游县疫情防控日报"])
    sheet.merge_cells("A1:D1")
    sheet.append(["指标", "数值", "日期", None])  # a two-row header: the second row names the unit-code column
    sheet.append([None, None, None, "单位代码"])
    sheet.merge_cells("A2:A3")
    sheet.append(["采样人次", 12345, 44639, "330825"])  # Excel serial date
    sheet.append(["已出结果人次", "12,000", datetime(2022, 3, 19), "330825"])  # number stored as text
    sheet.append([None, None, None, None])
    sheet.append(["填表说明：请勿修改表头"])
    book.save(path)
    sub = parse(setup, path)
    assert sub.findings == []
    assert figures(sub) == {"sampled": 12345, "tested": 12000}
    assert {r.declared_date for r in sub.rows} == {"2022-03-19"}


def test_corrupt_xlsx_is_rejected_not_crashed(setup, tmp_path):
    path = tmp_path / "330825.xlsx"
    path.write_bytes(b"not a zip")
    assert [f.rule for f in parse(setup, path).findings] == ["unreadable_file"]


def test_discover_matches_code_slug_name_and_alias(setup, tmp_path):
    _, registry = setup
    folder = tmp_path / DAY.isoformat()
    folder.mkdir()
    for name in ("330802.csv", "qujiang.csv", "常山县.xlsx", "衢州开化.csv", "龙游.md", "somewhere.csv", "~$lock.xlsx"):
        (folder / name).write_text("x", encoding="utf-8")
    day = discover(tmp_path, DAY, registry)
    assert {code: [p.name for p in paths] for code, paths in day.figure_files.items()} == {
        "330802": ["330802.csv"],
        "330803": ["qujiang.csv"],
        "330822": ["常山县.xlsx"],
        "330824": ["衢州开化.csv"],
    }
    assert list(day.narratives) == ["330825"]
    assert [p.name for p in day.unmatched] == ["somewhere.csv"]


def test_narrative_file():
    item, removed = read_narrative("# 三道防线编织精密防控网\n邓威\n\n第一段。\n\n第二段。\n".encode())
    assert (item.headline, item.byline, item.paragraphs) == ("三道防线编织精密防控网", "邓威", ("第一段。", "第二段。"))
    assert removed == []


def test_narrative_loses_control_and_invisible_characters_and_says_which():
    item, removed = read_narrative("# 标题\x00\n作者\u200b\n正文\u202e一段。\x85\n".encode())
    assert (item.headline, item.byline, item.paragraphs) == ("标题", "作者", ("正文一段。",))
    assert removed == ["U+0000", "U+200B", "U+202E", "U+0085"]


def test_every_sample_file_loads_without_findings(setup):
    catalogue, registry = setup
    inbox = load_settings({}).include_dir.parent / "sample" / "inbox"
    days = sorted(p.name for p in inbox.iterdir())
    assert days == [f"2022-03-{d}" for d in range(13, 20)]
    for day in days:
        found = discover(inbox, date.fromisoformat(day), registry)
        assert sorted(found.figure_files) == [u.code for u in registry.units]
        for code, (path,) in found.figure_files.items():
            sub = parse_submission(path, registry.get(code), date.fromisoformat(day), catalogue, registry)
            assert sub.findings == [], (path, sub.findings)
            assert {r.metric for r in sub.rows} == {m.key for m in catalogue.reported()}
