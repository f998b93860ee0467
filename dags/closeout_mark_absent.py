"""
### 标记缺报 · closeout_mark_absent — 运行手册 runbook

某单位当天确实无法报送（停电、通信中断、经领导同意等）时，值班人员在这里记录：选日期、选单位、写原因（必填），
点 **Trigger**。记录后立即重新对账：该单位状态为 **已标记缺报**，不再收到提醒，也不再使当天“未结清”；日报中
显示“—”，数据说明写明原因。命令行等价操作：`closeout mark-absent <日期> <单位> --reason "<原因>"`。
When a unit will not report today, record it here (date, unit, reason — required) and Trigger: the unit is
no longer reminded, no longer holds the day open, and the bulletin says why. Same as the CLI above.

| 任务 task | 做什么 what it does | 失败时 when it fails |
|---|---|---|
| `mark_unit_absent` 标记缺报 | 记录（日期、单位、原因、操作人、时间），然后重新对账当天 / records, then reconciles the day | 单位名或原因有误：日志里写明，改正后重新触发 |
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task

from closeout.core.clock import today_local
from closeout.core.registry import pick_list
from closeout.orchestration.airflow_glue import OperatorMustAct, alert_ops_on_failure, fail_at_once_policy

UNITS, UNIT_NAMES = pick_list()


@dag(
    dag_id="closeout_mark_absent",
    description="标记缺报：记录某单位当天不报送及原因",
    schedule=None,
    catchup=False,
    tags=["closeout", "日清日结"],
    default_args={
        "retries": 0,
        "owner": "closeout-ops",
        "on_failure_callback": alert_ops_on_failure,
        "retry_policy": fail_at_once_policy(),
    },
    params={
        "report_date": Param(
            today_local(),
            type="string",
            format="date",
            title="统计日期 report date",
            description="哪一天的日报（北京时间）",
        ),
        "unit": Param(
            UNITS[0] if UNITS else "",
            type="string",
            title="单位 unit",
            **({"enum": UNITS, "values_display": UNIT_NAMES} if UNITS else {}),
        ),
        "reason": Param(type="string", minLength=2, title="原因 reason", description="必填：为什么当天不报送"),
    },
    render_template_as_native_obj=False,
    doc_md=__doc__,
)
def closeout_mark_absent():
    @task(task_display_name="标记缺报 mark_unit_absent")
    def mark_unit_absent() -> str:
        from datetime import date

        from closeout.close.excusal import mark_absent
        from closeout.close.reconcile import reconcile_day
        from closeout.store.context import Context

        context = get_current_context()
        params, dag_run = context["params"], context["dag_run"]
        ctx = Context.from_env()
        report_date = date.fromisoformat(params["report_date"])
        who = getattr(dag_run, "triggering_user_name", None) or "Airflow"
        try:
            line = mark_absent(ctx, report_date, params["unit"], params["reason"], f"{who} (Airflow)")
        except ValueError as exc:
            raise OperatorMustAct(str(exc)) from None
        print(line)
        reconcile_day(ctx, report_date)
        return line

    mark_unit_absent()


closeout_mark_absent_dag = closeout_mark_absent()
