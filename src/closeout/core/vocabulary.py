"""The words every stage shares, each once, with its Chinese label: a unit-day's status, an edition's kind, a figure
revision's kind, a delivery's state, a finding's severity and stage, and the sign-off's two answers.

Each is a `StrEnum`: its value is what the store keeps (so a member equals its stored text), its `label` what a
person reads. Imports nothing heavy: the CLI, the board and the DAG files share it at no cost.
"""

from __future__ import annotations

from enum import StrEnum


class Labelled(StrEnum):
    """A stored value with the Chinese label people read."""

    def __new__(cls, value: str, label: str = ""):
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label or value
        return member

    @classmethod
    def labels(cls) -> dict[str, str]:
        return {member.value: member.label for member in cls}

    @classmethod
    def label_of(cls, value: str | None, default: str = "") -> str:
        """The label of a stored value; an unknown value reads as itself (or `default` when it is empty)."""
        try:
            return cls(value).label
        except ValueError:
            return value or default


class UnitStatus(Labelled):
    """A unit's close-out status for a report date (unit_day.status)."""

    RECEIVED = "received", "已收到未入库"  # a file taken, its load not finished (retried)
    LOADED = "loaded", "已受理"  # accepted, not reconciled yet
    CLEARED = "cleared", "已结清"
    BREAK = "break", "未结清"  # reconciliation failed
    REJECTED = "rejected", "拒收"
    MISSING = "missing", "缺报"  # a required unit with no file at the cutoff
    ABSENT = "absent", "无单独报送"  # an optional unit (市本级) that sent nothing
    EXCUSED = "excused", "已标记缺报"  # an operator's 标记缺报


# A unit in one of these states has none of its own figures in the day's totals.
EXCLUDED_FROM_TOTALS = (UnitStatus.MISSING, UnitStatus.REJECTED, UnitStatus.RECEIVED, UnitStatus.EXCUSED)
# A file was accepted, or the unit was excused: no reminder is due.
ANSWERED = (UnitStatus.LOADED, UnitStatus.CLEARED, UnitStatus.BREAK, UnitStatus.EXCUSED)
# A required unit in one of these holds nothing open.
SETTLED = (UnitStatus.CLEARED, UnitStatus.EXCUSED)


class EditionKind(Labelled):
    OFFICIAL = "official", "正式"
    LATE_REPORT = "late_report", "补报"  # a late unit's figures after the 正式 edition went out
    CORRECTION = "correction", "更正"  # a corrected figure after it went out


class RevisionKind(Labelled):
    """figure_revision.kind: why a stored figure changed."""

    REVISION = "revision", "修订"  # before publication: latest wins
    CORRECTION = "correction", "更正"  # after publication, with a reason
    LATE_REPORT = "late_report", "补报"  # a whole report after publication (metric '')
    RECALCULATED = "recalculated", "重算"  # a later day's derived figure, after a re-close


class DeliveryState(Labelled):
    """delivery.status: one attempt to mail an edition."""

    SENDING = "sending", "发送未确认"  # claimed, not confirmed: may or may not have reached the server
    SENT = "sent", "已发送"
    REFUSED = "refused", "被拒收"  # the server said no: nothing delivered
    RELEASED = "released", "确认未送达"  # an operator found it never arrived: the next run sends again


class Severity(Labelled):
    HARD = "hard", "硬性"  # the unit's figures are not cleared until fixed
    SOFT = "soft", "提示"  # published, listed in the data notes
    MISSING = "missing", "缺数"  # not reported (blank or 不详): missing, never "wrong"


class Stage(Labelled):
    LOAD = "load", "读取"
    VALIDATE = "validate", "校验"
    RECONCILE = "reconcile", "对账"
    NARRATIVE = "narrative", "文字稿"


class SignoffDecision(Labelled):
    PENDING = "pending", "待签发"
    APPROVED = "approved", "已签发"
    REJECTED = "rejected", "已退回"


# The sign-off task's two buttons in the Airflow UI (审核签发): the first mails the edition, the second holds it.
APPROVE, REJECT = "签发 Approve", "退回 Reject"
