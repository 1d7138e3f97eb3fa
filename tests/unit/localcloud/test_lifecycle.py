"""Lifecycle: one declared dataset's names from the stack outputs, its executions told apart from the other
datasets'; Lifecycle.endpoint: an endpoint that does not exist is None; any other failure is not hidden."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from localcloud.lifecycle import Lifecycle, dataset_of
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
