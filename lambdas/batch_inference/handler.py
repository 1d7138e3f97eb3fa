"""S3 "Object Created" (EventBridge) under batch-input/ -> one batch transform per object version, idempotently."""

from __future__ import annotations

from dataclasses import asdict
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from lambdas.batch_inference.logic import BatchInference, BatchSettings
from lambdas.shared.aws import client
from lambdas.shared.idempotency import once_per
from lambdas.shared.observability import logger, metrics, tracer
from lambdas.shared.s3_events import IDEMPOTENCY_KEY, S3Object, object_version
from lambdas.shared.settings import from_environment


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


settings = from_environment(Settings)


@lru_cache(maxsize=1)
def batch() -> BatchInference:
    return BatchInference(client("sagemaker"), settings().logic())


@once_per(IDEMPOTENCY_KEY, argument="obj", table=lambda: settings().IDEMPOTENCY_TABLE)
def start_once(obj: dict[str, Any]) -> dict[str, Any]:
    return asdict(batch().start(S3Object(**obj)))


@logger.inject_lambda_context(log_event=True, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=S3EventNotificationEventBridgeModel)
def handler(event: S3EventNotificationEventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    obj = object_version(event)
    decision = start_once(asdict(obj), context)
    if decision["started"]:
        logger.info("batch transform started", extra=decision)
        metrics.add_metric(name="BatchTransformStarted", unit=MetricUnit.Count, value=1)
    else:
        logger.info("batch input ignored", extra={**decision, "key": obj.key})
        metrics.add_metric(name="BatchInputIgnored", unit=MetricUnit.Count, value=1)
    return decision
