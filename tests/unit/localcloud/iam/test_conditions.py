"""Condition operators as AWS documents them
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html)."""

from __future__ import annotations

import pytest

from localcloud.iam.conditions import ConditionError, check


@pytest.mark.parametrize(
    ("operator", "expected", "actual", "result"),
    [
        ("StringEquals", ["MLOps/dev"], ["MLOps/dev"], True),
        ("StringEquals", ["MLOps/dev"], ["mlops/dev"], False),
        ("StringNotEquals", ["a", "b"], ["c"], True),
        ("StringNotEquals", ["a", "b"], ["b"], False),
        ("StringEqualsIgnoreCase", ["MLOps/dev"], ["mlops/DEV"], True),
        ("StringNotEqualsIgnoreCase", ["MLOps/dev"], ["mlops/DEV"], False),
        ("StringLike", ["/aws/sagemaker/*"], ["/aws/sagemaker/TrainingJobs"], True),
        ("StringLike", ["job-?"], ["job-12"], False),
        ("StringNotLike", ["/aws/sagemaker/*"], ["Glue"], True),
        ("NumericEquals", ["10"], ["10.0"], True),
        ("NumericNotEquals", ["10"], ["11"], True),
        ("NumericLessThan", ["10"], ["9"], True),
        ("NumericLessThanEquals", ["10"], ["10"], True),
        ("NumericGreaterThan", ["10"], ["10"], False),
        ("NumericGreaterThanEquals", ["10"], ["10"], True),
        ("DateEquals", ["2026-01-01T00:00:00Z"], ["1767225600"], True),
        ("DateNotEquals", ["2026-01-01T00:00:00Z"], ["2026-01-02T00:00:00Z"], True),
        ("DateLessThan", ["2026-01-01T00:00:00Z"], ["2025-12-31T23:59:59Z"], True),
        ("DateLessThanEquals", ["2026-01-01T00:00:00Z"], ["2026-01-01T00:00:00Z"], True),
        ("DateGreaterThan", ["2026-01-01T00:00:00Z"], ["2025-12-31T23:59:59Z"], False),
        ("DateGreaterThanEquals", ["2026-01-01T00:00:00Z"], ["2026-01-01T00:00:01Z"], True),
        ("Bool", ["false"], ["false"], True),
        ("Bool", ["false"], ["true"], False),
        ("BinaryEquals", ["QmluYXJ5"], ["QmluYXJ5"], True),
        ("IpAddress", ["10.0.0.0/8"], ["10.1.2.3"], True),
        ("NotIpAddress", ["10.0.0.0/8"], ["192.168.0.1"], True),
        ("ArnEquals", ["arn:aws:events:us-east-1:1:rule/r"], ["arn:aws:events:us-east-1:1:rule/r"], True),
        ("ArnLike", ["arn:aws:states:us-east-1:1:stateMachine:*"], ["arn:aws:states:us-east-1:1:stateMachine:m"], True),
        ("ArnLike", ["arn:aws:states:*:1:stateMachine:m"], ["arn:aws:states:us-east-1:2:stateMachine:m"], False),
        ("ArnNotEquals", ["arn:aws:sns:us-east-1:1:t"], ["arn:aws:sns:us-east-1:1:u"], True),
        ("ArnNotLike", ["arn:aws:sns:*:1:t*"], ["arn:aws:sns:us-east-1:1:topic"], False),
        ("Null", ["true"], None, True),
        ("Null", ["false"], None, False),
        ("Null", ["false"], ["x"], True),
    ],
)
def test_operator(operator: str, expected: list[str], actual: list[str] | None, result: bool) -> None:
    # Given a policy value and a request value, When the operator compares them, Then AWS's answer comes back
    assert check(operator, expected, actual) is result


@pytest.mark.parametrize(
    ("operator", "result"),
    [("StringEquals", False), ("ArnLike", False), ("StringNotEquals", True), ("ArnNotLike", True)],
)
def test_a_missing_key_fails_a_condition_unless_the_operator_is_negated(operator: str, result: bool) -> None:
    # Given a key absent from the request context, When a condition tests it, Then only negated operators hold
    assert check(operator, ["x"], None) is result


def test_if_exists_holds_when_the_key_is_absent_and_checks_it_when_present() -> None:
    assert check("StringEqualsIfExists", ["a"], None) is True
    assert check("StringEqualsIfExists", ["a"], ["b"]) is False


def test_set_operators_on_multivalued_keys() -> None:
    # ForAllValues: every request value matches (true for an absent key); ForAnyValue: at least one does
    assert check("ForAllValues:StringEquals", ["a", "b"], ["a", "b"]) is True
    assert check("ForAllValues:StringEquals", ["a"], ["a", "c"]) is False
    assert check("ForAllValues:StringEquals", ["a"], None) is True
    assert check("ForAnyValue:StringEquals", ["a"], ["c", "a"]) is True
    assert check("ForAnyValue:StringEquals", ["a"], None) is False


@pytest.mark.parametrize("operator", ["StringMatches", "NullIfExists", "ForEachValue:StringEquals", "Boolean"])
def test_an_unknown_operator_is_refused(operator: str) -> None:
    # Given an operator the evaluator does not know, When it is evaluated, Then it is refused, not matched
    with pytest.raises(ConditionError, match=f"condition operator '{operator}' is not supported"):
        check(operator, ["x"], ["x"])


def test_a_value_that_is_not_of_the_operators_type_is_refused() -> None:
    with pytest.raises(ConditionError, match="is not a number"):
        check("NumericEquals", ["ten"], ["10"])
