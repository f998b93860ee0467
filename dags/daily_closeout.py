"""
### 每日清结 · daily_closeout — runbook

One run closes out one **report date**: the logical date's local day in Asia/Shanghai
(`airflow dags test daily_closeout 2022-03-19` closes out 2022-03-19). It runs daily at the cutoff
(`CLOSEOUT_CUTOFF`, default 21:00 Asia/Shanghai). Re-running any task is safe.

| task | what it does | when it fails |
|---|---|---|
| `plan_unit_groups` 规划分组 | reads the unit registry, makes sure the store's tables exist, returns the load groups | registry or database unreachable: fix `CLOSEOUT_REGISTRY` / `CLOSEOUT_DB_URL`, then Clear the task |
| `load_unit_group` 县级数据入库 (one per group, labelled with the units' names, in the pool `closeout_unit_loads`) | waits until each file has stopped changing (`CLOSEOUT_SETTLE_SECONDS`), reads it once (never through a link, within the limits of `docs/submission-format.md` §11), archives those bytes with their SHA-256, parses, validates with Great Expectations (including 缺项), loads in one transaction | **缺报** (no file by the cutoff) or **拒收** (file rejected): the log and the bulletin's data notes say which unit, file, row, metric, value and rule. Ask the county for a corrected file, drop it into `$CLOSEOUT_INBOX/<date>/`, then **Clear** this mapped task — loading is idempotent. The rejected file stays in `$CLOSEOUT_ARCHIVE/quarantine/<date>/<unit>/` beside its `.reasons.txt`. A file still being copied after `CLOSEOUT_SETTLE_TIMEOUT`, or a store outage, fails the try and it retries by itself; the unit reads **已收到未入库** meanwhile, never 未报送. |
| `reconcile_day` 对账核验 | checks stocks against yesterday's close-out, derives cumulative figures, runs soft checks, sets each unit's status (已结清 / 未结清 / 拒收 / 缺报) | runs even when loads failed; a failure here is infrastructure: Clear it |
| `render_bulletin` 生成日报 | writes `bulletin.html`, `bulletin.txt` and the CSV attachment to `$CLOSEOUT_OUTBOX/<date>/` | template or disk problem: fix, Clear |
| `email_bulletin` 发送日报 | emails the bulletin to `CLOSEOUT_RECIPIENTS` through the `smtp_default` connection, at most once per report date | SMTP refused: retries by itself. "上次发送未确认" means an earlier try may have sent: check the mailbox; if nothing arrived run `closeout forget-delivery <date>`, then Clear |

| `confirm_closeout` 结清确认 | fails, after the bulletin has gone out, while any county is 缺报 / 拒收 / 未结清, so the run stays red until the day is truly closed | fix the county as above; the run turns green once its tasks are cleared and pass |

After a county's late or corrected file is loaded, Clear `reconcile_day` and `render_bulletin` with their
downstream to refresh the figures; an already sent bulletin is **not** sent again — a correction after
publication is announced in the next day's data notes ("3月18日柯城区新增集中隔离由120人订正为126人，原因：…").
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from closeout.settings import cutoff_from_env

CUTOFF_HOUR, CUTOFF_MINUTE = cutoff_from_env().split(":")
# County loads share this pool (created by scripts/airflow-init.sh, sized by CLOSEOUT_LOAD_POOL_SLOTS) so a
# province's or country's fan-out never takes every worker slot from the other runs and tasks.
LOAD_POOL = "closeout_unit_loads"


def _context_and_date(logical_date):
    """The report date: the logical date's local day; a run triggered without one uses its run_after."""
    from closeout.context import Context
    from closeout.settings import report_date_for

    return Context.from_env(), report_date_for(logical_date, get_current_context()["dag_run"].run_after)


@dag(
    dag_id="daily_closeout",
    description="当天工作日清日结：收集、校验、对账、发布各县（市、区）日报",
    schedule=CronTriggerTimetable(f"{int(CUTOFF_MINUTE)} {int(CUTOFF_HOUR)} * * *", timezone="Asia/Shanghai"),
    start_date=pendulum.datetime(2022, 3, 13, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    tags=["closeout", "日清日结"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1), "owner": "closeout-ops"},
    doc_md=__doc__,
)
def daily_closeout():
    @task(task_display_name="规划分组 plan_unit_groups")
    def plan_unit_groups() -> list[dict]:
        from closeout.context import Context
        from closeout.pipeline import plan_unit_groups as plan

        return plan(Context.from_env())

    @task(task_display_name="县级数据入库 load_unit_group", map_index_template="{{ unit_label }}", pool=LOAD_POOL)
    def load_unit_group(group: dict, logical_date=None) -> list[dict]:
        from closeout.load import load_group

        get_current_context()["unit_label"] = group["label"]  # first, so a failed task is labelled too
        ctx, report_date = _context_and_date(logical_date)
        outcomes = load_group(ctx, report_date, group["codes"])
        for outcome in outcomes:
            print(f"{outcome.unit_name}({outcome.unit_code}) {report_date}: {outcome.status}")
            for line in outcome.lines:
                print("  " + line)
        failed = [o for o in outcomes if o.failed]
        if failed:
            # A data problem: retrying will not fix it, so fail at once and let the bulletin go out on time.
            raise AirflowFailException(
                " | ".join(o.lines[0] + (f" （另有{len(o.lines) - 1}条）" if len(o.lines) > 1 else "") for o in failed)
            )
        return [{"unit_code": o.unit_code, "status": o.status} for o in outcomes]

    @task(task_display_name="对账核验 reconcile_day", trigger_rule="all_done")
    def reconcile_day(logical_date=None) -> dict[str, str]:
        from closeout.reconcile import reconcile_day as reconcile

        ctx, report_date = _context_and_date(logical_date)
        return reconcile(ctx, report_date)

    @task(task_display_name="生成日报 render_bulletin")
    def render_bulletin(logical_date=None) -> str:
        from closeout.pipeline import render_bulletin as render

        ctx, report_date = _context_and_date(logical_date)
        return str(render(ctx, report_date))

    @task(task_display_name="发送日报 email_bulletin")
    def email_bulletin(logical_date=None) -> dict:
        from contextlib import contextmanager

        from airflow.providers.smtp.hooks.smtp import SmtpHook

        from closeout.mailer import DeliveryUncertain
        from closeout.pipeline import email_bulletin as email

        ctx, report_date = _context_and_date(logical_date)
        hook = SmtpHook(smtp_conn_id="smtp_default")
        sender = hook.get_connection("smtp_default").extra_dejson.get("from_email") or ctx.settings.sender

        @contextmanager
        def smtp_session():
            # The hook connects and logs in from the connection (SSL/STARTTLS, its retries); its own
            # send_email_smtp cannot send a prepared multipart/alternative message, so its client sends ours.
            with hook:
                yield hook._smtp_client.send_message

        try:
            delivery = email(ctx, report_date, sender, smtp_session)
        except DeliveryUncertain as exc:  # retrying cannot answer whether the mail arrived: the operator can
            raise AirflowFailException(str(exc)) from exc
        print(f"{report_date}: {delivery.status} {delivery.message_id} → {', '.join(delivery.recipients)}")
        return {"status": delivery.status, "message_id": delivery.message_id}

    @task(task_display_name="结清确认 confirm_closeout")
    def confirm_closeout(logical_date=None) -> None:
        from closeout.pipeline import open_units

        ctx, report_date = _context_and_date(logical_date)
        still_open = open_units(ctx, report_date)
        if still_open:
            # The bulletin is out; the run stays red until every county's day is cleared.
            raise AirflowFailException(f"{report_date} 未全部结清（日报已按时发出）：" + "；".join(still_open))

    groups = plan_unit_groups()
    loads = load_unit_group.expand(group=groups)
    reconciled = reconcile_day()
    loads >> reconciled >> render_bulletin() >> email_bulletin() >> confirm_closeout()


closeout_dag = daily_closeout()
