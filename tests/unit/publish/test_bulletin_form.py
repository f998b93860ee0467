"""The official form of the 工作日报 (红头, 第N期, 签发人, 报/送/发), large figures, a province-sized bulletin and its
attachments, and the English rendering: the store's answers given directly (as test_bulletin_by_group), except for
the issue numbers, which live in a real store."""

import csv
import io
import re
import zipfile
from datetime import date, timedelta

import openpyxl
import pytest
from bulletin_cases import DAY, Elements, StoreAnswers
from tools import poppler

from closeout.core.numbers import figure_text
from closeout.core.settings import load_settings
from closeout.publish.bulletin.model import build_bulletin
from closeout.publish.bulletin.render import render
from closeout.publish.bulletin.spreadsheet import ZIP_EPOCH
from closeout.publish.masthead import Issue, day_signer
from closeout.store.database import Store


def long_csv(rendered) -> str:
    """The long CSV out of its zip, checked to be the only file there and named as the workbook."""
    with zipfile.ZipFile(io.BytesIO(rendered.level_zip)) as archive:
        (name,) = archive.namelist()
        assert name.endswith("_2022-03-19.csv") and archive.getinfo(name).date_time == ZIP_EPOCH
        return archive.read(name).decode("utf-8-sig")


HOSTILE = ("<script>alert(1)</script>", '<img src=x onerror="alert(1)">', '=HYPERLINK("http://x.invalid","点击")')


@pytest.mark.unit
@pytest.mark.parametrize(
    ("figure", "language", "shown"),
    [
        ((1174133, ""), "zh", "117.41万"),  # the conventions' large figure
        ((1140205, ""), "zh", "114.02万"),
        ((380000, "约"), "zh", "约38万"),
        ((123456789, ""), "zh", "1.23亿"),
        ((99999, ""), "zh", "99999"),  # below the threshold every digit stays
        ((600, "余"), "zh", "600余"),
        ((1174133, ""), "en", "1,174,133"),  # English: thousands separators, never 万
        ((600, "余"), "en", "over 600"),
        ((380000, "约"), "en", "about 380,000"),
    ],
)
def test_figures_as_the_reader_reads_them(figure, language, shown):
    assert figure_text(*figure, language=language, large_from=100_000) == shown


@pytest.fixture
def store(tmp_path):
    return Store(f"sqlite:///{tmp_path / 'issues.db'}", load_settings({}).include_dir / "sql")


class IssueContext:
    def __init__(self, store):
        self.store = store


@pytest.mark.unit
def test_the_signer_is_the_approver_of_the_days_sign_off(store):
    ctx = IssueContext(store)
    assert day_signer(ctx, DAY) == ""
    with store.transaction() as conn:
        for number, decision, who in ((1, "rejected", "王值班"), (2, "approved", "李主任"), (3, "pending", None)):
            store.run(
                conn,
                "insert_signoff_request",
                {"report_date": DAY.isoformat(), "edition_no": number, "reasons": "r", "requested_at": "t"},
            )
            if who:
                store.run(
                    conn,
                    "decide_signoff",
                    {
                        "report_date": DAY.isoformat(),
                        "edition_no": number,
                        "decision": decision,
                        "decided_by": who,
                        "decided_at": "t",
                        "comment": "",
                    },
                )
    assert day_signer(ctx, DAY) == "李主任"


@pytest.fixture
def small_ctx(ctx_for, tmp_path):
    from bulletin_cases import REGISTRY

    def build(**env):
        registry = tmp_path / "registry.yaml"
        registry.write_text(REGISTRY, encoding="utf-8")
        ctx = ctx_for(f"sqlite:///{tmp_path / 'unused.db'}", CLOSEOUT_REGISTRY=str(registry), **env)
        ctx.store = StoreAnswers([m.key for m in ctx.catalogue.metrics])
        return ctx

    return build


@pytest.mark.unit
def test_the_head_and_foot_of_the_official_form(small_ctx):
    ctx = small_ctx()
    bulletin = build_bulletin(ctx, DAY, issue=Issue(12, date(2022, 3, 20)), signer="李主任")
    rendered = render(ctx, bulletin)
    html = re.sub(r' style="[^"]*"', "", rendered.html)  # the mail's CSS is inlined; the structure is what's read here
    head = html.split("<h2>")[0]
    assert '<header class="masthead">' in head and "第12期" in head
    assert "衢州市新冠肺炎疫情防控工作领导小组办公室" in head and "签发人：李主任" in head
    assert re.search(r"统计时段：3月19日0—24时</span><span class=\"issued\">2022年3月20日</span>", head)
    foot = html.split('<footer class="foot">')[1]
    assert [line.split("：")[0] for line in re.findall(r"<strong>(.)：</strong>", foot)] == ["报", "送", "发"]
    assert "2022年3月20日印发" in foot
    masthead_style = re.search(r'<header class="masthead" style="([^"]*)"', rendered.html).group(1)
    assert "FangSong" in rendered.html and "border-bottom: 3px solid #c00" in masthead_style  # 仿宋, the red rule
    text = rendered.text
    assert text.splitlines()[:3] == [
        "测试省疫情防控工作日报（3月19日）",
        "第12期",
        "衢州市新冠肺炎疫情防控工作领导小组办公室　　签发人：李主任",
    ]
    assert "报：" in text.split("附件：")[1] and text.endswith("2022年3月20日印发\n")

    preview = render(ctx, build_bulletin(ctx, DAY))  # no number yet, no signer: those lines are left out
    assert not re.search("期</p>", preview.html) and "签发人" not in preview.html and "印发" not in preview.text


def province_registry(units_per_prefecture: int = 9, prefectures: int = 10) -> tuple[str, list[str]]:
    """A province of `prefectures` × `units_per_prefecture` counties under prefectures, some with hostile names."""
    lines = [
        "region:",
        '  code: "990000"',
        "  name: 测试省",
        "  slug: test-province",
        '  city_level: {code: "990001", name: 省本级, slug: shengbenji}',
        "divisions:",
    ]
    codes = []
    for p in range(1, prefectures + 1):
        lines.append(f'  "99{p:02d}00": {{name: 第{p}市}}')
    lines.append("units:")
    for p in range(1, prefectures + 1):
        for u in range(1, units_per_prefecture + 1):
            code = f"99{p:02d}{u:02d}"
            name = HOSTILE[(p + u) % 3] + str(u) if u == 1 and p <= 3 else f"第{p}市{u}县"
            quoted = name.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'  - {{code: "{code}", name: "{quoted}", slug: u{code}, parent: "99{p:02d}00"}}')
            codes.append(code)
    return "\n".join(lines) + "\n", codes


class ProvinceAnswers(StoreAnswers):
    """Two days of a province: every county reports but one (缺报) and one turned back (拒收); one county's soft
    figure is approximate; hostile narrative and findings."""

    def __init__(self, metrics: list[str], codes: list[str]):
        self.codes, self.missing, self.rejected = codes, codes[5], codes[17]
        reporting = [c for c in codes if c not in (self.missing, self.rejected)]
        self.figures = {
            day: {
                code: {m: 10 * n + i + offset * (n % 4) for i, m in enumerate(metrics)}
                for n, code in enumerate(reporting)
            }
            for day, offset in ((DAY - timedelta(days=1), 0), (DAY, 3))
        }
        self.soft = (reporting[2], "donated_goods_kg", "余")

    def statuses(self) -> list[tuple[str, str]]:
        return [
            (c, "missing" if c == self.missing else "rejected" if c == self.rejected else "cleared") for c in self.codes
        ]

    def rows(self, name: str, params: dict) -> list[dict]:
        if name == "select_narratives":
            body = f"{HOSTILE[0]}\n{HOSTILE[1]}"
            return [{"unit_code": self.codes[0], "headline": HOSTILE[2], "byline": HOSTILE[1], "body": body}]
        if name == "select_findings":
            return [
                {
                    "report_date": DAY.isoformat(),
                    "unit_code": self.codes[40],
                    "stage": "reconcile",
                    "severity": "soft",
                    "rule": "jump",
                    "metric": "sampled(采样人次)",
                    "row_no": None,
                    "value": HOSTILE[1],
                    "message": f"较前日变化过大 {HOSTILE[0]}",
                }
            ]
        return super().rows(name, params)


@pytest.fixture
def province(ctx_for, tmp_path):
    text, codes = province_registry()
    registry = tmp_path / "province.yaml"
    registry.write_text(text, encoding="utf-8")
    ctx = ctx_for(f"sqlite:///{tmp_path / 'unused.db'}", CLOSEOUT_REGISTRY=str(registry))
    ctx.store = ProvinceAnswers([m.key for m in ctx.catalogue.metrics], codes)
    return ctx


@pytest.mark.unit
def test_a_province_reads_in_a_few_pages_and_its_totals_are_the_attachments_sums(province, tmp_path):
    ctx = province
    bulletin = build_bulletin(ctx, DAY, issue=Issue(3, date(2022, 3, 20)))
    rendered = render(ctx, bulletin)
    today, metrics = ctx.store.figures[DAY], ctx.catalogue.metrics
    assert len(ctx.registry.units) == 90 and bulletin.by_group

    # the next level down: a row per prefecture, not per county; a few pages, printed or as text
    testing = next(s for s in bulletin.rollup if s["title"] == "二、核酸检测")
    assert [row["label"] for row in testing["rows"]] == [f"第{p}市" for p in range(1, 11)]
    (tmp_path / "province.pdf").write_bytes(rendered.pdf)
    info = poppler("pdfinfo", str(tmp_path / "province.pdf"))
    pages = int(next(line for line in info.splitlines() if line.startswith("Pages:")).split()[1])
    assert pages <= 8 and len(rendered.text.splitlines()) < 150, (pages, len(rendered.text.splitlines()))
    # every unit with a problem is named, whatever its change
    problems = {p["name"]: p["status_label"] for p in bulletin.problems}
    names = {u.code: u.name for u in ctx.registry.units}
    assert problems[names[ctx.store.missing]] == "缺报" and problems[names[ctx.store.rejected]] == "拒收"
    assert problems[names[ctx.store.codes[40]]] == "已结清"  # a soft warning only

    # the long CSV: its units' rows sum to each prefecture's row and to the province's
    rows = list(csv.DictReader(io.StringIO(long_csv(rendered))))
    assert set(rows[0]) >= {"unit_code", "unit_name", "metric", "metric_name", "value", "level", "parent_code"}

    def value(row) -> float:
        return float(row["value"]) if row["value"] else 0.0

    for metric in metrics:
        units = [r for r in rows if r["metric"] == metric.key and r["level"] == "unit"]
        (region,) = [r for r in rows if r["metric"] == metric.key and r["level"] == "region"]
        assert value(region) == sum(value(r) for r in units) == sum(v[metric.key] for v in today.values())
        for division in (r for r in rows if r["metric"] == metric.key and r["level"] == "division"):
            below = sum(value(r) for r in units if r["parent_code"] == division["unit_code"])
            assert value(division) == below, (metric.key, division["unit_code"])
    sampled_total = next(
        r for r in rows if r["metric"] == "sampled" and r["level"] == "region" and r["unit_code"] == "990000"
    )
    assert float(sampled_total["value"]) == sum(v["sampled"] for v in today.values())
    (soft,) = [r for r in rows if (r["unit_code"], r["metric"]) == ctx.store.soft[:2]]
    assert soft["qualifier"] == "余"  # the exact figure and its qualifier, apart

    # the workbook: units, each prefecture's total and the province's; the same sums
    sheet = list(openpyxl.load_workbook(io.BytesIO(rendered.attachment)).active.iter_rows(values_only=True))
    unit_rows = [r for r in sheet[1:] if r[0] in ctx.store.codes]
    prefecture_rows = {r[0]: r for r in sheet[1:] if str(r[0]).endswith("00") and r[0] != "990000"}
    assert len(prefecture_rows) == 10 and sheet[-1][0] == "990000"
    for column, metric in enumerate(metrics, start=4):
        numbers = [r[column] for r in unit_rows if isinstance(r[column], int | float)]
        assert sheet[-1][column] == sum(numbers)
        first = [r[column] for r in unit_rows if r[0].startswith("9901") and isinstance(r[column], int | float)]
        assert prefecture_rows["990100"][column] == sum(first), metric.key


@pytest.mark.unit
def test_hostile_names_narratives_and_notes_are_inert_everywhere(province):
    ctx = province
    bulletin = build_bulletin(ctx, DAY, issue=Issue(3, date(2022, 3, 20)))
    rendered = render(ctx, bulletin)
    page = Elements(rendered.html)  # the markup a mail client builds: the charts' images, nothing from a unit
    assert "script" not in {tag for tag, _ in page.tags}
    assert not [attrs for _, attrs in page.tags if any(name.startswith("on") for name in attrs)]
    assert all(attrs["src"].startswith("cid:chart-") for tag, attrs in page.tags if tag == "img")
    shown = "".join(page.text)
    assert all(piece in shown for piece in HOSTILE[:2])  # shown, as text
    rows = list(csv.reader(io.StringIO(long_csv(rendered))))
    assert not any(cell.startswith(("=", "+", "@")) for row in rows for cell in row if not re.match(r"^[+-]?\d", cell))
    assert any(cell.startswith("'=HYPERLINK") for row in rows for cell in row)
    sheet = openpyxl.load_workbook(io.BytesIO(rendered.attachment)).active
    texts = [c for row in sheet.iter_rows() for c in row if isinstance(c.value, str)]
    assert all(c.data_type == "s" and not c.value.startswith("=") for c in texts)
    assert any(c.value.startswith("'=HYPERLINK") for c in texts)


@pytest.mark.unit
def test_the_english_bulletin_from_the_same_templates(small_ctx):
    ctx = small_ctx(CLOSEOUT_BULLETIN_LANGUAGE="en", CLOSEOUT_BULLETIN_TABLE_MAX_UNITS="30")
    bulletin = build_bulletin(ctx, DAY, issue=Issue(12, date(2022, 3, 20)), signer="Li")
    rendered = render(ctx, bulletin)
    assert bulletin.title == "测试省 Epidemic Prevention and Control Daily Report (19 March)"  # no name_en: Chinese
    assert '<html lang="en">' in rendered.html[:200]
    assert (
        "No. 12" in rendered.html and "Signed off by: Li" in rendered.html and "Issued 20 March 2022" in rendered.html
    )
    assert "Period covered: 19 March, 00:00–24:00" in rendered.text and "20 March 2022" in rendered.text
    html = re.sub(r' style="[^"]*"', "", rendered.html)  # the mail's CSS is inlined
    assert "<h2>Overview</h2>" in html and "<h2>Figures by area</h2>" in html
    assert "Testing: " in rendered.text and "samples taken" in rendered.text
    # the charts too: their titles, their text and the PDF's page numbers
    charts = rendered.text.split("[Recent trends] (the charts as text)")[1].strip("\n").split("\n\n")[0]
    for name in (ctx.registry.region_name, *(unit.name for unit in ctx.registry.all_units)):  # no name_en here
        charts = charts.replace(name, "")
    assert "key figures, last" in charts and not re.search(r"[\u4e00-\u9fff]", charts), charts
    assert "<h2>Recent trends</h2>" in html
    assert not re.search(r"[\u4e00-\u9fff]", "".join(bulletin.summary[1:4]))  # the summary is English throughout
    assert "(中山县 had not reported by the time of issue" in rendered.text
    assert bulletin.attachment_name == "测试省 daily report data_2022-03-19.csv"


@pytest.mark.unit
def test_english_says_no_new_cases_and_groups_thousands(small_ctx):
    ctx = small_ctx(CLOSEOUT_BULLETIN_LANGUAGE="en")
    for units in ctx.store.figures.values():
        for figures in units.values():
            figures["new_confirmed"], figures["new_asymptomatic"], figures["sampled"] = 0, 0, 300_000
    summary = build_bulletin(ctx, DAY).summary
    assert summary[0].startswith("19 March, 00:00–24:00: 测试省 reported no new local confirmed cases")
    assert "no new asymptomatic infections" in summary[0]
    assert "1,200,000 samples taken" in summary[1]  # four units of 300,000: never 120万 in English
    assert not re.search(r"\b0 new\b", " ".join(summary))


class AnsweringACorrection(StoreAnswers):
    """The store of test_bulletin_by_group, with a correction to the 18th not yet announced."""

    correction = {
        "report_date": "2022-03-18",
        "unit_code": "330102",
        "metric": "sampled",
        "kind": "correction",
        "old_value": 1200,
        "old_qualifier": "",
        "new_value": 1206,
        "new_qualifier": "",
        "reason": "县里电话确认",
        "new_sha256": "sha",
    }

    def rows(self, name: str, params: dict) -> list[dict]:
        return [self.correction] if name == "select_corrections_to_announce" else super().rows(name, params)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("language", "said"),
    [
        ("zh", "3月18日东城区采样人次由1200人次订正为1206人次，原因：县里电话确认。"),
        ("en", '18 March: 东城区 corrected "Samples taken" from 1,200 to 1,206 samples; reason: 县里电话确认.'),
    ],
)
def test_an_earlier_days_correction_is_told_in_the_bulletins_language(small_ctx, language, said):
    ctx = small_ctx(CLOSEOUT_BULLETIN_LANGUAGE=language)
    ctx.store = AnsweringACorrection([m.key for m in ctx.catalogue.metrics])
    assert said in build_bulletin(ctx, DAY).notes


COUNTRY = """\
region: {code: "100000", name: 测试国, slug: test-country, city_level: {code: "100001", name: 国家本级, slug: guojia}}
divisions:
  "110000": {name: 甲省}
  "120000": {name: 乙省}
  "110100": {name: 甲省一市, parent: "110000"}
  "110200": {name: 甲省二市, parent: "110000"}
  "120100": {name: 乙省一市, parent: "120000"}
units:
  - {code: "110101", name: 一县, slug: a1, parent: "110100"}
  - {code: "110102", name: 二县, slug: a2, parent: "110100"}
  - {code: "110201", name: 三县, slug: a3, parent: "110200"}
  - {code: "120101", name: 四县, slug: b1, parent: "120100"}
  - {code: "120102", name: 五县, slug: b2, parent: "120100"}
"""


class EveryUnitReportsOne(StoreAnswers):
    """Each county reports 1 for every metric on both days: any level's total is its number of counties."""

    def __init__(self, metrics: list[str], codes: list[str]):
        self.codes, self.soft = codes, ("", "", "")  # no approximate figure
        self.figures = {day: {c: dict.fromkeys(metrics, 1) for c in codes} for day in (DAY - timedelta(days=1), DAY)}

    def statuses(self) -> list[tuple[str, str]]:
        return [(c, "cleared") for c in self.codes]


@pytest.mark.unit
def test_a_country_shows_its_provinces_and_totals_every_level(ctx_for, tmp_path):
    registry = tmp_path / "country.yaml"
    registry.write_text(COUNTRY, encoding="utf-8")
    ctx = ctx_for(
        f"sqlite:///{tmp_path / 'unused.db'}", CLOSEOUT_REGISTRY=str(registry), CLOSEOUT_BULLETIN_TABLE_MAX_UNITS="4"
    )
    ctx.store = EveryUnitReportsOne([m.key for m in ctx.catalogue.metrics], [u.code for u in ctx.registry.units])
    bulletin = build_bulletin(ctx, DAY)
    rendered = render(ctx, bulletin)
    testing = next(s for s in bulletin.rollup if s["title"] == "二、核酸检测")
    sampled = [c["label"] for c in testing["columns"]].index("采样人次")
    assert [(r["label"], r["cells"][sampled]) for r in testing["rows"]] == [("甲省", "3"), ("乙省", "2")]
    rows = [r for r in csv.DictReader(io.StringIO(long_csv(rendered))) if r["metric"] == "sampled"]
    totals = {(r["level"], r["unit_code"], r["parent_code"]): r["value"] for r in rows if r["level"] != "unit"}
    assert totals == {
        ("division", "110000", "100000"): "3",
        ("division", "110100", "110000"): "2",
        ("division", "110200", "110000"): "1",
        ("division", "120000", "100000"): "2",
        ("division", "120100", "120000"): "2",
        ("region", "100000", ""): "5",
    }
    sheet = list(openpyxl.load_workbook(io.BytesIO(rendered.attachment)).active.iter_rows(values_only=True))
    column = 4 + [m.key for m in ctx.catalogue.metrics].index("sampled")
    by_code = {r[0]: (r[2], r[column]) for r in sheet[1:]}
    assert by_code["110201"] == ("甲省", 1) and by_code["110100"] == ("甲省", 2) and by_code["110000"] == (None, 3)
    assert by_code["100000"][1] == 5


@pytest.mark.unit
def test_a_parent_that_names_no_division_is_refused(tmp_path):
    from closeout.core.registry import load_registry

    path = tmp_path / "country.yaml"
    path.write_text(COUNTRY.replace('parent: "120100"}', 'parent: "129900"}', 1), encoding="utf-8")
    with pytest.raises(ValueError, match=r"四县\(120101\) has parent '129900', not one of `divisions`"):
        load_registry(path)
