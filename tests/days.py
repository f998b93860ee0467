"""Helpers the tests share to close, publish and change a day through the package (not fixtures: plain calls)."""

import csv
import io
from contextlib import contextmanager
from datetime import date

from conftest import SAMPLE_INBOX, copy_day, publish
from sqlalchemy import create_engine, text

from closeout.close.load import load_group
from closeout.close.plan import plan_unit_groups
from closeout.close.reconcile import reconcile_day
from closeout.deliver.mailsink import sink_session
from closeout.orchestration import pipeline
from closeout.orchestration.cli import corrections

DAY = date(2022, 3, 19)
MARCH_18, MARCH_19 = date(2022, 3, 18), date(2022, 3, 19)
TABLES = ("submission", "figure", "figure_revision", "finding", "unit_day", "narrative", "delivery")


def snapshot(db_url: str) -> dict:
    """Every row of every table, timestamps included, to prove a re-run changed nothing."""
    engine = create_engine(db_url)
    with engine.connect() as conn:
        state = {t: sorted(map(repr, conn.execute(text(f"SELECT * FROM {t}")).all())) for t in TABLES}
    engine.dispose()
    return state


def close_day(ctx, day=DAY):
    outcomes = [o for g in plan_unit_groups(ctx) for o in load_group(ctx, day, g["codes"])]
    return {o.unit_code: o for o in outcomes}, reconcile_day(ctx, day)


def figure(ctx, unit, metric, day=DAY):
    rows = ctx.store.rows("select_figures_between", {"first_date": day.isoformat(), "last_date": day.isoformat()})
    return next((r["value"], r["qualifier"]) for r in rows if r["unit_code"] == unit and r["metric"] == metric)


def published_day(db_url, ctx_for, tmp_path, smtp_sink):
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / "2022-03-18", inbox, "2022-03-18")
    copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    ctx = ctx_for(db_url, inbox)
    day = date(2022, 3, 18)
    close_day(ctx, day)
    pipeline.render_bulletin(ctx, day)
    publish(ctx, day, smtp_connect(smtp_sink))
    return ctx, folder / "330802.csv", day


def smtp_connect(sink):
    """A session with the loopback SMTP server, yielding its send function."""
    return sink_session(sink)


def failing_session(error):
    @contextmanager
    def connect():
        def send(message):
            raise error

        yield send

    return connect


def change_isolation_new(path, new_value, note):
    lines = path.read_text(encoding="utf-8").splitlines()
    lines = [
        f"isolation_new,{new_value},330802,2022-03-18,{note}" if ln.startswith("isolation_new,") else ln for ln in lines
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def replace_row(path, prefix, row, encoding="utf-8"):
    lines = path.read_bytes().decode(encoding).splitlines()
    assert any(ln.startswith(prefix) for ln in lines), prefix
    path.write_bytes(("\n".join(row if ln.startswith(prefix) else ln for ln in lines) + "\n").encode(encoding))


def register(ctx, since=MARCH_18) -> list[dict]:
    out = io.StringIO()
    corrections(ctx, since, out)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def set_line(path, metric: str, value, note: str = "") -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    day = path.parent.name
    path.write_text(
        "\n".join(f"{metric},{value},{path.stem},{day},{note}" if ln.startswith(metric + ",") else ln for ln in lines)
        + "\n",
        encoding="utf-8",
    )
