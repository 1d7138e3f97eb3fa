"""IAM condition operators, evaluated as AWS documents them.

https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html:
- a key missing from the request context makes the condition false, except for negated operators
  (``StringNotEquals``, ``ArnNotLike``...), where it is true, ``...IfExists`` (true) and ``Null``;
- several values for one key: OR; for a negated operator: NOR.
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html:
``ForAllValues:`` is true when every context value matches (also when the key is absent or empty),
``ForAnyValue:`` when at least one does (false when absent).

An operator outside ``OPERATORS`` is refused with ``ConditionError`` (never treated as matching), and so is a
policy variable (``${...}``) in a value: the local cloud does not substitute them.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

Values = Sequence[str]


class ConditionError(ValueError):
    """A condition the evaluator does not understand (operator, value): refused, never guessed."""


@functools.lru_cache(maxsize=4096)
def _wildcard_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM's wildcards: ``*`` any run of characters (``/`` and ``:`` too), ``?`` one character, nothing else."""
    return _wildcard_regex(pattern, ignore_case).fullmatch(value) is not None


def _like(pattern: str, value: str) -> bool:
    return wildcard(pattern, value)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConditionError(f"{text!r} is not a number") from None


def _date(text: str) -> datetime:
    try:
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return datetime.fromtimestamp(float(text), UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConditionError(f"{text!r} is not an ISO 8601 date or epoch seconds") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _bool(text: str) -> str:
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise ConditionError(f"{text!r} is not a boolean")
    return lowered


def _arn_like(pattern: str, value: str) -> bool:
    """Each of the six colon-separated ARN parts matched on its own (wildcards do not cross parts)."""
    pattern_parts, value_parts = pattern.split(":", 5), value.split(":", 5)
    if len(pattern_parts) != 6 or len(value_parts) != 6:
        return pattern == value
    return all(_like(p, v) for p, v in zip(pattern_parts, value_parts, strict=True))


def _ip(policy: str, value: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(policy, strict=False)
    except ValueError:
        raise ConditionError(f"{policy!r} / {value!r} is not an IP address or range") from None


Match = Callable[[str, str], bool]  # (policy value, context value) -> matches
_POSITIVE: dict[str, Match] = {
    "StringEquals": lambda p, v: p == v,
    "StringEqualsIgnoreCase": lambda p, v: p.lower() == v.lower(),
    "StringLike": _like,
    "NumericEquals": lambda p, v: _number(p) == _number(v),
    "NumericLessThan": lambda p, v: _number(v) < _number(p),
    "NumericLessThanEquals": lambda p, v: _number(v) <= _number(p),
    "NumericGreaterThan": lambda p, v: _number(v) > _number(p),
    "NumericGreaterThanEquals": lambda p, v: _number(v) >= _number(p),
    "DateEquals": lambda p, v: _date(p) == _date(v),
    "DateLessThan": lambda p, v: _date(v) < _date(p),
    "DateLessThanEquals": lambda p, v: _date(v) <= _date(p),
    "DateGreaterThan": lambda p, v: _date(v) > _date(p),
    "DateGreaterThanEquals": lambda p, v: _date(v) >= _date(p),
    "Bool": lambda p, v: _bool(p) == _bool(v),
    "BinaryEquals": lambda p, v: base64.b64decode(p) == base64.b64decode(v),
    "IpAddress": _ip,
    "ArnEquals": lambda p, v: p == v,
    "ArnLike": _arn_like,
}
_NEGATED: dict[str, str] = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "NotIpAddress": "IpAddress",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}
OPERATORS = frozenset([*_POSITIVE, *_NEGATED, "Null"])
QUALIFIERS = ("ForAllValues:", "ForAnyValue:")


def split_operator(operator: str) -> tuple[str | None, str, bool]:
    """(set qualifier, base operator, IfExists) of a condition operator; ``ConditionError`` if unknown."""
    qualifier = next((q for q in QUALIFIERS if operator.startswith(q)), None)
    base = operator[len(qualifier) :] if qualifier else operator
    if_exists = base.endswith("IfExists") and base != "IfExists"
    if if_exists:
        base = base[: -len("IfExists")]
    if base not in OPERATORS or (if_exists and base == "Null"):
        raise ConditionError(f"condition operator {operator!r} is not supported by the local IAM evaluator")
    return qualifier, base, if_exists


def policy_values(raw: object) -> list[str]:
    values = raw if isinstance(raw, list) else [raw]
    out = []
    for value in values:
        if isinstance(value, bool):
            out.append("true" if value else "false")
        elif isinstance(value, str | int | float):
            text = str(value)
            if "${" in text:
                raise ConditionError(f"policy variable in condition value {text!r} is not supported")
            out.append(text)
        else:
            raise ConditionError(f"condition value {value!r} is not a string, number or boolean")
    return out


def check(operator: str, expected: Values, actual: Values | None) -> bool:
    """One key of one operator: ``expected`` from the policy, ``actual`` the context values (None: absent)."""
    qualifier, base, if_exists = split_operator(operator)
    if base == "Null":
        absent = not actual
        return all((_bool(e) == "true") == absent for e in expected)
    negated = base in _NEGATED
    positive = _POSITIVE[_NEGATED.get(base, base)]

    def one(value: str) -> bool:
        hit = any(positive(e, value) for e in expected)
        return not hit if negated else hit

    if qualifier == "ForAllValues:":
        return all(one(v) for v in actual or [])
    if qualifier == "ForAnyValue:":
        return any(one(v) for v in actual or [])
    if not actual:
        return if_exists or negated
    return any(one(v) for v in actual)
