"""The bulletin's PDF, charts and HTML email, checked with the tools a reader's machine would use: poppler
(pdftotext, pdffonts, pdftoppm) for the PDF, headless Chromium for the email at a phone's and a desktop's width.

The sample week 2022-03-13..19 is closed once for the module; 3月19日 is rendered once. Rasters and screenshots go
to `artefacts/` (CLOSEOUT_ARTEFACTS overrides). Under CI a missing tool fails the test; elsewhere it skips it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from bulletin_cases import IMG, SCRIPT, hostile_name, hostile_store
from conftest import ROOT, SAMPLE_INBOX, copy_day
from test_bulletin import check_golden
from tools import poppler, require

from closeout.close.load import load_group
from closeout.close.plan import plan_unit_groups
from closeout.close.reconcile import reconcile_day
from closeout.publish.bulletin.model import build_bulletin
from closeout.publish.bulletin.render import render

DAY = date(2022, 3, 19)
WEEK = [DAY - timedelta(days=n) for n in range(6, -1, -1)]
ARTEFACTS = Path(os.environ.get("CLOSEOUT_ARTEFACTS", ROOT / "artefacts"))
CHROMIUM = os.environ.get("CLOSEOUT_CHROMIUM", "/usr/bin/chromium")
pytestmark = pytest.mark.integration
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    """The sample week closed on SQLite, and 3月19日's bulletin rendered: (ctx, bulletin, rendered, pdf path)."""
    from closeout.store.context import Context

    work = tmp_path_factory.mktemp("media")
    inbox = work / "inbox"
    for day in WEEK:
        copy_day(SAMPLE_INBOX / day.isoformat(), inbox, day.isoformat())
    env = {
        "CLOSEOUT_INBOX": str(inbox),
        "CLOSEOUT_ARCHIVE": str(work / "archive"),
        "CLOSEOUT_OUTBOX": str(work / "outbox"),
        "CLOSEOUT_DB_URL": f"sqlite:///{work / 'store.db'}",
        "CLOSEOUT_SETTLE_SECONDS": "0",
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        ctx = Context.from_env()
        for day in WEEK:
            for group in plan_unit_groups(ctx):
                load_group(ctx, day, group["codes"])
            reconcile_day(ctx, day)
        bulletin = build_bulletin(ctx, DAY)
        rendered = render(ctx, bulletin)
        pdf = work / "bulletin.pdf"
        pdf.write_bytes(rendered.pdf)
        yield ctx, bulletin, rendered, pdf


def test_pdf_text_matches_golden(week):
    *_, pdf = week
    check_golden("bulletin-2022-03-19.pdf.txt", poppler("pdftotext", "-enc", "UTF-8", str(pdf), "-"))


def test_pdf_embeds_the_cjk_font_and_draws_every_glyph(week):
    *_, pdf = week
    fonts = poppler("pdffonts", str(pdf)).splitlines()[2:]
    assert fonts, "no fonts in the PDF"
    for line in fonts:
        name, emb = line.split()[0], line.split()[-5]
        # every glyph from Noto CJK SC (the Song face of the body, the sans of the page margins), embedded; a missing
        # glyph would bring in a fallback font or a Type 3
        assert name.split("+")[-1].startswith(("Noto-Serif-CJK-SC", "Noto-Sans-CJK-SC")), line
        assert emb == "yes" and "Type 3" not in line, line
    text = poppler("pdftotext", "-enc", "UTF-8", str(pdf), "-")
    for expected in ("衢州市疫情防控工作日报（3月19日）", "总体情况", "分地区数据", "近期走势", "各地动态", "数据说明"):
        assert expected in text
    assert "\ufffd" not in text and b".notdef" not in pdf.read_bytes()


def test_pdf_is_a4_with_the_title_and_page_numbers_on_every_page(week):
    *_, pdf = week
    info = poppler("pdfinfo", str(pdf))
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M)[1])
    assert "(A4)" in info and pages > 1
    for page in range(1, pages + 1):
        text = poppler("pdftotext", "-enc", "UTF-8", "-f", str(page), "-l", str(page), str(pdf), "-")
        assert text.startswith("衢州市疫情防控工作日报（3月19日）"), page  # the running header, title and date
        assert re.sub(r"\s", "", text).endswith(f"第{page}页/共{pages}页"), page
    # the table of units goes on over the page: its header row comes again
    second = poppler("pdftotext", "-enc", "UTF-8", "-f", "2", "-l", "2", str(pdf), "-")
    assert re.search(r"指标\s+单位\s+柯城区", second) and "一、病例情况" not in second.split("指标")[0]


def test_pdf_rasterises(week):
    *_, pdf = week
    folder = ARTEFACTS / "pdf"
    folder.mkdir(parents=True, exist_ok=True)
    poppler("pdftoppm", "-r", "60", "-png", str(pdf), str(folder / "bulletin-2022-03-19"))
    pages = sorted(folder.glob("bulletin-2022-03-19-*.png"))
    assert pages and all(p.stat().st_size > 5000 for p in pages)  # drawn, not blank


def test_hostile_text_is_printed_as_text_in_the_pdf(make_ctx, tmp_path):  # noqa: F811
    ctx = make_ctx(registry=hostile_name)
    hostile_store(ctx)
    rendered = render(ctx, build_bulletin(ctx, DAY))
    pdf = tmp_path / "hostile.pdf"
    pdf.write_bytes(rendered.pdf)
    text = re.sub(r"\s", "", poppler("pdftotext", "-enc", "UTF-8", str(pdf), "-"))
    assert re.sub(r"\s", "", SCRIPT) in text and re.sub(r"\s", "", IMG) in text  # shown, not markup
    assert b"/JavaScript" not in rendered.pdf and b"/JS" not in rendered.pdf


def test_each_chart_has_its_text_in_the_plain_part_and_as_alt(week):
    _, _, rendered, _ = week
    charts = dict(rendered.images)
    assert list(charts) == ["chart-1-region.png", "chart-2-cases-by-area.png", "chart-3-isolation-by-area.png"]
    assert all(png.startswith(b"\x89PNG") for png in charts.values())
    alts = re.findall(r'<img src="cid:([^"]+)@closeout" alt="([^"]+)"', rendered.html)
    assert [name for name, _ in alts] == list(charts) and all(len(alt) > 20 for _, alt in alts)
    text = rendered.text.split("【近期走势】")[1].split("【各地动态】")[0]
    assert "衢州市近7天主要指标（3月13日至3月19日）：" in text
    assert re.search(r"采样人次（人次）：3/13 \d+，.*，3/19 1174133", text)
    assert re.search(r"^  柯城区：(\d+、){6}\d+$", text, re.M)  # a unit's 7 days, in date order


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=require(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.mark.browser
@pytest.mark.parametrize("width", [375, 1280])
def test_the_mailed_html_fits_a_phone_and_a_desktop(week, chromium, width):
    """The HTML as mailed, its cid: images resolved to files beside it (what a mail client does with the parts)."""
    _, _, rendered, _ = week
    folder = ARTEFACTS / "browser" / "bulletin"
    folder.mkdir(parents=True, exist_ok=True)
    for name, png in rendered.images:
        (folder / name).write_bytes(png)
    page_file = folder / "bulletin-2022-03-19.html"
    page_file.write_text(re.sub(r'src="cid:([^"@]+)@closeout"', r'src="\1"', rendered.html), encoding="utf-8")
    context = chromium.new_context(viewport={"width": width, "height": 900}, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(page_file.as_uri())
        page.wait_for_load_state("load")
        page.screenshot(path=str(ARTEFACTS / "browser" / f"bulletin-{width}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling of the page
        too_wide = page.evaluate(
            """(width) => [...document.body.querySelectorAll('*')]
                .filter((e) => !e.parentElement.closest('.scroll'))  // a wide table scrolls inside its box
                .filter((e) => e.getBoundingClientRect().right > width + 0.5)
                .map((e) => e.tagName + ' ' + e.textContent.slice(0, 30))""",
            width,
        )
        assert too_wide == []
        images = page.evaluate("[...document.images].map((i) => [i.complete, i.naturalWidth, i.clientWidth])")
        assert len(images) == 3 and all(done and natural > 0 for done, natural, _ in images)
        assert all(shown <= width for *_, shown in images)
    finally:
        context.close()


@pytest.mark.unit
def test_neither_the_dag_nor_the_bulletin_imports_the_renderers_until_rendering():
    """matplotlib and WeasyPrint take seconds to import: a DAG parse or a task that renders nothing never pays."""
    code = (
        "import sys, closeout.publish.bulletin.model, closeout.publish.bulletin.render, closeout.publish.editions, closeout.deliver.mailer, closeout.orchestration.pipeline, closeout.orchestration.airflow_glue\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'matplotlib', 'weasyprint', 'css_inline'}))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert loaded.strip() == "[]"


def test_charts_find_the_cjk_font_installed_after_matplotlib_listed_the_fonts(tmp_path, monkeypatch):
    """matplotlib lists the system fonts once and keeps the list on disk: on a machine where fonts-noto-cjk came
    after matplotlib's first run, the font is missing from that list, though installed. The charts add it."""
    import matplotlib
    from matplotlib import font_manager

    from closeout.publish import charts

    require("fc-list")
    manager = font_manager.fontManager
    listed = list(manager.ttflist)
    monkeypatch.setattr(matplotlib, "get_cachedir", lambda: str(tmp_path))  # the rescanned list is written here
    manager.ttflist = [f for f in listed if "CJK" not in f.fname]  # the list as cached before the fonts came
    manager._findfont_cached.cache_clear()  # noqa: SLF001 — findfont remembers its last answers
    try:
        with pytest.raises(ValueError):
            font_manager.findfont(font_manager.FontProperties(family=charts.CHART_FONT), fallback_to_default=False)
        assert charts.cjk_font.__wrapped__() == charts.CHART_FONT  # uncached: this process may have asked before
        found = font_manager.findfont(font_manager.FontProperties(family=charts.CHART_FONT), fallback_to_default=False)
        assert "CJK" in found
        assert any(
            "CJK" in f["fname"] for f in json.loads(next(tmp_path.glob("fontlist-*.json")).read_text())["ttflist"]
        )
    finally:
        manager.ttflist = listed
        manager._findfont_cached.cache_clear()  # noqa: SLF001
