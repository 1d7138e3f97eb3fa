"""Labelled production rows: what the endpoint saw, with the label that arrived, as a dataset version in the
curated zone (issue 17).

Each joined request row becomes one row with the features decoded from the captured request (the drift monitor's
``decode.request_columns``, one record at a time so that row ``i`` of the request pairs with label ``i``), the
arrived label as the target, and where it came from (``PRODUCTION_COLUMNS``). The rows then pass the ETL's own
row validation (``pipelines.etl.transforms.validate_rows``: nulls, types, ranges, categories, the declared labels):
a row that fails is never written with the production rows, so it is never trained on; it is counted with its
reason and quarantined as uploads' rejected rows are (``quarantine_key``: JSON lines of the values as read, the
``reject_reason`` and the row's provenance; a request that does not decode into one feature row per label is
quarantined with reason ``request`` and its provenance only). The engineered columns
are computed as the ETL computes them, so a production file has the curated columns of an upload's split
(``transforms.curated_columns``) plus the provenance columns.

The model's predictions are never written: the target is the arrived label, nothing else.

Layout (curated bucket): ``production/<dataset>/prod_date=YYYY-MM-DD/prod_hour=HH/<digest>.parquet``, partitioned by
the captured inference time (the label's arrival time when the capture has none), so a row always lands in the
same partition whatever batch labels it. Deduplication by (inference id, request row): the row's key is
``<id>:<row>`` and the file name is a hash of the sorted keys of the partition's rows in this batch, so a label
file delivered again (same rows) overwrites its own files and adds nothing; rows labelled again by a different
file are resolved where production data is read (the latest label of a key wins: ``pipelines.data_policy``). No
marker table: the row key is already in the data, and one conditional write per row would cost a DynamoDB call
per label.

Catalogue: the Glue table ``<dataset table>_production`` (``pipelines.platform.production_table_name``), created or
updated by this Lambda like the ETL creates the dataset's table, with Athena partition projection on ``prod_date``
and ``prod_hour`` (no partition to add per batch).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lambdas.drift_monitor import capture
from lambdas.drift_monitor.decode import request_columns
from lambdas.ground_truth.logic import Joined, JoinResult
from pipelines.etl import transforms as tf
from pipelines.features import engineered_columns
from pipelines.platform import production_prefix, production_quarantine_prefix, production_table_name
from pipelines.schema import DatasetSchema

PRODUCTION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("prod_inference_id", "string"),  # the id the label named (the captured eventId or inferenceId)
    ("prod_request_row", "bigint"),  # the row of the captured request the label is for
    ("prod_model_version", "string"),  # the model that answered (not its answer)
    ("prod_variant", "string"),
    ("prod_inference_time", "string"),  # ISO-8601, the capture's
    ("prod_labelled_at", "string"),  # ISO-8601, the label file's upload time
    ("prod_label_source", "string"),  # s3://bucket/key?versionId of the label file
)
"""Provenance columns of a production row, after the curated columns (the ``prod_`` prefix keeps them apart from
declared feature names)."""
PARTITION_KEYS = ("prod_date", "prod_hour")
REQUEST_REASON = "request"
"""Reject reason of rows whose captured request does not decode into one feature row per label."""


class S3Client(Protocol):
    def put_object(self, **kwargs: Any) -> dict[str, Any]: ...


class GlueClient(Protocol):
    exceptions: Any

    def get_table(self, **kwargs: Any) -> dict[str, Any]: ...
    def create_table(self, **kwargs: Any) -> dict[str, Any]: ...
    def update_table(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ProductionConfig:
    dataset: str
    curated_bucket: str
    database: str
    schema: DatasetSchema


def production_id(label_id: str, row: int) -> str:
    """The key of a labelled production row: the labelled id and the request row."""
    return f"{label_id}:{row}"


def _decoded(joined: JoinResult, schema: DatasetSchema) -> tuple[list[Joined], dict[str, list[Any]], list[Joined]]:
    """(joined rows whose request decoded, their feature values by name, the rows whose request did not)."""
    by_id: dict[str, list[Joined]] = {}
    for row in joined.rows:
        by_id.setdefault(row.id, []).append(row)
    kept: list[Joined] = []
    features: dict[str, list[Any]] = {name: [] for name in schema.feature_names}
    undecoded: list[Joined] = []
    for label_id, rows in by_id.items():
        columns = request_columns([joined.records[label_id]], schema)
        if columns.bad_records or columns.rows != len(rows):
            undecoded += rows
            continue
        kept += rows
        for name in schema.feature_names:
            features[name].extend(columns.columns[name].tolist())
    return kept, features, undecoded


def _target(rows: list[Joined], schema: DatasetSchema) -> np.ndarray:
    if schema.task == "regression" or schema.numeric_labels:
        return np.asarray([float(r.label) for r in rows], dtype=np.float64)
    return np.asarray([str(r.label) for r in rows], dtype=object)


def _partition(row: Joined, labelled_at: datetime) -> tuple[str, str]:
    moment = labelled_at
    if row.inference_time:
        with contextlib.suppress(ValueError):  # an unreadable capture time: the label's arrival time
            moment = capture.parse_time(row.inference_time)
    return f"{moment:%Y-%m-%d}", f"{moment:%H}"


@dataclass
class ProductionRows:
    rows: pd.DataFrame  # curated columns + PRODUCTION_COLUMNS + PARTITION_KEYS
    rejects_by_reason: dict[str, int]
    rejected: pd.DataFrame | None = None  # input columns as read, reject_reason, provenance (no partition)


def quarantine_key(config: ProductionConfig, label_source: str) -> str:
    """One object per label file version: a redelivered label file overwrites its own quarantine."""
    digest = hashlib.sha256(label_source.encode()).hexdigest()[:16]
    return f"{production_quarantine_prefix(config.dataset)}{digest}/rejected.jsonl"


def _provenance(rows: list[Joined], labelled_at: datetime, label_source: str) -> dict[str, list[Any]]:
    return {
        "prod_inference_id": [r.id for r in rows],
        "prod_request_row": [r.row for r in rows],
        "prod_model_version": [r.model_version for r in rows],
        "prod_variant": [r.variant for r in rows],
        "prod_inference_time": [r.inference_time for r in rows],
        "prod_labelled_at": [labelled_at.isoformat().replace("+00:00", "Z")] * len(rows),
        "prod_label_source": [label_source] * len(rows),
    }


def _quarantined(
    rejected: pd.DataFrame, kept: list[Joined], undecoded: list[Joined], labelled_at: datetime, label_source: str
) -> pd.DataFrame:
    """The rejected rows (as ``validate_rows`` read them) and the undecodable requests' rows, with provenance."""
    lines = rejected.pop(tf.SOURCE_LINE).to_numpy() if len(rejected) else []
    invalid = [kept[int(i)] for i in lines]
    frame = rejected.reset_index(drop=True)
    for name, values in _provenance(invalid, labelled_at, label_source).items():
        frame[name] = values
    request = pd.DataFrame(_provenance(undecoded, labelled_at, label_source))
    request.insert(0, tf.REJECT_REASON, REQUEST_REASON)
    return pd.concat([p for p in (frame, request) if len(p)] or [frame], ignore_index=True)


def production_rows(
    joined: JoinResult, schema: DatasetSchema, labelled_at: datetime, label_source: str
) -> ProductionRows:
    """The valid labelled rows (curated columns, provenance, partition) and the rejected ones by reason."""
    kept, features, undecoded = _decoded(joined, schema)
    dropped = Counter({REQUEST_REASON: len(undecoded)} if undecoded else {})
    if not kept:  # nothing matched, or no request decoded: no row to validate
        names = [*tf.curated_columns(schema), *(name for name, _ in PRODUCTION_COLUMNS), *PARTITION_KEYS]
        quarantined = _quarantined(pd.DataFrame(), kept, undecoded, labelled_at, label_source)
        return ProductionRows(pd.DataFrame(columns=names), dict(sorted(dropped.items())), quarantined)
    ids = [production_id(r.id, r.row) for r in kept]
    frame = pd.DataFrame({name: features[name] for name in schema.feature_names}, index=range(len(kept)))
    if schema.key is not None:
        frame[schema.key] = ids
    frame[schema.target] = _target(kept, schema)
    frame[tf.SOURCE_LINE] = np.arange(len(kept), dtype=np.int64)
    valid, rejected = tf.validate_rows(frame[[*schema.input_columns, tf.SOURCE_LINE]], schema)
    reasons = Counter(dropped)
    reasons.update(rejected[tf.REJECT_REASON].astype(str).tolist())
    positions = valid.pop(tf.SOURCE_LINE).to_numpy()
    good = [kept[i] for i in positions]
    columns: dict[str, Any] = {name: valid[name] for name in valid.columns}
    columns[schema.key_column] = [ids[i] for i in positions]
    columns.update(engineered_columns(columns, schema))
    out = pd.DataFrame({name: columns[name] for name in tf.curated_columns(schema)}, copy=False)
    out = out.reset_index(drop=True)
    partitions = [_partition(r, labelled_at) for r in good]
    for name, values in _provenance(good, labelled_at, label_source).items():
        out[name] = pd.Series(values, dtype="int64" if name == "prod_request_row" else "string")
    out["prod_date"] = [p[0] for p in partitions]
    out["prod_hour"] = [p[1] for p in partitions]
    quarantined = _quarantined(rejected, kept, undecoded, labelled_at, label_source)
    return ProductionRows(out, dict(sorted(reasons.items())), quarantined)


def batch_key(config: ProductionConfig, date: str, hour: str, keys: list[str]) -> str:
    """The object of one partition's rows of a batch: named by the hash of their sorted keys (a redelivery of
    the same rows overwrites it)."""
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]
    return f"{production_prefix(config.dataset)}prod_date={date}/prod_hour={hour}/{digest}.parquet"


def table_input(config: ProductionConfig, rows: pd.DataFrame) -> dict[str, Any]:
    """The production table: the curated columns and provenance, partitions projected from the path."""
    schema = config.schema
    location = f"s3://{config.curated_bucket}/{production_prefix(config.dataset)}"
    columns = [{"Name": name, "Type": tf.glue_type(rows[name].dtype)} for name in tf.curated_columns(schema)]
    columns += [{"Name": name, "Type": kind} for name, kind in PRODUCTION_COLUMNS]
    return {
        "Name": production_table_name(config.dataset),
        "Description": f"Labelled production rows of {config.dataset} (captured features + ground truth)",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {
            "classification": "parquet",
            "dataset": config.dataset,
            "projection.enabled": "true",
            "projection.prod_date.type": "date",
            "projection.prod_date.format": "yyyy-MM-dd",
            "projection.prod_date.range": "2020-01-01,NOW",
            "projection.prod_date.interval": "1",
            "projection.prod_date.interval.unit": "DAYS",
            "projection.prod_hour.type": "integer",
            "projection.prod_hour.range": "0,23",
            "projection.prod_hour.digits": "2",
            "storage.location.template": f"{location}prod_date=${{prod_date}}/prod_hour=${{prod_hour}}/",
        },
        "StorageDescriptor": tf.parquet_storage(columns, location),
        "PartitionKeys": [{"Name": name, "Type": "string"} for name in PARTITION_KEYS],
    }


def register_table(glue: GlueClient, config: ProductionConfig, rows: pd.DataFrame) -> str:
    """Create the production table, or update it when its definition changed (a redeclared schema)."""
    wanted = table_input(config, rows)
    try:
        current = glue.get_table(DatabaseName=config.database, Name=wanted["Name"])["Table"]
    except glue.exceptions.EntityNotFoundException:
        glue.create_table(DatabaseName=config.database, TableInput=wanted)
        return "created"
    same = (
        current.get("StorageDescriptor", {}).get("Columns") == wanted["StorageDescriptor"]["Columns"]
        and current.get("PartitionKeys") == wanted["PartitionKeys"]
        and all(current.get("Parameters", {}).get(k) == v for k, v in wanted["Parameters"].items())
    )
    if same:
        return "unchanged"
    glue.update_table(DatabaseName=config.database, TableInput=wanted)
    return "updated"


def write(s3: S3Client, glue: GlueClient, config: ProductionConfig, production: ProductionRows) -> dict[str, Any]:
    """Put one Parquet object per partition of the batch, catalogue the table, quarantine the rejected rows; a
    summary of what was written."""
    rows = production.rows
    files: list[str] = []
    table = "not needed: no valid row"
    if len(rows):
        table = register_table(glue, config, rows)
        data = rows.drop(columns=list(PARTITION_KEYS))
        for (date, hour), index in rows.groupby(list(PARTITION_KEYS), sort=True).groups.items():
            part = data.loc[index]
            key = batch_key(config, str(date), str(hour), part[config.schema.key_column].astype(str).tolist())
            sink = io.BytesIO()
            pq.write_table(pa.Table.from_pandas(part, preserve_index=False), sink, compression="snappy")
            s3.put_object(Bucket=config.curated_bucket, Key=key, Body=sink.getvalue())
            files.append(f"s3://{config.curated_bucket}/{key}")
    rejected = sum(production.rejects_by_reason.values())
    quarantined = None
    if production.rejected is not None and len(production.rejected):
        source = str(production.rejected["prod_label_source"].iloc[0])
        key = quarantine_key(config, source)
        s3.put_object(Bucket=config.curated_bucket, Key=key, Body=tf.rejected_jsonl(production.rejected))
        quarantined = f"s3://{config.curated_bucket}/{key}"
    return {
        "rows": len(rows),
        "rejected_rows": rejected,
        "rejects_by_reason": production.rejects_by_reason,
        "quarantined": quarantined,
        "files": files,
        "table": f"{config.database}.{production_table_name(config.dataset)}",
        "table_change": table,
    }
