"""S3 "Object Created" under ground-truth/ (EventBridge) -> labels joined with captured predictions, once per
object version."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from lambdas.ground_truth.logic import LabelObject, QualityConfig, run
from lambdas.shared.aws import client
from lambdas.shared.idempotency import once_per
from lambdas.shared.observability import logger, tracer
from lambdas.shared.s3_events import IDEMPOTENCY_KEY, object_version
from lambdas.shared.settings import from_environment
from pipelines.schema import DatasetSchema, Feature

BINARY_LABELS = DatasetSchema(name="binary", target="label", features=(Feature("probability", "numeric"),))
"""Only its task and labels are read: binary, 0/1, positive 1."""


class Settings(BaseModel):
    """Parsed at first use: a missing variable fails loudly with its name."""

    ENDPOINT_NAME: str
    ARTIFACTS_BUCKET: str
    DATA_CAPTURE_PREFIX: str
    IDEMPOTENCY_TABLE: str
    POWERTOOLS_METRICS_NAMESPACE: str
    # the task and the labels a label file may hold (pipelines/schema.py DatasetSchema). Empty (a stack that does
    # not pass it yet): the binary 0/1 labels every label file held before datasets were declared
    DATASET_SCHEMA: str = ""
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
            schema=DatasetSchema.from_json(self.DATASET_SCHEMA) if self.DATASET_SCHEMA else BINARY_LABELS,
            lookback_hours=self.LOOKBACK_HOURS,
            min_rows=self.MIN_LABELED_ROWS,
        )


settings = from_environment(Settings)


@once_per(IDEMPOTENCY_KEY, argument="obj", table=lambda: settings().IDEMPOTENCY_TABLE)
def evaluate_once(obj: dict[str, Any]) -> dict[str, Any]:
    return run(client("s3"), client("cloudwatch"), settings().quality_config(), LabelObject(**obj))


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@event_parser(model=S3EventNotificationEventBridgeModel)
def handler(event: S3EventNotificationEventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    upload = object_version(event)
    obj = LabelObject(upload.bucket, upload.key, upload.version_id, event_time=event.time.isoformat())
    if not obj.key.startswith(settings().GROUND_TRUTH_PREFIX) or obj.key.endswith("/"):
        logger.info("not a label file", extra={"key": obj.key})
        reason = f"key {obj.key!r} is not a label file under {settings().GROUND_TRUTH_PREFIX}"
        return {"evaluated": False, "reason": reason}
    summary = evaluate_once(asdict(obj), context)
    logger.info("ground truth evaluated", extra={k: summary[k] for k in ("overall", "reason", "summary_uri")})
    return summary
