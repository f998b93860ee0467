"""
### 重新结清一段日期 · closeout_reclose_range — 运行手册 runbook

一次运行重新结清一段 **已发布** 的日期（例如县里重报了全年）：选起止日期、要重新入库的单位（不选为全部），写明
原因（必填，记入更正登记并署您的用户名），点 **Trigger**。逐日按日期顺序：重新入库该日文件、对账，再下一天，
所以存量和累计数按顺序承接；随之变化的累计数记为“重算”，最后一天之后已发布的日期只复核一次。每个有更正的日期
生成一期更正版，保存在日报目录，**不逐日发送**；整段只发 **一封汇总邮件**（收件人同日报，抄送运维），逐日列出
哪些天变了，附更正登记。同一段日期再运行一次什么也不会改变，也不再发邮件。命令行等价操作：
`closeout reclose <起> <止> --reason "…" [--unit 柯城区 …]`（只输出汇总，不发邮件）。
Re-closes every published day FROM..TO in one run, in date order; one 更正 edition per corrected day kept in the
outbox (not mailed one by one) and one summary mail. A second run of the same range changes and mails nothing.

| 任务 task | 做什么 what it does | 失败时 when it fails |
|---|---|---|
| `reclose_days` 逐日重新结清 | 检查日期（起不晚于止、不含将来、每一天都已发布）和原因，逐日入库、对账，复核其后各日，生成各日更正版 | 日期或原因有误：日志写明，改正后重新触发（什么也没改）。库不通等：自动重试，重跑是安全的 |
| `mail_summary` 发送汇总 | 把本次签署的变化按日汇总成一封邮件，附更正登记；没有变化就不发 | SMTP 问题：修好 `smtp_default` 后 Clear；同一批变化只发一封 |
| `confirm_reclosed` 结清确认 | 有单位的文件被退回或缺报时失败，逐条列出 | 按日志处理该县该日的文件后，重新触发同一段日期 |
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task

from closeout.core.clock import today_local
from closeout.core.registry import pick_list
from closeout.orchestration.airflow_glue import OperatorMustAct, alert_ops_on_failure, fail_at_once_policy

UNITS, UNIT_NAMES = pick_list()


def _form():
    """The form's values and the run's signer."""
    from datetime import date

    context = get_current_context()
    params, dag_run = context["params"], context["dag_run"]
    return (
        date.fromisoformat(str(params["from_date"])),
        date.fromisoformat(str(params["through_date"])),
        list(params.get("units") or []),
        str(params.get("reason") or ""),
        dag_run.triggering_user_name or "（未具名）",
    )


@dag(
    dag_id="closeout_reclose_range",
    description="重新结清一段已发布的日期：逐日入库对账，存量按序承接，一封汇总邮件",
    schedule=None,
    catchup=False,
    # Two ranges at once would re-close the same days out of order.
    max_active_runs=1,
    tags=["closeout", "日清日结"],
    default_args={
        "retries": 1,
        "retry_delay": timedelta(minutes=1),
        "owner": "closeout-ops",
        "on_failure_callback": alert_ops_on_failure,
        "retry_policy": fail_at_once_policy(),
    },
    params={
        "from_date": Param(
            today_local(), type="string", format="date", title="起 from", description="第一天（北京时间）"
        ),
        "through_date": Param(
            today_local(), type="string", format="date", title="止 through", description="最后一天（含）"
        ),
        "units": Param(
            [],
            type="array",
            title="单位 units",
            description="只重新入库这些单位（不选为全部）/ load only these units again (none: all)",
            **({"examples": UNITS, "values_display": UNIT_NAMES} if UNITS else {}),
        ),
        "reason": Param(
            None,
            type=["null", "string"],
            title="原因 reason",
            description="必填：记入更正登记，文件没写备注的更正以此为原因并记您的用户名 / required: signs the corrections",
        ),
    },
    doc_md=__doc__,
)
def closeout_reclose_range():
    @task(task_display_name="逐日重新结清 reclose_days")
    def reclose_days() -> dict:
        from closeout.close.reclose import ReasonRequired
        from closeout.close.reclose_range import RangeRefused
        from closeout.core.clock import LOCAL_TZ
        from closeout.orchestration.reclose import reclose_range
        from closeout.store.context import Context

        first, last, units, reason, actor = _form()
        ctx, dag_run = Context.from_env(), get_current_context()["dag_run"]
        today = dag_run.run_after.astimezone(LOCAL_TZ).date()
        # The run's start, so a retry's summary still holds what an earlier try recorded (dag.test sets none).
        since = (
            dag_run.start_date.astimezone(LOCAL_TZ).isoformat(timespec="milliseconds") if dag_run.start_date else None
        )
        try:
            result = reclose_range(ctx, first, last, units, reason, actor, today, since=since)
        except (RangeRefused, ReasonRequired) as exc:  # the form needs fixing, not a retry
            raise OperatorMustAct(str(exc)) from exc
        for day, lines in result.changed.items():
            print(f"{day}:\n" + "\n".join(f"  {line}" for line in lines))
        for label in result.editions:
            print(f"已生成 {label}（未单独发送）")
        # Counts and a list of days, never the per-figure lines: a year is 365 days.
        return {
            "since": result.since,
            "changed_days": list(result.changed),
            "editions": len(result.editions),
            "failed": result.failed,
        }

    @task(task_display_name="发送汇总 mail_summary", trigger_rule="all_done")
    def mail_summary() -> str | None:
        from closeout.deliver.reclose_summary import changed_days, send_summary, summary_lines
        from closeout.orchestration.airflow_glue import smtp
        from closeout.store.context import Context

        outcome = get_current_context()["ti"].xcom_pull(task_ids="reclose_days")
        if not outcome:  # refused, or failed before it finished: nothing to tell
            print("重新结清未完成，不发汇总邮件 / the re-close did not finish: no summary mailed")
            return None
        first, last, _, reason, actor = _form()
        ctx = Context.from_env()
        print("\n".join(summary_lines(first, last, changed_days(ctx, first, outcome["since"], actor))))
        sender, connect = smtp(ctx.settings.sender)
        subject = send_summary(ctx, first, last, outcome["since"], actor, reason, sender, connect)
        print(subject or "没有新的变化，不发汇总邮件 / nothing new: no summary mailed")
        return subject

    @task(task_display_name="结清确认 confirm_reclosed")
    def confirm_reclosed(outcome: dict) -> None:
        if outcome["failed"]:
            raise OperatorMustAct(f"{len(outcome['failed'])} 个单位日未入库：" + "；".join(outcome["failed"][:20]))

    outcome = reclose_days()
    outcome >> mail_summary() >> confirm_reclosed(outcome)


closeout_reclose_range_dag = closeout_reclose_range()
