"""Check expressions from checks.yaml, evaluated safely: arithmetic, comparisons, and/or/not over names.

The rule list is data that non-developers edit, so no attribute, call, subscript or other Python
construct is allowed: an expression is parsed once, checked against a whitelist, then evaluated by
walking its tree.
"""

from __future__ import annotations

import ast
import operator

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


class Expression:
    def __init__(self, source: str):
        self.source = source
        self.tree = ast.parse(source, mode="eval").body
        self.names = set()
        self._check(self.tree)

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And | ast.Or):
            children = node.values
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub):
            children = [node.operand]
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            children = [node.left, node.right]
        elif isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
            children = [node.left, *node.comparators]
        elif isinstance(node, ast.Name):
            self.names.add(node.id)
            return
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return
        else:
            raise ValueError(
                f"expression {self.source!r}: {type(node).__name__} is not allowed "
                "(only numbers, names, + − × ÷, comparisons, and/or/not)"
            )
        for child in children:
            self._check(child)

    def __call__(self, values: dict[str, float]) -> bool:
        return bool(self._eval(self.tree, values))

    def _eval(self, node: ast.AST, values: dict[str, float]):
        if isinstance(node, ast.BoolOp):
            results = (self._eval(v, values) for v in node.values)
            return all(results) if isinstance(node.op, ast.And) else any(results)
        if isinstance(node, ast.UnaryOp):
            operand = self._eval(node.operand, values)
            return (not operand) if isinstance(node.op, ast.Not) else -operand
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](self._eval(node.left, values), self._eval(node.right, values))
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, values)
            for op, comparator in zip(node.ops, node.comparators, strict=True):
                right = self._eval(comparator, values)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Name):
            return values[node.id]
        return node.value
