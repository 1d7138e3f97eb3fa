"""RunEtlInLambda step: ``{"execution", "dataset", "upload"}`` -> ``{"job_run_id", "state", "lineage"}`` (the state
machine keeps ``job_run_id`` and ``state`` in ``$.etl``, as it does from the Glue job)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from lambdas.etl.logic import EtlSettings, Upload, run
from lambdas.shared.aws import client
from lambdas.shared.observability import logger, tracer
from lambdas.shared.settings import from_environment


class Settings(BaseModel):
    """Parsed at first use: a missing variable fails loudly with its name."""

    CURATED_BUCKET: str
    GLUE_DATABASE: str
    ETL_MAX_BYTES: int = Field(gt=0)

    def logic(self) -> EtlSettings:
        return EtlSettings(
            curated_bucket=self.CURATED_BUCKET, database=self.GLUE_DATABASE, max_bytes=self.ETL_MAX_BYTES
        )


class UploadModel(BaseModel):
    bucket: str = Field(min_length=3)
    key: str = Field(min_length=1)
    version_id: str = Field(min_length=1)
    size: int = Field(ge=0)


class EtlEvent(BaseModel):
    execution: str = Field(min_length=1, max_length=80)
    dataset: str = Field(min_length=1)
    upload: UploadModel


settings = from_environment(Settings)


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@event_parser(model=EtlEvent)
def handler(event: EtlEvent, context: LambdaContext) -> dict[str, Any]:
    result = run(
        execution=event.execution,
        dataset=event.dataset,
        upload=Upload(**event.upload.model_dump()),
        settings=settings().logic(),
        run_id=context.aws_request_id,
        job_name=context.function_name,
        s3=client("s3"),
        glue=client("glue"),
    )
    lineage = result["lineage"]
    logger.info(
        "etl finished",
        extra={
            "dataset": event.dataset,
            "version": lineage["version"],
            "rows": lineage["rows"],
            "splits": lineage["splits"],
        },
    )
    return result
