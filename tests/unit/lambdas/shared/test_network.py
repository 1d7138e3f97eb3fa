"""The models' network settings from the functions' environment (lambdas/shared/network.py)."""

from __future__ import annotations

import pytest

from lambdas.shared.network import ids, model_network


def test_ids_split_the_comma_separated_variable() -> None:
    assert ids("subnet-a, subnet-b") == ("subnet-a", "subnet-b")
    assert ids("") == ()


def test_a_public_stage_gives_models_no_network_settings() -> None:
    assert model_network((), ()) == {}


def test_a_private_stage_gives_models_the_vpc_and_network_isolation() -> None:
    assert model_network(("subnet-a",), ("sg-1",)) == {
        "VpcConfig": {"Subnets": ["subnet-a"], "SecurityGroupIds": ["sg-1"]},
        "EnableNetworkIsolation": True,
    }


def test_subnets_without_a_security_group_are_refused() -> None:
    with pytest.raises(ValueError, match="MODEL_SECURITY_GROUPS"):
        model_network(("subnet-a",), ())
