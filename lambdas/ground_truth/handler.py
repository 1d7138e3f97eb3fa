"""S3 "Object Created" under ground-truth/<dataset>/ (EventBridge) -> labels joined with the dataset's captured
predictions, once per object version. The dataset's endpoint and prefixes come from the platform document."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from lambdas.ground_truth.logic import JoinResult, LabelObject, QualityConfig, label_source, run
from lambdas.ground_truth.production import ProductionConfig, production_rows, write
from lambdas.shared.aws import client
from lambdas.shared.idempotency import once_per
from lambdas.shared.observability import logger, tracer
from lambdas.shared.s3_events import IDEMPOTENCY_KEY, object_version
from lambdas.shared.settings import from_environment
from pipelines.platform import GROUND_TRUTH_PREFIX, dataset_in_key, platform


class Settings(BaseModel):
    """Parsed at first use: a missing variable fails loudly with its name."""

    ARTIFACTS_BUCKET: str
    CURATED_BUCKET: str
    GLUE_DATABASE: str
    IDEMPOTENCY_TABLE: str
    POWERTOOLS_METRICS_NAMESPACE: str

    def quality_config(self, name: str) -> QualityConfig:
        """The settings of the declared dataset ``name``'s ground truth."""
        document = platform()
        dataset, monitor = document.dataset(name), document.monitoring
        return QualityConfig(
            endpoint_name=dataset.names.endpoint,
            artifacts_bucket=self.ARTIFACTS_BUCKET,
            capture_prefix=dataset.names.data_capture_prefix,
            quality_prefix=dataset.names.quality_prefix,
            namespace=self.POWERTOOLS_METRICS_NAMESPACE,
            lookback_hours=int(monitor["quality_lookback_hours"]),
            min_rows=int(monitor["quality_min_labeled_rows"]),
            schema=dataset.schema,  # the task and the labels a label file may hold
        )

    def production_config(self, name: str) -> ProductionConfig:
        """Where the declared dataset ``name``'s labelled production rows go."""
        return ProductionConfig(
            dataset=name,
            curated_bucket=self.CURATED_BUCKET,
            database=self.GLUE_DATABASE,
            schema=platform().dataset(name).schema,
        )


settings = from_environment(Settings)


@once_per(IDEMPOTENCY_KEY, argument="obj", table=lambda: settings().IDEMPOTENCY_TABLE)
def evaluate_once(obj: dict[str, Any]) -> dict[str, Any]:
    label_object = LabelObject(**obj)
    name = str(dataset_in_key(label_object.key, GROUND_TRUTH_PREFIX))
    production = settings().production_config(name)
    source = label_source(label_object)

    def keep(joined: JoinResult, moment: datetime) -> dict[str, Any]:
        rows = production_rows(joined, production.schema, moment, source)
        return write(client("s3"), client("glue"), production, rows)

    return run(client("s3"), client("cloudwatch"), settings().quality_config(name), label_object, keep)


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@event_parser(model=S3EventNotificationEventBridgeModel)
def handler(event: S3EventNotificationEventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    upload = object_version(event)
    obj = LabelObject(upload.bucket, upload.key, upload.version_id, event_time=event.time.isoformat())
    name = dataset_in_key(obj.key, GROUND_TRUTH_PREFIX)
    if name is None or name not in platform().datasets:
        folder = f"{GROUND_TRUTH_PREFIX}<dataset>/"
        where = f"dataset {name!r} is not declared" if name else f"not a label file under {folder}"
        reason = f"key {obj.key!r}: {where} (declared: {', '.join(platform().names)})"
        logger.info("not a label file of a declared dataset", extra={"key": obj.key, "reason": reason})
        return {"evaluated": False, "reason": reason}
    summary = evaluate_once(asdict(obj), context)
    logger.info("ground truth evaluated", extra={k: summary[k] for k in ("overall", "reason", "summary_uri")})
    return summary
