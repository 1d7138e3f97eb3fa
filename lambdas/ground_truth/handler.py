"""S3 "Object Created" under ground-truth/ (EventBridge) -> labels joined with captured predictions, once per
object version."""

from __future__ import annotations

import os
from dataclasses import asdict
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from lambdas.ground_truth.logic import LabelObject, QualityConfig, run
from lambdas.shared.observability import logger, tracer


class Settings(BaseModel):
    """Parsed at first use: a missing variable fails loudly with its name."""

    ENDPOINT_NAME: str
    ARTIFACTS_BUCKET: str
    DATA_CAPTURE_PREFIX: str
    IDEMPOTENCY_TABLE: str
    POWERTOOLS_METRICS_NAMESPACE: str
    GROUND_TRUTH_PREFIX: str = "ground-truth/"
    QUALITY_PREFIX: str = "monitoring/quality/"
    LOOKBACK_HOURS: int = 168
    MIN_LABELED_ROWS: int = 50

    def quality_config(self) -> QualityConfig:
        return QualityConfig(
            endpoint_name=self.ENDPOINT_NAME,
            artifacts_bucket=self.ARTIFACTS_BUCKET,
            capture_prefix=self.DATA_CAPTURE_PREFIX,
            quality_prefix=self.QUALITY_PREFIX,
            namespace=self.POWERTOOLS_METRICS_NAMESPACE,
            lookback_hours=self.LOOKBACK_HOURS,
            min_rows=self.MIN_LABELED_ROWS,
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


_idempotency = IdempotencyConfig(event_key_jmespath="[bucket, key, version_id]", expires_after_seconds=7 * 86400)


@lru_cache(maxsize=1)
def _evaluate_once() -> Any:
    """The idempotent evaluation, bound to the DynamoDB table named by the environment (built lazily)."""
    persistence = DynamoDBPersistenceLayer(table_name=settings().IDEMPOTENCY_TABLE)

    @idempotent_function(data_keyword_argument="obj", persistence_store=persistence, config=_idempotency)
    def evaluate_once(obj: dict[str, Any]) -> dict[str, Any]:
        return run(_s3(), _cloudwatch(), settings().quality_config(), LabelObject(**obj))

    return evaluate_once


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@event_parser(model=S3EventNotificationEventBridgeModel)
def handler(event: S3EventNotificationEventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    detail = event.detail
    obj = LabelObject(
        bucket=detail.bucket.name,
        key=detail.object.key,
        version_id=detail.object.version_id or "null",
        event_time=event.time.isoformat(),
    )
    if not obj.key.startswith(settings().GROUND_TRUTH_PREFIX) or obj.key.endswith("/"):
        logger.info("not a label file", extra={"key": obj.key})
        reason = f"key {obj.key!r} is not a label file under {settings().GROUND_TRUTH_PREFIX}"
        return {"evaluated": False, "reason": reason}
    _idempotency.register_lambda_context(context)
    summary: dict[str, Any] = _evaluate_once()(obj=asdict(obj))
    logger.info("ground truth evaluated", extra={k: summary[k] for k in ("overall", "reason", "summary_uri")})
    return summary
