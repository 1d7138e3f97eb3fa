"""The Lambda ETL of a small upload: the Glue job's driver (``pipelines.etl.driver``) with every row transformed in
this process (``driver.in_process``), so both paths write the same curated splits, quarantine, report, catalog
partitions and manifest, and fail with the same machine-readable reasons.

The training state machine sends an upload here when its size is at most the stage's ``etl.lambda_max_bytes``
(``stacks/config.py``: sized so that the file, its parsed frame and the Parquet output fit the function's memory
with margin, and the run its 15-minute limit); a larger one goes to Glue. This function refuses a larger one
itself as well (``TooLargeForLambda``), before reading it, should it be invoked some other way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipelines.etl import driver


@dataclass(frozen=True)
class EtlSettings:
    """What the function knows besides the event (environment, names only)."""

    curated_bucket: str
    database: str
    max_bytes: int


@dataclass(frozen=True)
class Upload:
    """The raw object version the execution's input names (``$.upload``, from the start Lambda)."""

    bucket: str
    key: str
    version_id: str
    size: int


def run(
    *,
    execution: str,
    dataset: str,
    upload: Upload,
    settings: EtlSettings,
    run_id: str,
    job_name: str,
    s3: Any,
    glue: Any,
) -> dict[str, Any]:
    """One ETL run of ``upload``: ``{"job_run_id", "state", "lineage"}`` or ``driver.EtlJobError``."""
    if upload.size > settings.max_bytes:
        raise driver.EtlJobError(
            f"TooLargeForLambda: s3://{upload.bucket}/{upload.key} is {upload.size} bytes, above the Lambda ETL's "
            f"{settings.max_bytes} (etl.lambda_max_bytes): the Glue job runs uploads of that size"
        )
    args = driver.job_args(arguments(execution, dataset, upload, settings, job_name))
    lineage = driver.run_job(args, driver.in_process, s3, glue)
    return {"job_run_id": run_id, "state": lineage["status"], "lineage": lineage}


def arguments(execution: str, dataset: str, upload: Upload, settings: EtlSettings, job_name: str) -> Mapping[str, str]:
    """The driver's arguments, as the state machine passes them to the Glue job (the rest: its defaults)."""
    return {
        "JOB_NAME": job_name,
        "dataset": dataset,
        "raw_bucket": upload.bucket,
        "raw_key": upload.key,
        "raw_version_id": upload.version_id,
        "curated_bucket": settings.curated_bucket,
        "database": settings.database,
        "execution_id": execution,
    }
