"""EventBridge schedule -> one drift run for the window that ends at the event's ``time``."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from lambdas.drift_monitor.logic import DriftConfig, run
from lambdas.shared.observability import logger, tracer
from pipelines.schema import DatasetSchema


class Settings(BaseModel):
    """Parsed at first use: a missing variable fails loudly with its name."""

    ENDPOINT_NAME: str
    ARTIFACTS_BUCKET: str
    CURATED_BUCKET: str
    DATA_CAPTURE_PREFIX: str
    REPORT_PREFIX: str
    DATASET_SCHEMA: str
    PSI_THRESHOLD: float
    POWERTOOLS_METRICS_NAMESPACE: str
    KS_THRESHOLD: float = 0.1
    MIN_ROWS: int = 200
    LOOKBACK_HOURS: int = 24
    LATENESS_HOURS: int = 2

    def drift_config(self) -> DriftConfig:
        return DriftConfig(
            endpoint_name=self.ENDPOINT_NAME,
            artifacts_bucket=self.ARTIFACTS_BUCKET,
            curated_bucket=self.CURATED_BUCKET,
            capture_prefix=self.DATA_CAPTURE_PREFIX,
            report_prefix=self.REPORT_PREFIX,
            schema=DatasetSchema.from_json(self.DATASET_SCHEMA),
            namespace=self.POWERTOOLS_METRICS_NAMESPACE,
            psi_threshold=self.PSI_THRESHOLD,
            ks_threshold=self.KS_THRESHOLD,
            min_rows=self.MIN_ROWS,
            lookback_hours=self.LOOKBACK_HOURS,
            lateness_hours=self.LATENESS_HOURS,
        )


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.model_validate(dict(os.environ))


@lru_cache(maxsize=1)
def _s3() -> Any:
    return boto3.client("s3")


@lru_cache(maxsize=1)
def _cloudwatch() -> Any:
    return boto3.client("cloudwatch")


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@event_parser(model=EventBridgeModel)
def handler(event: EventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    summary = run(_s3(), _cloudwatch(), settings().drift_config(), window_end=event.time)
    logger.info(f"drift run: {summary['status']}", extra=summary)
    return summary
