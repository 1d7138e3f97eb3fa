"""Typed settings from environment variables, read at first use.

``settings = from_environment(Settings)`` in a handler gives the cached loader: ``settings()`` parses the
environment once, into a pydantic model (``model_validate``) or, for functions whose cold start counts, into a
frozen dataclass with ``load``; either way a missing or malformed variable fails loudly with its name. This
module itself imports no pydantic.

``load(Settings)`` fills a frozen dataclass from the variables named like its fields, converting to the field's
type (str, int, float, bool).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, fields
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from functools import _lru_cache_wrapper

T = TypeVar("T")

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """A required environment variable is missing or has the wrong type."""


def _convert(name: str, kind: str, text: str) -> Any:
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            lowered = text.strip().lower()
            if lowered not in _TRUE | _FALSE:
                raise ValueError(f"not a boolean: {text!r}")
            return lowered in _TRUE
    except ValueError as error:
        raise SettingsError(f"environment variable {name}: {error}") from None
    return text


def load(cls: type[T], environ: Mapping[str, str] | None = None) -> T:
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    missing = []
    for field in fields(cls):  # type: ignore[arg-type]
        kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "str")
        if field.name in env:
            values[field.name] = _convert(field.name, kind, env[field.name])
        elif field.default is MISSING and field.default_factory is MISSING:
            missing.append(field.name)
    if missing:
        raise SettingsError(f"missing environment variable(s): {', '.join(missing)}")
    return cls(**values)


def from_environment(cls: type[T]) -> _lru_cache_wrapper[T]:
    """The cached settings loader of ``cls``: a pydantic model (validated from ``os.environ``) or a dataclass
    (``load``). Nothing is read before the first call; ``cache_clear()`` makes the next call read again."""

    @lru_cache(maxsize=1)
    def settings() -> T:
        validate = getattr(cls, "model_validate", None)
        return validate(dict(os.environ)) if validate is not None else load(cls, os.environ)

    return settings
