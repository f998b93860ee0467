"""The 工作日报's head and foot: the issuing office (红头), 第N期, the issue date, 签发人 and the 报/送/发 lines,
from include/catalogue/masthead.yaml in the bulletin's language; the issue number is kept in the store."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import yaml
from sqlalchemy.exc import IntegrityError

from closeout.core.clock import LOCAL_TZ
from closeout.store.context import Context


@dataclass(frozen=True)
class Masthead:
    office: str = ""
    issue: str = ""  # "第12期"; "" before the day has a number (a preview)
    issued: str = ""  # "2022年3月20日": the date the day's bulletin was first rendered
    signer_label: str = "签发人"
    colon: str = "："
    signer: str = ""  # "" leaves the 签发人 line out
    distribution: tuple[tuple[str, str], ...] = ()  # (报/送/发, to whom)
    printed: str = ""  # the foot's issue line: "2022年3月20日印发"
    large_figures: int = 0  # from this value up the summary reads 117.41万 (0: every digit)


@dataclass(frozen=True)
class Issue:
    number: int
    issued_on: date


@dataclass(frozen=True)
class MastheadText:
    """A language's section of the masthead file, before a day fills in its number, date and signer."""

    raw: dict = field(default_factory=dict)

    def for_day(self, issue: Issue | None, signer: str) -> Masthead:
        raw = self.raw
        issued = ""
        if issue is not None:
            when = issue.issued_on
            issued = raw.get("issued", "").format(
                year=when.year, month=when.month, day=when.day, month_name=calendar.month_name[when.month]
            )
        return Masthead(
            office=raw.get("office", ""),
            issue=raw.get("issue", "").format(n=issue.number) if issue else "",
            issued=issued,
            signer_label=raw.get("signer_label", "签发人"),
            colon=raw.get("colon", "："),
            signer=signer or raw.get("signer", "") or "",
            distribution=tuple((d["label"], d["to"]) for d in raw.get("distribution", ())),
            printed=raw.get("printed", "{issued}").format(issued=issued) if issued else "",
            large_figures=int(raw.get("large_figures", 0) or 0),
        )


def load_masthead(path: Path, language: str) -> MastheadText:
    """The language's head and foot; a missing file gives a bulletin without them (the body is unchanged)."""
    if not Path(path).exists():
        return MastheadText()
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if language not in raw:
        raise ValueError(f"{Path(path).name}: no `{language}` section (CLOSEOUT_BULLETIN_LANGUAGE)")
    return MastheadText(raw[language])


def allocate_issue(ctx: Context, report_date: date) -> Issue:
    """The day's 第N期: the next number of the report date's year the first time, the same number ever after.
    Two days allocated at once on PostgreSQL may both compute the same next number: the loser tries again."""
    day, attempts = report_date.isoformat(), 5
    for attempt in range(attempts):
        try:
            with ctx.store.transaction() as conn:
                ctx.store.run(
                    conn,
                    "allocate_bulletin_issue",
                    {
                        "report_date": day,
                        "year": report_date.year,
                        "issued_on": datetime.now(LOCAL_TZ).date().isoformat(),
                    },
                )
            break
        except IntegrityError:
            if attempt == attempts - 1:
                raise
    return issue_of(ctx, report_date)


def issue_of(ctx: Context, report_date: date) -> Issue | None:
    rows = ctx.store.rows("select_bulletin_issue", {"report_date": report_date.isoformat()})
    if not rows:
        return None
    return Issue(int(rows[0]["issue_no"]), date.fromisoformat(rows[0]["issued_on"]))


def day_signer(ctx: Context, report_date: date, before_edition: int | None = None) -> str:
    """签发人: who approved the day's latest signed-off edition (of those before `before_edition`), if any was.
    The approved edition itself goes out as a copy naming them (`editions.signed_copy`)."""
    rows = ctx.store.rows("select_signoffs", {"report_date": report_date.isoformat()})
    approved = [
        r
        for r in rows
        if r["decision"] == "approved"
        and named_person(r["decided_by"])
        and (before_edition is None or r["edition_no"] < before_edition)
    ]
    return approved[-1]["decided_by"] if approved else ""


TIMED_OUT = "（超时默认）"  # who decided, when nobody did before the sign-off timed out


def named_person(decided_by: str | None) -> bool:
    """A decision a person made, not Airflow's default when the sign-off timed out."""
    return decided_by not in (None, "", TIMED_OUT)
