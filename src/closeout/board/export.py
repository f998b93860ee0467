"""The board's downloads: the punctuality table as CSV for Excel."""

from __future__ import annotations

import csv
import io

CSV_DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may run as a formula (CSV injection)


PUNCTUALITY_COLUMNS = (
    ("code", "单位代码 code"),
    ("name", "单位 name"),
    ("group", "分组 group"),
    ("days", "应报天数 days"),
    ("on_time", "按时 on_time"),
    ("on_time_rate", "按时率 on_time_rate"),
    ("median_submission_time", "报送时间中位数 median_submission_time"),
    ("late", "迟报 late"),
    ("missing", "缺报 missing"),
    ("rejected", "拒收 rejected"),
    ("absent", "已标记缺报 absent"),
)


def punctuality_csv(rows: list[dict]) -> str:
    """The punctuality table as CSV for Excel: a BOM (so Excel reads UTF-8), a bilingual header, CRLF lines, and
    any text that a spreadsheet would run as a formula (= + - @ first) prefixed with an apostrophe."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([header for _, header in PUNCTUALITY_COLUMNS])
    for row in rows:
        writer.writerow([_csv_value(row.get(key)) for key, _ in PUNCTUALITY_COLUMNS])
    return out.getvalue()


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value == value else ""
    text_value = str(value)
    return "'" + text_value if text_value.startswith(CSV_DANGEROUS_START) else text_value


# --- JSON shapes --------------------------------------------------------------------------------------------------
