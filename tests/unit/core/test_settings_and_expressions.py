"""Settings, the report date, and the safe evaluation of check expressions."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from closeout.core.catalogue import load_catalogue
from closeout.core.clock import report_date_for
from closeout.core.expressions import Expression
from closeout.core.settings import cutoff_from_env, load_settings

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


def test_the_same_day_loop_settings_and_their_defaults():
    from closeout.core.settings import intake_cron

    defaults = load_settings({})
    assert (defaults.opening, defaults.reminders, defaults.deadline, defaults.ops_emails) == (
        "12:00",
        ("19:00", "20:30"),
        "23:30",
        (),
    )
    chosen = load_settings({"CLOSEOUT_REMINDERS": "20:30, 9:05", "CLOSEOUT_OPS_EMAIL": "a@x.invalid, b@x.invalid"})
    assert chosen.reminders == ("09:05", "20:30") and chosen.ops_emails == ("a@x.invalid", "b@x.invalid")
    assert intake_cron({}) == "*/2 12-23 * * *"
    assert intake_cron({"CLOSEOUT_OPEN": "8:00", "CLOSEOUT_DEADLINE": "00:30", "CLOSEOUT_INTAKE_EVERY": "5"}) == (
        "*/5 0-0,8-23 * * *"
    )
    for bad in ({"CLOSEOUT_DEADLINE": "24:00"}, {"CLOSEOUT_REMINDERS": "7pm"}, {"CLOSEOUT_OPEN": "noon"}):
        with pytest.raises(ValueError):
            load_settings(bad)
    with pytest.raises(ValueError):
        intake_cron({"CLOSEOUT_INTAKE_EVERY": "0"})


def test_an_intake_tick_after_midnight_still_works_for_the_day_before():
    from datetime import datetime

    from closeout.core.clock import LOCAL_TZ, intake_report_date

    assert intake_report_date(datetime(2022, 3, 20, 23, 45, tzinfo=LOCAL_TZ), "12:00").isoformat() == "2022-03-20"
    assert intake_report_date(datetime(2022, 3, 21, 0, 20, tzinfo=LOCAL_TZ), "12:00").isoformat() == "2022-03-20"
    assert intake_report_date(datetime(2022, 3, 20, 4, 0, tzinfo=ZoneInfo("UTC")), "12:00").isoformat() == "2022-03-20"


@pytest.mark.parametrize(
    ("dag_id", "conf", "logical", "run_after", "note"),
    [
        ("daily_closeout", None, datetime(2022, 3, 20, 13, 0, tzinfo=UTC), None, "统计日期 2022-03-20"),  # 21:00 cutoff
        (  # the trigger form's date decides, not the UTC clock it was triggered at
            "daily_closeout",
            {"report_date": "2022-03-20"},
            None,
            datetime(2026, 11, 29, 4, 0, tzinfo=UTC),
            "统计日期 2022-03-20（表单指定）",
        ),
        ("closeout_intake", None, datetime(2022, 3, 20, 7, 4, tzinfo=UTC), None, "统计日期 2022-03-20 · 收件 15:04"),
        ("closeout_intake", None, datetime(2022, 3, 20, 16, 10, tzinfo=UTC), None, "统计日期 2022-03-20 · 收件 00:10"),
        (
            "closeout_mark_absent",
            {"report_date": "2022-03-20", "unit": "330824"},
            None,
            None,
            "统计日期 2022-03-20 · 标记缺报 330824",
        ),
        (
            "closeout_reclose_range",
            {"from_date": "2022-03-13", "through_date": "2022-03-19", "reason": " 县里重报 "},
            None,
            datetime(2026, 11, 29, tzinfo=UTC),
            "重新结清 2022-03-13 至 2022-03-19：县里重报",
        ),
        ("daily_closeout", {"report_date": "20.3.2022"}, None, datetime(2026, 11, 29, tzinfo=UTC), None),
        ("someone_elses_dag", None, datetime(2022, 3, 20, tzinfo=UTC), None, None),
    ],
)
def test_every_closeout_run_is_noted_with_its_report_date(dag_id, conf, logical, run_after, note):
    from closeout.orchestration.airflow_glue import run_note

    assert run_note(dag_id, conf, logical, run_after) == note


def test_an_operators_own_run_note_is_kept_under_the_report_date():
    from closeout.orchestration.airflow_glue import with_run_note

    assert with_run_note(None, "统计日期 2022-03-20") == "统计日期 2022-03-20"
    assert with_run_note("重跑：衢江补报", "统计日期 2022-03-20") == "统计日期 2022-03-20\n重跑：衢江补报"
    once = with_run_note("重跑：衢江补报", "统计日期 2022-03-20")
    assert with_run_note(once, "统计日期 2022-03-20") == once  # a run started again is not noted twice


def test_signoff_settings_are_read_strictly():
    assert (load_settings({}).signoff, load_settings({}).quorum) == ("when-incomplete", 0.5)
    assert load_settings({"CLOSEOUT_SIGNOFF": "Always", "CLOSEOUT_QUORUM": "60%"}).quorum == 0.6
    for bad in ({"CLOSEOUT_SIGNOFF": "sometimes"}, {"CLOSEOUT_QUORUM": "1.5"}, {"CLOSEOUT_QUORUM": "half"}):
        with pytest.raises(ValueError, match="CLOSEOUT_"):
            load_settings(bad)
