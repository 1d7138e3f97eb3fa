"""Start Lambda: one execution per object version of a declared dataset; other prefixes and empty objects are
ignored; an upload under a folder no declaration names is refused, notified and left untouched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.shared.s3_events import S3Object
from lambdas.start_pipeline import handler as start_handler
from lambdas.start_pipeline.logic import execution_name, skip_reason
from tests.unit.lambdas.support import FakeContext, create_table, object_created

PREFIX = "datasets/churn/"
RAW = "raw-bucket"


@dataclass
class Aws:
    state_machine: str
    queue: str  # subscribed to the notifications topic


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    with mock_aws():
        create_table("idempotency", "id")
        sm = boto3.client("stepfunctions").create_state_machine(
            name="pipeline",
            definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )["stateMachineArn"]
        topic = boto3.client("sns").create_topic(Name="notifications")["TopicArn"]
        queue = boto3.client("sqs").create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = boto3.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        boto3.client("sns").subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=queue_arn["Attributes"]["QueueArn"],
            Attributes={"RawMessageDelivery": "false"},
        )
        boto3.client("s3").create_bucket(Bucket=RAW)
        boto3.client("s3").put_bucket_versioning(Bucket=RAW, VersioningConfiguration={"Status": "Enabled"})
        monkeypatch.setenv("STATE_MACHINE_ARN", sm)
        monkeypatch.setenv("IDEMPOTENCY_TABLE", "idempotency")
        monkeypatch.setenv("TOPIC_ARN", topic)
        for cached in (start_handler.settings, start_handler.start_once):
            cached.cache_clear()
        yield Aws(sm, queue)


def executions(sm: str) -> list[dict[str, Any]]:
    return list(boto3.client("stepfunctions").list_executions(stateMachineArn=sm)["executions"])


def execution_input(sm: str) -> dict[str, Any]:
    (execution,) = executions(sm)
    described = boto3.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    return dict(json.loads(described["input"]))


def notifications(queue: str) -> list[dict[str, Any]]:
    messages = boto3.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_same_event_twice_starts_one_execution(aws: Aws) -> None:
    # Given an upload event delivered twice (EventBridge is at-least-once)
    event = object_created(f"{PREFIX}day1.csv")
    # When the handler sees it twice
    first = start_handler.handler(event, FakeContext())
    second = start_handler.handler(event, FakeContext())
    # Then one execution runs, and the second call returns the first result from the idempotency table
    assert first["started"] is True and first["dataset"] == "churn"
    assert second == first
    # And its input names the dataset and the object version
    payload = execution_input(aws.state_machine)
    assert payload["dataset"] == "churn"
    assert payload["upload"] == {
        "bucket": RAW,
        "key": f"{PREFIX}day1.csv",
        "version_id": "v1",
        "size": 120,
        "etag": "abc",
    }
    assert payload["trigger"]["source"] == "s3-upload"


@pytest.mark.parametrize("dataset", ["energy", "tickets"])
def test_each_declared_datasets_folder_starts_its_own_pipeline(aws: Aws, dataset: str) -> None:
    # Given an upload under a declared dataset's folder (any depth below it)
    result = start_handler.handler(object_created(f"datasets/{dataset}/2026/12/day1.parquet"), FakeContext())
    # Then the one state machine runs for that dataset
    assert result["started"] is True
    assert execution_input(aws.state_machine)["dataset"] == dataset


def test_new_version_of_the_same_key_starts_again(aws: Aws) -> None:
    start_handler.handler(object_created(f"{PREFIX}day1.csv", version="v1"), FakeContext())
    result = start_handler.handler(object_created(f"{PREFIX}day1.csv", version="v2"), FakeContext())
    assert result["started"] is True
    assert len(executions(aws.state_machine)) == 2


@pytest.mark.parametrize(
    ("key", "size", "expected"),
    [
        ("other/file.csv", 10, "outside the dataset prefix"),
        (f"{PREFIX}empty.csv", 0, "is empty"),
        (f"{PREFIX}folder/", 0, "folder marker"),
        (f"{PREFIX}notes.txt", 10, "neither CSV nor Parquet"),
    ],
)
def test_ignored_uploads_start_nothing_and_say_why(aws: Aws, key: str, size: int, expected: str) -> None:
    result = start_handler.handler(object_created(key, size=size), FakeContext())
    assert result["started"] is False and result["refused"] is False
    assert expected in result["reason"]
    assert executions(aws.state_machine) == []
    assert notifications(aws.queue) == []


def test_an_upload_under_an_undeclared_dataset_is_refused_notified_once_and_left_untouched(
    aws: Aws, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a file uploaded under a folder no declaration names
    key = "datasets/sales/day1.csv"
    s3 = boto3.client("s3")
    version = s3.put_object(Bucket=RAW, Key=key, Body=b"a,b\n1,2\n")["VersionId"]
    event = object_created(key, bucket=RAW, version=version)
    # When its event arrives (twice: EventBridge is at-least-once)
    first = start_handler.handler(event, FakeContext())
    second = start_handler.handler(event, FakeContext())
    # Then nothing starts, and the reason names the dataset and the declared ones
    assert first == second
    assert (first["started"], first["refused"], first["dataset"]) == (False, True, "sales")
    assert first["reason"] == (
        "upload refused: 'sales' is not a declared dataset of mlops-dev (declared: churn, energy, tickets)"
    )
    assert executions(aws.state_machine) == []
    # And one notification says so, with what to do
    (message,) = notifications(aws.queue)
    assert message["Subject"] == "Upload refused: undeclared dataset sales"
    assert f"s3://{RAW}/{key} (version {version}) started nothing" in message["Message"]
    assert "Declared datasets: churn, energy, tickets" in message["Message"]
    assert "The object is untouched" in message["Message"]
    assert message["MessageAttributes"]["outcome"]["Value"] == "upload-refused"
    # And it is logged (a warning) and counted as a refusal
    assert [r.levelname for r in caplog.records if r.getMessage() == "upload refused"] == ["WARNING", "WARNING"]
    assert '"Metrics":[{"Name":"UploadRefused","Unit":"Count"}]' in capsys.readouterr().out
    # And the object is untouched: the same single version, the same bytes
    listed = s3.list_object_versions(Bucket=RAW, Prefix=key)
    assert [v["VersionId"] for v in listed["Versions"]] == [version] and "DeleteMarkers" not in listed
    assert s3.get_object(Bucket=RAW, Key=key)["Body"].read() == b"a,b\n1,2\n"


def test_a_file_outside_every_dataset_folder_is_refused_with_the_folder_to_use(aws: Aws) -> None:
    # Given a file directly under datasets/ (no dataset folder)
    result = start_handler.handler(object_created("datasets/day1.csv"), FakeContext())
    # Then it is refused with the layout and the declared names
    assert (result["started"], result["refused"], result["dataset"]) == (False, True, None)
    assert "not under a dataset folder (datasets/<name>/)" in result["reason"]
    (message,) = notifications(aws.queue)
    assert message["Subject"] == "Upload refused: no dataset folder"
    assert executions(aws.state_machine) == []


def test_execution_name_is_deterministic_and_valid() -> None:
    obj = S3Object("b", f"{PREFIX}a file (1).csv", "v1", 5)
    name = execution_name(obj)
    assert name == execution_name(obj)
    assert len(name) <= 80
    assert all(c.isalnum() or c in "-_" for c in name)
    assert name != execution_name(S3Object("b", obj.key, "v2", 5))
    assert skip_reason(obj) is None
