"""The bulletin's test cases without a store: a small two-level registry, the store's answers given directly
(StoreAnswers), a copy of include/ to edit per test, and text from units that carries markup and formulas."""

import shutil
from datetime import date, timedelta
from html.parser import HTMLParser

import pytest
from conftest import ROOT

DAY = date(2022, 3, 19)
REGISTRY = """\
region:
  code: "330000"
  name: 测试省
  slug: test-province
  city_level: {code: "330001", name: 省本级, slug: shengbenji}
groups: {"3301": 甲市, "3302": 乙市}
units:
  - {code: "330102", name: 东城区, slug: dongcheng, group: "3301"}
  - {code: "330103", name: 西城区, slug: xicheng, group: "3301"}
  - {code: "330104", name: 南城区, slug: nancheng, group: "3301"}
  - {code: "330202", name: 北山县, slug: beishan, group: "3302"}
  - {code: "330203", name: 中山县, slug: zhongshan, group: "3302"}
"""
REPORTING = ("330102", "330103", "330104", "330202")  # 中山县 sends nothing: 缺报
SOFT = ("330103", "donated_goods_kg", "余")  # 西城区 reports "N余公斤"


class StoreAnswers:
    """What the store answers the bulletin for two days of the registry above; any other question fails."""

    def __init__(self, metrics: list[str]):
        self.figures = {
            day: {code: {m: 100 * n + i + offset for i, m in enumerate(metrics)} for n, code in enumerate(REPORTING)}
            for day, offset in ((DAY - timedelta(days=1), 0), (DAY, 7))
        }
        self.soft = SOFT

    def statuses(self) -> list[tuple[str, str]]:
        return [(c, "cleared" if c in REPORTING else "missing") for c in (*REPORTING, "330203")]

    def rows(self, name: str, params: dict) -> list[dict]:
        statuses = self.statuses()
        if name == "select_figures_between":
            return [
                {
                    "report_date": day.isoformat(),
                    "unit_code": code,
                    "metric": metric,
                    "value": value,
                    "qualifier": self.soft[2] if (code, metric) == self.soft[:2] else "",
                    "source_sha256": "sha",
                }
                for day, units in self.figures.items()
                for code, figures in units.items()
                for metric, value in figures.items()
            ]
        if name == "select_unit_days_between":
            return [
                {"report_date": d.isoformat(), "unit_code": c, "status": s} for d in self.figures for c, s in statuses
            ]
        if name == "select_series_between":
            return [
                {"report_date": day.isoformat(), "unit_code": code, "metric": metric, "value": value}
                for day, units in self.figures.items()
                for code, figures in units.items()
                for metric, value in figures.items()
                if metric in params["metrics"]
            ]
        if name == "select_unit_days":
            return [{"unit_code": c, "status": s} for c, s in statuses]
        quiet = ("select_narratives", "select_findings", "select_excusals", "select_day_revisions")
        if name in (*quiet, "select_corrections_to_announce"):
            return []
        raise AssertionError(f"the bulletin asked the store an unexpected question: {name}")


@pytest.fixture
def ctx_with(ctx_for, tmp_path):
    def build(max_units: int):
        registry = tmp_path / "registry.yaml"
        registry.write_text(REGISTRY, encoding="utf-8")
        ctx = ctx_for(
            f"sqlite:///{tmp_path / 'unused.db'}",
            CLOSEOUT_REGISTRY=str(registry),
            CLOSEOUT_BULLETIN_TABLE_MAX_UNITS=str(max_units),
        )
        ctx.store = StoreAnswers([m.key for m in ctx.catalogue.metrics])
        return ctx

    return build


INCLUDE = ROOT / "include"
HYPERLINK = '=HYPERLINK("http://x.invalid","点击")'
SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror="alert(1)">'


class Answers(StoreAnswers):
    """StoreAnswers with the day's findings, narratives and announced corrections a test sets."""

    def __init__(self, metrics: list[str]):
        super().__init__(metrics)
        self.answers = {"select_findings": [], "select_narratives": [], "select_corrections_to_announce": []}

    def rows(self, name: str, params: dict) -> list[dict]:
        return self.answers[name] if name in self.answers else super().rows(name, params)


@pytest.fixture
def make_ctx(ctx_for, tmp_path):
    """A context over a copy of include/, after `edit(folder)`; the registry's text after `registry(text)`."""

    def build(edit=None, max_units: int = 30, registry=lambda text: text):
        include = tmp_path / "include"
        shutil.rmtree(include, ignore_errors=True)
        shutil.copytree(INCLUDE, include)
        if edit:
            edit(include / "catalogue")
        (tmp_path / "registry.yaml").write_text(registry(REGISTRY), encoding="utf-8")
        ctx = ctx_for(
            f"sqlite:///{tmp_path / 'unused.db'}",
            CLOSEOUT_INCLUDE=str(include),
            CLOSEOUT_REGISTRY=str(tmp_path / "registry.yaml"),
            CLOSEOUT_BULLETIN_TABLE_MAX_UNITS=str(max_units),
        )
        ctx.store = Answers([m.key for m in ctx.catalogue.metrics])
        return ctx

    return build


def hostile_store(ctx) -> None:
    """A narrative, data notes and a correction's reason carrying markup and a formula, from 东城区."""
    ctx.store.answers["select_narratives"] = [
        {"unit_code": "330102", "headline": SCRIPT, "byline": IMG, "body": f"{HYPERLINK}\n{IMG}{SCRIPT}"}
    ]
    ctx.store.answers["select_findings"] = [
        dict(unit_code="330102", severity="soft", stage="validate", rule="jump", metric="sampled(采样人次)",
             row_no=4, value=HYPERLINK, message=f"备注：{IMG}{SCRIPT}")
    ]  # fmt: skip
    ctx.store.answers["select_corrections_to_announce"] = [
        dict(report_date=(DAY - timedelta(days=1)).isoformat(), unit_code="330102", metric="sampled", kind="correction",
             old_value=1, new_value=2, old_qualifier="", new_qualifier="", reason=f"{HYPERLINK}{SCRIPT}")
    ]  # fmt: skip
    yesterday = ctx.store.figures[DAY - timedelta(days=1)]
    yesterday["330102"]["volunteers"] = ctx.store.figures[DAY]["330102"]["volunteers"] + 5  # a change of -5


def hostile_name(text: str) -> str:
    return text.replace("name: 东城区", f"name: '{HYPERLINK.replace(chr(39), chr(39) * 2)}{SCRIPT}'")


class Elements(HTMLParser):
    """The elements of a page, and its text as a reader sees it."""

    def __init__(self, page: str):
        super().__init__()
        self.tags, self.text = [], []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def assert_html_inert(page: str) -> None:
    """No unit's text became markup (whatever escaping the serializer uses: the CSS inliner writes its own)."""
    elements = Elements(page)
    assert "script" not in {tag for tag, _ in elements.tags}
    assert not [attrs for _, attrs in elements.tags if any(name.startswith("on") for name in attrs)]
    images = [attrs["src"] for tag, attrs in elements.tags if tag == "img"]
    assert all(src.startswith("cid:chart-") for src in images)  # the charts only
    shown = "".join(elements.text)
    for piece in (SCRIPT, IMG, HYPERLINK):
        assert piece in shown, piece  # shown, as text
