"""checks.yaml compiled to Great Expectations: each check becomes one expectation that GX evaluates.

Pure: no GX or pandas import here (the DAG and the planner import the catalogue, not this). A check
compiles to an `Expectation` (a GX expectation's class name and arguments), built by `checks.py`:

- `a <= b`, `a < b`, `a >= b`, `a > b` on two names: a column-pair comparison;
- `a == b` on two names: a column-pair equality;
- a linear equality with coefficients ±1 (`tested == negative + positive`): a multicolumn sum that must
  be the constant, over the columns with the sign they carry (a minus-signed one as `neg__<name>`; exact
  for whole numbers, which balances are — fractions could differ from Python's sum in the last bit);
- anything else: a pandas row condition selecting the rows where every name is present and the
  expression is false, none of which may exist.

Against the store (reconcile) every check is an unexpected-rows SQL query (`store_queries`) over the day's
figures pivoted beside the closed days before, as reconcile's history has always been read; a per_kind rule
is one query over all its metrics.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from datetime import date, timedelta

from closeout.core.catalogue import Check

NEGATED = "neg__"

_PAIR = {ast.Lt: ("right", False), ast.LtE: ("right", True), ast.Gt: ("left", False), ast.GtE: ("left", True)}
_SQL_COMPARE = {ast.Eq: "=", ast.NotEq: "<>", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_SQL_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}


@dataclass(frozen=True)
class Expectation:
    type: str  # the GX class name, e.g. ExpectColumnPairValuesToBeEqual
    kwargs: dict
    negated: tuple[str, ...] = field(default=())  # columns the frame must carry with their sign flipped


def describe(check: Check, metric: bool = True) -> str:
    """What Data Docs show for the check's expectation: the rule's name and label, and its metric if per metric."""
    return f"{check.name}：{check.label}" + (f"（{check.metric}）" if check.metric and metric else "")


def compile_for_frame(check: Check) -> Expectation:
    """The expectation that flags exactly the rows (units) where the check fails and every name it needs is there."""
    tree = check.expr.tree
    exact = set(check.needs) == check.expr.names  # else the native shapes would not skip a missing extra name
    if exact and isinstance(tree, ast.Compare) and len(tree.ops) == 1:
        left, op, right = tree.left, tree.ops[0], tree.comparators[0]
        if isinstance(left, ast.Name) and isinstance(right, ast.Name):
            if isinstance(op, ast.Eq):
                return Expectation(
                    "ExpectColumnPairValuesToBeEqual",
                    {"column_A": left.id, "column_B": right.id, "ignore_row_if": "either_value_is_missing"},
                )
            if type(op) in _PAIR:
                greater, or_equal = _PAIR[type(op)]
                a, b = (left, right) if greater == "left" else (right, left)
                return Expectation(
                    "ExpectColumnPairValuesAToBeGreaterThanB",
                    {
                        "column_A": a.id,
                        "column_B": b.id,
                        "or_equal": or_equal,
                        "ignore_row_if": "either_value_is_missing",
                    },
                )
        if isinstance(op, ast.Eq):
            terms = _linear(ast.BinOp(left, ast.Sub(), right))
            if terms is not None:
                coefficients, constant = terms
                if (
                    len(coefficients) > 1
                    and set(coefficients) == check.expr.names
                    and set(coefficients.values()) <= {1, -1}
                ):
                    columns = [name if c == 1 else NEGATED + name for name, c in coefficients.items()]
                    return Expectation(
                        "ExpectMulticolumnSumToEqual",
                        {"column_list": columns, "sum_total": -constant, "ignore_row_if": "any_value_is_missing"},
                        negated=tuple(name for name, c in coefficients.items() if c == -1),
                    )
    return Expectation(
        "ExpectColumnValuesToBeNull",  # every row the condition selects is one that breaks the check
        {"column": check.needs[0], "row_condition": pandas_violation(check), "condition_parser": "pandas"},
    )


def pandas_violation(check: Check) -> str:
    """A pandas query selecting the rows that break the check (NaN ≠ NaN: `x == x` means x is present)."""
    present = " and ".join(f"({name} == {name})" for name in check.needs)
    broken, negate = _broken(check.expr.tree)
    return f"{present} and {'not ' if negate else ''}({ast.unparse(broken)})"


def sql_violation(check: Check) -> str:
    """A SQL condition (SQLite and PostgreSQL) selecting the rows that break the check."""
    present = " AND ".join(f'"{name}" IS NOT NULL' for name in check.needs)
    broken, negate = _broken(check.expr.tree)
    return f"{present} AND {'NOT ' if negate else ''}{sql_expression(broken)}"


def _broken(tree: ast.AST) -> tuple[ast.AST, bool]:
    """What a row breaking `tree` satisfies: `X` for a rule `not X` (reads better in Data Docs), else `not tree`."""
    tree = _condition(tree)
    if isinstance(tree, ast.UnaryOp) and isinstance(tree.op, ast.Not):
        return tree.operand, False
    return tree, True


def _condition(node: ast.AST) -> ast.AST:
    """The node as a condition: a number where a truth value is expected is true when non-zero, as in Python
    (pandas cannot negate a float and PostgreSQL no number)."""
    if isinstance(node, ast.BoolOp):
        return ast.BoolOp(node.op, [_condition(v) for v in node.values])
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return ast.UnaryOp(ast.Not(), _condition(node.operand))
    if isinstance(node, ast.Compare):
        return node
    return ast.Compare(node, [ast.NotEq()], [ast.Constant(0)])


def sql_expression(node: ast.AST) -> str:
    if isinstance(node, ast.BoolOp):
        joiner = " AND " if isinstance(node.op, ast.And) else " OR "
        return "(" + joiner.join(sql_expression(v) for v in node.values) + ")"
    if isinstance(node, ast.UnaryOp):
        word = "NOT " if isinstance(node.op, ast.Not) else "-"
        return f"({word}{sql_expression(node.operand)})"
    if isinstance(node, ast.BinOp):
        left, right = sql_expression(node.left), sql_expression(node.right)
        if isinstance(node.op, ast.Div):  # counts are integers in SQL; Python divides as floats
            return f"({left} * 1.0 / {right})"
        return f"({left} {_SQL_BINARY[type(node.op)]} {right})"
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        parts = [
            f"{sql_expression(a)} {_SQL_COMPARE[type(op)]} {sql_expression(b)}"
            for a, op, b in zip(operands, node.ops, operands[1:], strict=False)
        ]
        return "(" + " AND ".join(parts) + ")"
    if isinstance(node, ast.Name):
        return f'"{node.id}"'
    return repr(node.value)


def _linear(node: ast.AST) -> tuple[dict[str, float], float] | None:
    """The expression as {name: coefficient} + constant, or None when it is not linear in its names."""
    if isinstance(node, ast.Name):
        return {node.id: 1}, 0
    if isinstance(node, ast.Constant):
        return {}, node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _linear(node.operand)
        return None if inner is None else _scaled(inner, -1)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
        left, right = _linear(node.left), _linear(node.right)
        if left is None or right is None:
            return None
        sign = 1 if isinstance(node.op, ast.Add) else -1
        coefficients = dict(left[0])
        for name, c in right[0].items():
            coefficients[name] = coefficients.get(name, 0) + sign * c
        return {n: c for n, c in coefficients.items() if c != 0}, left[1] + sign * right[1]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for factor, other in ((node.left, node.right), (node.right, node.left)):
            if isinstance(factor, ast.Constant):
                inner = _linear(other)
                return None if inner is None else _scaled(inner, factor.value)
    return None


def _scaled(terms: tuple[dict[str, float], float], factor: float) -> tuple[dict[str, float], float]:
    return {n: c * factor for n, c in terms[0].items()}, terms[1] * factor


HISTORY = {"prev_": 1, "prev2_": 2}  # name prefix: how many days back (one closed day)
SPAN = ("mean7_", "days7_")  # name prefix: mean and count over up to 7 earlier closed days
HISTORY_DAYS = 7
VALUE = "value"  # in a per-metric query, the metric's own figure; prev_value, mean7_value… its history
PER_METRIC = (VALUE, "prev_value", "prev2_value", "mean7_value", "days7_value")


@dataclass(frozen=True)
class StoreQuery:
    """One unexpected-rows query against the store, for one check or for every metric of a per_kind rule."""

    checks: tuple[Check, ...]
    sql: str  # with GX's {batch} for the figure table
    per_metric: bool  # rows are (unit, metric) with columns value, prev_value…; else a row per unit


def store_queries(checks: list[Check], report_date: date) -> list[StoreQuery]:
    """The checks as unexpected-rows queries, in check order. A per_kind rule is one query over all its metrics
    (long form: a row per unit and metric), so a national day runs a handful of queries, not one per metric."""
    groups: dict[tuple, list[Check]] = {}
    for position, check in enumerate(checks):
        generic = _generic(check) if check.metric else None
        key = (check.name, sql_violation(generic)) if generic else (position,)
        groups.setdefault(key, []).append(check)
    queries = []
    for key, members in groups.items():
        if len(key) == 1:
            check = members[0]
            names = list(dict.fromkeys([*check.needs, *_quoted(check)]))
            frame = _pivot(names, report_date, "{batch}", by_metric=None)
            sql = f"SELECT * FROM ({frame}) unit_figures WHERE {sql_violation(check)} ORDER BY unit_code"
            queries.append(StoreQuery((check,), sql, per_metric=False))
        else:
            frame = _pivot(list(PER_METRIC), report_date, "{batch}", by_metric=[c.metric for c in members])
            sql = f"SELECT * FROM ({frame}) unit_figures WHERE {key[1]} ORDER BY unit_code, metric"
            queries.append(StoreQuery(tuple(members), sql, per_metric=True))
    return queries


def today_query(names: list[str], report_date: date, table: str = "figure") -> str:
    """Today's figures of the units with a submitted figure on the day, a column per name (missing: NULL)."""
    if not names:
        day = report_date.isoformat()
        return f"SELECT DISTINCT unit_code FROM {table} WHERE report_date = '{day}' AND source_sha256 <> 'derived'"
    return _pivot(names, report_date, table, by_metric=None)


def _quoted(check: Check) -> list[str]:
    """The names a per-metric check's message quotes besides those it needs."""
    m = check.metric
    return [m, f"prev_{m}", f"mean7_{m}", f"days7_{m}"] if m else []


def _generic(check: Check) -> Check | None:
    """A per-metric check with its metric's names as value, prev_value…; None when it names another metric
    (then it keeps a query of its own)."""
    renamed = {}
    for name in check.needs:
        prefix, metric = _split(name)
        if metric != check.metric:
            return None
        renamed[name] = prefix + VALUE
    tree = ast.parse(check.expr.source, mode="eval")
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            node.id = renamed[node.id]
    source = ast.unparse(tree)
    return Check(
        check.name, check.label, check.severity, check.stage, type(check.expr)(source), tuple(renamed.values()), ""
    )


def _pivot(names: list[str], report_date: date, table: str, by_metric: list[str] | None) -> str:
    """Figures of the units with a submitted figure on the day, from the long `figure` table: a row per unit
    (by_metric None: a column per name) or per unit and metric of `by_metric` (columns value, prev_value…).
    History comes only from days whose unit_day is 'cleared'; `days7_` counts them (0 when none). Only the days
    the names need are read."""
    day = report_date.isoformat()
    back = max((HISTORY_DAYS if p in SPAN else HISTORY.get(p, 0)) for p, _ in map(_split, names))
    first = (report_date - timedelta(days=back)).isoformat()
    cleared = "u.status = 'cleared'"
    selected = []
    for name in names:
        prefix, metric = _split(name)
        which = "" if by_metric else f" AND f.metric = {_literal(metric)}"
        if not prefix:
            value = f"MAX(CASE WHEN f.report_date = '{day}'{which} THEN f.value END)"
        elif prefix in HISTORY:
            earlier = (report_date - timedelta(days=HISTORY[prefix])).isoformat()
            value = f"MAX(CASE WHEN f.report_date = '{earlier}' AND {cleared}{which} THEN f.value END)"
        elif prefix == "mean7_":
            value = f"AVG(CASE WHEN f.report_date < '{day}' AND {cleared}{which} THEN f.value END)"
        else:
            value = f"COUNT(CASE WHEN f.report_date < '{day}' AND {cleared}{which} THEN 1 END)"
        selected.append(f'{value} AS "{name}"')
    metrics = by_metric or sorted({_split(n)[1] for n in names})
    keys = "f.unit_code, f.metric" if by_metric else "f.unit_code"
    # Always joined, even with no history to read: GX substitutes an unaliased "({batch})" only into a query
    # that joins (else it adds an alias of its own, which "{batch} f" would break).
    return (
        f"SELECT {keys}, {', '.join(selected)} FROM {table} f "
        f"LEFT JOIN unit_day u ON u.report_date = f.report_date AND u.unit_code = f.unit_code "
        f"WHERE f.report_date BETWEEN '{first}' AND '{day}' AND f.metric IN ({', '.join(map(_literal, metrics))}) "
        f"AND f.unit_code IN "
        f"(SELECT s.unit_code FROM {table} s WHERE s.report_date = '{day}' AND s.source_sha256 <> 'derived') "
        f"GROUP BY {keys}"
    )


def _split(name: str) -> tuple[str, str]:
    """`prev_tested` → ("prev_", "tested"); a metric of today has no prefix."""
    prefix = next((p for p in (*HISTORY, *SPAN) if name.startswith(p)), "")
    return prefix, name.removeprefix(prefix)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
