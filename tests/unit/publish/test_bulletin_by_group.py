"""Above CLOSEOUT_BULLETIN_TABLE_MAX_UNITS the bulletin shows groups and mails the units as an .xlsx: checked on a
small registry with a low threshold, the store's answers given directly (no loading), so it runs in a second."""

import io
import zipfile
from email import policy
from email.parser import BytesParser

import openpyxl
import pytest
from bulletin_cases import DAY, REPORTING, SOFT

from closeout.core.settings import load_settings
from closeout.deliver.mailer import build_message, mailed_sha256
from closeout.publish.bulletin.model import build_bulletin
from closeout.publish.bulletin.render import render
from closeout.publish.bulletin.spreadsheet import ZIP_EPOCH


def test_above_the_threshold_the_body_shows_groups_and_the_units_travel_as_a_spreadsheet(ctx_with):
    ctx = ctx_with(max_units=4)  # 5 units: one too many for a column each
    bulletin = build_bulletin(ctx, DAY)
    rendered = render(ctx, bulletin)
    today = ctx.store.figures[DAY]

    assert bulletin.by_group and bulletin.sections == [] and bulletin.attachment_rows == []
    assert bulletin.attachment_name == "测试省疫情防控工作日报数据_2022-03-19.xlsx"
    for body in (rendered.html, rendered.text):
        assert "甲市" in body and "乙市" in body
        tables = body.split("分组汇总")[1].split("变化较大的单位")[0]
        assert not any(
            name in tables for name in ("东城区", "西城区", "南城区", "北山县")
        )  # no unit column, no unit split: units are named only among the movers and the problems
        assert "中山县" in body  # the missing unit is still named (summary and notes)
    # every unit changed by 7 on each metric: the top movers are the first units in code order, the layout's count
    assert [(m["metric"], m["name"], m["change"]) for m in bulletin.movers][:2] == [
        ("新增本土确诊", "东城区", "+7"),
        ("新增本土确诊", "西城区", "+7"),
    ]
    assert len(bulletin.movers) == 4 * 4  # four metrics in bulletin.yaml's movers, four units changed on each
    assert [(p["name"], p["within"], p["status_label"]) for p in bulletin.problems] == [("中山县", "乙市", "缺报")]
    assert "分地区数据" not in rendered.html and "分组汇总" in rendered.html
    testing = next(s for s in bulletin.rollup if s["title"] == "二、核酸检测")
    sampled = [c["label"] for c in testing["columns"]].index("采样人次")
    groups = {row["label"]: (row["reported"], row["cells"][sampled]) for row in testing["rows"]}
    first = sum(today[c]["sampled"] for c in ("330102", "330103", "330104"))
    assert groups == {"甲市": ("3/3", str(first)), "乙市": ("1/2", str(today["330202"]["sampled"]))}  # no 省本级 row
    assert testing["reported"] == "4/5"
    assert bulletin.summary[0].startswith("3月19日0—24时，测试省新增本土确诊")  # the region, not 全市

    sheet = openpyxl.load_workbook(io.BytesIO(rendered.attachment)).active
    rows = list(sheet.iter_rows(values_only=True))
    metrics = ctx.catalogue.metrics
    assert rows[0] == ("区划代码", "单位名称", "所属分组", "报送状态", *(f"{m.label}（{m.unit}）" for m in metrics))
    assert [r[:4] for r in rows[1:]] == [
        ("330102", "东城区", "甲市", "已结清"),
        ("330103", "西城区", "甲市", "已结清"),
        ("330104", "南城区", "甲市", "已结清"),
        ("330202", "北山县", "乙市", "已结清"),
        ("330203", "中山县", "乙市", "缺报"),
        ("330001", "省本级", "省本级", "无单独报送"),
        ("330000", "测试省（合计）", None, None),
    ]
    assert rows[5][4:] == ("—",) * len(metrics)  # missing is "—", never 0
    totals = dict(zip((m.key for m in metrics), rows[-1][4:], strict=True))
    assert totals == {m.key: sum(today[c][m.key] for c in REPORTING) for m in metrics}
    soft = sheet.cell(row=3, column=5 + [m.key for m in metrics].index(SOFT[1]))
    assert (soft.value, soft.number_format) == (today["330103"][SOFT[1]], 'General"余"')  # a number, shown as "N余"

    again = render(ctx, build_bulletin(ctx, DAY))
    assert again.attachment == rendered.attachment and again.sha256 == rendered.sha256  # an unchanged store
    with zipfile.ZipFile(io.BytesIO(rendered.attachment)) as archive:
        assert {info.date_time for info in archive.infolist()} == {ZIP_EPOCH}  # not the time of saving
        assert b"2022-03-19T00:00:00Z" in archive.read("docProps/core.xml")


def test_at_the_threshold_each_unit_keeps_its_column_and_the_csv(ctx_with):
    ctx = ctx_with(max_units=5)
    bulletin = build_bulletin(ctx, DAY)
    rendered = render(ctx, bulletin)
    assert not bulletin.by_group and bulletin.attachment_name.endswith(".csv")
    assert "分地区数据" in rendered.html and "东城区" in rendered.html
    assert len(bulletin.sections[0]["rows"][0]["cells"]) == 6  # five units and 省本级
    assert rendered.attachment.startswith(b"\xef\xbb\xbf")


def test_the_spreadsheet_is_mailed_as_xlsx_and_hashes_to_the_edition(ctx_with):
    ctx = ctx_with(max_units=4)
    bulletin = build_bulletin(ctx, DAY)
    rendered = render(ctx, bulletin)
    message = build_message(
        bulletin.subject, rendered, bulletin.attachment_name, "closeout@test.invalid", ("a@test.invalid",), "<id@x>"
    )
    parsed = BytesParser(policy=policy.default).parsebytes(message.as_bytes())
    attachment, long_csv, pdf = list(parsed.iter_attachments())
    assert pdf.get_payload(decode=True) == rendered.pdf
    assert attachment.get_content_type() == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert attachment.get_filename() == bulletin.attachment_name
    assert long_csv.get_content_type() == "application/zip"
    assert long_csv.get_filename() == "测试省疫情防控工作日报数据_2022-03-19.csv.zip"
    assert long_csv.get_payload(decode=True) == rendered.level_zip
    assert mailed_sha256(parsed) == rendered.sha256


def test_the_threshold_setting():
    assert load_settings({}).bulletin_table_max_units == 12  # a city shows its units; a province (~90) groups
    assert load_settings({"CLOSEOUT_BULLETIN_TABLE_MAX_UNITS": "100"}).bulletin_table_max_units == 100
    for bad in ("many", "-1", "3.5"):
        with pytest.raises(ValueError, match="CLOSEOUT_BULLETIN_TABLE_MAX_UNITS"):
            load_settings({"CLOSEOUT_BULLETIN_TABLE_MAX_UNITS": bad})


def test_text_in_the_spreadsheet_never_becomes_a_formula():
    from closeout.publish.bulletin.spreadsheet import unit_workbook

    data = unit_workbook("t", DAY, [["区划代码", "单位名称"], ["330102", '=HYPERLINK("http://x.invalid","点击")']])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert b"<f>" not in archive.read("xl/worksheets/sheet1.xml")
    cell = openpyxl.load_workbook(io.BytesIO(data)).active["B2"]
    assert (cell.value, cell.data_type) == ('\'=HYPERLINK("http://x.invalid","点击")', "s")  # as in the CSV
