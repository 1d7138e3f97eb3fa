"""SageMaker managed warm pools in the training job shim, against moto in decorator mode (moto's job is Completed at
once; the keep-alive runs on the cloud clock, which the tests advance). Each rule is one from SageMaker's developer
guide ("Train using SageMaker managed warm pools") or its API reference (WarmPoolStatus, ResourceConfig)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from localcloud.clock import clock
from localcloud.runtime import warm_pools
from localcloud.shims import sagemaker_jobs as shim
from tests.unit.localcloud.support import ACCOUNT, REGION, ROLE, unique

POOL = {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10, "KeepAlivePeriodInSeconds": 3600}
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/volume"


@pytest.fixture
def sagemaker() -> Iterator[Any]:
    """The shim without a running cloud, an account whose warm pool quota is 2 ml.m5.large, cloud time realigned."""
    shim.install()
    shim.set_cloud(None)
    warm_pools.set_quota({"ml.m5.large": 2})
    clock.reset()
    with mock_aws():
        yield boto3.client("sagemaker", region_name=REGION)
    warm_pools.set_quota(None)
    clock.reset()


def train(client: Any, name: str, *, role: str = ROLE, **changes: Any) -> str:
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": "sklearn:1.9-0", "TrainingInputMode": "File"},
        "RoleArn": role,
        "InputDataConfig": [
            {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/t/"}}}
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://b/models"},
        "ResourceConfig": {**POOL, "VolumeKmsKeyId": KEY},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    for key, value in changes.items():
        if key in POOL or key == "VolumeKmsKeyId":
            request["ResourceConfig"][key] = value
        else:
            request[key] = value
    request["ResourceConfig"] = {k: v for k, v in request["ResourceConfig"].items() if v is not None}
    client.create_training_job(**request)
    return name


def pool_of(client: Any, name: str) -> dict[str, Any] | None:
    return client.describe_training_job(TrainingJobName=name).get("WarmPoolStatus")


def test_a_job_with_a_keep_alive_leaves_an_available_pool_billed_while_retained(sagemaker: Any) -> None:
    # Given a training job that asked to keep its instance for an hour
    first = train(sagemaker, unique("first"))
    described = sagemaker.describe_training_job(TrainingJobName=first)
    # Then it ended with its pool Available and its keep-alive as asked
    assert described["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 3600
    assert described["WarmPoolStatus"] == {"Status": "Available", "ResourceRetainedBillableTimeInSeconds": 0}
    # When 10 minutes of cloud time pass, the retained time is billed
    clock.advance(600)
    assert pool_of(sagemaker, first)["ResourceRetainedBillableTimeInSeconds"] in (600, 601)
    # and past the keep-alive the pool is Terminated, billed for the whole hour
    clock.advance(3000)
    assert pool_of(sagemaker, first) == {"Status": "Terminated", "ResourceRetainedBillableTimeInSeconds": 3600}


def test_a_matching_job_within_the_keep_alive_reuses_the_pool(sagemaker: Any) -> None:
    # Given a pool left 25 minutes ago (the gap between two iterations of dev's loop)
    first = train(sagemaker, unique("first"))
    clock.advance(1500)
    # When the next job of the same role, instance, volume and key starts
    second = train(sagemaker, unique("second"))
    # Then the first job's pool moved to it: Reused, billed for the 25 minutes, naming the job that took it
    assert pool_of(sagemaker, first) == {
        "Status": "Reused",
        "ResourceRetainedBillableTimeInSeconds": pytest.approx(1500, abs=1),
        "ReusedByJob": second,
    }
    # and the second job (Completed at once in moto) holds it Available for its own keep-alive
    assert pool_of(sagemaker, second)["Status"] == "Available"
    # and a third matching job takes it again
    third = train(sagemaker, unique("third"), KeepAlivePeriodInSeconds=None)
    assert pool_of(sagemaker, second)["ReusedByJob"] == third
    # a job that asked for no keep-alive lets the pool go when it ends
    assert pool_of(sagemaker, third) == {"Status": "Terminated", "ResourceRetainedBillableTimeInSeconds": 0}


@pytest.mark.parametrize(
    "changes",
    [
        {"InstanceType": "ml.m5.xlarge"},
        {"InstanceCount": 2},
        {"VolumeSizeInGB": 20},
        {"VolumeKmsKeyId": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/other"},
        {"role": f"arn:aws:iam::{ACCOUNT}:role/other"},
        {"VpcConfig": {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]}},
        {"EnableNetworkIsolation": True},
        {"EnableInterContainerTrafficEncryption": True},
    ],
    ids=lambda changes: next(iter(changes)),
)
def test_a_job_that_differs_in_a_matching_value_starts_cold(sagemaker: Any, changes: dict[str, Any]) -> None:
    # Given an Available pool
    first = train(sagemaker, unique("first"))
    # When a job differing in one of the guide's matching values starts
    other = train(sagemaker, unique("other"), **changes)
    # Then it did not take the pool, which stays Available
    assert pool_of(sagemaker, first)["Status"] == "Available"
    assert "ReusedByJob" not in pool_of(sagemaker, first)
    del other


def test_an_expired_pool_is_not_reused(sagemaker: Any) -> None:
    first = train(sagemaker, unique("first"), KeepAlivePeriodInSeconds=900)
    clock.advance(901)
    second = train(sagemaker, unique("second"))
    assert pool_of(sagemaker, first) == {"Status": "Terminated", "ResourceRetainedBillableTimeInSeconds": 900}
    assert pool_of(sagemaker, second)["Status"] == "Available"  # its own cold cluster's pool


def test_without_warm_pool_quota_the_job_runs_and_keeps_no_pool(sagemaker: Any) -> None:
    # Given an account without warm pool quota for the instance type (a new account's: 0)
    warm_pools.set_quota({})
    # When a job asks for a keep-alive
    name = train(sagemaker, unique("no-quota"))
    described = sagemaker.describe_training_job(TrainingJobName=name)
    # Then it is not refused: it completes, and no pool is retained (nothing billed)
    assert described["TrainingJobStatus"] == "Completed"
    assert described["WarmPoolStatus"] == {"Status": "Terminated", "ResourceRetainedBillableTimeInSeconds": 0}


def test_retained_instances_count_against_the_quota_of_their_type(sagemaker: Any) -> None:
    # Given a quota of 2 ml.m5.large and two different pools of one instance each
    first = train(sagemaker, unique("a"))
    second = train(sagemaker, unique("b"), VolumeSizeInGB=20)
    # When a third, different one ends
    third = train(sagemaker, unique("c"), VolumeSizeInGB=30)
    # Then the quota is used up: it keeps none; the first two stay
    assert [pool_of(sagemaker, n)["Status"] for n in (first, second, third)] == ["Available", "Available", "Terminated"]


def test_list_training_jobs_reports_and_filters_by_warm_pool_status(sagemaker: Any) -> None:
    # Given a pool that moved to a second job, and a job that asked for none (on another volume: it takes no pool)
    first = train(sagemaker, unique("list"))
    second = train(sagemaker, unique("list"))
    plain = train(sagemaker, unique("list"), KeepAlivePeriodInSeconds=None, VolumeSizeInGB=20)
    # Then each summary carries its pool's status, and WarmPoolStatusEquals keeps the jobs whose pool is in it
    summaries = {s["TrainingJobName"]: s for s in sagemaker.list_training_jobs()["TrainingJobSummaries"]}
    assert summaries[first]["WarmPoolStatus"]["Status"] == "Reused"
    assert summaries[second]["WarmPoolStatus"]["Status"] == "Available"
    assert "WarmPoolStatus" not in summaries[plain]
    available = sagemaker.list_training_jobs(WarmPoolStatusEquals="Available")["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in available] == [second]


def test_a_job_without_a_keep_alive_reports_no_warm_pool(sagemaker: Any) -> None:
    name = train(sagemaker, unique("plain"), KeepAlivePeriodInSeconds=None)
    assert pool_of(sagemaker, name) is None


def test_a_keep_alive_above_the_api_range_is_refused(sagemaker: Any) -> None:
    # (botocore refuses a negative one before sending it; the maximum is checked by the service)
    with pytest.raises(ClientError) as error:
        train(sagemaker, unique("range"), KeepAlivePeriodInSeconds=21601)
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert "keepAlivePeriodInSeconds" in error.value.response["Error"]["Message"]


def test_a_keep_alive_with_spot_training_is_refused(sagemaker: Any) -> None:
    with pytest.raises(ClientError) as error:
        train(sagemaker, unique("spot"), EnableManagedSpotTraining=True)
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert "cannot be used with managed spot training" in error.value.response["Error"]["Message"]


def test_update_training_job_changes_or_ends_an_available_pool(sagemaker: Any) -> None:
    # Given an Available pool, 5 minutes retained
    name = train(sagemaker, unique("update"))
    clock.advance(300)
    # When its keep-alive is cut to 10 minutes, it ends 10 minutes after the job
    sagemaker.update_training_job(TrainingJobName=name, ResourceConfig={"KeepAlivePeriodInSeconds": 600})
    assert sagemaker.describe_training_job(TrainingJobName=name)["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 600
    clock.advance(301)
    assert pool_of(sagemaker, name) == {"Status": "Terminated", "ResourceRetainedBillableTimeInSeconds": 600}
    # and an ended pool cannot be updated
    with pytest.raises(ClientError) as error:
        sagemaker.update_training_job(TrainingJobName=name, ResourceConfig={"KeepAlivePeriodInSeconds": 60})
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert "is Terminated: only an Available warm pool" in error.value.response["Error"]["Message"]
    # and 0 terminates a pool at once, billed for what it was retained
    other = train(sagemaker, unique("terminate"))
    clock.advance(120)
    sagemaker.update_training_job(TrainingJobName=other, ResourceConfig={"KeepAlivePeriodInSeconds": 0})
    assert pool_of(sagemaker, other) == {
        "Status": "Terminated",
        "ResourceRetainedBillableTimeInSeconds": pytest.approx(120, abs=1),
    }


def test_a_pool_survives_a_failed_job_only_for_an_algorithm_or_client_error() -> None:
    # the release rule itself (a moto job never fails in decorator mode): the guide's "Warm pool creation"
    from types import SimpleNamespace

    warm_pools.set_quota({"ml.m5.large": 5})
    try:
        kept = []
        for reason in (None, "AlgorithmError: ValueError: x", "ClientError: Cannot pull", "InternalServerError: x"):
            job = SimpleNamespace(
                training_job_name=unique("job"),
                resource_config=dict(POOL),
                vpc_config=None,
                role_arn=ROLE,
                enable_inter_container_traffic_encryption=False,
                enable_network_isolation=False,
            )
            warm_pools.release(job, reason, [], clock.time())
            kept.append(warm_pools.status(job)["Status"])  # type: ignore[index]
        assert kept == ["Available", "Available", "Available", "Terminated"]
    finally:
        warm_pools.set_quota(None)
