"""RegisterModel step: ``{"execution", "state": $}`` -> ``$.registration``; every run lands in the registry."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from lambdas.register_model.logic import Approval, RegisterSettings, register
from lambdas.shared.aws import client
from lambdas.shared.datasets import dataset_of_state
from lambdas.shared.observability import logger, metrics, tracer
from lambdas.shared.settings import from_environment
from pipelines.platform import Dataset, platform


class Settings(BaseModel):
    """Parsed at first use: a missing variable fails loudly with its name (the dataset's group, the stage's
    approval mode and hyperparameters come from the platform document)."""

    INFERENCE_IMAGE: str
    CODE_VERSION: str
    STAGE: str

    def logic(self, dataset: Dataset) -> RegisterSettings:
        document = platform()
        approval: Approval = "manual" if document.approval == "manual" else "auto"
        return RegisterSettings(
            model_package_group=dataset.names.model_package_group,
            approval_mode=approval,
            inference_image=self.INFERENCE_IMAGE,
            code_version=self.CODE_VERSION,
            hyperparameters=dataset.schema.model_spec.lineage_hyperparameters(
                dataset.schema.task, document.hyperparameters
            ),
            dataset=dataset.name,
            stage=self.STAGE,
            model=dataset.schema.model_spec.lineage,
        )


class PreparedState(BaseModel):
    model_config = {"extra": "allow"}

    model_version: str
    evaluation_uri: str


class TrainingState(BaseModel):
    model_config = {"extra": "allow"}

    model_data: str


class RegisterState(BaseModel):
    """What registration needs from ``$`` (the rest is passed through untouched)."""

    model_config = {"extra": "allow"}

    prepared: PreparedState
    training: TrainingState


class StepEvent(BaseModel):
    execution: str = Field(min_length=1, max_length=80)
    state: RegisterState


settings = from_environment(Settings)


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=StepEvent)
def handler(event: StepEvent, context: LambdaContext) -> dict[str, Any]:
    state = event.state.model_dump()
    registration = register(
        execution=event.execution,
        state=state,
        s3=client("s3"),
        sagemaker=client("sagemaker"),
        settings=settings().logic(dataset_of_state(state)),
    )
    logger.info(
        "model package recorded",
        extra={
            "dataset": state.get("dataset"),
            "model_package_arn": registration.model_package_arn,
            "approval_status": registration.approval_status,
            "recorded_now": registration.recorded,
        },
    )
    if registration.recorded:  # a retry that finds its registration complete counts nothing twice
        name = "ModelRegistered" if registration.passed else "ModelRejected"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    return registration.as_state()
