"""The Lambda ETL of a small upload: the handler runs the Glue job's driver in one process on moto S3 and the moto
Glue catalog (its parity with the Glue job: tests/integration/test_glue_job.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pydantic import ValidationError

from lambdas.etl import handler as etl_handler
from lambdas.shared.settings import from_environment
from pipelines.data.generator import corrupt_with_defects, generate, to_csv_bytes
from pipelines.etl.driver import EtlJobError
from tests.samples import CHURN_SCHEMA
from tests.unit.lambdas.support import FakeContext

RAW, CURATED, DATABASE = "raw-bucket", "curated-bucket", "mlops_test"
KEY = "datasets/churn/day1.csv"
MAX_BYTES = 1_000_000


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3, glue = boto3.client("s3"), boto3.client("glue")
        for bucket in (RAW, CURATED):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=RAW, VersioningConfiguration={"Status": "Enabled"})
        glue.create_database(DatabaseInput={"Name": DATABASE})
        environment = {"CURATED_BUCKET": CURATED, "GLUE_DATABASE": DATABASE, "ETL_MAX_BYTES": str(MAX_BYTES)}
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(etl_handler, "settings", from_environment(etl_handler.Settings))
        yield {"s3": s3, "glue": glue}


def event(s3: Any, body: bytes, *, size: int | None = None) -> dict[str, Any]:
    """The state machine's payload for an upload of ``body`` (``size``: what the S3 event said)."""
    version = s3.put_object(Bucket=RAW, Key=KEY, Body=body)["VersionId"]
    upload = {"bucket": RAW, "key": KEY, "version_id": version, "size": len(body) if size is None else size}
    return {"execution": "day1-csv-0123456789abcdef", "dataset": "churn", "upload": upload}


def keys(s3: Any, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=CURATED, Prefix=prefix).get("Contents", []))


def test_a_small_upload_becomes_a_curated_catalogued_dataset_and_the_manifest(aws: dict[str, Any]) -> None:
    # Given: the sample-sized churn upload with a few rejects
    s3, glue = aws["s3"], aws["glue"]
    body = to_csv_bytes(corrupt_with_defects(generate(2_000, seed=5), 0.01, seed=3, schema=CHURN_SCHEMA)[0])

    # When: the state machine invokes the function
    result = etl_handler.handler(event(s3, body), FakeContext(aws_request_id="req-42"))

    # Then: the answer has the Glue task's shape ($.etl: job_run_id and state) and the lineage
    assert result["job_run_id"] == "req-42" and result["state"] == "SUCCEEDED"
    lineage = result["lineage"]
    assert lineage["engine"] == "lambda" and lineage["rows"] == {"input": 2_000, "valid": 1_980, "rejected": 20}
    version = "curated/dataset=churn/version=day1-csv-0123456789abcdef/"
    assert keys(s3, "curated/") == [
        f"{version}_quality_report.json",
        *(f"{version}split={split}/part-00000.parquet" for split in ("test", "train", "validation")),
    ]
    assert keys(s3, "quarantine/")[-1].endswith("/rejected.jsonl")
    manifest = json.loads(s3.get_object(Bucket=CURATED, Key="manifests/churn/latest.json")["Body"].read())
    assert manifest == json.loads(json.dumps(lineage, default=str))
    partitions = glue.get_partitions(DatabaseName=DATABASE, TableName="churn")["Partitions"]
    assert sorted(p["Values"][1] for p in partitions) == ["test", "train", "validation"]
    # and the result is far below Lambda's 6 MB synchronous response limit
    assert len(json.dumps(result, default=str)) < 10_000


def test_a_failed_gate_fails_the_invocation_with_the_glue_jobs_reason(aws: dict[str, Any]) -> None:
    # Given: an upload with 20% bad rows
    s3 = aws["s3"]
    body = to_csv_bytes(corrupt_with_defects(generate(1_000, seed=3), 0.2, seed=1, schema=CHURN_SCHEMA)[0])

    # When / Then: the error's message starts with the machine-readable reason (the Lambda's errorMessage)
    with pytest.raises(EtlJobError, match=r"^QualityGateFailed: rejected share 0\.2000 > 0\.05"):
        etl_handler.handler(event(s3, body), FakeContext())
    # and nothing is published, the report and the quarantine say why
    assert keys(s3, "manifests/") == []
    assert [k.rsplit("/", 1)[-1] for k in keys(s3, "curated/")] == ["_quality_report.json"]
    assert keys(s3, "quarantine/")[-1].endswith("/rejected.jsonl")


def test_an_upload_above_the_threshold_is_refused_before_it_is_read(aws: dict[str, Any]) -> None:
    # Given: an event whose object is larger than ETL_MAX_BYTES (the Choice sends those to Glue)
    s3 = aws["s3"]
    payload = event(s3, to_csv_bytes(generate(200, seed=1)), size=MAX_BYTES + 1)

    # When / Then
    with pytest.raises(EtlJobError, match=r"^TooLargeForLambda: .* is 1000001 bytes, above the Lambda ETL's 1000000"):
        etl_handler.handler(payload, FakeContext())
    assert keys(s3, "") == []


def test_a_missing_raw_version_is_reported(aws: dict[str, Any]) -> None:
    payload = event(aws["s3"], to_csv_bytes(generate(200, seed=1)))
    payload["upload"]["version_id"] = "no-such-version"
    with pytest.raises(EtlJobError, match=r"^RawObjectUnavailable: s3://raw-bucket/datasets/churn/day1.csv"):
        etl_handler.handler(payload, FakeContext())


def test_an_event_without_the_upload_or_a_setting_fails_naming_it(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValidationError, match="upload"):
        etl_handler.handler({"execution": "x", "dataset": "churn"}, FakeContext())
    monkeypatch.delenv("GLUE_DATABASE")
    monkeypatch.setattr(etl_handler, "settings", from_environment(etl_handler.Settings))
    with pytest.raises(ValidationError, match="GLUE_DATABASE"):
        etl_handler.handler(event(aws["s3"], b"a,b\n1,2\n"), FakeContext())
