"""S3 "Object Created" (EventBridge) under batch-input/ -> one batch transform per object version, idempotently."""

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

from lambdas.batch_inference.logic import BatchInference, BatchInput, BatchSettings
from lambdas.shared.observability import logger, metrics, tracer


class Settings(BaseModel):
    """Parsed at first use: a missing variable fails loudly with its name."""

    MODEL_PACKAGE_GROUP: str
    OUTPUT_URI: str
    INPUT_PREFIX: str
    ENDPOINT_ROLE_ARN: str
    KMS_KEY_ARN: str
    INSTANCE_TYPE: str
    RESOURCE_PREFIX: str
    IDEMPOTENCY_TABLE: str

    def logic(self) -> BatchSettings:
        return BatchSettings(
            model_package_group=self.MODEL_PACKAGE_GROUP,
            output_uri=self.OUTPUT_URI,
            input_prefix=self.INPUT_PREFIX,
            role_arn=self.ENDPOINT_ROLE_ARN,
            kms_key_arn=self.KMS_KEY_ARN,
            instance_type=self.INSTANCE_TYPE,
            resource_prefix=self.RESOURCE_PREFIX,
        )


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.model_validate(dict(os.environ))


@lru_cache(maxsize=1)
def batch() -> BatchInference:
    return BatchInference(boto3.client("sagemaker"), settings().logic())


_idempotency = IdempotencyConfig(event_key_jmespath="[bucket, key, version_id]", expires_after_seconds=7 * 86400)


@lru_cache(maxsize=1)
def _start_once() -> Any:
    """The idempotent start, bound to the DynamoDB table named by the environment (built lazily)."""
    persistence = DynamoDBPersistenceLayer(table_name=settings().IDEMPOTENCY_TABLE)

    @idempotent_function(data_keyword_argument="obj", persistence_store=persistence, config=_idempotency)
    def start_once(obj: dict[str, Any]) -> dict[str, Any]:
        return asdict(batch().start(BatchInput(**obj)))

    return start_once


@logger.inject_lambda_context(log_event=True, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=S3EventNotificationEventBridgeModel)
def handler(event: S3EventNotificationEventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    detail = event.detail
    obj = BatchInput(
        bucket=detail.bucket.name,
        key=detail.object.key,
        version_id=detail.object.version_id or "null",
        size=int(detail.object.size or 0),
        etag=detail.object.etag or "",
    )
    _idempotency.register_lambda_context(context)
    decision: dict[str, Any] = _start_once()(obj=asdict(obj))
    if decision["started"]:
        logger.info("batch transform started", extra=decision)
        metrics.add_metric(name="BatchTransformStarted", unit=MetricUnit.Count, value=1)
    else:
        logger.info("batch input ignored", extra={**decision, "key": obj.key})
        metrics.add_metric(name="BatchInputIgnored", unit=MetricUnit.Count, value=1)
    return decision
