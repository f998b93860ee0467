"""The bulletin's parts computed per section or per group of units: which units an area holds (the next level
down, every division), the day's figures summed per area (once per bulletin), and what a large bulletin shows by
group — the rollup tables, the top movers, the units with a problem — and the data notes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from closeout.core.catalogue import Catalogue, Metric
from closeout.core.clock import month_day
from closeout.core.registry import Division, Registry
from closeout.core.vocabulary import EXCLUDED_FROM_TOTALS, RevisionKind, UnitStatus
from closeout.publish.bulletin.figures import (
    Change,
    DayCells,
    Figure,
    Line,
    Totals,
    figure_shown,
    revision_figure,
    sum_figures,
)
from closeout.publish.layout import Layout
from closeout.store.context import Context

Codes = tuple[str, ...]  # the unit codes an area holds, in code order


def named(unit_or_division, english: bool) -> str:
    """Its name in the bulletin's language: the registry's name_en in English when it has one."""
    return (unit_or_division.name_en or unit_or_division.name) if english else unit_or_division.name


def within_name(registry: Registry, code: str, english: bool) -> str:
    """What a unit belongs to in a large bulletin: its division just below the region, else its load group."""
    top = registry.top_division(code)
    return named(top, english) if top else registry.group_name(registry.get(code).group or code)


def group_areas(registry: Registry, english: bool) -> list[tuple[str, Codes]]:
    """The next level down, (name, unit codes) in code order: the divisions just below the region when the
    registry has levels, else its load groups. A unit outside every division is a row of its own."""
    if not registry.divisions:
        return [(registry.group_name(g.key), g.codes) for g in registry.groups()]
    grouped: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for unit in registry.all_units:
        top = registry.top_division(unit.code)
        key = top.code if top else unit.code
        names[key] = named(top or unit, english)
        grouped.setdefault(key, []).append(unit.code)
    return [(names[key], tuple(codes)) for key, codes in grouped.items()]


def division_areas(registry: Registry) -> list[tuple[Division, Codes]]:
    """Every division with the units under it at any depth, in code order (none when the registry has no levels)."""
    members: dict[str, list[str]] = {code: [] for code in registry.divisions}
    for unit in registry.all_units:
        for division in registry.ancestors(unit.code):
            members[division.code].append(unit.code)
    return [(registry.divisions[code], tuple(members[code])) for code in sorted(members)]


@dataclass(frozen=True)
class Areas:
    """A large bulletin's areas and their sums, computed once: the next level down (the rollup's rows, the
    summary's figures by group) and every division at any depth (the totals of the sheet and of the long CSV)."""

    groups: list[tuple[str, Codes]]
    divisions: list[tuple[Division, Codes]]
    # per area, by its unit codes (a top division and its group are one), per metric key: the day's sum
    sums: dict[Codes, dict[str, Figure | None]]

    def split(self, key: str) -> list[tuple[str, Figure | None]]:
        """A metric's figure per group, as the summary sentences cite it (closeout.publish.layout.Phrases)."""
        return [(name, self.sums[codes][key]) for name, codes in self.groups]


def summed_areas(registry: Registry, today: DayCells, metrics: list[Metric], english: bool) -> Areas:
    """The areas of a large bulletin, each area's figures summed once per metric."""
    groups, divisions = group_areas(registry, english), division_areas(registry)
    sums: dict[Codes, dict[str, Figure | None]] = {}
    for codes in [*(codes for _, codes in groups), *(codes for _, codes in divisions)]:
        if codes not in sums:
            sums[codes] = {m.key: sum_figures([today.get(c, {}).get(m.key) for c in codes]) for m in metrics}
    return Areas(groups, divisions, sums)


def sectioned(layout: Layout, catalogue: Catalogue) -> list[tuple[str, list[Metric]]]:
    """(title, metrics) per section of the layout that has metrics, in the layout's order and the catalogue's."""
    sections = [(title, [m for m in catalogue.metrics if m.section == key]) for key, title in layout.sections]
    return [(title, metrics) for title, metrics in sections if metrics]


def rollup_sections(
    ctx: Context, layout: Layout, lines: list[Line], areas: Areas, reporting: set[str], totals: Totals
) -> list[dict]:
    """Per section, a row per group (the sum of its units), the totals and the change on the previous day.
    "报送" is units whose own figures are in the sums / units expected; a unit not required and silent is not
    expected, and a group of only such units (市本级 with no figures of its own: the notes say so) has no row."""
    catalogue, words, language = ctx.catalogue, layout.words, layout.language
    expected = {ln.code for ln in lines if ln.status != UnitStatus.ABSENT}
    shown_groups = [(name, codes) for name, codes in areas.groups if expected.intersection(codes)]
    sections = []
    for title, metrics in sectioned(layout, catalogue):
        rows = [
            {
                "label": name,
                "reported": _reported(reporting, expected, codes),
                "cells": [figure_shown(areas.sums[codes][m.key], language) for m in metrics],
            }
            for name, codes in shown_groups
        ]
        sections.append(
            {
                "title": title,
                "columns": [dict(zip(("label", "unit"), m.heading(language), strict=True)) for m in metrics],
                "rows": rows,
                "reported": _reported(reporting, expected, [ln.code for ln in lines]),
                "total": [figure_shown(totals.today[m.key], language) for m in metrics],
                "change": [totals.changes[m.key].text(words, language) for m in metrics],
            }
        )
    return sections


def _reported(reporting: set[str], expected: set[str], codes) -> str:
    """'12/13': the units among `codes` whose own figures are in the sums, over the units expected."""
    return f"{len(reporting.intersection(codes))}/{len(expected.intersection(codes))}"


def top_movers(ctx: Context, layout: Layout, lines: list[Line], today: DayCells, yesterday: DayCells) -> list[dict]:
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
                "value": figure_shown(now, language),
                "change": Change(delta, False).text(layout.words, language),
            }
            for ln, now, delta in changed[: layout.movers_count]
        ]
    return movers


# Missing (缺报), turned back (拒收), not loaded, excused, or not reconciled: a large bulletin lists the unit.
PROBLEM_STATUSES = (*EXCLUDED_FROM_TOTALS, UnitStatus.BREAK)


def problem_units(registry: Registry, lines: list[Line], findings: list[dict], english: bool) -> list[dict]:
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
                "within": within_name(registry, ln.code, english),
                "status": ln.status,
                "status_label": ln.status_label,
                "hard": found.get("hard", 0) + found.get("missing", 0),
                "soft": found.get("soft", 0),
            }
        )
    return problems


# A unit in one of these states gets a note of its own (the layout's note_<status>).
NOTED_STATUSES = (UnitStatus.MISSING, UnitStatus.ABSENT, UnitStatus.RECEIVED, UnitStatus.EXCUSED)


def data_notes(
    ctx: Context, report_date: date, lines: list[Line], findings: list[dict], words: dict, language: str
) -> tuple[list[str], list[dict]]:
    """The data notes, and the earlier days' changes among them (a sent edition marks those announced). A finding
    is told in the words the county's file was judged in (Chinese), whatever the bulletin's language."""
    catalogue, store, day = ctx.catalogue, ctx.store, report_date.isoformat()
    names = {ln.code: ln.name for ln in lines}
    excusals = {r["unit_code"]: r["reason"] for r in store.rows("select_excusals", {"report_date": day})}
    notes = []
    for ln in lines:
        if ln.status in NOTED_STATUSES:
            notes.append(words[f"note_{ln.status}"].format(unit=ln.name, reason=excusals.get(ln.code, "")))
    order, chinese = {"hard": 0, "missing": 1, "soft": 2}, ctx.unit_names()
    for f in sorted(findings, key=lambda f: (order[f["severity"]], f["unit_code"], f["row_no"] or 0)):
        notes.append(plain_note(f, chinese.get(f["unit_code"], f["unit_code"])))
    for r in store.rows("select_day_revisions", {"report_date": day}):
        notes.append(
            words["note_revision"].format(
                unit=names.get(r["unit_code"], r["unit_code"]),
                metric=catalogue.by_key[r["metric"]].heading(language)[0],
                new=revision_figure(r["new_value"], r["new_qualifier"], language),
                old=revision_figure(r["old_value"], r["old_qualifier"], language),
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
    unit = named(ctx.registry.get(code), language == "en") if code in ctx.unit_names() else code
    if r["kind"] == RevisionKind.LATE_REPORT:
        return words["late_same_day" if same_day else "late_earlier_day"].format(unit=unit, when=when)
    metric = ctx.catalogue.by_key[r["metric"]]
    label, measure = metric.heading(language)
    return words["corrected"].format(
        when=when,
        unit=unit,
        metric=label,
        old=revision_figure(r["old_value"], r["old_qualifier"], language),
        new=revision_figure(r["new_value"], r["new_qualifier"], language),
        measure=measure,
        reason=r["reason"] or words["no_reason"],
    )
