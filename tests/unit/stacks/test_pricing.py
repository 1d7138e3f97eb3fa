"""The idle cost of a private stage's network (stacks/pricing.py), the figure docs/performance.md quotes."""

from __future__ import annotations

import pytest

from stacks.constructs.network import AVAILABILITY_ZONES, INTERFACE_ENDPOINTS
from stacks.pricing import interface_endpoints_cost_per_day


def test_the_private_network_idles_at_its_endpoints_hours() -> None:
    # 11 interface endpoints in 2 AZs at $0.01 per endpoint-AZ-hour: $0.22/h
    assert (len(INTERFACE_ENDPOINTS), AVAILABILITY_ZONES) == (11, 2)
    assert interface_endpoints_cost_per_day(len(INTERFACE_ENDPOINTS), AVAILABILITY_ZONES) == pytest.approx(5.28)
