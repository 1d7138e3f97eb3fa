"""Contract and behaviour of the model-registry shim (approval keeps lineage; state-change events are emitted)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.sagemaker import models as sm_models
from moto.sagemaker import responses as sm_responses

from localcloud.runtime.journal import journal
from localcloud.shims import sagemaker_registry as shim
from tests.unit.localcloud import support
from tests.unit.localcloud.support import REGION, assert_pinned_moto, revisit, unique

SHIM = "sagemaker_registry"
INFERENCE = {
    "Containers": [{"Image": "sklearn:1.9-0", "ModelDataUrl": "s3://artifacts/models/v1/model.tar.gz"}],
    "SupportedContentTypes": ["text/csv"],
    "SupportedResponseMIMETypes": ["text/csv"],
}
LINEAGE = {"execution": "train-2027-01-15", "dataset_version": "v3"}


class Registry:
    """moto's SageMaker with an SQS queue that receives every aws.sagemaker event."""

    def __init__(self) -> None:
        self.sm = boto3.client("sagemaker", region_name=REGION)
        sqs, events = boto3.client("sqs", region_name=REGION), boto3.client("events", region_name=REGION)
        self.sqs = sqs
        self.queue = sqs.create_queue(QueueName=unique("registry-events"))["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        rule = unique("registry")
        events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["aws.sagemaker"]}))
        events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": arn}])
        self.group = unique("churn")
        self.sm.create_model_package_group(ModelPackageGroupName=self.group)

    def create(self, status: str = "PendingManualApproval", **extra: Any) -> str:
        return str(
            self.sm.create_model_package(
                ModelPackageGroupName=self.group,
                ModelApprovalStatus=status,
                InferenceSpecification=INFERENCE,
                CustomerMetadataProperties=LINEAGE,
                **extra,
            )["ModelPackageArn"]
        )

    def describe(self, arn: str) -> dict[str, Any]:
        return dict(self.sm.describe_model_package(ModelPackageName=arn))

    def events(self) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]


@pytest.fixture
def registry() -> Iterator[Registry]:
    shim.install()
    with mock_aws():
        yield Registry()


@pytest.fixture
def unpatched(monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    shim.install()
    monkeypatch.setattr(sm_responses.SageMakerResponse, "create_model_package", shim._original_create)
    monkeypatch.setattr(sm_models.SageMakerModelBackend, "update_model_package", shim._original_update)
    with mock_aws():
        yield Registry()


# ---- contract with the pinned moto ---------------------------------------------------------------------


def test_patch_points_still_exist_with_the_signatures_the_shim_implements() -> None:
    assert_pinned_moto(SHIM)
    assert list(inspect.signature(shim._original_create).parameters) == ["self"], revisit(SHIM)
    assert list(inspect.signature(shim._original_update).parameters) == list(
        inspect.signature(shim.update_model_package).parameters
    ), revisit(SHIM)
    backend_init = inspect.getsource(sm_models.SageMakerModelBackend.__init__)
    assert "self.model_packages" in backend_init and "self.model_package_name_mapping" in backend_init, revisit(SHIM)
    package = inspect.getsource(sm_models.ModelPackage.__init__)
    for attribute in (
        "self.model_package_group_name",
        "self.model_package_version",
        "self.model_approval_status",
        "self.approval_description",
        "self.customer_metadata_properties",
        "self.inference_specification",
    ):
        assert attribute in package, revisit(SHIM)


def test_pinned_moto_update_erases_what_the_request_does_not_carry(unpatched: Registry) -> None:
    # Given a rejected package with its lineage and the gate's reason
    arn = unpatched.create()
    unpatched.sm.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Rejected", ApprovalDescription="AUC 0.61"
    )
    rejected = unpatched.describe(arn)
    # Then already the first update dropped the lineage
    assert "CustomerMetadataProperties" not in rejected, revisit(SHIM)
    # When it is later approved without a description, then updated without a status
    unpatched.sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    approved = unpatched.describe(arn)
    unpatched.sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"note": "x"})
    noted = unpatched.describe(arn)
    # Then moto erased the description, and then even the approval status
    assert "ApprovalDescription" not in approved, revisit(SHIM)
    assert "ModelApprovalStatus" not in noted, revisit(SHIM)


def test_pinned_moto_fails_to_remove_metadata_without_new_metadata(unpatched: Registry) -> None:
    arn = unpatched.create()
    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'pop'"):
        unpatched.sm.update_model_package(ModelPackageArn=arn, CustomerMetadataPropertiesToRemove=["execution"])


def test_pinned_moto_emits_no_state_change_event(unpatched: Registry) -> None:
    arn = unpatched.create()
    unpatched.sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    assert unpatched.events() == [], revisit(SHIM)


# ---- behaviour -----------------------------------------------------------------------------------------


def test_a_new_version_emits_sagemakers_state_change_event(registry: Registry, clean_journal: None) -> None:
    # When a versioned package is registered
    arn = registry.create()
    # Then the default bus gets SageMaker's event, with the package as the stack's rules read it
    [event] = registry.events()
    assert (event["source"], event["detail-type"], event["resources"]) == (
        "aws.sagemaker",
        "SageMaker Model Package State Change",
        [arn],
    )
    detail = event["detail"]
    assert {k: detail[k] for k in ("ModelPackageGroupName", "ModelPackageVersion", "ModelPackageArn")} == {
        "ModelPackageGroupName": registry.group,
        "ModelPackageVersion": 1,
        "ModelPackageArn": arn,
    }
    assert (detail["ModelApprovalStatus"], detail["ModelPackageStatus"]) == ("PendingManualApproval", "Completed")
    assert detail["CustomerMetadataProperties"] == LINEAGE
    assert (
        detail["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == INFERENCE["Containers"][0]["ModelDataUrl"]
    )
    [entry] = [e.detail for e in journal.of("model-package") if e.detail["arn"] == arn]
    assert (entry["version"], entry["status"]) == (1, "PendingManualApproval")


def test_approval_keeps_lineage_and_reason_and_emits_one_event(registry: Registry) -> None:
    # Given a package rejected by the gate, with its reason
    arn = registry.create()
    registry.sm.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Rejected", ApprovalDescription="AUC 0.61"
    )
    # When an operator approves it without repeating the description
    registry.sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    # Then lineage and description survive, and each status change produced one event
    described = registry.describe(arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["CustomerMetadataProperties"] == LINEAGE
    assert described["ApprovalDescription"] == "AUC 0.61"
    statuses = [e["detail"]["ModelApprovalStatus"] for e in registry.events()]
    assert statuses == ["PendingManualApproval", "Rejected", "Approved"]


def test_an_update_without_a_status_keeps_it_and_merges_metadata_without_an_event(registry: Registry) -> None:
    arn = registry.create(status="Approved")
    registry.events()  # the creation event
    registry.sm.update_model_package(
        ModelPackageArn=arn,
        CustomerMetadataProperties={"deployed": "2027-01-15"},
        CustomerMetadataPropertiesToRemove=["dataset_version"],
    )
    described = registry.describe(arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["CustomerMetadataProperties"] == {"execution": "train-2027-01-15", "deployed": "2027-01-15"}
    assert registry.events() == []


def test_removing_metadata_alone_removes_only_those_keys(registry: Registry) -> None:
    arn = registry.create()
    registry.sm.update_model_package(ModelPackageArn=arn, CustomerMetadataPropertiesToRemove=["execution"])
    assert registry.describe(arn)["CustomerMetadataProperties"] == {"dataset_version": "v3"}


def test_an_unversioned_package_has_no_approval_workflow(registry: Registry) -> None:
    registry.sm.create_model_package(ModelPackageName=unique("standalone"), InferenceSpecification=INFERENCE)
    assert registry.events() == []


def test_installed_again_each_approval_change_emits_one_event(registry: Registry) -> None:
    # Given the shim installed again (every LocalCloud start and stop installs it)
    support.install_again(shim)
    # When a package is registered pending approval, then approved
    arn = registry.create()
    registry.sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    # Then the bus got exactly one state-change event per change
    assert [e["detail"]["ModelApprovalStatus"] for e in registry.events()] == ["PendingManualApproval", "Approved"]
