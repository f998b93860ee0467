"""A narrow grammar for the figures counties type.

Accepted: Arabic numbers (full-width too), thousands separators only as 1,234,567, an optional
万/亿 magnitude, an optional unit word convertible into the metric's unit (5万斤 → 25000 公斤), and
— in soft metrics only — an approximation qualifier (约, 近, 余, 多 …) that is kept so the bulletin can
render it back. Colloquial forms ("三万五", "5万3") are rejected rather than guessed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from closeout.catalogue import Catalogue, Metric

PREFIX_QUALIFIERS = ("大约", "超过", "约", "近", "超", "逾")
SUFFIX_QUALIFIERS = ("左右", "以上", "余", "多", "+")
UNKNOWN_WORDS = {"不详", "未知", "不清楚", "待核实", "暂无数据", "-", "—", "--", "——", "/", "n/a", "na", "?", "？"}
ZERO_WORDS = {"无", "没有"}
MAGNITUDES = {"万": Decimal(10_000), "亿": Decimal(100_000_000)}
CHINESE_NUMERALS = set("零〇一二两三四五六七八九十百千")
# Circled and parenthesised list markers: NFKC would turn "①" into "1", so they go first.
LIST_MARKERS = re.compile(r"^[\u2460-\u249b\u2776-\u2793]+\s*")
NUMBER = r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
GRAMMAR = re.compile(
    rf"^(?P<pre>{'|'.join(PREFIX_QUALIFIERS)})?(?P<num>{NUMBER})(?P<mag>[万亿])?"
    rf"(?P<post>{'|'.join(re.escape(q) for q in SUFFIX_QUALIFIERS)})?(?P<unit>[^\d.,]*)$"
)

RULE_TEXT = {
    "not_a_number": "无法识别为数字",
    "colloquial_number": "口语化数字，请写阿拉伯数字（如 35000 或 3.5万）",
    "bad_thousands_separator": "千分位只接受 1,234,567 格式",
    "approximation_in_hard_metric": "硬性指标须为确数，不接受约数",
    "unit_word_without_number": "只有单位没有数字（不按0处理）",
    "unit_mismatch": "计量单位与指标不符",
}


class ValueProblem(ValueError):
    """A figure that cannot be read; `rule` is a key of RULE_TEXT."""

    def __init__(self, rule: str, detail: str = ""):
        self.rule = rule
        self.detail = detail or RULE_TEXT[rule]
        super().__init__(f"{self.detail} (rule: {rule})")


@dataclass(frozen=True)
class ParsedValue:
    value: float | None  # None: missing ("blank") or unknown ("unknown"), never silently 0
    qualifier: str = ""  # 约/近/… (before the number) or 余/多/… (after it); soft metrics only
    missing: str = ""  # "", "blank" or "unknown"


def clean_text(raw: object) -> str:
    text = LIST_MARKERS.sub("", str(raw).strip())
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def parse_value(raw: object, metric: Metric, catalogue: Catalogue) -> ParsedValue:
    if raw is None or (isinstance(raw, float) and raw != raw):
        return ParsedValue(None, missing="blank")
    if isinstance(raw, bool):
        raise ValueProblem("not_a_number")
    if isinstance(raw, int | float):  # Excel cells that hold real numbers
        return ParsedValue(float(raw))
    text = clean_text(raw)
    if text == "":
        return ParsedValue(None, missing="blank")
    if text.lower() in UNKNOWN_WORDS:
        return ParsedValue(None, missing="unknown")
    if text in ZERO_WORDS:
        return ParsedValue(0.0)
    match = GRAMMAR.match(text)
    if match is None:
        raise _why_not(text, catalogue)
    unit_word = match["unit"]
    factor = Decimal(1)
    if unit_word:
        found = catalogue.unit_factor(metric, unit_word)
        if found is None:
            if unit_word in catalogue.all_unit_words():
                raise ValueProblem("unit_mismatch", f"单位“{unit_word}”不适用于该指标（应为{metric.unit}）")
            raise _why_not(text, catalogue)
        factor = Decimal(str(found))
    qualifier = match["pre"] or match["post"] or ""
    if qualifier and metric.severity == "hard":
        raise ValueProblem("approximation_in_hard_metric")
    number = Decimal(match["num"].replace(",", "")) * MAGNITUDES.get(match["mag"] or "", Decimal(1)) * factor
    return ParsedValue(float(number), qualifier=qualifier)


def _why_not(text: str, catalogue: Catalogue) -> ValueProblem:
    if any(ch in CHINESE_NUMERALS for ch in text) or re.search(r"[万亿]\d", text):
        return ValueProblem("colloquial_number")
    if "," in text and re.search(r"\d,\d", text):
        return ValueProblem("bad_thousands_separator")
    if not re.search(r"\d", text) and any(word in text for word in catalogue.all_unit_words()):
        return ValueProblem("unit_word_without_number")
    return ValueProblem("not_a_number")


def render_value(value: float | None, qualifier: str = "") -> str:
    """Render a figure back the way it was reported: 600余, 约38万 stays 约380000."""
    if value is None:
        return "—"
    number = f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")
    if qualifier in PREFIX_QUALIFIERS:
        return qualifier + number
    return number + qualifier


EXCEL_EPOCH = date(1899, 12, 30)
DATE_PATTERN = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")


def parse_report_date(raw: object) -> date | None:
    """ISO, 2022/3/19, 2022年3月19日, datetime cells and Excel serial numbers; None if blank."""
    if raw is None or (isinstance(raw, float) and raw != raw):
        return None
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    text = clean_text(raw)
    if text == "":
        return None
    if re.fullmatch(r"\d{5}(\.0+)?", text):  # Excel serial day number
        return EXCEL_EPOCH + timedelta(days=int(float(text)))
    match = DATE_PATTERN.match(text.split("T")[0].split(" ")[0])
    if match:
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            pass
    raise ValueError(f"无法识别的日期“{raw}”")
