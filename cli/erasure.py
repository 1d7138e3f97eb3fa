"""Erase one record of a dataset's production data: its captured request, its joined labels and its labelled
production rows (``mlops data erase``).

A record is named by the inference id a client or the endpoint gave it (``--inference-id``: the captured
``inferenceId`` or ``eventId``) or by a production row's key (``--key <id>:<row>``, the key column of the
production rows: ``lambdas/ground_truth/production.py``). What goes, per place:

- captured requests (artifacts zone, ``data-capture/<endpoint>/``, JSON lines): every capture record whose
  ``eventId`` or ``inferenceId`` is the id. A capture record is the whole request, so ``--key`` erases the whole
  request its row belongs to (a request cannot be kept in part without changing what the endpoint was sent);
- joined labels (artifacts zone, ``monitoring/quality/<dataset>/.../joined.jsonl``): the lines of the id (any of
  ``id``, ``event_id``, ``inference_id``), only the key's ``row`` with ``--key``;
- labelled production rows (curated zone, ``production/<dataset>/``, Parquet): the rows whose
  ``prod_inference_id`` is the id or one of its aliases (a label may name a request by its ``eventId`` while the
  operator knows its ``inferenceId``: the other ids of the erased capture records and joined lines are aliases),
  only the key's ``prod_request_row`` with ``--key``;
- the composed channels of past retrains (curated zone, ``curated/composed/<dataset>/``, Parquet: copies of the
  production rows a run trained and was tested on, ``lambdas/prepare_training/compose.py``): the rows whose key
  column holds the key of an erased production row (or ``--key``). A model already trained on the record is not
  changed; its lineage still counts the rows it was trained on, and its composed data no longer holds the record;
- labelled production rows that failed the dataset's rules (curated zone,
  ``quarantine/dataset=<dataset>/production/.../rejected.jsonl``): the lines of the id (the key's row with ``--key``).

Each object that held the record is rewritten without it under the same key (deleted when nothing is left), and
then every other version of that key is deleted (``DeleteObject`` with ``VersionId``): the zones are versioned, and
a rewrite alone would keep the record in the noncurrent version. The objects are rewritten in place, so the drift
monitor (which remembers capture files by key) does not read a rewritten file again, and nothing is triggered:
only the raw zone's uploads start work. Noncurrent versions of objects that never held the record are not read;
they expire by the zones' lifecycle rules (``stacks/constructs/data_lake.py``).

Not erased here: the label file the operator uploaded (raw zone, ``ground-truth/<dataset>/``: the id and its label
only); rewriting it would deliver it to the ground-truth Lambda again. Delete its versions with
``aws s3api delete-object --version-id``.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

KEY = re.compile(r"^(?P<id>.+):(?P<row>\d+)$")


class S3Client(Protocol):
    def get_paginator(self, operation: str) -> Any: ...
    def get_object(self, **kwargs: Any) -> dict[str, Any]: ...
    def put_object(self, **kwargs: Any) -> dict[str, Any]: ...
    def delete_object(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass
class Record:
    """What to erase: an id (and its aliases, found while erasing), and with ``--key`` one row of its request."""

    ids: set[str]
    row: int | None = None
    keys: set[str] = field(default_factory=set)  # production row keys <id>:<row> erased (copied into composed data)

    @classmethod
    def of(cls, *, key: str | None = None, inference_id: str | None = None) -> Record:
        if (key is None) == (inference_id is None):
            raise ValueError("name the record by exactly one of --key and --inference-id")
        if inference_id is not None:
            if not inference_id.strip():
                raise ValueError("--inference-id is empty")
            return cls({inference_id})
        match = KEY.match(key or "")
        if not match:
            raise ValueError(f"--key {key!r} is not a production row key <inference id>:<request row>")
        return cls({match["id"]}, int(match["row"]), {str(key)})


@dataclass
class Place:
    """One object rewritten (or deleted) without the record."""

    bucket: str
    key: str
    removed: int
    action: str  # "rewritten" | "deleted"
    versions_deleted: int = 0


@dataclass
class Erasure:
    places: list[Place] = field(default_factory=list)
    scanned: int = 0

    def removed(self, prefix: str) -> int:
        return sum(p.removed for p in self.places if p.key.startswith(prefix))


# ---- one object's content without the record ---------------------------------------------------------------


def _lines(body: bytes) -> Iterator[tuple[str, dict[str, Any] | None]]:
    for line in body.decode("utf-8").splitlines():
        if not line.strip():
            continue
        try:
            parsed = json.loads(line)
        except ValueError:
            parsed = None
        yield line, parsed if isinstance(parsed, dict) else None


def _without_lines(
    body: bytes, record: Record, ids_of: Callable[[dict[str, Any]], set[str]], row_field: str | None
) -> tuple[bytes, int]:
    """JSON lines without the record's: a line whose ids (``ids_of``) meet the record's (and, when a line is one row
    of a request, whose ``row_field`` is the key's row); the other ids of a removed line become its aliases."""
    kept, removed = [], 0
    for line, parsed in _lines(body):
        ids = ids_of(parsed or {})
        row_matches = row_field is None or record.row is None or (parsed or {}).get(row_field) == record.row
        if ids & record.ids and row_matches:
            record.ids |= ids
            removed += 1
        else:
            kept.append(line)
    return "".join(f"{line}\n" for line in kept).encode(), removed


def _ids(values: dict[str, Any], names: tuple[str, ...]) -> set[str]:
    return {str(values[name]) for name in names if values.get(name)}


def without_capture(body: bytes, record: Record) -> tuple[bytes, int]:
    """A capture file without the record's requests (a capture record is a whole request)."""
    return _without_lines(body, record, lambda r: _ids(r.get("eventMetadata") or {}, ("eventId", "inferenceId")), None)


def without_joined(body: bytes, record: Record) -> tuple[bytes, int]:
    """A ``joined.jsonl`` without the record's lines (the key's row only, with ``--key``)."""
    return _without_lines(body, record, lambda r: _ids(r, ("id", "event_id", "inference_id")), "row")


def without_quarantined(body: bytes, record: Record) -> tuple[bytes, int]:
    """A quarantined production batch (``rejected.jsonl``) without the record's rows."""
    return _without_lines(body, record, lambda r: _ids(r, ("prod_inference_id",)), "prod_request_row")


def without_production(body: bytes, record: Record) -> tuple[bytes, int]:
    """A production Parquet file without the record's rows (same schema, same compression)."""
    table = pq.read_table(io.BytesIO(body))
    hit = pc.is_in(table["prod_inference_id"].cast(pa.string()), value_set=pa.array(sorted(record.ids)))
    if record.row is not None:
        hit = pc.and_(hit, pc.equal(table["prod_request_row"], record.row))
    hit = pc.fill_null(hit, False)
    removed = pc.sum(hit).as_py() or 0
    erased = table.filter(hit)
    ids, rows = erased["prod_inference_id"].to_pylist(), erased["prod_request_row"].to_pylist()
    record.keys |= {f"{i}:{r}" for i, r in zip(ids, rows, strict=True)}
    return _write_without(table, hit, body, removed)


def without_composed(body: bytes, record: Record) -> tuple[bytes, int]:
    """A retrain's composed channel without the erased production rows: the rows whose key column holds one of
    their keys (a composed file has the upload's columns, the key column among them, not the ``prod_`` ones)."""
    table = pq.read_table(io.BytesIO(body))
    hit = pa.array([False] * table.num_rows)
    if record.keys:
        keys = pa.array(sorted(record.keys))
        for column in table.itercolumns():
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                hit = pc.or_(hit, pc.fill_null(pc.is_in(column, value_set=keys), False))
    return _write_without(table, hit, body, pc.sum(hit).as_py() or 0)


def _write_without(table: pa.Table, hit: Any, body: bytes, removed: int) -> tuple[bytes, int]:
    if not removed:
        return body, 0
    sink = io.BytesIO()
    pq.write_table(table.filter(pc.invert(hit)), sink, compression="snappy")
    return sink.getvalue(), removed


def empty(kind: Callable[[bytes, Record], tuple[bytes, int]], body: bytes) -> bool:
    if kind in (without_production, without_composed):
        return pq.read_metadata(io.BytesIO(body)).num_rows == 0
    return not body.strip()


# ---- S3 ------------------------------------------------------------------------------------------------------


def _keys(s3: S3Client, bucket: str, prefix: str, suffix: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith(suffix):
                yield item["Key"]


def purge_other_versions(s3: S3Client, bucket: str, key: str, keep: str | None) -> int:
    """Delete every version and delete marker of ``key`` but ``keep`` (None: all of them)."""
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
        for version in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            if version["Key"] == key and version["VersionId"] != keep:
                s3.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])
                deleted += 1
    return deleted


def erase_in(
    s3: S3Client,
    bucket: str,
    prefix: str,
    suffix: str,
    rewrite: Callable[[bytes, Record], tuple[bytes, int]],
    record: Record,
    result: Erasure,
    dry_run: bool,
) -> None:
    """Rewrite every object under ``prefix`` (ending with ``suffix``) that holds the record."""
    for key in _keys(s3, bucket, prefix, suffix):
        result.scanned += 1
        got = s3.get_object(Bucket=bucket, Key=key)
        body, removed = rewrite(got["Body"].read(), record)
        if not removed:
            continue
        place = Place(bucket, key, removed, "deleted" if empty(rewrite, body) else "rewritten")
        result.places.append(place)
        if dry_run:
            continue
        keep = None
        if place.action == "rewritten":
            kind = {"ContentType": got["ContentType"]} if got.get("ContentType") else {}
            put = s3.put_object(Bucket=bucket, Key=key, Body=body, **kind)
            keep = put.get("VersionId")
        place.versions_deleted = purge_other_versions(s3, bucket, key, keep)


@dataclass(frozen=True)
class Where:
    """A dataset's production data: the buckets and prefixes ``erase`` rewrites."""

    artifacts_bucket: str
    curated_bucket: str
    capture_prefix: str  # data-capture/<endpoint>/
    quality_prefix: str  # monitoring/quality/<dataset>/
    production_prefix: str  # production/<dataset>/
    composed_prefix: str  # curated/composed/<dataset>/
    quarantine_prefix: str  # quarantine/dataset=<dataset>/production/


def erase(s3: S3Client, where: Where, record: Record, *, dry_run: bool = False) -> Erasure:
    """Erase ``record`` from the captured requests first (they name every id of a request), then the joined
    labels, then the production rows, then the retrains' composed copies of those rows."""
    result = Erasure()
    erase_in(s3, where.artifacts_bucket, where.capture_prefix, "", without_capture, record, result, dry_run)
    erase_in(s3, where.artifacts_bucket, where.quality_prefix, "joined.jsonl", without_joined, record, result, dry_run)
    erase_in(s3, where.curated_bucket, where.production_prefix, ".parquet", without_production, record, result, dry_run)
    erase_in(s3, where.curated_bucket, where.composed_prefix, ".parquet", without_composed, record, result, dry_run)
    erase_in(s3, where.curated_bucket, where.quarantine_prefix, ".jsonl", without_quarantined, record, result, dry_run)
    return result
