"""CloudWatch metric math for alarms: the expression of a metric-math alarm, evaluated on its periods.

Spec: "Using math expressions with CloudWatch metrics" (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/
using-metric-math.html) and "Create a CloudWatch alarm based on a metric math expression". What is implemented:

- numbers, metric ids (``m1``: a query's ``Id``, starting with a lowercase letter), ``(...)``, arrays ``[m1, m2]``;
- arithmetic ``+ - * / ^`` and unary ``-``: a time series with a scalar works point by point; two time series work
  on the points both have (a point missing in either is missing in the result, as is a division by zero);
- comparisons ``== != > >= < <=`` and logical ``AND`` (``&&``), ``OR`` (``||``), ``NOT``: 1 for true, 0 for false;
- ``IF(condition, a[, b])``: ``a`` where the condition is not 0, else ``b`` (without ``b``: no point);
- ``FILL(m, value | REPEAT | LINEAR)``: missing points get the value, the last earlier point, or the straight line
  between the points around them;
- ``METRICS([string])``: every metric query of the alarm (with ``string``: those whose ``Id`` contains it);
- ``SUM AVG MIN MAX``: of an array, a time series (point by point over the series that have the point); of one
  time series, a single number over its points; ``ABS CEIL FLOOR``; ``PERIOD(m)``: the period in seconds.

Anything else (``SEARCH``, ``ANOMALY_DETECTION_BAND``, ``RATE``, ``DIFF``, ``INSIGHT_RULE_METRIC``, ...) is
refused when the alarm is created, with the function's name: the local cloud evaluates only what it implements.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

Series = list[float | None]  # oldest period first
Value = Union[float, "Array", Series]

FUNCTIONS = ("IF", "FILL", "METRICS", "SUM", "AVG", "MIN", "MAX", "ABS", "CEIL", "FLOOR", "PERIOD")
_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)|(?P<string>\"[^\"]*\"|'[^']*')"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>>=|<=|==|!=|&&|\|\||[-+*/^()\[\],<>]))"
)


class MathError(ValueError):
    """An expression the local cloud refuses (unsupported function, unknown id, syntax)."""


@dataclass(frozen=True)
class Array:
    series: tuple[Series, ...]


@dataclass(frozen=True)
class Node:
    kind: str  # number, string, id, keyword, array, unary, binary, call
    value: Any = None
    children: tuple[Node, ...] = ()


def tokens(text: str) -> list[tuple[str, str]]:
    found, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise MathError(f"cannot read the expression {text!r} at {text[position:]!r}")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.items = tokens(text)
        self.at = 0

    def peek(self) -> tuple[str, str] | None:
        return self.items[self.at] if self.at < len(self.items) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        item = self.peek()
        if item is None or (expected is not None and item[1].upper() != expected):
            raise MathError(f"expected {expected or 'more'} in {self.text!r}")
        self.at += 1
        return item

    def accept(self, *words: str) -> str | None:
        item = self.peek()
        if item is not None and item[1].upper() in words and item[0] in ("op", "name"):
            self.at += 1
            return item[1].upper()
        return None

    def parse(self) -> Node:
        node = self.logical_or()
        if self.peek() is not None:
            raise MathError(f"unexpected {self.peek()[1]!r} in {self.text!r}")  # type: ignore[index]
        return node

    def logical_or(self) -> Node:
        node = self.logical_and()
        while self.accept("OR", "||"):
            node = Node("binary", "OR", (node, self.logical_and()))
        return node

    def logical_and(self) -> Node:
        node = self.logical_not()
        while self.accept("AND", "&&"):
            node = Node("binary", "AND", (node, self.logical_not()))
        return node

    def logical_not(self) -> Node:
        if self.accept("NOT"):
            return Node("unary", "NOT", (self.logical_not(),))
        return self.comparison()

    def comparison(self) -> Node:
        node = self.additive()
        operator = self.accept("==", "!=", ">=", "<=", ">", "<")
        return Node("binary", operator, (node, self.additive())) if operator else node

    def additive(self) -> Node:
        node = self.term()
        while operator := self.accept("+", "-"):
            node = Node("binary", operator, (node, self.term()))
        return node

    def term(self) -> Node:
        node = self.power()
        while operator := self.accept("*", "/"):
            node = Node("binary", operator, (node, self.power()))
        return node

    def power(self) -> Node:
        node = self.unary()
        if self.accept("^"):
            return Node("binary", "^", (node, self.power()))
        return node

    def unary(self) -> Node:
        if self.accept("-"):
            return Node("unary", "-", (self.unary(),))
        return self.primary()

    def primary(self) -> Node:
        kind, text = self.take()
        if kind == "number":
            return Node("number", float(text))
        if kind == "string":
            return Node("string", text[1:-1])
        if text == "(":
            node = self.logical_or()
            self.take(")")
            return node
        if text == "[":
            items = [self.logical_or()]
            while self.accept(","):
                items.append(self.logical_or())
            self.take("]")
            return Node("array", None, tuple(items))
        if kind == "name" and self.peek() is not None and self.peek()[1] == "(":  # type: ignore[index]
            name = text.upper()
            if name not in FUNCTIONS:
                raise MathError(
                    f"the metric math function {name} is not supported by the local cloud "
                    f"(supported: {', '.join(FUNCTIONS)})"
                )
            self.take("(")
            arguments: list[Node] = []
            if not self.accept(")"):
                arguments.append(self.logical_or())
                while self.accept(","):
                    arguments.append(self.logical_or())
                self.take(")")
            return Node("call", name, tuple(arguments))
        if kind == "name" and text.upper() in ("REPEAT", "LINEAR"):
            return Node("keyword", text.upper())
        if kind == "name" and text[0].islower():
            return Node("id", text)
        raise MathError(f"unexpected {text!r} in {self.text!r}")


def parse(expression: str) -> Node:
    return _Parser(expression).parse()


def ids(node: Node) -> set[str]:
    """The metric ids an expression names."""
    found = {node.value} if node.kind == "id" else set()
    for child in node.children:
        found |= ids(child)
    return found


def uses_metrics(node: Node) -> bool:
    return (node.kind == "call" and node.value == "METRICS") or any(uses_metrics(c) for c in node.children)


# ---- evaluation ------------------------------------------------------------------------------------------


def _pointwise(a: Value, b: Value, operation: Callable[[float, float], float | None]) -> Value:
    if isinstance(a, Array) or isinstance(b, Array):
        if isinstance(a, Array) and isinstance(b, Array):
            raise MathError("an operation between two arrays of time series is not supported")
        if isinstance(a, Array):
            return Array(tuple(_as_series(_pointwise(s, b, operation)) for s in a.series))
        assert isinstance(b, Array)
        return Array(tuple(_as_series(_pointwise(a, s, operation)) for s in b.series))
    if isinstance(a, list) or isinstance(b, list):
        length = len(a) if isinstance(a, list) else len(b)  # type: ignore[arg-type]
        left = a if isinstance(a, list) else [a] * length
        right = b if isinstance(b, list) else [b] * length
        return [None if x is None or y is None else operation(x, y) for x, y in zip(left, right, strict=True)]
    return _scalar(operation(a, b))


def _scalar(value: float | None) -> float:
    if value is None:
        raise MathError("the expression has no value (a division by zero of two numbers)")
    return value


def _as_series(value: Value) -> Series:
    if not isinstance(value, list):
        raise MathError("expected a time series")
    return value


def _divide(x: float, y: float) -> float | None:
    return None if y == 0 else x / y


def _power(x: float, y: float) -> float | None:
    try:
        result = math.pow(x, y)
    except (OverflowError, ValueError):
        return None
    return result if math.isfinite(result) else None


_BINARY: dict[str, Callable[[float, float], float | None]] = {
    "+": lambda x, y: x + y,
    "-": lambda x, y: x - y,
    "*": lambda x, y: x * y,
    "/": _divide,
    "^": _power,
    "==": lambda x, y: float(x == y),
    "!=": lambda x, y: float(x != y),
    ">": lambda x, y: float(x > y),
    ">=": lambda x, y: float(x >= y),
    "<": lambda x, y: float(x < y),
    "<=": lambda x, y: float(x <= y),
    "AND": lambda x, y: float(bool(x) and bool(y)),
    "OR": lambda x, y: float(bool(x) or bool(y)),
}


def _aggregate(name: str, values: Sequence[float]) -> float | None:
    if not values:
        return None
    if name == "SUM":
        return float(sum(values))
    if name == "AVG":
        return float(sum(values) / len(values))
    return float(min(values) if name == "MIN" else max(values))


def _fill(series: Series, how: Value | str) -> Series:
    if how == "REPEAT":
        filled, last = [], None
        for value in series:
            last = value if value is not None else last
            filled.append(last)
        return filled
    if how == "LINEAR":
        known = [i for i, v in enumerate(series) if v is not None]
        filled = list(series)
        for left, right in itertools.pairwise(known):
            a, b = series[left], series[right]
            assert a is not None and b is not None
            for i in range(left + 1, right):
                filled[i] = a + (b - a) * (i - left) / (right - left)
        return filled
    if isinstance(how, list):
        return [v if v is not None else w for v, w in zip(series, how, strict=True)]
    if isinstance(how, float):
        return [v if v is not None else how for v in series]
    raise MathError("FILL takes a number, a time series, REPEAT or LINEAR")


@dataclass
class Context:
    series: dict[str, Series]  # metric query id -> its values, oldest period first
    period: int
    length: int
    named: dict[str, Series] = field(default_factory=dict)  # expression query id -> its values


def evaluate(node: Node, context: Context) -> Value:
    kind = node.kind
    if kind == "number":
        return float(node.value)
    if kind == "id":
        found = context.series.get(node.value, context.named.get(node.value))
        if found is None:
            raise MathError(f"the expression names {node.value!r}, which is not a query of the alarm")
        return list(found)
    if kind == "array":
        return Array(tuple(_as_series(evaluate(child, context)) for child in node.children))
    if kind == "unary":
        value = evaluate(node.children[0], context)
        if node.value == "-":
            return _pointwise(value, -1.0, lambda x, y: x * y)
        return _pointwise(value, 0.0, lambda x, _: float(not x))
    if kind == "binary":
        left, right = (evaluate(child, context) for child in node.children)
        return _pointwise(left, right, _BINARY[node.value])
    if kind == "call":
        return _call(node, context)
    raise MathError(f"{node.kind} {node.value!r} cannot stand here")


def _call(node: Node, context: Context) -> Value:
    name, arguments = node.value, node.children

    def argument(index: int) -> Value:
        return evaluate(arguments[index], context)

    if name == "METRICS":
        wanted = arguments[0].value if arguments and arguments[0].kind == "string" else ""
        return Array(tuple(list(s) for key, s in sorted(context.series.items()) if wanted in key))
    if name == "IF":
        if len(arguments) not in (2, 3):
            raise MathError("IF takes (condition, value) or (condition, value, otherwise)")
        condition, yes = argument(0), argument(1)
        no: Value = argument(2) if len(arguments) == 3 else [None] * context.length

        def pick(index: int, value: Value) -> float | None:
            if isinstance(value, Array):
                raise MathError("IF does not take arrays of time series")
            return value[index] if isinstance(value, list) else value

        points = []
        for i in range(context.length):
            test = pick(i, condition)
            points.append(None if test is None else pick(i, yes) if test else pick(i, no))
        return points
    if name == "FILL":
        if len(arguments) != 2:
            raise MathError("FILL takes (series, value | REPEAT | LINEAR)")
        how: Value | str = arguments[1].value if arguments[1].kind == "keyword" else argument(1)
        target = argument(0)
        if isinstance(target, Array):
            return Array(tuple(_fill(s, how) for s in target.series))
        return _fill(_as_series(target), how)
    if name == "PERIOD":
        return float(context.period)
    if len(arguments) != 1:
        raise MathError(f"{name} takes one argument")
    value = argument(0)
    if name in ("ABS", "CEIL", "FLOOR"):
        rounding: dict[str, Callable[[float], float]] = {"ABS": abs, "CEIL": math.ceil, "FLOOR": math.floor}
        return _pointwise(value, 0.0, lambda x, _: float(rounding[name](x)))
    if isinstance(value, Array):  # point by point across the series
        across: Series = []
        for i in range(context.length):
            across.append(_aggregate(name, [v for s in value.series if (v := s[i]) is not None]))
        return across
    if isinstance(value, list):  # one series: a single number over its points
        result = _aggregate(name, [v for v in value if v is not None])
        return [result] * context.length if result is not None else [None] * context.length
    return value


def series_of(node: Node, context: Context) -> Series:
    """The expression as the alarm's time series (a number holds for every period); an array is refused."""
    value = evaluate(node, context)
    if isinstance(value, Array):
        raise MathError("an alarm's expression must return a single time series, not an array of them")
    if isinstance(value, float):
        return [value] * context.length
    return value
