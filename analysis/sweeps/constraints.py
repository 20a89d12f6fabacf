"""Sweep constraints: small boolean expressions over axis values, parsed safely.

A constraint such as `pe_array.rows * pe_array.cols <= 1024` is parsed with `ast` and
checked node by node against a whitelist (numbers, strings, names and dotted names,
arithmetic, comparisons, `and` / `or` / `not`). Nothing is ever passed to `eval`: the
tree is walked by `_evaluate` below, on numpy arrays, so a whole batch of candidate
points is checked in one call.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sparsespikformer.simulator.errors import SweepSpecError

_BINARY_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE_OPS = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_UNARY_OPS = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_MAX_EXPONENT = 64  # `2 ** 10 ** 9` would hang the parser's caller; nobody needs more
_MAX_LENGTH = 500


@dataclass(frozen=True)
class Constraint:
    """One parsed constraint: its source text, the dotted names it reads, its tree."""

    text: str
    names: tuple[str, ...]
    tree: ast.Expression

    def evaluate(self, values: Mapping[str, Any]) -> np.ndarray:
        """Boolean mask (or scalar bool) for `values`: dotted name -> scalar or 1-D array.

        Arithmetic fails as in Python (`1 / 0`, an overflow): a ValueError naming the
        constraint, on arrays too, rather than an inf or NaN that silently passes or fails.
        """
        try:
            with np.errstate(divide="raise", over="raise", invalid="raise"):
                result = _evaluate(self.tree.body, values, self.text)
        except ArithmeticError as err:  # ZeroDivisionError, OverflowError, FloatingPointError
            raise SweepSpecError(f"constraint {self.text!r}: arithmetic error "
                             f"({err.__class__.__name__}: {err})") from None
        return np.asarray(result, dtype=bool)


def parse_constraint(text: str) -> Constraint:
    """Parse `text`; raise ValueError naming the offending construct if it is not allowed."""
    if not isinstance(text, str) or not text.strip():
        raise SweepSpecError("constraint must be a non-empty string")
    if len(text) > _MAX_LENGTH:
        raise SweepSpecError(f"constraint longer than {_MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise SweepSpecError(f"constraint {text!r}: syntax error ({err.msg})") from None
    names: list[str] = []
    _check_node(tree.body, text, names)
    return Constraint(text=text.strip(), names=tuple(dict.fromkeys(names)), tree=tree)


def _dotted_name(node: ast.AST) -> str | None:
    """`a.b.c` as a string when the node is a plain chain of names, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _check_node(node: ast.AST, text: str, names: list[str]) -> None:
    if isinstance(node, (ast.Name, ast.Attribute)):
        dotted = _dotted_name(node)
        if dotted is None:
            raise SweepSpecError(f"constraint {text!r}: only plain dotted names are allowed")
        names.append(dotted)
        return
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (bool, int, float, str)):
            return
        raise SweepSpecError(f"constraint {text!r}: constant {node.value!r} not allowed")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPS:
        children = [node.left, node.right]
    elif isinstance(node, ast.UnaryOp) and type(node.op) in (*_UNARY_OPS, ast.Not):
        children = [node.operand]
    elif isinstance(node, ast.BoolOp) and isinstance(node.op, (ast.And, ast.Or)):
        children = list(node.values)
    elif isinstance(node, ast.Compare) and all(type(op) in _COMPARE_OPS for op in node.ops):
        children = [node.left, *node.comparators]
    else:
        raise SweepSpecError(f"constraint {text!r}: {type(node).__name__} is not allowed "
                         "(use names, numbers, + - * / // % **, comparisons, and/or/not)")
    for child in children:
        _check_node(child, text, names)


def _evaluate(node: ast.AST, values: Mapping[str, Any], text: str) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Name, ast.Attribute)):
        name = _dotted_name(node)
        if name not in values:
            raise SweepSpecError(f"constraint {text!r}: unknown name {name!r} "
                             "(not a swept axis nor a key of the base config)")
        return values[name]
    if isinstance(node, ast.BinOp):
        left = _evaluate(node.left, values, text)
        right = _evaluate(node.right, values, text)
        if isinstance(node.op, ast.Pow) and np.any(np.abs(np.asarray(right)) > _MAX_EXPONENT):
            raise SweepSpecError(f"constraint {text!r}: exponent above {_MAX_EXPONENT}")
        return _BINARY_OPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, values, text)
        if isinstance(node.op, ast.Not):
            return np.logical_not(operand)
        return _UNARY_OPS[type(node.op)](operand)
    if isinstance(node, ast.BoolOp):
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        result = _evaluate(node.values[0], values, text)
        for child in node.values[1:]:
            result = combine(result, _evaluate(child, values, text))
        return result
    if isinstance(node, ast.Compare):
        # a < b < c means (a < b) and (b < c), as in Python
        left = _evaluate(node.left, values, text)
        result: Any = True
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(comparator, values, text)
            result = np.logical_and(result, _COMPARE_OPS[type(op)](left, right))
            left = right
        return result
    raise SweepSpecError(f"constraint {text!r}: {type(node).__name__} is not allowed")


__all__ = ["Constraint", "parse_constraint"]
