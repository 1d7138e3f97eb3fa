"""Teardown custom resource: on Delete, the stage's endpoints, configs and models go; nothing else does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from lambdas.cleanup import handler as cleanup_handler
from lambdas.cleanup.logic import Cleanup, CleanupTimeout, owned
from localcloud.shims import sagemaker_endpoints
from tests.unit.lambdas.support import FakeContext

REGION = "us-east-1"
PREFIX = "mlops-test"
ROLE = "arn:aws:iam::123456789012:role/endpoint"


@pytest.fixture
def sm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    sagemaker_endpoints.install()  # AWS-like SageMaker control plane (refuses duplicates, describes variants)
    monkeypatch.setenv("RESOURCE_PREFIX", PREFIX)
    cleanup_handler.settings.cache_clear()
    cleanup_handler.cleanup.cache_clear()
    # endpoints come up at once (the cleanup's logic, not SageMaker's provisioning delays: localcloud.durations)
    with sagemaker_endpoints.provisioning_times(sagemaker_endpoints.ProvisioningTimes.instant()), mock_aws():
        yield boto3.client("sagemaker", region_name=REGION)
    cleanup_handler.settings.cache_clear()
    cleanup_handler.cleanup.cache_clear()


def deployed(sm: Any, name: str, *, endpoint: bool = True) -> None:
    """A model, an endpoint config and (optionally) an endpoint, all called ``name``."""
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "i", "ModelDataUrl": "s3://a/m"})
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    if endpoint:
        sm.create_endpoint(EndpointName=name, EndpointConfigName=name)


def names(sm: Any) -> dict[str, list[str]]:
    return {
        "endpoints": sorted(e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]),
        "configs": sorted(c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]),
        "models": sorted(m["ModelName"] for m in sm.list_models()["Models"]),
    }


def event(request_type: str, physical_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
        "ResponseURL": "...",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/mlops-test/1",
        "RequestId": "r-1",
        "LogicalResourceId": "ServingPipelineResourcesCleanup",
        "ResourceType": "Custom::SageMakerCleanup",
        "ResourceProperties": {"ServiceToken": "x", "Prefix": PREFIX},
    }
    if physical_id:
        body["PhysicalResourceId"] = physical_id
    return body


def test_delete_removes_the_stage_resources_and_nothing_else(sm: Any) -> None:
    # Given the stage's endpoint (autoscaled), a leftover candidate, a config without endpoint, and others' resources
    deployed(sm, f"{PREFIX}-churn")
    deployed(sm, f"{PREFIX}-churn-smoke")
    deployed(sm, f"{PREFIX}-churn-v1", endpoint=False)
    deployed(sm, "mlops-prod-churn")
    deployed(sm, f"{PREFIX}ing-churn", endpoint=False)  # shares the characters, not the prefix
    aas = boto3.client("application-autoscaling", region_name=REGION)
    aas.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=f"endpoint/{PREFIX}-churn/variant/AllTraffic",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=1,
        MaxCapacity=2,
    )
    # When CloudFormation deletes the custom resource
    result = cleanup_handler.handler(event("Delete", f"{PREFIX}-sagemaker-cleanup"), FakeContext(remaining_ms=600_000))
    # Then exactly the stage's endpoints, configs and models are gone, and the scalable target with them
    assert result["PhysicalResourceId"] == f"{PREFIX}-sagemaker-cleanup"
    assert result["Data"] == {"endpoints": "2", "endpoint_configs": "3", "models": "3", "scalable_targets": "1"}
    assert names(sm) == {
        "endpoints": ["mlops-prod-churn"],
        "configs": ["mlops-prod-churn", f"{PREFIX}ing-churn"],
        "models": ["mlops-prod-churn", f"{PREFIX}ing-churn"],
    }
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_touch_nothing_and_keep_one_physical_id(sm: Any, request_type: str) -> None:
    deployed(sm, f"{PREFIX}-churn")
    physical = None if request_type == "Create" else f"{PREFIX}-sagemaker-cleanup"
    result = cleanup_handler.handler(event(request_type, physical), FakeContext(remaining_ms=600_000))
    assert result == {"PhysicalResourceId": f"{PREFIX}-sagemaker-cleanup"}
    assert names(sm)["endpoints"] == [f"{PREFIX}-churn"]


class SlowDeletes:
    """The real (moto) client, except that a deleted endpoint reports ``Deleting`` a few more times, as in AWS,
    and a listed model can already be gone when its turn comes."""

    def __init__(self, client: Any, deleting_polls: int) -> None:
        self.client = client
        self.deleting: dict[str, int] = {}
        self.deleting_polls = deleting_polls
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def delete_endpoint(self, EndpointName: str) -> None:
        self.calls.append(f"delete_endpoint {EndpointName}")
        self.client.delete_endpoint(EndpointName=EndpointName)
        self.deleting[EndpointName] = self.deleting_polls

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        if self.deleting.get(EndpointName, 0) > 0:
            self.deleting[EndpointName] -= 1
            return {"EndpointName": EndpointName, "EndpointStatus": "Deleting", "ProductionVariants": []}
        return dict(self.client.describe_endpoint(EndpointName=EndpointName))

    def delete_endpoint_config(self, EndpointConfigName: str) -> None:
        self.calls.append(f"delete_endpoint_config {EndpointConfigName}")
        self.client.delete_endpoint_config(EndpointConfigName=EndpointConfigName)

    def delete_model(self, ModelName: str) -> None:
        self.calls.append(f"delete_model {ModelName}")
        if ModelName.endswith("-gone"):
            self.client.delete_model(ModelName=ModelName)  # someone else got there first
        self.client.delete_model(ModelName=ModelName)


def test_configs_and_models_go_only_after_the_endpoints_are_gone(sm: Any) -> None:
    # Given an endpoint that takes two polls to disappear, and a model deleted by someone else meanwhile
    deployed(sm, f"{PREFIX}-churn")
    sm.create_model(ModelName=f"{PREFIX}-churn-gone", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "i"})
    client = SlowDeletes(sm, deleting_polls=2)
    sleeps: list[float] = []
    clock = iter(range(0, 10_000, 15))
    cleanup = Cleanup(
        client,
        boto3.client("application-autoscaling", region_name=REGION),
        sleep=sleeps.append,
        monotonic=lambda: float(next(clock)),
    )
    # When the cleanup runs
    report = cleanup.delete_all(PREFIX, deadline_seconds=300)
    # Then it waited for the endpoint before touching its config and model, and the vanished model is no error
    assert sleeps == [15, 15]
    assert client.calls == [
        f"delete_endpoint {PREFIX}-churn",
        f"delete_endpoint_config {PREFIX}-churn",
        f"delete_model {PREFIX}-churn",
        f"delete_model {PREFIX}-churn-gone",
    ]
    assert report.endpoints == [f"{PREFIX}-churn"]
    assert report.models == [f"{PREFIX}-churn"]  # the other one was already gone
    assert names(sm) == {"endpoints": [], "configs": [], "models": []}


def test_an_endpoint_that_never_goes_fails_the_cleanup_with_its_name(sm: Any) -> None:
    deployed(sm, f"{PREFIX}-churn")
    client = SlowDeletes(sm, deleting_polls=10_000)
    clock = iter(range(0, 100_000, 15))
    cleanup = Cleanup(
        client,
        boto3.client("application-autoscaling", region_name=REGION),
        sleep=lambda _: None,
        monotonic=lambda: float(next(clock)),
    )
    with pytest.raises(CleanupTimeout, match=rf"\['{PREFIX}-churn'\]"):
        cleanup.delete_all(PREFIX, deadline_seconds=120)
    assert names(sm)["configs"] == [f"{PREFIX}-churn"]  # left for the retry, with the endpoint's role intact


def test_an_empty_prefix_is_refused(sm: Any) -> None:
    with pytest.raises(ValueError, match="empty prefix"):
        Cleanup(sm, None).delete_all("", deadline_seconds=60)
    assert owned(["mlops-dev-a", "mlops-devx-b", "mlops-dev"], "mlops-dev") == ["mlops-dev-a"]


def test_a_service_error_that_is_not_not_found_propagates(sm: Any) -> None:
    class Denied(SlowDeletes):
        def delete_endpoint_config(self, EndpointConfigName: str) -> None:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DeleteEndpointConfig")

    deployed(sm, f"{PREFIX}-churn-v1", endpoint=False)
    cleanup = Cleanup(Denied(sm, 0), boto3.client("application-autoscaling", region_name=REGION))
    with pytest.raises(ClientError, match="AccessDeniedException"):
        cleanup.delete_all(PREFIX, deadline_seconds=60)
