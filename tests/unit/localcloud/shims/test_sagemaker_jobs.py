"""Contract and behaviour of the SageMaker jobs shim (training and processing jobs run their code)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.sagemaker import models as sm_models
from moto.sagemaker import responses as sm_responses

from localcloud.runtime.journal import journal
from localcloud.shims import sagemaker_jobs as shim
from pipelines.training.metric_definitions import METRIC_DEFINITIONS
from tests.tiers import heavy_fixture
from tests.unit.localcloud import support
from tests.unit.localcloud.support import REGION, ROLE, assert_pinned_moto, revisit, unique

SHIM = "sagemaker_jobs"
BUCKET = "sagemaker-jobs-test"
RESOURCES = {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1}


def training_job(client: Any, name: str, keep_alive: int = 0, **hyperparameters: str) -> None:
    client.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={
            "TrainingImage": "sklearn:1.9-0",
            "TrainingInputMode": "File",
            "MetricDefinitions": METRIC_DEFINITIONS[:2],
        },
        RoleArn=ROLE,
        HyperParameters={
            "sagemaker_program": json.dumps("train.py"),
            "sagemaker_submit_directory": json.dumps(f"s3://{BUCKET}/code/sourcedir.tar.gz"),
            **hyperparameters,
        },
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/train/"}},
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/models"},
        ResourceConfig={**RESOURCES, **({"KeepAlivePeriodInSeconds": keep_alive} if keep_alive else {})},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
        Environment={"MODEL_VERSION": "4"},
    )


def processing_job(client: Any, name: str, code: str) -> None:
    client.create_processing_job(
        ProcessingJobName=name,
        ProcessingResources={"ClusterConfig": RESOURCES},
        AppSpecification={"ImageUri": "sklearn:1.9-0", "ContainerEntrypoint": ["python3", "-c", code]},
        ProcessingOutputConfig={
            "Outputs": [
                {
                    "OutputName": "report",
                    "S3Output": {
                        "S3Uri": f"s3://{BUCKET}/evaluation/{name}",
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        RoleArn=ROLE,
        Environment={"OUTPUT": "/opt/ml/processing/output"},
    )


# ---- contract with the pinned moto ---------------------------------------------------------------------


def test_patch_points_still_exist() -> None:
    assert_pinned_moto(SHIM)
    for original in (
        shim._original_training,
        shim._original_processing,
        shim._original_transform,
        shim._original_list_training,
    ):
        assert list(inspect.signature(original).parameters) == ["self"], revisit(SHIM)
    # the job attributes the shim writes (describe_* reads them)
    training = inspect.getsource(sm_models.FakeTrainingJob)
    for attribute in (
        "self.training_job_status",
        "self.secondary_status",
        "self.final_metric_data_list",
        "self.model_artifacts",
        "self.training_end_time",
    ):
        assert attribute in training, revisit(SHIM)
    processing = inspect.getsource(sm_models.FakeProcessingJob)
    for attribute in ("self.processing_job_status", "self.processing_end_time"):
        assert attribute in processing, revisit(SHIM)
    assert "self.transform_job_status" in inspect.getsource(sm_models.FakeTransformJob), revisit(SHIM)


@pytest.fixture
def unpatched(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    shim.install()
    for name, original in (
        ("create_training_job", shim._original_training),
        ("create_processing_job", shim._original_processing),
        ("create_transform_job", shim._original_transform),
    ):
        monkeypatch.setattr(sm_responses.SageMakerResponse, name, original)
    with mock_aws():
        yield boto3.client("sagemaker", region_name=REGION)


def test_pinned_moto_completes_a_training_job_at_once_with_made_up_results(unpatched: Any) -> None:
    # Given moto's own training job
    name = unique("train")
    training_job(unpatched, name)
    described = unpatched.describe_training_job(TrainingJobName=name)
    # Then it is Completed at once, its metric definitions are replaced, its environment dropped,
    # its metrics made up and its model artifact never written
    assert described["TrainingJobStatus"] == "Completed", revisit(SHIM)
    assert described["AlgorithmSpecification"]["MetricDefinitions"] == [
        {"Name": "test:dcg", "Regex": "#quality_metric: host=\\S+, test dcg <score>=(\\S+)"}
    ], revisit(SHIM)
    assert "Environment" not in described, revisit(SHIM)
    assert [m["MetricName"] for m in described["FinalMetricDataList"]] == ["train:progress"], revisit(SHIM)
    assert described["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{BUCKET}/models/{name}/output/model.tar.gz"


def test_pinned_moto_completes_a_processing_job_at_once_and_drops_its_environment(unpatched: Any) -> None:
    name = unique("process")
    processing_job(unpatched, name, "raise SystemExit(1)")
    described = unpatched.describe_processing_job(ProcessingJobName=name)
    assert described["ProcessingJobStatus"] == "Completed", revisit(SHIM)
    assert "Environment" not in described and "ProcessingResources" not in described, revisit(SHIM)


def test_pinned_moto_replaces_a_transform_job_of_the_same_name(unpatched: Any) -> None:
    unpatched.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "img"})
    for output in ("s3://b/first/", "s3://b/second/"):
        unpatched.create_transform_job(
            TransformJobName="nightly",
            ModelName="m",
            TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in/"}}},
            TransformOutput={"S3OutputPath": output},
            TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
        )
    described = unpatched.describe_transform_job(TransformJobName="nightly")
    assert described["TransformJobStatus"] == "Completed", revisit(SHIM)
    assert described["TransformOutput"]["S3OutputPath"] == "s3://b/second/", revisit(SHIM)


# ---- behaviour -----------------------------------------------------------------------------------------


def test_without_a_cloud_the_request_is_kept_on_the_job() -> None:
    # Given the shim, but no running cloud (decorator mode)
    shim.install()
    shim.set_cloud(None)
    with mock_aws():
        client = boto3.client("sagemaker", region_name=REGION)
        name = unique("train")
        training_job(client, name)
        described = client.describe_training_job(TrainingJobName=name)
        processing = unique("process")
        processing_job(client, processing, "pass")
        described_processing = client.describe_processing_job(ProcessingJobName=processing)
    # Then the job keeps its own metric definitions and environment (it still completes at once)
    assert described["AlgorithmSpecification"]["MetricDefinitions"] == METRIC_DEFINITIONS[:2]
    assert described["Environment"] == {"MODEL_VERSION": "4"}
    assert described["TrainingJobStatus"] == "Completed"
    assert described_processing["Environment"] == {"OUTPUT": "/opt/ml/processing/output"}
    assert described_processing["ProcessingResources"] == {"ClusterConfig": RESOURCES}


def test_a_transform_job_name_in_use_is_refused() -> None:
    shim.install()
    shim.set_cloud(None)
    with mock_aws():
        client = boto3.client("sagemaker", region_name=REGION)
        client.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "img"})
        request = {
            "TransformJobName": "nightly",
            "ModelName": "m",
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in/"}}},
            "TransformOutput": {"S3OutputPath": "s3://b/out/"},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        }
        client.create_transform_job(**request)
        with pytest.raises(ClientError) as error:
            client.create_transform_job(**request)
    assert error.value.response["Error"]["Code"] == "ResourceInUse"
    assert "a transform job with this name already exists" in error.value.response["Error"]["Message"]


TRAIN = """
    import json, os, sys
    rows = sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"]))
    if os.environ.get("SM_HP_FAIL"):
        raise ValueError("label column 'churn' is missing")
    print("train:auc=0.91;")
    print("train:auc=0.93;")
    print("train:accuracy=0.88;")
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w") as handle:
        json.dump({"version": os.environ["MODEL_VERSION"], "rows": rows}, handle)
"""


@heavy_fixture
def cloud() -> Iterator[Any]:
    with support.training_cloud(BUCKET, TRAIN) as local:
        yield local


def test_a_training_job_runs_its_script_and_reports_what_it_logged(cloud: Any) -> None:
    # Given a training job of the scikit-learn script-mode kind
    sm = cloud.clients.sagemaker
    name = unique("train")
    training_job(sm, name)
    # When it ran
    cloud.settle()
    described = sm.describe_training_job(TrainingJobName=name)
    # Then it went InProgress -> Completed, with the metrics the script printed (the last value of each definition)
    assert (described["TrainingJobStatus"], described["SecondaryStatus"]) == ("Completed", "Completed")
    assert {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]} == {
        "train:auc": 0.93,
        "train:accuracy": 0.88,
    }
    assert described["AlgorithmSpecification"]["MetricDefinitions"] == METRIC_DEFINITIONS[:2]
    assert described["Environment"] == {"MODEL_VERSION": "4"}
    # And the model archive it wrote is where ModelArtifacts says
    artifact = described["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{BUCKET}/models/{name}/output/model.tar.gz"
    assert cloud.clients.s3.head_object(Bucket=BUCKET, Key=f"models/{name}/output/model.tar.gz")["ContentLength"] > 0
    # And its metrics and logs went where SageMaker sends them
    stats = cloud.clients.cloudwatch.get_metric_statistics(
        Namespace="/aws/sagemaker/TrainingJobs",
        MetricName="train:auc",
        Dimensions=[{"Name": "TrainingJobName", "Value": name}],
        StartTime=described["TrainingStartTime"].replace(year=2000),
        EndTime=described["TrainingEndTime"].replace(year=2100),
        Period=60,
        Statistics=["Maximum"],
    )
    assert [p["Maximum"] for p in stats["Datapoints"]] == [0.93]
    events = cloud.clients.logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=f"{name}/algo-1"
    )["events"]
    assert "train:auc=0.93;" in [e["message"] for e in events]
    assert [e.detail["status"] for e in journal.of("training-job") if e.detail["job"] == name] == [
        "InProgress",
        "Completed",
    ]


def test_a_failing_training_job_fails_with_the_scripts_error(cloud: Any) -> None:
    # Given a training job whose script raises (told so by a hyperparameter, SM_HP_FAIL)
    sm = cloud.clients.sagemaker
    name = unique("train-fail")
    training_job(sm, name, fail="yes")
    # When it ran
    cloud.settle()
    described = sm.describe_training_job(TrainingJobName=name)
    # Then it Failed with the script's error as the reason, and no model
    assert (described["TrainingJobStatus"], described["SecondaryStatus"]) == ("Failed", "Failed")
    assert described["FailureReason"] == "AlgorithmError: ValueError: label column 'churn' is missing"
    assert "ModelArtifacts" not in described


def test_a_processing_job_runs_its_container_command_and_uploads_its_outputs(cloud: Any) -> None:
    # Given an evaluation-like processing job writing a report to its output path
    sm = cloud.clients.sagemaker
    name = unique("evaluate")
    code = "import os; open(os.path.join(os.environ['OUTPUT'], 'report.json'), 'w').write('{\"auc\": 0.9}')"
    processing_job(sm, name, code)
    # When it ran
    cloud.settle()
    # Then it Completed and its output is in S3
    described = sm.describe_processing_job(ProcessingJobName=name)
    assert described["ProcessingJobStatus"] == "Completed"
    body = cloud.clients.s3.get_object(Bucket=BUCKET, Key=f"evaluation/{name}/report.json")["Body"].read()
    assert json.loads(body) == {"auc": 0.9}
    assert [e.detail["status"] for e in journal.of("processing-job") if e.detail["job"] == name] == [
        "InProgress",
        "Completed",
    ]


def test_a_failing_processing_job_fails_with_its_error(cloud: Any) -> None:
    sm = cloud.clients.sagemaker
    name = unique("evaluate-fail")
    processing_job(sm, name, "raise KeyError('champion')")
    cloud.settle()
    described = sm.describe_processing_job(ProcessingJobName=name)
    assert described["ProcessingJobStatus"] == "Failed"
    assert described["FailureReason"].startswith("AlgorithmError: KeyError: 'champion' (exit code 1; python3 -c ")


def test_a_run_job_leaves_its_warm_pool_when_it_ends_and_the_next_one_takes_it(cloud: Any) -> None:
    from localcloud.runtime import warm_pools

    # Given an account with warm pool quota, and a job that keeps its instance for an hour (the shim's dispatcher runs
    # it: the pool is kept when the script has ended, not when moto creates the job)
    warm_pools.set_quota({"ml.m5.large": 1})
    shim.set_cloud(cloud)  # (a decorator-mode test in this module resets it)
    sm = cloud.clients.sagemaker
    names = [unique("warm"), unique("warm")]
    try:
        for name in names:
            training_job(sm, name, keep_alive=3600)
            cloud.settle()
    finally:
        warm_pools.set_quota(None)
    first, second = (sm.describe_training_job(TrainingJobName=name) for name in names)
    # Then both ran their script; the first's pool went to the second, which now holds it
    assert (first["TrainingJobStatus"], second["TrainingJobStatus"]) == ("Completed", "Completed")
    assert first["WarmPoolStatus"]["Status"] == "Reused" and first["WarmPoolStatus"]["ReusedByJob"] == names[1]
    assert second["WarmPoolStatus"]["Status"] == "Available"
    assert [e.detail["status"] for e in journal.of("warm-pool") if e.detail["job"] in names] == [
        "Available",
        "InUse",
        "Available",
    ]


def test_installed_again_one_training_job_is_one_run_handed_to_the_cloud(clean_journal: None) -> None:
    # Given the shim installed again and a cloud to run jobs
    cloud = support.stand_in_cloud()
    support.install_again(shim)
    shim.set_cloud(cloud)
    try:
        with mock_aws():
            client = boto3.client("sagemaker", region_name=REGION)
            # When one training job is created
            training_job(client, "once")
            # Then moto holds one job, InProgress until it runs, and the shim handed one run to the cloud
            jobs = client.list_training_jobs()["TrainingJobSummaries"]
            assert [(j["TrainingJobName"], j["TrainingJobStatus"]) for j in jobs] == [("once", "InProgress")]
            assert cloud.dispatcher.work == ["_run_training_job"]
            assert [e.detail["status"] for e in journal.of("training-job")] == ["InProgress"]
    finally:
        shim.set_cloud(None)
