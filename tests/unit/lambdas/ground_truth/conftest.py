"""moto for the ground-truth tests: the artifacts bucket, the versioned raw bucket and the idempotency table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.unit.lambdas.drift_monitor.helpers import ARTIFACTS
from tests.unit.lambdas.support import create_table

RAW = "raw-bucket"


@pytest.fixture
def aws() -> Iterator[Any]:
    """The S3 client of the mocked account."""
    with mock_aws():
        s3 = boto3.client("s3")
        for bucket in (ARTIFACTS, RAW):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=RAW, VersioningConfiguration={"Status": "Enabled"})
        create_table("idempotency", "id")
        yield s3
