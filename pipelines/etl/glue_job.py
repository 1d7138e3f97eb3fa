"""AWS Glue 5.0 (Spark 3.5, Python 3.11) entry point of the ETL: the path of uploads too large for the Lambda ETL.

What is Glue's own is here: the job arguments (Glue style ``--name value``, ``getResolvedOptions``, the same
``REQUIRED_ARGS`` and ``OPTIONAL_ARGS`` as the Lambda ETL's driver) and the Spark session. The run itself is
``pipelines.etl.spark_etl``: Spark reads the raw object from S3, the executors run the pure transforms of
``transforms.py`` per partition and write the curated Parquet and the rejected rows; the driver keeps aggregates
only (the report, the gate, the catalog, the manifest: ``pipelines.etl.driver``). Where Spark reads and writes an
``s3://`` location is ``pipelines.etl.spark_paths`` (Spark's own S3 on Glue, staged files in the local cloud).

A failure raises ``EtlJobError`` whose message starts with a machine-readable reason, which Glue reports as the
run's ErrorMessage. Job arguments: ``REQUIRED_ARGS`` and ``OPTIONAL_ARGS`` of the driver.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from pipelines.etl import spark_etl
from pipelines.etl.driver import (
    MANIFESTS_PREFIX,
    OPTIONAL_ARGS,
    PART_FILE,
    REQUIRED_ARGS,
    EtlJobError,
    GateParams,
    JobArgs,
    job_args,
    manifest_key,
    version_label,
    write_manifest,
)
from pipelines.etl.spark_paths import spark_paths

__all__ = [
    "MANIFESTS_PREFIX",
    "OPTIONAL_ARGS",
    "PART_FILE",
    "REQUIRED_ARGS",
    "EtlJobError",
    "GateParams",
    "JobArgs",
    "main",
    "manifest_key",
    "parse_job_args",
    "version_label",
    "write_manifest",
]


def resolve_args(argv: Sequence[str]) -> dict[str, str]:
    """Job arguments by name: ``awsglue.utils.getResolvedOptions`` on Glue, argparse elsewhere.

    ``argv`` is the full command line (``sys.argv``); unknown arguments (Glue adds its own) are ignored.
    """
    argv = list(argv)
    present = [name for name in OPTIONAL_ARGS if f"--{name}" in argv or any(a.startswith(f"--{name}=") for a in argv)]
    try:
        from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]
    except ImportError:
        parser = argparse.ArgumentParser(prog="glue_job", add_help=False)
        for name in REQUIRED_ARGS:
            parser.add_argument(f"--{name}", required=True)
        for name in present:
            parser.add_argument(f"--{name}")
        known, _ = parser.parse_known_args(argv[1:])
        resolved = {k: v for k, v in vars(known).items() if v is not None}
    else:
        resolved = dict(getResolvedOptions(argv, [*REQUIRED_ARGS, *present]))
    return {**OPTIONAL_ARGS, **resolved}


def parse_job_args(argv: Sequence[str]) -> JobArgs:
    """The run's arguments, with the dataset's schema, rules and table from the platform document."""
    return job_args(resolve_args(argv))


# ---- Spark -----------------------------------------------------------------------------------------


def spark_session() -> tuple[Any, Any]:
    """(SparkSession, Glue Job or None): GlueContext's session on Glue, a local[2] session elsewhere."""
    try:
        from awsglue.context import GlueContext  # type: ignore[import-not-found]
        from awsglue.job import Job  # type: ignore[import-not-found]
        from pyspark.context import SparkContext
    except ImportError:
        from pyspark.sql import SparkSession

        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        session = (
            SparkSession.builder.master("local[2]")
            .appName("etl")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
        return session, None
    glue_context = GlueContext(SparkContext.getOrCreate())
    return glue_context.spark_session, Job(glue_context)


def main(argv: Sequence[str] | None = None, *, spark: Any = None, s3: Any = None, glue: Any = None) -> dict[str, Any]:
    """Glue entry point; clients and the session are injectable (created lazily otherwise)."""
    args = parse_job_args(sys.argv if argv is None else ["glue_job", *argv])
    job = None
    if spark is None:
        spark, job = spark_session()
        if job is not None:
            job.init(args.job_name, {"JOB_NAME": args.job_name})
    if s3 is None or glue is None:
        import boto3

        s3 = s3 or boto3.client("s3")
        glue = glue or boto3.client("glue")
    lineage = spark_etl.run(args, spark, s3, glue, spark_paths(s3))
    print(json.dumps(lineage, sort_keys=True, default=str))
    if job is not None:
        job.commit()
    return lineage


if __name__ == "__main__":
    main()
