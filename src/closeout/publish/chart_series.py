"""The charts' series and their words: the last 14 days of a few key metrics, read from the store in one query and
summed for the region and per area, and the text that says them — the days, the figures, the trend a chart's alt
text and the plain-text part give. Nothing is drawn here and matplotlib is not imported: closeout.publish.charts
draws these series."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from closeout.core.numbers import render_value
from closeout.store.context import Context

CHART_DAYS = 14
CASES = ("new_confirmed", "new_asymptomatic")
# The region's panels: (title key in WORDS, metrics stacked in it)
REGION_PANELS = (
    ("new_cases", CASES),
    ("sampled", ("sampled",)),
    ("positive", ("positive",)),
    ("isolation", ("isolation_central",)),
)
# The by-area tables of colour: (file stem, title key in WORDS, metrics summed)
AREA_CHARTS = (
    ("cases-by-area", "new_cases_both", CASES),
    ("isolation-by-area", "isolation", ("isolation_central",)),
)
# Every word a chart draws or says, per bulletin language (CLOSEOUT_BULLETIN_LANGUAGE)
WORDS = {
    "zh": {
        "new_cases": "新增病例",
        "sampled": "采样人次",
        "positive": "阳性",
        "isolation": "集中隔离在隔",
        "new_cases_both": "新增病例（确诊+无症状）",
        "by_group": "各组",
        "by_area": "各地",
        "day": "{month}月{day}日",
        "span": "{first}至{last}",
        "region_title": "{area}近{n}天主要指标",
        "with_unit": "{0}（{1}）",
        "lines_head": "{title}（{span}）：",
        "metric_line": "  {label}（{unit}）：{values}",
        "region_alt": "柱状图，{title}（{span}）：{summaries}。",
        "area_title": "{level}{title}近{n}天（{unit}）",
        "area_alt": "色块表，{title}，{span}，每行一地、每列一天：{day}最多的是{top}。",
        "area_lines_head": "{title}（{span}，按日期顺序，“—”为无数据）：",
        "area_line": "  {area}：{values}",
        "panel_summary": "{panel}{trend}",
        "top_item": "{area}{value}{unit}",
        "all_zero": "均为0",
        "no_data": "无数据",
        "peak_last": "{day}{value}{unit}，为期间最高",
        "peak_earlier": "{day}{value}{unit}，期间最高为{peak_day}{peak}{unit}",
        "list": "、",
        "series": "，",
        "summaries": "；",
        "large": (10000, "万"),
    },
    "en": {
        "new_cases": "New cases",
        "sampled": "Samples taken",
        "positive": "Positive",
        "isolation": "In central isolation",
        "new_cases_both": "New cases (confirmed + asymptomatic)",
        "by_group": "By group: ",
        "by_area": "By area: ",
        "day": "{day} {month_name}",
        "span": "{first} to {last}",
        "region_title": "{area}: key figures, last {n} days",
        "with_unit": "{0} ({1})",
        "lines_head": "{title} ({span}):",
        "metric_line": "  {label} ({unit}): {values}",
        "region_alt": "Bar charts, {title} ({span}): {summaries}.",
        "area_title": "{level}{title}, last {n} days ({unit})",
        "area_alt": "Colour table, {title}, {span}, an area a row and a day a column: highest on {day}: {top}.",
        "area_lines_head": "{title} ({span}, in date order; — no data):",
        "area_line": "  {area}: {values}",
        "panel_summary": "{panel}: {trend}",
        "top_item": "{area} {value} {unit}",
        "all_zero": "all zero",
        "no_data": "no data",
        "peak_last": "{day} {value} {unit}, the highest of the period",
        "peak_earlier": "{day} {value} {unit}; the highest was {peak_day} {peak} {unit}",
        "list": ", ",
        "series": ", ",
        "summaries": "; ",
        "large": (1000, "k"),
    },
}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SERIES = tuple(dict.fromkeys(key for _, keys in REGION_PANELS for key in keys))


@dataclass(frozen=True)
class History:
    """Per day, per area, per metric: the sums drawn. None where no unit of the area had the figure that day.
    Hashable, being part of the key of closeout.publish.charts.drawn_charts' cache."""

    days: tuple[date, ...]
    region_series: tuple[tuple[str, tuple[float | None, ...]], ...]  # (metric, per day)
    area_series: tuple[tuple[str, tuple[tuple[str, tuple[float | None, ...]], ...]], ...]  # (area name, as above)

    @property
    def region(self) -> dict[str, tuple[float | None, ...]]:
        return dict(self.region_series)

    @property
    def areas(self) -> dict[str, dict[str, tuple[float | None, ...]]]:
        return {area: dict(series) for area, series in self.area_series}


def read_history(ctx: Context, report_date: date, areas: list[tuple[str, tuple[str, ...]]]) -> History:
    """The series over the last 14 days in one query, summed per day for the region and per area (name, unit
    codes: the units themselves, or the next level down as the bulletin's table shows it); the days before the
    first with any figure are left out."""
    first = report_date - timedelta(days=CHART_DAYS - 1)
    span = {"first_date": first.isoformat(), "last_date": report_date.isoformat(), "metrics": list(SERIES)}
    area_of = {code: name for name, codes in areas for code in codes}
    names = [name for name, _ in areas]
    days = [first + timedelta(days=n) for n in range(CHART_DAYS)]
    index = {d.isoformat(): n for n, d in enumerate(days)}
    region = {key: [None] * CHART_DAYS for key in SERIES}
    areas = {name: {key: [None] * CHART_DAYS for key in SERIES} for name in names}
    for r in ctx.store.rows("select_series_between", span):
        area = area_of.get(r["unit_code"])
        if area is None:
            continue  # a unit no longer in the registry
        n, key = index[r["report_date"]], r["metric"]
        for series in (region[key], areas[area][key]):
            series[n] = (series[n] or 0) + r["value"]
    start = next((n for n in range(CHART_DAYS) if any(s[n] is not None for s in region.values())), CHART_DAYS - 1)
    return History(
        tuple(days[start:]),
        tuple((key, tuple(s[start:])) for key, s in region.items()),
        tuple((name, tuple((key, tuple(s[start:])) for key, s in series.items())) for name, series in areas.items()),
    )


@dataclass(frozen=True)
class Named:
    """A series' label and unit, as the catalogue heads its metric in the bulletin's language."""

    label: str
    unit: str


def combined(series: dict[str, tuple[float | None, ...]], keys: tuple[str, ...]) -> list[float | None]:
    """The series of `keys` added day by day; None on a day none of them has a figure."""
    columns = zip(*(series[k] for k in keys), strict=True)
    return [None if all(v is None for v in day) else sum(v or 0 for v in day) for day in columns]


def day_label(words: dict, day: date) -> str:
    """3月19日, or 19 Mar."""
    return words["day"].format(month=day.month, day=day.day, month_name=MONTHS[day.month - 1])


def short_figure(words: dict, value: float | None) -> str:
    """A figure in a chart's cell: 1.2万 (1.2k) from 10,000 up."""
    if value is None:
        return "—"
    step, suffix = words["large"]
    return f"{value / step:.4g}{suffix}" if abs(value) >= 10000 else render_value(value)


def span_label(words: dict, history: History) -> str:
    """The days drawn: 3月6日至3月19日, or the one day."""
    days = history.days
    first, last = day_label(words, days[0]), day_label(words, days[-1])
    return first if len(days) == 1 else words["span"].format(first=first, last=last)


def listed_values(words: dict, days: tuple[date, ...], values: list[float | None]) -> str:
    """A series as text, day by day: 3/18 12，3/19 15."""
    return words["series"].join(f"{d.month}/{d.day} {exact(v)}" for d, v in zip(days, values, strict=True))


def exact(value: float | None) -> str:
    """A figure in full; "—" for none."""
    return "—" if value is None else render_value(value)


def trend_text(words: dict, days: tuple[date, ...], values: list[float | None], unit: str) -> str:
    """The latest figure and whether it is the period's highest: what a panel's alt text says."""
    known = [(d, v) for d, v in zip(days, values, strict=True) if v is not None]
    if not known:
        return words["no_data"]
    peak_day, peak = max(known, key=lambda dv: (dv[1], dv[0]))
    last_day, last = known[-1]
    said = {"day": day_label(words, last_day), "value": render_value(last), "unit": unit}
    if peak_day == last_day:
        return words["peak_last"].format(**said)
    return words["peak_earlier"].format(**said, peak_day=day_label(words, peak_day), peak=render_value(peak))
