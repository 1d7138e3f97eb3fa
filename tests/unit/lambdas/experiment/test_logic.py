"""The evaluator on a running experiment: a better challenger is promoted, a worse one stopped early, a tie ends at
the maximum duration; each decision moves the endpoint to one variant, is recorded in the registry and notified."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from lambdas.experiment.models import ExperimentRecord
from localcloud.clock import clock
from localcloud.shims import sagemaker_endpoints as shim
from tests.unit.lambdas.deploy.support import ACCOUNT, ARTIFACTS, ENDPOINT, GROUP, REGION, Cloud
from tests.unit.lambdas.experiment.support import (
    QUALITY,
    advance,
    evaluator,
    label_batch,
    messages,
    start_experiment,
    topic,
)

RECORD = f"monitoring/experiments/churn/{ENDPOINT}-v2-ab/experiment.json"


def routes() -> dict[str, float]:
    return {
        r.variant_name: round(r.weight, 6) for r in shim.routes(ACCOUNT, REGION, ENDPOINT) if r.role == "production"
    }


def package(cloud: Cloud, version: int) -> dict[str, Any]:
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/{version}"
    return dict(cloud.sm.describe_model_package(ModelPackageName=arn))


def run_looks(cloud: Cloud, sns: Any, arn: str, rates: dict[str, float], *, looks: int, requests: int) -> list[Any]:
    """Every ``hours`` a label file of ``requests`` labelled requests, then a look; stops at a decision."""
    rng = np.random.default_rng(42)
    results = []
    for _ in range(looks):
        at = advance(3)
        label_batch(cloud, rng, at, requests=requests, rates=rates)
        result = evaluator(cloud, sns, arn).evaluate()
        results.append(result)
        if result["status"] != "running":
            break
    return results


def record(cloud: Cloud) -> ExperimentRecord:
    return ExperimentRecord.model_validate_json(cloud.s3.get_object(Bucket=ARTIFACTS, Key=RECORD)["Body"].read())


def test_a_better_challenger_is_promoted_recorded_and_notified(cloud: Cloud) -> None:
    # Given v2 serving 20% of requests next to v1, and a queue on the notification topic
    start_experiment(cloud)
    sns, arn, queue = topic()
    assert routes() == {"AllTraffic": 0.8, "Challenger": 0.2}
    # When labelled outcomes arrive where v2 answers 90% correctly and v1 75%
    results = run_looks(cloud, sns, arn, {"AllTraffic": 0.75, "Challenger": 0.9}, looks=10, requests=600)
    # Then after a few looks the challenger is promoted, with the numbers and the reason
    final = results[-1]
    assert [r["verdict"] for r in results[:-1]] == ["CONTINUE"] * (len(results) - 1)
    assert final["verdict"] == "PROMOTE" and "lies above 0" in final["reason"]
    # And the endpoint serves v2 alone (its single-variant config), without a challenger variant
    assert cloud.endpoint()["EndpointConfigName"] == f"{ENDPOINT}-v2"
    assert routes() == {"AllTraffic": 1.0}
    # And the registry says why, with the numbers; v2 stays Approved: the champion now
    v2 = package(cloud, 2)
    assert v2["ModelApprovalStatus"] == "Approved"
    assert v2["ApprovalDescription"].startswith("A/B experiment PROMOTE: the challenger is better")
    metadata = v2["CustomerMetadataProperties"]
    assert metadata["ab_decision"] == "PROMOTE" and metadata["ab_outcome"] == "correct"
    assert int(metadata["ab_n_challenger"]) > 100 and float(metadata["ab_improvement"]) > 0.05
    assert metadata["evaluation_uri"].startswith("s3://")  # the lineage is kept
    # And the topic was told, and the report draws every look
    (note,) = messages(queue)
    assert note["Subject"] == "churn: A/B experiment PROMOTE: model v2 promoted"
    assert f"updating to {ENDPOINT}-v2" in note["Message"]
    saved = record(cloud)
    assert saved.final is not None and len(saved.looks) == len(results)
    assert saved.looks[-1].variants["Challenger"]["low"] < saved.looks[-1].variants["Challenger"]["mean"]
    report = cloud.s3.get_object(Bucket=ARTIFACTS, Key=RECORD.replace("experiment.json", "report.html"))
    html = report["Body"].read().decode()
    assert "<svg" in html and "PROMOTE" in html and "Challenger" in html
    # And a later look finds no experiment to decide
    assert evaluator(cloud, sns, arn).evaluate()["status"] == "no_experiment"


def test_a_worse_challenger_is_stopped_early_and_rejected(cloud: Cloud) -> None:
    start_experiment(cloud)
    sns, arn, queue = topic()
    results = run_looks(cloud, sns, arn, {"AllTraffic": 0.85, "Challenger": 0.6}, looks=10, requests=600)
    assert results[-1]["verdict"] == "STOP_WORSE" and "lies below 0" in results[-1]["reason"]
    assert len(results) < 10  # early: long before the 48 h maximum
    # the champion serves alone again, and v2 can never be the champion the next challenger meets
    assert cloud.endpoint()["EndpointConfigName"] == f"{ENDPOINT}-v1"
    assert routes() == {"AllTraffic": 1.0}
    assert package(cloud, 2)["ModelApprovalStatus"] == "Rejected"
    assert package(cloud, 1)["ModelApprovalStatus"] == "Approved"
    assert messages(queue)[0]["Subject"] == "churn: A/B experiment STOP_WORSE: model v2 stopped"


def test_a_tie_ends_at_the_maximum_duration_without_promotion(cloud: Cloud) -> None:
    start_experiment(cloud)
    sns, arn, _ = topic()
    # 200 labelled requests an hour: enough to detect the MDE within 48 h, but there is nothing to detect
    results = run_looks(cloud, sns, arn, {"AllTraffic": 0.8, "Challenger": 0.8}, looks=20, requests=600)
    assert [r["verdict"] for r in results[:-1]] == ["CONTINUE"] * (len(results) - 1)
    assert results[-1]["verdict"] == "STOP_FUTILE"
    assert "maximum duration reached without a decision" in results[-1]["reason"]
    assert len(results) == 16  # 48 h in looks every 3 h
    assert cloud.endpoint()["EndpointConfigName"] == f"{ENDPOINT}-v1"
    assert package(cloud, 2)["ModelApprovalStatus"] == "Rejected"


def test_too_little_traffic_to_detect_the_effect_in_time_stops_as_futile_early(cloud: Cloud) -> None:
    start_experiment(cloud)
    sns, arn, _ = topic()
    # 50 labelled requests an hour: about 2,100 by the end of the 42 h window, the MDE needs about 6,000
    results = run_looks(cloud, sns, arn, {"AllTraffic": 0.8, "Challenger": 0.8}, looks=20, requests=150)
    assert results[-1]["verdict"] == "STOP_FUTILE" and len(results) < 16
    assert "the MDE 0.05 cannot be detected within the maximum duration" in results[-1]["reason"]
    assert cloud.endpoint()["EndpointConfigName"] == f"{ENDPOINT}-v1"


def test_the_challengers_guardrail_stops_it_at_once(cloud: Cloud) -> None:
    # Given a running experiment whose challenger variant answers with a 5XX error
    start_experiment(cloud)
    sns, arn, _ = topic()
    cloud.cloudwatch.put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": "Invocation5XXErrors",
                "Dimensions": [
                    {"Name": "EndpointName", "Value": ENDPOINT},
                    {"Name": "VariantName", "Value": "Challenger"},
                ],
                "Timestamp": clock.now(),
                "Value": 3,
            }
        ],
    )
    # When the evaluator looks, before any label has arrived
    result = evaluator(cloud, sns, arn).evaluate()
    # Then the challenger is removed on the guardrail, with the reason
    assert result["verdict"] == "STOP_WORSE"
    assert result["reason"].startswith("guardrail: the challenger's Invocation5XXErrors (Sum per minute) reached 3")
    assert cloud.endpoint()["EndpointConfigName"] == f"{ENDPOINT}-v1"


def test_only_labelled_rows_of_the_experiments_window_count_once(cloud: Cloud) -> None:
    # Given an experiment, a label file of requests captured before it started, and one file uploaded twice
    start_experiment(cloud)
    sns, arn, _ = topic()
    rng = np.random.default_rng(1)
    started = clock.now()
    label_batch(cloud, rng, started, requests=100, rates={"AllTraffic": 0.8, "Challenger": 0.8})  # 30 min before
    at = advance(2)
    label_batch(cloud, rng, at, requests=120, rates={"AllTraffic": 0.8, "Challenger": 0.8})
    keys = [
        o["Key"] for o in cloud.s3.list_objects_v2(Bucket=ARTIFACTS, Prefix=f"{QUALITY}{at:%Y-%m-%dT%H-%M}")["Contents"]
    ]
    again = keys[0].replace("/labels-", "/labels-again-")  # the ground truth of the same label file, twice
    cloud.s3.copy_object(Bucket=ARTIFACTS, Key=again, CopySource={"Bucket": ARTIFACTS, "Key": keys[0]})
    # When the evaluator looks
    result = evaluator(cloud, sns, arn).evaluate()
    # Then only the 120 rows of the window count, each once, and there are too few for a decision
    assert result["status"] == "running" and result["verdict"] == "CONTINUE"
    look = record(cloud).looks[-1]
    assert look.decision["n_champion"] + look.decision["n_challenger"] == 120
    assert "a decision needs 100 of each" in look.decision["reason"]


def test_an_endpoint_without_a_challenger_has_no_experiment(cloud: Cloud) -> None:
    from tests.unit.lambdas.deploy.support import deployer, run_deployment

    assert run_deployment(deployer(cloud), cloud.register(1)).error is None
    sns, arn, _ = topic()
    assert evaluator(cloud, sns, arn).evaluate()["status"] == "no_experiment"


@pytest.mark.parametrize("missing", ["endpoint"])
def test_a_dataset_without_an_endpoint_is_a_no_op(cloud: Cloud, missing: str) -> None:
    sns, arn, _ = topic()
    assert evaluator(cloud, sns, arn).evaluate() == {"status": "no_endpoint", "endpoint": ENDPOINT}
    assert json.dumps(missing)


class FailingOnce:
    """The SageMaker client, whose first ``operation`` call fails (a throttle, an outage)."""

    def __init__(self, sagemaker: Any, operation: str) -> None:
        self._sagemaker, self._operation, self.failed = sagemaker, operation, False

    def __getattr__(self, name: str) -> Any:
        if name == self._operation and not self.failed:

            def fail(**kwargs: Any) -> Any:
                self.failed = True
                raise RuntimeError(f"{name} failed once")

            return fail
        return getattr(self._sagemaker, name)


def test_a_decision_whose_actions_fail_is_finished_by_the_next_look_not_decided_again(cloud: Cloud) -> None:
    # Given a worse challenger, and a registry that fails the first time the decision is recorded
    start_experiment(cloud)
    sns, arn, queue = topic()
    rng = np.random.default_rng(5)
    flaky = evaluator(cloud, sns, arn)
    flaky.clients.sagemaker = FailingOnce(cloud.sm, "update_model_package")
    result: dict[str, Any] = {"status": "running"}
    looks = 0
    while result["status"] == "running" and looks < 10:
        label_batch(cloud, rng, advance(3), requests=600, rates={"AllTraffic": 0.85, "Challenger": 0.6})
        looks += 1
        try:
            result = flaky.evaluate()
        except RuntimeError as error:
            assert str(error) == "update_model_package failed once"
            result = {"status": "failed"}
    # When the decision's first action failed
    assert result["status"] == "failed"
    kept = record(cloud)
    assert kept.final is not None and kept.final.decision["verdict"] == "STOP_WORSE" and kept.done == []
    assert cloud.endpoint()["EndpointConfigName"] == f"{ENDPOINT}-v2-ab"  # nothing acted yet
    # Then the next look (more labels have arrived meanwhile) finishes the same decision's actions
    label_batch(cloud, rng, advance(3), requests=600, rates={"AllTraffic": 0.85, "Challenger": 0.85})
    again = flaky.evaluate()
    assert again["verdict"] == "STOP_WORSE" and record(cloud).done == ["registry", "notification", "endpoint"]
    assert len(record(cloud).looks) == looks  # no new look: the decision stands
    assert package(cloud, 2)["ModelApprovalStatus"] == "Rejected"
    assert cloud.endpoint()["EndpointConfigName"] == f"{ENDPOINT}-v1"
    assert len(messages(queue)) == 1
