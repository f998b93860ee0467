"""The corrections register: one row per change to a published figure (更正, 补报, 重算), in the spirit of JHU
CSSE's errata file — what changed, from what to what, why, which county file said so and which operator signed.
`closeout corrections` prints all of it; every edition that lists changes carries the rows it lists."""

from __future__ import annotations

import csv
import io
from datetime import date

from closeout.core.vocabulary import RevisionKind
from closeout.store.context import Context

COLUMNS = (
    "report_date", "unit_code", "unit_name", "metric", "metric_name", "kind", "old_value", "new_value", "reason",
    "source", "signed_by", "recorded_at", "announced_in", "in_edition",
)  # fmt: skip
# An edition's copy leaves out what changes after it is sent (where the change was announced), so the edition's
# bytes, and its hash, stay what they were when it was rendered.
EDITION_COLUMNS = COLUMNS[:-2]
FILE_NAME = "更正登记.csv"


def register_rows(ctx: Context, since: date | None = None, only: list[dict] | None = None) -> list[dict]:
    """Rows from report date `since` (all when None), oldest change first; `only`: just these revisions (keys
    report_date, unit_code, metric, new_sha256), as an edition lists them."""
    from closeout.core.numbers import render_value
    from closeout.publish.bulletin.spreadsheet import inert_cell

    keys = None if only is None else {(r["report_date"], r["unit_code"], r["metric"], r["new_sha256"]) for r in only}
    if only is not None and since is None:
        since = min((date.fromisoformat(r["report_date"]) for r in only), default=date.max)
    names = ctx.unit_names()
    rows = []
    for r in ctx.store.rows("select_corrections_register", {"since": (since or date.min).isoformat()}):
        if keys is not None and (r["report_date"], r["unit_code"], r["metric"], r["new_sha256"]) not in keys:
            continue
        metric = ctx.catalogue.by_key.get(r["metric"])
        row = {
            "report_date": r["report_date"],
            "unit_code": r["unit_code"],
            "unit_name": names.get(r["unit_code"], ""),
            "metric": r["metric"],
            "metric_name": metric.label if metric else "（整份补报）",
            "kind": RevisionKind(r["kind"]).label,
            "old_value": "" if r["old_value"] is None else render_value(r["old_value"], r["old_qualifier"]),
            "new_value": "" if r["new_value"] is None else render_value(r["new_value"], r["new_qualifier"]),
            "reason": r["reason"],
            "source": f"县报送文件 {r['file_name']}" if r["file_name"] else "由逐日新增重算",
            "signed_by": r["recorded_by"],
            "recorded_at": r["recorded_at"],
            "announced_in": r["announced_in"] or "",
            "in_edition": r["in_edition"] or "",
        }
        rows.append({key: inert_cell(value) for key, value in row.items()})
    return rows


def write_csv(rows: list[dict], out, columns: tuple[str, ...] = COLUMNS) -> None:
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)


def edition_register(ctx: Context, announces: list[dict]) -> bytes:
    """The register rows an edition lists, as the CSV it carries (UTF-8 with BOM for Excel); b"" when none."""
    rows = register_rows(ctx, only=announces) if announces else []
    if not rows:
        return b""
    buffer = io.StringIO()
    write_csv(rows, buffer, EDITION_COLUMNS)
    return buffer.getvalue().encode("utf-8-sig")
