"""SageMaker data capture: list objects by hour, parse records, decode request and response bodies.

Layout (docs/contracts.md): ``<capture prefix><variant>/yyyy/mm/dd/hh/<uuid>.jsonl``, one JSON object per line
with ``captureData.endpointInput`` / ``endpointOutput`` (``data`` + ``encoding`` CSV / JSON / BASE64) and
``eventMetadata`` (``eventId``, ``inferenceId``, ``inferenceTime``). Request bodies follow the inference
handler's formats (``pipelines/inference/inference.py``): ``text/csv`` rows in schema order with or without
a header line, ``application/json`` ``{"instances": [[...]]}`` / ``[[...]]`` / ``{"instances": [{...}]}`` /
``[{...}]``. Responses: ``{"model_version", "predictions": [{"probability", "label"}]}`` or CSV
``probability,label`` lines (no model version).

The ground-truth Lambda uses this module too (it ships in the same asset).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from pipelines.schema import DatasetSchema

_KEY = re.compile(r"(?P<variant>[^/]+)/(?P<hour>\d{4}/\d{2}/\d{2}/\d{2})/[^/]+$")


class S3Client(Protocol):
    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]: ...
    def get_object(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class CaptureObject:
    key: str
    variant: str
    hour: datetime  # UTC start of the hour named by the key
    size: int


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def parse_key(prefix: str, key: str) -> tuple[str, datetime] | None:
    """(variant, hour) of a capture object key under ``prefix``; None for anything else."""
    if not key.startswith(prefix):
        return None
    match = _KEY.fullmatch(key[len(prefix) :])
    if not match:
        return None
    try:
        hour = datetime.strptime(match["hour"], "%Y/%m/%d/%H").replace(tzinfo=UTC)
    except ValueError:
        return None
    return match["variant"], hour


def variants(s3: S3Client, bucket: str, prefix: str) -> list[str]:
    """The variant folders under the endpoint's capture prefix."""
    found: list[str] = []
    token: str | None = None
    while True:
        page = s3.list_objects_v2(
            Bucket=bucket, Prefix=prefix, Delimiter="/", **({"ContinuationToken": token} if token else {})
        )
        found += [p["Prefix"][len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", [])]
        token = page.get("NextContinuationToken")
        if not token:
            return found


def list_objects(s3: S3Client, bucket: str, prefix: str, start: datetime, end: datetime) -> list[CaptureObject]:
    """Capture objects of every variant whose key hour lies in [hour of ``start``, hour of ``end``].

    Keys sort by hour within a variant, so each variant's listing starts after ``<variant>/<start hour>``
    (which sorts just before that hour's files) and stops at the first key past ``end``'s hour.
    """
    first, last = floor_hour(start), floor_hour(end)
    objects: list[CaptureObject] = []
    for variant in variants(s3, bucket, prefix):
        token: str | None = None
        start_after = f"{prefix}{variant}/{first:%Y/%m/%d/%H}"
        done = False
        while not done:
            page = s3.list_objects_v2(
                Bucket=bucket,
                Prefix=f"{prefix}{variant}/",
                **({"ContinuationToken": token} if token else {"StartAfter": start_after}),
            )
            for item in page.get("Contents", []):
                parsed = parse_key(prefix, item["Key"])
                if parsed is None:
                    continue
                if parsed[1] > last:
                    done = True
                    break
                if parsed[1] >= first:
                    objects.append(CaptureObject(item["Key"], parsed[0], parsed[1], int(item.get("Size", 0))))
            token = page.get("NextContinuationToken")
            done = done or not token
    return objects


# ---- records -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaptureRecord:
    event_id: str
    inference_id: str | None
    inference_time: str | None
    variant: str
    input_type: str
    input_body: str
    output_type: str
    output_body: str


def decode_data(data: str, encoding: str | None) -> str:
    """A captured body as text (BASE64 is decoded; CSV / JSON are already text)."""
    if (encoding or "").upper() == "BASE64":
        return base64.b64decode(data, validate=True).decode("utf-8")
    return data


def _media(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def parse_record(line: str | bytes, variant: str) -> CaptureRecord:
    """One capture line; raises ``ValueError`` (or ``KeyError``) for a malformed one."""
    doc = json.loads(line)
    capture = doc["captureData"]
    request = capture["endpointInput"]
    response = capture.get("endpointOutput") or {}
    meta = doc.get("eventMetadata") or {}
    try:
        input_body = decode_data(request["data"], request.get("encoding"))
        output_body = decode_data(response.get("data", ""), response.get("encoding"))
    except (binascii.Error, UnicodeDecodeError) as error:
        raise ValueError(f"undecodable body: {error}") from error
    return CaptureRecord(
        event_id=str(meta.get("eventId") or ""),
        inference_id=str(meta["inferenceId"]) if meta.get("inferenceId") else None,
        inference_time=meta.get("inferenceTime"),
        variant=variant,
        input_type=_media(request.get("observedContentType")),
        input_body=input_body,
        output_type=_media(response.get("observedContentType")),
        output_body=output_body,
    )


@dataclass
class ReadResult:
    records: list[CaptureRecord] = field(default_factory=list)
    bad_lines: int = 0


def read_records(s3: S3Client, bucket: str, objects: list[CaptureObject]) -> ReadResult:
    """Every record of ``objects``; malformed lines are counted, not fatal."""
    result = ReadResult()
    for obj in objects:
        body = s3.get_object(Bucket=bucket, Key=obj.key)["Body"].read()
        for line in body.splitlines():
            if not line.strip():
                continue
            try:
                result.records.append(parse_record(line, obj.variant))
            except (ValueError, KeyError, TypeError):
                result.bad_lines += 1
    return result


# ---- requests -> feature columns -----------------------------------------------------------------------


@dataclass
class FeatureFrame:
    """Decoded request rows: one column per schema feature (numeric float64 with NaN; categorical text)."""

    frame: pd.DataFrame
    bad_records: int = 0
    bad_reasons: Counter[str] = field(default_factory=Counter)

    @property
    def rows(self) -> int:
        return len(self.frame)


def _is_header(line: str, names: set[str]) -> bool:
    fields = [f.strip().strip('"') for f in line.split(",")]
    return bool(fields) and all(f in names for f in fields)


def _json_rows(body: str, names: list[str]) -> list[list[Any]]:
    doc = json.loads(body)
    instances = doc.get("instances") if isinstance(doc, dict) else doc
    if not isinstance(instances, list):
        raise ValueError("JSON body has no instances list")
    rows: list[list[Any]] = []
    for item in instances:
        if isinstance(item, dict):
            rows.append([item.get(n) for n in names])
        elif isinstance(item, list) and len(item) == len(names):
            rows.append(item)
        else:
            raise ValueError(f"JSON instance is neither a record nor a row of {len(names)} values")
    return rows


def request_frame(records: list[CaptureRecord], schema: DatasetSchema) -> FeatureFrame:
    """The feature columns of every captured request (bodies that cannot be decoded are counted).

    Header-less CSV bodies, the common case, are parsed together in one ``pandas.read_csv`` call.
    """
    names = schema.feature_names
    name_set = set(names)
    csv_lines: list[str] = []
    frames: list[pd.DataFrame] = []
    json_rows: list[list[Any]] = []
    bad: Counter[str] = Counter()
    for record in records:
        try:
            if record.input_type in ("text/csv", "text/plain", ""):
                lines = [line for line in record.input_body.splitlines() if line.strip()]
                if lines and _is_header(lines[0], name_set):
                    frame = pd.read_csv(io.StringIO("\n".join(lines)), dtype=str, keep_default_na=False)
                    frames.append(frame.reindex(columns=names))
                else:
                    csv_lines += lines
            elif record.input_type == "application/json":
                json_rows += _json_rows(record.input_body, names)
            else:
                bad[f"content type {record.input_type!r}"] += 1
        except (ValueError, TypeError, pd.errors.ParserError) as error:
            bad[type(error).__name__] += 1
    if csv_lines:
        parsed = pd.read_csv(
            io.StringIO("\n".join(csv_lines)),
            header=None,
            names=names,
            dtype=str,
            keep_default_na=False,
            on_bad_lines="skip",
            engine="c",
        )
        if len(parsed) < len(csv_lines):
            bad["CSV rows with too many fields"] += len(csv_lines) - len(parsed)
        frames.append(parsed)
    if json_rows:
        frames.append(pd.DataFrame(json_rows, columns=names, dtype=object))
    combined = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=names, dtype=object)
    return FeatureFrame(frame=_typed(combined, schema), bad_records=sum(bad.values()), bad_reasons=bad)


def _typed(frame: pd.DataFrame, schema: DatasetSchema) -> pd.DataFrame:
    """Numeric features as float64 (empty or unparseable -> NaN); categoricals as text (empty -> missing)."""
    columns: dict[str, Any] = {}
    for feature in schema.features:
        column = frame[feature.name]
        if feature.kind == "numeric":
            columns[feature.name] = pd.to_numeric(column, errors="coerce").astype(np.float64)
        else:
            text = column.astype(object)
            missing = text.isna() | (text == "")
            columns[feature.name] = text.where(~missing, None).map(lambda v: v if v is None else str(v).strip())
    return pd.DataFrame(columns, index=frame.index)


# ---- responses ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Predictions:
    model_version: str | None
    probabilities: list[float]
    labels: list[int]


def decode_predictions(record: CaptureRecord) -> Predictions:
    """The captured response: ``{"model_version", "predictions": [...]}`` or CSV ``probability,label``."""
    body = record.output_body
    if record.output_type == "application/json" or body.lstrip().startswith("{"):
        doc = json.loads(body)
        rows = doc["predictions"]
        return Predictions(
            model_version=str(doc["model_version"]) if doc.get("model_version") is not None else None,
            probabilities=[float(r["probability"]) for r in rows],
            labels=[int(r["label"]) for r in rows],
        )
    probabilities: list[float] = []
    labels: list[int] = []
    for line in body.splitlines():
        if line.strip():
            probability, label = line.split(",")[:2]
            probabilities.append(float(probability))
            labels.append(int(float(label)))
    return Predictions(model_version=None, probabilities=probabilities, labels=labels)


def parse_time(text: str) -> datetime:
    """An ISO-8601 timestamp (``Z``, ``+0000`` or ``+00:00``) as an aware UTC datetime."""
    moment = datetime.fromisoformat(text.strip())
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
