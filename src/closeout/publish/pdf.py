"""The bulletin as a PDF for A4 printing, attached to the email and kept with the edition.

WeasyPrint, not headless Chromium's print-to-PDF: it is a Python library on Pango/HarfBuzz (Debian's
libpango-1.0-0, libpangoft2-1.0-0), so an Airflow worker needs no browser and no subprocess, and it implements
the paged-media CSS the print layout uses (`@page` margin boxes for the running title and the page numbers, table
headers repeated on every page). Fonts come through fontconfig: the body's Song/FangSong stack finds Noto Serif
CJK SC and the page margins ask for Noto Sans CJK SC (both in Debian's fonts-noto-cjk), which WeasyPrint subsets
and embeds.

The HTML is the bulletin's own, escaped by the template, so a unit's text is printed as text; WeasyPrint runs no
script, and the fetcher below lets it load nothing but the images handed to it (no file, no network).
"""

from __future__ import annotations

import base64
import functools
from datetime import date

from closeout.publish.charts import Chart


def image_sources(charts: list[Chart]) -> dict[str, str]:
    """The charts as data: URLs, for the PDF's HTML (the email refers to them by Content-ID instead)."""
    return {c.name: "data:image/png;base64," + base64.b64encode(c.png).decode("ascii") for c in charts}


@functools.lru_cache(maxsize=8)
def html_to_pdf(html: str, title: str, day: date) -> bytes:
    """The PDF of an HTML page. The same HTML gives the same bytes (its dates are the report date, not now), so
    the last few are kept: an unchanged store rendered again (a retried task, `closeout status`) lays out nothing."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    document = HTML(string=html, url_fetcher=URLFetcher(allowed_protocols={"data"})).render()
    document.metadata.title = title
    document.metadata.authors = ["closeout"]
    document.metadata.created = document.metadata.modified = day.isoformat()
    return document.write_pdf()
