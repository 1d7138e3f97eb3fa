"""Reading a dataset's labelled production rows (``lambdas/ground_truth/production.py`` writes them) for the data
policy: the Parquet files of the days of a window, as one frame, and as the policy's ``ProductionRow`` list.

Needs pyarrow and pandas (the AWS SDK for pandas layer): the retrain Lambda reads the key, time and label columns
to plan; the prepare step reads whole rows to compose the training channels.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import pandas as pd
import pyarrow.parquet as pq

from pipelines.data_policy import ProductionRow, UploadSplits, plan
from pipelines.platform import production_prefix
from pipelines.schema import DatasetSchema

TIME_COLUMNS = ("prod_inference_time", "prod_labelled_at")


class S3Client(Protocol):
    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]: ...
    def get_object(self, **kwargs: Any) -> dict[str, Any]: ...


def _days(start: datetime, end: datetime) -> list[str]:
    day, last = start.date(), end.date()
    out = []
    while day <= last:
        out.append(f"{day:%Y-%m-%d}")
        day += timedelta(days=1)
    return out


def files(s3: S3Client, bucket: str, dataset: str, start: datetime, end: datetime) -> list[str]:
    """The keys of the Parquet files of the days [start, end] (partitions are by inference hour)."""
    keys: list[str] = []
    for day in _days(start, end):
        token: str | None = None
        while True:
            page = s3.list_objects_v2(
                Bucket=bucket,
                Prefix=f"{production_prefix(dataset)}prod_date={day}/",
                **({"ContinuationToken": token} if token else {}),
            )
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".parquet")]
            token = page.get("NextContinuationToken")
            if not token:
                break
    return sorted(keys)


def read_frame(
    s3: S3Client, bucket: str, keys: Sequence[str], columns: Sequence[str] | None = None
) -> pd.DataFrame | None:
    """The rows of ``keys`` (only ``columns`` when given); None when there are none."""
    parts = [
        pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()), columns=columns).to_pandas()
        for key in keys
    ]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else None


def policy_columns(schema: DatasetSchema) -> list[str]:
    return [schema.key_column, *TIME_COLUMNS, schema.target]


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def rows_of(frame: pd.DataFrame | None, schema: DatasetSchema) -> list[ProductionRow]:
    """The policy's view of production rows (a row without an inference time is dated by its label)."""
    if frame is None:
        return []
    out = []
    for key, inferred, labelled, label in zip(
        frame[schema.key_column].astype(str),
        frame["prod_inference_time"],
        frame["prod_labelled_at"],
        frame[schema.target].tolist(),
        strict=True,
    ):
        labelled_at = parse_time(labelled)
        inferred_at = parse_time(inferred) if isinstance(inferred, str) and inferred else labelled_at
        out.append(ProductionRow(key, inferred_at, labelled_at, label))
    return out


def read_rows(s3: S3Client, bucket: str, schema: DatasetSchema, start: datetime, end: datetime) -> list[ProductionRow]:
    """The production rows of the days [start, end] as the policy sees them."""
    keys = files(s3, bucket, schema.name, start, end)
    return rows_of(read_frame(s3, bucket, keys, policy_columns(schema)), schema)


def plan_retrain(
    s3: S3Client, bucket: str, schema: DatasetSchema, manifest: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """The data plan of a retrain starting ``now`` from the latest upload's ``manifest`` (its lineage record):
    the dataset's policy applied to its labelled production rows (none are read without a policy)."""
    upload = UploadSplits.from_lineage(manifest)
    policy = schema.data_policy
    if policy is None:
        return plan(schema, upload, [], now)
    start = now - timedelta(days=policy.production_window_days)
    return plan(schema, upload, read_rows(s3, bucket, schema, start, now), now)
