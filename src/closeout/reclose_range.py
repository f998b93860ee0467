"""Re-closing a range of published days in one run (`closeout reclose FROM TO`, the closeout_reclose_range DAG).

Days go in date order: each day's files are loaded again with the operator's signature and the day reconciled
before the next, so stocks and cumulatives carry over in order; the later published days are re-checked once,
after the last. Each changed day gets its 更正/补报 edition in the outbox (immutable, not mailed one by one); the
run mails one summary listing the changed days, with the register rows it signed attached."""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from closeout.context import Context
from closeout.forked import map_forked
from closeout.reclose import ReasonRequired, RunRequest, recheck_later_days, reconcile_recording, run_request
from closeout.store import now_local

Connect = Callable[[], AbstractContextManager[Callable[[EmailMessage], object]]]
SUMMARY_KIND = "reclose_summary"


class RangeRefused(ValueError):
    """A range that cannot be re-closed as asked: the operator fixes the dates, nothing was changed."""


@dataclass
class RangeResult:
    first: date
    last: date
    signed_by: str  # the actor on every revision it records
    since: str  # when it started: its revisions are the ones recorded since, signed by signed_by
    failed: list[str] = field(default_factory=list)  # one line per unit-day not loaded (refused, missing)
    changed: dict[str, list[str]] = field(default_factory=dict)  # day → loads, recalculations, new breaks
    editions: list[str] = field(default_factory=list)  # the 更正/补报 editions rendered


@dataclass(frozen=True)
class ChangedDay:
    report_date: str
    counts: dict[str, int]  # 更正 / 补报 / 重算 → how many figures
    breaks: int  # hard findings the day has now
    edition: str  # its newest edition not yet mailed, '' when none

    def line(self) -> str:
        counts = "，".join(f"{kind} {n} 项" for kind, n in self.counts.items())
        tail = f"；仍有不平衡 {self.breaks} 条" if self.breaks else ""
        shown = f"；已生成{self.edition}，未单独发送" if self.edition else ""
        return f"{self.report_date} {counts}{tail}{shown}"


def days_of(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def range_request(
    ctx: Context, first: date, last: date, units: list[str], reason: str, actor: str, today: date
) -> RunRequest:
    """The range's units and signature; refused when the dates are backwards, reach past today (Asia/Shanghai) or
    include a day never published, and (as for one day) when a published day would change without a reason."""
    if first > last:
        raise RangeRefused(f"起始日期 {first} 晚于结束日期 {last} / FROM is after TO")
    if last > today:
        raise RangeRefused(f"{last} 还没到（北京时间今天是 {today}）：只能重新结清已发布的日期 / TO is in the future")
    span = {"first_date": first.isoformat(), "last_date": last.isoformat()}
    published = {r["report_date"] for r in ctx.store.rows("select_published_days_between", span)}
    unpublished = [d.isoformat() for d in days_of(first, last) if d.isoformat() not in published]
    if unpublished:
        shown = "、".join(unpublished[:5]) + (f" 等 {len(unpublished)} 天" if len(unpublished) > 5 else "")
        raise RangeRefused(
            f"{shown} 尚未结清发布：重新结清只用于日报已发出的日期，这些日期请先用 daily_closeout 结清 / "
            "the range includes days never published"
        )
    try:
        return run_request(ctx, first, {"report_date": first.isoformat(), "units": units, "reason": reason}, actor)
    except ReasonRequired:
        raise
    except ValueError as exc:  # a unit not in the registry
        raise RangeRefused(str(exc)) from exc


def reclose_range(
    ctx: Context,
    first: date,
    last: date,
    units: list[str],
    reason: str,
    actor: str,
    today: date,
    since: str | None = None,
) -> RangeResult:
    """Re-close every day from `first` to `last` in order, re-check the later published days once, render each
    changed day's edition. `since`: when the run started (a retry of the run passes the same), for the summary."""
    from closeout.load import load_group
    from closeout.pipeline import plan_unit_groups

    since = since or now_local()
    request = range_request(ctx, first, last, units, reason, actor, today)
    signed = request.signed
    codes = [code for group in request.groups(plan_unit_groups(ctx)) for code in group["codes"]]
    because = f"随{_month_day(first)}至{_month_day(last)}重新结清重算"
    result = RangeResult(first, last, signed.actor, since)
    for day in days_of(first, last):
        lines = []
        for outcome in load_group(ctx, day, codes, signed):
            if outcome.status != "loaded" and not outcome.failed:
                continue  # the file already loaded, or an optional unit without one: nothing to say 365 times
            lines.append(f"{outcome.unit_name}({outcome.unit_code}): {outcome.status}")
            lines += [f"  {line}" for line in outcome.lines]
            if outcome.failed:
                result.failed.append(f"{day} {outcome.lines[0] if outcome.lines else outcome.unit_name}")
        lines += reconcile_recording(ctx, day, because, signed.actor, build_docs=False)  # finish_days
        if lines:
            result.changed[day.isoformat()] = lines
    result.changed.update(recheck_later_days(ctx, last, signed.actor, because))
    result.editions = finish_days(ctx, first, last, since, signed.actor)
    return result


def finish_days(ctx: Context, first: date, last: date, since: str, actor: str) -> list[str]:
    """Each re-closed day's Data Docs, and the 更正/补报 edition of every day this re-close corrected (kept in the
    outbox, never overwritten); returns the new editions' labels. An unchanged store renders no new one.
    Recalculated-only days keep their editions, as after a one-day re-close. The days are independent once
    reconciled, so they are shared among the cores (closeout.forked)."""
    from closeout.editions import editions_of

    signed = _signed(ctx, first, since, actor)
    corrected = {date.fromisoformat(r["report_date"]) for r in signed if r["kind"] != "recalculated"}
    before = {(e.report_date, e.number) for day in corrected for e in editions_of(ctx, day)}
    days = sorted(set(days_of(first, last)) | corrected)
    finished = map_forked(ctx, _finish_day, [(day, day in corrected) for day in days])
    return [e.label for e in finished if e is not None and (e.report_date, e.number) not in before]


def _finish_day(ctx: Context, day_and_corrected: tuple[date, bool]):
    """One day's Data Docs, and its new edition when it was corrected (in a child of finish_days)."""
    from closeout.datadocs import rebuild
    from closeout.editions import render_edition

    day, corrected = day_and_corrected
    rebuild(ctx, day)
    return render_edition(ctx, day) if corrected else None


def changed_days(ctx: Context, first: date, since: str, actor: str) -> list[ChangedDay]:
    """From the store, so a retried run tells the same: every day whose figures this re-close changed."""
    from closeout.editions import KIND_LABELS, editions_of, sent_editions
    from closeout.register import KINDS

    by_day: dict[str, Counter] = {}
    for r in _signed(ctx, first, since, actor):
        by_day.setdefault(r["report_date"], Counter())[KINDS[r["kind"]]] += 1
    days = []
    for day, counts in by_day.items():
        when = date.fromisoformat(day)
        sent = sent_editions(ctx, when)
        unsent = [e for e in editions_of(ctx, when) if e.number not in sent and e.kind != "official"]
        breaks = ctx.store.rows("select_hard_findings", {"report_date": day})
        label = f"第{unsent[-1].number}版（{KIND_LABELS[unsent[-1].kind]}）" if unsent else ""
        days.append(ChangedDay(day, dict(sorted(counts.items())), len(breaks), label))
    return days


def summary_lines(first: date, last: date, days: list[ChangedDay]) -> list[str]:
    if not days:
        return [f"{first} 至 {last} 重新结清后没有任何已发布的数字变化 / nothing published changed"]
    return [f"{first} 至 {last} 重新结清：{len(days)} 天已发布的数字有变化", *(f"  {d.line()}" for d in days)]


def send_summary(
    ctx: Context,
    first: date,
    last: date,
    since: str,
    actor: str,
    reason: str,
    sender: str,
    connect: Connect,
) -> str | None:
    """One mail for the whole range to the bulletin's recipients and ops, at most once per set of changes (the
    notice table); nothing when nothing changed. Returns its subject, or None."""
    from closeout.mailer import send_once
    from closeout.register import FILE_NAME, register_rows, write_csv

    days = changed_days(ctx, first, since, actor)
    if not days:
        return None
    signed = _signed(ctx, first, since, actor)
    key = hashlib.sha256(
        "\n".join(f"{r['report_date']}|{r['unit_code']}|{r['metric']}|{r['new_sha256']}" for r in signed).encode()
    ).hexdigest()[:16]
    ident = {"kind": SUMMARY_KIND, "report_date": first.isoformat(), "unit_code": "", "notice_key": f"{last}|{key}"}
    if ctx.store.rows("select_notice", ident):
        return None  # this set of changes was mailed (or is being mailed) already
    totals = Counter()
    for d in days:
        totals.update(d.counts)
    subject = f"【重新结清】{first} 至 {last}：{len(days)} 天已发布的数字有变化"
    body = "\n".join(
        [
            f"{first} 至 {last} 已逐日重新结清（{actor}，原因：{reason}）。",
            f"以下 {len(days)} 天已发布的数字随之变化（"
            + "，".join(f"{kind} {n} 项" for kind, n in sorted(totals.items()))
            + f"），逐项明细见附件 {FILE_NAME}：",
            *(f"  {d.line()}" for d in days),
            "",
            "各日的更正版已生成并保存在日报目录（<日期>/<期号>/），不逐日发送。需要单独发出某一天的更正版："
            "在 Airflow 触发 daily_closeout，统计日期选那一天。",
            "（本邮件由日清日结系统自动发送，请勿直接回复。）",
        ]
    )
    rows = register_rows(ctx, first, only=signed)
    buffer = io.StringIO()
    write_csv(rows, buffer)
    recipients = list(dict.fromkeys([*ctx.settings.recipients, *ctx.settings.ops_emails]))
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(idstring=f"closeout-reclose-{first}", domain=sender.rpartition("@")[2])
    message.set_content(body, charset="utf-8")
    message.add_attachment(buffer.getvalue().encode("utf-8-sig"), maintype="text", subtype="csv", filename=FILE_NAME)
    record = {
        **ident,
        "subject": subject,
        "recipients": ", ".join(recipients),
        "message_id": message["Message-ID"],
        "body": body,
        "started_at": now_local(),
    }
    store = ctx.store
    send_once(
        store,
        message,
        connect,
        claim=lambda conn: store.run(conn, "insert_notice", record),
        release=lambda conn: store.run(conn, "delete_unsent_notice", ident),
        confirm=lambda conn: store.run(conn, "mark_notice_sent", {**ident, "sent_at": now_local()}),
    )
    return subject


def _signed(ctx: Context, first: date, since: str, actor: str) -> list[dict]:
    return ctx.store.rows(
        "select_revisions_signed_since", {"first_date": first.isoformat(), "since": since, "recorded_by": actor}
    )


def _month_day(day: date) -> str:
    return f"{day.month}月{day.day}日"
