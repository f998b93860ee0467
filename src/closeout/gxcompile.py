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

Against the store (reconcile) every check is an unexpected-rows SQL query over `store_frame_query`: the
day's figures pivoted beside the closed days before, as reconcile's history has always been read.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from datetime import date, timedelta

from closeout.catalogue import Check

NEGATED = "neg__"

_PAIR = {ast.Lt: ("right", False), ast.LtE: ("right", True), ast.Gt: ("left", False), ast.GtE: ("left", True)}
_SQL_COMPARE = {ast.Eq: "=", ast.NotEq: "<>", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_SQL_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}


@dataclass(frozen=True)
class Expectation:
    type: str  # the GX class name, e.g. ExpectColumnPairValuesToBeEqual
    kwargs: dict
    negated: tuple[str, ...] = field(default=())  # columns the frame must carry with their sign flipped


def describe(check: Check) -> str:
    """What Data Docs show for the check's expectation: the rule's name and label, and its metric if per metric."""
    return f"{check.name}：{check.label}" + (f"（{check.metric}）" if check.metric else "")


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
SPAN = {"mean7_": "AVG", "days7_": "COUNT"}  # name prefix: aggregate over up to 7 earlier closed days
HISTORY_DAYS = 7


def store_frame_query(names: list[str], report_date: date, table: str = "figure") -> str:
    """One row per unit with a submitted figure on the day: each name a column, from the store's long `figure`
    table. History comes from days whose unit_day is 'cleared' only; `days7_` is 0 when there is none."""
    day = report_date.isoformat()
    first = (report_date - timedelta(days=HISTORY_DAYS)).isoformat()
    cleared = "u.status = 'cleared'"
    columns = []
    for name in names:
        prefix, metric = _split(name)
        metric = _literal(metric)
        if not prefix:
            value = f"MAX(CASE WHEN f.report_date = '{day}' AND f.metric = {metric} THEN f.value END)"
        elif prefix in HISTORY:
            back = (report_date - timedelta(days=HISTORY[prefix])).isoformat()
            value = f"MAX(CASE WHEN f.report_date = '{back}' AND {cleared} AND f.metric = {metric} THEN f.value END)"
        elif prefix == "mean7_":
            value = f"AVG(CASE WHEN f.report_date < '{day}' AND {cleared} AND f.metric = {metric} THEN f.value END)"
        else:
            value = f"COUNT(CASE WHEN f.report_date < '{day}' AND {cleared} AND f.metric = {metric} THEN 1 END)"
        columns.append(f'{value} AS "{name}"')
    metrics = ", ".join(_literal(m) for m in sorted({_split(n)[1] for n in names}))
    return (
        f"SELECT f.unit_code, {', '.join(columns)} FROM {table} f "
        f"LEFT JOIN unit_day u ON u.report_date = f.report_date AND u.unit_code = f.unit_code "
        f"WHERE f.report_date BETWEEN '{first}' AND '{day}' AND f.metric IN ({metrics}) AND f.unit_code IN "
        f"(SELECT s.unit_code FROM {table} s WHERE s.report_date = '{day}' AND s.source_sha256 <> 'derived') "
        f"GROUP BY f.unit_code"
    )


def unexpected_rows_query(check: Check, report_date: date) -> str:
    """GX's unexpected-rows query for the check against the store: the units that break it on the day."""
    frame = store_frame_query(list(check.needs), report_date, "{batch}")
    return f"SELECT unit_code FROM ({frame}) unit_figures WHERE {sql_violation(check)} ORDER BY unit_code"


def _split(name: str) -> tuple[str, str]:
    """`prev_tested` → ("prev_", "tested"); a metric of today has no prefix."""
    prefix = next((p for p in (*HISTORY, *SPAN) if name.startswith(p)), "")
    return prefix, name.removeprefix(prefix)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
