"""S3 "Object Created" events: the object version they name, and the uploads a function skips."""

from __future__ import annotations

from dataclasses import asdict

import jmespath
import pytest
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel

from lambdas.shared.s3_events import IDEMPOTENCY_KEY, S3Object, object_version, skip_reason
from tests.unit.lambdas.support import object_created


def dataset_skip_reason(key: str, size: int) -> str | None:
    obj = S3Object("raw-bucket", key, "v1", size)
    return skip_reason(
        obj, prefix="datasets/churn/", area="dataset prefix", suffixes=(".csv", ".csv.gz"), wrong_type="is odd"
    )


def test_an_event_names_one_object_version() -> None:
    # Given an "Object Created" event parsed by the Powertools model
    event = parse(
        object_created("datasets/churn/day1.csv", version="v7", size=120), S3EventNotificationEventBridgeModel
    )
    # When its object version is read
    obj = object_version(event)
    # Then it carries bucket, key, version, size and ETag
    assert obj == S3Object(bucket="raw-bucket", key="datasets/churn/day1.csv", version_id="v7", size=120, etag="abc")


def test_an_unversioned_object_without_size_or_etag_reads_as_null_version_and_zero_bytes() -> None:
    # Given an event from an unversioned bucket whose object has no size nor ETag
    raw = object_created("datasets/churn/day1.csv")
    for field in ("version-id", "size", "etag"):
        del raw["detail"]["object"][field]
    # When its object version is read
    obj = object_version(parse(raw, S3EventNotificationEventBridgeModel))
    # Then the version is S3's "null" and the object counts as empty
    assert (obj.version_id, obj.size, obj.etag) == ("null", 0, "")


def test_the_idempotency_key_is_the_object_version() -> None:
    obj = S3Object(bucket="b", key="k", version_id="v", size=1, etag="e")
    assert jmespath.search(IDEMPOTENCY_KEY, asdict(obj)) == ["b", "k", "v"]


@pytest.mark.parametrize(
    ("key", "size", "reason"),
    [
        ("other/day1.csv", 10, "key 'other/day1.csv' is outside the dataset prefix 'datasets/churn/'"),
        ("datasets/churn/folder/", 0, "key 'datasets/churn/folder/' is a folder marker"),
        ("datasets/churn/day1.csv", 0, "object 'datasets/churn/day1.csv' is empty (0 bytes)"),
        ("datasets/churn/notes.txt", 10, "object 'datasets/churn/notes.txt' is odd"),
    ],
)
def test_uploads_that_are_not_for_the_function_say_why(key: str, size: int, reason: str) -> None:
    assert dataset_skip_reason(key, size) == reason


@pytest.mark.parametrize("key", ["datasets/churn/day1.csv", "datasets/churn/DAY1.CSV", "datasets/churn/a.csv.gz"])
def test_a_non_empty_file_with_an_accepted_suffix_under_the_prefix_is_taken(key: str) -> None:
    assert dataset_skip_reason(key, 10) is None
