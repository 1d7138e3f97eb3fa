"""The ETL's dataset manifest (manifests/<dataset>/latest.json): what a retrain starts from."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipelines.etl import glue_job

CURATED = "curated-bucket"


def job_args(execution_id: str) -> glue_job.JobArgs:
    values = {
        "JOB_NAME": "mlops-test-etl",
        "raw_bucket": "raw",
        "raw_key": "datasets/churn/file.csv",
        "curated_bucket": CURATED,
        "database": "mlops_test",
        "dataset": "churn",
        "execution_id": execution_id,
    }
    return glue_job.parse_job_args(["glue_job.py", *(t for k, v in values.items() for t in (f"--{k}", v))])


def lineage(version: str, status: str = "SUCCEEDED") -> dict[str, Any]:
    prefix = f"s3://{CURATED}/curated/dataset=churn/version={version}/"
    return {
        "dataset": "churn",
        "version": version,
        "status": status,
        "rows": {"input": 10, "valid": 10, "rejected": 0},
        "report_uri": f"{prefix}_quality_report.json",
        "curated_prefix": prefix,
        "files": {s: f"{prefix}split={s}/part-00000.parquet" for s in ("train", "validation", "test")},
    }


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=CURATED)
        yield client


def test_the_manifest_key_is_per_dataset() -> None:
    assert glue_job.manifest_key("churn") == "manifests/churn/latest.json"
    assert job_args("run-1").manifest_key == "manifests/churn/latest.json"


def test_a_newer_version_replaces_the_manifest(s3: Any) -> None:
    # Given the manifest of a first run
    glue_job.write_manifest(s3, job_args("run-1"), lineage("run-1"))

    # When a second run publishes its lineage
    uri = glue_job.write_manifest(s3, job_args("run-2"), lineage("run-2"))

    # Then the one manifest object is the second run's lineage record, as JSON
    assert uri == f"s3://{CURATED}/manifests/churn/latest.json"
    obj = s3.get_object(Bucket=CURATED, Key="manifests/churn/latest.json")
    assert obj["ContentType"] == "application/json"
    assert json.loads(obj["Body"].read()) == lineage("run-2")
    listed = s3.list_objects_v2(Bucket=CURATED, Prefix="manifests/")["Contents"]
    assert [o["Key"] for o in listed] == ["manifests/churn/latest.json"]


def test_a_failed_run_never_becomes_the_manifest(s3: Any) -> None:
    # Given a lineage record of a run that failed the quality gate
    # When it is published / Then it is refused and nothing is written
    with pytest.raises(ValueError, match="only a SUCCEEDED lineage record becomes the manifest, not 'FAILED'"):
        glue_job.write_manifest(s3, job_args("run-3"), lineage("run-3", status="FAILED"))
    assert "Contents" not in s3.list_objects_v2(Bucket=CURATED, Prefix="manifests/")
