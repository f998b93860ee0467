"""Every hard and soft rule: one passing and one failing case each, evaluated by Great Expectations."""

from datetime import date

import pandas as pd
import pytest

from closeout.checks.engine import ROW_RULES, GxRunner, run_checks
from closeout.checks.validate import validate_batch
from closeout.core.catalogue import load_catalogue
from closeout.core.registry import load_registry
from closeout.core.settings import load_settings
from closeout.intake.rows import parse_submission

DAY = date(2022, 3, 19)


@pytest.fixture(scope="module")
def catalogue():
    settings = load_settings({})
    return load_catalogue(settings.catalogue_path, settings.checks_path)


@pytest.fixture(scope="module")
def registry():
    return load_registry(load_settings({}).registry_path)


@pytest.fixture(scope="module")
def runner():
    return GxRunner()


# ---- row rules (long frame) -------------------------------------------------------------------------

# rule: (a file that passes it, a file that breaks it, the rows the break is reported on)
ROW_CASES = {
    "non_negative": ("metric,value\nsampled,5\n", "metric,value\nsampled,-5\n", [2]),
    "exact_integer": ("metric,value\nsampled,5\ndonated_goods_kg,1.5\n", "metric,value\nsampled,12.5\n", [2]),
    "duplicate_metric": ("metric,value\nsampled,5\ntested,5\n", "metric,value\nsampled,5\n采样人次,6\n", [2, 3]),
    "unit_code_mismatch": (
        "metric,value,unit_code\nsampled,5,龙游县\n",
        "metric,value,unit_code\nsampled,5,330881\n",
        [2],
    ),
    "report_date_mismatch": (
        "metric,value,report_date\nsampled,5,2022/3/19\n",
        "metric,value,report_date\nsampled,5,2022-03-18\n",
        [2],
    ),
    "subtotal_mismatch": (
        "metric,part,value\nsampled,东华,3\nsampled,湖镇,2\nsampled,合计,5\n",
        "metric,part,value\nsampled,东华,3\nsampled,湖镇,2\nsampled,合计,6\n",
        [4],
    ),
}


def completed(text: str, catalogue) -> str:
    """The case's rows, then 不详 (reported, unknown: no check applies) for every required metric the case leaves
    out, so that only the rule under test speaks."""
    header = text.splitlines()[0].split(",")
    present = {catalogue.resolve(line.split(",")[header.index("metric")]).key for line in text.splitlines()[1:]}
    filler = [
        ",".join(m.key if col == "metric" else "不详" if col == "value" else "" for col in header)
        for m in catalogue.metrics
        if m.required and m.key not in present
    ]
    return text + "".join(f"{line}\n" for line in filler)


def validated(tmp_path, catalogue, registry, runner, text, name="330825.csv", complete=True):
    path = tmp_path / name
    path.write_text(completed(text, catalogue) if complete else text, encoding="utf-8")
    sub = parse_submission(path, registry.get(path.stem), DAY, catalogue, registry)
    validate_batch([sub], catalogue, runner)
    return sub


def test_every_row_rule_has_cases():
    assert set(ROW_CASES) | {"missing_metrics"} == set(ROW_RULES)


def test_completeness_passes_when_every_required_metric_is_there_and_unknown_is_not_missing(
    tmp_path, catalogue, registry, runner
):
    sub = validated(tmp_path, catalogue, registry, runner, "metric,value\nhome_observation,不详\n")
    assert [f.line() for f in sub.findings if f.severity == "hard"] == []
    assert {(f.rule, f.severity) for f in sub.findings} == {("value_unknown", "missing")}


def test_completeness_fails_naming_every_missing_metric(tmp_path, catalogue, registry, runner):
    full = completed("metric,value\nsampled,5\n", catalogue).splitlines()
    text = "\n".join(line for line in full if not line.startswith(("volunteers,", "checkpoints,"))) + "\n"
    text = text.replace("home_observation,不详", "home_observation,")  # blank is missing too
    sub = validated(tmp_path, catalogue, registry, runner, text, complete=False)
    hard = [f for f in sub.findings if f.severity == "hard"]
    assert [(f.rule, f.stage) for f in hard] == [("missing_metrics", "validate")]
    line = hard[0].line()
    assert line.startswith("[拒收] 龙游县(330825) 文件 330825.csv 指标 ")
    for label in ("居家健康观察", "防疫卡点", "志愿者"):
        assert label in line
    assert "共3项" in line and line.endswith("[rule: missing_metrics]")
    assert "捐赠物资" not in line  # soft metrics are not required by default


def test_an_optional_unit_is_not_held_to_the_full_list(tmp_path, catalogue, registry, runner):
    sub = validated(tmp_path, catalogue, registry, runner, "metric,value\nisolation_central,327\n", "330801.csv", False)
    assert [f.rule for f in sub.findings] == []


@pytest.mark.parametrize("rule", sorted(ROW_CASES))
def test_row_rule_passes(tmp_path, catalogue, registry, runner, rule):
    sub = validated(tmp_path, catalogue, registry, runner, ROW_CASES[rule][0])
    assert [f.line() for f in sub.findings if f.severity == "hard"] == []


@pytest.mark.parametrize("rule", sorted(ROW_CASES))
def test_row_rule_fails_with_one_line(tmp_path, catalogue, registry, runner, rule):
    _, text, rows = ROW_CASES[rule]
    sub = validated(tmp_path, catalogue, registry, runner, text)
    hard = [f for f in sub.findings if f.severity == "hard"]
    assert [(f.rule, f.row) for f in hard] == [(rule, row) for row in rows]
    for finding in hard:
        line = finding.line()
        assert line.startswith(f"[拒收] 龙游县(330825) 文件 330825.csv 第{finding.row}行 指标 sampled(采样人次) 值“")
        assert line.endswith(f"[rule: {rule}]") and "\n" not in line


def test_negative_flow_line_quotes_the_value(tmp_path, catalogue, registry, runner):
    sub = validated(tmp_path, catalogue, registry, runner, "metric,value\nsampled,5\nnegative,-3\n")
    assert [f.line() for f in sub.findings if f.severity == "hard"] == [
        "[拒收] 龙游县(330825) 文件 330825.csv 第3行 指标 negative(阴性) 值“-3”："
        "不得为负数（更正请填说明，不要填负流量） [rule: non_negative]"
    ]


def test_batch_keeps_units_apart(tmp_path, catalogue, registry, runner):
    good, bad = tmp_path / "330802.csv", tmp_path / "330803.csv"
    good.write_text(completed("metric,value\nsampled,5\n", catalogue), encoding="utf-8")
    bad.write_text(completed("metric,value\nsampled,-5\n", catalogue), encoding="utf-8")
    subs = [parse_submission(p, registry.get(p.stem), DAY, catalogue, registry) for p in (good, bad)]
    validate_batch(subs, catalogue, runner)
    assert [f.unit_code for s in subs for f in s.findings if f.severity == "hard"] == ["330803"]


# ---- checks.yaml rules (wide frame) ---------------------------------------------------------------------

HISTORY = {"days7_sampled": 7, "mean7_sampled": 1000.0, "prev_sampled": 900, "prev2_sampled": 950}
CHECK_CASES = {
    "points_within_lanes": (
        {"sampling_points": 177, "sampling_lanes": 196},
        {"sampling_points": 200, "sampling_lanes": 196},
    ),
    "testing_funnel": ({"tested": 100, "negative": 98, "positive": 2}, {"tested": 100, "negative": 97, "positive": 2}),
    "positive_within_tested": ({"positive": 2, "tested": 100}, {"positive": 101, "tested": 100}),
    "reclassified_within_confirmed": (
        {"asymptomatic_to_confirmed": 3, "new_confirmed": 15},
        {"asymptomatic_to_confirmed": 4, "new_confirmed": 3},
    ),
    "pending_balance": (
        {"pending": 120, "prev_pending": 100, "sampled": 1020, "tested": 1000},
        {"pending": 121, "prev_pending": 100, "sampled": 1020, "tested": 1000},
    ),
    "isolation_balance": (
        {
            "isolation_central": 330,
            "prev_isolation_central": 327,
            "isolation_new": 10,
            "isolation_released": 5,
            "isolation_transferred": 2,
        },
        {
            "isolation_central": 340,
            "prev_isolation_central": 327,
            "isolation_new": 10,
            "isolation_released": 5,
            "isolation_transferred": 2,
        },
    ),
    "positivity_rate": ({"tested": 1000, "positive": 400}, {"tested": 1000, "positive": 401}),
    "jump": ({**HISTORY, "sampled": 6000}, {**HISTORY, "sampled": 6001}),
    "stale": (
        {**HISTORY, "sampled": 900, "prev_sampled": 900, "prev2_sampled": 901},
        {**HISTORY, "sampled": 900, "prev_sampled": 900, "prev2_sampled": 900},
    ),
}


def checks_named(catalogue, name):
    checks = [c for c in catalogue.checks if c.name == name]
    return [c for c in checks if c.metric in (None, "sampled")]


def evaluate(catalogue, runner, name, values):
    """Run one check at its own stage, as load (validate) or reconcile_day (reconcile) would."""
    checks = checks_named(catalogue, name)
    wide = pd.DataFrame.from_dict({"330825": values}, orient="index")
    return run_checks(runner, wide, checks, catalogue, DAY, {"330825": "龙游县"}, checks[0].stage)


def test_every_check_in_the_catalogue_has_cases(catalogue):
    assert {c.name for c in catalogue.checks} == set(CHECK_CASES)


@pytest.mark.parametrize("name", sorted(CHECK_CASES))
def test_check_passes(catalogue, runner, name):
    assert evaluate(catalogue, runner, name, CHECK_CASES[name][0]) == []


@pytest.mark.parametrize("name", sorted(CHECK_CASES))
def test_check_fails_with_named_severity(catalogue, runner, name):
    findings = evaluate(catalogue, runner, name, CHECK_CASES[name][1])
    check = checks_named(catalogue, name)[0]
    assert [(f.rule, f.severity, f.stage) for f in findings] == [(name, check.severity, check.stage)]
    verdict = {("hard", "validate"): "拒收", ("hard", "reconcile"): "未结清"}.get((check.severity, check.stage), "提示")
    assert findings[0].line().startswith(f"[{verdict}] 龙游县(330825) 指标 ")


def test_messages_quote_the_figures(catalogue, runner):
    (finding,) = evaluate(catalogue, runner, "testing_funnel", CHECK_CASES["testing_funnel"][1])
    assert finding.message == "已出结果100人次 ≠ 阴性97 + 阳性2"
    (finding,) = evaluate(catalogue, runner, "jump", CHECK_CASES["jump"][1])
    assert finding.message == "采样人次为6001，超过前7日均值1000的6倍"


def test_missing_figures_are_reported_as_missing_not_wrong(catalogue, runner):
    findings = evaluate(catalogue, runner, "testing_funnel", {"tested": 100, "negative": 98})
    assert [(f.severity, f.rule) for f in findings] == [("missing", "testing_funnel")]
    assert "缺少positive(阳性)" in findings[0].message


def test_missing_history_skips_the_check(catalogue, runner):
    assert evaluate(catalogue, runner, "pending_balance", {"pending": 5, "sampled": 10, "tested": 5}) == []
    assert evaluate(catalogue, runner, "jump", {"sampled": 90000, "days7_sampled": 2, "mean7_sampled": 1.0}) == []
