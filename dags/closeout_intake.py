"""
### 收件 · closeout_intake — 运行手册 runbook

每隔几分钟（`CLOSEOUT_INTAKE_EVERY`，默认 2 分钟）从开放时间（`CLOSEOUT_OPEN`，默认 12:00）运行到截止后的告警时间
（`CLOSEOUT_DEADLINE`，默认 23:30），北京时间。每次运行只处理当天（统计日期）的新文件，几秒钟结束，不占用等待中的
工作槽。
Every few minutes from the opening time to the deadline (Asia/Shanghai), each run handles the report date's new
files and ends in seconds: no worker slot is held while waiting.

| 任务 task | 做什么 what it does | 失败时 when it fails |
|---|---|---|
| `judge_arrivals` 新文件校验入库 | 收件目录里尚未校验过的文件（按 SHA-256）：等文件写完、归档、解析、校验、入库，与截止时的日报运行用同一段代码；已校验过的文件不再校验，没交文件的单位不动（截止时才算缺报） / new files only, the same loading code as the cutoff run | 数据问题不会让它失败（写进回执）；失败是基础设施问题（库、磁盘），会自动重试，运维会收到告警邮件 |
| `send_receipts` 发送回执 | 每个校验过的文件给单位联系人发一封回执：受理（附读入的数字）或退回（逐条原因、怎么改）；同一文件只发一次 / one receipt per judged file | SMTP 拒收会重试；"未确认"时见 docs/operations.md |
| `send_reminders` 截止前提醒 | 到了提醒时间（`CLOSEOUT_REMINDERS`，默认 19:00、20:30），还没交或被退回未重报、且未被标记缺报的单位，各发一次提醒，抄送运维 / once per unit and time | 同上 |
| `reissue_edition` 补报/更正版 | 日报发出后又入库的补报或更正，攒够 `CLOSEOUT_CORRECTION_BATCH` 分钟（默认 30）后，触发一次该日的 `daily_closeout` 运行（运行号 `reissue__<日期>__<首条变化时间>`，同一批只触发一次），生成并发出逐条列明变化的补报/更正版（同样的审核规则） / after publication, one re-run per batch of changes sends the 补报/更正 edition | 同上；已触发过的同一批跳过（skipped） |
| `watch_deadline` 结清告警 | 过了 `CLOSEOUT_DEADLINE` 当天仍未结清（日报未发出，或有单位未结清且未标记缺报），给运维（`CLOSEOUT_OPS_EMAIL`）发一封告警，逐个列出单位和原因 / one alert naming each open unit | 同上 |

一天的全过程见 docs/operations.md。The operator's day hour by hour: docs/operations.md.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

from closeout.core.settings import intake_cron
from closeout.orchestration.airflow_glue import alert_ops_on_failure, alert_ops_on_retry, fail_at_once_policy


def _intake_context():
    """The package context and the report date this tick works for (today, or yesterday before the opening)."""
    from closeout.core.clock import intake_report_date
    from closeout.store.context import Context

    ctx = Context.from_env()
    dag_run = get_current_context()["dag_run"]
    # The tick's own time: its logical date (a scheduled tick's, or the one `airflow dags test` was given), never
    # the clock; a run triggered without one uses its run_after.
    when = dag_run.logical_date or dag_run.run_after
    return ctx, intake_report_date(when, ctx.settings.opening), when


def _send(ctx, due) -> int:
    from closeout.deliver.notices import NoticesNeedOperator, send_notices
    from closeout.orchestration.airflow_glue import OperatorMustAct, smtp

    if not due:
        return 0
    sender, connect = smtp(ctx.settings.sender)
    try:
        sent = send_notices(ctx, due, sender, connect)
    except NoticesNeedOperator as exc:  # possibly sent, or no address: an operator decides, a retry cannot
        raise OperatorMustAct(str(exc)) from exc
    for notice in sent:
        print(
            f"{notice.kind} {notice.unit_code or '全市'} {notice.key[:12]} → {', '.join(notice.recipients)}: {notice.subject}"
        )
    return len(sent)


@dag(
    dag_id="closeout_intake",
    description="收件：文件到达即校验、回执、截止前提醒、结清告警",
    schedule=CronTriggerTimetable(intake_cron(), timezone="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=20),
    tags=["closeout", "日清日结"],
    default_args={
        "retries": 1,
        "retry_delay": timedelta(seconds=30),
        "owner": "closeout-ops",
        "on_failure_callback": alert_ops_on_failure,
        "on_retry_callback": alert_ops_on_retry,
        "retry_policy": fail_at_once_policy(),
    },
    doc_md=__doc__,
)
def closeout_intake():
    @task(task_display_name="新文件校验入库 judge_arrivals")
    def judge_arrivals() -> int:
        from closeout.orchestration.pipeline import judge_arrivals as judge

        ctx, report_date, _ = _intake_context()
        judged = judge(ctx, report_date)
        print(f"{report_date}: {len(judged)} unit(s) with new files judged: {', '.join(judged) or '—'}")
        return len(judged)

    @task(task_display_name="发送回执 send_receipts", trigger_rule="all_done")
    def send_receipts() -> int:
        from closeout.deliver.notices import receipts_due

        ctx, report_date, _ = _intake_context()
        return _send(ctx, receipts_due(ctx, report_date))

    @task(task_display_name="截止前提醒 send_reminders", trigger_rule="all_done")
    def send_reminders() -> int:
        from closeout.deliver.notices import reminders_due

        ctx, report_date, now = _intake_context()
        return _send(ctx, reminders_due(ctx, report_date, now))

    @task(task_display_name="补报/更正版 reissue_edition", trigger_rule="all_done")
    def reissue_edition() -> str | None:
        """Trigger one daily_closeout run for the oldest day whose changes are due; the next tick takes the next."""
        from datetime import datetime

        from airflow.sdk.exceptions import DagRunTriggerException

        from closeout.core.clock import LOCAL_TZ
        from closeout.publish.reissue import due_reissues

        ctx, _, _ = _intake_context()
        # The batch is timed on the clock the changes were recorded by (the wall clock), not the tick's date.
        due = due_reissues(ctx, datetime.now(LOCAL_TZ))
        if not due:
            return None
        first = due[0]
        print(f"{first.report_date}: 日报发出后的变化已攒够 {ctx.settings.correction_batch:g} 分钟 → {first.run_id}")
        # What TriggerDagRunOperator does in Airflow 3 (its module is too heavy for parse time): the task runner
        # creates the run; an existing run id (the same batch, an earlier tick) skips this task.
        raise DagRunTriggerException(
            trigger_dag_id="daily_closeout",
            dag_run_id=first.run_id,
            conf=first.conf,
            logical_date=None,
            reset_dag_run=False,
            skip_when_already_exists=True,
            wait_for_completion=False,
            allowed_states=["success"],
            failed_states=["failed"],
            poke_interval=60,
            deferrable=False,
            note=f"统计日期 {first.report_date} · 补报/更正版（收件自动触发）",
        )

    @task(task_display_name="结清告警 watch_deadline", trigger_rule="all_done")
    def watch_deadline() -> int:
        from closeout.deliver.notices import deadline_alert_due

        ctx, report_date, now = _intake_context()
        return _send(ctx, deadline_alert_due(ctx, report_date, now))

    judge_arrivals() >> send_receipts() >> send_reminders() >> reissue_edition() >> watch_deadline()


closeout_intake_dag = closeout_intake()
