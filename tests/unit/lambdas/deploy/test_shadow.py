"""SHADOW: the challenger gets a copy of production traffic, and is promoted only if it is not worse."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
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


def binary_answer(variant: str, i: int, flips: int) -> dict[str, Any]:
    """Production's binary answer to request ``i``; the shadow labels the first ``flips`` requests differently."""
    probability = 0.9 if i % 2 else 0.2
    label = int(probability >= 0.5)
    if variant == "Shadow" and i < flips:
        label = 1 - label
    return {"probability": probability, "label": label}


Answerer = Callable[[str, int], dict[str, Any]]


def traffic(
    cloud: Cloud,
    at: datetime,
    *,
    requests: int = 200,
    shadow_errors: int = 0,
    shadow_latency_ms: float = 20.0,
    flips: int = 0,
    answers: Answerer | None = None,
    output_type: str = "application/json",
) -> None:
    """What the endpoint would have produced during the bake: AWS/SageMaker metrics per variant, and data capture
    of the same requests on both variants, answered by ``answers(variant, request)`` (default: binary answers,
    ``flips`` of them labelled differently by the shadow), as JSON or as the CSV line of the same answer."""
    answers = answers or (lambda variant, i: binary_answer(variant, i, flips))
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
            prediction = answers(variant, i)
            output = json.dumps({**model, "predictions": [prediction]})
            if output_type == "text/csv":
                output = csv_line(prediction)
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
                                "observedContentType": output_type,
                                "mode": "OUTPUT",
                                "data": output,
                                "encoding": "CSV" if output_type == "text/csv" else "JSON",
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


def csv_line(prediction: dict[str, Any]) -> str:
    """The ``text/csv`` answer line of a JSON prediction (pipelines/inference/inference.py prediction_lines)."""
    if "value" in prediction:
        return f"{prediction['value']!r}\n"
    if "probabilities" in prediction:
        return ",".join([str(prediction["label"]), *map(repr, prediction["probabilities"].values())]) + "\n"
    return f"{prediction['probability']!r},{prediction['label']}\n"


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


# ---- the comparison of the answers, per task ---------------------------------------------------------------

CLASSES = ["billing", "technical", "account", "sales"]
GOLDEN = {
    "multiclass": [
        {"label": "billing", "probabilities": {"billing": 0.7, "technical": 0.1, "account": 0.1, "sales": 0.1}},
        {"label": "sales", "probabilities": {"billing": 0.1, "technical": 0.2, "account": 0.1, "sales": 0.6}},
    ],
    "regression": [{"value": 812.5}, {"value": 94.25}],
}


def multiclass_answer(variant: str, i: int, flips: int) -> dict[str, Any]:
    """Production labels request ``i`` with class i mod 4; the shadow picks the next class for the first ``flips``."""
    label = CLASSES[(i + (1 if variant == "Shadow" and i < flips else 0)) % len(CLASSES)]
    return {"label": label, "probabilities": {c: (0.7 if c == label else 0.1) for c in CLASSES}}


def regression_answer(variant: str, i: int, error: float, rows: int) -> dict[str, Any]:
    """Production answers 100 + 10 i; the shadow's value is ``error`` higher (relatively) on its first ``rows``."""
    value = 100.0 + 10 * i
    return {"value": value * (1 + error) if variant == "Shadow" and i < rows else value}


def deploy_shadow(cloud: Cloud, task: str, answers: Any, output_type: str = "application/json") -> Any:
    """v1 in production, then v2 (both of ``task``) as its shadow while the traffic is answered by ``answers``."""
    first = run_deployment(deployer(cloud, **SHADOW), cloud.register(1, task=task, predictions=GOLDEN[task]))
    assert first.error is None, first.error
    during_bake, _ = bake_with(cloud, answers=answers, output_type=output_type)
    return run_deployment(
        deployer(cloud, **SHADOW), cloud.register(2, task=task, predictions=GOLDEN[task]), during_bake=during_bake
    )


@pytest.mark.parametrize("output_type", ["application/json", "text/csv"])
def test_a_multiclass_shadow_is_judged_by_label_agreement(cloud: Cloud, output_type: str) -> None:
    # Given a multiclass v2 in shadow whose answers pick another class for 6 of 20 requests (JSON or CSV answers)
    # When the bake ends
    run = deploy_shadow(cloud, "multiclass", lambda variant, i: multiclass_answer(variant, i, 6), output_type)
    # Then the labels are compared (not probabilities of a positive class) and v2 is not promoted
    assert isinstance(run.error, ShadowNotPromoted)
    assert "labels agree on 70.0% of 20 captured rows (minimum 90%)" in str(run.error)
    assert run.state["failure"]["outcome"] == "shadow_rejected"
    clock.advance(3600)
    assert routes() == {(f"{ENDPOINT}-v1", "production"): 1.0}


def test_a_multiclass_shadow_that_agrees_is_promoted(cloud: Cloud) -> None:
    # Given a multiclass v2 in shadow that picks the same class as v1 for every request
    run = deploy_shadow(cloud, "multiclass", lambda variant, i: multiclass_answer(variant, i, 0))
    # Then it is promoted, with the agreement and the mean probability difference over every class
    assert run.error is None, run.error
    comparison = run.state["rollout"]["comparison"]
    assert (comparison["task"], comparison["paired_rows"], comparison["agreement"]) == ("multiclass", 20, 1.0)
    assert comparison["mean_abs_probability_diff"] == 0.0
    assert comparison["median_relative_error"] is None
    assert "agreement 100.0%" in run.state["verified"]["message"]


@pytest.mark.parametrize(
    ("error", "rows", "reason"),
    [
        (0.10, 20, "median relative error of the values 10.0% over 20 captured rows (maximum 5%)"),
        (0.50, 3, "90th percentile relative error of the values 50.0% over 20 captured rows (maximum 20%)"),
    ],
)
@pytest.mark.parametrize("output_type", ["application/json", "text/csv"])
def test_a_regression_shadow_is_judged_by_the_relative_error_of_its_values(
    cloud: Cloud, error: float, rows: int, reason: str, output_type: str
) -> None:
    # Given a regression v2 in shadow whose values are 10% off on every request, or 50% off on 3 of 20
    # When the bake ends
    run = deploy_shadow(cloud, "regression", lambda variant, i: regression_answer(variant, i, error, rows), output_type)
    # Then the relative error of the values decides (a regression answer has no label to agree on)
    assert isinstance(run.error, ShadowNotPromoted)
    assert reason in str(run.error)
    assert "labels agree" not in str(run.error)
    clock.advance(3600)
    assert cloud.endpoint()["EndpointConfigName"] == f"{ENDPOINT}-v1"


def test_a_regression_shadow_within_the_relative_error_bounds_is_promoted(cloud: Cloud) -> None:
    # Given a regression v2 in shadow whose values are 1% above v1's
    run = deploy_shadow(cloud, "regression", lambda variant, i: regression_answer(variant, i, 0.01, 20))
    # Then it is promoted, and the comparison and the notification carry the relative errors
    assert run.error is None, run.error
    comparison = run.state["rollout"]["comparison"]
    assert (comparison["task"], comparison["paired_rows"], comparison["agreement"]) == ("regression", 20, None)
    assert comparison["median_relative_error"] == pytest.approx(0.01)
    assert comparison["p90_relative_error"] == pytest.approx(0.01)
    assert "relative error of the values median 1.0%, p90 1.0% over 20 rows" in run.state["verified"]["message"]
