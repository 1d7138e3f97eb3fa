"""EventBridge schedule -> one drift run for the window that ends at the event's ``time``.

The scheduled event is read through Powertools' ``EventBridgeEvent`` data class (typed accessors, no model
validation): it carries nothing but its ``time``, and the pydantic parser models would add ~25 ms to every
cold start of a function that already pays for numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.drift_monitor import capture
from lambdas.drift_monitor.logic import DriftConfig, run
from lambdas.shared.aws import client
from lambdas.shared.observability import logger, tracer
from lambdas.shared.settings import from_environment
from pipelines.schema import DatasetSchema


@dataclass(frozen=True)
class Settings:
    """Parsed at first use: a missing variable fails loudly with its name (a dataclass: this function pays for
    numpy at cold start, so it skips pydantic)."""

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
    MODEL_PACKAGE_GROUP: str = ""  # the registry of the output baseline; empty: the output is not compared

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
            model_package_group=self.MODEL_PACKAGE_GROUP or None,
        )


settings = from_environment(Settings)


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    if event.detail_type != "Scheduled Event":
        raise ValueError(f"expected a Scheduled Event, got {event.detail_type!r} from {event.source!r}")
    window_end = capture.parse_time(event.time)
    config = settings().drift_config()
    registry = client("sagemaker") if config.model_package_group else None
    summary = run(client("s3"), client("cloudwatch"), config, window_end=window_end, registry=registry)
    logger.info(f"drift run: {summary['status']}", extra=summary)
    return summary
