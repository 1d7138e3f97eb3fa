"""Batch transform jobs in a started local cloud: a real trained model scores S3 objects through its container."""

from __future__ import annotations

import csv
import io
import os
import tarfile
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from localcloud.runtime.journal import journal
from pipelines.data.generator import generate, to_csv_bytes
from pipelines.etl.transforms import SPLIT, run_transform
from pipelines.features import model_frame
from pipelines.training import train
from pipelines.training.hyperparameters import Hyperparameters
from stacks.config import QualityGate
from tests.samples import CHURN_SCHEMA
from tests.tiers import heavy_fixture

pytestmark = pytest.mark.slow

BUCKET = "batch-data"
ROLE = "arn:aws:iam::123456789012:role/transform"
MODEL = "churn-batch-model"
FEATURES = list(CHURN_SCHEMA.feature_names)


class Model:
    def __init__(self, archive: Path, pipeline: Any) -> None:
        self.archive = archive
        self.pipeline = pipeline

    def probabilities(self, frame: Any) -> np.ndarray:
        return np.asarray(self.pipeline.predict_proba(model_frame(frame, CHURN_SCHEMA))[:, 1])


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Model:
    """A model trained by the training code on generated rows, packed as SageMaker's model.tar.gz."""
    result = run_transform(to_csv_bytes(generate(3000, seed=3)), "csv", CHURN_SCHEMA, QualityGate())
    curated = result.curated
    frames = {s: curated[curated[SPLIT] == s].drop(columns=[SPLIT]) for s in ("train", "validation")}
    hyperparameters = Hyperparameters(max_iter=30)
    trained = train.train(frames["train"], frames["validation"], CHURN_SCHEMA, hyperparameters)
    directory = tmp_path_factory.mktemp("model")
    train.write_model_artifacts(directory / "model", trained, CHURN_SCHEMA, hyperparameters, "batch-test-v1")
    archive = train.package_model(directory / "model", directory / "model.tar.gz")
    return Model(archive, trained.pipeline)


@heavy_fixture
def cloud(model: Model) -> Iterator[Any]:
    """A started local cloud (no stack) holding the model; the process environment is restored afterwards."""
    from localcloud import shims
    from localcloud.cloud import LocalCloud

    saved = dict(os.environ)
    local = LocalCloud().start()
    try:
        s3, sm = local.clients.s3, local.clients.sagemaker
        s3.create_bucket(Bucket=BUCKET)
        s3.upload_file(str(model.archive), BUCKET, "models/model.tar.gz")
        sm.create_model(
            ModelName=MODEL,
            ExecutionRoleArn=ROLE,
            PrimaryContainer={
                "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3",
                "ModelDataUrl": f"s3://{BUCKET}/models/model.tar.gz",
                "Environment": {
                    "SAGEMAKER_PROGRAM": "inference.py",
                    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                },
            },
        )
        local.kms_key = local.clients.kms.create_key()["KeyMetadata"]["Arn"]
        yield local
    finally:
        local.stop()
        from localcloud.shims import cloudwatch_alarms, events_targets, glue_jobs, sagemaker_jobs

        for shim in (events_targets, glue_jobs, sagemaker_jobs, cloudwatch_alarms):
            shim.set_cloud(None)
        del shims
        os.environ.clear()
        os.environ.update(saved)


def _csv(frame: Any, header: bool = False) -> bytes:
    buffer = io.StringIO()
    frame[FEATURES].to_csv(buffer, index=False, header=header, na_rep="")
    return buffer.getvalue().encode()


def _job(name: str, uri: str, **overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TransformJobName": name,
        "ModelName": MODEL,
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 1,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
            "ContentType": "text/csv",
            "SplitType": "Line",
            "CompressionType": "None",
        },
        "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/out/{name}/", "Accept": "text/csv", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    request.update(overrides)
    return request


def _wait(sm: Any, name: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = sm.describe_transform_job(TransformJobName=name)
        if job["TransformJobStatus"] not in ("InProgress", "Stopping"):
            return dict(job)
        time.sleep(0.1)
    raise AssertionError(f"transform job {name} still running after {timeout:.0f} s")


def _rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode())))


# ---- contract with the pinned moto -------------------------------------------------------------------------


def test_pinned_moto_still_completes_transform_jobs_at_once_and_overwrites_names() -> None:
    from moto.sagemaker.models import FakeTransformJob, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    # Given the pinned moto's transform job model
    assert version("moto") == "5.2.5"
    backend = SageMakerModelBackend("us-east-1", "123456789012")
    arguments: dict[str, Any] = {
        "transform_job_name": "j",
        "model_name": "m",
        "max_concurrent_transforms": None,
        "model_client_config": None,
        "max_payload_in_mb": None,
        "batch_strategy": None,
        "environment": None,
        "transform_input": {},
        "transform_output": {},
        "data_capture_config": None,
        "transform_resources": {},
        "data_processing": None,
        "tags": None,
        "experiment_config": None,
    }
    # When a job is created twice under one name, straight through the backend (no shim)
    first = backend.create_transform_job(**arguments)
    second = backend.create_transform_job(**arguments)
    # Then moto completes it at once and replaces the first silently: the gaps the shim closes are still there
    assert first.transform_job_status == "Completed"
    assert backend.transform_jobs == {"j": second}
    # And the patch points the shim uses still exist
    assert callable(SageMakerResponse.create_transform_job)
    used = {"transform_job_status", "failure_reason", "transform_end_time", "transform_start_time", "model_name"}
    assert used <= set(vars(second))
    assert FakeTransformJob.arn_formatter("j", "123456789012", "us-east-1") == (
        "arn:aws:sagemaker:us-east-1:123456789012:transform-job/j"
    )


# ---- behaviour in the local cloud --------------------------------------------------------------------------


def test_multi_record_job_scores_every_row_like_the_model_itself(cloud: Any, model: Model) -> None:
    s3, sm = cloud.clients.s3, cloud.clients.sagemaker
    # Given two CSV uploads under one prefix (one with a header line, one in a sub-folder)
    first, second = generate(700, seed=11), generate(300, seed=12)
    s3.put_object(Bucket=BUCKET, Key="batch-input/a.csv", Body=_csv(first, header=True))
    s3.put_object(Bucket=BUCKET, Key="batch-input/day2/b.csv", Body=_csv(second))
    # When a MultiRecord transform job with KMS output runs over the prefix
    request = _job("multi", f"s3://{BUCKET}/batch-input/")
    request["TransformOutput"]["KmsKeyId"] = cloud.kms_key
    sm.create_transform_job(**request)
    started = sm.describe_transform_job(TransformJobName="multi")
    job = _wait(sm, "multi")
    # Then the job went InProgress -> Completed
    assert started["TransformJobStatus"] == "InProgress"
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert job["TransformEndTime"] >= job["TransformStartTime"]
    # And each input has its <name>.out with one "probability,label" line per row, equal to the model's answer
    for key, frame in (("a.csv.out", first), ("day2/b.csv.out", second)):
        response = s3.get_object(Bucket=BUCKET, Key=f"out/multi/{key}")
        rows = _rows(response["Body"].read())
        assert len(rows) == len(frame)
        probabilities = np.array([float(p) for p, _ in rows])
        np.testing.assert_allclose(probabilities, model.probabilities(frame), atol=1e-9)
        assert [int(label) for _, label in rows] == [int(p >= 0.5) for p in probabilities]
        assert (response["ServerSideEncryption"], response["SSEKMSKeyId"]) == ("aws:kms", cloud.kms_key)
    # And the journal records the run like the other jobs
    done = [e.detail for e in journal.of("transform-job") if e.detail["job"] == "multi"]
    assert [d["status"] for d in done] == ["InProgress", "Completed"]
    assert (done[-1]["objects"], done[-1]["records"]) == (2, 1001)  # the header line is a record too


def test_single_record_manifest_job_joins_ids_with_predictions(cloud: Any, model: Model) -> None:
    s3, sm = cloud.clients.s3, cloud.clients.sagemaker
    # Given rows with their customer id first, listed by a manifest
    frame = generate(5, seed=21)
    body = frame[[CHURN_SCHEMA.key, *FEATURES]].to_csv(index=False, header=False, na_rep="").encode()
    s3.put_object(Bucket=BUCKET, Key="keyed/rows.csv", Body=body)
    s3.put_object(Bucket=BUCKET, Key="keyed/manifest.json", Body=f'[{{"prefix": "s3://{BUCKET}/keyed/"}}, "rows.csv"]')
    request = _job(
        "joined",
        f"s3://{BUCKET}/keyed/manifest.json",
        BatchStrategy="SingleRecord",
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-2,-1]"},
    )
    request["TransformInput"]["DataSource"]["S3DataSource"]["S3DataType"] = "ManifestFile"
    # When the job runs
    sm.create_transform_job(**request)
    job = _wait(sm, "joined")
    # Then every row came back as id, probability, label after one request per record
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    rows = _rows(s3.get_object(Bucket=BUCKET, Key="out/joined/rows.csv.out")["Body"].read())
    assert [r[0] for r in rows] == list(frame[CHURN_SCHEMA.key])
    np.testing.assert_allclose([float(r[1]) for r in rows], model.probabilities(frame), atol=1e-9)
    done = [e.detail for e in journal.of("transform-job") if e.detail["job"] == "joined"][-1]
    assert (done["records"], done["requests"]) == (5, 5)


def test_bad_payload_fails_the_job_with_the_containers_message(cloud: Any) -> None:
    s3, sm = cloud.clients.s3, cloud.clients.sagemaker
    # Given a CSV whose rows have the wrong number of columns
    s3.put_object(Bucket=BUCKET, Key="bad/rows.csv", Body=b"1,2,3\n4,5,6\n")
    # When a job scores it
    sm.create_transform_job(**_job("bad", f"s3://{BUCKET}/bad/"))
    job = _wait(sm, "bad")
    # Then it fails with the status and message of the inference handler's 4xx, and writes no output
    assert job["TransformJobStatus"] == "Failed"
    assert job["FailureReason"].startswith(
        f"ClientError: the model container answered 400 for s3://{BUCKET}/bad/rows.csv (records 1-2): "
    )
    assert "column" in job["FailureReason"]
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="out/bad/")


def test_a_job_name_in_use_is_refused(cloud: Any) -> None:
    sm = cloud.clients.sagemaker
    # Given a finished job
    sm.create_transform_job(**_job("twice", f"s3://{BUCKET}/bad/"))
    _wait(sm, "twice")
    # When another job is created under its name
    with pytest.raises(ClientError) as raised:
        sm.create_transform_job(**_job("twice", f"s3://{BUCKET}/batch-input/"))
    # Then SageMaker's ResourceInUse error says so, and the first job is kept
    assert raised.value.response["Error"]["Code"] == "ResourceInUse"
    assert "a transform job with this name already exists" in raised.value.response["Error"]["Message"]
    assert sm.describe_transform_job(TransformJobName="twice")["TransformJobStatus"] == "Failed"


def test_model_archive_layout_is_what_the_container_loads(model: Model) -> None:
    # Given the packed model / Then it holds what the inference toolkit loads (a guard for the fixture itself)
    with tarfile.open(model.archive) as archive:
        names = set(archive.getnames())
    assert {"model.joblib", "model_metadata.json", "code/inference.py"} <= names
