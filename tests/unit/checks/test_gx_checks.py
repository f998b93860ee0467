"""checks.yaml compiled to Great Expectations: the expectation each rule becomes, and GX (not Python) deciding."""

from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import text
from test_rules import CHECK_CASES, DAY, checks_named

from closeout.checks.compile import compile_for_frame, pandas_violation, sql_violation, store_queries
from closeout.checks.engine import GxRunner, check_expectations, run_checks, run_store_checks
from closeout.core.catalogue import Check, load_catalogue
from closeout.core.expressions import Expression
from closeout.core.settings import load_settings
from closeout.store.database import Store

# rule: the GX expectation it compiles to on the batch frame
EXPECTED_TYPES = {
    "points_within_lanes": "ExpectColumnPairValuesAToBeGreaterThanB",
    "testing_funnel": "ExpectMulticolumnSumToEqual",
    "positive_within_tested": "ExpectColumnPairValuesAToBeGreaterThanB",
    "reclassified_within_confirmed": "ExpectColumnPairValuesAToBeGreaterThanB",
    "pending_balance": "ExpectMulticolumnSumToEqual",
    "isolation_balance": "ExpectMulticolumnSumToEqual",
    "positivity_rate": "ExpectColumnValuesToBeNull",
    "jump": "ExpectColumnValuesToBeNull",
    "stale": "ExpectColumnValuesToBeNull",
}


def check(expr: str, needs=None) -> Check:
    parsed = Expression(expr)
    return Check("c", "规则", "hard", "validate", parsed, tuple(needs or sorted(parsed.names)), "")


@pytest.fixture(scope="module")
def catalogue():
    settings = load_settings({})
    return load_catalogue(settings.catalogue_path, settings.checks_path)


@pytest.fixture(scope="module")
def runner():
    return GxRunner()


@pytest.mark.unit
@pytest.mark.parametrize(
    ("expr", "a", "b", "or_equal"),
    [("x <= y", "y", "x", True), ("x < y", "y", "x", False), ("x >= y", "x", "y", True), ("x > y", "x", "y", False)],
)
def test_an_order_of_two_names_is_a_column_pair_comparison(expr, a, b, or_equal):
    compiled = compile_for_frame(check(expr))
    assert compiled.type == "ExpectColumnPairValuesAToBeGreaterThanB"
    assert compiled.kwargs == {
        "column_A": a,
        "column_B": b,
        "or_equal": or_equal,
        "ignore_row_if": "either_value_is_missing",
    }


@pytest.mark.unit
def test_equal_names_are_a_column_pair_equality():
    assert compile_for_frame(check("x == y")).kwargs == {
        "column_A": "x",
        "column_B": "y",
        "ignore_row_if": "either_value_is_missing",
    }


@pytest.mark.unit
def test_a_linear_balance_is_a_sum_of_signed_columns():
    compiled = compile_for_frame(check("s == p + n - t + 5"))
    assert compiled.type == "ExpectMulticolumnSumToEqual"
    assert sorted(compiled.kwargs["column_list"]) == ["neg__n", "neg__p", "s", "t"]
    assert compiled.kwargs["sum_total"] == 5 and compiled.kwargs["ignore_row_if"] == "any_value_is_missing"
    assert sorted(compiled.negated) == ["n", "p"]


@pytest.mark.unit
@pytest.mark.parametrize(
    "expr",
    ["s == 2 * p", "s == p * t", "s != p", "a <= b + c", "not (a > 1 and b > 0.4 * a)", "s == p - p + t"],
)
def test_other_shapes_fall_back_to_a_row_condition_selecting_the_broken_rows(expr):
    compiled = compile_for_frame(check(expr))
    assert compiled.type == "ExpectColumnValuesToBeNull"
    assert compiled.kwargs["condition_parser"] == "pandas"
    assert compiled.kwargs["row_condition"] == pandas_violation(check(expr))


@pytest.mark.unit
def test_a_name_needed_beyond_the_expression_keeps_the_exact_fallback():
    assert compile_for_frame(check("x <= y", needs=["x", "y", "z"])).type == "ExpectColumnValuesToBeNull"


@pytest.mark.unit
def test_violation_conditions_require_every_needed_name_and_drop_a_double_negation():
    rule = check("not (t > 100 and p > 0.4 * t)", needs=["t", "p"])
    assert pandas_violation(rule) == "(t == t) and (p == p) and (t > 100 and p > 0.4 * t)"
    assert sql_violation(rule) == '"t" IS NOT NULL AND "p" IS NOT NULL AND (("t" > 100) AND ("p" > (0.4 * "t")))'
    assert sql_violation(check("a < b <= c / 2")) == (
        '"a" IS NOT NULL AND "b" IS NOT NULL AND "c" IS NOT NULL AND NOT ("a" < "b" AND "b" <= ("c" * 1.0 / 2))'
    )


@pytest.mark.unit
@pytest.mark.parametrize(
    "expr", ["a == b + c", "not (a > 1 and b > 0.4 * a)", "a != 0 and a == b and a == c", "a < b <= -c / 2 or not a"]
)
def test_sql_and_pandas_conditions_select_the_rows_python_calls_broken(expr):
    rule = check(expr)
    rows = [dict(zip("abc", v, strict=True)) for v in [(3, 1, 2), (3, 1, 1), (0, 0, 0), (5, 5, 5), (1, 2, -8)]]
    broken = [i for i, row in enumerate(rows) if not rule.expr(row)]
    frame = pd.DataFrame(rows, dtype=float)
    assert list(frame.query(pandas_violation(rule)).index) == broken
    import sqlite3

    db = sqlite3.connect(":memory:")
    frame.to_sql("t", db)
    assert [r[0] for r in db.execute(f"SELECT rowid - 1 FROM t WHERE {sql_violation(rule)}")] == broken


def test_every_rule_of_checks_yaml_compiles_to_its_expectation(catalogue):
    for rule in catalogue.checks:
        assert compile_for_frame(rule).type == EXPECTED_TYPES[rule.name], rule.name
    assert set(EXPECTED_TYPES) == {c.name for c in catalogue.checks}


@pytest.mark.parametrize("name", sorted(CHECK_CASES))
def test_the_gx_result_flags_the_failing_case_only(catalogue, runner, name):
    """The compiled suite run by GX itself: its result marks the failing row and passes the passing one."""
    checks = checks_named(catalogue, name)
    expectations, negated = check_expectations(runner.gx, checks)
    frame = pd.DataFrame([CHECK_CASES[name][0], CHECK_CASES[name][1]], dtype=float)
    for column in negated:
        frame[f"neg__{column}"] = -frame[column]
    failures = runner.failures(frame, expectations, f"rule-{name}")
    assert [(f.meta["rule"], f.indices) for f in failures] == [(name, [1])]
    assert {type(e).__name__ for e in expectations} == {EXPECTED_TYPES[name]}


@pytest.mark.parametrize("name", sorted(CHECK_CASES))
def test_run_checks_never_evaluates_an_expression_in_python(catalogue, runner, name, monkeypatch):
    def refuse(self, values):
        raise AssertionError("a check's verdict must come from GX")

    monkeypatch.setattr(Expression, "__call__", refuse)
    checks = checks_named(catalogue, name)
    wide = pd.DataFrame.from_dict({"330825": CHECK_CASES[name][0], "330802": CHECK_CASES[name][1]}, orient="index")
    names = {"330825": "龙游县", "330802": "柯城区"}
    findings = run_checks(runner, wide, checks, catalogue, DAY, names, checks[0].stage)
    assert [(f.unit_code, f.rule) for f in findings] == [("330802", name)]


def test_gx_and_python_agree_on_many_generated_rows(catalogue, runner):
    """Every rule on a frame of near-boundary rows: GX's verdicts are exactly Python's."""
    import random

    rng = random.Random(10)
    keys = sorted({n for c in catalogue.checks for n in c.needs})
    rows = {
        f"u{i}": {
            k: (rng.choice([None, 0, 1, 2, 3, 100, 101, 400, 1000]) if i % 7 == 0 else rng.randint(0, 6)) for k in keys
        }
        for i in range(300)
    }
    wide = pd.DataFrame.from_dict(rows, orient="index")
    names = {code: code for code in rows}
    for stage in ("validate", "reconcile"):
        checks = [c for c in catalogue.checks if c.stage == stage]
        findings = run_checks(runner, wide, checks, catalogue, DAY, names, stage)
        got = {(f.unit_code, f.rule, f.metric) for f in findings if f.severity != "missing"}
        expected = set()
        for code, row in rows.items():
            for rule in checks:
                values = {n: row[n] for n in rule.needs}
                if None not in values.values() and not rule.expr(values):
                    expected.add((code, rule.name, catalogue.by_key[rule.metric or rule.needs[0]].display))
        assert expected and got == expected


def store_with_history(tmp_path, values: dict, catalogue, cleared: bool = True) -> Store:
    """A SQLite store where `values` (a CHECK_CASES case) is one unit's day: today's figures, and history
    days whose figures give exactly its prev_, prev2_, mean7_ and days7_ names."""
    store = Store(f"sqlite:///{tmp_path / 'store.db'}", load_settings({}).include_dir / "sql")
    history: dict[int, dict[str, float]] = {}
    for name, value in values.items():
        if name.startswith("prev_"):
            history.setdefault(1, {})[name.removeprefix("prev_")] = value
        elif name.startswith("prev2_"):
            history.setdefault(2, {})[name.removeprefix("prev2_")] = value
    for name, days in values.items():
        if name.startswith("days7_"):
            metric = name.removeprefix("days7_")
            known = [history.get(n, {}).get(metric) for n in (1, 2)]
            rest = (values[f"mean7_{metric}"] * days - sum(v for v in known if v is not None)) / (days - 2)
            for n in range(3, days + 1):
                history.setdefault(n, {})[metric] = rest
    rows = [(DAY, name, value) for name, value in values.items() if name in catalogue.by_key]
    rows += [(DAY - timedelta(days=n), metric, value) for n, day in history.items() for metric, value in day.items()]
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO figure (report_date, unit_code, metric, value, source_sha256) VALUES (:d, '330825', :m, :v, 'x')"
            ),
            [{"d": d.isoformat(), "m": m, "v": v} for d, m, v in rows],
        )
        for n in history:
            conn.execute(
                text("INSERT INTO unit_day (report_date, unit_code, status, updated_at) VALUES (:d, '330825', :s, '')"),
                {"d": (DAY - timedelta(days=n)).isoformat(), "s": "cleared" if cleared else "break"},
            )
    return store


RECONCILE = sorted(
    name for name in CHECK_CASES if name in {"pending_balance", "isolation_balance", "positivity_rate", "jump", "stale"}
)


@pytest.mark.parametrize("case", [0, 1])
@pytest.mark.parametrize("name", RECONCILE)
def test_against_the_store_each_reconcile_rule_finds_what_it_finds_on_the_frame(
    tmp_path, catalogue, runner, name, case
):
    checks = checks_named(catalogue, name)
    assert checks[0].stage == "reconcile"
    values = CHECK_CASES[name][case]
    store = store_with_history(tmp_path, values, catalogue)
    kept: list = []
    found = run_store_checks(runner, store.engine, checks, catalogue, DAY, {"330825": "龙游县"}, kept)
    wide = pd.DataFrame.from_dict({"330825": values}, orient="index")
    expected = run_checks(runner, wide, checks, catalogue, DAY, {"330825": "龙游县"}, "reconcile")
    assert [f.line() for f in found] == [f.line() for f in expected] and len(found) == case
    (result,) = kept
    assert {r.expectation_config.type for r in result.results} == {"unexpected_rows_expectation"}
    assert [
        [row["unit_code"] for row in r.result["details"]["unexpected_rows"]] for r in result.results if not r.success
    ] == ([["330825"]] if case else [])


def test_against_the_store_history_comes_from_closed_days_only(tmp_path, catalogue, runner):
    checks = checks_named(catalogue, "pending_balance")
    store = store_with_history(tmp_path, CHECK_CASES["pending_balance"][1], catalogue, cleared=False)
    assert run_store_checks(runner, store.engine, checks, catalogue, DAY, {"330825": "龙游县"}) == []


def test_against_the_store_every_failing_unit_is_found_beyond_the_rows_gx_returns(tmp_path, catalogue, runner):
    """GX hands back at most 200 unexpected rows; a day where more units break a rule names them all."""
    store = Store(f"sqlite:///{tmp_path / 'store.db'}", load_settings({}).include_dir / "sql")
    codes = [f"9{n:05d}" for n in range(230)]
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO figure (report_date, unit_code, metric, value, source_sha256) VALUES (:d, :u, :m, :v, 'x')"
            ),
            [
                {"d": DAY.isoformat(), "u": code, "m": metric, "v": value}
                for code in codes
                for metric, value in CHECK_CASES["positivity_rate"][1].items()
            ],
        )
    kept: list = []
    names = {code: code for code in codes}
    found = run_store_checks(
        runner, store.engine, checks_named(catalogue, "positivity_rate"), catalogue, DAY, names, kept
    )
    assert [f.unit_code for f in found] == codes
    assert kept[0].results[0].result["observed_value"] == 230


def test_a_query_gx_cannot_run_stops_the_check_instead_of_passing_it(tmp_path, runner):
    store = Store(f"sqlite:///{tmp_path / 'store.db'}", load_settings({}).include_dir / "sql")
    broken = runner.gx.expectations.UnexpectedRowsExpectation(
        unexpected_rows_query="SELECT unit_code FROM {batch} f JOIN no_such_table n ON n.x = f.unit_code"
    )
    with pytest.raises(RuntimeError, match="no_such_table"):
        runner.store_failures(store.engine, [broken], "broken")


@pytest.mark.unit
def test_against_the_store_a_per_kind_rule_is_one_query_over_all_its_metrics(catalogue):
    checks = [c for c in catalogue.checks if c.stage == "reconcile"]
    queries = store_queries(checks, DAY)
    assert [(q.checks[0].name, len(q.checks), q.per_metric) for q in queries] == [
        ("pending_balance", 1, False),
        ("isolation_balance", 1, False),
        ("positivity_rate", 1, False),
        ("jump", sum(c.name == "jump" for c in checks), True),
        ("stale", sum(c.name == "stale" for c in checks), True),
    ]
    jump = queries[3].sql
    assert '"value" > (6 * "mean7_value")' in jump and "'2022-03-12'" in jump  # the 7 days before
    assert "'2022-03-18'" in queries[0].sql and "'2022-03-17'" not in queries[0].sql  # yesterday only
    assert all("{batch}" in q.sql and " JOIN " in q.sql for q in queries)
