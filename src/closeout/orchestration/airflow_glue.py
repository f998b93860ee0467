"""The few places the package meets Airflow: mail through the `smtp_default` connection, failure alerts, how a
task fails when only a person can fix it, and the report date written on every run.

This module imports no Airflow at module level (DAG files and the run-note listener import it at parse time);
the rest of the package imports no Airflow at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import TYPE_CHECKING
from urllib.parse import quote

from closeout.core.settings import load_settings

if TYPE_CHECKING:
    from closeout.deliver.transport import Connect

SMTP_CONN_ID = "smtp_default"


class OperatorMustAct(SystemExit):
    """A failure that retrying cannot fix: a county's data refused, a delivery nobody can confirm, a day still
    open. Airflow 3.3 logs a SystemExit as one line (its other failures with a traceback), and
    `fail_at_once_policy` stops the retries, so the task fails at once and its log reads as the reason."""

    def __init__(self, reason: str):
        super().__init__(reason)


def fail_at_once_policy():
    """The tasks' retry policy: an OperatorMustAct fails the task at once; anything else (a worker lost, the
    store unreachable, SMTP refusing) keeps the task's retries."""
    from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule

    return ExceptionRetryPolicy(
        rules=[
            RetryRule(
                exception=f"{__name__}.{OperatorMustAct.__qualname__}",
                action=RetryAction.FAIL,
                reason="需要人工处理，重试无用 / needs a person, not a retry",
            )
        ]
    )


def run_note(dag_id: str, conf: dict | None, logical_date, run_after) -> str | None:
    """The note every closeout run carries in the UI: the report date it works for, so runs read by their day
    and not by their UTC trigger time (run ids are fixed by Airflow when the run is created)."""
    from datetime import date

    from closeout.core.clock import LOCAL_TZ, intake_report_date, report_date_for
    from closeout.core.settings import load_settings

    conf = conf or {}
    try:
        if dag_id == "closeout_intake":
            when = logical_date or run_after
            day = intake_report_date(when, load_settings().opening)
            return f"统计日期 {day.isoformat()} · 收件 {when.astimezone(LOCAL_TZ).strftime('%H:%M')}"
        if dag_id == "daily_closeout":
            if conf.get("report_date"):
                day = date.fromisoformat(str(conf["report_date"])).isoformat()
                if conf.get("reissue"):
                    return f"统计日期 {day} · 补报/更正版（收件自动触发）"
                if conf.get("reason"):
                    return f"统计日期 {day} · 重新结清：{str(conf['reason']).strip()[:60]}"
                return f"统计日期 {day}（表单指定）"
            return f"统计日期 {report_date_for(logical_date, run_after).isoformat()}"
        if dag_id == "closeout_reclose_range" and conf.get("from_date"):
            span = f"{date.fromisoformat(str(conf['from_date']))} 至 {date.fromisoformat(str(conf['through_date']))}"
            return f"重新结清 {span}：{str(conf.get('reason') or '').strip()[:60]}"
        if dag_id == "closeout_mark_absent" and conf.get("report_date"):
            return f"统计日期 {conf['report_date']} · 标记缺报 {conf.get('unit', '')}".strip()
    except (ValueError, TypeError, AttributeError):
        return None  # a form with a bad date fails in its task, where the operator reads why
    return None


def with_run_note(existing: str | None, note: str) -> str:
    """An operator's own note is kept, under ours; ours is written once."""
    if not existing:
        return note
    return existing if note in existing else f"{note}\n{existing}"


def smtp(default_sender: str) -> tuple[str, Connect]:
    """(sender, connect): the connection's from_email (else ours) and a logged-in session yielding send_message."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    hook = SmtpHook(smtp_conn_id=SMTP_CONN_ID)
    sender = hook.get_connection(SMTP_CONN_ID).extra_dejson.get("from_email") or default_sender

    @contextmanager
    def session() -> Iterator[Callable[[EmailMessage], object]]:
        # The hook connects and logs in from the connection (SSL/STARTTLS, its retries); its own
        # send_email_smtp cannot send a prepared multipart message, so its client sends ours.
        with hook:
            yield hook._smtp_client.send_message

    return sender, session


def task_instance_url(base_url: str, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """The task instance's page in the Airflow 3 UI."""
    url = f"{base_url.rstrip('/')}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}/tasks/{quote(task_id)}"
    return f"{url}/mapped/{map_index}" if map_index is not None and map_index >= 0 else url


def one_line(exception: BaseException | str | None) -> str:
    text = str(exception or "（没有异常信息，见日志）").strip()
    return " ".join(text.split())[:500]


def alert_ops_on_failure(context) -> None:
    """on_failure_callback: the task has failed for good."""
    _alert_ops(context, will_retry=False)


def alert_ops_on_retry(context) -> None:
    """on_retry_callback: this try failed, Airflow will try again by itself."""
    _alert_ops(context, will_retry=True)


def _alert_ops(context, will_retry: bool) -> None:
    """One mail to CLOSEOUT_OPS_EMAIL per failed try, in Chinese, naming the DAG, the task, the unit (a county
    load), the one-line reason and a link to the task instance — except for a shared outage (the store unreachable):
    one mail per run and cause, listing the failures gathered (closeout.orchestration.incidents). Sent with the smtp
    provider's SmtpNotifier."""
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    from closeout.deliver.transport import message_id
    from closeout.orchestration.incidents import CAUSE_LABELS, failures, incident_file, record_failure, shared_cause

    settings = load_settings()
    if not settings.ops_emails:
        print("CLOSEOUT_OPS_EMAIL is empty: no failure alert sent")
        return
    ti, dag_run = context["ti"], context["dag_run"]
    map_index = getattr(ti, "map_index", -1)
    unit = getattr(ti, "rendered_map_index", None) or ""
    report_date = (dag_run.conf or {}).get("report_date") or _local_day(dag_run)
    reason = one_line(context.get("exception"))
    cause = shared_cause(context.get("exception"))
    link = task_instance_url(settings.ui_base_url, ti.dag_id, dag_run.run_id, ti.task_id, map_index)
    try_number = getattr(ti, "try_number", 1)
    state = "将自动重试" if will_retry else "已失败"
    if cause:  # a shared outage: one alert per run and cause, listing the failures gathered meanwhile
        folder = settings.archive_root / "incidents"
        what = f"{ti.task_id}{'（' + unit + '）' if unit else ''} 第{try_number}次{state}：{reason}"
        if not record_failure(folder, dag_run.run_id, cause, what):
            print(f"同一运行的同一故障已告警，本次只记入其事件记录 / already alerted for this run and cause: {cause}")
            return
        time.sleep(settings.alert_gather_seconds)
        others = failures(folder, dag_run.run_id, cause)[1:]
    subject = (
        f"【任务{state}】{ti.dag_id} · {ti.task_id}{' · ' + unit if unit else ''} · {report_date} · 第{try_number}次"
    )
    if cause:
        subject = f"【故障】{ti.dag_id} · {CAUSE_LABELS[cause].split(' / ')[0]} · {report_date} · {dag_run.run_id}"
    subject = subject.replace("{", "(").replace("}", ")")
    html = (
        f"<p>日清日结任务{state}（第{try_number}次尝试）。</p>"
        f"<p>DAG：{_h(ti.dag_id)}<br>任务：{_h(ti.task_id)}<br>"
        + (f"单位：{_h(unit)}<br>" if unit else "")
        + f"统计日期：{_h(report_date)}<br>运行：{_h(dag_run.run_id)}</p>"
        f"<p>原因：{_h(reason)}</p>"
        f'<p><a href="{_h(link)}">在 Airflow 中打开该任务 / open the task instance</a><br>{_h(link)}</p>'
        "<p>处理办法见 docs/operations.md。</p>"
    )
    if cause:
        listed = "".join(f"<li>{_h(line)}</li>" for line in others[:50])
        more = f"<li>另有 {len(others) - 50} 个 / {len(others) - 50} more</li>" if len(others) > 50 else ""
        html += (
            f"<p>同一原因（{_h(CAUSE_LABELS[cause])}）本次运行只告警这一封；此后同因失败只记入 "
            f"{_h(incident_file(settings.archive_root / 'incidents', dag_run.run_id, cause))}。"
            f"等待 {settings.alert_gather_seconds:g} 秒内另有 {len(others)} 次失败：</p><ul>{listed}{more}</ul>"
        )
    # The hook sets Date: but no Message-ID:, which every closeout message carries (threading, dedup at the server).
    alert_id = message_id(f"closeout-alert-{ti.task_id}-{try_number}", settings.sender)
    SmtpNotifier(
        to=list(settings.ops_emails),
        subject=subject,
        html_content=html,
        smtp_conn_id=SMTP_CONN_ID,
        custom_headers={"Message-ID": alert_id},
    )(context)


def _local_day(dag_run) -> str:
    from closeout.core.clock import report_date_for

    try:
        return report_date_for(dag_run.logical_date, dag_run.run_after).isoformat()
    except (AttributeError, ValueError):
        return ""


def _h(text: object) -> str:
    """HTML-escaped, and braces as entities: the notifier renders its fields as Jinja templates."""
    from html import escape

    return escape(str(text)).replace("{", "&#123;").replace("}", "&#125;")
