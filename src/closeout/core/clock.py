"""Local time: every figure belongs to a report date, the local day in Asia/Shanghai, never the clock's `now()`."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def now_local() -> str:
    """Now in Asia/Shanghai as ISO text to the millisecond (orders resubmissions within a second): what the store
    records as a time."""
    return datetime.now(LOCAL_TZ).isoformat(timespec="milliseconds")


def today_local() -> str:
    """Today in Asia/Shanghai, ISO: only ever a trigger form's default, never a run's report date."""
    return local_today().isoformat()


def local_today() -> date:
    """Today in Asia/Shanghai: only ever to refuse a report date that has not come yet, never a run's report date."""
    return datetime.now(LOCAL_TZ).date()


def refuse_future(report_date: date, today: date | None = None) -> None:
    """The one rule every entry point applies: a report date after today (Asia/Shanghai) is refused in one line."""
    today = today or local_today()
    if report_date > today:
        raise FutureDate(f"{report_date} 还没到（北京时间今天是 {today}）/ the report date is in the future")


class FutureDate(ValueError):
    """A report date that has not come yet: nothing is recorded for it."""


def month_day(day: date, words: dict | None = None) -> str:
    """3月19日, or in the words of another language (a bulletin layout's `when`): 19 March."""
    if words is None:
        return f"{day.month}月{day.day}日"
    return words["when"].format(month=day.month, day=day.day, month_name=calendar.month_name[day.month])


def report_date_for(logical_date: datetime | None, run_after: datetime | None = None) -> date:
    """The report date is the run's logical date as a local day in Asia/Shanghai, never the clock's.

    A run triggered without a logical date (allowed in Airflow 3) closes out its run_after's local day."""
    when = logical_date or run_after
    if when is None or when.tzinfo is None:
        raise ValueError(f"need a timezone-aware logical date or run_after, got {logical_date!r} / {run_after!r}")
    return when.astimezone(LOCAL_TZ).date()


def intake_report_date(when: datetime, opening: str) -> date:
    """The report date an intake tick works for: today, or yesterday in the hours after midnight before the
    opening (a deadline past midnight still belongs to the day before)."""
    local = when.astimezone(LOCAL_TZ)
    return local.date() - timedelta(days=1) if local.strftime("%H:%M") < opening else local.date()
