"""Teardown custom resource: on Delete, the stage's endpoints, configs and models go; on an Update that drops
datasets, theirs go; nothing else does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from lambdas.cleanup import handler as cleanup_handler
from lambdas.cleanup.logic import Cleanup, CleanupTimeout, Kind, owned, owner
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


def event(
    request_type: str,
    physical_id: str | None = None,
    datasets: list[str] | None = None,
    old_datasets: list[str] | None = None,
) -> dict[str, Any]:
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
    if datasets is not None:
        body["ResourceProperties"]["Datasets"] = datasets
    if old_datasets is not None:
        body["OldResourceProperties"] = {"ServiceToken": "x", "Prefix": PREFIX, "Datasets": old_datasets}
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


@pytest.mark.parametrize(
    ("request_type", "datasets", "old"),
    [
        ("Create", ["churn"], None),
        ("Update", ["churn"], ["churn"]),  # another property changed
        ("Update", ["churn", "energy"], ["churn"]),  # a dataset declared
        ("Update", ["churn"], None),  # the first update after the upgrade: the old properties had no datasets
    ],
)
def test_create_and_updates_that_retire_nothing_touch_nothing_and_keep_one_physical_id(
    sm: Any, request_type: str, datasets: list[str], old: list[str] | None
) -> None:
    deployed(sm, f"{PREFIX}-churn")
    physical = None if request_type == "Create" else f"{PREFIX}-sagemaker-cleanup"
    result = cleanup_handler.handler(event(request_type, physical, datasets, old), FakeContext(remaining_ms=600_000))
    assert result == {"PhysicalResourceId": f"{PREFIX}-sagemaker-cleanup"}
    assert names(sm)["endpoints"] == [f"{PREFIX}-churn"]


def served(sm: Any, endpoint: str, version: int, *, configs: tuple[str, ...] = ()) -> None:
    """What the deploy Lambda leaves for a dataset's endpoint ``<prefix>-<dataset>`` serving package ``version``:
    a model and a config ``<endpoint>-v<n>`` (plus the configs named by ``configs`` suffixes) and the endpoint."""
    base = f"{endpoint}-v{version}"
    deployed(sm, base, endpoint=False)
    for suffix in configs:
        sm.create_endpoint_config(
            EndpointConfigName=f"{base}{suffix}",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": base,
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=base)


def test_an_update_that_drops_a_dataset_retires_its_resources_only(sm: Any) -> None:
    # Given churn (serving v2, with smoke and shadow configs and a batch model) and churn-v2, a dataset whose names
    # start alike (its endpoint mlops-test-churn-v2 is also the name of churn's model and config of version 2)
    served(sm, f"{PREFIX}-churn", 2, configs=("-smoke", "-shadow"))
    sm.create_model(ModelName=f"{PREFIX}-churn-batch-v2", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "i"})
    served(sm, f"{PREFIX}-churn-v2", 1)
    deployed(sm, f"{PREFIX}-energy-v4")
    # When a stack update drops churn from the declared datasets
    result = cleanup_handler.handler(
        event("Update", f"{PREFIX}-sagemaker-cleanup", ["churn-v2", "energy"], ["churn", "churn-v2", "energy"]),
        FakeContext(remaining_ms=600_000),
    )
    # Then churn's endpoint, configs and models are gone; churn-v2 and energy keep theirs
    assert result["Data"] == {"endpoints": "1", "endpoint_configs": "3", "models": "2", "scalable_targets": "0"}
    assert names(sm) == {
        "endpoints": [f"{PREFIX}-churn-v2", f"{PREFIX}-energy-v4"],
        "configs": [f"{PREFIX}-churn-v2-v1", f"{PREFIX}-energy-v4"],
        "models": [f"{PREFIX}-churn-v2-v1", f"{PREFIX}-energy-v4"],
    }


@pytest.mark.parametrize(
    ("name", "kind", "owner_name"),
    [
        ("mlops-test-churn", "endpoint", "churn"),
        ("mlops-test-churn-smoke", "endpoint", "churn"),
        ("mlops-test-churn-v2", "endpoint", "churn-v2"),
        ("mlops-test-churn-v2", "endpoint-config", "churn"),
        ("mlops-test-churn-v2-v1-smoke", "endpoint-config", "churn-v2"),
        ("mlops-test-churn-batch-v7", "model", "churn"),
        ("mlops-test-churn-v2", "model", "churn"),  # churn-v2's models are churn-v2-v<n>
        ("mlops-test-sales-v1", "model", None),  # no known dataset's
        ("mlops-test-a-batch-v1", "model", None),  # a's batch model v1 or a-batch's model v1: kept
    ],
)
def test_each_name_belongs_to_at_most_one_dataset(name: str, kind: Kind, owner_name: str | None) -> None:
    assert owner(name, PREFIX, kind, ["churn", "churn-v2", "energy", "a", "a-batch"]) == owner_name


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
