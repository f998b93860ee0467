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
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from closeout.core.catalogue import Catalogue, Metric

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
    "value_too_large": "数值过大，超出可精确保存的范围",
    "float_noise": "小数位过多，是表格计算留下的浮点误差（如 3375.0000000000005）：请把单元格设为整数或用 ROUND 取整后重报",
    "date_formatted_value": "数值单元格被设成了日期/时间格式：请把单元格格式改为“常规”或“数值”后重报",
}
MAX_DIGITS = 20  # a longer digit string is refused before any arithmetic: no figure has that many
MAX_DECIMALS = 6  # spreadsheet float residue (3375.0000000000005) has more


class ValueProblem(ValueError):
    """A figure that cannot be read; `rule` is a key of RULE_TEXT."""

    def __init__(self, rule: str, detail: str = ""):
        self.rule = rule
        self.detail = detail or RULE_TEXT[rule]
        super().__init__(f"{self.detail} (rule: {rule})")


@dataclass(frozen=True)
class ParsedValue:
    value: int | float | None  # int when whole (exact); None: missing ("blank") or unknown ("unknown"), never 0
    qualifier: str = ""  # 约/近/… (before the number) or 余/多/… (after it); soft metrics only
    missing: str = ""  # "", "blank" or "unknown"


def clean_text(raw: object) -> str:
    return _clean(str(raw))


@lru_cache(maxsize=65536)  # a day's files repeat the same labels, codes and dates thousands of times
def _clean(text: str) -> str:
    text = LIST_MARKERS.sub("", text.strip())
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def parse_value(raw: object, metric: Metric, catalogue: Catalogue, max_value: int = 10**12) -> ParsedValue:
    """The figure exactly as written: whole numbers as int, never through a float; or a ValueProblem."""
    if raw is None or (isinstance(raw, float) and raw != raw):
        return ParsedValue(None, missing="blank")
    if isinstance(raw, bool):
        raise ValueProblem("not_a_number")
    if isinstance(raw, datetime | date | time | timedelta):
        raise ValueProblem("date_formatted_value", f"{RULE_TEXT['date_formatted_value']}（读出来是“{raw}”）")
    if isinstance(raw, Decimal | int):  # spreadsheet number cells, read from their stored text
        return ParsedValue(exact(Decimal(raw), max_value))
    if isinstance(raw, float):
        return ParsedValue(exact(Decimal(repr(raw)), max_value))
    text = clean_text(raw)
    if text == "":
        return ParsedValue(None, missing="blank")
    if text.lower() in UNKNOWN_WORDS:
        return ParsedValue(None, missing="unknown")
    if text in ZERO_WORDS:
        return ParsedValue(0)
    match = GRAMMAR.match(text)
    if match is None:
        raise _why_not(text, catalogue)
    if sum(ch.isdigit() for ch in match["num"]) > MAX_DIGITS:
        raise ValueProblem("value_too_large", f"数字有 {sum(ch.isdigit() for ch in match['num'])} 位，不是一个日报数字")
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
    return ParsedValue(exact(number, max_value), qualifier=qualifier)


def exact(number: Decimal, max_value: int) -> int | float:
    """A whole number as int; a fraction only if a float holds it exactly as written; else a ValueProblem."""
    try:
        if not number.is_finite() or abs(number) > max_value:
            raise ValueProblem("value_too_large", f"{RULE_TEXT['value_too_large']}（上限 {max_value}）")
        if number == number.to_integral_value():
            return int(number)
    except InvalidOperation:
        raise ValueProblem("value_too_large") from None
    if -number.normalize().as_tuple().exponent > MAX_DECIMALS or Decimal(repr(float(number))) != number:
        raise ValueProblem("float_noise")
    return float(number)


def _why_not(text: str, catalogue: Catalogue) -> ValueProblem:
    if any(ch in CHINESE_NUMERALS for ch in text) or re.search(r"[万亿]\d", text):
        return ValueProblem("colloquial_number")
    if "," in text and re.search(r"\d,\d", text):
        return ValueProblem("bad_thousands_separator")
    if not re.search(r"\d", text) and any(word in text for word in catalogue.all_unit_words()):
        return ValueProblem("unit_word_without_number")
    return ValueProblem("not_a_number")


def render_value(value: int | float | None, qualifier: str = "") -> str:
    """Render a figure back the way it was reported, every digit: 600余, 约38万 stays 约380000, 0.75 stays 0.75."""
    if value is None:
        return "—"
    number = str(int(value)) if float(value).is_integer() else format(Decimal(repr(float(value))).normalize(), "f")
    if qualifier in PREFIX_QUALIFIERS:
        return qualifier + number
    return number + qualifier


# An approximate figure in English: "600余" is "over 600", "约38万" "about 380,000".
ENGLISH_QUALIFIERS = {
    "大约": "about",
    "约": "about",
    "左右": "about",
    "近": "nearly",
    "超过": "over",
    "超": "over",
    "逾": "over",
    "余": "over",
    "多": "over",
    "以上": "over",
    "+": "over",
}


def figure_text(value: int | float | None, qualifier: str = "", language: str = "zh", large_from: int = 0) -> str:
    """A figure as the bulletin prints it. Chinese keeps every digit (render_value) unless it is `large_from` or
    more, then it reads 117.41万 or 3.2亿 (two decimals at most); English groups thousands: "over 1,200"."""
    if value is None:
        return "—"
    if language == "en":
        number = f"{int(value):,}" if float(value).is_integer() else f"{float(value):,}"
        return f"{ENGLISH_QUALIFIERS[qualifier]} {number}" if qualifier else number
    if not large_from or abs(value) < large_from:
        return render_value(value, qualifier)
    for word, size in (("亿", 100_000_000), ("万", 10_000)):
        if abs(value) >= size:
            scaled = Decimal(repr(float(value))) / size
            shown = format(scaled.quantize(Decimal("0.01"), ROUND_HALF_UP).normalize(), "f") + word
            return qualifier + shown if qualifier in PREFIX_QUALIFIERS else shown + qualifier
    return render_value(value, qualifier)


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
