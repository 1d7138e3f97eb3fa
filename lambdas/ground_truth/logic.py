"""Ground truth: labels joined with captured predictions -> AUC / accuracy per endpoint and per model version.

Input (raw zone, ``ground-truth/``; docs/contracts.md):

* JSON lines in SageMaker Model Monitor's merge format:
  ``{"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "<id>"}, "eventVersion": "0"}``.
  ``data`` holds one label per row of the captured request (``"1"`` or ``"1,0,1"``; ``encoding`` JSON: ``1`` or
  ``[1, 0, 1]``; BASE64 is decoded first).
* CSV ``inference_id,label`` (header optional), one label per request row in request order (several lines
  with the same id label a multi-row request).

The id is matched against the captured ``eventId`` and ``inferenceId`` of the capture files of the last
``lookback_hours`` up to the upload time. Each label pairs with the prediction of the same row of the
captured response (``model_version`` from the response body; CSV responses have none: ``unknown``).

Output under ``<quality prefix><yyyy-mm-ddThh-mm>/<label file>-<hash of key+version>/``: ``joined.jsonl`` (one
line per labelled row) and ``summary.json``. Metrics (timestamp: the upload time; only with at least
``min_rows`` labelled rows, so that a handful of labels never trips the quality alarm): ``ModelAUC`` and
``ModelAccuracy`` with ``EndpointName`` (the alarm's dimensions) and with ``EndpointName`` + ``ModelVersion``.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from lambdas.drift_monitor import capture
from lambdas.ground_truth.scoring import accuracy, roc_auc
from pipelines.schema import DatasetSchema

AUC_METRIC = "ModelAUC"
ACCURACY_METRIC = "ModelAccuracy"
UNKNOWN_VERSION = "unknown"


class S3Client(capture.S3Client, Protocol):
    def put_object(self, **kwargs: Any) -> dict[str, Any]: ...


class CloudWatchClient(Protocol):
    def put_metric_data(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class LabelObject:
    bucket: str
    key: str
    version_id: str
    event_time: str  # ISO-8601, the upload time


@dataclass(frozen=True)
class QualityConfig:
    endpoint_name: str
    artifacts_bucket: str
    capture_prefix: str  # data-capture/<endpoint>/
    quality_prefix: str  # monitoring/quality/<dataset>/
    namespace: str
    lookback_hours: int = 168
    min_rows: int = 50
    schema: DatasetSchema | None = None  # the dataset's declaration (its task and labels)


class LabelFileError(ValueError):
    """The label file as a whole cannot be read."""


# ---- labels ---------------------------------------------------------------------------------------------


def _label(value: Any) -> int:
    number = float(value)
    if number not in (0.0, 1.0):
        raise ValueError(f"label {value!r} is neither 0 nor 1")
    return int(number)


def _labels_from_data(data: Any, encoding: str | None) -> list[int]:
    enc = (encoding or "CSV").upper()
    if enc == "BASE64":
        data, enc = base64.b64decode(str(data)).decode("utf-8"), "CSV"
    if enc == "JSON":
        parsed = json.loads(data) if isinstance(data, str) else data
        return [_label(v) for v in (parsed if isinstance(parsed, list) else [parsed])]
    return [_label(v) for v in re.split(r"[,\s]+", str(data).strip()) if v != ""]


@dataclass
class Labels:
    by_id: dict[str, list[int]] = field(default_factory=dict)
    bad_lines: int = 0


def parse_labels(body: bytes, key: str) -> Labels:
    """Labels per id from a JSON-lines (Model Monitor) or CSV (``inference_id,label``) file."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise LabelFileError(f"{key}: not UTF-8 ({error})") from None
    stripped = text.lstrip()
    if not stripped:
        raise LabelFileError(f"{key}: the file is empty")
    labels = Labels()
    if key.lower().endswith((".jsonl", ".json")) or stripped.startswith("{"):
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
                truth = doc["groundTruthData"]
                event_id = str(doc["eventMetadata"]["eventId"])
                values = _labels_from_data(truth["data"], truth.get("encoding"))
                labels.by_id.setdefault(event_id, []).extend(values)
            except (ValueError, KeyError, TypeError):
                labels.bad_lines += 1
        return labels
    for number, row in enumerate(csv.reader(io.StringIO(text))):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            labels.bad_lines += 1
            continue
        inference_id, value = row[0].strip(), row[1].strip()
        try:
            label = _label(value)
        except ValueError:
            if number > 0:  # the first line may be a header
                labels.bad_lines += 1
            continue
        labels.by_id.setdefault(inference_id, []).append(label)
    return labels


# ---- join -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Joined:
    id: str
    event_id: str
    inference_id: str | None
    variant: str
    model_version: str
    inference_time: str | None
    row: int
    probability: float
    predicted_label: int
    label: int


@dataclass
class JoinResult:
    rows: list[Joined] = field(default_factory=list)
    unmatched_ids: list[str] = field(default_factory=list)
    mismatched_ids: list[str] = field(default_factory=list)  # label count != prediction count
    undecodable_responses: int = 0


def join(records: Iterable[capture.CaptureRecord], labels: Mapping[str, list[int]]) -> JoinResult:
    """Pair each label with the captured prediction of the same request row (by eventId or inferenceId)."""
    index: dict[str, capture.CaptureRecord] = {}
    for captured in records:
        for key in (captured.event_id, captured.inference_id):
            if key and key in labels:
                index[key] = captured
    result = JoinResult()
    for label_id, values in labels.items():
        record = index.get(label_id)
        if record is None:
            result.unmatched_ids.append(label_id)
            continue
        try:
            predictions = capture.decode_predictions(record)
        except (ValueError, KeyError, TypeError):
            result.undecodable_responses += 1
            continue
        if len(predictions.probabilities) != len(values):
            result.mismatched_ids.append(label_id)
            continue
        version = predictions.model_version or UNKNOWN_VERSION
        for row, (probability, predicted, label) in enumerate(
            zip(predictions.probabilities, predictions.labels, values, strict=True)
        ):
            result.rows.append(
                Joined(
                    id=label_id,
                    event_id=record.event_id,
                    inference_id=record.inference_id,
                    variant=record.variant,
                    model_version=version,
                    inference_time=record.inference_time,
                    row=row,
                    probability=probability,
                    predicted_label=predicted,
                    label=label,
                )
            )
    return result


def quality(rows: list[Joined]) -> dict[str, Any]:
    y = [int(r.label) for r in rows]
    return {
        "rows": len(rows),
        "positives": sum(y),
        "auc": roc_auc(y, [r.probability for r in rows]),
        "accuracy": accuracy(y, [r.predicted_label for r in rows]),
    }


# ---- the run --------------------------------------------------------------------------------------------


def output_folder(config: QualityConfig, obj: LabelObject, moment: datetime) -> str:
    digest = hashlib.sha256(f"{obj.bucket}/{obj.key}?{obj.version_id}".encode()).hexdigest()[:8]
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", obj.key.rsplit("/", 1)[-1])[:60]
    return f"{config.quality_prefix}{moment:%Y-%m-%dT%H-%M}/{stem}-{digest}/"


def _metric(name: str, dims: dict[str, str], moment: datetime, value: float) -> dict[str, Any]:
    return {
        "MetricName": name,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
        "Timestamp": moment,
        "Value": value,
        "Unit": "None",
    }


def metric_data(config: QualityConfig, summary: Mapping[str, Any], moment: datetime) -> list[dict[str, Any]]:
    """AUC / accuracy for the endpoint (the alarm's dimensions) and per known model version."""
    groups: list[tuple[dict[str, str], Mapping[str, Any]]] = [
        ({"EndpointName": config.endpoint_name}, summary["overall"])
    ]
    groups += [
        ({"EndpointName": config.endpoint_name, "ModelVersion": version}, stats)
        for version, stats in summary["by_model_version"].items()
        if version != UNKNOWN_VERSION
    ]
    data: list[dict[str, Any]] = []
    for dims, stats in groups:
        if stats["rows"] < config.min_rows:
            continue
        if stats["auc"] is not None:
            data.append(_metric(AUC_METRIC, dims, moment, stats["auc"]))
        data.append(_metric(ACCURACY_METRIC, dims, moment, stats["accuracy"]))
    return data


def run(s3: S3Client, cloudwatch: CloudWatchClient, config: QualityConfig, obj: LabelObject) -> dict[str, Any]:
    """Join one uploaded label file with the captured predictions; write, publish and return the summary."""
    moment = capture.parse_time(obj.event_time)
    get = {"Bucket": obj.bucket, "Key": obj.key, **({"VersionId": obj.version_id} if obj.version_id != "null" else {})}
    labels = parse_labels(s3.get_object(**get)["Body"].read(), obj.key)
    objects = capture.list_objects(
        s3, config.artifacts_bucket, config.capture_prefix, moment - timedelta(hours=config.lookback_hours), moment
    )
    read = capture.read_records(s3, config.artifacts_bucket, objects)
    joined = join(read.records, labels.by_id)

    versions = sorted({r.model_version for r in joined.rows})
    summary: dict[str, Any] = {
        "endpoint": config.endpoint_name,
        "source": {"bucket": obj.bucket, "key": obj.key, "version_id": obj.version_id},
        "evaluated_at": moment.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "labels": {
            "ids": len(labels.by_id),
            "rows": sum(len(v) for v in labels.by_id.values()),
            "bad_lines": labels.bad_lines,
        },
        "capture": {"objects": len(objects), "records": len(read.records), "bad_lines": read.bad_lines},
        "matched_ids": len(labels.by_id) - len(joined.unmatched_ids),
        "unmatched_ids": len(joined.unmatched_ids),
        "unmatched_sample": joined.unmatched_ids[:20],
        "mismatched_ids": len(joined.mismatched_ids),
        "undecodable_responses": joined.undecodable_responses,
        "min_rows": config.min_rows,
        "overall": quality(joined.rows),
        "by_model_version": {v: quality([r for r in joined.rows if r.model_version == v]) for v in versions},
        "by_variant": {
            v: quality([r for r in joined.rows if r.variant == v]) for v in sorted({r.variant for r in joined.rows})
        },
    }
    data = metric_data(config, summary, moment)
    if data:
        cloudwatch.put_metric_data(Namespace=config.namespace, MetricData=data)
    summary["metrics"] = [
        {"name": d["MetricName"], "dimensions": {x["Name"]: x["Value"] for x in d["Dimensions"]}, "value": d["Value"]}
        for d in data
    ]
    if summary["overall"]["rows"] < config.min_rows:
        summary["reason"] = (
            f"{summary['overall']['rows']} labelled rows < minimum {config.min_rows}: no quality metric published"
        )
    elif summary["overall"]["auc"] is None:
        summary["reason"] = "only one class among the labels: AUC is undefined, accuracy published"
    else:
        summary["reason"] = f"quality of {summary['overall']['rows']} labelled rows published"

    folder = output_folder(config, obj, moment)
    joined_body = "".join(json.dumps(asdict(r)) + "\n" for r in joined.rows).encode()
    s3.put_object(
        Bucket=config.artifacts_bucket,
        Key=f"{folder}joined.jsonl",
        Body=joined_body,
        ContentType="application/x-ndjson",
    )
    s3.put_object(
        Bucket=config.artifacts_bucket,
        Key=f"{folder}summary.json",
        Body=json.dumps(summary, indent=1, allow_nan=False).encode(),
        ContentType="application/json",
    )
    summary["summary_uri"] = f"s3://{config.artifacts_bucket}/{folder}summary.json"
    return summary
