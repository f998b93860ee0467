"""The daily bulletin: the day's figures, totals, changes, narratives and data notes, rendered."""

from __future__ import annotations

import calendar
import csv
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime

from closeout.catalogue import Catalogue, Metric
from closeout.context import Context
from closeout.layout import Layout, Phrases, load_layout
from closeout.masthead import Issue, Masthead, load_masthead
from closeout.numbers import PREFIX_QUALIFIERS, figure_text, render_value
from closeout.reconcile import read_figures
from closeout.registry import Registry

STATUS_LABELS = {
    "cleared": "已结清",
    "break": "未结清",
    "rejected": "拒收",
    "missing": "缺报",
    "absent": "无单独报送",
    "loaded": "已受理",
    "received": "已收到未入库",
    "excused": "已标记缺报",
}
ATTACHMENT_COLUMNS = (
    "report_date",
    "unit_code",
    "unit_name",
    "metric",
    "metric_name",
    "kind",
    "unit",
    "value",
    "qualifier",
    "display",
    "previous_value",
    "change",
    "status",
)
# The long CSV beside the .xlsx of a large bulletin: a row per unit and metric, then the totals of every level.
LEVEL_COLUMNS = (
    "report_date",
    "level",
    "unit_code",
    "unit_name",
    "parent_code",
    "metric",
    "metric_name",
    "unit",
    "value",
    "qualifier",
    "status",
)


@dataclass
class Line:
    code: str
    name: str
    status: str
    is_total: bool = False
    status_words: dict[str, str] = field(default_factory=lambda: STATUS_LABELS, repr=False)

    @property
    def status_label(self) -> str:
        return self.status_words.get(self.status, self.status)


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


def level_zip_name(attachment_name: str) -> str:
    """The zipped long CSV a large bulletin sends beside its .xlsx, named as the workbook."""
    return attachment_name.removesuffix(".xlsx") + ".csv.zip"


def month_day(day: date, words: dict | None = None) -> str:
    """3月19日, or in the words of another language: 19 March."""
    if words is None:
        return f"{day.month}月{day.day}日"
    return words["when"].format(month=day.month, day=day.day, month_name=calendar.month_name[day.month])


def _sum(cells: list[tuple[float, str] | None]) -> tuple[float, str] | None:
    present = [c for c in cells if c is not None]
    if not present:
        return None
    qualifiers = {q for _, q in present if q}
    # "600余" plus exact figures stays "N余"; approximations of different kinds ("近" and "余") make "约"
    return sum(v for v, _ in present), (qualifiers.pop() if len(qualifiers) == 1 else "约" if qualifiers else "")


@dataclass(frozen=True)
class Change:
    """The change on the previous day over the units that have the figure on both days."""

    delta: float | None
    partial: bool  # the two days' totals cover different units

    def text(self, words: dict, language: str = "zh") -> str:
        if self.delta is None:
            return "—"
        size = figure_text(abs(self.delta), language=language)
        shown = words["flat"] if self.delta == 0 else ("+" if self.delta > 0 else "−") + size
        return shown + ("※" if self.partial else "")


def _change(key: str, codes: list[str], today: dict, yesterday: dict) -> Change:
    now = {c for c in codes if key in today.get(c, {})}
    before = {c for c in codes if key in yesterday.get(c, {})}
    both = now & before
    if not both:
        return Change(None, False)
    delta = sum(today[c][key][0] for c in both) - sum(yesterday[c][key][0] for c in both)
    return Change(delta, now != before)


EDITION_KINDS = ("late_report", "correction")  # 补报, 更正: their names are the layout's words


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
    not yet sent. `issue` is the day's 第N期 and its date (closeout.masthead; None: a preview without them),
    `signer` the 签发人 when the day has one."""
    registry, catalogue, store, settings = ctx.registry, ctx.catalogue, ctx.store, ctx.settings
    language = settings.bulletin_language
    layout = load_layout(settings.bulletin_layout_path, catalogue, language)
    words = layout.words
    head = load_masthead(settings.bulletin_masthead_path, language).for_day(issue, signer)
    english = language == "en"
    day = report_date.isoformat()
    when = month_day(report_date, words)
    figures = read_figures(ctx, report_date)
    today, yesterday = figures.today(), figures.day(1)
    statuses = {r["unit_code"]: r["status"] for r in store.rows("select_unit_days", {"report_date": day})}
    lines = [
        Line(
            u.code,
            _named(u, english),
            statuses.get(u.code, "missing" if u.required else "absent"),
            status_words=words["status"],
        )
        for u in registry.all_units
    ]
    region_name = (registry.region_name_en or registry.region_name) if english else registry.region_name
    region = Line(registry.region_code, words["region_total"].format(region=region_name), "", is_total=True)
    findings = store.rows("select_findings", {"report_date": day})
    unknown = _unknown(findings, lines)

    def cell(code, key, source=today):
        return source.get(code, {}).get(key)

    def shown(figure) -> str:
        return _figure(figure, language)

    codes = [u.code for u in registry.all_units]
    # Past this many units a column per unit is unreadable and too big to mail: the next level down, the top
    # movers and the units with a problem in the body; every unit in the attachments
    by_group = len(registry.units) > settings.bulletin_table_max_units
    groups = _groups(registry, english)
    area = words["city_area"] if registry.region_name.endswith("市") else region_name
    totals, previous, changes = {}, {}, {}
    for metric in catalogue.metrics:
        totals[metric.key] = _sum([cell(code, metric.key) for code in codes])
        previous[metric.key] = _sum([cell(code, metric.key, yesterday) for code in codes])
        changes[metric.key] = _change(metric.key, codes, today, yesterday)

    # A total built without some units says so in the sentence itself, not only in a note below.
    without = [ln.name for ln in lines if ln.status in EXCLUDED]

    def split(key: str) -> list[tuple[str, tuple[float, str] | None]]:
        if by_group:
            return [(name, _sum([cell(c, key) for c in members])) for name, members in groups]
        return [(ln.name, cell(ln.code, key)) for ln in lines]

    separator = words["list_separator"]
    unknown_units = {key: [ln.name for ln in lines if (ln.code, key) in unknown] for _, key in unknown}
    excluding = words["excluding"].format(units=separator.join(without)) if without else ""
    phrases = Phrases(catalogue, totals, split, excluding, unknown_units, words, language, head.large_figures)
    summary = phrases.sentences(layout, when=when, area=area)
    summary += [layout.status_lines[ln.status].render(unit=ln.name) for ln in lines if ln.status in layout.status_lines]

    sections = []
    for title, metrics in [] if by_group else _sectioned(layout, catalogue):
        rows = [
            {
                "label": metric.heading(language)[0],
                "unit": metric.heading(language)[1],
                "cells": [
                    words["unknown"] if (ln.code, metric.key) in unknown else shown(cell(ln.code, metric.key))
                    for ln in lines
                ],
                "total": shown(totals[metric.key]),
                "change": changes[metric.key].text(words, language),
            }
            for metric in metrics
        ]
        sections.append({"title": title, "rows": rows})

    narratives = [
        {
            "unit": _named(registry.get(r["unit_code"]), english),
            "headline": r["headline"],
            "byline": r["byline"],
            "paragraphs": [p for p in r["body"].splitlines() if p],
        }
        for r in store.rows("select_narratives", {"report_date": day})
    ]
    notes, announced = _notes(ctx, report_date, lines, findings, words, language)
    if any(change.partial for change in changes.values()):
        notes.append(words["like_with_like"])
    title = words["title"].format(region=region_name, when=when)
    subject = words["subject"].format(region=region_name, when=when, year=report_date.year)
    edition_lines = []
    if kind in EDITION_KINDS:
        name = words[kind]
        title = words["title_edition"].format(region=region_name, when=when, edition=name)
        subject += words["in_parentheses"].format(name)
        edition_lines = [words["edition_intro"].format(edition=name, when=when)]
        edition_lines += [change_sentence(ctx, r, words, language, same_day=True) for r in change_rows]
    bulletin = Bulletin(
        report_date,
        title,
        subject,
        words["window"].format(when=when),
        summary,
        sections,
        lines,
        narratives,
        notes,
        edition_lines=edition_lines,
        announced_notes=announced,
        head=head,
        words=words,
        language=language,
        file_stem=words["file_stem"].format(region=region_name),
    )
    if by_group:
        bulletin.rollup = _rollup(ctx, layout, lines, groups, today, figures.reporting_today(), totals, changes)
        bulletin.movers = _movers(ctx, layout, lines, today, yesterday)
        bulletin.problems = _problems(registry, lines, findings, english)
        bulletin.unit_sheet = _unit_sheet(ctx, lines, region, today, totals, words, english)
        bulletin.level_rows = _level_rows(ctx, report_date, lines, region, today, totals, english)
    else:
        bulletin.attachment_rows = _attachment_rows(
            ctx, report_date, lines, region, today, yesterday, totals, previous, changes
        )
    return bulletin


# A unit in one of these states has none of its own figures in the day's totals.
EXCLUDED = ("missing", "rejected", "received", "excused")


def _unknown(findings: list[dict], lines: list[Line]) -> set[tuple[str, str]]:
    """(unit code, metric key) of each figure a counted unit reported as 不详: unknown, neither 0 nor missing."""
    counted = {ln.code for ln in lines if ln.status not in EXCLUDED}
    return {
        (f["unit_code"], f["metric"].split("(")[0])
        for f in findings
        if f["rule"] == "value_unknown" and f["unit_code"] in counted
    }


def _sectioned(layout: Layout, catalogue: Catalogue) -> list[tuple[str, list[Metric]]]:
    """(title, metrics) per section of the layout that has metrics, in the layout's order and the catalogue's."""
    sectioned = [(title, [m for m in catalogue.metrics if m.section == key]) for key, title in layout.sections]
    return [(title, metrics) for title, metrics in sectioned if metrics]


def _groups(registry: Registry, english: bool) -> list[tuple[str, tuple[str, ...]]]:
    """The next level down, (name, unit codes) in code order: the divisions just below the region when the
    registry has levels, else its load groups. A unit outside every division is a row of its own."""
    if not registry.divisions:
        return [(registry.group_name(g.key), g.codes) for g in registry.groups()]
    grouped: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for unit in registry.all_units:
        top = registry.top_division(unit.code)
        key = top.code if top else unit.code
        names[key] = _named(top or unit, english)
        grouped.setdefault(key, []).append(unit.code)
    return [(names[key], tuple(codes)) for key, codes in grouped.items()]


def _rollup(
    ctx: Context,
    layout: Layout,
    lines: list[Line],
    groups: list[tuple[str, tuple[str, ...]]],
    today: dict,
    reporting: set[str],
    totals: dict,
    changes: dict,
) -> list[dict]:
    """Per section, a row per group (the sum of its units), the totals and the change on the previous day.
    "报送" is units whose own figures are in the sums / units expected; a unit not required and silent is not
    expected, and a group of only such units (市本级 with no figures of its own: the notes say so) has no row."""
    catalogue, words, language = ctx.catalogue, layout.words, layout.language
    expected = {ln.code for ln in lines if ln.status != "absent"}

    def reported(codes) -> str:
        return f"{len(reporting.intersection(codes))}/{len(expected.intersection(codes))}"

    shown_groups = [(name, codes) for name, codes in groups if expected.intersection(codes)]
    sections = []
    for title, metrics in _sectioned(layout, catalogue):
        rows = [
            {
                "label": name,
                "reported": reported(codes),
                "cells": [_figure(_sum([today.get(c, {}).get(m.key) for c in codes]), language) for m in metrics],
            }
            for name, codes in shown_groups
        ]
        sections.append(
            {
                "title": title,
                "columns": [dict(zip(("label", "unit"), m.heading(language), strict=True)) for m in metrics],
                "rows": rows,
                "reported": reported([ln.code for ln in lines]),
                "total": [_figure(totals[m.key], language) for m in metrics],
                "change": [changes[m.key].text(words, language) for m in metrics],
            }
        )
    return sections


def _movers(ctx: Context, layout: Layout, lines: list[Line], today: dict, yesterday: dict) -> list[dict]:
    """Per metric the layout names under `movers`, the units whose figure changed most on the previous day
    (units with the figure on both days; no change, no row)."""
    language = layout.language
    movers = []
    for key in layout.movers:
        metric = ctx.catalogue.by_key.get(key)
        if metric is None:
            continue
        changed = []
        for ln in lines:
            now, before = today.get(ln.code, {}).get(key), yesterday.get(ln.code, {}).get(key)
            if now is not None and before is not None and now[0] != before[0]:
                changed.append((ln, now, now[0] - before[0]))
        changed.sort(key=lambda item: (-abs(item[2]), item[0].code))
        label, unit = metric.heading(language)
        movers += [
            {
                "metric": label,
                "unit": unit,
                "name": ln.name,
                "value": _figure(now, language),
                "change": Change(delta, False).text(layout.words, language),
            }
            for ln, now, delta in changed[: layout.movers_count]
        ]
    return movers


PROBLEM_STATUSES = ("missing", "rejected", "received", "excused", "break")


def _problems(registry: Registry, lines: list[Line], findings: list[dict], english: bool) -> list[dict]:
    """Every unit missing (缺报), turned back (拒收), not loaded or with a finding (soft warnings included), in code
    order, with the division it belongs to and how many findings it has by severity."""
    counts: dict[str, dict[str, int]] = {}
    for f in findings:
        counts.setdefault(f["unit_code"], {}).setdefault(f["severity"], 0)
        counts[f["unit_code"]][f["severity"]] += 1
    problems = []
    for ln in lines:
        if ln.status not in PROBLEM_STATUSES and ln.code not in counts:
            continue
        found = counts.get(ln.code, {})
        problems.append(
            {
                "name": ln.name,
                "within": _within(registry, ln.code, english),
                "status": ln.status,
                "status_label": ln.status_label,
                "hard": found.get("hard", 0) + found.get("missing", 0),
                "soft": found.get("soft", 0),
            }
        )
    return problems


def _named(unit_or_division, english: bool) -> str:
    """Its name in the bulletin's language: the registry's name_en in English when it has one."""
    return (unit_or_division.name_en or unit_or_division.name) if english else unit_or_division.name


def _within(registry: Registry, code: str, english: bool) -> str:
    """What a unit belongs to in a large bulletin: its division just below the region, else its load group."""
    top = registry.top_division(code)
    return _named(top, english) if top else registry.group_name(registry.get(code).group or code)


def _figure(cell: tuple[float, str] | None, language: str = "zh") -> str:
    return "—" if cell is None else figure_text(*cell, language=language)


def _unit_sheet(
    ctx: Context, lines: list[Line], region: Line, today: dict, totals: dict, words: dict, english: bool
) -> list[list]:
    """The per-unit spreadsheet: a header, one row per unit in code order, the totals of each division (when the
    registry has levels) and the region. A figure is its (value, qualifier), a missing one None."""
    registry, metrics, language = ctx.registry, ctx.catalogue.metrics, "en" if english else "zh"
    group = {u.code: _within(registry, u.code, english) for u in registry.all_units}
    header = [*words["sheet_columns"], *(words["sheet_metric"].format(*m.heading(language)) for m in metrics)]
    rows = [
        [ln.code, ln.name, group[ln.code], ln.status_label, *(today.get(ln.code, {}).get(m.key) for m in metrics)]
        for ln in lines
    ]
    for division, members in _division_members(registry):
        division_totals = [_sum([today.get(c, {}).get(m.key) for c in members]) for m in metrics]
        parent = registry.divisions.get(division.parent)
        within = _named(parent, english) if parent else ""
        rows.append([division.code, _named(division, english), within, "", *division_totals])
    return [header, *rows, [region.code, region.name, "", "", *(totals[m.key] for m in metrics)]]


def _division_members(registry: Registry) -> list[tuple]:
    """Every division with the units under it at any depth, in code order (none when the registry has no levels)."""
    members: dict[str, list[str]] = {code: [] for code in registry.divisions}
    for unit in registry.all_units:
        for division in registry.ancestors(unit.code):
            members[division.code].append(unit.code)
    return [(registry.divisions[code], tuple(members[code])) for code in sorted(members)]


def _level_rows(
    ctx: Context, report_date: date, lines: list[Line], region: Line, today: dict, totals: dict, english: bool
) -> list[dict]:
    """The long CSV: a row per unit and metric (exact figures), then per division at every level and for the
    region its total, so any level's sum can be checked against the rows beneath it."""
    registry, metrics = ctx.registry, ctx.catalogue.metrics
    day = report_date.isoformat()

    def row(level, code, name, parent, metric, figure, status):
        return {
            "report_date": day,
            "level": level,
            "unit_code": code,
            "unit_name": name,
            "parent_code": parent,
            "metric": metric.key,
            "metric_name": metric.label,
            "unit": metric.unit,
            "value": "" if figure is None else render_value(figure[0]),
            "qualifier": "" if figure is None else figure[1],
            "status": status,
        }

    rows = []
    for ln in lines:
        parent = registry.get(ln.code).parent or registry.region_code
        rows += [
            row("unit", ln.code, ln.name, parent, m, today.get(ln.code, {}).get(m.key), ln.status) for m in metrics
        ]
    for division, members in _division_members(registry):
        name, parent = _named(division, english), division.parent or registry.region_code
        for m in metrics:
            figure = _sum([today.get(c, {}).get(m.key) for c in members])
            rows.append(row("division", division.code, name, parent, m, figure, "total"))
    rows += [row("region", region.code, region.name, "", m, totals[m.key], "total") for m in metrics]
    return rows


def _notes(
    ctx: Context, report_date: date, lines: list[Line], findings: list[dict], words: dict, language: str
) -> tuple[list[str], list[dict]]:
    """The data notes, and the earlier days' changes among them (a sent edition marks those announced). A finding
    is told in the words the county's file was judged in (Chinese), whatever the bulletin's language."""
    catalogue, store, day = ctx.catalogue, ctx.store, report_date.isoformat()
    names = {ln.code: ln.name for ln in lines}
    excusals = {r["unit_code"]: r["reason"] for r in store.rows("select_excusals", {"report_date": day})}
    notes = []
    for ln in lines:
        if ln.status in ("missing", "absent", "received", "excused"):
            notes.append(words[f"note_{ln.status}"].format(unit=ln.name, reason=excusals.get(ln.code, "")))
    order, chinese = {"hard": 0, "missing": 1, "soft": 2}, ctx.unit_names()
    for f in sorted(findings, key=lambda f: (order[f["severity"]], f["unit_code"], f["row_no"] or 0)):
        notes.append(plain_note(f, chinese.get(f["unit_code"], f["unit_code"])))
    for r in store.rows("select_day_revisions", {"report_date": day}):
        notes.append(
            words["note_revision"].format(
                unit=names.get(r["unit_code"], r["unit_code"]),
                metric=catalogue.by_key[r["metric"]].heading(language)[0],
                new=_shown(r["new_value"], r["new_qualifier"], language),
                old=_shown(r["old_value"], r["old_qualifier"], language),
            )
        )
    announced = store.rows("select_corrections_to_announce", {"report_date": day})
    notes += [change_sentence(ctx, r, words, language) for r in announced]
    return notes, announced


def plain_note(finding: dict, unit: str) -> str:
    """A finding as the leaders read it: the unit, the figure and what is wrong, without file names, English keys
    or rule ids (those stay in the receipts, the logs and `closeout status`)."""
    metric = finding["metric"]
    label = metric[metric.index("(") + 1 : -1] if metric.endswith(")") and "(" in metric else metric
    value = f"“{finding['value']}”" if finding["value"] not in ("", None) else ""
    message = re.sub(
        r"[（(][^（）()]*(?:docs/|\.md|\.csv|\.xlsx|[a-z]+_[a-z_]+)[^（）()]*[）)]", "", finding["message"]
    )
    message = message.strip().rstrip("。")
    subject = f"{label}{value}" if label else ""
    if finding["severity"] == "hard" and finding["stage"] in ("load", "validate"):
        return f"{unit}报送的数据未通过核验，已退回更正：{subject + '，' if subject else ''}{message}。"
    if finding["severity"] == "hard":
        return f"{unit}{subject}核对未通过：{message}。"
    return f"{unit}{subject + '：' if subject else '：'}{message}。"


def change_sentence(ctx: Context, r: dict, words: dict, language: str, same_day: bool = False) -> str:
    """'3月18日柯城区新增集中隔离由120人订正为126人，原因：…。' — or a late unit's whole report (补报)."""
    when = month_day(date.fromisoformat(r["report_date"]), words)
    code = r["unit_code"]
    unit = _named(ctx.registry.get(code), language == "en") if code in ctx.unit_names() else code
    if r["kind"] == "late_report":
        return words["late_same_day" if same_day else "late_earlier_day"].format(unit=unit, when=when)
    metric = ctx.catalogue.by_key[r["metric"]]
    label, measure = metric.heading(language)
    return words["corrected"].format(
        when=when,
        unit=unit,
        metric=label,
        old=_shown(r["old_value"], r["old_qualifier"], language),
        new=_shown(r["new_value"], r["new_qualifier"], language),
        measure=measure,
        reason=r["reason"] or words["no_reason"],
    )


def _shown(value, qualifier, language: str = "zh") -> str:
    return "—" if value is None else figure_text(value, qualifier, language)


def _attachment_rows(ctx, report_date, lines, region, today, yesterday, totals, previous, changes) -> list[dict]:
    rows = []
    for ln in [*lines, region]:
        for metric in ctx.catalogue.metrics:
            if ln.is_total:
                value, before = totals[metric.key], previous[metric.key]
                delta = changes[metric.key].delta  # like with like: units present on both days
            else:
                value, before = today.get(ln.code, {}).get(metric.key), yesterday.get(ln.code, {}).get(metric.key)
                delta = None if value is None or before is None else value[0] - before[0]
            rows.append(
                {
                    "report_date": report_date.isoformat(),
                    "unit_code": ln.code,
                    "unit_name": ln.name,
                    "metric": metric.key,
                    "metric_name": metric.label,
                    "kind": metric.kind,
                    "unit": metric.unit,
                    "value": "" if value is None else render_value(value[0]),
                    "qualifier": "" if value is None else value[1],
                    "display": "—" if value is None else render_value(*value),
                    "previous_value": "" if before is None else render_value(before[0]),
                    "change": "" if delta is None else render_value(delta),
                    "status": "total" if ln.is_total else ln.status,
                }
            )
    return rows


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


def inert_cell(value: object) -> object:
    """A spreadsheet cell that cannot run: text starting like a formula gets a leading ' (numbers stay numbers)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not NUMBER.match(value):
        return "'" + value
    return value


@dataclass(frozen=True)
class Rendered:
    html: str
    text: str
    attachment: bytes  # the CSV (UTF-8 with BOM so Excel opens the Chinese correctly), or the .xlsx by group
    register: bytes = b""  # the corrections register rows the edition lists (closeout.register); b"" when none
    # by group: the long CSV beside the .xlsx (a row per unit and metric, every level's totals), zipped: a country's
    # is 7 MB as text, over most mail servers' 10 MB once base64-encoded, and well under 1 MB zipped
    level_zip: bytes = b""
    pdf: bytes = b""  # the bulletin for A4 printing (closeout.pdf)
    images: tuple[tuple[str, bytes], ...] = ()  # the charts (closeout.charts): (file name, PNG), in the HTML by CID

    @property
    def sha256(self) -> str:
        # in the order the message carries its parts (closeout.mailer.mailed_sha256)
        return content_sha256(
            self.html.encode("utf-8"),
            self.text.encode("utf-8"),
            self.attachment,
            self.level_zip,
            self.register,
            self.pdf,
            *(png for _, png in self.images),
        )


def content_sha256(html: bytes, text: bytes, *attachments: bytes) -> str:
    """The hash an edition is known by, from the bytes of its parts in order, as on disk or as mailed."""
    return hashlib.sha256(html + text + b"".join(attachments)).hexdigest()


def render(ctx: Context, bulletin: Bulletin) -> Rendered:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ctx.settings.include_dir / "templates"),
        autoescape=jinja2.select_autoescape(["html.j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    html, text, media = _pages(ctx, env, bulletin)
    if bulletin.by_group:
        workbook = unit_workbook(bulletin.title, bulletin.report_date, bulletin.unit_sheet)
        long_csv = _csv(LEVEL_COLUMNS, bulletin.level_rows)
        level_zip = _zipped(level_zip_name(bulletin.attachment_name).removesuffix(".zip"), long_csv)
        return Rendered(html, text, workbook, level_zip=level_zip, **media)
    return Rendered(html, text, _csv(ATTACHMENT_COLUMNS, bulletin.attachment_rows), **media)


def chart_areas(ctx: Context, bulletin: Bulletin) -> list[tuple[str, tuple[str, ...]]]:
    """The areas the charts draw one row each for: the bulletin's own, its units or the next level down."""
    english = bulletin.language == "en"
    if bulletin.by_group:
        return _groups(ctx.registry, english)
    return [(_named(unit, english), (unit.code,)) for unit in ctx.registry.all_units]


def _pages(ctx: Context, env, bulletin: Bulletin) -> tuple[str, str, dict]:
    """The email's HTML (its CSS inlined, since many mail clients drop <style>; the charts by Content-ID), the
    plain text (the charts as figures) and the media: the PDF (the same page with the print CSS) and the charts."""
    import css_inline

    from closeout.charts import draw_charts
    from closeout.pdf import html_to_pdf, image_sources

    charts = draw_charts(ctx, bulletin.report_date, chart_areas(ctx, bulletin), bulletin.by_group, bulletin.language)
    page = env.get_template("bulletin.html.j2")
    words = {"b": bulletin, "t": bulletin.words, "head": bulletin.head, "charts": charts}
    by_cid = {chart.name: f"cid:{chart.cid}" for chart in charts}
    email_page = page.render(**words, images=by_cid, for_print=False)
    html = css_inline.inline(email_page, load_remote_stylesheets=False)  # the page links none: fetch nothing
    text = env.get_template("bulletin.txt.j2").render(**words)
    printed = page.render(**words, images=image_sources(charts), for_print=True)
    pdf = html_to_pdf(printed, bulletin.title, bulletin.report_date)
    return html, text, {"pdf": pdf, "images": tuple((chart.name, chart.png) for chart in charts)}


def _zipped(name: str, data: bytes) -> bytes:
    """One file in a zip; the same bytes for the same data (the entry's time fixed), as an edition needs."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo(name, ZIP_EPOCH), data, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _csv(columns: tuple[str, ...], rows: list[dict]) -> bytes:
    """UTF-8 with a BOM so Excel opens the Chinese correctly; no cell can run as a formula."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({key: inert_cell(value) for key, value in row.items()} for row in rows)
    return buffer.getvalue().encode("utf-8-sig")


ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def unit_workbook(title: str, report_date: date, sheet: list[list]) -> bytes:
    """The per-unit figures as an .xlsx: zip-compressed (a country's 2,850 units in well under a megabyte), opened
    by Excel and WPS with the Chinese intact and without an import step, numbers kept as numbers so ops can sum
    and sort; a figure with a qualifier ("600余") is the number shown with it. The same sheet gives the same
    bytes — an edition is known by its hash — so the workbook's dates are the report date and every zip entry's
    time is fixed (openpyxl would write the time of saving)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.utils import get_column_letter
    from openpyxl.xml.functions import tostring

    workbook = Workbook(write_only=True)
    stamp = datetime(report_date.year, report_date.month, report_date.day)
    workbook.properties.creator, workbook.properties.title = "closeout", title
    worksheet = workbook.create_sheet("分单位数据")
    worksheet.freeze_panes = "C2"
    for column, width in enumerate((10, 14, 12, 10, *([12] * (len(sheet[0]) - 4))), start=1):
        worksheet.column_dimensions[get_column_letter(column)].width = width

    def written(value):
        if value is None:
            return "—"
        if isinstance(value, tuple):
            number, qualifier = value
            if not qualifier:
                return number
            figure = WriteOnlyCell(worksheet, number)
            figure.number_format = (
                f'"{qualifier}"General' if qualifier in PREFIX_QUALIFIERS else f'General"{qualifier}"'
            )
            return figure
        text = WriteOnlyCell(worksheet, inert_cell(value))
        text.data_type = "s"  # text is never a formula, and keeps the ' in front that says so if it is edited
        return text

    for row in sheet:
        worksheet.append([written(value) for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    workbook.properties.created = workbook.properties.modified = stamp
    core = tostring(workbook.properties.to_tree())
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as saved, zipfile.ZipFile(out, "w") as fixed:
        for info in saved.infolist():
            data = core if info.filename == "docProps/core.xml" else saved.read(info)
            fixed.writestr(zipfile.ZipInfo(info.filename, ZIP_EPOCH), data, zipfile.ZIP_DEFLATED)
    return out.getvalue()
