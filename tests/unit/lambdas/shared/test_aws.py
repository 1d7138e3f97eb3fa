"""AWS clients: built at first use, one per service."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from lambdas.shared.aws import client


@mock_aws
def test_one_client_per_service_talks_to_the_mocked_account() -> None:
    # Given the shared S3 client
    s3 = client("s3")
    # When it is asked for again, and another service's client too
    again, sqs = client("s3"), client("sqs")
    # Then the same S3 client serves, another serves SQS, and it reaches the (mocked) account
    assert again is s3 and sqs is not s3 and sqs.meta.service_model.service_name == "sqs"
    s3.create_bucket(Bucket="made-by-the-shared-client")
    assert [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]] == ["made-by-the-shared-client"]


def test_a_client_takes_the_endpoint_of_the_moment_it_is_first_used(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the local cloud's endpoint set after the module was imported (no client built yet)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    # When a client is first asked for
    sagemaker = client("sagemaker")
    # Then it talks to that endpoint (nothing is sent: building a client makes no call)
    assert sagemaker.meta.endpoint_url == "http://127.0.0.1:4566"
