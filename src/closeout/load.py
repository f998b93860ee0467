"""Loading one group of units for one day: archive, parse, validate (one GX run), store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from closeout.archive import ArchivedFile, archive_file, quarantine_file
from closeout.context import Context
from closeout.findings import Finding, blocking
from closeout.ingest import Submission, discover, parse_submission, read_narrative
from closeout.numbers import render_value
from closeout.registry import Unit
from closeout.store import now_local
from closeout.validate import collapse, validate_batch


@dataclass
class UnitOutcome:
    unit_code: str
    unit_name: str
    status: str  # loaded | unchanged | rejected | missing | absent
    lines: list[str] = field(default_factory=list)  # one line per problem, for the operator

    @property
    def failed(self) -> bool:
        return self.status in ("rejected", "missing")


def load_group(ctx: Context, report_date: date, codes: list[str]) -> list[UnitOutcome]:
    registry, store, day = ctx.registry, ctx.store, report_date.isoformat()
    inbox = discover(ctx.settings.inbox, report_date, registry)
    unit_status = {r["unit_code"]: r["status"] for r in store.rows("select_unit_days", {"report_date": day})}
    outcomes: dict[str, UnitOutcome] = {}
    pending: list[tuple[Submission, ArchivedFile]] = []
    for code in codes:
        unit = registry.get(code)
        files = inbox.figure_files.get(code, [])
        if not files:
            outcomes[code] = _no_file(ctx, report_date, unit)
            continue
        archived = [archive_file(f, ctx.settings.archive_dir, report_date, code) for f in files]
        if len(archived) > 1:
            names = "、".join(a.source.name for a in archived)
            finding = Finding(
                report_date,
                code,
                unit.name,
                "hard",
                "load",
                "several_files",
                f"同一单位当日有多个数据文件（{names}），请只保留一个后重报",
                file=names,
            )
            for item in archived:
                _commit(ctx, Submission(unit, item.source, report_date, findings=[finding]), item)
            outcomes[code] = UnitOutcome(code, unit.name, "rejected", [finding.line()])
            continue
        item = archived[0]
        seen = store.rows("find_submission", {"report_date": day, "unit_code": code, "sha256": item.sha256})
        if seen and seen[0]["status"] == "loaded" and unit_status.get(code) != "rejected":
            outcomes[code] = UnitOutcome(code, unit.name, "unchanged")  # the current file again: nothing to do
            continue
        # Anything else is judged afresh: a superseded file sent back wins again, and a rejection that
        # depended on the day's state (two files, a correction without a note) is not remembered per file.
        pending.append((parse_submission(item.source, unit, report_date, ctx.catalogue, registry), item))
    if pending:
        from closeout.checks import GxRunner  # GX is heavy: imported only when there is something to check

        validate_batch([sub for sub, _ in pending], ctx.catalogue, GxRunner())
    for sub, item in pending:
        outcomes[sub.unit.code] = _commit(ctx, sub, item)
    for code in codes:  # after the figures, so a bad narrative never holds them up
        if code in inbox.narratives:
            _load_narrative(ctx, report_date, registry.get(code), inbox.narratives[code])
    return [outcomes[code] for code in codes]


def _no_file(ctx: Context, report_date: date, unit: Unit) -> UnitOutcome:
    day = report_date.isoformat()
    if ctx.store.rows("select_unit_figures", {"report_date": day, "unit_code": unit.code}):
        return UnitOutcome(unit.code, unit.name, "unchanged")  # loaded earlier; the file has since left the inbox
    status = "missing" if unit.required else "absent"
    detail = (
        f"截至截止时间未收到{day}的数据文件（应放入收件目录 {day}/{unit.code}.csv 或 .xlsx，"
        f"文件名也可用拼音 {unit.slug} 或中文名 {unit.name}）"
    )
    with ctx.store.transaction() as conn:
        ctx.store.set_unit_day(conn, day, unit.code, status, detail if unit.required else "本日无单独报送")
    return UnitOutcome(unit.code, unit.name, status, [f"[缺报] {unit.label}：{detail}"] if unit.required else [])


def _load_narrative(ctx: Context, report_date: date, unit: Unit, path) -> None:
    item = archive_file(path, ctx.settings.archive_dir, report_date, unit.code)
    day, findings = report_date.isoformat(), []
    try:
        narrative = read_narrative(path)
    except Exception as exc:  # a narrative is optional: say why it is left out, never stop the day
        narrative = None
        findings.append(
            Finding(
                report_date,
                unit.code,
                unit.name,
                "soft",
                "narrative",
                "narrative_unreadable",
                f"文字稿无法读取（{type(exc).__name__}），本日不刊登；请存为 UTF-8 或 GBK 文本",
                file=path.name,
            )
        )
    with ctx.store.transaction() as conn:
        ctx.store.run(conn, "delete_findings", {"report_date": day, "unit_code": unit.code, "stage": "narrative"})
        ctx.store.run(conn, "insert_finding", [f.as_record() for f in findings])
        if narrative:
            ctx.store.run(
                conn,
                "upsert_narrative",
                {
                    "report_date": day,
                    "unit_code": unit.code,
                    "headline": narrative.headline,
                    "byline": narrative.byline,
                    "body": "\n".join(narrative.paragraphs),
                    "sha256": item.sha256,
                },
            )


def _commit(ctx: Context, sub: Submission, item: ArchivedFile) -> UnitOutcome:
    store, day, code = ctx.store, sub.report_date.isoformat(), sub.unit.code
    key = {"report_date": day, "unit_code": code}
    figures = collapse(sub)
    with store.transaction() as conn:
        published = bool(store.run(conn, "select_published", {"report_date": day}).first())
        current = {r.metric: r for r in store.run(conn, "select_unit_figures", key)}
        changes = _changes(current, {f.metric: f for f in figures})
        if published and not blocking(sub.findings):
            for metric, _, new in changes:  # a published figure changes only with a stated reason
                if new is None or not new.note:
                    sub.finding(
                        "hard",
                        "correction_without_note",
                        "日报已发布，更正须在备注列写明原因",
                        metric=ctx.catalogue.by_key[metric].display,
                        value=_shown(new),
                        stage="validate",
                    )
        hard = blocking(sub.findings)
        for stage in ("load", "validate"):
            store.run(conn, "delete_findings", {**key, "stage": stage})
        store.run(conn, "insert_finding", [f.as_record() for f in sub.findings])
        record = {
            **key,
            "sha256": item.sha256,
            "file_name": sub.path.name,
            "archived_path": str(item.path),
            "received_at": item.received_at,
            "processed_at": now_local(),
        }
        if hard:
            store.run(
                conn,
                "upsert_submission",
                {**record, "status": "rejected", "reasons": "\n".join(f.line() for f in hard)},
            )
            store.set_unit_day(conn, day, code, "rejected", hard[0].line())
        else:
            recorded_at = now_local()
            kind = "correction" if published else "revision"
            revisions = [_revision(key, item, kind, recorded_at, metric, old, new) for metric, old, new in changes]
            if published and not current and figures:  # a first report after publication (补报)
                revisions.append(_revision(key, item, "late_report", recorded_at))
            store.run(conn, "insert_revision", revisions)
            store.run(conn, "delete_unit_figures", key)
            store.run(
                conn,
                "insert_figure",
                [
                    {
                        **key,
                        "metric": f.metric,
                        "value": f.value,
                        "qualifier": f.qualifier,
                        "note": f.note,
                        "source_sha256": item.sha256,
                        "source_rows": f.source_rows,
                        "attributed_unit": f.attributed_unit,
                    }
                    for f in figures
                ],
            )
            store.run(conn, "supersede_loaded_submissions", key)
            store.run(conn, "upsert_submission", {**record, "status": "loaded", "reasons": ""})
            store.set_unit_day(conn, day, code, "loaded")
    if hard:
        lines = [f.line() for f in hard]
        quarantine_file(item, ctx.settings.quarantine_dir, sub.report_date, code, lines)
        return UnitOutcome(code, sub.unit.name, "rejected", lines)
    return UnitOutcome(code, sub.unit.name, "loaded")


def _revision(key: dict, item: ArchivedFile, kind: str, recorded_at: str, metric: str = "", old=None, new=None) -> dict:
    """A figure_revision row: old → new of one metric, or (metric "") a whole late report."""
    return {
        **key,
        "metric": metric,
        "old_value": old.value if old else None,
        "new_value": new.value if new else None,
        "old_qualifier": old.qualifier if old else "",
        "new_qualifier": new.qualifier if new else "",
        "old_sha256": old.source_sha256 if old else "",
        "new_sha256": item.sha256,
        "kind": kind,
        "reason": new.note if new else "",
        "recorded_at": recorded_at,
    }


def _changes(current: dict, new: dict) -> list[tuple[str, object, object]]:
    """Figures already stored that the new file changes or drops; a metric it adds changes nothing stored."""
    changed = []
    for metric in sorted(current):
        old, fresh = current[metric], new.get(metric)
        if fresh is None or old.value != fresh.value or old.qualifier != fresh.qualifier:
            changed.append((metric, old, fresh))
    return changed


def _shown(figure) -> str:
    return "（删除）" if figure is None else render_value(figure.value, figure.qualifier)
