"""Same-day 补报/更正 editions without anyone re-running the day: after a day's bulletin went out, a late unit or a
correction that intake loads is gathered for CLOSEOUT_CORRECTION_BATCH minutes, then one `daily_closeout` run
for that day renders the 补报/更正 edition listing every change and sends it (subject to the same sign-off)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from closeout.store.context import Context

REISSUE_RUN_PREFIX = "reissue__"


@dataclass(frozen=True)
class Reissue:
    report_date: str
    first_change_at: str  # the batch's first change: the run id, so a batch is triggered once whatever the ticks
    units: tuple[str, ...]  # the units that changed: the run loads only these (intake already judged them)

    @property
    def run_id(self) -> str:
        stamp = datetime.fromisoformat(self.first_change_at).strftime("%Y%m%dT%H%M%S")
        return f"{REISSUE_RUN_PREFIX}{self.report_date}__{stamp}"

    @property
    def conf(self) -> dict:
        return {"report_date": self.report_date, "reissue": True, "units": list(self.units)}


def due_reissues(ctx: Context, now: datetime) -> list[Reissue]:
    """Published days whose changes since their last edition have waited the batch time, oldest day first.

    Changes already in an edition (one waiting for its sign-off, or turned down) wait for that edition's answer
    or for the next change; a change after it starts a new batch."""
    batch = timedelta(minutes=ctx.settings.correction_batch)
    pending: dict[str, list[tuple[datetime, str]]] = {}
    for row in ctx.store.rows("select_days_with_unsent_changes"):
        pending.setdefault(row["report_date"], []).append(
            (datetime.fromisoformat(row["recorded_at"]), row["unit_code"])
        )
    due = []
    for day, changes in pending.items():
        editions = ctx.store.rows("select_editions", {"report_date": day})
        last_rendered = max((datetime.fromisoformat(e["rendered_at"]) for e in editions), default=None)
        fresh = [at for at, _ in changes if last_rendered is None or at > last_rendered]
        if fresh and now - min(fresh) >= batch:
            due.append(Reissue(day, min(fresh).isoformat(), tuple(sorted({unit for _, unit in changes}))))
    return due
