"""Lifecycle.endpoint: an endpoint that does not exist is None; any other failure is not hidden."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from localcloud.lifecycle import Lifecycle
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
