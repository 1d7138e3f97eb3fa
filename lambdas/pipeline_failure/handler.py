"""ExplainFailure step: ``{"execution", "error": {"Error", "Cause"}, "input", "state"}`` -> ``$.failure``."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from lambdas.pipeline_failure.logic import explain
from lambdas.shared.observability import logger, tracer
from lambdas.shared.settings import from_environment


class Settings(BaseModel):
    """Parsed at first use: a missing variable fails loudly with its name."""

    STAGE: str
    AWS_REGION: str = "us-east-1"  # set by the Lambda runtime


class CaughtError(BaseModel):
    """What a Catch with ``ResultPath: $.error`` stores (``Cause`` may be absent, e.g. some timeouts)."""

    Error: str = "States.Unknown"
    Cause: str | None = None


class FailureEvent(BaseModel):
    execution: str = Field(min_length=1, max_length=80)
    error: CaughtError
    input: dict[str, Any] | None = None
    state: dict[str, Any] | None = None


settings = from_environment(Settings)


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@event_parser(model=FailureEvent)
def handler(event: FailureEvent, context: LambdaContext) -> dict[str, Any]:
    failure = explain(
        execution=event.execution,
        error=event.error.model_dump(),
        execution_input=event.input,
        state=event.state,
        stage_label=settings().STAGE,
        region=settings().AWS_REGION,
    )
    logger.error("pipeline failed", extra={"stage": failure["stage"], "reason": failure["reason"]})
    return failure
