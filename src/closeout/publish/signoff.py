"""审核签发: whether an edition waits for a person before it is mailed, and the record of their decision.

`CLOSEOUT_SIGNOFF` is `off`, `always` or `when-incomplete` (default): the last holds an edition when fewer than
`CLOSEOUT_QUORUM` (default half) of the required units are cleared, so an all-missing day is never sent
unread. Whatever the setting, an edition is never mailed unattended when the day's loading failed for an
infrastructure reason (the groups were never planned, or a county's load never finished): only a data
refusal is a county's answer; a crash is not.
"""

from __future__ import annotations

from dataclasses import dataclass

from closeout.close.status import open_units, unit_statuses
from closeout.core.clock import now_local
from closeout.core.vocabulary import APPROVE, REJECT, SignoffDecision, UnitStatus
from closeout.publish.editions import Edition, sent_editions, signed_copy
from closeout.publish.masthead import TIMED_OUT, named_person
from closeout.store.context import Context


class SignoffOutstanding(RuntimeError):
    """The edition waits for a sign-off, or was rejected: it must not be mailed."""


@dataclass(frozen=True)
class SignoffCheck:
    reasons: tuple[str, ...]  # empty: the edition may go out unattended
    cleared: int
    required: int

    @property
    def needed(self) -> bool:
        return bool(self.reasons)


def check(ctx: Context, edition: Edition, planned: list[str] | None, judged: list[str]) -> SignoffCheck:
    """Why `edition` must wait for a person, if it must. `planned`: the unit codes the run set out to load (None
    when planning failed); `judged`: those whose load finished with an answer (loaded, refused or missing)."""
    settings, names = ctx.settings, ctx.unit_names()
    required = [u.code for u in ctx.registry.all_units if u.required]
    statuses = unit_statuses(ctx, edition.report_date)
    cleared = sum(statuses.get(code) == UnitStatus.CLEARED for code in required)
    reasons = []
    if planned is None:
        reasons.append("规划分组失败（基础设施故障），本次没有任何单位入库")
    else:
        answered = set(judged)
        unfinished = [code for code in planned if code not in answered]
        if unfinished:
            listed = "、".join(names.get(c, c) for c in unfinished[:10]) + ("等" if len(unfinished) > 10 else "")
            reasons.append(f"{listed}共{len(unfinished)}个单位的入库任务因基础设施故障未完成")
    if settings.signoff == "always":
        reasons.append("按设置每期都须审核签发（CLOSEOUT_SIGNOFF=always）")
    elif settings.signoff == "when-incomplete" and cleared < settings.quorum * len(required):
        reasons.append(f"仅{cleared}/{len(required)}个必报单位已结清，不足{settings.quorum:.0%}（CLOSEOUT_QUORUM）")
    return SignoffCheck(tuple(reasons), cleared, len(required))


def request(ctx: Context, edition: Edition, signoff: SignoffCheck) -> dict:
    """Record that the edition waits (once; a re-run keeps the request and any decision) and return what the
    approver reads: subject and a Markdown body with the summary, the open units and the data notes."""
    from closeout.publish.editions import read_files

    with ctx.store.transaction() as conn:
        ctx.store.run(
            conn,
            "insert_signoff_request",
            {**edition.key, "reasons": "\n".join(signoff.reasons), "requested_at": now_local()},
        )
    # The approver reads the edition itself, not a fresh rendering of the store: its files are hash-checked here
    # (a tampered edition is refused), and its summary and notes are the parts it was rendered with, in its own
    # language and layout.
    read_files(ctx, edition)
    outline = edition.outline
    opening = [*outline.get("edition_lines", ()), *outline.get("summary", ())]
    notes = [f"{n}. {note}" for n, note in enumerate(outline.get("notes", ()), start=1)]
    if not outline:  # recorded before editions kept their outline
        opening = [
            f"（第{edition.number}版生成时未保存摘要，请打开日报文件核对：{edition.folder(ctx) / 'bulletin.txt'}）"
        ]
    still_open = open_units(ctx, edition.report_date)
    body = [
        f"**{edition.subject}** · 第{edition.number}版 · 哈希 `{edition.sha256[:12]}`",
        "",
        "**为什么需要审核**：" + "；".join(signoff.reasons),
        "",
        f"**已结清** {signoff.cleared}/{signoff.required} 个必报单位",
        "",
        "**总体情况**",
        "",
        *[f"> {line}  " for line in opening if line.strip()],
        "",
        "**未结清单位**" if still_open else "**各单位均已结清**",
        "",
        *[f"- {name}：{why}" for name, why in still_open],
        "",
        "**数据说明**",
        "",
        *([f"> {line}  " for line in notes if line.strip()] or ["（无）"]),
        "",
        f"选择“{APPROVE}”即发出本期；选择“{REJECT}”不发送并记录原因，改正后重新生成（Clear render_bulletin）。",
        f"日报文件：{edition.folder(ctx)}",
    ]
    return {"subject": f"审核签发：{edition.subject} 第{edition.number}版", "body": "\n".join(body)}


def record_decision(ctx: Context, edition: Edition, response: dict | None) -> None:
    """The approver's answer, from the sign-off task's result: chosen option, comment, who."""
    if not response:
        return
    chosen = (response.get("chosen_options") or [""])[0]
    who = (response.get("responded_by_user") or {}).get("name") or TIMED_OUT
    comment = str((response.get("params_input") or {}).get("reason") or "").strip()
    with ctx.store.transaction() as conn:
        ctx.store.run(
            conn,
            "decide_signoff",
            {
                **edition.key,
                "decision": SignoffDecision.APPROVED if chosen == APPROVE else SignoffDecision.REJECTED,
                "decided_by": who,
                "decided_at": now_local(),
                "comment": comment,
            },
        )


def as_signed(ctx: Context, edition: Edition) -> Edition:
    """What goes out for an edition: itself, or — approved by a person after it was rendered — its copy naming
    them as 签发人, which carries the same approval (the record says whose copy it is)."""
    row = decision_of(ctx, edition)
    if not row or row["decision"] != SignoffDecision.APPROVED or not named_person(row["decided_by"]):
        return edition
    if edition.number in sent_editions(ctx, edition.report_date):
        return edition
    copy = signed_copy(ctx, edition, row["decided_by"])
    if copy.number != edition.number:
        with ctx.store.transaction() as conn:
            ctx.store.run(
                conn,
                "insert_signoff_request",
                {**copy.key, "reasons": f"第{edition.number}版签发后加注签发人", "requested_at": now_local()},
            )
            ctx.store.run(
                conn,
                "decide_signoff",
                {
                    **copy.key,
                    "decision": SignoffDecision.APPROVED,
                    "decided_by": row["decided_by"],
                    "decided_at": row["decided_at"],
                    "comment": row["comment"],
                },
            )
    return copy


def decision_of(ctx: Context, edition: Edition) -> dict | None:
    """The edition's sign-off record (pending, approved or rejected), if it was ever asked for."""
    rows = ctx.store.rows("select_signoffs", {"report_date": edition.report_date.isoformat()})
    return next((row for row in rows if row["edition_no"] == edition.number), None)


def ensure_cleared_to_send(ctx: Context, edition: Edition) -> None:
    """An edition with a pending or rejected sign-off is never mailed, whoever asks."""
    row = decision_of(ctx, edition)
    if row and row["decision"] == SignoffDecision.PENDING:
        raise SignoffOutstanding(f"{edition.label}等待审核签发（{row['reasons'].replace(chr(10), '；')}），未发送")
    if row and row["decision"] == SignoffDecision.REJECTED:
        raise SignoffOutstanding(
            f"{edition.label}已被{row['decided_by']}退回（{row['comment'] or '未写原因'}），未发送；"
            "改正后重新生成日报（Clear render_bulletin 及其下游）：内容变了才是新的一期"
        )


def release(ctx: Context, edition: Edition) -> Edition:
    """What may be handed to the transport for `edition`: itself, or its copy naming the person who approved it.
    Raises SignoffOutstanding while its sign-off is pending or after it was turned down."""
    signed = as_signed(ctx, edition)
    ensure_cleared_to_send(ctx, signed)
    return signed
