"""The evaluator's handler: a dataset's schedule -> one look with that dataset's settings from the document."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from lambdas.experiment import handler
from tests.unit.lambdas.support import FakeContext

EVENT = {
    "version": "0",
    "id": "1",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-12-07T10:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/mlops-dev-churn-experiment"],
    "detail": {"dataset": "churn"},
}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("ARTIFACTS_BUCKET", "artifacts")
    monkeypatch.setenv("TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:mlops-dev-notifications")
    handler.settings.cache_clear()
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="artifacts")
        yield
    handler.settings.cache_clear()


def test_a_dataset_without_an_endpoint_is_a_no_op_with_its_settings_from_the_document(environment: None) -> None:
    assert handler.handler(EVENT, FakeContext()) == {"status": "no_endpoint", "endpoint": "mlops-dev-churn"}
    settings = handler.settings().evaluator("churn")
    assert (settings.quality_prefix, settings.error_5xx_count, settings.model_error_rate) == (
        "monitoring/quality/churn/",
        1,
        0.2,
    )


def test_an_event_that_is_not_a_dataset_schedule_is_refused(environment: None) -> None:
    with pytest.raises(ValueError, match="the scheduled event names no dataset"):
        handler.handler({**EVENT, "detail": {}}, FakeContext())
    with pytest.raises(ValueError, match="expected a Scheduled Event"):
        handler.handler({**EVENT, "detail-type": "Object Created"}, FakeContext())
