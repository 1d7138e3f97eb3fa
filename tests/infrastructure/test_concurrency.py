"""Reserved concurrency (stacks/config.py ``ConcurrencySettings``): every function carries its stage's figure, a
stage without reservations carries none, and the synth refuses reservations that a declared account quota cannot
hold (Lambda keeps 100 unreserved)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from aws_cdk import assertions

from stacks.config import (
    FUNCTION_CONCURRENCY,
    MINIMUM_UNRESERVED_CONCURRENCY,
    ConcurrencySettings,
    Reservation,
    RetrainGuard,
    load_config,
)

WITH_AB_ONLY = frozenset({"ExperimentEvaluator"})
"""Functions a stack builds only when a declared dataset is served with AB (the samples declare none;
tests/infrastructure/test_scale.py's stack does)."""


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Our functions (built by LambdaFactory) by construct id: ``<stack>/<construct>/<id>/Resource``."""
    found = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        construct_id = resource["Metadata"]["aws:cdk:path"].split("/")[-2]
        if construct_id in FUNCTION_CONCURRENCY:
            found[construct_id] = resource["Properties"]
    return found


def test_every_function_has_a_decision_with_a_reason() -> None:
    assert all(r.reason.strip() for r in FUNCTION_CONCURRENCY.values())
    assert FUNCTION_CONCURRENCY["Retrain"].limit == 1  # the guard's decisions run one at a time


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_each_stage_s_functions_carry_its_reservations(
    stage: str, template: assertions.Template, prod_template: assertions.Template
) -> None:
    config = load_config(stage)
    functions = _functions((template if stage == "dev" else prod_template).to_json())
    assert set(functions) == set(FUNCTION_CONCURRENCY) - WITH_AB_ONLY, stage
    for construct_id, properties in functions.items():
        assert properties.get("ReservedConcurrentExecutions") == config.concurrency.reserved(construct_id), construct_id
    reserved = sum(p.get("ReservedConcurrentExecutions", 0) for p in functions.values())
    # the declared total counts every function's reservation, also one this stack does not build (conservative)
    assert reserved == config.concurrency.total - sum(config.concurrency.reserved(f) or 0 for f in WITH_AB_ONLY)


def test_dev_reserves_nothing_and_prod_reserves_the_chosen_figures() -> None:
    """dev deploys into a new account (quota 10 leaves no room for any reservation); prod reserves."""
    assert load_config("dev").concurrency.total == 0
    prod = load_config("prod").concurrency
    assert prod.reserve and prod.total == sum(r.limit or 0 for r in FUNCTION_CONCURRENCY.values()) > 0
    assert prod.total <= prod.account_concurrency_quota - MINIMUM_UNRESERVED_CONCURRENCY


def test_the_synth_refuses_reservations_the_declared_quota_cannot_hold() -> None:
    total = ConcurrencySettings().total
    ConcurrencySettings(account_concurrency_quota=MINIMUM_UNRESERVED_CONCURRENCY + total)  # exactly fits
    with pytest.raises(ValueError, match=rf"reserve {total} concurrent executions, but an account whose quota is 10 "):
        ConcurrencySettings(account_concurrency_quota=10)
    with pytest.raises(ValueError, match=rf"can reserve at most {total - 1} \(Lambda keeps 100 unreserved\)"):
        ConcurrencySettings(account_concurrency_quota=MINIMUM_UNRESERVED_CONCURRENCY + total - 1)
    # the same account without reservations is fine, and so is a stage config declaring it
    assert ConcurrencySettings(reserve=False, account_concurrency_quota=10).total == 0
    with pytest.raises(ValueError, match="an account whose quota is 10"):
        replace(load_config("prod"), concurrency=ConcurrencySettings(account_concurrency_quota=10))


def test_a_function_without_a_decision_is_refused() -> None:
    with pytest.raises(ValueError, match="'Unlisted' has no reserved-concurrency decision"):
        ConcurrencySettings().reserved("Unlisted")
    with pytest.raises(ValueError, match="reserve at least 1"):
        Reservation(0, "why")
    with pytest.raises(ValueError, match="needs its reason"):
        Reservation(1, " ")


def test_without_reservations_the_retrain_guard_needs_its_cooldown() -> None:
    """Unserialised, the guard's DynamoDB claim is what refuses a second start: with a cooldown only."""
    dev = load_config("dev")
    with pytest.raises(ValueError, match=r"retrain\.cooldown_minutes >= 1 or reserve=True"):
        replace(dev, retrain=RetrainGuard(cooldown_minutes=0))
    replace(load_config("prod"), retrain=RetrainGuard(cooldown_minutes=0))  # serialised by its reservation of 1
