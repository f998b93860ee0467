"""The daily bulletin: the day's figures, totals, changes, narratives and data notes, rendered."""

from __future__ import annotations

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
from closeout.numbers import PREFIX_QUALIFIERS, render_value
from closeout.reconcile import read_figures

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


@dataclass
class Line:
    code: str
    name: str
    status: str
    is_total: bool = False

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)


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

    @property
    def by_group(self) -> bool:
        return bool(self.rollup)

    @property
    def attachment_name(self) -> str:
        suffix = "xlsx" if self.by_group else "csv"
        return f"{self.title.split('（')[0]}数据_{self.report_date.isoformat()}.{suffix}"


def month_day(day: date) -> str:
    return f"{day.month}月{day.day}日"


def _sum(cells: list[tuple[float, str] | None]) -> tuple[float, str] | None:
    present = [c for c in cells if c is not None]
    if not present:
        return None
    qualifiers = {q for _, q in present if q}
    # "600余" plus exact figures stays "N余"; approximations of different kinds ("近" and "余") make "约"
    return sum(v for v, _ in present), (qualifiers.pop() if len(qualifiers) == 1 else "约" if qualifiers else "")


LIKE_WITH_LIKE_NOTE = "标※的“较前日”只比较两日均有数据的单位（有单位缺报、拒收或首次报送）。"


@dataclass(frozen=True)
class Change:
    """The change on the previous day over the units that have the figure on both days."""

    delta: float | None
    partial: bool  # the two days' totals cover different units

    @property
    def text(self) -> str:
        if self.delta is None:
            return "—"
        shown = "持平" if self.delta == 0 else ("+" if self.delta > 0 else "−") + render_value(abs(self.delta))
        return shown + ("※" if self.partial else "")


def _change(key: str, codes: list[str], today: dict, yesterday: dict) -> Change:
    now = {c for c in codes if key in today.get(c, {})}
    before = {c for c in codes if key in yesterday.get(c, {})}
    both = now & before
    if not both:
        return Change(None, False)
    delta = sum(today[c][key][0] for c in both) - sum(yesterday[c][key][0] for c in both)
    return Change(delta, now != before)


EDITION_NAMES = {"late_report": "补报", "correction": "更正"}


def build_bulletin(ctx: Context, report_date: date, kind: str = "official", change_rows: list[dict] = ()) -> Bulletin:
    """The day's bulletin from the store. `kind` 补报 (late_report) or 更正 (correction) makes the edition sent
    after the day's 正式 bulletin: its subject and first lines say so and list `change_rows`, the day's revisions
    not yet sent."""
    registry, catalogue, store = ctx.registry, ctx.catalogue, ctx.store
    layout = load_layout(ctx.settings.bulletin_layout_path, catalogue)
    day = report_date.isoformat()
    figures = read_figures(ctx, report_date)
    today, yesterday = figures.today(), figures.day(1)
    statuses = {r["unit_code"]: r["status"] for r in store.rows("select_unit_days", {"report_date": day})}
    lines = [
        Line(u.code, u.name, statuses.get(u.code, "missing" if u.required else "absent")) for u in registry.all_units
    ]
    region = Line(registry.region_code, f"{registry.region_name}（合计）", "", is_total=True)
    findings = store.rows("select_findings", {"report_date": day})
    unknown = _unknown(findings, lines)

    def cell(code, key, source=today):
        return source.get(code, {}).get(key)

    codes = [u.code for u in registry.all_units]
    # Past this many units a column per unit is unreadable and too big to mail: groups in the body, units in an .xlsx
    by_group = len(registry.units) > ctx.settings.bulletin_table_max_units
    area = "全市" if registry.region_name.endswith("市") else registry.region_name
    totals, previous, changes = {}, {}, {}
    for metric in catalogue.metrics:
        totals[metric.key] = _sum([cell(code, metric.key) for code in codes])
        previous[metric.key] = _sum([cell(code, metric.key, yesterday) for code in codes])
        changes[metric.key] = _change(metric.key, codes, today, yesterday)

    # A total built without some units says so in the sentence itself, not only in a note below.
    without = [ln.name for ln in lines if ln.status in EXCLUDED]

    def split(key: str) -> list[tuple[str, tuple[float, str] | None]]:
        if by_group:
            return [(registry.group_name(g.key), _sum([cell(c, key) for c in g.codes])) for g in registry.groups()]
        return [(u.name, cell(u.code, key)) for u in registry.all_units]

    unknown_units = {key: [ln.name for ln in lines if (ln.code, key) in unknown] for _, key in unknown}
    phrases = Phrases(catalogue, totals, split, f"不含{'、'.join(without)}" if without else "", unknown_units)
    summary = phrases.sentences(layout, when=month_day(report_date), area=area)
    summary += [layout.status_lines[ln.status].render(unit=ln.name) for ln in lines if ln.status in layout.status_lines]

    sections = []
    for title, metrics in [] if by_group else _sectioned(layout, catalogue):
        rows = [
            {
                "label": metric.label,
                "unit": metric.unit,
                "cells": [
                    "不详" if (ln.code, metric.key) in unknown else _figure(cell(ln.code, metric.key)) for ln in lines
                ],
                "total": _figure(totals[metric.key]),
                "change": changes[metric.key].text,
            }
            for metric in metrics
        ]
        sections.append({"title": title, "rows": rows})

    narratives = [
        {
            "unit": registry.get(r["unit_code"]).name,
            "headline": r["headline"],
            "byline": r["byline"],
            "paragraphs": [p for p in r["body"].splitlines() if p],
        }
        for r in store.rows("select_narratives", {"report_date": day})
    ]
    notes, announced = _notes(ctx, report_date, lines, findings)
    if any(change.partial for change in changes.values()):
        notes.append(LIKE_WITH_LIKE_NOTE)
    title = f"{registry.region_name}疫情防控工作日报（{month_day(report_date)}）"
    subject = f"{registry.region_name}疫情防控工作日报 {report_date.year}年{month_day(report_date)}"
    edition_lines = []
    if kind in EDITION_NAMES:
        name = EDITION_NAMES[kind]
        title = f"{registry.region_name}疫情防控工作日报（{month_day(report_date)}·{name}）"
        subject += f"（{name}）"
        edition_lines = [f"【{name}】{month_day(report_date)}日报发出后，以下数据有变化，本期数字已全部更新："]
        edition_lines += [change_sentence(ctx, r, same_day=True) for r in change_rows]
    bulletin = Bulletin(
        report_date,
        title,
        subject,
        f"统计时段：{month_day(report_date)}0—24时",
        summary,
        sections,
        lines,
        narratives,
        notes,
        edition_lines=edition_lines,
        announced_notes=announced,
    )
    if by_group:
        bulletin.rollup = _rollup(ctx, layout, lines, today, figures.reporting_today(), totals, changes)
        bulletin.unit_sheet = _unit_sheet(ctx, lines, region, today, totals)
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


def _rollup(
    ctx: Context, layout: Layout, lines: list[Line], today: dict, reporting: set[str], totals: dict, changes: dict
) -> list[dict]:
    """Per section, a row per load group (the sum of its units), the totals and the change on the previous day.
    "报送" is units whose own figures are in the sums / units expected; a unit not required and silent is not
    expected, and a group of only such units (市本级 with no figures of its own: the notes say so) has no row."""
    registry, catalogue = ctx.registry, ctx.catalogue
    expected = {ln.code for ln in lines if ln.status != "absent"}

    def reported(codes) -> str:
        return f"{len(reporting.intersection(codes))}/{len(expected.intersection(codes))}"

    groups = [(registry.group_name(g.key), g.codes) for g in registry.groups() if expected.intersection(g.codes)]
    sections = []
    for title, metrics in _sectioned(layout, catalogue):
        rows = [
            {
                "label": name,
                "reported": reported(codes),
                "cells": [_figure(_sum([today.get(c, {}).get(m.key) for c in codes])) for m in metrics],
            }
            for name, codes in groups
        ]
        sections.append(
            {
                "title": title,
                "columns": [{"label": m.label, "unit": m.unit} for m in metrics],
                "rows": rows,
                "reported": reported([ln.code for ln in lines]),
                "total": [_figure(totals[m.key]) for m in metrics],
                "change": [changes[m.key].text for m in metrics],
            }
        )
    return sections


def _figure(cell: tuple[float, str] | None) -> str:
    return "—" if cell is None else render_value(*cell)


def _unit_sheet(ctx: Context, lines: list[Line], region: Line, today: dict, totals: dict) -> list[list]:
    """The per-unit spreadsheet: a header, one row per unit in code order, the totals row. A figure is its
    (value, qualifier), a missing one None."""
    registry, metrics = ctx.registry, ctx.catalogue.metrics
    group = {u.code: registry.group_name(u.group or u.code) for u in registry.all_units}
    header = ["区划代码", "单位名称", "所属分组", "报送状态", *(f"{m.label}（{m.unit}）" for m in metrics)]
    rows = [
        [ln.code, ln.name, group[ln.code], ln.status_label, *(today.get(ln.code, {}).get(m.key) for m in metrics)]
        for ln in lines
    ]
    return [header, *rows, [region.code, region.name, "", "", *(totals[m.key] for m in metrics)]]


def _notes(ctx: Context, report_date: date, lines: list[Line], findings: list[dict]) -> tuple[list[str], list[dict]]:
    """The data notes, and the earlier days' changes among them (a sent edition marks those announced)."""
    catalogue, store, day = ctx.catalogue, ctx.store, report_date.isoformat()
    names = {u.code: u.name for u in ctx.registry.all_units}
    excusals = {r["unit_code"]: r["reason"] for r in store.rows("select_excusals", {"report_date": day})}
    notes = []
    for ln in lines:
        if ln.status == "missing":
            notes.append(f"{ln.name}数据截至发布时未报送，按缺报处理，表中以“—”表示，次日补报后订正。")
        if ln.status == "absent":
            notes.append(f"{ln.name}本日无单独报送，合计为各县（市、区）之和。")
        if ln.status == "received":
            notes.append(f"{ln.name}数据已收到，因处理故障截至发布时未能入库，表中以“—”表示，入库后订正。")
        if ln.status == "excused":
            reason = excusals.get(ln.code, "")
            notes.append(f"{ln.name}本日不报送（{reason}），经值班人员确认按缺报处理，表中以“—”表示。")
    order = {"hard": 0, "missing": 1, "soft": 2}
    for f in sorted(findings, key=lambda f: (order[f["severity"]], f["unit_code"], f["row_no"] or 0)):
        notes.append(plain_note(f, names.get(f["unit_code"], f["unit_code"])))
    for r in store.rows("select_day_revisions", {"report_date": day}):
        metric = catalogue.by_key[r["metric"]]
        notes.append(
            f"{names.get(r['unit_code'], r['unit_code'])}发布前重报：{metric.label} "
            f"{_shown(r['new_value'], r['new_qualifier'])}（原为{_shown(r['old_value'], r['old_qualifier'])}）。"
        )
    announced = store.rows("select_corrections_to_announce", {"report_date": day})
    notes += [change_sentence(ctx, r) for r in announced]
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


def change_sentence(ctx: Context, r: dict, same_day: bool = False) -> str:
    """'3月18日柯城区新增集中隔离由120人订正为126人，原因：…。' — or a late unit's whole report (补报)."""
    when = month_day(date.fromisoformat(r["report_date"]))
    unit = ctx.unit_names().get(r["unit_code"], r["unit_code"])
    if r["kind"] == "late_report":
        if same_day:
            return f"{unit}数据于日报发出后补报，已计入本期各项合计。"
        return f"{when}{unit}数据于当日日报发布后补报，已计入{when}合计。"
    metric = ctx.catalogue.by_key[r["metric"]]
    return (
        f"{when}{unit}{metric.label}由{_shown(r['old_value'], r['old_qualifier'])}{metric.unit}订正为"
        f"{_shown(r['new_value'], r['new_qualifier'])}{metric.unit}，原因：{r['reason'] or '未说明'}。"
    )


def _shown(value, qualifier) -> str:
    return "—" if value is None else render_value(value, qualifier)


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
    pdf: bytes = b""  # the bulletin for A4 printing (closeout.pdf)
    images: tuple[tuple[str, bytes], ...] = ()  # the charts (closeout.charts): (file name, PNG), in the HTML by CID

    @property
    def sha256(self) -> str:
        return content_sha256(
            self.html.encode("utf-8"),
            self.text.encode("utf-8"),
            self.attachment,
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
        return Rendered(html, text, unit_workbook(bulletin.title, bulletin.report_date, bulletin.unit_sheet), **media)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ATTACHMENT_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({key: inert_cell(value) for key, value in row.items()} for row in bulletin.attachment_rows)
    return Rendered(html, text, buffer.getvalue().encode("utf-8-sig"), **media)


def _pages(ctx: Context, env, bulletin: Bulletin) -> tuple[str, str, dict]:
    """The email's HTML (its CSS inlined, since many mail clients drop <style>; the charts by Content-ID), the
    plain text (the charts as figures) and the media: the PDF (the same page with the print CSS) and the charts."""
    import css_inline

    from closeout.charts import draw_charts
    from closeout.pdf import html_to_pdf, image_sources

    charts = draw_charts(ctx, bulletin.report_date, bulletin.by_group)
    page = env.get_template("bulletin.html.j2")
    by_cid = {chart.name: f"cid:{chart.cid}" for chart in charts}
    email_page = page.render(b=bulletin, charts=charts, images=by_cid, for_print=False)
    html = css_inline.inline(email_page, load_remote_stylesheets=False)  # the page links none: fetch nothing
    text = env.get_template("bulletin.txt.j2").render(b=bulletin, charts=charts)
    printed = page.render(b=bulletin, charts=charts, images=image_sources(charts), for_print=True)
    pdf = html_to_pdf(printed, bulletin.title, bulletin.report_date)
    return html, text, {"pdf": pdf, "images": tuple((chart.name, chart.png) for chart in charts)}


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
