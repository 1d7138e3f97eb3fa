"""EventBridge schedule (one per dataset whose serving strategy is AB) -> one look at that dataset's running A/B
experiment, and the endpoint update, registry record and notification a final decision asks for
(``lambdas/experiment/logic.py``). The dataset's endpoint, thresholds and prefixes come from the platform document;
a dataset without a running experiment is a no-op."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from lambdas.experiment.logic import Clients, Evaluator, EvaluatorSettings
from lambdas.shared.aws import client
from lambdas.shared.observability import logger, tracer
from lambdas.shared.schedules import scheduled_dataset
from lambdas.shared.settings import from_environment
from pipelines.platform import platform


class Settings(BaseModel):
    """Parsed at first use: a missing variable fails loudly with its name."""

    ARTIFACTS_BUCKET: str
    TOPIC_ARN: str

    def evaluator(self, name: str) -> EvaluatorSettings:
        dataset = platform().dataset(name)
        return EvaluatorSettings(
            dataset=name,
            endpoint_name=dataset.names.endpoint,
            artifacts_bucket=self.ARTIFACTS_BUCKET,
            quality_prefix=dataset.names.quality_prefix,
            topic_arn=self.TOPIC_ARN,
            schema=dataset.schema,
            error_5xx_count=int(dataset.alarms["error_5xx_count"]),
            model_error_rate=float(dataset.alarms["model_error_rate"]),
        )


settings = from_environment(Settings)


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    name = scheduled_dataset(event)
    clients = Clients(
        sagemaker=client("sagemaker"), s3=client("s3"), cloudwatch=client("cloudwatch"), sns=client("sns")
    )
    result = Evaluator(settings().evaluator(name), clients).evaluate()
    logger.info("experiment look", extra={"dataset": name, **result})
    return result
