"""The bulletin's layout from include/catalogue/bulletin.yaml, its conventions, and text from units made inert.

Runs on a copy of include/ (edited per test) and the store's answers given directly, as test_bulletin_by_group."""

import csv
import io
import logging
import re
from pathlib import Path

import openpyxl
import pytest
from bulletin_cases import (
    DAY,
    HYPERLINK,
    INCLUDE,
    REPORTING,
    SCRIPT,
    SOFT,
    assert_html_inert,
    hostile_name,
    hostile_store,
)

from closeout.publish.bulletin.model import build_bulletin
from closeout.publish.bulletin.render import render
from closeout.publish.bulletin.spreadsheet import unit_workbook


def edit_file(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def drop_metric(key: str):
    def edit(folder: Path) -> None:
        path = folder / "metrics.yaml"
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(ln for ln in lines if f"{{key: {key}," not in ln), encoding="utf-8")

    return edit


def rows_by_section(bulletin) -> dict[str, list[str]]:
    return {s["title"]: [r["label"] for r in s["rows"]] for s in bulletin.sections}


def test_the_shipped_layout_places_every_metric(make_ctx):
    bulletin = build_bulletin(make_ctx(), DAY)
    assert list(rows_by_section(bulletin)) == ["一、病例情况", "二、核酸检测", "三、隔离管控", "四、基层防控"]
    assert len(bulletin.summary) == 4 + 1  # four sentences and the missing 中山县's line
    assert bulletin.summary[-1] == "（中山县数据截至发布时未报送，按缺报处理，次日补报后订正）"


def test_a_metric_removed_from_the_catalogue_leaves_out_the_sentences_citing_it(make_ctx, caplog):
    full = build_bulletin(make_ctx(), DAY)
    with caplog.at_level(logging.WARNING, logger="closeout.publish.layout"):
        bulletin = build_bulletin(make_ctx(drop_metric("positive")), DAY)
    render(make_ctx(drop_metric("positive")), bulletin)  # no KeyError at render time either
    assert [s for s in bulletin.summary if s.startswith("核酸检测")] == []  # the sentence citing it is left out
    heads = [s.split("：")[0][:8] for s in full.summary if not s.startswith("核酸检测")]
    assert [s.split("：")[0][:8] for s in bulletin.summary] == heads  # the others stay, in order
    assert "阳性" not in rows_by_section(bulletin)["二、核酸检测"]
    assert "summary sentence 2 left out: metric positive is not in the catalogue" in caplog.text

    def drop_everywhere(folder: Path) -> None:  # …and removed from the layout too, the sentence is back without it
        drop_metric("positive")(folder)
        edit_file(
            folder / "bulletin.yaml", "（{{ say('negative') }}，{{ say('positive') }}）", "（{{ say('negative') }}）"
        )

    bulletin = build_bulletin(make_ctx(drop_everywhere), DAY)
    (testing,) = [s for s in bulletin.summary if s.startswith("核酸检测")]
    assert "阳性" not in testing and "阴性" in testing


def test_an_optional_clause_guarded_by_has_keeps_its_sentence(make_ctx):
    bulletin = build_bulletin(make_ctx(drop_metric("asymptomatic_to_confirmed")), DAY)
    assert bulletin.summary[0].startswith("3月19日0—24时，测试省新增本土确诊") and "转确诊" not in bulletin.summary[0]
    assert "无症状转确诊" not in rows_by_section(bulletin)["一、病例情况"]


def test_re_sectioning_a_metric_moves_it(make_ctx):
    def move(folder: Path) -> None:
        edit_file(
            folder / "metrics.yaml",
            "severity: hard, section: testing, aliases: [核酸采样人次",
            "severity: hard, section: cases, aliases: [核酸采样人次",
        )

    bulletin = build_bulletin(make_ctx(move), DAY)
    sections = rows_by_section(bulletin)
    assert "采样人次" in sections["一、病例情况"] and "采样人次" not in sections["二、核酸检测"]
    rollup = build_bulletin(make_ctx(move, max_units=4), DAY).rollup  # the group tables follow too
    cases = next(s for s in rollup if s["title"] == "一、病例情况")
    assert "采样人次" in [c["label"] for c in cases["columns"]]


def test_sections_take_the_layouts_order_and_titles(make_ctx):
    def reorder(folder: Path) -> None:
        edit_file(folder / "bulletin.yaml", "  - {key: cases, title: 一、病例情况, title_en: 1. Cases}\n", "")
        edit_file(
            folder / "bulletin.yaml",
            "  - {key: community, title: 四、基层防控, title_en: 4. Community work}\n",
            "  - {key: community, title: 四、基层防控, title_en: 4. Community work}\n  - {key: cases, title: 附：病例}\n",
        )

    assert list(rows_by_section(build_bulletin(make_ctx(reorder), DAY)))[-1] == "附：病例"


def test_a_metric_in_a_section_the_layout_lacks_is_refused_in_one_line(make_ctx):
    def stray(folder: Path) -> None:
        edit_file(folder / "metrics.yaml", "section: community, aliases: [卡点", "section: borders, aliases: [卡点")

    with pytest.raises(ValueError) as refused:
        build_bulletin(make_ctx(stray), DAY)
    message = str(refused.value)
    assert "\n" not in message and "checkpoints(防疫卡点)" in message and "'borders'" in message


def test_a_sentence_using_a_name_the_bulletin_lacks_is_refused_in_one_line(make_ctx):
    def typo(folder: Path) -> None:
        edit_file(folder / "bulletin.yaml", "{{ say('home_observation') }}", "{{ sya('home_observation') }}")

    with pytest.raises(ValueError, match=r"^bulletin.yaml: summary sentence 3 uses sya, not one of") as refused:
        build_bulletin(make_ctx(typo), DAY)
    assert "\n" not in str(refused.value)


def test_a_zero_flow_reads_no_new(make_ctx):
    ctx = make_ctx()
    for code in REPORTING:
        ctx.store.figures[DAY][code]["new_confirmed"] = 0
    summary = build_bulletin(ctx, DAY).summary[0]
    assert summary.startswith("3月19日0—24时，测试省无新增本土确诊（不含中山县；") and "新增本土确诊0" not in summary


def test_no_figure_reads_a_dash(make_ctx):
    ctx = make_ctx()
    for code in REPORTING:
        del ctx.store.figures[DAY][code]["sampled"]
    bulletin = build_bulletin(ctx, DAY)
    assert "当日采样人次—，" in bulletin.summary[1]
    assert next(r for r in bulletin.sections[1]["rows"] if r["label"] == "采样人次")["total"] == "—"


def unknown(code: str, key: str, label: str) -> dict:
    """The finding validation keeps for a figure reported as 不详."""
    return dict(
        unit_code=code, severity="missing", stage="validate", rule="value_unknown", metric=f"{key}({label})",
        row_no=1, value="不详", message="填报为“不详”（按未知处理，不计为0）",
    )  # fmt: skip


def test_unknown_reads_buxiang_never_zero_or_missing(make_ctx):
    ctx = make_ctx()
    findings = [unknown(code, "volunteers", "志愿者") for code in REPORTING] + [
        unknown("330103", "checkpoints", "防疫卡点")
    ]
    for code in REPORTING:
        del ctx.store.figures[DAY][code]["volunteers"]
    del ctx.store.figures[DAY]["330103"]["checkpoints"]
    ctx.store.answers["select_findings"] = findings
    bulletin = build_bulletin(ctx, DAY)
    community = bulletin.summary[3]
    assert "志愿者不详" in community  # no unit knows
    checkpoints = sum(ctx.store.figures[DAY][c]["checkpoints"] for c in REPORTING if c != "330103")
    assert f"防疫卡点{checkpoints}个（西城区不详）" in community  # the total says whom it lacks
    row = next(r for r in bulletin.sections[3]["rows"] if r["label"] == "防疫卡点")
    assert row["cells"][:2] == [str(ctx.store.figures[DAY]["330102"]["checkpoints"]), "不详"]
    assert row["cells"][4] == "—"  # 中山县 sent nothing: missing, not unknown


def test_an_approximate_soft_figure_keeps_its_qualifier(make_ctx):
    ctx = make_ctx()
    code, key, qualifier = SOFT  # 西城区 reports donated goods as "N余公斤"
    for other in REPORTING:
        if other != code:
            ctx.store.figures[DAY][other][key] = 0
    ctx.store.figures[DAY][code][key] = 600
    bulletin = build_bulletin(ctx, DAY)
    assert "捐赠物资600余公斤" in bulletin.summary[3]  # not "约600"
    row = next(r for r in bulletin.sections[3]["rows"] if r["label"] == "捐赠物资")
    assert row["total"] == "600余" and row["cells"][1] == "600余"


def test_text_from_units_is_inert_in_the_html_and_the_csv(make_ctx):
    ctx = make_ctx(registry=hostile_name)
    hostile_store(ctx)
    bulletin = build_bulletin(ctx, DAY)
    rendered = render(ctx, bulletin)
    assert_html_inert(rendered.html)
    assert SCRIPT in rendered.text  # the plain-text part shows it as written: text/plain runs nothing
    rows = list(csv.DictReader(io.StringIO(rendered.attachment.decode("utf-8-sig"))))
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "@", "\t", "\r")) or value[1:].isdigit(), value
            assert not value.startswith("-") or value[1:].replace(".", "").isdigit(), value
    assert {r["unit_name"] for r in rows if r["unit_code"] == "330102"} == {"'" + HYPERLINK + SCRIPT}
    volunteers = next(r for r in rows if r["unit_code"] == "330102" and r["metric"] == "volunteers")
    assert volunteers["change"] == "-5"  # a number, not text: no apostrophe


def test_text_from_units_is_inert_in_the_html_and_the_xlsx(make_ctx):
    ctx = make_ctx(max_units=4, registry=hostile_name)
    hostile_store(ctx)
    rendered = render(ctx, build_bulletin(ctx, DAY))
    assert_html_inert(rendered.html)
    sheet = openpyxl.load_workbook(io.BytesIO(rendered.attachment)).active
    cells = [c for row in sheet.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    assert sheet["B2"].value == "'" + HYPERLINK + SCRIPT
    assert all(isinstance(c.value, int) for c in sheet[2][4:])  # the unit's figures stay numbers


def test_the_html_template_never_turns_escaping_off():
    template = (INCLUDE / "templates" / "bulletin.html.j2").read_text(encoding="utf-8")
    assert not re.search(r"\|\s*safe\b|autoescape\s+false|Markup", template)  # the hostile tests show it is on


def test_numbers_stay_numbers_in_the_xlsx():
    data = unit_workbook("t", DAY, [["a", "b", "c", "d"], [(-5, ""), "-5", "+1", "@x"]])
    row = openpyxl.load_workbook(io.BytesIO(data)).active[2]
    assert [(c.value, c.data_type) for c in row] == [(-5, "n"), ("-5", "s"), ("+1", "s"), ("'@x", "s")]
