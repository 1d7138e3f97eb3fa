"""Batch inference Lambda: an upload under batch-input/<dataset>/ becomes one transform job with that dataset's
champion."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from lambdas.batch_inference import handler as batch_handler
from lambdas.batch_inference.logic import BatchInference, job_name
from lambdas.shared.s3_events import S3Object
from localcloud.shims import sagemaker_endpoints
from pipelines.platform import platform
from tests.unit.lambdas.support import ACCOUNT, REGION, FakeContext, create_table, object_created

PREFIX = GROUP = "mlops-dev-churn"  # churn's resource prefix and group in the dev platform document
INPUT = "batch-input/churn/"
KMS = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1"
OUTPUT = "s3://curated-bucket/batch-output/"


@pytest.fixture
def sm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    sagemaker_endpoints.install()  # AWS-like: creating a model under an existing name is refused
    with mock_aws():
        create_table("batch-idempotency", "id")
        client = boto3.client("sagemaker", region_name=REGION)
        client.create_model_package_group(ModelPackageGroupName=GROUP)
        for name, value in {
            "OUTPUT_URI": OUTPUT,
            "ENDPOINT_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/endpoint",
            "KMS_KEY_ARN": KMS,
            "IDEMPOTENCY_TABLE": "batch-idempotency",
        }.items():
            monkeypatch.setenv(name, value)
        for cached in (batch_handler.settings, batch_handler.batch, batch_handler.start_once):
            cached.cache_clear()
        yield client
    for cached in (batch_handler.settings, batch_handler.batch, batch_handler.start_once):
        cached.cache_clear()


def package(sm: Any, version: int, status: str = "Approved") -> str:
    return str(
        sm.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus=status,
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": "sklearn-image",
                        "ModelDataUrl": f"s3://artifacts/models/train-{version}/output/model.tar.gz",
                        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )["ModelPackageArn"]
    )


def jobs(sm: Any) -> list[dict[str, Any]]:
    return [
        sm.describe_transform_job(TransformJobName=j["TransformJobName"])
        for j in sm.list_transform_jobs()["TransformJobSummaries"]
    ]


def test_upload_runs_a_transform_job_with_the_newest_approved_package(sm: Any) -> None:
    # Given approved v1, rejected v2, approved v3 and a pending v4
    package(sm, 1)
    package(sm, 2, "Rejected")
    champion = package(sm, 3)
    package(sm, 4, "PendingManualApproval")
    # When a CSV lands under batch-input/
    decision = batch_handler.handler(object_created(f"{INPUT}march.csv"), FakeContext())
    # Then one transform job scores it with v3, line by line, into the curated zone, encrypted
    assert decision["started"] is True
    assert decision["model_package_arn"] == champion
    (job,) = jobs(sm)
    name = job["TransformJobName"]
    assert name == decision["job_name"] == job_name(PREFIX, S3Object("raw-bucket", f"{INPUT}march.csv", "v1", 1))
    assert job["ModelName"] == f"{PREFIX}-batch-v3"
    assert job["TransformInput"] == {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://raw-bucket/{INPUT}march.csv"}},
        "ContentType": "text/csv",
        "SplitType": "Line",
        "CompressionType": "None",
    }
    assert job["TransformOutput"] == {
        "S3OutputPath": f"{OUTPUT}{name}/",
        "Accept": "text/csv",
        "AssembleWith": "Line",
        "KmsKeyId": KMS,
    }
    assert job["TransformResources"] == {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeKmsKeyId": KMS}
    model = sm.describe_model(ModelName=f"{PREFIX}-batch-v3")
    assert model["PrimaryContainer"]["ModelDataUrl"] == "s3://artifacts/models/train-3/output/model.tar.gz"
    assert model["PrimaryContainer"]["Environment"] == {"SAGEMAKER_PROGRAM": "inference.py"}


def test_the_same_event_twice_runs_one_job(sm: Any) -> None:
    # Given an upload event delivered twice (EventBridge is at-least-once)
    package(sm, 1)
    event = object_created(f"{INPUT}march.csv")
    # When the handler sees it twice
    first = batch_handler.handler(event, FakeContext())
    second = batch_handler.handler(event, FakeContext())
    # Then one job runs, and the second call answers with the first result
    assert first["started"] is True
    assert second == first
    assert len(jobs(sm)) == 1


def test_a_new_version_of_the_same_key_runs_again_with_the_same_model(sm: Any) -> None:
    package(sm, 1)
    first = batch_handler.handler(object_created(f"{INPUT}march.csv", version="v1"), FakeContext())
    second = batch_handler.handler(object_created(f"{INPUT}march.csv", version="v2"), FakeContext())
    assert first["job_name"] != second["job_name"]
    assert {j["ModelName"] for j in jobs(sm)} == {f"{PREFIX}-batch-v1"}
    assert len(sm.list_models()["Models"]) == 1


class RefusesDuplicateJobs:
    """moto replaces a transform job created twice under one name; AWS refuses it like this."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def create_transform_job(self, **_: Any) -> None:
        message = "Job name must be unique within an AWS account and region, and a job with this name already exists"
        raise ClientError({"Error": {"Code": "ResourceInUse", "Message": message}}, "CreateTransformJob")


def test_a_job_already_started_under_its_name_is_not_started_again(sm: Any) -> None:
    # Given a job for this object version that exists outside the idempotency record (e.g. the record expired)
    package(sm, 1)
    logic = BatchInference(RefusesDuplicateJobs(sm), batch_handler.settings().logic(platform().dataset("churn")))
    # When the same object version comes again
    decision = logic.start(S3Object("raw-bucket", f"{INPUT}march.csv", "v1", 10))
    # Then nothing new starts, and the answer names the existing job
    assert decision.started is False
    assert decision.reason == "a transform job for this object version already exists"
    assert decision.job_name == job_name(PREFIX, S3Object("raw-bucket", f"{INPUT}march.csv", "v1", 10))


@pytest.mark.parametrize(
    ("key", "size", "expected"),
    [
        (INPUT, 0, "is a folder marker"),
        (f"{INPUT}empty.csv", 0, "is empty (0 bytes)"),
        (f"{INPUT}notes.txt", 10, "is not CSV"),
        (
            "batch-input/march.csv",
            10,
            "the key is not under a dataset folder: batch inputs go to batch-input/<dataset>",
        ),
        ("batch-input/sales/march.csv", 10, "'sales' is not a declared dataset: batch inputs go to"),
    ],
)
def test_folder_markers_empty_and_other_files_are_ignored_with_a_log_line(
    sm: Any, caplog: pytest.LogCaptureFixture, key: str, size: int, expected: str
) -> None:
    package(sm, 1)
    decision = batch_handler.handler(object_created(key, size=size), FakeContext())
    assert decision["started"] is False
    assert expected in decision["reason"]
    assert jobs(sm) == []
    (logged,) = [r for r in caplog.records if r.getMessage() == "batch input ignored"]
    assert expected in logged.__dict__["reason"] and logged.__dict__["key"] == key


def test_without_a_champion_nothing_runs(sm: Any) -> None:
    package(sm, 1, "Rejected")
    decision = batch_handler.handler(object_created(f"{INPUT}march.csv"), FakeContext())
    assert decision == {
        "started": False,
        "reason": f"no Approved model package in {GROUP}: nothing to score with",
        "job_name": None,
        "model_name": None,
        "model_package_arn": None,
        "output_uri": None,
    }
    assert jobs(sm) == []


def test_job_names_are_deterministic_and_valid() -> None:
    obj = S3Object("b", INPUT + "a very long (file) name" * 5 + ".csv", "v1", 5)
    name = job_name(PREFIX, obj)
    assert name == job_name(PREFIX, obj)
    assert len(name) <= 63
    assert all(c.isalnum() or c == "-" for c in name) and name.startswith(f"{PREFIX}-batch-")
    assert name != job_name(PREFIX, S3Object("b", obj.key, "v2", 5))


def test_each_dataset_scores_with_its_own_champion(sm: Any) -> None:
    # Given a champion for churn only
    package(sm, 1)
    sm.create_model_package_group(ModelPackageGroupName="mlops-dev-energy")
    # When a batch input lands under energy's folder
    decision = batch_handler.handler(object_created("batch-input/energy/april.csv"), FakeContext())
    # Then energy's group is searched (churn's model never scores energy's rows)
    assert decision["started"] is False
    assert decision["reason"] == "no Approved model package in mlops-dev-energy: nothing to score with"
    assert jobs(sm) == []


def test_a_private_stage_scores_with_a_model_in_the_vpc_with_network_isolation(
    sm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the function of a network: private stage (the stack sets the VPC's subnets and group) and a champion
    monkeypatch.setenv("MODEL_SUBNETS", "subnet-a,subnet-b")
    monkeypatch.setenv("MODEL_SECURITY_GROUPS", "sg-1")
    batch_handler.settings.cache_clear()
    package(sm, 1)
    requests: list[dict[str, Any]] = []
    sm.meta.events.register("provide-client-params.sagemaker.CreateModel", lambda params, **_: requests.append(params))
    settings = batch_handler.settings().logic(platform().dataset("churn"))
    # When an upload is scored
    decision = BatchInference(sm, settings).start(S3Object("raw-bucket", f"{INPUT}march.csv", "v1", 1))
    # Then the transform job's model runs in the VPC with network isolation (a transform job runs in its model's)
    assert decision.started is True
    (request,) = requests
    assert request["VpcConfig"] == {"Subnets": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]}
    assert request["EnableNetworkIsolation"] is True
