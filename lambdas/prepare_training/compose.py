"""Compose the training channels a data plan names (issue 17): the latest upload's train split plus the plan's
labelled production rows, and the test set from the most recent production rows when the plan says so.

Why here (the prepare step, a Lambda) and not a processing job or the Glue job: the production rows are already
validated and in the curated format (``lambdas/ground_truth/production.py``), and the plan caps them
(``max_production_share`` of the upload's training rows, the window), so composing is a read, a concatenation and
a Parquet write of at most about twice the upload's training split, with no cluster or job to start (a processing
job or a Glue run adds minutes of start-up to every retrain). The limit is the Lambda's memory (``PrepareTraining``:
1 GB) and 15 minutes: an upload whose train split does not fit in that would need the Glue job in a compose mode
(not built).

Output: ``curated/composed/<dataset>/<version label of the execution>/split=<split>/part-00000.parquet`` in the
curated bucket (under ``curated/``, which the training and evaluation jobs already read; outside every dataset
table's location ``curated/dataset=<name>/``). The same execution composes the same files (safe to repeat).
"""

from __future__ import annotations

import io
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lambdas.shared import production_data
from pipelines.data_policy import WITH_PRODUCTION, select
from pipelines.platform import COMPOSED_PREFIX
from pipelines.schema import DatasetSchema

PART_FILE = "part-00000.parquet"


class S3Client(Protocol):
    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]: ...
    def get_object(self, **kwargs: Any) -> dict[str, Any]: ...
    def put_object(self, **kwargs: Any) -> dict[str, Any]: ...


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def read_split(s3: S3Client, uri: str) -> pd.DataFrame:
    """Every Parquet file under a split's prefix, as one frame."""
    bucket, prefix = _split(uri)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    frame = production_data.read_frame(s3, bucket, [k for k in keys if k.endswith(".parquet")])
    if frame is None:
        raise ValueError(f"no Parquet rows under {uri}")
    return frame


def _like(rows: pd.DataFrame, upload: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with the upload's columns, in its order and types (categoricals over the same categories)."""
    out = rows[list(upload.columns)].reset_index(drop=True)
    for name in upload.columns:
        if out[name].dtype != upload[name].dtype:
            out[name] = out[name].astype(upload[name].dtype)
    return out


def chosen_rows(
    s3: S3Client, bucket: str, schema: DatasetSchema, data_plan: dict[str, Any]
) -> dict[str, pd.DataFrame | None]:
    """The whole production rows the plan selects, by part (``train``, ``test``)."""
    part = data_plan["production"]
    start, end = (production_data.parse_time(part[k]) for k in ("start", "end"))
    frame = production_data.read_frame(s3, bucket, production_data.files(s3, bucket, schema.name, start, end))
    chosen = select(data_plan, production_data.rows_of(frame, schema))
    out: dict[str, pd.DataFrame | None] = {}
    for name, rows in chosen.items():
        if not rows or frame is None:
            out[name] = None
            continue
        wanted = pd.DataFrame(
            {"_key": [r.key for r in rows], "_labelled": [r.labelled_at for r in rows], "_order": range(len(rows))}
        )
        candidates = frame.assign(
            _key=frame[schema.key_column].astype(str),
            _labelled=frame["prod_labelled_at"].map(production_data.parse_time),
        )
        merged = candidates.merge(wanted, on=["_key", "_labelled"]).drop_duplicates("_key").sort_values("_order")
        out[name] = merged.drop(columns=["_key", "_labelled", "_order"])
    return out


def _put(s3: S3Client, bucket: str, key: str, frame: pd.DataFrame) -> str:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="snappy")
    s3.put_object(Bucket=bucket, Key=key, Body=sink.getvalue())
    return f"s3://{bucket}/{key}"


def compose(
    s3: S3Client,
    curated_bucket: str,
    schema: DatasetSchema,
    curated: dict[str, Any],
    data_plan: dict[str, Any] | None,
    version: str,
) -> dict[str, Any]:
    """``curated`` (the prepare step's view) with its channels composed as ``data_plan`` says, and ``data`` saying
    what each channel holds (lineage: the upload version, the production window and the row counts)."""
    if data_plan is None:  # an upload's run: its own dataset version, as before data policies
        return curated
    upload = {"version": curated["version"], "train_rows": None, "test_rows": data_plan["upload"]["test_rows"]}
    if data_plan.get("mode") != WITH_PRODUCTION:
        data = {"mode": data_plan["mode"], "reason": data_plan["reason"], "plan": data_plan, "upload": upload}
        return {**curated, "data": {**data, "test_from": "upload", "production": None}}
    prefix = f"{COMPOSED_PREFIX}{schema.name}/{version}/"
    rows = chosen_rows(s3, curated_bucket, schema, data_plan)
    train = read_split(s3, curated["train_uri"])
    production_train = rows["train"]
    composed = train if production_train is None else pd.concat([train, _like(production_train, train)])
    uris = {"train_uri": _put(s3, curated_bucket, f"{prefix}split=train/{PART_FILE}", composed).rsplit("/", 1)[0] + "/"}
    test_from = "upload"
    if rows["test"] is not None:
        test = read_split(s3, curated["test_uri"])
        uris["test_uri"] = _put(s3, curated_bucket, f"{prefix}split=test/{PART_FILE}", _like(rows["test"], test))
        uris["test_uri"] = uris["test_uri"].rsplit("/", 1)[0] + "/"
        test_from = "production"
    part = data_plan["production"]
    data = {
        "mode": WITH_PRODUCTION,
        "reason": data_plan["reason"],
        "plan": data_plan,
        "upload": {**upload, "train_rows": len(train)},
        "production": {
            "window_start": part["start"],
            "window_end": part["end"],
            "train_rows": 0 if production_train is None else len(production_train),
            "test_rows": 0 if rows["test"] is None else len(rows["test"]),
        },
        "test_from": test_from,
        "train_rows": len(composed),
    }
    return {**curated, **uris, "data": data}
