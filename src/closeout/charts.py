"""The bulletin's charts: the last 14 days of a few key series, for the region and by area, as PNG images.

Drawn with matplotlib's Agg canvas (no display, no pyplot state shared between renders) in Noto Sans CJK SC,
which matplotlib's font manager finds among the system fonts (Debian's fonts-noto-cjk); a missing font is an
error, not boxes. Each chart comes with a text equivalent — a one-sentence summary for its alt text and the
figures themselves for the plain-text part — since a chart is only for those who can see it. The same data give
the same bytes: an edition is known by its hash.
"""

from __future__ import annotations

import functools
import io
import warnings
from dataclasses import dataclass
from datetime import date, timedelta

from closeout.context import Context
from closeout.numbers import render_value

CHART_DAYS = 14
CHART_FONT = "Noto Sans CJK SC"
DPI = 144  # sharp when printed on A4 and on a phone's dense screen, still small to mail
CASES = ("new_confirmed", "new_asymptomatic")
# The region's panels: (title, metrics stacked in it)
REGION_PANELS = (
    ("新增病例", CASES),
    ("采样人次", ("sampled",)),
    ("阳性", ("positive",)),
    ("集中隔离在隔", ("isolation_central",)),
)
# The by-area tables of colour: (file stem, title, metrics summed)
AREA_CHARTS = (
    ("cases-by-area", "新增病例（确诊+无症状）", CASES),
    ("isolation-by-area", "集中隔离在隔", ("isolation_central",)),
)
ANNOTATED_CELLS = 200  # a city's units over a fortnight; a country's 32 groups show their latest day in figures
SERIES = tuple(dict.fromkeys(key for _, keys in REGION_PANELS for key in keys))


@dataclass(frozen=True)
class Chart:
    name: str  # the file name in the edition's folder, and the image's Content-ID in the email
    title: str
    alt: str  # one sentence: what a reader who cannot see the image should take from it
    lines: tuple[str, ...]  # the figures drawn, as text
    png: bytes
    width: int  # CSS pixels: the image is drawn at DPI, shown at 96 dpi

    @property
    def cid(self) -> str:
        return f"{self.name}@closeout"


@dataclass(frozen=True)
class History:
    """Per day, per area, per metric: the sums drawn. None where no unit of the area had the figure that day."""

    days: tuple[date, ...]
    region_series: tuple[tuple[str, tuple[float | None, ...]], ...]  # (metric, per day): hashable, see drawn_charts
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


def draw_charts(
    ctx: Context, report_date: date, areas: list[tuple[str, tuple[str, ...]]], by_group: bool
) -> list[Chart]:
    """The bulletin's charts, in the order they are shown: the region, and by area (see read_history)."""
    history = read_history(ctx, report_date, areas)
    named = tuple((m.key, m.label, m.unit) for m in ctx.catalogue.metrics if m.key in SERIES)
    return list(drawn_charts(history, named, ctx.registry.region_name, by_group))


@functools.lru_cache(maxsize=8)
def drawn_charts(
    history: History, named: tuple[tuple[str, str, str], ...], region: str, by_group: bool
) -> tuple[Chart, ...]:
    """The charts of these figures, kept for the next few renders: an unchanged store rendered again (a retried
    task, the next intake run) draws nothing."""
    names = {key: Named(label, unit) for key, label, unit in named}

    def known(keys: tuple[str, ...]) -> tuple[str, ...]:  # a catalogue may leave a series out
        return tuple(key for key in keys if key in names)

    panels = [(title, known(keys)) for title, keys in REGION_PANELS if known(keys)]
    charts = [_region_chart(names, history, region, panels)] if panels else []
    level = "各组" if by_group else "各地"
    for stem, title, keys in AREA_CHARTS:
        if known(keys):
            name = f"chart-{len(charts) + 1}-{stem}.png"
            charts.append(_area_chart(names, history, name, f"{level}{title}", known(keys)))
    return tuple(charts)


@dataclass(frozen=True)
class Named:
    label: str
    unit: str


def _combined(series: dict[str, tuple[float | None, ...]], keys: tuple[str, ...]) -> list[float | None]:
    columns = zip(*(series[k] for k in keys), strict=True)
    return [None if all(v is None for v in day) else sum(v or 0 for v in day) for day in columns]


def _day(day: date) -> str:
    return f"{day.month}月{day.day}日"


def _short(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 10000:.4g}万" if abs(value) >= 10000 else render_value(value)


def _span(history: History) -> str:
    days = history.days
    return _day(days[0]) if len(days) == 1 else f"{_day(days[0])}至{_day(days[-1])}"


def _region_chart(
    names: dict[str, Named], history: History, area: str, panels: list[tuple[str, tuple[str, ...]]]
) -> Chart:
    from matplotlib.figure import Figure

    title = f"{area}近{len(history.days)}天主要指标"
    lines, summaries = [f"{title}（{_span(history)}）："], []
    with _style():
        rows = (len(panels) + 1) // 2
        height = 0.4 + 2 * rows
        figure = Figure(figsize=(6.4, height), dpi=DPI)
        # fixed margins, not constrained layout: that lays every label out again, and text is most of the time
        figure.subplots_adjust(left=0.08, right=0.98, top=1 - 0.35 / height, bottom=0.3 / height, hspace=0.45)
        grid = figure.subplots(rows, 2, squeeze=False).flat
        ticks = _ticks(history.days)
        for (panel, keys), axes in zip(panels, grid, strict=False):
            unit = names[keys[0]].unit
            bottom = [0.0] * len(history.days)
            for key in keys:
                values = [v or 0 for v in history.region[key]]
                metric = names[key]
                axes.bar(range(len(values)), values, bottom=bottom, label=metric.label, width=0.7)
                bottom = [b + v for b, v in zip(bottom, values, strict=True)]
                lines.append(f"  {metric.label}（{unit}）：{_listed(history.days, history.region[key])}")
            axes.set_title(f"{panel}（{unit}）", fontsize=10)
            if len(keys) > 1:
                axes.legend(fontsize=7, frameon=False)
            _axis(axes, ticks)
            summaries.append(f"{panel}{_trend(history.days, _combined(history.region, keys), unit)}")
        for unused in list(grid):  # an odd number of panels
            unused.set_visible(False)
        png = _png(figure)
    alt = f"柱状图，{title}（{_span(history)}）：" + "；".join(summaries) + "。"
    return Chart("chart-1-region.png", title, alt, tuple(lines), png, 640)


def _area_chart(names: dict[str, Named], history: History, name: str, title: str, keys: tuple[str, ...]) -> Chart:
    """A table of colour, an area a row and a day a column: it stays readable with thirty areas, where thirty
    lines or bars would not. Each cell carries its figure up to ANNOTATED_CELLS; beyond, only the report date's
    column does (drawing a number is most of a chart's time, and the plain text lists them all)."""
    from matplotlib.figure import Figure

    unit = names[keys[0]].unit
    rows = [(area, _combined(series, keys)) for area, series in history.areas.items()]
    rows = [(area, values) for area, values in rows if any(v is not None for v in values)] or rows
    days = history.days
    title = f"{title}近{len(days)}天（{unit}）"
    with _style():
        height = 0.9 + 0.26 * len(rows)
        figure = Figure(figsize=(6.4, height), dpi=DPI)
        figure.subplots_adjust(left=0.2, right=0.98, top=1 - 0.6 / height, bottom=0.1 / height)
        axes = figure.subplots()
        grid = [[float("nan") if v is None else v for v in values] for _, values in rows]
        top = max([v for _, values in rows for v in values if v] or [1])
        axes.imshow(grid, aspect="auto", cmap="Reds", vmin=0, vmax=top)
        annotated = range(len(days)) if len(rows) * len(days) <= ANNOTATED_CELLS else [len(days) - 1]
        for y, (_, values) in enumerate(rows):
            for x in annotated:
                value = values[x]
                dark = value is not None and value > 0.6 * top
                axes.text(
                    x, y, _short(value), ha="center", va="center", fontsize=6.5, color="white" if dark else "#222"
                )
        axes.set_yticks(range(len(rows)), [area for area, _ in rows], fontsize=8)
        axes.set_xticks(range(len(days)), [f"{d.month}/{d.day}" for d in days], fontsize=7)
        axes.xaxis.tick_top()
        axes.tick_params(length=0)
        for side in axes.spines.values():
            side.set_visible(False)
        axes.set_title(title, fontsize=10)
        png = _png(figure)
    latest = sorted(((values[-1], area) for area, values in rows if values[-1] is not None), reverse=True)
    top = "、".join(f"{area}{render_value(value)}{unit}" for value, area in latest[:3] if value) or "均为0"
    alt = f"色块表，{title}，{_span(history)}，每行一地、每列一天：{_day(days[-1])}最多的是{top}。"
    lines = [f"{title}（{_span(history)}，按日期顺序，“—”为无数据）："]
    lines += [f"  {area}：{'、'.join(_exact(v) for v in values)}" for area, values in rows]
    return Chart(name, title, alt, tuple(lines), png, 640)


def _listed(days: tuple[date, ...], values: list[float | None]) -> str:
    return "，".join(f"{d.month}/{d.day} {_exact(v)}" for d, v in zip(days, values, strict=True))


def _exact(value: float | None) -> str:
    return "—" if value is None else render_value(value)


def _trend(days: tuple[date, ...], values: list[float | None], unit: str) -> str:
    known = [(d, v) for d, v in zip(days, values, strict=True) if v is not None]
    if not known:
        return "无数据"
    peak_day, peak = max(known, key=lambda dv: (dv[1], dv[0]))
    last_day, last = known[-1]
    if peak_day == last_day:
        return f"{_day(last_day)}{render_value(last)}{unit}，为期间最高"
    return f"{_day(last_day)}{render_value(last)}{unit}，期间最高为{_day(peak_day)}{render_value(peak)}{unit}"


def _ticks(days: tuple[date, ...]) -> list[str]:
    """Every day up to a week, every other day (ending on the report date) beyond: fourteen labels crowd."""
    step = 1 if len(days) <= 7 else 2
    return [f"{d.month}/{d.day}" if (len(days) - 1 - n) % step == 0 else "" for n, d in enumerate(days)]


def _axis(axes, ticks: list[str]) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axes.set_xticks(range(len(ticks)), ticks, fontsize=7)
    axes.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))

    def tick(value, _) -> str:  # one way along an axis: 120万 and 80万, not 1.2 and 1e6; 1.2万 and 0.8万, not 8000
        return f"{value / 10000:g}万" if axes.get_ylim()[1] >= 10000 else render_value(value)

    axes.yaxis.set_major_formatter(FuncFormatter(tick))
    axes.tick_params(axis="y", labelsize=7)
    axes.spines[["top", "right"]].set_visible(False)


def _style():
    """matplotlib's settings for one drawing, in the CJK font, without touching the process-wide ones."""
    import matplotlib

    return matplotlib.rc_context(
        {
            "font.family": "sans-serif",
            "font.sans-serif": [_cjk_font()],
            "axes.unicode_minus": False,  # the CJK font has no U+2212
        }
    )


def _cjk_font() -> str:
    from matplotlib import font_manager

    try:
        font_manager.findfont(font_manager.FontProperties(family=CHART_FONT), fallback_to_default=False)
    except ValueError as exc:
        raise RuntimeError(
            f"图表所需中文字体 {CHART_FONT} 未安装（Debian/Ubuntu：apt-get install fonts-noto-cjk），否则汉字将显示为方框"
        ) from exc
    return CHART_FONT


def _png(figure) -> bytes:
    """The figure as PNG, drawn inside _style() (fonts are looked up when drawn); a glyph the font lacks would be
    drawn as a box, so it is an error here. A palette of 64 colours, not full colour: a third of the bytes, in the
    email and again in the PDF, for flat colours and text that look the same."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    canvas = FigureCanvasAgg(figure)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Glyph .* missing from font")
        canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")
    buffer = io.BytesIO()
    image.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
