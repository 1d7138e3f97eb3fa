"""Ground truth: labels joined with captured predictions -> model quality per endpoint and per model version,
in the dataset's task (binary AUC and accuracy; multiclass accuracy and macro F1; regression RMSE and MAE).

Input (raw zone, ``ground-truth/``; docs/contracts.md):

* JSON lines in SageMaker Model Monitor's merge format:
  ``{"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "<id>"}, "eventVersion": "0"}``.
  ``data`` holds one label per row of the captured request (``"1"`` or ``"1,0,1"``, ``"billing,sales"``,
  ``"812.5"``; ``encoding`` JSON: ``1``, ``"billing"`` or ``[1, 0, 1]``; BASE64 is decoded first).
* CSV ``inference_id,label`` (header optional), one label per request row in request order (several lines
  with the same id label a multi-row request).

A label is what the dataset declares (``DatasetSchema.class_labels``: ints or strings, e.g. ``1``/``"1"``/``1.0``
for an integer label, ``billing`` for a string one; a value outside the declared labels makes its line bad), or a
finite number for a regression target.

The id is matched against the captured ``eventId`` and ``inferenceId`` of the capture files of the last
``lookback_hours`` up to the upload time. Each label pairs with the prediction of the same row of the
captured response (``model_version`` from the response body; CSV responses have none: ``unknown``).

Output under ``<quality prefix><yyyy-mm-ddThh-mm>/<label file>-<hash of key+version>/``: ``joined.jsonl`` (one
line per labelled row) and ``summary.json``. Metrics (timestamp: the upload time; only with at least
``min_rows`` labelled rows, so that a handful of labels never trips the quality alarm): ``QUALITY_METRICS`` of
the task with ``EndpointName`` (the alarm's dimensions) and with ``EndpointName`` + ``ModelVersion``.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from lambdas.drift_monitor import capture
from lambdas.ground_truth.scoring import accuracy, macro_f1, mae, rmse, roc_auc
from lambdas.shared.answers import number, typed_label
from pipelines.schema import DatasetSchema, Label, Task

AUC_METRIC = "ModelAUC"
ACCURACY_METRIC = "ModelAccuracy"
MACRO_F1_METRIC = "ModelMacroF1"
RMSE_METRIC = "ModelRMSE"
MAE_METRIC = "ModelMAE"
QUALITY_METRICS: dict[Task, tuple[tuple[str, str], ...]] = {
    "binary": ((AUC_METRIC, "auc"), (ACCURACY_METRIC, "accuracy")),
    "multiclass": ((ACCURACY_METRIC, "accuracy"), (MACRO_F1_METRIC, "macro_f1")),
    "regression": ((RMSE_METRIC, "rmse"), (MAE_METRIC, "mae")),
}
"""(metric name, key of the quality statistics) published per task. Accuracy, AUC and macro F1 fall when the model
gets worse, RMSE and MAE rise: a quality alarm compares them in that direction (``HIGHER_IS_BETTER``)."""
HIGHER_IS_BETTER: dict[str, bool] = {
    AUC_METRIC: True,
    ACCURACY_METRIC: True,
    MACRO_F1_METRIC: True,
    RMSE_METRIC: False,
    MAE_METRIC: False,
}
UNKNOWN_VERSION = "unknown"
Truth = Label | float
"""A ground-truth label: a declared class label, or a regression target's value."""


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
    schema: DatasetSchema  # the task, and the labels a label file may hold
    lookback_hours: int = 168
    min_rows: int = 50


class LabelFileError(ValueError):
    """The label file as a whole cannot be read."""


# ---- labels ---------------------------------------------------------------------------------------------


def truth(value: Any, schema: DatasetSchema) -> Truth:
    """A label as the dataset declares it (``ValueError`` for anything else): a finite number for regression,
    else one of ``schema.class_labels`` (an integer label from ``1``, ``"1"`` or ``1.0``)."""
    if schema.task == "regression":
        return number(value, "label")
    label = typed_label(value, schema.class_labels)
    if label not in schema.class_labels:
        raise ValueError(f"label {value!r} is not one of {list(schema.class_labels)}")
    return label


def _csv_values(text: str, schema: DatasetSchema) -> list[str]:
    """The values of CSV ``data`` (one or several lines); numeric labels may also be separated by spaces."""
    values = [field.strip() for row in csv.reader(io.StringIO(text)) for field in row]
    if schema.numeric_labels:
        values = [part for value in values for part in value.split()]
    return [value for value in values if value != ""]


def _labels_from_data(data: Any, encoding: str | None, schema: DatasetSchema) -> list[Truth]:
    enc = (encoding or "CSV").upper()
    if enc == "BASE64":
        data, enc = base64.b64decode(str(data)).decode("utf-8"), "CSV"
    if enc == "JSON":
        parsed = json.loads(data) if isinstance(data, str) else data
        return [truth(v, schema) for v in (parsed if isinstance(parsed, list) else [parsed])]
    return [truth(v, schema) for v in _csv_values(str(data), schema)]


@dataclass
class Labels:
    by_id: dict[str, list[Truth]] = field(default_factory=dict)
    bad_lines: int = 0


def parse_labels(body: bytes, key: str, schema: DatasetSchema) -> Labels:
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
                ground_truth = doc["groundTruthData"]
                event_id = str(doc["eventMetadata"]["eventId"])
                values = _labels_from_data(ground_truth["data"], ground_truth.get("encoding"), schema)
                labels.by_id.setdefault(event_id, []).extend(values)
            except (ValueError, KeyError, TypeError):
                labels.bad_lines += 1
        return labels
    for line_number, row in enumerate(csv.reader(io.StringIO(text))):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            labels.bad_lines += 1
            continue
        inference_id, value = row[0].strip(), row[1].strip()
        try:
            label = truth(value, schema)
        except ValueError:
            if line_number > 0:  # the first line may be a header
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
    probability: float | None  # binary: the positive label's probability
    predicted_label: Label | None  # classification
    label: Truth
    predicted_value: float | None = None  # regression


@dataclass
class JoinResult:
    rows: list[Joined] = field(default_factory=list)
    unmatched_ids: list[str] = field(default_factory=list)
    mismatched_ids: list[str] = field(default_factory=list)  # label count != prediction count
    undecodable_responses: int = 0
    records: dict[str, capture.CaptureRecord] = field(default_factory=dict)  # label id -> its captured request


def join(
    records: Iterable[capture.CaptureRecord], labels: Mapping[str, list[Truth]], schema: DatasetSchema
) -> JoinResult:
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
            answers = capture.decode_predictions(record, schema.task, schema.class_labels)
        except (ValueError, KeyError, TypeError):
            result.undecodable_responses += 1
            continue
        if len(answers.rows) != len(values):
            result.mismatched_ids.append(label_id)
            continue
        version = answers.model_version or UNKNOWN_VERSION
        result.records[label_id] = record
        for row, (answer, label) in enumerate(zip(answers.rows, values, strict=True)):
            result.rows.append(
                Joined(
                    id=label_id,
                    event_id=record.event_id,
                    inference_id=record.inference_id,
                    variant=record.variant,
                    model_version=version,
                    inference_time=record.inference_time,
                    row=row,
                    probability=answer.probability,
                    predicted_label=answer.label,
                    label=label,
                    predicted_value=answer.value,
                )
            )
    return result


def quality(rows: list[Joined], schema: DatasetSchema) -> dict[str, Any]:
    """The task's quality statistics of joined rows: binary ``rows, positives, auc, accuracy``; multiclass
    ``rows, classes, accuracy, macro_f1``; regression ``rows, rmse, mae, mean_label, mean_prediction``."""
    labels = [r.label for r in rows]
    if schema.task == "regression":
        values = [float(r.label) for r in rows]
        predicted = [float(r.predicted_value) for r in rows if r.predicted_value is not None]
        return {
            "rows": len(rows),
            "rmse": rmse(values, predicted),
            "mae": mae(values, predicted),
            "mean_label": sum(values) / len(values) if values else None,
            "mean_prediction": sum(predicted) / len(predicted) if predicted else None,
        }
    chosen = [r.predicted_label for r in rows]
    if schema.task == "multiclass":
        return {
            "rows": len(rows),
            "classes": {str(c): labels.count(c) for c in schema.class_labels},
            "accuracy": accuracy(labels, chosen),
            "macro_f1": macro_f1(labels, chosen),
        }
    positive = [label == schema.positive for label in labels]
    return {
        "rows": len(rows),
        "positives": sum(positive),
        "auc": roc_auc(positive, [r.probability for r in rows]),
        "accuracy": accuracy(labels, chosen),
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
    """The task's ``QUALITY_METRICS`` for the endpoint (the alarm's dimensions) and per known model version."""
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
        data += [
            _metric(name, dims, moment, stats[key])
            for name, key in QUALITY_METRICS[config.schema.task]
            if stats[key] is not None  # AUC is undefined with one class
        ]
    return data


def label_source(obj: LabelObject) -> str:
    """``s3://bucket/key?versionId=...``: the label file version a joined row came from."""
    return f"s3://{obj.bucket}/{obj.key}?versionId={obj.version_id}"


def run(
    s3: S3Client,
    cloudwatch: CloudWatchClient,
    config: QualityConfig,
    obj: LabelObject,
    keep: Callable[[JoinResult, datetime], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Join one uploaded label file with the captured predictions; write, publish and return the summary.

    ``keep`` (the handler's: ``production.write``) stores the joined rows as labelled production data; what it
    returns is the summary's ``production``."""
    moment = capture.parse_time(obj.event_time)
    get = {"Bucket": obj.bucket, "Key": obj.key, **({"VersionId": obj.version_id} if obj.version_id != "null" else {})}
    schema = config.schema
    labels = parse_labels(s3.get_object(**get)["Body"].read(), obj.key, schema)
    objects = capture.list_objects(
        s3, config.artifacts_bucket, config.capture_prefix, moment - timedelta(hours=config.lookback_hours), moment
    )
    read = capture.read_records(s3, config.artifacts_bucket, objects)
    joined = join(read.records, labels.by_id, schema)

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
        "task": schema.task,
        "overall": quality(joined.rows, schema),
        "by_model_version": {v: quality([r for r in joined.rows if r.model_version == v], schema) for v in versions},
        "by_variant": {
            v: quality([r for r in joined.rows if r.variant == v], schema)
            for v in sorted({r.variant for r in joined.rows})
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
    elif schema.task == "binary" and summary["overall"]["auc"] is None:
        summary["reason"] = "only one class among the labels: AUC is undefined, accuracy published"
    else:
        summary["reason"] = f"quality of {summary['overall']['rows']} labelled rows published"

    if keep is not None:
        summary["production"] = keep(joined, moment)
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
