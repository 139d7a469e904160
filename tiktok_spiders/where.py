"""``--where``: expressions over a table's columns, and nothing else.

A selection copied from a colleague's message or a notebook must not be able to run
code, so it is not handed to pandas' ``query`` (whose ``@`` reaches any module, and whose
attribute access reaches ``__class__``).  It is parsed here as a Python expression and
only these are evaluated, over the table's columns:

- column names, and literals: numbers, strings, ``True``, ``False``, ``None``, lists of them;
- comparisons (``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, chained), ``in`` / ``not in`` a list;
- ``and``, ``or``, ``not`` (and pandas' ``&``, ``|``, ``~``), arithmetic on numbers;
- ``@has(column, value)``: whether a list column holds a value;
- ``column.isin([...])``, ``column.isna()``, ``column.notna()``, and the text methods
  ``column.str.contains / startswith / endswith / lower / upper / len`` (``contains`` matches
  its text as written, not as a regular expression, whose worst cases run for hours).

Anything else — another ``@`` name, another call, an attribute, a name that is no column —
is a :class:`WhereError` naming it, found before any file is written.  Times compare with
UTC date strings (``create_time >= '2024-02-01'``).
"""

from __future__ import annotations

import ast
import io
import itertools
import operator
import tokenize
from collections.abc import Callable
from typing import Any

import pandas as pd


class WhereError(ValueError):
    """An expression that is not in the language: said in one line."""


HELPERS = ("has",)
COLUMN_METHODS = frozenset({"isin", "isna", "notna"})
TEXT_METHODS = frozenset({"contains", "startswith", "endswith", "lower", "upper", "len"})
COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
ARITHMETIC: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
LOGIC: dict[type, Callable[[Any, Any], Any]] = {ast.BitAnd: operator.and_, ast.BitOr: operator.or_}


def has(column: pd.Series, value: Any) -> pd.Series:
    """Whether each row's list holds ``value``: ``--where "@has(hashtag_names, 'climate')"``."""
    return column.map(lambda values: isinstance(values, list) and value in values).astype(bool)


class Where:
    """A parsed ``--where`` expression, evaluated on each chunk of a table."""

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            self.tree = ast.parse(_without_at(text.strip()), mode="eval").body
        except SyntaxError as error:
            raise WhereError(f"not an expression ({error.msg})") from None
        self._check(self.tree)

    # -- what the language holds, checked before any data is read -----------------------------

    def _check(self, node: ast.AST) -> None:
        match node:
            case ast.BoolOp(values=values):
                for value in values:
                    self._check(value)
            case ast.UnaryOp(op=ast.Not() | ast.Invert() | ast.USub() | ast.UAdd(), operand=operand):
                self._check(operand)
            case ast.BinOp(op=op, left=left, right=right) if type(op) in ARITHMETIC or type(op) in LOGIC:
                self._check(left)
                self._check(right)
            case ast.Compare(left=left, ops=ops, comparators=comparators):
                for comparison in ops:
                    if type(comparison) not in COMPARE and not isinstance(comparison, ast.In | ast.NotIn):
                        raise WhereError(f"the comparison {type(comparison).__name__} is not allowed")
                for part in (left, *comparators):
                    self._check(part)
            case ast.Name(id=name):
                if name in HELPERS:
                    raise WhereError(f"@{name} is called as @{name}(column, value)")
            case ast.Constant(value=value):
                if not isinstance(value, str | int | float | bool | type(None)):
                    raise WhereError(f"the literal {value!r} is not allowed")
            case ast.List(elts=elements) | ast.Tuple(elts=elements):
                for element in elements:
                    if not isinstance(element, ast.Constant):
                        raise WhereError("a list holds literals only")
                    self._check(element)
            case ast.Call(func=func, args=args, keywords=keywords):
                if keywords:
                    raise WhereError("calls take no keyword arguments here")
                self._check_call(func, args)
            case _:
                raise WhereError(f"{_describe(node)} is not allowed in --where")

    def _check_call(self, func: ast.AST, args: list[ast.expr]) -> None:
        if isinstance(func, ast.Name) and func.id in HELPERS:
            if len(args) != 2 or not isinstance(args[0], ast.Name):
                raise WhereError("@has takes a column and a value: @has(hashtag_names, 'climate')")
            self._check(args[1])
            return
        if isinstance(func, ast.Attribute):
            owner = func.value
            if func.attr in COLUMN_METHODS and isinstance(owner, ast.Name):
                for arg in args:
                    self._check(arg)
                return
            text = isinstance(owner, ast.Attribute) and owner.attr == "str" and isinstance(owner.value, ast.Name)
            if text and func.attr in TEXT_METHODS:
                for arg in args:
                    if not isinstance(arg, ast.Constant):
                        raise WhereError(f".str.{func.attr} takes literals only")
                    self._check(arg)
                return
            raise WhereError(f"the method {func.attr!r} is not allowed (allowed: {_allowed_methods()})")
        raise WhereError(f"{_describe(func)} cannot be called (allowed: @has, {_allowed_methods()})")

    # -- evaluation ---------------------------------------------------------------------------

    def mask(self, frame: pd.DataFrame) -> pd.Series:
        """Which rows of ``frame`` the expression keeps."""
        view = frame.assign(
            **{
                column: frame[column].dt.tz_convert("UTC").dt.tz_localize(None)
                for column in frame.columns
                if isinstance(frame[column].dtype, pd.DatetimeTZDtype)
            }
        )
        result = self._eval(self.tree, view)
        if not isinstance(result, pd.Series) or not (
            pd.api.types.is_bool_dtype(result.dtype) or result.dtype == object
        ):
            raise WhereError("the expression does not say true or false for each row")
        return result.fillna(False).astype(bool)

    def _column(self, name: str, frame: pd.DataFrame) -> pd.Series:
        if name not in frame.columns:
            raise WhereError(f"no column {name!r} (columns: {', '.join(frame.columns)})")
        return frame[name]

    def _eval(self, node: ast.AST, frame: pd.DataFrame) -> Any:
        match node:
            case ast.Constant(value=value):
                return value
            case ast.List(elts=elements) | ast.Tuple(elts=elements):
                return [self._eval(element, frame) for element in elements]
            case ast.Name(id="True" | "False" | "None" as name):
                return {"True": True, "False": False, "None": None}[name]
            case ast.Name(id=name):
                return self._column(name, frame)
            case ast.BoolOp(op=op, values=values):
                results = [_as_mask(self._eval(value, frame), frame) for value in values]
                combine = operator.and_ if isinstance(op, ast.And) else operator.or_
                total = results[0]
                for result in results[1:]:
                    total = combine(total, result)
                return total
            case ast.UnaryOp(op=ast.Not() | ast.Invert(), operand=operand):
                return ~_as_mask(self._eval(operand, frame), frame)
            case ast.UnaryOp(op=ast.USub(), operand=operand):
                return -self._eval(operand, frame)
            case ast.UnaryOp(op=ast.UAdd(), operand=operand):
                return self._eval(operand, frame)
            case ast.BinOp(op=op, left=left, right=right) if type(op) in LOGIC:
                return LOGIC[type(op)](
                    _as_mask(self._eval(left, frame), frame), _as_mask(self._eval(right, frame), frame)
                )
            case ast.BinOp(op=op, left=left, right=right):
                return ARITHMETIC[type(op)](self._eval(left, frame), self._eval(right, frame))
            case ast.Compare(left=left, ops=ops, comparators=comparators):
                total = None
                current = self._eval(left, frame)
                for comparison, comparator in zip(ops, comparators, strict=True):
                    other = self._eval(comparator, frame)
                    result = _compare(comparison, current, other)
                    total = result if total is None else total & result
                    current = other
                return total
            case ast.Call(func=ast.Name(id="has"), args=[ast.Name(id=name), value]):
                return has(self._column(name, frame), self._eval(value, frame))
            case ast.Call(func=ast.Attribute(value=ast.Name(id=name), attr=method), args=args):
                column = self._column(name, frame)
                values = [self._eval(arg, frame) for arg in args]
                if method == "isin":
                    return column.isin(values[0] if values and isinstance(values[0], list) else values)
                return getattr(column, method)(*values)
            case ast.Call(func=ast.Attribute(value=ast.Attribute(value=ast.Name(id=name)), attr=method), args=args):
                column = self._column(name, frame).astype("string")
                values = [self._eval(arg, frame) for arg in args]
                if method == "contains":  # text, not a regular expression: a pattern could run for hours
                    return column.str.contains(str(values[0]) if values else "", regex=False)
                return getattr(column.str, method)(*values)
        raise WhereError(f"{_describe(node)} is not allowed in --where")  # checked before: never reached


def _without_at(source: str) -> str:
    """``source`` with the ``@`` of ``@has`` taken out: the one ``@`` name there is (an ``@`` in
    a string, ``text.str.contains('@')``, is text and stays)."""
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    cut: list[int] = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError) as error:
        raise WhereError(f"not an expression ({error.args[0]})") from None
    for token, following in itertools.pairwise(tokens):
        if token.type == tokenize.OP and token.string == "@":
            if following.type != tokenize.NAME or following.string not in HELPERS:
                raise WhereError("@ names a Python object: the only one allowed is @has(column, value)")
            cut.append(starts[token.start[0] - 1] + token.start[1])
    for offset in reversed(cut):
        source = source[:offset] + source[offset + 1 :]
    return source


def _compare(op: ast.cmpop, left: Any, right: Any) -> Any:
    if isinstance(op, ast.In | ast.NotIn):
        if not isinstance(right, list):
            raise WhereError("in takes a list: region_code in ['US', 'GB']")
        inside = left.isin(right) if isinstance(left, pd.Series) else left in right
        return ~inside if isinstance(op, ast.NotIn) else inside
    return COMPARE[type(op)](left, right)


def _as_mask(value: Any, frame: pd.DataFrame) -> pd.Series:
    if isinstance(value, pd.Series):
        return value.fillna(False).astype(bool)
    return pd.Series(bool(value), index=frame.index)


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"the attribute {node.attr!r}"
    if isinstance(node, ast.Name):
        return f"{node.id!r}"
    return {
        "Lambda": "a lambda",
        "Subscript": "indexing",
        "Dict": "a dict",
        "Set": "a set",
        "ListComp": "a comprehension",
        "JoinedStr": "an f-string",
        "NamedExpr": "an assignment",
        "IfExp": "an if expression",
        "Starred": "a starred expression",
        "Await": "await",
    }.get(type(node).__name__, f"a {type(node).__name__}")


def _allowed_methods() -> str:
    return ", ".join([*(f".{m}()" for m in sorted(COLUMN_METHODS)), *(f".str.{m}()" for m in sorted(TEXT_METHODS))])
