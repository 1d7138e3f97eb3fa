"""Typed settings from the environment: the pydantic-free loader and the cached loader every handler uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from lambdas.shared.settings import SettingsError, from_environment, load


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


class PydanticExample(BaseModel):
    BUCKET: str
    MIN_ROWS: int = 200


@pytest.mark.parametrize("cls", [Example, PydanticExample])
def test_from_environment_reads_at_first_call_and_keeps_it_until_cleared(
    monkeypatch: pytest.MonkeyPatch, cls: type[Any]
) -> None:
    # Given a loader made before the environment is set (as at import time)
    monkeypatch.delenv("BUCKET", raising=False)
    settings = from_environment(cls)
    monkeypatch.setenv("BUCKET", "first")
    monkeypatch.setenv("THRESHOLD", "0.5")
    monkeypatch.setenv("MIN_ROWS", "7")
    # When it is called, the environment changes, and it is called again
    first = settings()
    monkeypatch.setenv("BUCKET", "second")
    # Then both calls answer with the settings read at the first, typed; a cleared cache reads again
    assert settings() is first and (first.BUCKET, first.MIN_ROWS) == ("first", 7)
    settings.cache_clear()
    assert settings().BUCKET == "second"


@pytest.mark.parametrize(("cls", "error"), [(Example, SettingsError), (PydanticExample, ValidationError)])
def test_from_environment_names_a_missing_variable(
    monkeypatch: pytest.MonkeyPatch, cls: type[Any], error: type[Exception]
) -> None:
    monkeypatch.delenv("BUCKET", raising=False)
    monkeypatch.setenv("THRESHOLD", "0.5")
    with pytest.raises(error, match="BUCKET"):
        from_environment(cls)()
