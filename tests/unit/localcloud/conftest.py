"""Fixtures of the local-cloud tests: the process-wide clock and journal are restored after every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localcloud.clock import clock
from localcloud.runtime.journal import journal


@pytest.fixture
def fast_clock() -> Iterator[None]:
    """Cloud time at 100,000x: an hour of Wait states or .sync polling passes in ~36 ms."""
    clock.reset()
    clock.set_scale(100_000.0)
    yield
    clock.set_scale(1.0)
    clock.reset()


@pytest.fixture
def clean_journal() -> Iterator[None]:
    journal.clear()
    yield
    journal.clear()
