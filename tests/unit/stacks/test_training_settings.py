"""A stage's SageMaker warm pool setting (``TrainingSettings.keep_alive_seconds``): checked at synth against the API's
range, priced with ``stacks/pricing.py``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from stacks.config import KEEP_ALIVE_MAX_SECONDS, TrainingSettings, load_config
from stacks.pricing import TRAINING_HOURLY_USD, warm_pool_cost


def test_dev_keeps_an_hour_long_pool_and_prod_none() -> None:
    assert load_config("dev").training.keep_alive_seconds == 3600
    assert load_config("prod").training.keep_alive_seconds == 0


@pytest.mark.parametrize("seconds", [0, 1, 3600, KEEP_ALIVE_MAX_SECONDS])
def test_the_api_range_is_accepted(seconds: int) -> None:
    assert TrainingSettings(keep_alive_seconds=seconds).keep_alive_seconds == seconds


@pytest.mark.parametrize("seconds", [-1, KEEP_ALIVE_MAX_SECONDS + 1, 60.5, True, "3600"])
def test_a_keep_alive_outside_the_api_range_fails_with_the_range(seconds: Any) -> None:
    with pytest.raises(
        ValueError, match=r"training: keep_alive_seconds .*: KeepAlivePeriodInSeconds is a whole number "
    ):
        TrainingSettings(keep_alive_seconds=seconds)


def test_a_pool_of_an_unpriced_instance_type_fails_and_names_the_price_table() -> None:
    # Given a stage that would keep a pool of a type without a training price
    with pytest.raises(ValueError, match=r"'ml\.g5\.xlarge' bills while retained, and stacks/pricing\.py has no"):
        replace(load_config("dev").training, instance_type="ml.g5.xlarge")
    # Then the same type without a pool is fine (nothing is retained)
    assert TrainingSettings(instance_type="ml.g5.xlarge").keep_alive_seconds == 0


def test_an_hour_of_dev_s_pool_left_to_expire_costs_its_instance_hour() -> None:
    training = load_config("dev").training
    cost = warm_pool_cost(training.instance_type, training.instance_count, training.keep_alive_seconds)
    assert cost == pytest.approx(TRAINING_HOURLY_USD["ml.m5.large"]) == pytest.approx(0.115)
