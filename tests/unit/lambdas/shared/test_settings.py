"""Typed settings from the environment without pydantic."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from lambdas.shared.settings import SettingsError, load


@dataclass(frozen=True)
class Example:
    BUCKET: str
    THRESHOLD: float
    MIN_ROWS: int = 200
    ENABLED: bool = True


def test_variables_are_converted_to_the_field_types_and_defaults_apply() -> None:
    settings = load(Example, {"BUCKET": "b", "THRESHOLD": "0.2", "ENABLED": "false", "OTHER": "ignored"})
    assert settings == Example(BUCKET="b", THRESHOLD=0.2, MIN_ROWS=200, ENABLED=False)


def test_a_missing_variable_is_named() -> None:
    with pytest.raises(SettingsError, match=r"missing environment variable\(s\): BUCKET, THRESHOLD"):
        load(Example, {})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("THRESHOLD", "high", "environment variable THRESHOLD: could not convert string to float: 'high'"),
        ("MIN_ROWS", "2.5", "environment variable MIN_ROWS: invalid literal for int"),
        ("ENABLED", "maybe", "environment variable ENABLED: not a boolean: 'maybe'"),
    ],
)
def test_a_malformed_variable_is_named(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as error:
        load(Example, {"BUCKET": "b", "THRESHOLD": "0.1", name: value})
    assert str(error.value).startswith(message)
