"""Findings: every problem is one line naming unit, file, row, metric, value and rule."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

VERDICT = {
    ("hard", "load"): "拒收",
    ("hard", "validate"): "拒收",
    ("hard", "reconcile"): "未结清",
    ("soft", "load"): "提示",
    ("soft", "validate"): "提示",
    ("soft", "reconcile"): "提示",
    ("soft", "narrative"): "提示",
}


@dataclass(frozen=True)
class Finding:
    report_date: date
    unit_code: str
    unit_name: str
    severity: str  # hard | soft | missing
    stage: str  # load | validate | reconcile | narrative
    rule: str
    message: str
    file: str = ""
    row: int | None = None
    metric: str = ""  # "key(中文)"
    value: str = ""  # as reported

    @property
    def verdict(self) -> str:
        return "缺报" if self.severity == "missing" else VERDICT[(self.severity, self.stage)]

    def line(self) -> str:
        parts = [f"[{self.verdict}] {self.unit_name}({self.unit_code})"]
        if self.file:
            parts.append(f"文件 {self.file}")
        if self.row is not None:
            parts.append(f"第{self.row}行")
        if self.metric:
            parts.append(f"指标 {self.metric}")
        if self.value != "":
            parts.append(f"值“{self.value}”")
        return " ".join(parts) + f"：{self.message} [rule: {self.rule}]"

    def as_record(self) -> dict:
        record = asdict(self)
        record["report_date"] = self.report_date.isoformat()
        record["line"] = self.line()
        return record


def blocking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "hard"]
