"""PrepareTraining step: ``{"execution", "state": $}`` -> ``$.prepared`` (dataset version, champion, job names)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field, Json

from lambdas.prepare_training.logic import PrepareSettings, prepare
from lambdas.shared.aws import client
from lambdas.shared.datasets import dataset_of_state
from lambdas.shared.observability import logger, tracer
from lambdas.shared.settings import from_environment
from pipelines.platform import Dataset


class Settings(BaseModel):
    """Parsed at first use: a missing variable fails loudly with its name (the dataset's group and names come
    from the platform document)."""

    CURATED_BUCKET: str
    ARTIFACTS_BUCKET: str
    TRAINING_HYPERPARAMETERS: Json[dict[str, str]]  # the training job's static hyperparameters (a tuning job's)

    def logic(self, dataset: Dataset) -> PrepareSettings:
        return PrepareSettings(
            model_package_group=dataset.names.model_package_group,
            curated_bucket=self.CURATED_BUCKET,
            artifacts_bucket=self.ARTIFACTS_BUCKET,
            dataset=dataset.name,
            job_prefix=dataset.names.resource_prefix,
            tuning=dataset.schema.model_spec.tuning,
            objective=dataset.schema.tuning_objective,
            static_hyperparameters=self.TRAINING_HYPERPARAMETERS,
            schema=dataset.schema,
        )


class StepEvent(BaseModel):
    """The payload every Lambda step of the training state machine receives."""

    execution: str = Field(min_length=1, max_length=80)
    state: dict[str, Any]


settings = from_environment(Settings)


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@event_parser(model=StepEvent)
def handler(event: StepEvent, context: LambdaContext) -> dict[str, Any]:
    prepared = prepare(
        execution=event.execution,
        state=event.state,
        s3=client("s3"),
        sagemaker=client("sagemaker"),
        settings=settings().logic(dataset_of_state(event.state)),
    )
    logger.info(
        "training prepared",
        extra={
            "dataset": event.state.get("dataset"),
            "dataset_version": prepared["curated"]["version"],
            "training_job_name": prepared["training_job_name"],
            "tuning_job_name": (prepared.get("tuning") or {}).get("job_name"),
            "champion": prepared["champion"],
        },
    )
    return prepared
