"""SHADOW: the challenger gets a copy of production traffic, and is promoted only if it is not worse."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from lambdas.deploy.logic import ShadowNotPromoted, SilentRollback
from lambdas.deploy.models import DeploymentState
from localcloud.clock import clock
from localcloud.shims import sagemaker_endpoints as shim
from tests.unit.lambdas.deploy.support import ACCOUNT, ARTIFACTS, ENDPOINT, REGION, Cloud, deployer, run_deployment

SHADOW = {"strategy": "SHADOW", "shadow_bake_seconds": 1800, "shadow_min_invocations": 100}


def routes() -> dict[tuple[str, str], float]:
    return {(r.model_name, r.role): round(r.weight, 6) for r in shim.routes(ACCOUNT, REGION, ENDPOINT)}


def traffic(
    cloud: Cloud,
    at: datetime,
    *,
    requests: int = 200,
    shadow_errors: int = 0,
    shadow_latency_ms: float = 20.0,
    flips: int = 0,
) -> None:
    """What the endpoint would have produced during the bake: AWS/SageMaker metrics per variant, and data capture
    of the same requests on both variants (``flips`` of them labelled differently by the shadow)."""
    for variant, errors, latency in (("AllTraffic", 0, 20.0), ("Shadow", shadow_errors, shadow_latency_ms)):
        cloud.cloudwatch.put_metric_data(
            Namespace="AWS/SageMaker",
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [
                        {"Name": "EndpointName", "Value": ENDPOINT},
                        {"Name": "VariantName", "Value": variant},
                    ],
                    "Timestamp": at,
                    "Value": value,
                    "Unit": unit,
                }
                for name, value, unit in (
                    ("Invocations", requests, "Count"),
                    ("Invocation5XXErrors", errors, "Count"),
                    ("InvocationModelErrors", errors, "Count"),
                    ("ModelLatency", latency * 1000, "Microseconds"),
                )
            ],
        )
        lines = []
        model = {"model_version": "x"}
        for i in range(20):
            probability = 0.9 if i % 2 else 0.2
            label = int(probability >= 0.5)
            if variant == "Shadow" and i < flips:
                label = 1 - label
            lines.append(
                json.dumps(
                    {
                        "captureData": {
                            "endpointInput": {
                                "observedContentType": "text/csv",
                                "mode": "INPUT",
                                "data": f"{i},3,70.5,month-to-month",
                                "encoding": "CSV",
                            },
                            "endpointOutput": {
                                "observedContentType": "application/json",
                                "mode": "OUTPUT",
                                "data": json.dumps(
                                    {**model, "predictions": [{"probability": probability, "label": label}]}
                                ),
                                "encoding": "JSON",
                            },
                        },
                        "eventMetadata": {
                            "eventId": str(uuid.uuid4()),
                            "inferenceTime": at.isoformat().replace("+00:00", "Z"),
                        },
                        "eventVersion": "0",
                    }
                )
            )
        key = f"data-capture/{ENDPOINT}/{variant}/{at:%Y/%m/%d/%H}/{uuid.uuid4()}.jsonl"
        cloud.s3.put_object(Bucket=ARTIFACTS, Key=key, Body="\n".join(lines).encode())


def bake_with(cloud: Cloud, **kwargs: Any) -> Any:
    seen: dict[str, Any] = {}

    def during_bake(rollout: dict[str, Any]) -> None:
        seen["routes"] = routes()
        seen["rollout"] = rollout
        traffic(cloud, clock.now() + timedelta(minutes=5), **kwargs)

    return during_bake, seen


def test_shadow_not_worse_is_promoted(cloud: Cloud) -> None:
    # Given v1 in production (a first deploy is a plain create, there is nothing to shadow)
    first = run_deployment(deployer(cloud, **SHADOW), cloud.register(1))
    assert first.error is None and first.state["rollout"]["phase"] == "create"
    during_bake, seen = bake_with(cloud)
    # When v2 is deployed as a shadow and answers as well as v1
    run = run_deployment(deployer(cloud, **SHADOW), cloud.register(2), during_bake=during_bake)
    # Then during the bake v1 answered all traffic and v2 got a copy of every request
    assert seen["routes"] == {(f"{ENDPOINT}-v1", "production"): 1.0, (f"{ENDPOINT}-v2", "shadow"): 1.0}
    assert seen["rollout"]["endpoint_config_name"] == f"{ENDPOINT}-v2-shadow"
    # And after the comparison v2 was promoted: the endpoint runs v2 alone
    assert run.error is None
    assert routes() == {(f"{ENDPOINT}-v2", "production"): 1.0}
    live = cloud.endpoint()
    assert live["EndpointConfigName"] == f"{ENDPOINT}-v2"
    assert "ShadowProductionVariants" not in live
    comparison = run.state["rollout"]["comparison"]
    assert comparison["promote"] is True and comparison["reasons"] == []
    assert comparison["shadow"]["invocations"] == 200 and comparison["production"]["invocations"] == 200
    assert (comparison["paired_rows"], comparison["agreement"]) == (20, 1.0)
    assert comparison["shadow"]["latency_us"] == pytest.approx(20_000)
    assert "Shadow comparison: 200 shadow requests" in run.state["verified"]["message"]


@pytest.mark.parametrize(
    ("traffic_kwargs", "reason"),
    [
        ({"shadow_errors": 20}, "error rate 10.00% vs 0.00% on production"),
        ({"shadow_latency_ms": 50.0}, "mean model latency 50.0 ms vs 20.0 ms on production"),
        ({"flips": 6}, "labels agree on 70.0% of 20 captured rows (minimum 90%)"),
        ({"requests": 10}, "the shadow answered 10 requests in the bake window, fewer than the 100 needed"),
    ],
)
def test_shadow_worse_is_not_promoted_and_the_champion_keeps_all_traffic(
    cloud: Cloud, traffic_kwargs: dict[str, Any], reason: str
) -> None:
    # Given v1 in production and v2 in shadow that does worse on one measure
    assert run_deployment(deployer(cloud, **SHADOW), cloud.register(1)).error is None
    during_bake, _ = bake_with(cloud, **traffic_kwargs)
    # When the bake ends
    run = run_deployment(deployer(cloud, **SHADOW), cloud.register(2), during_bake=during_bake)
    # Then v2 is not promoted, with the comparison as the reason
    assert isinstance(run.error, ShadowNotPromoted)
    assert str(run.error).startswith("shadow model v2 not promoted: ")
    assert reason in str(run.error)
    assert "the champion keeps 100% of production traffic" in str(run.error)
    failure = run.state["failure"]
    assert failure["outcome"] == "shadow_rejected"
    assert failure["subject"] == "Deployment of model v2 not promoted from shadow"
    # And the endpoint goes back to v1 alone: no shadow copies any more
    clock.advance(3600)
    assert routes() == {(f"{ENDPOINT}-v1", "production"): 1.0}
    assert cloud.endpoint()["EndpointConfigName"] == f"{ENDPOINT}-v1"


def test_a_rolled_back_promotion_returns_the_endpoint_to_the_champion_alone(cloud: Cloud) -> None:
    # Given v1 in production and v2 baking as its shadow
    assert run_deployment(deployer(cloud, **SHADOW), cloud.register(1)).error is None
    steps = deployer(cloud, **SHADOW)
    state: dict[str, Any] = {"model_package_arn": cloud.register(2), "trigger": "approval"}

    def step(action: str, path: str) -> dict[str, Any]:
        state[path] = steps.handle(action, "x", DeploymentState.model_validate(state))
        return dict(state[path])

    step("prepare", "deploy")
    while step("rollout" if "rollout" not in state else "check", "rollout")["status"] == "InProgress":
        clock.advance(state["rollout"]["poll_seconds"])
    assert cloud.endpoint()["EndpointConfigName"] == f"{ENDPOINT}-v2-shadow"
    # When the promotion to v2 alone was rolled back by SageMaker (the endpoint still runs the shadow config)
    state["rollout"] = {
        **state["rollout"],
        "status": "Done",
        "phase": "promote",
        "endpoint_config_name": f"{ENDPOINT}-v2",
        "previous_config_name": f"{ENDPOINT}-v2-shadow",
    }
    with pytest.raises(SilentRollback, match=f"runs {ENDPOINT}-v2-shadow again instead of {ENDPOINT}-v2"):
        step("verify", "verified")
    # Then verify puts the champion back alone: no shadow keeps copying production traffic
    clock.advance(3600)
    assert cloud.endpoint()["EndpointConfigName"] == f"{ENDPOINT}-v1"
    assert routes() == {(f"{ENDPOINT}-v1", "production"): 1.0}
