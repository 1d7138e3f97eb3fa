"""moto fixtures of the drift monitor: artifacts and curated buckets, and the environment of the function."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.drift_monitor import handler as drift_handler
from lambdas.drift_monitor.logic import DriftConfig
from tests.samples import CHURN_SCHEMA
from tests.unit.lambdas.drift_monitor.helpers import ARTIFACTS, CAPTURE_PREFIX, CURATED, ENDPOINT

NAMESPACE = "MLOps/test"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3")
        for bucket in (ARTIFACTS, CURATED):
            client.create_bucket(Bucket=bucket)
        yield client


@pytest.fixture
def config() -> DriftConfig:
    return DriftConfig(
        endpoint_name=ENDPOINT,
        artifacts_bucket=ARTIFACTS,
        curated_bucket=CURATED,
        capture_prefix=CAPTURE_PREFIX,
        report_prefix="monitoring/drift/",
        schema=CHURN_SCHEMA,
        namespace=NAMESPACE,
        psi_threshold=0.2,
        ks_threshold=0.1,
        min_rows=200,
        lookback_hours=24,
        lateness_hours=2,
    )


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, s3: Any) -> Iterator[None]:
    for name, value in {
        "ARTIFACTS_BUCKET": ARTIFACTS,
        "CURATED_BUCKET": CURATED,
        "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
    }.items():
        monkeypatch.setenv(name, value)
    drift_handler.settings.cache_clear()
    yield
    drift_handler.settings.cache_clear()
