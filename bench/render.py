"""make bench-render: how long rendering one bulletin edition takes — HTML (CSS inlined), text, the 14-day charts
and the PDF — for a city and for a country, and how big its email is.

A generated registry and 14 days of figures (bench/generate.py) are written straight into a fresh store
(set-based: the figures and a cleared verdict per unit and day, as the pipeline leaves them), so the charts have a
full fortnight to draw. Then the last day's bulletin is built and rendered: once cold (the first render in a
process imports matplotlib and WeasyPrint and loads the fonts), then best of 3 warm, each step apart, the caches
of unchanged charts and pages emptied first (render() alone would otherwise draw and lay out nothing). The edition
is checked — a PDF, three charts, the email under 10 MB — so a fast wrong answer fails the run. Timings are
printed, never asserted.

    python -m bench.render                               # city and country, SQLite
    python -m bench.render --scales city --backend postgresql
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.generate import DEFAULT_SEED, SCALES, Dataset, generate
from bench.scenarios import BACKENDS, DEFAULT_PG_ADMIN_URL, closeout_env, context_for, fresh_store

DAYS = 14
REPEATS = 3
MAIL_LIMIT = 10_000_000  # what most mail servers accept


@dataclass
class RenderMeasurement:
    scale: str
    backend: str
    units: int
    cold_s: float = 0.0  # build + render, first in the process
    steps: dict[str, float] = field(default_factory=dict)  # warm, best of REPEATS
    sizes: dict[str, int] = field(default_factory=dict)  # bytes
    problems: list[str] = field(default_factory=list)


def fill_store(ctx, dataset: Dataset) -> None:
    """Every generated figure and a cleared verdict per unit and day, in one transaction."""
    from closeout.core.clock import now_local

    figures = [
        {
            "report_date": day.isoformat(),
            "unit_code": code,
            "metric": metric,
            "value": value,
            "qualifier": "",
            "note": "",
            "source_sha256": f"bench-{code}",
            "source_rows": "",
            "attributed_unit": "",
        }
        for day, units in dataset.figures.items()
        for code, metrics in units.items()
        for metric, value in metrics.items()
    ]
    now = now_local()
    verdicts = [
        {"report_date": day.isoformat(), "unit_code": code, "status": "cleared", "detail": "", "updated_at": now}
        for day in dataset.days
        for code in dataset.unit_codes
    ]
    with ctx.store.transaction() as conn:
        ctx.store.insert_rows(conn, "insert_figure", figures)
        ctx.store.run(conn, "upsert_unit_day", verdicts)


def timed(steps: dict[str, float], name: str, action, *args):
    started = time.perf_counter()
    result = action(*args)
    seconds = time.perf_counter() - started
    steps[name] = min(seconds, steps.get(name, seconds))
    return result


def measure(dataset: Dataset, backend: str, work: Path, pg_admin_url: str, repeats: int = REPEATS) -> RenderMeasurement:
    from closeout.deliver.mailer import build_message
    from closeout.publish.bulletin.model import build_bulletin
    from closeout.publish.bulletin.render import chart_areas, render
    from closeout.publish.charts import draw_charts, drawn_charts
    from closeout.publish.pdf import html_to_pdf

    result = RenderMeasurement(dataset.scale, backend, len(dataset.unit_codes))
    day = dataset.days[-1]
    with fresh_store(backend, f"render_{dataset.scale}", work, pg_admin_url) as db_url:
        ctx = context_for(closeout_env(dataset, db_url, work))
        fill_store(ctx, dataset)
        started = time.perf_counter()
        rendered = render(ctx, build_bulletin(ctx, day))
        result.cold_s = time.perf_counter() - started
        for _ in range(repeats):
            bulletin = timed(result.steps, "build", build_bulletin, ctx, day)
            drawn_charts.cache_clear()  # time the drawing, not the cache of unchanged figures
            timed(result.steps, "charts", draw_charts, ctx, day, chart_areas(ctx, bulletin), bulletin.by_group)
            drawn_charts.cache_clear()
            html_to_pdf.cache_clear()
            rendered = timed(result.steps, "render (all)", render, ctx, bulletin)
        ctx.store.dispose()
    message = bytes(build_message(bulletin.subject, rendered, bulletin.attachment_name, "a@x.invalid", ("b@x",), "<i>"))
    result.sizes = {
        "html": len(rendered.html.encode("utf-8")),
        "pdf": len(rendered.pdf),
        "charts": sum(len(png) for _, png in rendered.images),
        "attachment": len(rendered.attachment),
        "email": len(message),
    }
    if not rendered.pdf.startswith(b"%PDF-"):
        result.problems.append("the edition has no PDF")
    if len(rendered.images) != 3:
        result.problems.append(f"{len(rendered.images)} charts, expected 3")
    if len(message) >= MAIL_LIMIT:
        result.problems.append(f"the email is {len(message):,} bytes, over {MAIL_LIMIT:,}")
    return result


def table(results: list[RenderMeasurement]) -> str:
    head = (
        "| scale | backend | units | cold s | build s | charts s | render s (all) | PDF KB | charts KB | email KB |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    rows = [
        f"| {m.scale} | {m.backend} | {m.units:,} | {m.cold_s:.2f} | {m.steps.get('build', 0):.2f} | "
        f"{m.steps.get('charts', 0):.2f} | {m.steps.get('render (all)', 0):.2f} | {m.sizes.get('pdf', 0) / 1024:.0f} | "
        f"{m.sizes.get('charts', 0) / 1024:.0f} | {m.sizes.get('email', 0) / 1024:.0f} |"
        for m in results
    ]
    return "\n".join([head, *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="city,country", help="comma-separated: " + ",".join(SCALES))
    parser.add_argument("--backend", default="sqlite", choices=BACKENDS)
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="closeout-bench-render-") as folder:
        work = Path(folder)
        for scale in args.scales.split(","):
            started = time.perf_counter()
            dataset = generate(scale, work / scale / "data", days=DAYS, seed=args.seed)
            print(f"{scale}: {len(dataset.unit_codes):,} units × {DAYS} days generated in "
                  f"{time.perf_counter() - started:.0f} s (untimed)", flush=True)  # fmt: skip
            results.append(measure(dataset, args.backend, work / scale, args.pg_admin_url))
            print(table(results[-1:]).splitlines()[-1], flush=True)
    print("\n" + table(results))
    problems = [f"{m.scale}: {p}" for m in results for p in m.problems]
    for problem in problems:
        print("PROBLEM", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
