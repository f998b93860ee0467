"""Loading one group of units for one day: archive, parse, validate (one GX run), store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from closeout.archive import ArchivedFile, quarantine_file, take_file
from closeout.context import Context
from closeout.datadocs import group_label, keep_results
from closeout.findings import Finding, blocking
from closeout.ingest import Submission, discover, parse_submission, read_narrative
from closeout.numbers import render_value
from closeout.readers import FileRefused, FileStillChanging, settled
from closeout.reclose import Signature
from closeout.registry import Unit
from closeout.store import now_local
from closeout.validate import collapse, validate_batch


@dataclass
class UnitOutcome:
    unit_code: str
    unit_name: str
    status: str  # loaded | unchanged | rejected | missing | absent | excused
    lines: list[str] = field(default_factory=list)  # one line per problem, for the operator

    @property
    def failed(self) -> bool:
        return self.status in ("rejected", "missing")


def load_group(ctx: Context, report_date: date, codes: list[str], signed: Signature | None = None) -> list[UnitOutcome]:
    registry, store, day = ctx.registry, ctx.store, report_date.isoformat()
    inbox = discover(ctx.settings.inbox, report_date, registry)
    unit_status = {r["unit_code"]: r["status"] for r in store.rows("select_unit_days", {"report_date": day})}
    excused = {r["unit_code"]: r["reason"] for r in store.rows("select_excusals", {"report_date": day})}
    outcomes: dict[str, UnitOutcome] = {}
    pending: list[tuple[Submission, ArchivedFile]] = []
    for code in codes:
        unit = registry.get(code)
        files = inbox.figure_files.get(code, [])
        if not files:
            outcomes[code] = _no_file(ctx, report_date, unit, excused.get(code))
            continue
        archived = [_take(ctx, f, report_date, code) for f in files]
        if unit_status.get(code) in (None, "missing"):  # so a load that then crashes never reads as 未报送
            with store.transaction() as conn:
                names = "、".join(a.name for a in archived)
                store.set_unit_day(
                    conn, day, code, "received", f"已收到 {names}（{archived[0].received_at[:16]}），尚未入库"
                )
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
        pending.append((_judge(ctx, item, unit, report_date), item))
    if pending:
        from closeout.checks import GxRunner  # GX is heavy: imported only when there is something to check

        results: list = []
        validate_batch([sub for sub, _ in pending], ctx.catalogue, GxRunner.shared(), results)
        keep_results(ctx.settings, report_date, group_label("validate", [s.unit.code for s, _ in pending]), results)
    for sub, item in pending:
        outcomes[sub.unit.code] = _commit(ctx, sub, item, signed)
    for code in codes:  # after the figures, so a bad narrative never holds them up
        if code in inbox.narratives:
            _load_narrative(ctx, report_date, registry.get(code), inbox.narratives[code])
    return [outcomes[code] for code in codes]


def _take(ctx: Context, path, report_date: date, code: str) -> ArchivedFile:
    """Wait for a file still being copied to settle, then read and archive it once."""
    settings = ctx.settings
    if not settled(path, settings.settle_seconds, settings.settle_timeout):
        raise FileStillChanging(
            f"{path.name} is still changing after {settings.settle_timeout:.0f}s (being copied?); retry later"
        )
    return take_file(path, settings.archive_dir, report_date, code, settings.limits)


def _judge(ctx: Context, item: ArchivedFile, unit: Unit, report_date: date) -> Submission:
    if item.refusal is not None:
        refused = item.refusal
        sub = Submission(unit, item.source, report_date)
        sub.finding("hard", refused.rule, refused.message, row=refused.row, value=refused.value)
        return sub
    return parse_submission(
        item.source, unit, report_date, ctx.catalogue, ctx.registry, data=item.data, limits=ctx.settings.limits
    )


def _no_file(ctx: Context, report_date: date, unit: Unit, excused_because: str | None) -> UnitOutcome:
    day = report_date.isoformat()
    if ctx.store.rows("select_unit_figures", {"report_date": day, "unit_code": unit.code}):
        return UnitOutcome(unit.code, unit.name, "unchanged")  # loaded earlier; the file has since left the inbox
    if excused_because is not None:  # an operator recorded that it will not report today: not a failure
        with ctx.store.transaction() as conn:
            ctx.store.set_unit_day(conn, day, unit.code, "excused", excused_because)
        return UnitOutcome(unit.code, unit.name, "excused", [f"[已标记缺报] {unit.label}：{excused_because}"])
    status = "missing" if unit.required else "absent"
    detail = (
        f"截至截止时间未收到{day}的数据文件（应放入收件目录 {day}/{unit.code}.csv 或 .xlsx，"
        f"文件名也可用拼音 {unit.slug} 或中文名 {unit.name}）"
    )
    with ctx.store.transaction() as conn:
        ctx.store.set_unit_day(conn, day, unit.code, status, detail if unit.required else "本日无单独报送")
    return UnitOutcome(unit.code, unit.name, status, [f"[缺报] {unit.label}：{detail}"] if unit.required else [])


def _load_narrative(ctx: Context, report_date: date, unit: Unit, path) -> None:
    item = _take(ctx, path, report_date, unit.code)
    day, findings = report_date.isoformat(), []

    def note(rule: str, message: str) -> None:
        findings.append(Finding(report_date, unit.code, unit.name, "soft", "narrative", rule, message, file=item.name))

    narrative = None
    try:
        if item.refusal is not None:
            raise item.refusal
        narrative, removed = read_narrative(item.data, ctx.settings.limits)
        if removed:
            note("invisible_characters", f"文字稿中的不可见字符或控制字符（{'、'.join(removed)}）已删除后刊登；请核对")
    except FileRefused as refused:  # a narrative is optional: say why it is left out, never stop the day
        note(refused.rule, f"文字稿本日不刊登：{refused.message}")
    except Exception as exc:
        note("narrative_unreadable", f"文字稿无法读取（{type(exc).__name__}），本日不刊登；请存为 UTF-8 或 GBK 文本")
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


def _commit(ctx: Context, sub: Submission, item: ArchivedFile, signed: Signature | None = None) -> UnitOutcome:
    store, day, code = ctx.store, sub.report_date.isoformat(), sub.unit.code
    key = {"report_date": day, "unit_code": code}
    figures = collapse(sub)
    with store.transaction() as conn:
        published = bool(store.run(conn, "select_published", {"report_date": day}).first())
        current = {r.metric: r for r in store.run(conn, "select_unit_figures", key)}
        changes = _changes(current, {f.metric: f for f in figures})
        if published and not blocking(sub.findings) and not (signed and signed.reason.strip()):
            unexplained = [(metric, new) for metric, _, new in changes if new is None or not new.note]
            cut_off = _completed_truncation(store, conn, key, item) if unexplained else None
            for metric, new in unexplained:  # a published figure changes only with a stated reason
                if cut_off:
                    sub.finding(
                        "hard",
                        "completes_truncated_file",
                        f"本文件是 {cut_off} 收到的文件的完整版：那个文件在传输中被截断（只收到了前一部分），"
                        "已按不完整的数发布。请在本行“备注”列写明“原文件传输不完整，订正为完整数据”后重报",
                        metric=ctx.catalogue.by_key[metric].display,
                        value=_shown(new),
                        stage="validate",
                    )
                else:
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
            revisions = [
                _revision(key, item, kind, recorded_at, metric, old, new, signed) for metric, old, new in changes
            ]
            if published and not current and figures:  # a first report after publication (补报)
                revisions.append(_revision(key, item, "late_report", recorded_at, signed=signed))
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


def _completed_truncation(store, conn, key: dict, item: ArchivedFile) -> str | None:
    """When the file now loaded was a cut-off beginning of this one, its arrival time; else None."""
    if item.data is None:
        return None
    for row in store.run(conn, "select_loaded_submission", key).mappings():
        try:
            earlier = Path(row["archived_path"]).read_bytes()
        except OSError:
            return None
        if earlier and len(earlier) < len(item.data) and item.data.startswith(earlier.rstrip(b"\r\n")):
            return row["received_at"][11:16]
    return None


def _revision(
    key: dict,
    item: ArchivedFile,
    kind: str,
    recorded_at: str,
    metric: str = "",
    old=None,
    new=None,
    signed: Signature | None = None,
) -> dict:
    """A figure_revision row: old → new of one metric, or (metric "") a whole late report. The file's note is the
    reason; an operator's signature adds theirs where the file gave none, and names them."""
    reason = new.note if new else ""
    if signed and signed.reason.strip() and not reason:
        reason = signed.reason.strip()
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
        "reason": reason,
        "recorded_at": recorded_at,
        "recorded_by": signed.actor if signed else "",
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
