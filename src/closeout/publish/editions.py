"""Editions: every bulletin rendered is an immutable edition of its report date — 正式 (the day's bulletin),
补报 (a late unit's figures after it went out) or 更正 (a corrected figure after it went out).

An edition's files live under <outbox>/<date>/<NN>/ (the bulletin as HTML and text, its spreadsheet — a CSV, or an
.xlsx and a zipped long CSV when the units are shown by group — the corrections register rows it lists, 更正登记.csv,
when it lists any, the PDF for printing, bulletin.pdf, and the charts the HTML shows, chart-*.png) and are never
overwritten; its row records their hash and the figure revisions it lists. Rendering again from an unchanged store
returns the same edition; approval and
email act on an edition, and what is mailed is exactly its files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from closeout.close.status import is_published
from closeout.core.clock import now_local
from closeout.core.vocabulary import DeliveryState, EditionKind, RevisionKind
from closeout.publish.bulletin.model import build_bulletin
from closeout.publish.bulletin.render import Rendered, render
from closeout.publish.bulletin.spreadsheet import level_zip_name
from closeout.publish.masthead import allocate_issue, day_signer
from closeout.publish.register import FILE_NAME as REGISTER_FILE
from closeout.publish.register import edition_register
from closeout.store.context import Context

PDF_FILE = "bulletin.pdf"
CHART_FILES = "chart-*.png"  # named in the order they are shown (closeout.publish.charts)


class EditionTampered(RuntimeError):
    """An edition's files no longer match the hash recorded when it was rendered: it must not be mailed."""


@dataclass(frozen=True)
class Edition:
    report_date: date
    number: int
    kind: EditionKind
    subject: str
    sha256: str
    attachment_name: str
    announces: tuple[dict, ...]  # the revisions it lists: {report_date, unit_code, metric, new_sha256, role}
    # What the approver reads, as data: {"edition_lines", "summary", "notes"} of the bulletin it was rendered from,
    # in its language and layout ({} for an edition recorded before editions kept it)
    outline: dict = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        return f"{self.report_date.isoformat()} 第{self.number}版（{EditionKind(self.kind).label}）"

    @property
    def key(self) -> dict:
        """What a task passes on (XCom) and the store keys by."""
        return {"report_date": self.report_date.isoformat(), "edition_no": self.number}

    def folder(self, ctx: Context) -> Path:
        return ctx.settings.outbox / self.report_date.isoformat() / f"{self.number:02d}"

    @classmethod
    def from_row(cls, row: dict) -> Edition:
        return cls(
            date.fromisoformat(row["report_date"]),
            int(row["edition_no"]),
            row["kind"],
            row["subject"],
            row["content_sha256"],
            row["attachment_name"],
            tuple(json.loads(row["announces"])),
            json.loads(row.get("outline") or "{}"),
        )


def editions_of(ctx: Context, report_date: date) -> list[Edition]:
    return [Edition.from_row(r) for r in ctx.store.rows("select_editions", {"report_date": report_date.isoformat()})]


def find_edition(ctx: Context, key: dict) -> Edition:
    day = date.fromisoformat(str(key["report_date"]))
    for edition in editions_of(ctx, day):
        if edition.number == int(key["edition_no"]):
            return edition
    raise LookupError(f"{day} 没有第{key['edition_no']}版日报 / no such edition")


def sent_editions(ctx: Context, report_date: date) -> set[int]:
    rows = ctx.store.rows("select_deliveries", {"report_date": report_date.isoformat()})
    return {r["edition_no"] for r in rows if r["status"] == DeliveryState.SENT}


def render_edition(ctx: Context, report_date: date) -> Edition:
    """The edition that says what the store says now. Before the day's 正式 edition went out, that is the 正式
    edition (a new number whenever the content changed, the older ones kept). After it went out, a change to the
    day's figures makes a 补报 or 更正 edition listing every change not yet sent; no change, no new edition."""
    editions = editions_of(ctx, report_date)
    published = is_published(ctx, report_date)
    changes = same_day_changes(ctx, report_date) if published else []
    if published and editions and not changes:
        sent = sent_editions(ctx, report_date)
        return next((e for e in reversed(editions) if e.number in sent), editions[-1])
    rendered = _rendered_now(ctx, report_date, day_signer(ctx, report_date), changes)
    return _recorded(ctx, report_date, editions, *rendered)


def signed_copy(ctx: Context, edition: Edition, signer: str) -> Edition:
    """The approved edition as it goes out, naming its 签发人. An edition is approved after it was rendered (its
    hash is what the approver read), so it could not name them: the copy is rendered again with the name and
    recorded as the day's next edition, and only if the store still renders exactly what was approved when the
    name is left as it was."""
    report_date = edition.report_date
    draft_signer = day_signer(ctx, report_date, before_edition=edition.number)
    if signer == draft_signer:
        return edition
    changes = same_day_changes(ctx, report_date) if is_published(ctx, report_date) else []
    *_, rendered_as_approved = _rendered_now(ctx, report_date, draft_signer, changes)
    if rendered_as_approved.sha256 != edition.sha256:
        raise EditionTampered(
            f"{edition.label} 签发后数据又有变化（现生成 {rendered_as_approved.sha256[:12]} ≠ 签发的 "
            f"{edition.sha256[:12]}），不按签发的内容发送：请重新生成日报并再次审核（Clear render_bulletin）"
        )
    return _recorded(ctx, report_date, editions_of(ctx, report_date), *_rendered_now(ctx, report_date, signer, changes))


def same_day_changes(ctx: Context, report_date: date) -> list[dict]:
    """Changes to a published day that no edition of that day has sent yet."""
    return ctx.store.rows("select_same_day_changes", {"report_date": report_date.isoformat()})


def _rendered_now(ctx: Context, report_date: date, signer: str, changes: list[dict]) -> tuple:
    """(kind, bulletin, the revisions it lists, rendered files) of the edition the store makes now, naming `signer` as
    签发人; `changes`: the day's same-day changes when it was published (none before)."""
    kind = EditionKind.OFFICIAL
    if changes:
        late = any(c["kind"] == RevisionKind.LATE_REPORT for c in changes)
        kind = EditionKind.LATE_REPORT if late else EditionKind.CORRECTION
    issue = allocate_issue(ctx, report_date)  # 第N期: the day's number, the same on every edition and re-render
    bulletin = build_bulletin(ctx, report_date, kind=kind, change_rows=changes, issue=issue, signer=signer)
    announces = [_revision_key(r, "note") for r in bulletin.announced_notes] + [
        _revision_key(r, "change") for r in changes
    ]
    return kind, bulletin, tuple(announces), replace(render(ctx, bulletin), register=edition_register(ctx, announces))


def _recorded(ctx: Context, report_date: date, editions: list[Edition], kind, bulletin, announces, rendered) -> Edition:
    """The rendered files as the day's newest edition, unless they are the newest edition already."""
    if editions and editions[-1].sha256 == rendered.sha256:
        return editions[-1]
    number = (editions[-1].number if editions else 0) + 1
    outline = {"edition_lines": bulletin.edition_lines, "summary": bulletin.summary, "notes": bulletin.notes}
    edition = Edition(
        report_date, number, kind, bulletin.subject, rendered.sha256, bulletin.attachment_name, announces, outline
    )
    _write_files(edition.folder(ctx), edition, rendered)
    with ctx.store.transaction() as conn:
        ctx.store.run(
            conn,
            "insert_edition",
            {
                **edition.key,
                "kind": kind,
                "subject": edition.subject,
                "content_sha256": edition.sha256,
                "attachment_name": edition.attachment_name,
                "announces": json.dumps(list(announces), ensure_ascii=False),
                "outline": json.dumps(outline, ensure_ascii=False),
                "rendered_at": now_local(),
            },
        )
    return edition


def _revision_key(row: dict, role: str) -> dict:
    return {k: row[k] for k in ("report_date", "unit_code", "metric", "new_sha256")} | {"role": role}


def _write_files(folder: Path, edition: Edition, rendered: Rendered) -> None:
    """Written once: a folder left by a render that died before recording its edition is set aside, never
    reused or overwritten."""
    if folder.exists():
        folder.rename(folder.with_name(f"{folder.name}.unrecorded-{os.getpid()}-{now_local()[:19]}"))
    partial = folder.with_name(f".{folder.name}.partial")
    partial.mkdir(parents=True, exist_ok=True)
    files = [
        ("bulletin.html", rendered.html.encode("utf-8")),
        ("bulletin.txt", rendered.text.encode("utf-8")),
        (edition.attachment_name, rendered.attachment),
    ]
    if rendered.level_zip:
        files.append((level_zip_name(edition.attachment_name), rendered.level_zip))
    if rendered.register:
        files.append((REGISTER_FILE, rendered.register))
    files += [(PDF_FILE, rendered.pdf), *rendered.images]
    for name, data in files:
        with open(partial / name, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    partial.rename(folder)


def read_files(ctx: Context, edition: Edition) -> Rendered:
    """The edition's files as rendered, refused if they changed since (the hash is what was approved)."""
    folder = edition.folder(ctx)
    try:
        html = (folder / "bulletin.html").read_bytes().decode("utf-8")
        text = (folder / "bulletin.txt").read_bytes().decode("utf-8")
        attachment = (folder / edition.attachment_name).read_bytes()
        register = (folder / REGISTER_FILE).read_bytes() if (folder / REGISTER_FILE).exists() else b""
        # an .xlsx edition carries the zipped long CSV beside it (none rendered before it did: the hash says which)
        level_path = folder / level_zip_name(edition.attachment_name)
        by_group = edition.attachment_name.endswith(".xlsx") and level_path.exists()
        level_zip = level_path.read_bytes() if by_group else b""
        # editions rendered before PDFs and charts have neither; their hash covers none
        pdf = (folder / PDF_FILE).read_bytes() if (folder / PDF_FILE).exists() else b""
        images = tuple((path.name, path.read_bytes()) for path in sorted(folder.glob(CHART_FILES)))
    except (OSError, UnicodeDecodeError) as exc:
        raise EditionTampered(f"{edition.label} 的文件不可读：{exc}") from exc
    rendered = Rendered(html, text, attachment, register, level_zip, pdf, images)
    if rendered.sha256 != edition.sha256:
        raise EditionTampered(
            f"{edition.label} 的文件在生成后被改动（哈希 {rendered.sha256[:12]} ≠ 记录的 {edition.sha256[:12]}），"
            "不予发送：请重新生成日报（Clear render_bulletin）"
        )
    return rendered
