"""The bulletin's charts: the last 14 days of a few key series, for the region and by area, as PNG images.

Drawn with matplotlib's Agg canvas (no display, no pyplot state shared between renders) in Noto Sans CJK SC,
which matplotlib's font manager finds among the system fonts (Debian's fonts-noto-cjk); a missing font is an
error, not boxes. Each chart comes with a text equivalent — a one-sentence summary for its alt text and the
figures themselves for the plain-text part — since a chart is only for those who can see it. The same data give
the same bytes: an edition is known by its hash.

What is drawn — the series read from the store, summed per area, and their text — is closeout.publish.chart_series;
this module draws them.
"""

from __future__ import annotations

import functools
import io
import warnings
from dataclasses import dataclass
from datetime import date

from closeout.core.numbers import render_value
from closeout.publish.chart_series import (
    AREA_CHARTS,
    REGION_PANELS,
    SERIES,
    WORDS,
    History,
    Named,
    combined,
    day_label,
    exact,
    listed_values,
    read_history,
    short_figure,
    span_label,
    trend_text,
)
from closeout.store.context import Context

CHART_FONT = "Noto Sans CJK SC"
DPI = 144  # sharp when printed on A4 and on a phone's dense screen, still small to mail
ANNOTATED_CELLS = 200  # a city's units over a fortnight; a country's 32 groups show their latest day in figures


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


def draw_charts(
    ctx: Context, report_date: date, areas: list[tuple[str, tuple[str, ...]]], by_group: bool, language: str = "zh"
) -> list[Chart]:
    """The bulletin's charts, in the order they are shown: the region, and by area (see read_history)."""
    history = read_history(ctx, report_date, areas)
    named = tuple((m.key, *m.heading(language)) for m in ctx.catalogue.metrics if m.key in SERIES)
    region = ctx.registry.region_name
    return list(drawn_charts(history, named, region, by_group, language))


@functools.lru_cache(maxsize=8)
def drawn_charts(
    history: History, named: tuple[tuple[str, str, str], ...], region: str, by_group: bool, language: str = "zh"
) -> tuple[Chart, ...]:
    """The charts of these figures, kept for the next few renders: an unchanged store rendered again (a retried
    task, the next intake run) draws nothing."""
    words = WORDS[language]
    names = {key: Named(label, unit) for key, label, unit in named}

    def known(keys: tuple[str, ...]) -> tuple[str, ...]:  # a catalogue may leave a series out
        return tuple(key for key in keys if key in names)

    panels = [(words[title], known(keys)) for title, keys in REGION_PANELS if known(keys)]
    charts = [_region_chart(words, names, history, region, panels)] if panels else []
    level = words["by_group" if by_group else "by_area"]
    for stem, title, keys in AREA_CHARTS:
        if known(keys):
            name = f"chart-{len(charts) + 1}-{stem}.png"
            charts.append(_area_chart(words, names, history, name, level, words[title], known(keys)))
    return tuple(charts)


def _region_chart(
    words: dict, names: dict[str, Named], history: History, area: str, panels: list[tuple[str, tuple[str, ...]]]
) -> Chart:
    from matplotlib.figure import Figure

    title = words["region_title"].format(area=area, n=len(history.days))
    span = span_label(words, history)
    lines, summaries = [words["lines_head"].format(title=title, span=span)], []
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
                listed = listed_values(words, history.days, history.region[key])
                lines.append(words["metric_line"].format(label=metric.label, unit=unit, values=listed))
            axes.set_title(words["with_unit"].format(panel, unit), fontsize=10)
            if len(keys) > 1:
                axes.legend(fontsize=7, frameon=False)
            _axis(words, axes, ticks)
            trend = trend_text(words, history.days, combined(history.region, keys), unit)
            summaries.append(words["panel_summary"].format(panel=panel, trend=trend))
        for unused in list(grid):  # an odd number of panels
            unused.set_visible(False)
        png = _png(figure)
    alt = words["region_alt"].format(title=title, span=span, summaries=words["summaries"].join(summaries))
    return Chart("chart-1-region.png", title, alt, tuple(lines), png, 640)


def _area_chart(
    words: dict,
    names: dict[str, Named],
    history: History,
    name: str,
    level: str,
    title: str,
    keys: tuple[str, ...],
) -> Chart:
    """A table of colour, an area a row and a day a column: it stays readable with thirty areas, where thirty
    lines or bars would not. Each cell carries its figure up to ANNOTATED_CELLS; beyond, only the report date's
    column does (drawing a number is most of a chart's time, and the plain text lists them all)."""
    from matplotlib.figure import Figure

    unit = names[keys[0]].unit
    rows = [(area, combined(series, keys)) for area, series in history.areas.items()]
    rows = [(area, values) for area, values in rows if any(v is not None for v in values)] or rows
    days = history.days
    title = words["area_title"].format(level=level, title=title, n=len(days), unit=unit)
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
                    x,
                    y,
                    short_figure(words, value),
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color="white" if dark else "#222",
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
    top = words["list"].join(
        words["top_item"].format(area=area, value=render_value(value), unit=unit) for value, area in latest[:3] if value
    )
    span = span_label(words, history)
    alt = words["area_alt"].format(title=title, span=span, day=day_label(words, days[-1]), top=top or words["all_zero"])
    lines = [words["area_lines_head"].format(title=title, span=span)]
    lines += [
        words["area_line"].format(area=area, values=words["list"].join(map(exact, values))) for area, values in rows
    ]
    return Chart(name, title, alt, tuple(lines), png, 640)


def _ticks(days: tuple[date, ...]) -> list[str]:
    """Every day up to a week, every other day (ending on the report date) beyond: fourteen labels crowd."""
    step = 1 if len(days) <= 7 else 2
    return [f"{d.month}/{d.day}" if (len(days) - 1 - n) % step == 0 else "" for n, d in enumerate(days)]


def _axis(words: dict, axes, ticks: list[str]) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axes.set_xticks(range(len(ticks)), ticks, fontsize=7)
    axes.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))

    step, suffix = words["large"]

    def tick(value, _) -> str:  # one way along an axis: 120万 and 80万, not 1.2 and 1e6; 1.2万 and 0.8万, not 8000
        return f"{value / step:g}{suffix}" if axes.get_ylim()[1] >= 10000 else render_value(value)

    axes.yaxis.set_major_formatter(FuncFormatter(tick))
    axes.tick_params(axis="y", labelsize=7)
    axes.spines[["top", "right"]].set_visible(False)


def _style():
    """matplotlib's settings for one drawing, in the CJK font, without touching the process-wide ones."""
    import matplotlib

    return matplotlib.rc_context(
        {
            "font.family": "sans-serif",
            "font.sans-serif": [cjk_font()],
            "axes.unicode_minus": False,  # the CJK font has no U+2212
        }
    )


@functools.cache
def cjk_font() -> str:
    """The charts' font, looked up once per process (a warm worker does it before forking: closeout.orchestration.worker)."""
    from matplotlib import font_manager

    def found() -> bool:
        try:
            font_manager.findfont(font_manager.FontProperties(family=CHART_FONT), fallback_to_default=False)
        except ValueError:
            return False
        return True

    if not found():
        _add_fonts_installed_since_cached(font_manager)
    if not found():
        raise RuntimeError(
            f"图表所需中文字体 {CHART_FONT} 未安装（Debian/Ubuntu：apt-get install fonts-noto-cjk），否则汉字将显示为方框"
        )
    return CHART_FONT


def _add_fonts_installed_since_cached(font_manager) -> None:
    """matplotlib lists the system's fonts once and caches the list on disk: fonts installed after its first run
    (matplotlib installed before the Debian packages) are not in it. Add them to the list and to its cache."""
    import matplotlib

    manager = font_manager.fontManager
    listed = {f.fname for f in manager.ttflist}
    added = [path for path in font_manager.findSystemFonts() if "CJK" in path and path not in listed]
    for path in added:
        manager.addfont(path)
    if added:
        font_manager.json_dump(manager, f"{matplotlib.get_cachedir()}/fontlist-v{manager.__version__}.json")


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
