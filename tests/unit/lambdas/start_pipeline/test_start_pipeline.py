"""Start Lambda: one execution per object version; other prefixes and empty objects are ignored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.shared.s3_events import S3Object
from lambdas.start_pipeline import handler as start_handler
from lambdas.start_pipeline.logic import execution_name, skip_reason
from tests.unit.lambdas.support import FakeContext, create_table, object_created

PREFIX = "datasets/churn/"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with mock_aws():
        create_table("idempotency", "id")
        sm = boto3.client("stepfunctions").create_state_machine(
            name="pipeline",
            definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )["stateMachineArn"]
        monkeypatch.setenv("STATE_MACHINE_ARN", sm)
        monkeypatch.setenv("IDEMPOTENCY_TABLE", "idempotency")
        monkeypatch.setenv("DATASET_PREFIX", PREFIX)
        for cached in (start_handler.settings, start_handler.start_once):
            cached.cache_clear()
        yield sm


def executions(sm: str) -> list[dict[str, Any]]:
    return list(boto3.client("stepfunctions").list_executions(stateMachineArn=sm)["executions"])


def test_same_event_twice_starts_one_execution(aws: str) -> None:
    # Given an upload event delivered twice (EventBridge is at-least-once)
    event = object_created(f"{PREFIX}day1.csv")
    # When the handler sees it twice
    first = start_handler.handler(event, FakeContext())
    second = start_handler.handler(event, FakeContext())
    # Then one execution runs, and the second call returns the first result from the idempotency table
    assert first["started"] is True
    assert second == first
    (execution,) = executions(aws)
    described = boto3.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    payload = json.loads(described["input"])
    assert payload["dataset"] == {
        "bucket": "raw-bucket",
        "key": f"{PREFIX}day1.csv",
        "version_id": "v1",
        "size": 120,
        "etag": "abc",
    }
    assert payload["trigger"]["source"] == "s3-upload"


def test_new_version_of_the_same_key_starts_again(aws: str) -> None:
    start_handler.handler(object_created(f"{PREFIX}day1.csv", version="v1"), FakeContext())
    result = start_handler.handler(object_created(f"{PREFIX}day1.csv", version="v2"), FakeContext())
    assert result["started"] is True
    assert len(executions(aws)) == 2


@pytest.mark.parametrize(
    ("key", "size", "expected"),
    [
        ("other/file.csv", 10, "outside the dataset prefix"),
        (f"{PREFIX}empty.csv", 0, "is empty"),
        (f"{PREFIX}folder/", 0, "folder marker"),
        (f"{PREFIX}notes.txt", 10, "neither CSV nor Parquet"),
    ],
)
def test_ignored_uploads_start_nothing_and_say_why(aws: str, key: str, size: int, expected: str) -> None:
    result = start_handler.handler(object_created(key, size=size), FakeContext())
    assert result["started"] is False
    assert expected in result["reason"]
    assert executions(aws) == []


def test_execution_name_is_deterministic_and_valid() -> None:
    obj = S3Object("b", f"{PREFIX}a file (1).csv", "v1", 5)
    name = execution_name(obj)
    assert name == execution_name(obj)
    assert len(name) <= 80
    assert all(c.isalnum() or c in "-_" for c in name)
    assert name != execution_name(S3Object("b", obj.key, "v2", 5))
    assert skip_reason(obj, PREFIX) is None
