"""The driver side of one ETL run, whatever runs the row transforms: Glue (``glue_job.py``, Spark partitions) or
a Lambda (``lambdas/etl``, one process, for small uploads).

One run turns one raw object version into one dataset version:

1. The driver reads the exact raw object version (the raw object is never modified) and parses it
   (``transforms.parse_raw``); a malformed file is copied to quarantine with a reason file.
2. An ``Engine`` runs the pure row transforms: ``in_process`` (``transforms.transform_file``) in this process.
   The Glue job does not come through here: ``pipelines.etl.spark_etl`` reads, transforms and writes on Spark
   executors and shares this module's end of a run (``quarantine_file``, ``malformed``, ``rejected_reason``,
   ``conclude``); both give the same curated rows per split and the same rejected rows
   (``test_the_lambda_etl_writes_what_the_glue_job_writes`` in ``tests/integration/test_glue_job.py``).
3. The quality report is built and the gate applied. Rejected rows go to quarantine as JSON lines. If the gate
   passes, one Parquet file per split is written under
   ``s3://<curated_bucket>/<curated_prefix>/dataset=<name>/version=<execution_id>/split=<split>/`` and
   the Glue table (partition keys ``version`` and ``split``) gets the new partitions.
4. The report (``_quality_report.json``) lands next to the data; on success the run's lineage record also
   becomes ``manifests/<dataset>/latest.json`` in the curated bucket (where a retrain starts from), and is
   returned. A failure raises ``EtlJobError`` whose message starts with a machine-readable reason
   (``MalformedFile: <code>: ...``, ``QualityGateFailed: ...``, ``RawObjectUnavailable: ...``), which Glue
   reports as the run's ErrorMessage and a Lambda as its errorMessage.

Arguments by name: ``REQUIRED_ARGS`` and ``OPTIONAL_ARGS``. ``dataset`` names a declared dataset: its schema, its
data-quality rules (the stage's ``QualityGate``) and its Glue table come from the platform document
``pipelines/datasets.json`` shipped with the code (``pipelines.platform``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipelines.etl import transforms as tf
from pipelines.platform import PlatformError, UnknownDataset, platform
from pipelines.schema import SPLITS, DatasetSchema

REQUIRED_ARGS: tuple[str, ...] = (
    "JOB_NAME",
    "dataset",
    "raw_bucket",
    "raw_key",
    "curated_bucket",
    "database",
    "execution_id",
)
OPTIONAL_ARGS: dict[str, str] = {
    "raw_version_id": "",  # empty: the current version
    "curated_prefix": "curated",
    "quarantine_bucket": "",  # empty: the curated bucket
    "quarantine_prefix": "quarantine",
    "report_bucket": "",  # empty: the curated bucket
    "file_format": "",  # empty: from the key's suffix (.parquet/.pq, else csv)
    "partitions": "0",  # 0: the Spark default parallelism
}
PART_FILE = "part-00000.parquet"
MANIFESTS_PREFIX = "manifests"
"""``manifests/<dataset>/latest.json`` in the curated bucket: the lineage record of the newest passed version."""


class EtlJobError(RuntimeError):
    """A failed run; the message starts with ``<Reason>:``."""


@dataclass(frozen=True)
class GateParams:
    """The quality gate as passed in ``--quality_json`` (the fields of stacks.config.QualityGate)."""

    max_bad_row_share: float
    min_rows: int
    validation_share: float
    test_share: float
    split_seed: int

    @classmethod
    def from_json(cls, text: str) -> GateParams:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: Any) -> GateParams:
        return cls(
            max_bad_row_share=float(data["max_bad_row_share"]),
            min_rows=int(data["min_rows"]),
            validation_share=float(data["validation_share"]),
            test_share=float(data["test_share"]),
            split_seed=int(data["split_seed"]),
        )


@dataclass(frozen=True)
class JobArgs:
    job_name: str
    raw_bucket: str
    raw_key: str
    raw_version_id: str | None
    curated_bucket: str
    curated_prefix: str
    quarantine_bucket: str
    quarantine_prefix: str
    report_bucket: str
    database: str
    table: str
    schema: DatasetSchema
    gate: GateParams
    execution_id: str
    file_format: str
    partitions: int

    @property
    def table_prefix(self) -> str:
        return f"{self.curated_prefix}/dataset={self.schema.name}/"

    @property
    def version_prefix(self) -> str:
        return f"{self.table_prefix}version={self.execution_id}/"

    @property
    def quarantine_version_prefix(self) -> str:
        return f"{self.quarantine_prefix}/dataset={self.schema.name}/version={self.execution_id}/"

    @property
    def report_key(self) -> str:
        return f"{self.version_prefix}_quality_report.json"

    @property
    def manifest_key(self) -> str:
        return manifest_key(self.schema.name)


def manifest_key(dataset: str) -> str:
    """Where the lineage record of ``dataset``'s newest version that passed the gate lives (curated bucket)."""
    return f"{MANIFESTS_PREFIX}/{dataset}/latest.json"


def version_label(execution_id: str) -> str:
    """A partition-safe dataset version from an execution id or ARN (its last ``:`` segment)."""
    label = re.sub(r"[^A-Za-z0-9_.-]", "-", execution_id.rsplit(":", 1)[-1]).strip("-.")
    if not label:
        raise ValueError(f"execution id {execution_id!r} gives an empty version label")
    return label


def job_args(given: Mapping[str, str]) -> JobArgs:
    """The run's arguments (``REQUIRED_ARGS`` and any of ``OPTIONAL_ARGS`` by name), with the dataset's schema, rules
    and table from the platform document; a missing required argument raises ``EtlJobError`` naming it."""
    missing = [name for name in REQUIRED_ARGS if not given.get(name)]
    if missing:
        raise EtlJobError(f"MissingArguments: {', '.join(missing)}")
    values = {**OPTIONAL_ARGS, **given}
    try:
        dataset = platform().dataset(values["dataset"])
    except (UnknownDataset, PlatformError) as error:
        raise EtlJobError(f"UnknownDataset: {error}") from None
    return JobArgs(
        job_name=values["JOB_NAME"],
        raw_bucket=values["raw_bucket"],
        raw_key=values["raw_key"],
        raw_version_id=values["raw_version_id"] or None,
        curated_bucket=values["curated_bucket"],
        curated_prefix=values["curated_prefix"].strip("/"),
        quarantine_bucket=values["quarantine_bucket"] or values["curated_bucket"],
        quarantine_prefix=values["quarantine_prefix"].strip("/"),
        report_bucket=values["report_bucket"] or values["curated_bucket"],
        database=values["database"],
        table=dataset.names.glue_table,
        schema=dataset.schema,
        gate=GateParams.from_dict(dataset.quality),
        execution_id=version_label(values["execution_id"]),
        file_format=values["file_format"] or tf.detect_format(values["raw_key"]),
        partitions=int(values["partitions"]),
    )


Engine = Callable[[tf.ParsedFile, JobArgs], tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]]
"""Runs the row transforms of a parsed file: (curated rows grouped by split, rejected rows by line, what the
lineage record says about the engine)."""


def in_process(parsed: tf.ParsedFile, args: JobArgs) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The engine of a small upload: every row in this process (the Lambda ETL)."""
    curated, rejected = tf.transform_file(parsed, args.schema, args.gate)
    return curated, rejected, {"engine": "lambda"}


# ---- S3 and the catalog ----------------------------------------------------------------------------


def _put_json(s3: Any, bucket: str, key: str, document: dict[str, Any]) -> str:
    body = json.dumps(document, indent=2, sort_keys=True, default=str).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    return f"s3://{bucket}/{key}"


def write_manifest(s3: Any, args: JobArgs, lineage: dict[str, Any]) -> str:
    """Publish ``lineage`` as the dataset's latest manifest (retrains start from it); returns its URI."""
    if lineage.get("status") != "SUCCEEDED":
        raise ValueError(f"only a SUCCEEDED lineage record becomes the manifest, not {lineage.get('status')!r}")
    return _put_json(s3, args.curated_bucket, args.manifest_key, lineage)


def raw_call(call: Callable[..., Any], args: JobArgs) -> Any:
    """``call`` (``s3.get_object`` or ``s3.head_object``) on the raw object version, or ``RawObjectUnavailable``."""
    request = {"Bucket": args.raw_bucket, "Key": args.raw_key}
    if args.raw_version_id:
        request["VersionId"] = args.raw_version_id
    try:
        return call(**request)
    except Exception as error:  # botocore ClientError and friends: the reason matters, not the type
        raise EtlJobError(
            f"RawObjectUnavailable: s3://{args.raw_bucket}/{args.raw_key} "
            f"(version {args.raw_version_id or 'latest'}): {error}"
        ) from error


def raw_lineage(response: Mapping[str, Any], args: JobArgs, size: int) -> dict[str, Any]:
    """The lineage record of the raw object version a GetObject / HeadObject ``response`` describes."""
    return {
        "bucket": args.raw_bucket,
        "key": args.raw_key,
        "version_id": response.get("VersionId") or args.raw_version_id,
        "etag": str(response.get("ETag", "")).strip('"'),
        "size": size,
        "format": args.file_format,
    }


def read_raw(s3: Any, args: JobArgs) -> tuple[bytes, dict[str, Any]]:
    """The raw object version's bytes and its lineage record."""
    response = raw_call(s3.get_object, args)
    raw = response["Body"].read()
    return raw, raw_lineage(response, args, len(raw))


def register_table(
    glue: Any, args: JobArgs, curated: pd.DataFrame, splits: Sequence[str], report_uri: str
) -> list[dict[str, str]]:
    """Create or update the table (partitioned by version and split) and add this run's partitions."""
    location = f"s3://{args.curated_bucket}/{args.table_prefix}"
    columns = [{"Name": name, "Type": tf.glue_type(curated[name].dtype)} for name in tf.curated_columns(args.schema)]
    storage = tf.parquet_storage(columns, location)
    table_input = {
        "Name": args.table,
        "Description": f"Curated {args.schema.name} dataset, one version per ETL run",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {
            "classification": "parquet",
            "dataset": args.schema.name,
            "latest_version": args.execution_id,
            "latest_report": report_uri,
        },
        "StorageDescriptor": storage,
        "PartitionKeys": [{"Name": "version", "Type": "string"}, {"Name": "split", "Type": "string"}],
    }
    try:
        glue.get_database(Name=args.database)
    except glue.exceptions.EntityNotFoundException:
        glue.create_database(DatabaseInput={"Name": args.database})
    try:
        glue.get_table(DatabaseName=args.database, Name=args.table)
    except glue.exceptions.EntityNotFoundException:
        glue.create_table(DatabaseName=args.database, TableInput=table_input)
    else:
        glue.update_table(DatabaseName=args.database, TableInput=table_input)

    partitions = []
    for split in splits:
        values = [args.execution_id, split]
        partition_input = {
            "Values": values,
            "StorageDescriptor": {
                **storage,
                "Location": f"s3://{args.curated_bucket}/{args.version_prefix}split={split}/",
            },
        }
        try:
            glue.create_partition(DatabaseName=args.database, TableName=args.table, PartitionInput=partition_input)
        except glue.exceptions.AlreadyExistsException:
            glue.update_partition(
                DatabaseName=args.database,
                TableName=args.table,
                PartitionValueList=values,
                PartitionInput=partition_input,
            )
        partitions.append({"version": args.execution_id, "split": split})
    return partitions


def _write_splits(s3: Any, args: JobArgs, files: dict[str, bytes]) -> dict[str, str]:
    """Put one Parquet object per split and delete leftovers of an earlier run of the same version."""
    written = {}
    for split, body in files.items():
        key = f"{args.version_prefix}split={split}/{PART_FILE}"
        s3.put_object(Bucket=args.curated_bucket, Key=key, Body=body)
        written[split] = f"s3://{args.curated_bucket}/{key}"
    keep = {uri.split("/", 3)[3] for uri in written.values()}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=args.curated_bucket, Prefix=args.version_prefix):
        stale = [o["Key"] for o in page.get("Contents", []) if "/split=" in o["Key"] and o["Key"] not in keep]
        if stale:
            s3.delete_objects(Bucket=args.curated_bucket, Delete={"Objects": [{"Key": k} for k in stale]})
    return written


def quarantine_file(
    s3: Any, args: JobArgs, error: tf.MalformedFileError, source: dict[str, Any], copy: Callable[[str, str], None]
) -> str:
    """Quarantine a malformed file as a whole: ``copy(bucket, key)`` puts the raw bytes there, a reason file
    explains; returns the quarantine folder's URI."""
    name = args.raw_key.rsplit("/", 1)[-1] or "raw"
    key = f"{args.quarantine_version_prefix}{name}"
    copy(args.quarantine_bucket, key)
    reason = {
        "reason": "malformed_file",
        "reason_code": error.reason_code,
        "message": error.message,
        "source": source,
        "quarantined_copy": f"s3://{args.quarantine_bucket}/{key}",
    }
    _put_json(s3, args.quarantine_bucket, f"{args.quarantine_version_prefix}_reason.json", reason)
    return f"s3://{args.quarantine_bucket}/{args.quarantine_version_prefix}"


def malformed(
    s3: Any, args: JobArgs, error: tf.MalformedFileError, source: dict[str, Any], job: dict[str, Any], copy: str
) -> EtlJobError:
    """Report a malformed file (quarantined at ``copy``); returns the run's error to raise."""
    report_uri = f"s3://{args.report_bucket}/{args.report_key}"
    report = {**tf.malformed_report(args.schema, error, source), "job": job, "quarantine": copy}
    _put_json(s3, args.report_bucket, args.report_key, report)
    return EtlJobError(f"MalformedFile: {error} (quarantined at {copy}; report {report_uri})")


def rejected_reason(s3: Any, args: JobArgs, report: dict[str, Any], source: dict[str, Any], rows_uri: str) -> str:
    """The quarantine's ``_reason.json`` for rejected rows written at ``rows_uri``; returns the folder's URI."""
    reason = {
        "reason": "rejected_rows",
        "rows": report["rows"],
        "rejects_by_reason": report["rejects_by_reason"],
        "source": source,
        "rejected_rows": rows_uri,
    }
    _put_json(s3, args.quarantine_bucket, f"{args.quarantine_version_prefix}_reason.json", reason)
    return f"s3://{args.quarantine_bucket}/{args.quarantine_version_prefix}"


def _quarantine_rows(s3: Any, args: JobArgs, result: tf.TransformResult, source: dict[str, Any]) -> str | None:
    if not len(result.rejected):
        return None
    key = f"{args.quarantine_version_prefix}rejected.jsonl"
    s3.put_object(Bucket=args.quarantine_bucket, Key=key, Body=tf.rejected_jsonl(result.rejected))
    return rejected_reason(s3, args, result.report, source, f"s3://{args.quarantine_bucket}/{key}")


def job_record(args: JobArgs) -> dict[str, Any]:
    """The report's ``job`` block at the start of a run."""
    return {
        "job_name": args.job_name,
        "execution_id": args.execution_id,
        "started_at": dt.datetime.now(dt.UTC).isoformat(),
    }


def conclude(
    s3: Any,
    glue: Any,
    args: JobArgs,
    report: dict[str, Any],
    gate: tuple[bool, list[str]],
    quarantine: str | None,
    engine_record: dict[str, Any],
    job: dict[str, Any],
    write_files: Callable[[], dict[str, str]],
    columns: pd.DataFrame,
) -> dict[str, Any]:
    """The end of a run whose rows are transformed and reported: a failed gate raises ``QualityGateFailed``;
    otherwise ``write_files()`` writes the curated splits (returns their URIs by split), the catalog gets the
    partitions (column types from ``columns``' dtypes), then the report and the manifest are written."""
    passed, reasons = gate
    report_uri = f"s3://{args.report_bucket}/{args.report_key}"
    lineage: dict[str, Any] = {
        "dataset": args.schema.name,
        "version": args.execution_id,
        "source": report["source"],
        "rows": report["rows"],
        "rejected_share": report["rejected_share"],
        "splits": {name: report["splits"][name]["rows"] for name in SPLITS},
        "report_uri": report_uri,
        "quarantine_uri": quarantine,
        "database": args.database,
        "table": args.table,
        **engine_record,
    }
    if not passed:
        lineage["status"] = "FAILED"
        _put_json(s3, args.report_bucket, args.report_key, {**report, "job": job, "output": lineage})
        raise EtlJobError(f"QualityGateFailed: {'; '.join(reasons)} (report {report_uri}; quarantine {quarantine})")

    files = write_files()
    lineage["files"] = files
    lineage["curated_prefix"] = f"s3://{args.curated_bucket}/{args.version_prefix}"
    lineage["partitions"] = register_table(glue, args, columns, sorted(files, key=SPLITS.index), report_uri)
    lineage["status"] = "SUCCEEDED"
    job["finished_at"] = dt.datetime.now(dt.UTC).isoformat()
    _put_json(s3, args.report_bucket, args.report_key, {**report, "job": job, "output": lineage})
    write_manifest(s3, args, lineage)  # last: the manifest only ever names a complete, reported version
    return lineage


# ---- the run ---------------------------------------------------------------------------------------


def run_job(args: JobArgs, engine: Engine, s3: Any, glue: Any) -> dict[str, Any]:
    """One ETL run (see the module docstring); returns the lineage record or raises ``EtlJobError``."""
    job = job_record(args)
    raw, source = read_raw(s3, args)
    try:
        parsed = tf.parse_raw(raw, args.file_format, args.schema)
    except tf.MalformedFileError as error:

        def copy(bucket: str, key: str) -> None:
            s3.put_object(Bucket=bucket, Key=key, Body=raw)

        raise malformed(s3, args, error, source, job, quarantine_file(s3, args, error, source, copy)) from error

    curated, rejected, engine_record = engine(parsed, args)
    result = tf.finish(args.schema, curated, rejected, args.gate, parsed.input_rows, parsed.dropped_columns, source)
    quarantine = _quarantine_rows(s3, args, result, source)
    return conclude(
        s3,
        glue,
        args,
        result.report,
        (result.gate_passed, result.gate_reasons),
        quarantine,
        engine_record,
        job,
        lambda: _write_splits(s3, args, tf.split_parquet(result.curated, args.schema)),
        result.curated,
    )
