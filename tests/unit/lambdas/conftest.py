"""Every Lambda test builds its own AWS clients, inside its own moto mock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lambdas.shared.aws import client


@pytest.fixture(autouse=True)
def fresh_clients() -> Iterator[None]:
    client.cache_clear()
    yield
    client.cache_clear()
