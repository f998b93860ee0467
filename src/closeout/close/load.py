"""Loading one group of units for one day: archive, parse, validate (one GX run), store."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from closeout.checks.datadocs import group_label, keep_results
from closeout.checks.validate import collapse, validate_batch
from closeout.close.reclose import Signature
from closeout.close.status import unit_statuses
from closeout.core.clock import now_local
from closeout.core.findings import Finding, blocking
from closeout.core.numbers import render_value
from closeout.core.registry import Unit
from closeout.core.vocabulary import UnitStatus
from closeout.intake.archive import ArchivedFile, quarantine_file, take_file
from closeout.intake.discovery import DayInbox, discover
from closeout.intake.files import FileRefused, FileStillChanging, settled
from closeout.intake.narrative import read_narrative
from closeout.intake.rows import parse_submission
from closeout.intake.submission import Submission
from closeout.store.context import Context
from closeout.store.database import unit_day


@dataclass
class UnitOutcome:
    unit_code: str
    unit_name: str
    status: str  # loaded | unchanged | rejected | missing | absent | excused
    lines: list[str] = field(default_factory=list)  # one line per problem, for the operator

    @property
    def failed(self) -> bool:
        return self.status in ("rejected", "missing")


def load_group(
    ctx: Context,
    report_date: date,
    codes: list[str],
    signed: Signature | None = None,
    *,
    inbox: DayInbox | None = None,
    taken: dict[str, list[ArchivedFile]] | None = None,
) -> list[UnitOutcome]:
    """Load the units' files for the day. Per-day facts are read once for the group, the files judged and
    validated together, and every unit's verdict written in one transaction, set-based.

    A caller that has already listed the day's inbox passes it as `inbox`, and the units' figure files it has
    already taken (take_figure_files) as `taken`: those are neither listed nor read again."""
    registry, store, day = ctx.registry, ctx.store, report_date.isoformat()
    if inbox is None:
        inbox = discover(ctx.settings.inbox, report_date, registry)
    taken = taken or {}
    unit_status = unit_statuses(ctx, report_date)
    excused = {r["unit_code"]: r["reason"] for r in store.rows("select_excusals", {"report_date": day})}
    loaded = {r["unit_code"]: r for r in store.rows("select_loaded_submissions", {"report_date": day})}
    outcomes: dict[str, UnitOutcome] = {}
    received, without_file = [], []
    pending: list[tuple[Submission, ArchivedFile]] = []
    for code in codes:
        unit = registry.get(code)
        files = inbox.figure_files.get(code, [])
        if not files:
            without_file.append(unit)
            continue
        archived = taken[code] if code in taken else [_take(ctx, f, report_date, code) for f in files]
        if unit_status.get(code) in (None, UnitStatus.MISSING):  # so a load that then crashes never reads as 未报送
            names = "、".join(a.name for a in archived)
            received.append(
                unit_day(day, code, UnitStatus.RECEIVED, f"已收到 {names}（{archived[0].received_at[:16]}），尚未入库")
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
            pending += [(Submission(unit, item.source, report_date, findings=[finding]), item) for item in archived]
            continue
        item = archived[0]
        if code in loaded and loaded[code]["sha256"] == item.sha256 and unit_status.get(code) != UnitStatus.REJECTED:
            outcomes[code] = UnitOutcome(code, unit.name, "unchanged")  # the current file again: nothing to do
            continue
        # Anything else is judged afresh: a superseded file sent back wins again, and a rejection that
        # depended on the day's state (two files, a correction without a note) is not remembered per file.
        pending.append((_judge(ctx, item, unit, report_date), item))
    if without_file:
        outcomes |= _no_files(ctx, report_date, without_file, excused, received)
    elif received:
        with store.transaction() as conn:
            store.run(conn, "upsert_unit_day", received)
    to_validate = [sub for sub, _ in pending if not any(f.rule == "several_files" for f in sub.findings)]
    if to_validate:
        from closeout.checks.engine import GxRunner  # GX is heavy: imported only when there is something to check

        results: list = []
        validate_batch(to_validate, ctx.catalogue, GxRunner.shared(), results)
        keep_results(ctx.settings, report_date, group_label("validate", [s.unit.code for s in to_validate]), results)
    if pending:
        outcomes |= _commit(ctx, report_date, pending, loaded, signed)
    for code in codes:  # after the figures, so a bad narrative never holds them up
        if code in inbox.narratives:
            _load_narrative(ctx, report_date, registry.get(code), inbox.narratives[code])
    return [outcomes[code] for code in codes]


def take_figure_files(
    ctx: Context, report_date: date, inbox: DayInbox, codes: Iterable[str]
) -> dict[str, list[ArchivedFile]]:
    """The units' figure files in the day's inbox, each waited for until settled, then read and archived once;
    by unit, for load_group's `taken`. Units without a file are left out."""
    return {
        code: [_take(ctx, path, report_date, code) for path in inbox.figure_files[code]]
        for code in codes
        if inbox.figure_files.get(code)
    }


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


def _no_files(
    ctx: Context, report_date: date, units: list[Unit], excused: dict[str, str], received: list[dict]
) -> dict[str, UnitOutcome]:
    """Units with no file in the inbox: loaded earlier (the file has since left), excused, or 缺报."""
    day, outcomes, rows = report_date.isoformat(), {}, list(received)
    reported = {
        r["unit_code"]
        for r in ctx.store.rows("select_reported_figures", {"report_date": day, "unit_codes": [u.code for u in units]})
    }
    for unit in units:
        if unit.code in reported:
            outcomes[unit.code] = UnitOutcome(unit.code, unit.name, "unchanged")
        elif unit.code in excused:  # an operator recorded that it will not report today: not a failure
            rows.append(unit_day(day, unit.code, UnitStatus.EXCUSED, excused[unit.code]))
            outcomes[unit.code] = UnitOutcome(
                unit.code, unit.name, "excused", [f"[已标记缺报] {unit.label}：{excused[unit.code]}"]
            )
        else:
            status = UnitStatus.MISSING if unit.required else UnitStatus.ABSENT
            detail = (
                f"截至截止时间未收到{day}的数据文件（应放入收件目录 {day}/{unit.code}.csv 或 .xlsx，"
                f"文件名也可用拼音 {unit.slug} 或中文名 {unit.name}）"
            )
            rows.append(unit_day(day, unit.code, status, detail if unit.required else "本日无单独报送"))
            lines = [f"[缺报] {unit.label}：{detail}"] if unit.required else []
            outcomes[unit.code] = UnitOutcome(unit.code, unit.name, status, lines)
    with ctx.store.transaction() as conn:
        ctx.store.run(conn, "upsert_unit_day", rows)
    return outcomes


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
        ctx.store.insert_rows(conn, "insert_finding", [f.as_record() for f in findings])
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


def _commit(
    ctx: Context,
    report_date: date,
    pending: list[tuple[Submission, ArchivedFile]],
    loaded: dict[str, dict],
    signed: Signature | None = None,
) -> dict[str, UnitOutcome]:
    """Every judged file's verdict in one transaction: findings, submissions, revisions, figures and statuses,
    each written for the whole group at once. A cut connection leaves none of it."""
    store, day = ctx.store, report_date.isoformat()
    codes = sorted({sub.unit.code for sub, _ in pending})
    recorded_at = now_local()
    findings, submissions, statuses, revisions, figures = {}, [], {}, [], []
    replaced, rejected = [], []
    with store.transaction() as conn:
        published = bool(store.run(conn, "select_published", {"report_date": day}).first())
        current: dict[str, dict] = {}
        for r in store.run(conn, "select_reported_figures", {"report_date": day, "unit_codes": codes}):
            current.setdefault(r.unit_code, {})[r.metric] = r
        for sub, item in pending:
            code = sub.unit.code
            key = {"report_date": day, "unit_code": code}
            stored = current.get(code, {})
            new = collapse(sub)
            changes = _changes(stored, {f.metric: f for f in new})
            if published and not blocking(sub.findings) and not (signed and signed.reason.strip()):
                _refuse_unexplained(ctx, sub, item, changes, loaded.get(code))
            hard = blocking(sub.findings)
            findings[code] = [f.as_record() for f in sub.findings]  # several files: one finding, not one per file
            record = {
                **key,
                "sha256": item.sha256,
                "file_name": sub.path.name,
                "archived_path": str(item.path),
                "received_at": item.received_at,
                "processed_at": recorded_at,
            }
            if hard:
                submissions.append({**record, "status": "rejected", "reasons": "\n".join(f.line() for f in hard)})
                statuses[code] = unit_day(day, code, UnitStatus.REJECTED, hard[0].line())
                rejected.append((sub, item, [f.line() for f in hard]))
                continue
            kind = "correction" if published else "revision"
            revisions += [
                _revision(key, item, kind, recorded_at, metric, old, fresh, signed) for metric, old, fresh in changes
            ]
            if published and not stored and new:  # a first report after publication (补报)
                revisions.append(_revision(key, item, "late_report", recorded_at, signed=signed))
            figures += [
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
                for f in new
            ]
            replaced.append(code)
            submissions.append({**record, "status": "loaded", "reasons": ""})
            statuses[code] = unit_day(day, code, UnitStatus.LOADED)
        store.run(conn, "delete_load_findings", {"report_date": day, "unit_codes": codes})
        store.insert_rows(conn, "insert_finding", [f for unit_findings in findings.values() for f in unit_findings])
        store.insert_rows(conn, "insert_revision", revisions)
        if replaced:
            store.run(conn, "delete_unit_figures", {"report_date": day, "unit_codes": replaced})
            store.insert_rows(conn, "insert_figure", figures)
            store.run(conn, "supersede_loaded_submissions", {"report_date": day, "unit_codes": replaced})
        store.run(conn, "upsert_submission", submissions)
        store.run(conn, "upsert_unit_day", list(statuses.values()))
    outcomes = {code: UnitOutcome(code, ctx.registry.get(code).name, "loaded") for code in replaced}
    for sub, item, lines in rejected:
        quarantine_file(item, ctx.settings.quarantine_dir, report_date, sub.unit.code, lines)
        outcomes[sub.unit.code] = UnitOutcome(sub.unit.code, sub.unit.name, "rejected", lines)
    return outcomes


def _refuse_unexplained(ctx: Context, sub: Submission, item: ArchivedFile, changes: list, loaded: dict | None) -> None:
    """After publication a figure changes only with a stated reason: each change without one is a finding."""
    unexplained = [(metric, new) for metric, _, new in changes if new is None or not new.note]
    cut_off = _completed_truncation(loaded, item) if unexplained else None
    for metric, new in unexplained:
        if cut_off:
            sub.finding(
                "hard",
                "completes_truncated_file",
                f"本文件是 {cut_off} 收到的文件的完整版：那个文件在传输中被截断（只收到了前一部分），"
                "已按不完整的数发布。请在本行“备注”列写明“原文件传输不完整，订正为完整数据”后重报",
                metric=ctx.catalogue.by_key[metric].display,
                value=changed_figure(new),
                stage="validate",
            )
        else:
            sub.finding(
                "hard",
                "correction_without_note",
                "日报已发布，更正须在备注列写明原因",
                metric=ctx.catalogue.by_key[metric].display,
                value=changed_figure(new),
                stage="validate",
            )


def _completed_truncation(loaded: dict | None, item: ArchivedFile) -> str | None:
    """When the file now loaded was a cut-off beginning of this one, its arrival time; else None."""
    if item.data is None or loaded is None:
        return None
    try:
        earlier = Path(loaded["archived_path"]).read_bytes()
    except OSError:
        return None
    if earlier and len(earlier) < len(item.data) and item.data.startswith(earlier.rstrip(b"\r\n")):
        return loaded["received_at"][11:16]
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


def changed_figure(figure) -> str:
    """A figure a correction changes, as the county wrote it; （删除） when the new file drops it."""
    return "（删除）" if figure is None else render_value(figure.value, figure.qualifier)
