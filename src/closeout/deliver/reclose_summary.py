"""The one mail a range re-close sends: the days whose published figures changed, to the bulletin's recipients
and ops, with the corrections register rows it signed attached; at most once per set of changes (the notice table)."""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage
from email.utils import formatdate

from closeout.close.reclose_range import signed_revisions
from closeout.core.clock import now_local
from closeout.core.vocabulary import EditionKind, RevisionKind
from closeout.deliver.transport import Connect, message_id, send_once
from closeout.publish.editions import editions_of, sent_editions
from closeout.publish.register import FILE_NAME, register_rows, write_csv
from closeout.store.context import Context

SUMMARY_KIND = "reclose_summary"


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


def changed_days(ctx: Context, first: date, since: str, actor: str) -> list[ChangedDay]:
    """From the store, so a retried run tells the same: every day whose figures this re-close changed."""
    by_day: dict[str, Counter] = {}
    for r in signed_revisions(ctx, first, since, actor):
        by_day.setdefault(r["report_date"], Counter())[RevisionKind(r["kind"]).label] += 1
    days = []
    for day, counts in by_day.items():
        when = date.fromisoformat(day)
        sent = sent_editions(ctx, when)
        unsent = [e for e in editions_of(ctx, when) if e.number not in sent and e.kind != EditionKind.OFFICIAL]
        breaks = ctx.store.rows("select_hard_findings", {"report_date": day})
        label = f"第{unsent[-1].number}版（{EditionKind(unsent[-1].kind).label}）" if unsent else ""
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
    days = changed_days(ctx, first, since, actor)
    if not days:
        return None
    signed = signed_revisions(ctx, first, since, actor)
    key = hashlib.sha256(
        "\n".join(f"{r['report_date']}|{r['unit_code']}|{r['metric']}|{r['new_sha256']}" for r in signed).encode()
    ).hexdigest()[:16]
    ident = {"kind": SUMMARY_KIND, "report_date": first.isoformat(), "unit_code": "", "notice_key": f"{last}|{key}"}
    if any(r["status"] in ("sending", "sent") for r in ctx.store.rows("select_notice", ident)):
        return None  # this set of changes was mailed (or is being mailed) already; a released one goes again
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
    message["Message-ID"] = message_id(f"closeout-reclose-{first}", sender)
    message.set_content(body, charset="utf-8")
    message.add_attachment(buffer.getvalue().encode("utf-8-sig"), maintype="text", subtype="csv", filename=FILE_NAME)
    record = {
        **ident,
        "subject": subject,
        "recipients": ", ".join(recipients),
        "message_id": message["Message-ID"],
        "body": body,
        "started_at": now_local(),
        "status": "sending",
        "sent_at": None,
    }
    store = ctx.store
    send_once(
        store,
        message,
        connect,
        claim=lambda conn: _claim(store, conn, record),
        release=lambda conn: store.run(conn, "release_notice", {**ident, "status_was": "sending"}),
        confirm=lambda conn: store.run(conn, "mark_notice_sent", {**ident, "sent_at": now_local()}),
    )
    return subject


def _claim(store, conn, record: dict) -> None:
    """The summary recorded 'sending' (new, or released and taken again); a parallel run that recorded it first
    stops this one before anything is sent."""
    if store.run(conn, "claim_notice", record).rowcount != 1:
        raise RuntimeError(
            f"{record['kind']} {record['report_date']} {record['notice_key']}: 已由另一次运行发送 / sent by another run"
        )
