"""S3 "Object Created" (EventBridge) -> one pipeline execution per object version of a declared dataset,
idempotently; an upload under an undeclared dataset's folder is refused (logged, counted, notified)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from lambdas.shared.aws import client
from lambdas.shared.idempotency import once_per
from lambdas.shared.observability import logger, metrics, tracer
from lambdas.shared.s3_events import IDEMPOTENCY_KEY, S3Object, object_version
from lambdas.shared.settings import from_environment
from lambdas.start_pipeline.logic import start
from pipelines.platform import platform


class Settings(BaseModel):
    """Parsed at first use: a missing variable fails loudly with its name."""

    STATE_MACHINE_ARN: str
    IDEMPOTENCY_TABLE: str
    TOPIC_ARN: str


settings = from_environment(Settings)


@once_per(IDEMPOTENCY_KEY, argument="obj", table=lambda: settings().IDEMPOTENCY_TABLE)
def start_once(obj: dict[str, Any]) -> dict[str, Any]:
    s = settings()
    decision = start(
        client("stepfunctions"), client("sns"), s.STATE_MACHINE_ARN, s.TOPIC_ARN, S3Object(**obj), platform()
    )
    return asdict(decision)


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=S3EventNotificationEventBridgeModel)
def handler(event: S3EventNotificationEventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    obj = object_version(event)
    decision = start_once(asdict(obj), context)
    if decision["started"]:
        logger.info("pipeline started", extra=decision)
        metrics.add_metric(name="PipelineStarted", unit=MetricUnit.Count, value=1)
    elif decision.get("refused"):
        logger.warning("upload refused", extra={**decision, "key": obj.key})
        metrics.add_metric(name="UploadRefused", unit=MetricUnit.Count, value=1)
    else:
        logger.info("upload ignored", extra={**decision, "key": obj.key})
        metrics.add_metric(name="UploadIgnored", unit=MetricUnit.Count, value=1)
    return decision
