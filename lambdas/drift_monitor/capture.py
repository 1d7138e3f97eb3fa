"""SageMaker data capture: list objects by hour, parse records, decode request and response bodies.

Layout (docs/contracts.md): ``<capture prefix><variant>/yyyy/mm/dd/hh/<uuid>.jsonl``, one JSON object per line
with ``captureData.endpointInput`` / ``endpointOutput`` (``data`` + ``encoding`` CSV / JSON / BASE64) and
``eventMetadata`` (``eventId``, ``inferenceId``, ``inferenceTime``). Responses are the inference handler's answers
per task (``lambdas.shared.answers``: JSON ``{"model_version", "predictions": [...]}`` or CSV lines without a model
version). Request bodies become feature columns in ``decode`` (the drift monitor's, with numpy).

Standard library only: the ground-truth Lambda uses this module too (it ships in the same asset) and needs
neither numpy nor pandas.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from lambdas.shared.answers import Answers, decode_answers
from pipelines.schema import Label

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


# ---- responses ------------------------------------------------------------------------------------------


def decode_predictions(record: CaptureRecord, task: str, labels: Sequence[Label] = ()) -> Answers:
    """The captured response as the task's answers, labels typed as ``labels`` declares them; ``ValueError``
    (or ``KeyError``) for a response of another shape (an error message, another task)."""
    return decode_answers(record.output_body, record.output_type, task, labels)


def parse_time(text: str) -> datetime:
    """An ISO-8601 timestamp (``Z``, ``+0000`` or ``+00:00``) as an aware UTC datetime."""
    moment = datetime.fromisoformat(text.strip())
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
