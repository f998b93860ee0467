"""Great Expectations as the check engine: one suite and one validation per batch of units, and per day.

Row rules run on the long frame (one row per reported figure). The rules of checks.yaml are compiled
(gxcompile.py) to expectations GX evaluates itself: on the batch's wide frame (one row per unit, one column
per name) at validation, and as unexpected-rows queries against the store at reconcile. Python only turns
GX's failures into the operator's one-line findings. GX is imported here only, inside the task that needs
it, never at DAG parse time.
"""

from __future__ import annotations

import logging
import math
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import date

import pandas as pd
from sqlalchemy import text

from closeout.checks.compile import NEGATED, PER_METRIC, VALUE, compile_for_frame, describe, store_queries, today_query
from closeout.core.catalogue import Catalogue, Check
from closeout.core.findings import Finding
from closeout.core.numbers import render_value

ROW_RULES = {
    "non_negative": "不得为负数（更正请填说明，不要填负流量）",
    "exact_integer": "硬性指标须为整数",
    "duplicate_metric": "同一指标重复填报",
    "unit_code_mismatch": "文件内单位代码与文件名所指单位不符",
    "report_date_mismatch": "文件内日期与报送目录日期不符",
    "subtotal_mismatch": "合计/小计行与分项之和不符",
    "missing_metrics": "缺项：必报指标未报送或空着（不详不算缺项）",
}


log = logging.getLogger(__name__)


def import_gx():
    """Great Expectations, its loggers quieted first: it logs hundreds of INFO lines while importing, which would
    bury task logs. Says in the task log whether this process had it already (a warm worker: closeout.orchestration.worker)."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    if "great_expectations" in sys.modules:
        log.info("Great Expectations: already imported in this process (warm worker or earlier task)")
        return sys.modules["great_expectations"]
    started = time.perf_counter()
    import great_expectations as gx

    log.info("Great Expectations: imported in %.1f s", time.perf_counter() - started)
    return gx


@dataclass(frozen=True)
class Failure:
    meta: dict  # the expectation's meta: which rule (and check) it stands for
    indices: list  # the frame rows it hit; against the store, the rows its query returned


class GxRunner:
    """An ephemeral GX context: suites are code, nothing is written to disk."""

    _shared: GxRunner | None = None

    @classmethod
    def shared(cls) -> GxRunner:
        """One context per process: building one costs more than most validations (each run adds and removes
        its own suite and hands the asset its own frame, so runs never see each other's)."""
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    def __init__(self) -> None:
        gx = import_gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)  # keep task logs readable
        self.source = self.context.data_sources.add_pandas("closeout")
        self._frames: dict[str, object] = {}  # suite name → batch definition of its dataframe asset
        self._store: tuple | None = None  # (URL, GX datasource, batch definition of its figure table)

    def failures(self, frame: pd.DataFrame, expectations: list, suite: str, keep: list | None = None) -> list[Failure]:
        """Run the expectations on the frame; each failure carries the frame indices it hit. `keep` collects
        GX's validation result (for Data Docs)."""
        if frame.empty or not expectations:
            return []
        result = self._run(suite, self._frame_batch(suite), expectations, {"dataframe": frame.reset_index(drop=True)})
        if keep is not None:
            keep.append(result)
        return [
            Failure(dict(item.expectation_config.meta), item.result.get("unexpected_index_list") or [])
            for item in result.results
            if not item.success
        ]

    def _frame_batch(self, suite: str):
        """The batch definition a suite's frames are validated through: one dataframe asset per suite, kept for the
        process (each run hands it its own frame), since adding and deleting an asset rewrites the context's
        whole configuration — a tenth of a second a run, paid 3 times a day per load group."""
        if suite not in self._frames:
            self._frames[suite] = self.source.add_dataframe_asset(suite).add_batch_definition_whole_dataframe(suite)
        return self._frames[suite]

    def store_failures(self, engine, expectations: list, suite: str, keep: list | None = None) -> list[Failure]:
        """Run unexpected-rows expectations against the reporting store's `figure` table (one batch, one run);
        each failure carries the rows its query returned."""
        url = engine.url.render_as_string(hide_password=False)
        if self._store is None or self._store[0] != url:
            self._forget_store()
            add = {"sqlite": self.context.data_sources.add_sqlite, "postgresql": self.context.data_sources.add_postgres}
            source = add.get(engine.dialect.name, self.context.data_sources.add_sql)("store", connection_string=url)
            figures = source.add_table_asset("figure", table_name="figure")
            self._store = (url, source, figures.add_batch_definition_whole_table("figure"))
        result = self._run(suite, self._store[2], expectations, None)
        if keep is not None:
            keep.append(result)
        failures = []
        for item in result.results:
            if item.success:
                continue
            rows = item.result["details"]["unexpected_rows"]
            if item.result["observed_value"] > len(rows):  # GX returns at most 200 rows: read the rest the same way
                query = item.expectation_config.kwargs["unexpected_rows_query"].format(batch="figure")
                with engine.connect() as conn:
                    rows = [dict(r._mapping) for r in conn.execute(text(query))]
            failures.append(Failure(dict(item.expectation_config.meta), rows))
        return failures

    def _forget_store(self) -> None:
        """One store per process in production; tests move from store to store, so let go of the last one's
        connections (GX keeps its own engine)."""
        if self._store is not None:
            self._store[1].get_execution_engine().close()  # validations run on this one's own engine
            self._store[1].get_engine().dispose()
            self.context.data_sources.delete("store")
            self._store = None

    def _run(self, name: str, batch_definition, expectations: list, batch_parameters: dict | None):
        """One validation; its suite lives only for the run (runs are sequential, so a name is never taken)."""
        suite = self.context.suites.add(self.gx.ExpectationSuite(name=name, expectations=expectations))
        definition = self.gx.ValidationDefinition(
            name=f"{name}-{uuid.uuid4().hex[:12]}", data=batch_definition, suite=suite
        )
        try:
            result = definition.run(batch_parameters=batch_parameters, result_format={"result_format": "COMPLETE"})
        finally:
            self.context.suites.delete(name)
            if definition.id:  # run() stored it: drop it, or a long-lived process piles them up
                store = self.context.validation_definition_store
                store.remove_key(store.get_key(name=definition.name, id=definition.id))
        for item in result.results:
            info = item.exception_info or {}  # GX nests it per metric when a metric failed to compute
            raised = [v for v in (info, *info.values()) if isinstance(v, dict) and v.get("raised_exception")]
            if raised:
                raise RuntimeError(
                    f"GX expectation {item.expectation_config.type} failed to run: {raised[0].get('exception_message')}"
                )
        return result


def row_expectations(gx) -> list:
    e = gx.expectations
    return [
        e.ExpectColumnValuesToBeBetween(column="value", min_value=0, meta={"rule": "non_negative"}),
        e.ExpectColumnValuesToBeBetween(
            column="fraction",
            min_value=0,
            max_value=0,
            row_condition='severity=="hard"',
            condition_parser="pandas",
            meta={"rule": "exact_integer"},
        ),
        e.ExpectCompoundColumnsToBeUnique(
            column_list=["unit_code", "metric", "part"], meta={"rule": "duplicate_metric"}
        ),
        e.ExpectColumnPairValuesToBeEqual(
            column_A="declared_unit",
            column_B="unit_code",
            ignore_row_if="either_value_is_missing",
            meta={"rule": "unit_code_mismatch"},
        ),
        e.ExpectColumnPairValuesToBeEqual(
            column_A="declared_date",
            column_B="report_date",
            ignore_row_if="either_value_is_missing",
            meta={"rule": "report_date_mismatch"},
        ),
        e.ExpectColumnPairValuesToBeEqual(
            column_A="value",
            column_B="parts_sum",
            ignore_row_if="either_value_is_missing",
            meta={"rule": "subtotal_mismatch"},
        ),
    ]


def completeness_expectations(gx) -> list:
    """One row per (unit, required metric): it must have been reported."""
    return [
        gx.expectations.ExpectColumnValuesToBeInSet(
            column="reported", value_set=[True], meta={"rule": "missing_metrics"}
        )
    ]


def check_expectations(gx, checks: list[Check]) -> tuple[list, list[str]]:
    """The checks compiled to GX expectations (meta: the check's position), and the columns to negate."""
    expectations, negated = [], []
    for position, check in enumerate(checks):
        compiled = compile_for_frame(check)
        expectations.append(
            getattr(gx.expectations, compiled.type)(
                **compiled.kwargs,
                description=describe(check),
                meta={"rule": check.name, "metric": check.metric or "", "check": position},
            )
        )
        negated += [n for n in compiled.negated if n not in negated]
    return expectations, negated


def format_number(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    value = float(value)
    return render_value(value) if value.is_integer() else f"{value:.1f}"


def run_checks(
    runner: GxRunner,
    wide: pd.DataFrame,
    checks: list[Check],
    catalogue: Catalogue,
    report_date: date,
    unit_names: dict[str, str],
    stage: str,
    keep: list | None = None,
) -> list[Finding]:
    """Evaluate checks on the wide frame (index: unit code) with the expectations they compile to, in one GX
    run for the whole frame. Missing today ≠ wrong; missing history: skipped (the expectations skip rows
    where a name is missing)."""
    findings = missing_findings(wide, checks, catalogue, report_date, unit_names, stage)
    names = sorted({name for check in checks for name in check.needs})
    frame = wide.reindex(columns=names).astype(float).reset_index(drop=True)
    expectations, negated = check_expectations(runner.gx, checks)
    for name in negated:
        frame[NEGATED + name] = -frame[name]
    units = list(wide.index)
    failed = runner.failures(frame, expectations, f"{stage}-checks", keep)
    for failure in sorted(failed, key=lambda f: f.meta["check"]):
        check = checks[failure.meta["check"]]
        for index in sorted(failure.indices):
            unit_code = units[index]
            row = wide.loc[unit_code]
            findings.append(_check_finding(check, row, catalogue, report_date, unit_code, unit_names[unit_code], stage))
    return findings


def run_store_checks(
    runner: GxRunner,
    engine,
    checks: list[Check],
    catalogue: Catalogue,
    report_date: date,
    unit_names: dict[str, str],
    keep: list | None = None,
) -> list[Finding]:
    """The reconcile checks as GX unexpected-rows queries against the store (today's figures beside the closed
    days before), one GX run for the day; the rows GX returns carry the figures the messages quote."""
    today_names = sorted({name for check in checks if check.metric is None for name in check.today_names})
    with engine.connect() as conn:
        today = pd.read_sql(text(today_query(today_names, report_date)), conn, index_col="unit_code")
    today = today.reindex([code for code in unit_names if code in today.index])  # registry order, as before
    if today.index.empty:  # no unit sent a file that day
        return []
    findings = missing_findings(today, checks, catalogue, report_date, unit_names, "reconcile")
    queries = store_queries(checks, report_date)
    expectations = [
        runner.gx.expectations.UnexpectedRowsExpectation(
            unexpected_rows_query=query.sql,
            description=describe(query.checks[0], metric=not query.per_metric),
            meta={"rule": query.checks[0].name, "query": position},
        )
        for position, query in enumerate(queries)
    ]
    hits: dict[int, dict[str, dict]] = {}  # check position → unit → the figures its message quotes
    position = {id(check): n for n, check in enumerate(checks)}
    for failure in runner.store_failures(engine, expectations, "reconcile-checks", keep):
        query = queries[failure.meta["query"]]
        by_metric = {check.metric: check for check in query.checks}
        for row in failure.indices:
            check = by_metric[row["metric"]] if query.per_metric else query.checks[0]
            figures = {name.replace(VALUE, check.metric): row[name] for name in PER_METRIC} if query.per_metric else row
            hits.setdefault(position[id(check)], {})[row["unit_code"]] = figures
    for n in sorted(hits):
        check = checks[n]
        for unit_code in (code for code in today.index if code in hits[n]):
            row = hits[n][unit_code]
            findings.append(
                _check_finding(check, row, catalogue, report_date, unit_code, unit_names[unit_code], "reconcile")
            )
    return findings


def missing_findings(
    wide: pd.DataFrame,
    checks: list[Check],
    catalogue: Catalogue,
    report_date: date,
    unit_names: dict[str, str],
    stage: str,
) -> list[Finding]:
    """A check whose unit sent some of today's figures it needs but not all: "缺少…，无法核验" (never "wrong")."""
    findings = []
    for check in checks:
        if check.metric is not None:
            continue
        today = list(check.today_names)
        absent = wide.reindex(columns=today).isna()
        for unit_code, row in absent[absent.any(axis=1) & ~absent.all(axis=1)].iterrows():
            labels = "、".join(catalogue.by_key[n].display for n in today if row[n] and n in catalogue.by_key)
            findings.append(
                Finding(
                    report_date,
                    unit_code,
                    unit_names[unit_code],
                    "missing",
                    stage,
                    check.name,
                    f"缺少{labels}，无法核验“{check.label}”",
                )
            )
    return findings


def _check_finding(check, row, catalogue, report_date, unit_code, unit_name, stage) -> Finding:
    """The failing check's message, filled with the unit's figures (per-metric checks: label/value/prev/...)."""
    if check.metric:
        metric = catalogue.by_key[check.metric]
        fields = {"label": metric.label}
        for name, column in (
            ("value", metric.key),
            ("prev", f"prev_{metric.key}"),
            ("mean7", f"mean7_{metric.key}"),
            ("days7", f"days7_{metric.key}"),
        ):
            fields[name] = format_number(row.get(column))
        shown = fields["value"]
    else:
        metric = catalogue.by_key.get(check.needs[0])
        fields = {name: format_number(row.get(name)) for name in check.needs}
        shown = fields[check.needs[0]]
    return Finding(
        report_date,
        unit_code,
        unit_name,
        check.severity,
        stage,
        check.name,
        check.message.format(**fields),
        metric=metric.display if metric else "",
        value=shown,
    )
