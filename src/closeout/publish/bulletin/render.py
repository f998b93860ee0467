"""The bulletin rendered: the email's HTML and plain text, the PDF and the charts, through the Jinja templates in
include/templates, with its attachments (closeout.publish.bulletin.spreadsheet). The renderers (css_inline,
matplotlib, WeasyPrint, openpyxl) are imported when a bulletin is rendered, never before."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from closeout.publish.bulletin.sections import group_areas, named
from closeout.publish.bulletin.spreadsheet import (
    ATTACHMENT_COLUMNS,
    LEVEL_COLUMNS,
    csv_bytes,
    level_zip_name,
    unit_workbook,
    zipped,
)
from closeout.store.context import Context

if TYPE_CHECKING:
    from closeout.publish.bulletin.model import Bulletin


@dataclass(frozen=True)
class Rendered:
    html: str
    text: str
    attachment: bytes  # the CSV (UTF-8 with BOM so Excel opens the Chinese correctly), or the .xlsx by group
    register: bytes = b""  # the corrections register rows the edition lists (closeout.publish.register); b"" when none
    # by group: the long CSV beside the .xlsx (a row per unit and metric, every level's totals), zipped: a country's
    # is 7 MB as text, over most mail servers' 10 MB once base64-encoded, and well under 1 MB zipped
    level_zip: bytes = b""
    pdf: bytes = b""  # the bulletin for A4 printing (closeout.publish.pdf)
    images: tuple[
        tuple[str, bytes], ...
    ] = ()  # the charts (closeout.publish.charts): (file name, PNG), in the HTML by CID

    @property
    def sha256(self) -> str:
        # in the order the message carries its parts (closeout.deliver.mailer.mailed_sha256)
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
        long_csv = csv_bytes(LEVEL_COLUMNS, bulletin.level_rows)
        level_zip = zipped(level_zip_name(bulletin.attachment_name).removesuffix(".zip"), long_csv)
        return Rendered(html, text, workbook, level_zip=level_zip, **media)
    return Rendered(html, text, csv_bytes(ATTACHMENT_COLUMNS, bulletin.attachment_rows), **media)


def chart_areas(ctx: Context, bulletin: Bulletin) -> list[tuple[str, tuple[str, ...]]]:
    """The areas the charts draw one row each for: the bulletin's own, its units or the next level down."""
    english = bulletin.language == "en"
    if bulletin.by_group:
        return group_areas(ctx.registry, english)
    return [(named(unit, english), (unit.code,)) for unit in ctx.registry.all_units]


def _pages(ctx: Context, env, bulletin: Bulletin) -> tuple[str, str, dict]:
    """The email's HTML (its CSS inlined, since many mail clients drop <style>; the charts by Content-ID), the
    plain text (the charts as figures) and the media: the PDF (the same page with the print CSS) and the charts."""
    import css_inline

    from closeout.publish.charts import draw_charts
    from closeout.publish.pdf import html_to_pdf, image_sources

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
