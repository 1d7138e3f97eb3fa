"""Batch inference per task: the transform job the Lambda configures, run by the local cloud's Batch Transform
(``localcloud/runtime/transform.py``) through the inference handler's own request path, answers every input row
with one line of its task's CSV answer, in input order, so each answer joins back to its row."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from lambdas.batch_inference.logic import BatchInference, BatchSettings
from lambdas.shared.answers import csv_answers
from lambdas.shared.s3_events import S3Object
from localcloud.runtime.transform import run_transform
from localcloud.shims import sagemaker_endpoints
from pipelines.inference.inference import transform_fn
from pipelines.schema import DatasetSchema
from tests.samples import CHURN_SCHEMA, ENERGY_SCHEMA, TICKETS_SCHEMA
from tests.unit.lambdas.support import ACCOUNT, REGION

SAMPLES = {"churn": CHURN_SCHEMA, "tickets": TICKETS_SCHEMA, "energy": ENERGY_SCHEMA}
RAW, CURATED, GROUP = "raw-bucket", "curated-bucket", "mlops-test-churn"
SAMPLE_DIR = "pipelines/data/sample"


class RowModel:
    """A stand-in for the loaded model behind the real inference handler (decode, validate, encode): its output
    for a row is a function of the row's first numeric feature only, so a test can recompute the answer of any
    input row on its own."""

    threshold = 0.5
    version = "m-1"

    def __init__(self, schema: DatasetSchema) -> None:
        self.schema = schema
        self.feature = schema.numeric_features[0]

    def predict_columns(self, columns: dict[str, np.ndarray], rows: int) -> np.ndarray:
        return expected_output(self.schema, np.nan_to_num(columns[self.feature]))


def expected_output(schema: DatasetSchema, x: np.ndarray) -> np.ndarray:
    if schema.task == "regression":
        return 2 * x + 1
    scores = 1 / (1 + np.exp(-(x % 7 - 3)))
    if schema.task == "binary":
        return scores
    weights = np.column_stack([(x % (k + 2)) + 1 for k in range(len(schema.class_labels))])
    return weights / weights.sum(axis=1, keepdims=True)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    sagemaker_endpoints.install()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (RAW, CURATED):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=RAW, VersioningConfiguration={"Status": "Enabled"})
        sm = boto3.client("sagemaker", region_name=REGION)
        sm.create_model_package_group(ModelPackageGroupName=GROUP)
        sm.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [{"Image": "sklearn-image", "ModelDataUrl": "s3://artifacts/models/m.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )
        yield s3, sm


def start_job(s3: Any, sm: Any, body: bytes, key: str) -> dict[str, Any]:
    """Upload ``body`` under batch-input/, let the Lambda's logic start the job, return its request."""
    version = s3.put_object(Bucket=RAW, Key=key, Body=body)["VersionId"]
    settings = BatchSettings(
        model_package_group=GROUP,
        output_uri=f"s3://{CURATED}/batch-output/",
        input_prefix="batch-input/",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/endpoint",
        kms_key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1",
        instance_type="ml.m5.large",
        resource_prefix="mlops-test",
    )
    decision = BatchInference(sm, settings).start(S3Object(RAW, key, version, len(body)))
    assert decision.started, decision.reason
    job = sm.describe_transform_job(TransformJobName=decision.job_name)
    return {k: job[k] for k in ("TransformInput", "TransformOutput", "BatchStrategy", "MaxPayloadInMB", "Environment")}


def container(model: RowModel, monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> Any:
    """The model container as Batch Transform calls it: the job's environment, then ``transform_fn`` per request."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    def invoke(body: bytes, content_type: str, accept: str | None) -> tuple[int, bytes]:
        answer = transform_fn(model, body, content_type, accept)  # type: ignore[arg-type]
        assert isinstance(answer, tuple), answer
        return 200, answer[0].encode()

    return invoke


@pytest.mark.parametrize("name", ["churn", "tickets", "energy"])
@pytest.mark.parametrize("header", [False, True])
def test_every_input_row_gets_its_tasks_answer_on_its_own_line_in_order(
    aws: Any, monkeypatch: pytest.MonkeyPatch, name: str, header: bool
) -> None:
    s3, sm = aws
    schema = SAMPLES[name]
    # Given 500 rows of a sample dataset's features in schema order (missing values empty), with or without header
    rows = pd.read_csv(f"{SAMPLE_DIR}/{name}.csv", nrows=500, keep_default_na=False, dtype=str)[schema.feature_names]
    body = rows.to_csv(index=False, header=header, quoting=csv.QUOTE_MINIMAL).encode()
    # When the Lambda starts the transform job and Batch Transform runs it through the inference handler
    request = start_job(s3, sm, body, f"batch-input/{name}.csv")
    model = RowModel(schema)
    result = run_transform(s3, request, container(model, monkeypatch, request["Environment"]))
    assert result.ok, result.reason
    # Then the output holds exactly one CSV answer line per data row (the header has none), in the task's shape
    (done,) = result.objects
    key = done["output"].removeprefix(f"s3://{CURATED}/")
    text = s3.get_object(Bucket=CURATED, Key=key)["Body"].read().decode()
    answers = csv_answers(text, schema.task, schema.class_labels).rows
    assert len(text.splitlines()) == len(answers) == len(rows)
    # And line i answers row i: recomputed from that row alone, every task's answer matches its line
    x = pd.to_numeric(rows[model.feature], errors="coerce").fillna(0.0).to_numpy()
    expected = expected_output(schema, x)
    labels = [str(label) for label in schema.class_labels]
    for i, answer in enumerate(answers):
        if schema.task == "regression":
            assert answer.value == pytest.approx(expected[i])
        elif schema.task == "binary":
            assert answer.probability == pytest.approx(expected[i])
            assert answer.label == (1 if expected[i] >= 0.5 else 0)
        else:
            assert answer.probabilities == pytest.approx(dict(zip(labels, expected[i], strict=True)))
            assert answer.label == labels[int(np.argmax(expected[i]))]


def test_the_job_asks_for_csv_answers_line_by_line_for_every_task(aws: Any) -> None:
    # Given any upload
    s3, sm = aws
    request = start_job(s3, sm, b"1,2\n", "batch-input/x.csv")
    # Then rows go one per line and come back one answer per line: text/csv is the only answer format with a line
    # per row (an application/json answer is one document per mini-batch, which AssembleWith Line cannot split)
    assert request["TransformInput"]["ContentType"] == "text/csv"
    assert request["TransformInput"]["SplitType"] == "Line"
    assert request["TransformOutput"]["Accept"] == "text/csv"
    assert request["TransformOutput"]["AssembleWith"] == "Line"
