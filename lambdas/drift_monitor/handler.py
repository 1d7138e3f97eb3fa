"""EventBridge schedule (one per dataset) -> one drift run of that dataset for the window that ends at the
event's ``time``.

The scheduled event is read through Powertools' ``EventBridgeEvent`` data class (typed accessors, no model
validation): it carries its ``time`` and, put there by the rule's input transformer, ``detail.dataset``; the
pydantic parser models would add ~25 ms to every cold start of a function that already pays for numpy. The
dataset's endpoint, schema, thresholds and prefixes come from the platform document.
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
from lambdas.shared.schedules import scheduled_dataset
from lambdas.shared.settings import from_environment
from pipelines.platform import platform


@dataclass(frozen=True)
class Settings:
    """Parsed at first use: a missing variable fails loudly with its name (a dataclass: this function pays for
    numpy at cold start, so it skips pydantic)."""

    ARTIFACTS_BUCKET: str
    CURATED_BUCKET: str
    POWERTOOLS_METRICS_NAMESPACE: str

    def drift_config(self, name: str) -> DriftConfig:
        """The drift run's settings for the declared dataset ``name``."""
        document = platform()
        dataset, monitor = document.dataset(name), document.monitoring
        return DriftConfig(
            endpoint_name=dataset.names.endpoint,
            artifacts_bucket=self.ARTIFACTS_BUCKET,
            curated_bucket=self.CURATED_BUCKET,
            capture_prefix=dataset.names.data_capture_prefix,
            report_prefix=dataset.names.drift_report_prefix,
            schema=dataset.schema,
            namespace=self.POWERTOOLS_METRICS_NAMESPACE,
            psi_threshold=float(dataset.alarms["drift_psi"]),
            ks_threshold=float(monitor["drift_ks_threshold"]),
            min_rows=int(monitor["drift_min_rows"]),
            lookback_hours=int(monitor["drift_lookback_hours"]),
            lateness_hours=int(monitor["drift_lateness_hours"]),
            model_package_group=dataset.names.model_package_group,  # the registry of the output baseline
        )


settings = from_environment(Settings)


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    name = scheduled_dataset(event)
    logger.append_keys(dataset=name)
    window_end = capture.parse_time(event.time)
    config = settings().drift_config(name)
    registry = client("sagemaker") if config.model_package_group else None
    summary = run(client("s3"), client("cloudwatch"), config, window_end=window_end, registry=registry)
    logger.info(f"drift run: {summary['status']}", extra=summary)
    return summary
