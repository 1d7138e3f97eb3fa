"""Deploy Lambda: one step of the deployment state machine per call, ``{"action", "execution", "state": $}``.

No idempotency table: every step is idempotent by construction (deterministic names per package version,
and each step looks at the endpoint before it acts), so a retried invocation continues where the first left.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Json

from lambdas.deploy.logic import Clients, Deployer, DeploySettings
from lambdas.deploy.models import DeployEvent, ServingConfig
from lambdas.shared.aws import client
from lambdas.shared.observability import logger, metrics, tracer
from lambdas.shared.settings import from_environment


class Settings(BaseModel):
    """Parsed at first use: a missing variable fails loudly with its name."""

    ENDPOINT_NAME: str
    ENDPOINT_ROLE_ARN: str
    RESOURCE_PREFIX: str
    MODEL_PACKAGE_GROUP: str
    DATA_CAPTURE_URI: str
    KMS_KEY_ARN: str
    SERVING: Json[ServingConfig]
    ROLLBACK_ALARMS: Json[list[str]]

    def logic(self) -> DeploySettings:
        return DeploySettings(
            endpoint_name=self.ENDPOINT_NAME,
            role_arn=self.ENDPOINT_ROLE_ARN,
            resource_prefix=self.RESOURCE_PREFIX,
            model_package_group=self.MODEL_PACKAGE_GROUP,
            data_capture_uri=self.DATA_CAPTURE_URI,
            kms_key_arn=self.KMS_KEY_ARN,
            serving=self.SERVING,
            rollback_alarms=tuple(self.ROLLBACK_ALARMS),
        )


settings = from_environment(Settings)


@lru_cache(maxsize=1)
def deployer() -> Deployer:
    """Clients are built lazily (after moto or the local cloud's endpoint configuration is in place)."""
    clients = Clients(
        sagemaker=client("sagemaker"),
        runtime=client("sagemaker-runtime"),
        s3=client("s3"),
        cloudwatch=client("cloudwatch"),
        autoscaling=client("application-autoscaling"),
    )
    return Deployer(settings().logic(), clients)


@logger.inject_lambda_context(log_event=True, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=DeployEvent)
def handler(event: DeployEvent, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(action=event.action, execution=event.execution)
    result = deployer().handle(event.action, event.execution, event.state)
    outcome = result.get("outcome")
    if outcome:
        metrics.add_dimension(name="outcome", value=str(outcome))
        metrics.add_metric(name="Deployment", unit=MetricUnit.Count, value=1)
        logger.info("deployment finished", extra={"outcome": outcome, "subject": result.get("subject")})
    return result
