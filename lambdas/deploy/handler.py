"""Deploy Lambda: one step of the deployment state machine per call, ``{"action", "execution", "state": $}``.

The deployment state machine serves every declared dataset: the package's model package group (from the approval
event, else its ARN) names the dataset, whose endpoint, serving settings and rollback alarms come from the platform
document. No idempotency table: every step is idempotent by construction (deterministic names per package
version, and each step looks at the endpoint before it acts), so a retried invocation continues where the first
left.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from lambdas.deploy.logic import Clients, Deployer, DeploySettings
from lambdas.deploy.models import DeployEvent, ServingConfig
from lambdas.shared.aws import client
from lambdas.shared.network import ids
from lambdas.shared.observability import logger, metrics, tracer
from lambdas.shared.settings import from_environment
from pipelines.platform import Dataset, platform


class Settings(BaseModel):
    """Parsed at first use: a missing variable fails loudly with its name."""

    ENDPOINT_ROLE_ARN: str
    DATA_CAPTURE_URI: str
    KMS_KEY_ARN: str
    MODEL_SUBNETS: str = ""  # a private stage: the VPC of the models it creates (lambdas/shared/network.py)
    MODEL_SECURITY_GROUPS: str = ""

    def logic(self, dataset: Dataset) -> DeploySettings:
        return DeploySettings(
            endpoint_name=dataset.names.endpoint,
            role_arn=self.ENDPOINT_ROLE_ARN,
            resource_prefix=dataset.names.resource_prefix,
            model_package_group=dataset.names.model_package_group,
            data_capture_uri=self.DATA_CAPTURE_URI,
            kms_key_arn=self.KMS_KEY_ARN,
            model_subnets=ids(self.MODEL_SUBNETS),
            model_security_groups=ids(self.MODEL_SECURITY_GROUPS),
            serving=ServingConfig.model_validate(dict(dataset.serving)),
            rollback_alarms=tuple(dataset.names.rollback_alarms),
            dataset=dataset.name,
            schema=dataset.schema,
        )


settings = from_environment(Settings)


@cache
def deployer(group: str) -> Deployer:
    """The deployer of the dataset whose model package group is ``group`` (``UnknownDataset`` lists the declared
    ones). Clients are built lazily (after moto or the local cloud's endpoint configuration is in place)."""
    dataset = platform().by_model_package_group(group)
    clients = Clients(
        sagemaker=client("sagemaker"),
        s3=client("s3"),
        cloudwatch=client("cloudwatch"),
        autoscaling=client("application-autoscaling"),
    )
    return Deployer(settings().logic(dataset), clients)


@logger.inject_lambda_context(log_event=True, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=DeployEvent)
def handler(event: DeployEvent, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(action=event.action, execution=event.execution, model_package_group=event.state.group)
    result = deployer(event.state.group).handle(event.action, event.execution, event.state)
    outcome = result.get("outcome")
    if outcome:
        metrics.add_dimension(name="outcome", value=str(outcome))
        metrics.add_metric(name="Deployment", unit=MetricUnit.Count, value=1)
        logger.info("deployment finished", extra={"outcome": outcome, "subject": result.get("subject")})
    return result
