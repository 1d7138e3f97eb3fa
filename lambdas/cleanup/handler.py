"""Teardown custom resource (CDK Provider framework ``onEvent``): on Delete, remove what the pipeline created; on
an Update that drops datasets from its ``Datasets`` property, remove what the pipeline created for those (their
declarations were removed: the endpoint would otherwise keep running and billing).

Create and Update keep one physical id, so CloudFormation never replaces the resource (a replacement would Delete
the old one: a cleanup in the middle of an update).
"""

from __future__ import annotations

from dataclasses import asdict
from functools import lru_cache
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from lambdas.cleanup.logic import Cleanup
from lambdas.shared.aws import client
from lambdas.shared.observability import logger, tracer
from lambdas.shared.settings import from_environment

SAFETY_MARGIN_SECONDS = 30  # leave time to answer the provider framework before the Lambda times out


class Settings(BaseModel):
    RESOURCE_PREFIX: str = Field(min_length=1)


class CustomResourceEvent(BaseModel):
    """The fields of a CloudFormation custom-resource request that this handler reads."""

    model_config = {"extra": "allow"}

    RequestType: Literal["Create", "Update", "Delete"]
    LogicalResourceId: str = ""
    PhysicalResourceId: str | None = None
    ResourceProperties: dict[str, Any] = Field(default_factory=dict)
    OldResourceProperties: dict[str, Any] = Field(default_factory=dict)


settings = from_environment(Settings)


@lru_cache(maxsize=1)
def cleanup() -> Cleanup:
    return Cleanup(client("sagemaker"), client("application-autoscaling"))


@logger.inject_lambda_context(log_event=True, clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=CustomResourceEvent)
def handler(event: CustomResourceEvent, context: LambdaContext) -> dict[str, Any]:
    prefix = settings().RESOURCE_PREFIX
    physical_id = event.PhysicalResourceId or f"{prefix}-sagemaker-cleanup"
    if event.RequestType == "Create":
        return {"PhysicalResourceId": physical_id}
    budget = context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_SECONDS
    if event.RequestType == "Update":
        declared = _datasets(event.ResourceProperties)
        removed = sorted(_datasets(event.OldResourceProperties) - declared)
        if not removed:
            return {"PhysicalResourceId": physical_id}
        report = cleanup().retire(prefix, removed, declared, deadline_seconds=budget)
        logger.info("retired datasets' resources deleted", extra={"datasets": removed, **asdict(report)})
    else:
        report = cleanup().delete_all(prefix, deadline_seconds=budget)
        logger.info("pipeline resources deleted", extra=asdict(report))
    return {"PhysicalResourceId": physical_id, "Data": {k: str(len(v)) for k, v in asdict(report).items()}}


def _datasets(properties: dict[str, Any]) -> set[str]:
    """The ``Datasets`` property (a list of names; absent before datasets were declared)."""
    names = properties.get("Datasets") or []
    return {str(name) for name in names} if isinstance(names, list) else set()
