"""AWS Glue 5.0 (Spark 3.5, Python 3.11) entry point of the ETL: the path of uploads too large for the Lambda ETL.

The driver side of a run (read the raw version, parse, report, gate, quarantine, Parquet per split, catalog,
manifest) is ``pipelines.etl.driver``, shared with the Lambda ETL. What is Glue's own is here: the job arguments
(Glue style ``--name value``, ``getResolvedOptions``) and the Spark engine. Rows are spread over Spark partitions
by a hash of their key (so duplicate keys meet in one partition; a dataset without a key in file order, its row
ids come from each row's content) and every partition runs the pure ``transforms.transform_rows`` (validation,
features, split). Executors make no AWS calls. The driver gathers the results and makes the final split
assignment (``transforms.assign_splits``: a stratified dataset ranks each class over all partitions).

A failure raises ``EtlJobError`` whose message starts with a machine-readable reason, which Glue reports as the
run's ErrorMessage. Job arguments: ``REQUIRED_ARGS`` and ``OPTIONAL_ARGS`` of the driver.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.etl import transforms as tf
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
    run_job,
    version_label,
    write_manifest,
)
from pipelines.schema import DatasetSchema

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


def _ipc(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _frame(payload: bytes) -> pd.DataFrame:
    table = pa.ipc.open_stream(payload).read_all()
    return table.to_pandas(types_mapper=tf._types_mapper)


def process_partition(item: tuple[int, bytes], schema_json: str, gate_json: str) -> tuple[int, bytes, bytes]:
    """Executor side (pure): one partition's rows (Arrow IPC) -> (index, curated IPC, rejected IPC)."""
    index, payload = item
    curated, rejected = tf.transform_rows(
        _frame(payload), DatasetSchema.from_json(schema_json), GateParams.from_json(gate_json)
    )
    return index, _ipc(curated), _ipc(rejected.astype({tf.REJECT_REASON: object}))


def partition_rows(frame: pd.DataFrame, schema: DatasetSchema, partitions: int, seed: int) -> list[bytes]:
    """The parsed rows in ``partitions`` Arrow IPC payloads by key hash (without a key: consecutive ranges of
    rows, since no check spans rows); file order kept inside each."""
    if schema.key is None:
        bounds = np.linspace(0, len(frame), partitions + 1).astype(np.int64)
        return [_ipc(frame.iloc[bounds[i] : bounds[i + 1]]) for i in range(partitions)]
    owner = tf.hash_keys(frame[schema.key], seed) % np.uint64(partitions)
    return [_ipc(frame.iloc[np.flatnonzero(owner == np.uint64(i))]) for i in range(partitions)]


def transform_on_spark(
    spark: Any, parsed: tf.ParsedFile, schema: DatasetSchema, gate: GateParams, partitions: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run ``transform_rows`` over Spark partitions; (curated grouped by split, rejected by line)."""
    payloads = partition_rows(parsed.frame, schema, partitions, gate.split_seed)
    schema_json, gate_json = schema.to_json(), json.dumps(dataclasses.asdict(gate))
    rdd = spark.sparkContext.parallelize(list(enumerate(payloads)), numSlices=partitions)
    results = sorted(rdd.map(lambda item: process_partition(item, schema_json, gate_json)).collect())
    curated_parts = [_frame(curated) for _, curated, _ in results]
    rejected_parts = [_frame(rejected) for _, _, rejected in results]
    if parsed.bad_records is not None:
        rejected_parts.append(parsed.bad_records)
    curated = tf.assign_splits(pd.concat(curated_parts, ignore_index=True), schema, gate)
    rejected = pd.concat([p for p in rejected_parts if len(p)] or rejected_parts[:1], ignore_index=True)
    rejected = rejected.sort_values(tf.SOURCE_LINE, kind="stable", ignore_index=True)
    return curated.reset_index(drop=True), rejected


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


def spark_engine(spark: Any) -> Any:
    """The driver's ``Engine`` on ``spark``: ``transform_on_spark`` over ``--partitions`` partitions (0: the
    session's default parallelism), at most one per row."""

    def engine(parsed: tf.ParsedFile, args: JobArgs) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
        partitions = args.partitions or int(spark.sparkContext.defaultParallelism)
        partitions = max(1, min(partitions, len(parsed.frame)))
        curated, rejected = transform_on_spark(spark, parsed, args.schema, args.gate, partitions)
        return curated, rejected, {"engine": "glue", "spark_partitions": partitions}

    return engine


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
    lineage = run_job(args, spark_engine(spark), s3, glue)
    print(json.dumps(lineage, sort_keys=True, default=str))
    if job is not None:
        job.commit()
    return lineage


if __name__ == "__main__":
    main()
