"""The narrow number grammar: every messy value form in domain.md, accepted or rejected with its rule."""

from datetime import date, datetime

import pytest

from closeout.core.catalogue import load_catalogue
from closeout.core.numbers import ParsedValue, ValueProblem, parse_report_date, parse_value, render_value
from closeout.core.settings import load_settings


@pytest.fixture(scope="module")
def catalogue():
    settings = load_settings({})
    return load_catalogue(settings.catalogue_path, settings.checks_path)


@pytest.mark.parametrize(
    ("raw", "metric", "value", "qualifier"),
    [
        ("12345", "sampled", 12345, ""),
        ("１２，３４５", "sampled", 12345, ""),  # full-width digits and comma: NFKC
        ("1,234,567", "sampled", 1234567, ""),
        (" 12 345 ", "sampled", 12345, ""),  # stray spaces inside a number typed in Excel
        ("1.2万", "sampled", 12000, ""),  # exact with a magnitude, no float noise
        ("12人次", "sampled", 12, ""),  # the metric's own unit word
        ("①12", "sampled", 12, ""),  # a list marker is stripped, not read as 1
        ("无", "new_confirmed", 0, ""),
        (42, "sampled", 42, ""),  # a number cell from Excel
        (12.0, "sampled", 12, ""),
        ("600余", "donations_value_yuan", 600, "余"),
        ("约38万", "donations_value_yuan", 380000, "约"),
        ("近2万", "donations_value_yuan", 20000, "近"),
        ("5万多斤", "donated_goods_kg", 25000, "多"),  # 1 斤 = 0.5 kg
        ("3吨", "donated_goods_kg", 3000, ""),
        ("10万元", "donations_value_yuan", 100000, ""),
    ],
)
def test_accepted_values(catalogue, raw, metric, value, qualifier):
    parsed = parse_value(raw, catalogue.by_key[metric], catalogue)
    assert parsed == ParsedValue(float(value), qualifier=qualifier)


@pytest.mark.parametrize(
    ("raw", "metric", "rule"),
    [
        ("600余", "counseling_sessions", "approximation_in_hard_metric"),
        ("约38万人次", "sampled", "approximation_in_hard_metric"),
        ("近2万个", "sampling_points", "approximation_in_hard_metric"),
        ("三万五", "sampled", "colloquial_number"),
        ("5万3", "sampled", "colloquial_number"),
        ("12,34", "sampled", "bad_thousands_separator"),
        ("1234,567", "sampled", "bad_thousands_separator"),
        ("斤", "donated_goods_kg", "unit_word_without_number"),
        ("购买了斤芋艿", "donated_goods_kg", "unit_word_without_number"),
        ("12斤", "sampled", "unit_mismatch"),
        ("abc", "sampled", "not_a_number"),
        ("12/3", "sampled", "not_a_number"),
    ],
)
def test_rejected_values_name_their_rule(catalogue, raw, metric, rule):
    with pytest.raises(ValueProblem) as problem:
        parse_value(raw, catalogue.by_key[metric], catalogue)
    assert problem.value.rule == rule


@pytest.mark.parametrize(("raw", "missing"), [("不详", "unknown"), ("—", "unknown"), ("", "blank"), (None, "blank")])
def test_unknown_and_blank_are_missing_not_zero(catalogue, raw, missing):
    parsed = parse_value(raw, catalogue.by_key["sampled"], catalogue)
    assert parsed.value is None and parsed.missing == missing


def test_negative_and_fractional_numbers_parse_for_validation_to_reject(catalogue):
    # The grammar reads them; the GX row rules reject them with a named rule (tests/unit/checks/test_rules.py).
    assert parse_value("-5", catalogue.by_key["sampled"], catalogue).value == -5
    assert parse_value("12.5", catalogue.by_key["sampled"], catalogue).value == 12.5


@pytest.mark.parametrize(
    ("value", "qualifier", "shown"),
    [(600, "余", "600余"), (380000, "约", "约380000"), (12, "", "12"), (2.5, "", "2.5"), (None, "", "—")],
)
def test_render_value_gives_back_the_qualifier(value, qualifier, shown):
    assert render_value(value, qualifier) == shown


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2022-03-19", date(2022, 3, 19)),
        ("2022/3/19", date(2022, 3, 19)),
        ("2022年3月19日", date(2022, 3, 19)),
        (44639, date(2022, 3, 19)),  # Excel serial day number
        ("44639", date(2022, 3, 19)),
        (datetime(2022, 3, 19, 0, 0), date(2022, 3, 19)),
        ("", None),
    ],
)
def test_report_dates(raw, expected):
    assert parse_report_date(raw) == expected


def test_report_date_rejects_nonsense():
    with pytest.raises(ValueError):
        parse_report_date("三月十九")
