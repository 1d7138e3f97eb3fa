"""Lifecycle: one declared dataset's names from the stack outputs, its executions told apart from the other
datasets' (described again only when its status changes); Lifecycle.endpoint: an endpoint that does not exist is
None; any other failure is not hidden; cloud time slowed only during an update's traffic steps."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from localcloud.clock import clock
from localcloud.lifecycle import Lifecycle, dataset_of, interleaved, traffic_step
from localcloud.shims.sagemaker_endpoints import Route
from stacks.datasets import dataset_schema
from tests.samples import CHURN_SCHEMA

OUTPUTS = {
    "RawBucket": "raw",
    "CuratedBucket": "curated",
    "ArtifactsBucket": "artifacts",
    "TrainingStateMachine": "arn:aws:states:us-east-1:123456789012:stateMachine:t",
    "DeploymentStateMachine": "arn:aws:states:us-east-1:123456789012:stateMachine:d",
    "EndpointName": "mlops-dev-churn",
    "ModelPackageGroup": "mlops-dev-churn",
    "NotificationsTopic": "arn:aws:sns:us-east-1:123456789012:n",
    "Datasets": '["churn", "tickets"]',
    "DatasetResources": json.dumps(
        {
            name: {
                "endpoint": f"mlops-dev-{name}",
                "model_package_group": f"mlops-dev-{name}-group",
                "raw_upload_prefix": f"datasets/{name}/",
            }
            for name in ("churn", "tickets")
        }
    ),
}


def lifecycle_with(error_code: str, message: str) -> tuple[Lifecycle, Stubber]:
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    stubber = Stubber(sagemaker)
    stubber.add_client_error("describe_endpoint", service_error_code=error_code, service_message=message)
    stubber.activate()
    cloud: Any = SimpleNamespace(clients=SimpleNamespace(sagemaker=sagemaker))
    return Lifecycle(cloud, SimpleNamespace(outputs=OUTPUTS), CHURN_SCHEMA), stubber  # type: ignore[arg-type]


def test_an_endpoint_that_does_not_exist_is_none() -> None:
    lc, _ = lifecycle_with("ValidationException", "Could not find endpoint mlops-dev-churn.")
    assert lc.endpoint() is None


def test_any_other_failure_is_raised() -> None:
    lc, _ = lifecycle_with("ThrottlingException", "Rate exceeded")
    with pytest.raises(ClientError, match="Rate exceeded"):
        lc.endpoint()


def test_a_lifecycle_uses_its_datasets_endpoint_group_and_prefix() -> None:
    # Given the stack outputs of two datasets / When a lifecycle is made for each
    churn, _ = lifecycle_with("ValidationException", "unused")
    tickets = churn.for_dataset(dataset_schema("tickets"))

    # Then each reads its own names from DatasetResources and they share the notifications inbox
    assert (churn.endpoint_name, churn.group, churn.raw_prefix) == (
        "mlops-dev-churn",
        "mlops-dev-churn-group",
        "datasets/churn/",
    )
    assert (tickets.endpoint_name, tickets.group, tickets.raw_prefix) == (
        "mlops-dev-tickets",
        "mlops-dev-tickets-group",
        "datasets/tickets/",
    )
    assert tickets.notifications is churn.notifications


def test_a_dataset_that_is_not_deployed_names_the_deployed_ones() -> None:
    # Given a stack declaring churn and tickets / When a lifecycle is asked for energy / Then the error lists them
    churn, _ = lifecycle_with("ValidationException", "unused")
    with pytest.raises(KeyError) as raised:
        churn.for_dataset(dataset_schema("energy"))
    assert "dataset 'energy' is not deployed (declared: churn, tickets)" in str(raised.value)


@pytest.mark.parametrize(
    ("execution_input", "dataset"),
    [
        ({"dataset": "tickets", "trigger": {"source": "upload"}}, "tickets"),  # a training run names its dataset
        ({"model_package_group": "mlops-dev-churn-group", "trigger": "approval"}, "churn"),  # a deployment: group
        ({"model_package_group": "mlops-dev-other", "trigger": "approval"}, None),  # a group of no dataset
        ({}, None),
    ],
)
def test_an_execution_belongs_to_the_dataset_its_input_names(
    execution_input: dict[str, Any], dataset: str | None
) -> None:
    groups = {"mlops-dev-churn-group": "churn", "mlops-dev-tickets-group": "tickets"}
    assert dataset_of(execution_input, groups) == dataset


def _routes(*shares: tuple[str, float]) -> list[Route]:
    """Production routes of the endpoint: (config, share of the traffic) each."""
    return [Route(config, "AllTraffic", f"model-{config}", share, "production") for config, share in shares]


SHADOW = Route("v2", "Shadow", "model-v2-shadow", 1.0, "shadow")


@pytest.mark.parametrize(
    ("routes", "step"),
    [
        ([], False),  # no endpoint, or one still being created
        (_routes(("v1", 1.0)), False),  # in service on one config (also while the green fleet is provisioned)
        (_routes(("v1", 0.75), ("v2", 0.25)), True),  # a canary: both fleets answer
        (_routes(("v1", 0.5), ("v2", 0.5)), True),  # a linear step
        (_routes(("v2", 1.0)), False),  # the final bake and the termination wait: all traffic on the new fleet
        ([*_routes(("v1", 1.0)), SHADOW], False),  # a shadow variant gets copies, not production traffic
    ],
)
def test_a_traffic_step_splits_production_traffic_between_two_configs(routes: list[Route], step: bool) -> None:
    assert traffic_step(routes) is step


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ([], False),
        (["m1", "m1", "m2"], False),  # the switch, not a canary: the old model never answers again
        (["m1", "m2", "m2", "m1"], True),
        (["m2", "m1", "m2"], True),  # the new fleet answered first: the old one's answer is surrounded all the same
        (["m1", None, "m2", None, "m1"], True),  # an answer without a model version does not count
        (["m1", "m2", "m3"], False),
    ],
)
def test_two_models_interleave_when_one_answers_again_after_the_other(
    answers: list[str | None], expected: bool
) -> None:
    assert interleaved(answers) is expected


def test_cloud_time_slows_while_a_traffic_step_bakes_and_holds_until_both_models_answer_in_turn() -> None:
    # Given an endpoint that goes through an update as its routes show it, and the cloud at 240x
    lc, _ = lifecycle_with("ValidationException", "unused")
    phase: dict[str, Any] = {"now": _routes(("v1", 1.0))}

    def routes() -> list[Route]:
        if phase["now"] is None:
            raise RuntimeError("the endpoint could not be read")
        return list(phase["now"])

    lc.routes = routes  # type: ignore[method-assign]
    previous = clock.scale
    clock.set_scale(240.0)

    def scale_becomes(expected: float) -> bool:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if clock.scale == expected:
                return True
            time.sleep(0.01)
        return False

    try:
        with lc.slowed_during_traffic_steps(40.0, poll=0.01, hold_limit=2.0):
            # When the endpoint serves one config (before the update, and while the green fleet is provisioned and
            # its containers start: the endpoint shim does not count a wait for local containers): full speed
            time.sleep(0.1)
            assert clock.scale == 240.0
            # When the canary takes part of the traffic: real speed until the clients saw both models answer in
            # turn since the step began (answers before it do not count), then slow, also while a look fails
            lc.answered += ["m1", "m2", "m1"]
            phase["now"] = _routes(("v1", 0.75), ("v2", 0.25))
            assert scale_becomes(1.0)
            lc.answered += ["m1", "m2"]
            time.sleep(0.1)
            assert clock.scale == 1.0
            lc.answered.append("m1")
            assert scale_becomes(40.0)
            phase["now"] = None
            time.sleep(0.1)
            assert clock.scale == 40.0
            # When all traffic is on the new fleet (final bake, termination wait): full speed again
            phase["now"] = _routes(("v2", 1.0))
            assert scale_becomes(240.0)
            # A next step holds again, for at most the hold limit
            phase["now"] = _routes(("v2", 0.5), ("v3", 0.5))
            assert scale_becomes(1.0)
            assert scale_becomes(40.0)
        # Then leaving the block, even inside a step, restores the speed it started at
        assert clock.scale == 240.0
    finally:
        clock.set_scale(previous)


def test_an_execution_is_described_again_only_when_its_listed_status_changes() -> None:
    # Given a training run that is listed running twice, then succeeded twice
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    stubber = Stubber(sfn)
    machine = OUTPUTS["TrainingStateMachine"]
    arn = "arn:aws:states:us-east-1:123456789012:execution:t:run-1"
    started, stopped = datetime(2026, 11, 1, 12, tzinfo=UTC), datetime(2026, 11, 1, 12, 5, tzinfo=UTC)
    listed = {"executionArn": arn, "stateMachineArn": machine, "name": "run-1", "startDate": started}
    running = {"executions": [{**listed, "status": "RUNNING"}]}
    succeeded = {"executions": [{**listed, "status": "SUCCEEDED", "stopDate": stopped}]}
    described = {**listed, "input": '{"dataset": "churn"}'}
    for listing, description in [
        (running, {**described, "status": "RUNNING"}),
        (running, None),
        (succeeded, {**described, "status": "SUCCEEDED", "stopDate": stopped, "output": '{"model": "v1"}'}),
        (succeeded, None),
    ]:
        stubber.add_response("list_executions", listing, {"stateMachineArn": machine})
        if description is not None:
            stubber.add_response("describe_execution", description, {"executionArn": arn})
    stubber.activate()
    cloud: Any = SimpleNamespace(clients=SimpleNamespace(stepfunctions=sfn))
    lc = Lifecycle(cloud, SimpleNamespace(outputs=OUTPUTS), CHURN_SCHEMA)  # type: ignore[arg-type]
    # When its executions are read four times / Then each read sees the listed status, and only a change of status
    # is described (the stub holds no other description: one more call would fail)
    reads = [lc.executions(machine) for _ in range(4)]
    assert [r[0].status for r in reads] == ["RUNNING", "RUNNING", "SUCCEEDED", "SUCCEEDED"]
    assert reads[3][0].output == {"model": "v1"} and reads[3][0].stopped == stopped.timestamp()
    assert all(r[0].input == {"dataset": "churn"} for r in reads)
    stubber.assert_no_pending_responses()
