"""What the day says: the `Bulletin` and `build_bulletin`, which assembles it from the store — a line per unit
(closeout.publish.bulletin.figures.Line), the summary sentences, the section tables with a column per unit (or,
for a large bulletin, the parts by group: closeout.publish.bulletin.sections), the narratives, the data notes, an
edition's title and first lines, and the rows of its attachments (closeout.publish.bulletin.spreadsheet)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import partial

from closeout.close.reconcile import DayFigures, read_figures
from closeout.close.status import unit_statuses
from closeout.core.catalogue import Catalogue, Metric
from closeout.core.clock import month_day
from closeout.core.vocabulary import EXCLUDED_FROM_TOTALS, EditionKind, UnitStatus
from closeout.publish.bulletin.figures import DayCells, Figure, Line, Totals, figure_shown, region_totals
from closeout.publish.bulletin.sections import (
    Areas,
    change_sentence,
    data_notes,
    named,
    problem_units,
    rollup_sections,
    sectioned,
    summed_areas,
    top_movers,
)
from closeout.publish.bulletin.spreadsheet import attachment_rows, level_rows, unit_sheet
from closeout.publish.layout import Layout, Phrases, load_layout
from closeout.publish.masthead import Issue, Masthead, load_masthead
from closeout.store.context import Context

EDITION_KINDS = (EditionKind.LATE_REPORT, EditionKind.CORRECTION)  # 补报, 更正: their names are the layout's words


@dataclass
class Bulletin:
    report_date: date
    title: str
    subject: str
    window: str
    summary: list[str]
    sections: list[dict]
    lines: list[Line]
    narratives: list[dict]
    notes: list[str]
    attachment_rows: list[dict] = field(default_factory=list)  # the long CSV of a bulletin with one column per unit
    rollup: list[dict] = field(default_factory=list)  # per section, per group: when there are too many unit columns
    unit_sheet: list[list] = field(default_factory=list)  # the .xlsx sent instead of the CSV then: header, rows
    edition_lines: list[str] = field(default_factory=list)  # 补报/更正: what changed since the last edition sent
    announced_notes: list[dict] = field(default_factory=list)  # earlier days' changes its notes list
    head: Masthead = field(default_factory=Masthead)  # 红头 and 报/送/发
    words: dict = field(default_factory=dict)  # the template's words in the bulletin's language
    language: str = "zh"
    file_stem: str = ""  # the attachment's name before the date
    movers: list[dict] = field(default_factory=list)  # by group: per metric, the units that changed most
    problems: list[dict] = field(default_factory=list)  # by group: every unit missing, turned back or warned about
    level_rows: list[dict] = field(default_factory=list)  # by group: the long CSV, units then every level's totals

    @property
    def by_group(self) -> bool:
        return bool(self.rollup)

    @property
    def attachment_name(self) -> str:
        suffix = "xlsx" if self.by_group else "csv"
        return f"{self.file_stem}_{self.report_date.isoformat()}.{suffix}"


def build_bulletin(
    ctx: Context,
    report_date: date,
    kind: str = "official",
    change_rows: list[dict] = (),
    issue: Issue | None = None,
    signer: str = "",
) -> Bulletin:
    """The day's bulletin from the store. `kind` 补报 (late_report) or 更正 (correction) makes the edition sent
    after the day's 正式 bulletin: its subject and first lines say so and list `change_rows`, the day's revisions
    not yet sent. `issue` is the day's 第N期 and its date (closeout.publish.masthead; None: a preview without them),
    `signer` the 签发人 when the day has one."""
    registry, catalogue, settings = ctx.registry, ctx.catalogue, ctx.settings
    layout = load_layout(settings.bulletin_layout_path, catalogue, settings.bulletin_language)
    words, language, english = layout.words, layout.language, layout.language == "en"
    head = load_masthead(settings.bulletin_masthead_path, language).for_day(issue, signer)
    region_name = (registry.region_name_en or registry.region_name) if english else registry.region_name
    when = month_day(report_date, words)
    figures = read_figures(ctx, report_date)
    today, yesterday = figures.today(), figures.day(1)
    lines = unit_lines(ctx, report_date, words["status"], english)
    findings = ctx.store.rows("select_findings", {"report_date": report_date.isoformat()})
    unknown = _unknown(findings, lines)
    totals = region_totals(catalogue.metrics, [ln.code for ln in lines], today, yesterday)
    # Past this many units a column per unit is unreadable and too big to mail: the next level down, the top
    # movers and the units with a problem in the body; every unit in the attachments
    by_group = len(registry.units) > settings.bulletin_table_max_units
    areas = summed_areas(registry, today, catalogue.metrics, english) if by_group else None
    split = areas.split if by_group else partial(_per_unit, lines, today)
    area = words["city_area"] if registry.region_name.endswith("市") else region_name
    summary = _summary(catalogue, layout, lines, totals, split, unknown, head.large_figures, when=when, area=area)
    notes, announced = data_notes(ctx, report_date, lines, findings, words, language)
    if totals.partial:
        notes.append(words["like_with_like"])
    title, subject, edition_lines = _edition_heading(ctx, layout, report_date, kind, change_rows, region_name)
    region = Line(registry.region_code, words["region_total"].format(region=region_name), "", is_total=True)
    if by_group:
        parts = _group_parts(ctx, layout, figures, lines, region, findings, totals, areas)
    else:
        parts = {"attachment_rows": attachment_rows(ctx, report_date, lines, region, today, yesterday, totals)}
    return Bulletin(
        report_date,
        title,
        subject,
        words["window"].format(when=when),
        summary,
        [] if by_group else _section_tables(layout, catalogue, lines, today, unknown, totals),
        lines,
        _narratives(ctx, report_date, english),
        notes,
        edition_lines=edition_lines,
        announced_notes=announced,
        head=head,
        words=words,
        language=language,
        file_stem=words["file_stem"].format(region=region_name),
        **parts,
    )


def unit_lines(ctx: Context, report_date: date, status_words: dict[str, str], english: bool) -> list[Line]:
    """A line per unit in code order with its status for the day; a unit without one is missing (缺报) when it
    is required, else absent (无单独报送)."""
    statuses = unit_statuses(ctx, report_date)
    return [
        Line(
            u.code,
            named(u, english),
            statuses.get(u.code, UnitStatus.MISSING if u.required else UnitStatus.ABSENT),
            status_words=status_words,
        )
        for u in ctx.registry.all_units
    ]


def _unknown(findings: list[dict], lines: list[Line]) -> set[tuple[str, str]]:
    """(unit code, metric key) of each figure a counted unit reported as 不详: unknown, neither 0 nor missing."""
    counted = {ln.code for ln in lines if ln.status not in EXCLUDED_FROM_TOTALS}
    return {
        (f["unit_code"], f["metric"].split("(")[0])
        for f in findings
        if f["rule"] == "value_unknown" and f["unit_code"] in counted
    }


def _per_unit(lines: list[Line], today: DayCells, key: str) -> list[tuple[str, Figure | None]]:
    """A metric's figure per unit, as the summary sentences cite it (by group: Areas.split)."""
    return [(ln.name, today.get(ln.code, {}).get(key)) for ln in lines]


def _summary(
    catalogue: Catalogue,
    layout: Layout,
    lines: list[Line],
    totals: Totals,
    split: Callable[[str], list[tuple[str, Figure | None]]],
    unknown: set[tuple[str, str]],
    large_from: int,
    **names: str,
) -> list[str]:
    """The layout's summary sentences (`names`: when, area), then a line for each unit in a state the layout has
    a line for (missing, turned back)."""
    words = layout.words
    # A total built without some units says so in the sentence itself, not only in a note below.
    without = [ln.name for ln in lines if ln.status in EXCLUDED_FROM_TOTALS]
    excluding = words["excluding"].format(units=words["list_separator"].join(without)) if without else ""
    unknown_units = {key: [ln.name for ln in lines if (ln.code, key) in unknown] for _, key in unknown}
    phrases = Phrases(catalogue, totals.today, split, excluding, unknown_units, words, layout.language, large_from)
    summary = phrases.sentences(layout, **names)
    return summary + [
        layout.status_lines[ln.status].render(unit=ln.name) for ln in lines if ln.status in layout.status_lines
    ]


def _section_tables(
    layout: Layout,
    catalogue: Catalogue,
    lines: list[Line],
    today: DayCells,
    unknown: set[tuple[str, str]],
    totals: Totals,
) -> list[dict]:
    """Per section of the layout, a row per metric: its figure per unit (a column each), the total, the change."""
    return [
        {"title": title, "rows": [_metric_row(layout, m, lines, today, unknown, totals) for m in metrics]}
        for title, metrics in sectioned(layout, catalogue)
    ]


def _metric_row(
    layout: Layout, metric: Metric, lines: list[Line], today: DayCells, unknown: set[tuple[str, str]], totals: Totals
) -> dict:
    words, language = layout.words, layout.language
    label, unit = metric.heading(language)
    cells = [
        words["unknown"]
        if (ln.code, metric.key) in unknown
        else figure_shown(today.get(ln.code, {}).get(metric.key), language)
        for ln in lines
    ]
    total, change = totals.today[metric.key], totals.changes[metric.key]
    return {
        "label": label,
        "unit": unit,
        "cells": cells,
        "total": figure_shown(total, language),
        "change": change.text(words, language),
    }


def _group_parts(
    ctx: Context,
    layout: Layout,
    figures: DayFigures,
    lines: list[Line],
    region: Line,
    findings: list[dict],
    totals: Totals,
    areas: Areas,
) -> dict:
    """A large bulletin's parts (its Bulletin fields): the rollup tables, the top movers and the units with a
    problem in the body; the per-unit sheet and the long CSV of every level as its attachments."""
    english, words, report_date = layout.language == "en", layout.words, figures.report_date
    today, yesterday = figures.today(), figures.day(1)
    return {
        "rollup": rollup_sections(ctx, layout, lines, areas, figures.reporting_today(), totals),
        "movers": top_movers(ctx, layout, lines, today, yesterday),
        "problems": problem_units(ctx.registry, lines, findings, english),
        "unit_sheet": unit_sheet(ctx, lines, region, today, totals, areas, words, english),
        "level_rows": level_rows(ctx, report_date, lines, region, today, totals, areas, english),
    }


def _narratives(ctx: Context, report_date: date, english: bool) -> list[dict]:
    """The day's narratives (文字稿): the unit, the headline, the byline and the paragraphs."""
    return [
        {
            "unit": named(ctx.registry.get(r["unit_code"]), english),
            "headline": r["headline"],
            "byline": r["byline"],
            "paragraphs": [p for p in r["body"].splitlines() if p],
        }
        for r in ctx.store.rows("select_narratives", {"report_date": report_date.isoformat()})
    ]


def _edition_heading(
    ctx: Context, layout: Layout, report_date: date, kind: str, change_rows: list[dict], region_name: str
) -> tuple[str, str, list[str]]:
    """The title, the subject and the edition's first lines: a 补报 or 更正 edition says which it is in all three
    and lists the day's changes not yet sent (`change_rows`); the 正式 bulletin has no such lines."""
    words, language = layout.words, layout.language
    when = month_day(report_date, words)
    title = words["title"].format(region=region_name, when=when)
    subject = words["subject"].format(region=region_name, when=when, year=report_date.year)
    if kind not in EDITION_KINDS:
        return title, subject, []
    name = words[kind]
    title = words["title_edition"].format(region=region_name, when=when, edition=name)
    subject += words["in_parentheses"].format(name)
    lines = [words["edition_intro"].format(edition=name, when=when)]
    lines += [change_sentence(ctx, r, words, language, same_day=True) for r in change_rows]
    return title, subject, lines
