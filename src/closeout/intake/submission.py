"""A county file's rows as read, and the findings about it: what intake hands to the checks and the loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from closeout.core.findings import Finding
from closeout.core.numbers import clean_text
from closeout.core.registry import Unit
from closeout.core.textclean import printable_name
from closeout.intake.spreadsheets import CellError, CellTooLong, FormulaWithoutValue

MAX_FINDINGS_PER_FILE = 50  # past that, one line says how many more: a bad file can't flood the store


@dataclass(frozen=True)
class FigureRow:
    row: int  # the row number the county sees in its spreadsheet (1-based)
    metric: str
    value: int | float | None  # int when whole: exactly what was written
    qualifier: str
    raw: str
    note: str = ""
    part: str = ""
    missing: str = ""  # "blank" or "unknown" when value is None
    declared_unit: str = ""  # unit code written in the file, resolved through the registry
    declared_date: str = ""  # ISO date written in the file
    attributed_unit: str = ""
    is_total: bool = False  # a 合计/全县 row or a whole beside its parts: checked against the parts, not added


@dataclass
class Submission:
    unit: Unit
    path: Path
    report_date: date
    rows: list[FigureRow] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    overflow: int = 0  # findings past MAX_FINDINGS_PER_FILE, counted, not stored

    def finding(
        self,
        severity: str,
        rule: str,
        message: str,
        row: int | None = None,
        metric: str = "",
        value="",
        stage: str = "load",
    ) -> None:
        if stage == "load" and len(self.findings) >= MAX_FINDINGS_PER_FILE:
            self.overflow += 1
            return
        self.findings.append(
            Finding(
                self.report_date,
                self.unit.code,
                self.unit.name,
                severity,
                stage,
                rule,
                message,
                file=printable_name(self.path.name),
                row=row,
                metric=metric,
                value=as_typed(value),
            )
        )


def as_typed(value: object) -> str:
    """A value as the clerk typed it, one line, bounded: messages must never carry a whole file."""
    text = printable_name(str(value)).replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "…"


def cell_text(value: object) -> str:
    """A cell as the text the reader compares: numbers as written, markers as their message, text NFKC-cleaned."""
    if value is None:
        return ""
    if isinstance(value, FormulaWithoutValue | CellError | CellTooLong):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    return clean_text(value)
