"""Settings, the report date, and the safe evaluation of check expressions."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from closeout.catalogue import load_catalogue
from closeout.expressions import Expression
from closeout.settings import cutoff_from_env, load_settings, report_date_for

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("logical", "run_after", "expected"),
    [
        (datetime(2022, 3, 19, 13, 0, tzinfo=UTC), None, date(2022, 3, 19)),  # the 21:00 scheduled run
        (datetime(2022, 3, 19, 0, 0, tzinfo=UTC), None, date(2022, 3, 19)),  # `airflow dags test … 2022-03-19`
        (datetime(2022, 3, 19, 16, 30, tzinfo=UTC), None, date(2022, 3, 20)),  # after local midnight
        (datetime(2022, 3, 19, 23, 59, tzinfo=SHANGHAI), None, date(2022, 3, 19)),
        (None, datetime(2022, 3, 19, 14, 0, tzinfo=UTC), date(2022, 3, 19)),  # triggered without a date
    ],
)
def test_report_date_is_the_local_day_of_the_run(logical, run_after, expected):
    assert report_date_for(logical, run_after) == expected


def test_report_date_needs_an_aware_datetime():
    with pytest.raises(ValueError):
        report_date_for(datetime(2022, 3, 19, 21, 0))
    with pytest.raises(ValueError):
        report_date_for(None, None)


def test_cutoff_setting():
    assert cutoff_from_env({}) == "21:00"
    assert cutoff_from_env({"CLOSEOUT_CUTOFF": "9:05"}) == "09:05"
    for bad in ("25:00", "21", "nine"):
        with pytest.raises(ValueError, match="CLOSEOUT_CUTOFF"):
            cutoff_from_env({"CLOSEOUT_CUTOFF": bad})


def test_settings_defaults_and_overrides(tmp_path):
    defaults = load_settings({})
    assert defaults.db_url.startswith("sqlite:///") and defaults.db_url.endswith("data/closeout.db")
    assert defaults.registry_path.name == "quzhou.yaml"
    custom = load_settings({"CLOSEOUT_DATA": str(tmp_path), "CLOSEOUT_RECIPIENTS": " a@x.invalid, ,b@x.invalid "})
    assert custom.inbox == tmp_path / "inbox" and custom.archive_dir == tmp_path / "archive"
    assert custom.recipients == ("a@x.invalid", "b@x.invalid")


def test_expressions_evaluate_arithmetic_and_logic():
    expression = Expression("not (tested > 100 and positive > 0.4 * tested)")
    assert expression.names == {"tested", "positive"}
    assert expression({"tested": 1000, "positive": 400}) is True
    assert expression({"tested": 1000, "positive": 401}) is False
    assert Expression("a == b + c - d")({"a": 5, "b": 3, "c": 4, "d": 2}) is True
    assert Expression("0 <= a < b")({"a": 1, "b": 2}) is True


@pytest.mark.parametrize("source", ["().__class__.__base__", "open('x')", "a[0]", "lambda: 1", "'s' == a", "a ** 2"])
def test_expressions_refuse_anything_but_arithmetic(source):
    with pytest.raises(ValueError, match="is not allowed"):
        Expression(source)


@pytest.mark.parametrize(
    ("name", "expr", "needs"),
    [
        ("evil", "().__class__.__base__.__subclasses__()", "[]"),  # code, not arithmetic
        ("sloppy", "tested >= positive", "[tested]"),  # uses a name it does not declare
    ],
)
def test_a_bad_check_is_refused_when_the_catalogue_loads(tmp_path, name, expr, needs):
    rules = tmp_path / "checks.yaml"
    rules.write_text(
        f"checks:\n  - {{name: {name}, label: x, severity: hard, stage: validate, message: x,\n"
        f'     expr: "{expr}", needs: {needs}}}\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=f"{name}|not allowed"):
        load_catalogue(load_settings({}).catalogue_path, rules)
