"""
### 每日清结 · daily_closeout — 运行手册 runbook

一次运行结清一个 **统计日期**：表单里填的 `report_date`，不填则为运行逻辑日期所在的北京日期
（`airflow dags test daily_closeout 2022-03-19` 结清 2022-03-19）。每天在截止时间（`CLOSEOUT_CUTOFF`，默认 21:00
北京时间）自动运行；任何任务都可以放心重跑。白天文件一到就由 `closeout_intake` 校验并发回执；本运行对截止时
收件目录里的全部文件重新判定，没判过的也会补发回执，所以当天结清从不依赖收件运行过。
One run closes out one **report date** (the form's `report_date`, else the logical date's local day in
Asia/Shanghai). It runs daily at the cutoff; every task is safe to re-run. Failures mail `CLOSEOUT_OPS_EMAIL`.

| 任务 task | 做什么 what it does | 失败时怎么办 when it fails |
|---|---|---|
| `plan_unit_groups` 规划分组 | 读单位名录，确认库表存在，返回入库分组 / reads the registry, returns the load groups | 名录或数据库不通：改正 `CLOSEOUT_REGISTRY` / `CLOSEOUT_DB_URL` 后 Clear 本任务 |
| `load_unit_group` 县级数据入库（每组一个，按单位名标注，池 `closeout_unit_loads`） | 等文件写完（`CLOSEOUT_SETTLE_SECONDS`），只读一次（不跟随链接，不超出 `docs/submission-format.md` 第11节的上限），按 SHA-256 归档，解析，用 Great Expectations 校验（含缺项），一个事务入库 | **缺报**（截止时没有文件）或 **拒收**（文件被退回）：日志与回执逐行写明单位、文件、行、指标、数值、规则。请县里改好文件放入 `$CLOSEOUT_INBOX/<日期>/`，再 **Clear** 该县的任务（入库幂等）。被退回的文件保存在 `$CLOSEOUT_ARCHIVE/quarantine/<日期>/<单位>/`，旁有 `.reasons.txt`。文件一直在写、或库不通：本次失败并自动重试，期间该单位显示 **已收到未入库**，不会显示未报送 |
| `send_receipts` 发送回执 | 每个判定过、尚未发回执的文件发一封回执给单位联系人 / one receipt per judged file not yet receipted | SMTP 拒收自动重试；不影响日报发送 |
| `reconcile_day` 对账核验 | 与前一日结清数核对存量，推算累计数，运行提示性规则，定每个单位状态（已结清 / 未结清 / 拒收 / 缺报 / 已标记缺报） | 即使有县入库失败也会运行；本任务失败是基础设施问题：Clear |
| `recheck_later_days` 复核其后各日 | 本日期之后已发布的各日重新对账：随之变化的累计数记为“重算”更正记录（署名同本次重新结清），新出现的不平衡记为当日的问题；日志逐日列出变化 / re-checks every later published day, reports which changed | 基础设施问题：Clear |
| `render_bulletin` 生成日报 | 生成一期日报（正式；发出后有补报或更正则为补报版 / 更正版）：`bulletin.html`、`bulletin.txt`、数据附件（CSV；单位多于 `CLOSEOUT_BULLETIN_TABLE_MAX_UNITS` 时为 xlsx 和长表 CSV 的 zip）写入 `$CLOSEOUT_OUTBOX/<日期>/<期号>/`，从不覆盖；内容没变则仍是原来那一期 | 模板或磁盘问题：改正后 Clear |
| `needs_signoff` 是否需审核 | 按 `CLOSEOUT_SIGNOFF`（默认不足半数单位结清时审核）和入库是否因故障未完成，决定本期要不要人签发；不需要则跳过 `sign_off` | `airflow dags test` 遇到需要审核的一期会失败并说明：请在界面触发并签发 |
| `sign_off` 审核签发 | 人工签发（Airflow 的 Required Actions）：看总体情况、未结清单位、数据说明，选“签发”或“退回”并写意见；只有 Closeout Ops / Admin 能签发 | 退回后改正再 Clear `render_bulletin` 及下游 |
| `email_bulletin` 发送日报 | 经 `smtp_default` 发给 `CLOSEOUT_RECIPIENTS`：发的就是那一期的文件（先核对哈希），每期至多一次，邮件原样存为 `email-<次>.eml` | SMTP 拒收会自动重试。“上次发送未确认”：先查收件箱，收到了 `closeout confirm-delivery <日期> --reason …`，没收到 `closeout retry-delivery <日期> --reason …`，再 Clear。“等待审核 / 已被退回”：见 `sign_off` |
| `confirm_closeout` 结清确认 | 日报发出后，只要还有县 缺报 / 拒收 / 未结清（且未标记缺报）就失败，让这次运行保持红色直到真正结清 | 按上面处理各县；各县任务 Clear 通过后运行变绿。某县当天确实不报：用 `closeout_mark_absent` 标记缺报 |

日报发出后收件再入库的迟交或更正文件，由 `closeout_intake` 攒够 `CLOSEOUT_CORRECTION_BATCH` 分钟后自动触发本日期的
一次运行：生成一期 **补报** / **更正** 版，逐条列出变化，按同样的审核规则发出一次；次日正式日报的数据说明里再列一次。
**重新结清过去某天**：Trigger 表单选统计日期、要重新入库的单位，并必须写原因（记入更正登记、署您的用户名）；
`recheck_later_days` 报告其后哪些天随之变化。一段日期（例如县里重报一年）用 `closeout_reclose_range` 一次运行按顺序
重新结清，只发一封汇总邮件。详见 docs/operations.md“日报的期”。
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import CronTriggerTimetable, Param, dag, get_current_context, task

from closeout.core.clock import today_local
from closeout.core.registry import pick_list
from closeout.core.settings import cutoff_from_env, smtp_retry_policy
from closeout.core.vocabulary import APPROVE, REJECT
from closeout.orchestration.airflow_glue import (
    OperatorMustAct,
    alert_ops_on_failure,
    alert_ops_on_retry,
    fail_at_once_policy,
)

CUTOFF_HOUR, CUTOFF_MINUTE = cutoff_from_env().split(":")
# County loads share this pool (created by scripts/airflow-init.sh, sized by CLOSEOUT_LOAD_POOL_SLOTS) so a
# province's or country's fan-out never takes every worker slot from the other runs and tasks.
LOAD_POOL = "closeout_unit_loads"
UNITS, UNIT_NAMES = pick_list()
SMTP_RETRIES, SMTP_FIRST_WAIT = smtp_retry_policy()


def _context_and_date(logical_date):
    """The report date: the trigger form's 统计日期 when the run was given one (its conf), else the logical date's
    local day (a run triggered without a logical date uses its run_after). Scheduled runs, re-runs and
    `airflow dags test DATE` carry no form, so the form's default never decides their day."""
    from datetime import date

    from closeout.core.clock import report_date_for
    from closeout.store.context import Context

    context = get_current_context()
    dag_run = context["dag_run"]
    chosen = (dag_run.conf or {}).get("report_date")
    if chosen:
        return Context.from_env(), date.fromisoformat(str(chosen))
    return Context.from_env(), report_date_for(logical_date, dag_run.run_after)


def _run_request(ctx, report_date):
    """The form's units and reason (closeout.close.reclose.run_request), signed by the Airflow user who triggered."""
    from closeout.close.reclose import run_request

    dag_run = get_current_context()["dag_run"]
    return run_request(ctx, report_date, dag_run.conf, dag_run.triggering_user_name)


@dag(
    dag_id="daily_closeout",
    description="当天工作日清日结：收集、校验、对账、发布各县（市、区）日报",
    # No start date: a new deployment waits for the next cutoff instead of closing out yesterday at once.
    schedule=CronTriggerTimetable(f"{int(CUTOFF_MINUTE)} {int(CUTOFF_HOUR)} * * *", timezone="Asia/Shanghai"),
    catchup=False,
    # A run waiting for its sign-off must not hold up the next day's run or a re-run of another day.
    max_active_runs=4,
    tags=["closeout", "日清日结"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "owner": "closeout-ops",
        "on_failure_callback": alert_ops_on_failure,
        "on_retry_callback": alert_ops_on_retry,
        "retry_policy": fail_at_once_policy(),
    },
    params={
        # The form opens on today's date in Asia/Shanghai (the DAG is parsed again every few minutes); only a
        # date sent with the trigger decides the day (see _context_and_date), never this default.
        "report_date": Param(
            today_local(),
            type="string",
            format="date",
            title="统计日期 report date",
            description="要结清的统计日期（北京时间）/ the report date to close out (Asia/Shanghai)",
        ),
        "units": Param(
            [],
            type="array",
            title="单位 units",
            description="只重新入库这些单位（不选为全部）/ load only these units again (none: all)",
            section="重新结清已发布的日期 re-close a published day",
            **({"examples": UNITS, "values_display": UNIT_NAMES} if UNITS else {}),
        ),
        "reason": Param(
            None,
            type=["null", "string"],
            title="原因 reason",
            description="重新结清已发布的日期时必填：记入更正登记，文件没写备注的更正以此为原因并记您的用户名 / "
            "required when the day was published: signs the corrections",
            section="重新结清已发布的日期 re-close a published day",
        ),
    },
    doc_md=__doc__,
)
def daily_closeout():
    @task(task_display_name="规划分组 plan_unit_groups")
    def plan_unit_groups(logical_date=None) -> list[dict]:
        from airflow.sdk.configuration import conf

        from closeout.close.plan import plan_unit_groups as plan
        from closeout.close.reclose import ReasonRequired

        ctx, report_date = _context_and_date(logical_date)
        planned = plan(ctx)
        problems = ctx.registry.problems(conf.getint("core", "max_map_length", fallback=1024))
        if problems:  # certain to fail the fan-out: say why now instead of retrying
            raise OperatorMustAct("；".join(problems))
        for line in ctx.registry.contact_problems():  # only those units' mail waits: the day runs
            print(f"警告 / warning: {line}（改正名录后 closeout check-registry）")
        try:
            request = _run_request(ctx, report_date)
        except (ReasonRequired, ValueError) as exc:  # the form needs fixing, not a retry
            raise OperatorMustAct(str(exc)) from exc
        if request.signed:
            print(f"重新结清 {report_date}：{request.signed.actor}，原因：{request.signed.reason}")
        return request.groups(planned)

    # Labelled from its own argument, which Airflow renders before the task runs: a failed load is labelled too.
    @task(
        task_display_name="县级数据入库 load_unit_group",
        map_index_template="{{ task.op_kwargs['group']['label'] }}",
        pool=LOAD_POOL,
    )
    def load_unit_group(group: dict, logical_date=None) -> list[dict]:
        from closeout.close.load import load_group

        ctx, report_date = _context_and_date(logical_date)
        outcomes = load_group(ctx, report_date, group["codes"], _run_request(ctx, report_date).signed)
        # These units got an answer (loaded, refused or missing): the sign-off check tells a county's answer from
        # a load that crashed, which pushes nothing.
        get_current_context()["ti"].xcom_push(key="judged", value=list(group["codes"]))
        for outcome in outcomes:
            print(f"{outcome.unit_name}({outcome.unit_code}) {report_date}: {outcome.status}")
            for line in outcome.lines:
                print("  " + line)
        failed = [o for o in outcomes if o.failed]
        if failed:
            # A data problem: retrying will not fix it, so fail at once and let the bulletin go out on time.
            raise OperatorMustAct(
                " | ".join(o.lines[0] + (f" （另有{len(o.lines) - 1}条）" if len(o.lines) > 1 else "") for o in failed)
            )
        return [{"unit_code": o.unit_code, "status": o.status} for o in outcomes]

    @task(task_display_name="发送回执 send_receipts", trigger_rule="all_done")
    def send_receipts(logical_date=None) -> int:
        from closeout.deliver.notices import NoticesNeedOperator, receipts_due, send_notices
        from closeout.orchestration.airflow_glue import smtp

        ctx, report_date = _context_and_date(logical_date)
        due = receipts_due(ctx, report_date)
        if not due:
            return 0
        sender, connect = smtp(ctx.settings.sender)
        try:
            sent = send_notices(ctx, due, sender, connect)
        except NoticesNeedOperator as exc:  # possibly sent, or no address: an operator decides, a retry cannot
            raise OperatorMustAct(str(exc)) from exc
        for notice in sent:
            print(f"回执 {notice.unit_code} {notice.key[:12]} → {', '.join(notice.recipients)}: {notice.subject}")
        return len(due)

    # One small XCom (how many units in each status), never one per unit: a country has 2,850.
    @task(task_display_name="对账核验 reconcile_day", trigger_rule="all_done", multiple_outputs=False)
    def reconcile_day(logical_date=None) -> dict[str, int]:
        from collections import Counter

        from closeout.close.reconcile import reconcile_day as reconcile

        ctx, report_date = _context_and_date(logical_date)
        counts = dict(Counter(reconcile(ctx, report_date).values()))
        print(f"{report_date}: " + "，".join(f"{status} {n}" for status, n in sorted(counts.items())))
        return counts

    @task(task_display_name="复核其后各日 recheck_later_days")
    def recheck_later_days(logical_date=None) -> dict[str, list[str]]:
        from closeout.close.reclose import recheck_later_days as recheck
        from closeout.close.reclose import report_lines

        ctx, report_date = _context_and_date(logical_date)
        signed = _run_request(ctx, report_date).signed
        changed = recheck(ctx, report_date, signed.actor if signed else "")
        print("\n".join(report_lines(report_date, changed)))
        return changed

    @task(task_display_name="生成日报 render_bulletin")
    def render_bulletin(logical_date=None) -> dict:
        from closeout.orchestration.pipeline import render_bulletin as render

        ctx, report_date = _context_and_date(logical_date)
        edition = render(ctx, report_date)
        print(f"{edition.label} {edition.sha256[:12]} → {edition.folder(ctx)}")
        return edition.key

    @task.short_circuit(task_display_name="是否需审核 needs_signoff", ignore_downstream_trigger_rules=False)
    def needs_signoff(edition: dict) -> dict | None:
        """The approver's page (subject, Markdown body) when the edition must wait for a person; None lets it go."""
        from closeout.publish import signoff
        from closeout.publish.editions import find_edition, sent_editions
        from closeout.store.context import Context

        ctx, context = Context.from_env(), get_current_context()
        chosen = find_edition(ctx, edition)
        if chosen.number in sent_editions(ctx, chosen.report_date):
            return None  # already out: email_bulletin says so and sends nothing
        decided = signoff.decision_of(ctx, chosen)
        if decided and decided["decision"] == "approved":
            return None  # a re-run does not ask again about the same edition
        if decided and decided["decision"] == "rejected":
            try:
                signoff.ensure_cleared_to_send(ctx, chosen)
            except signoff.SignoffOutstanding as exc:  # the same content was already turned down: not asked again
                raise OperatorMustAct(str(exc)) from exc
        ti = context["ti"]
        groups = ti.xcom_pull(task_ids="plan_unit_groups")
        planned = None if groups is None else [code for group in groups for code in group["codes"]]
        # task_ids as a list: a list of the mapped loads' values even when the run mapped only one group
        judged = [
            code for codes in ti.xcom_pull(task_ids=["load_unit_group"], key="judged") or [] for code in codes or []
        ]
        check = signoff.check(ctx, chosen, planned, judged)
        if not check.needed:
            return None
        page = signoff.request(ctx, chosen, check)
        if context["dag_run"].triggering_user_name == "dag_test":  # `airflow dags test`: nobody is there to approve
            raise OperatorMustAct(
                f"{chosen.label}须审核签发，未发送：{'；'.join(check.reasons)}。请在 Airflow 界面触发本日运行并在"
                "“审核签发 sign_off”任务中签发或退回"
            )
        print(page["subject"] + "：" + "；".join(check.reasons))
        return page

    sign_off = HITLOperator(
        task_id="sign_off",
        task_display_name="审核签发 sign_off",
        subject="{{ ti.xcom_pull(task_ids='needs_signoff')['subject'] }}",
        body="{{ ti.xcom_pull(task_ids='needs_signoff')['body'] }}",
        options=[APPROVE, REJECT],
        params={
            # Optional in the form (one form serves both buttons); a rejection without a reason is recorded as such.
            "reason": Param(
                None, type=["null", "string"], title="意见 / 原因", description="签发意见；退回时请写明原因"
            )
        },
    )

    # none_failed: runs after a sign-off, or when none was needed (sign_off skipped); the edition's own record
    # (closeout.publish.signoff) refuses a pending or rejected edition whatever the task states say.
    # An SMTP server refusing or timing out: tried again with growing waits (CLOSEOUT_SMTP_RETRIES,
    # CLOSEOUT_SMTP_RETRY_DELAY); the delivery record makes sure each recipient gets one copy.
    @task(
        task_display_name="发送日报 email_bulletin",
        trigger_rule="none_failed",
        retries=SMTP_RETRIES,
        retry_delay=SMTP_FIRST_WAIT,
        retry_exponential_backoff=2.0,
        max_retry_delay=timedelta(minutes=15),
    )
    def email_bulletin(edition: dict) -> dict:
        from closeout.deliver.mailer import DeliveryUncertain
        from closeout.orchestration.airflow_glue import smtp
        from closeout.orchestration.pipeline import email_bulletin as email
        from closeout.publish.editions import EditionTampered, find_edition
        from closeout.publish.signoff import SignoffOutstanding, record_decision
        from closeout.store.context import Context

        ctx = Context.from_env()
        chosen = find_edition(ctx, edition)
        record_decision(ctx, chosen, get_current_context()["ti"].xcom_pull(task_ids="sign_off"))
        sender, smtp_session = smtp(ctx.settings.sender)
        try:
            delivery = email(ctx, chosen, sender, smtp_session)
        except (DeliveryUncertain, SignoffOutstanding, EditionTampered) as exc:  # retrying cannot answer these
            raise OperatorMustAct(str(exc)) from exc
        print(f"{chosen.label}: {delivery.status} {delivery.message_id} → {', '.join(delivery.recipients)}")
        return {"status": delivery.status, "message_id": delivery.message_id}

    @task(task_display_name="结清确认 confirm_closeout")
    def confirm_closeout(logical_date=None) -> None:
        from closeout.close.status import open_units

        ctx, report_date = _context_and_date(logical_date)
        still_open = open_units(ctx, report_date)
        if still_open and (get_current_context()["dag_run"].conf or {}).get("reissue"):
            # A 补报/更正 run only sends the changes: the day's own run stays red and the deadline alert named them.
            print(f"{report_date} 仍未结清：" + "；".join(f"{name} {why}" for name, why in still_open))
            return
        if still_open:
            # The bulletin is out; the run stays red until every county's day is cleared.
            listed = "；".join(f"{name} {why}" for name, why in still_open)
            raise OperatorMustAct(f"{report_date} 未全部结清（日报已按时发出）：{listed}")

    groups = plan_unit_groups()
    loads = load_unit_group.expand(group=groups)
    reconciled = reconcile_day()
    loads >> send_receipts()
    edition = render_bulletin()
    loads >> reconciled >> recheck_later_days() >> edition
    needs_signoff(edition) >> sign_off >> email_bulletin(edition) >> confirm_closeout()


closeout_dag = daily_closeout()
