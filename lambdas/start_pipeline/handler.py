"""S3 "Object Created" (EventBridge) -> one pipeline execution per object version, idempotently."""

from __future__ import annotations

import os
from dataclasses import asdict
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from lambdas.shared.observability import logger, metrics, tracer
from lambdas.start_pipeline.logic import RawObject, start


class Settings(BaseModel):
    """Parsed at cold start: a missing variable fails loudly with its name."""

    STATE_MACHINE_ARN: str
    IDEMPOTENCY_TABLE: str
    DATASET_PREFIX: str


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.model_validate(dict(os.environ))


@lru_cache(maxsize=1)
def _sfn() -> Any:
    return boto3.client("stepfunctions")


_idempotency = IdempotencyConfig(event_key_jmespath="[bucket, key, version_id]", expires_after_seconds=7 * 86400)


@lru_cache(maxsize=1)
def _start_once() -> Any:
    """The idempotent start, bound to the DynamoDB table named by the environment (built lazily)."""
    persistence = DynamoDBPersistenceLayer(table_name=settings().IDEMPOTENCY_TABLE)

    @idempotent_function(data_keyword_argument="obj", persistence_store=persistence, config=_idempotency)
    def start_once(obj: dict[str, Any]) -> dict[str, Any]:
        decision = start(_sfn(), settings().STATE_MACHINE_ARN, RawObject(**obj), settings().DATASET_PREFIX)
        return asdict(decision)

    return start_once


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=S3EventNotificationEventBridgeModel)
def handler(event: S3EventNotificationEventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    detail = event.detail
    obj = RawObject(
        bucket=detail.bucket.name,
        key=detail.object.key,
        version_id=detail.object.version_id or "null",
        size=int(detail.object.size or 0),
        etag=detail.object.etag or "",
    )
    _idempotency.register_lambda_context(context)
    decision: dict[str, Any] = _start_once()(obj=asdict(obj))
    if decision["started"]:
        logger.info("pipeline started", extra=decision)
        metrics.add_metric(name="PipelineStarted", unit=MetricUnit.Count, value=1)
    else:
        logger.info("upload ignored", extra={**decision, "key": obj.key})
        metrics.add_metric(name="UploadIgnored", unit=MetricUnit.Count, value=1)
    return decision
