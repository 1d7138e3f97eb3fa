"""Drift monitor: captured requests since the watermark against the ETL baseline -> metrics, report, watermark.

One run covers the window that ends at the scheduled event's ``time``:

1. The watermark ``<report prefix>_state.json`` (artifacts bucket) holds the last window end and the capture
   objects already read whose hour is recent enough to be listed again. A run whose window end is not after
   the watermark's does nothing (a re-delivered schedule event).
2. Capture objects are listed by the hour in their key, from ``max(last end - lateness, end - lookback)`` to
   the window end's hour; objects already read are skipped, so a file that lands late (within
   ``lateness_hours``) is still read exactly once.
3. The baseline is the ``features`` section of the quality report that ``manifests/<dataset>/latest.json``
   (curated bucket) points to.
4. Fewer decoded rows than ``min_rows``: no verdict, no metric (a quiet endpoint never alarms), a report that
   says so, and the watermark stays put so those rows count again with the next run's.
5. Otherwise PSI/KS per feature (``drift_math``) and of the model's output (``output``: the captured answers
   against the answering model's answers on its test split), metrics timestamped at the window end with exactly
   the alarm's dimensions, ``report.json`` + ``report.html`` under ``<report prefix><yyyy-mm-ddThh-mm>/``, and
   last the watermark, written conditionally (If-Match on its ETag) so two runs cannot both advance it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np

from lambdas.drift_monitor import capture, decode
from lambdas.drift_monitor.drift_math import (
    EPSILON,
    CategoricalBaseline,
    FeatureDrift,
    NumericBaseline,
    categorical_drift,
    numeric_drift,
)
from lambdas.drift_monitor.output import OUTPUT_PSI_METRIC, RegistryClient, evaluate_output
from lambdas.drift_monitor.report import render_html
from pipelines.schema import DatasetSchema

FEATURE_PSI_METRIC = "FeatureDriftPSI"
FEATURE_KS_METRIC = "FeatureDriftKS"
OVERALL_PSI_METRIC = "OverallDriftPSI"
STATE_FILE = "_state.json"


class S3Client(capture.S3Client, Protocol):
    def put_object(self, **kwargs: Any) -> dict[str, Any]: ...


class CloudWatchClient(Protocol):
    def put_metric_data(self, **kwargs: Any) -> dict[str, Any]: ...


class BaselineMissing(Exception):
    """No curated dataset (manifest or quality report) to compare with yet."""


@dataclass(frozen=True)
class DriftConfig:
    endpoint_name: str
    artifacts_bucket: str
    curated_bucket: str
    capture_prefix: str  # data-capture/<endpoint>/
    report_prefix: str  # monitoring/drift/
    schema: DatasetSchema
    namespace: str
    psi_threshold: float = 0.2
    ks_threshold: float = 0.1
    min_rows: int = 200
    lookback_hours: int = 24
    lateness_hours: int = 2
    model_package_group: str | None = None  # where the answering model's output baseline is found

    @property
    def state_key(self) -> str:
        return f"{self.report_prefix}{STATE_FILE}"


@dataclass
class State:
    window_end: datetime | None = None
    processed: list[str] = field(default_factory=list)
    etag: str | None = None  # None: no state object yet


@dataclass(frozen=True)
class Baseline:
    report_uri: str
    dataset_version: str | None
    features: Mapping[str, Any]


def _error_code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def load_state(s3: S3Client, config: DriftConfig) -> State:
    try:
        response = s3.get_object(Bucket=config.artifacts_bucket, Key=config.state_key)
    except Exception as error:
        if _error_code(error) in ("NoSuchKey", "404"):
            return State()
        raise
    doc = json.loads(response["Body"].read())
    end = doc.get("window_end")
    return State(
        window_end=capture.parse_time(end) if end else None,
        processed=list(doc.get("processed", [])),
        etag=response.get("ETag"),
    )


class StateConflict(Exception):
    """Another run advanced the watermark since this run read it."""


def save_state(s3: S3Client, config: DriftConfig, previous: State, window_end: datetime, processed: list[str]) -> None:
    body = json.dumps({"window_end": _iso(window_end), "processed": sorted(processed)}, indent=1).encode()
    condition = {"IfMatch": previous.etag} if previous.etag else {"IfNoneMatch": "*"}
    try:
        s3.put_object(
            Bucket=config.artifacts_bucket,
            Key=config.state_key,
            Body=body,
            ContentType="application/json",
            **condition,
        )
    except Exception as error:
        if _error_code(error) in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
            raise StateConflict(f"the watermark s3://{config.artifacts_bucket}/{config.state_key} changed") from error
        raise


def _split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def load_baseline(s3: S3Client, curated_bucket: str, dataset: str) -> Baseline:
    """The ``features`` of the quality report named by ``manifests/<dataset>/latest.json``."""
    manifest_key = f"manifests/{dataset}/latest.json"
    try:
        manifest = json.loads(s3.get_object(Bucket=curated_bucket, Key=manifest_key)["Body"].read())
    except Exception as error:
        if _error_code(error) in ("NoSuchKey", "404"):
            raise BaselineMissing(
                f"no curated dataset yet: s3://{curated_bucket}/{manifest_key} does not exist"
            ) from None
        raise
    report_uri = manifest.get("report_uri")
    if not report_uri:
        raise BaselineMissing(f"manifest s3://{curated_bucket}/{manifest_key} has no report_uri")
    bucket, key = _split_uri(report_uri)
    report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    if not report.get("features"):
        raise BaselineMissing(f"quality report {report_uri} has no features section")
    return Baseline(report_uri=report_uri, dataset_version=manifest.get("version"), features=report["features"])


# ---- comparison ----------------------------------------------------------------------------------------


def compare(
    columns: Mapping[str, np.ndarray], schema: DatasetSchema, baseline: Mapping[str, Any]
) -> tuple[list[FeatureDrift], dict[str, str]]:
    """Drift of every schema feature that has a baseline; skipped features with the reason.

    ``columns``: one array per feature (``decode.FeatureColumns.columns``): numeric float64 with NaN for a
    missing value, categorical text with None for a missing value.
    """
    drifts: list[FeatureDrift] = []
    skipped: dict[str, str] = {}
    for feature in schema.features:
        stats = baseline.get(feature.name)
        if not stats:
            skipped[feature.name] = "not in the baseline report"
            continue
        column = columns[feature.name]
        if feature.kind == "numeric":
            numeric = NumericBaseline.from_report(stats)
            if numeric is None:
                skipped[feature.name] = "the baseline has no values"
                continue
            drifts.append(numeric_drift(feature.name, np.asarray(column, dtype=np.float64), numeric))
        else:
            categorical = CategoricalBaseline.from_report(stats)
            if categorical is None:
                skipped[feature.name] = "the baseline has no values"
                continue
            counts = Counter(str(value) for value in column.tolist() if value is not None)
            drifts.append(categorical_drift(feature.name, counts, len(column) - counts.total(), categorical))
    return drifts, skipped


def metric_data(
    config: DriftConfig, window_end: datetime, drifts: list[FeatureDrift], output: FeatureDrift | None = None
) -> list[dict[str, Any]]:
    """The datapoints: per-feature PSI/KS (EndpointName, Feature), the overall PSI over the features
    (EndpointName) and the PSI of the model's output (EndpointName), when it was compared."""
    endpoint = {"Name": "EndpointName", "Value": config.endpoint_name}
    data: list[dict[str, Any]] = []
    for drift in drifts:
        dims = [endpoint, {"Name": "Feature", "Value": drift.name}]
        data.append({"MetricName": FEATURE_PSI_METRIC, "Dimensions": dims, "Timestamp": window_end, "Value": drift.psi})
        if drift.ks is not None:
            data.append(
                {"MetricName": FEATURE_KS_METRIC, "Dimensions": dims, "Timestamp": window_end, "Value": drift.ks}
            )
    data.append(
        {
            "MetricName": OVERALL_PSI_METRIC,
            "Dimensions": [endpoint],
            "Timestamp": window_end,
            "Value": max(d.psi for d in drifts),
        }
    )
    if output is not None:
        data.append(
            {"MetricName": OUTPUT_PSI_METRIC, "Dimensions": [endpoint], "Timestamp": window_end, "Value": output.psi}
        )
    for datum in data:
        datum["Unit"] = "None"
    return data


def publish(cloudwatch: CloudWatchClient, config: DriftConfig, data: list[dict[str, Any]]) -> None:
    for start in range(0, len(data), 500):  # PutMetricData takes at most 1000 datapoints per call
        cloudwatch.put_metric_data(Namespace=config.namespace, MetricData=data[start : start + 500])


# ---- the run -------------------------------------------------------------------------------------------


def report_folder(config: DriftConfig, window_end: datetime) -> str:
    return f"{config.report_prefix}{window_end.astimezone(UTC):%Y-%m-%dT%H-%M}/"


def _feature_entry(drift: FeatureDrift, config: DriftConfig) -> dict[str, Any]:
    doc = drift.to_dict()
    doc["drifted"] = drift.psi > config.psi_threshold
    doc["ks_breach"] = drift.ks is not None and drift.ks > config.ks_threshold
    return doc


def run(
    s3: S3Client,
    cloudwatch: CloudWatchClient,
    config: DriftConfig,
    window_end: datetime,
    registry: RegistryClient | None = None,
) -> dict[str, Any]:
    """One drift run for the window ending at ``window_end``; returns the summary (also in report.json).
    ``registry`` (SageMaker) finds the answering model's output baseline; without it the output is not compared."""
    window_end = window_end.astimezone(UTC)
    state = load_state(s3, config)
    if state.window_end is not None and state.window_end >= window_end:
        return {
            "status": "skipped",
            "reason": f"window ending {_iso(window_end)} is not after the watermark {_iso(state.window_end)}",
        }
    lookback_start = window_end - timedelta(hours=config.lookback_hours)
    if state.window_end is None:
        window_start, list_from = lookback_start, lookback_start
    else:
        window_start = max(state.window_end, lookback_start)
        list_from = max(state.window_end - timedelta(hours=config.lateness_hours), lookback_start)

    try:
        baseline = load_baseline(s3, config.curated_bucket, config.schema.name)
    except BaselineMissing as missing:  # nothing trained yet: not an error, nothing to compare
        return {"status": "no_baseline", "reason": str(missing), "metrics_published": False}
    seen = set(state.processed)
    objects = [
        o
        for o in capture.list_objects(s3, config.artifacts_bucket, config.capture_prefix, list_from, window_end)
        if o.key not in seen
    ]
    read = capture.read_records(s3, config.artifacts_bucket, objects)
    decoded = decode.request_columns(read.records, config.schema)
    rows_per_variant: dict[str, int] = {}
    for record in read.records:
        rows_per_variant[record.variant] = rows_per_variant.get(record.variant, 0) + 1

    report: dict[str, Any] = {
        "endpoint": config.endpoint_name,
        "window": {"start": _iso(window_start), "end": _iso(window_end)},
        "baseline": {"report_uri": baseline.report_uri, "dataset_version": baseline.dataset_version},
        "objects": len(objects),
        "records": len(read.records),
        "records_per_variant": rows_per_variant,
        "rows": decoded.rows,
        "rejected": decoded.bad_records + read.bad_lines,
        "rejected_reasons": {
            **dict(decoded.bad_reasons),
            **({"malformed capture line": read.bad_lines} if read.bad_lines else {}),
        },
        "min_rows": config.min_rows,
        "thresholds": {"psi": config.psi_threshold, "ks": config.ks_threshold},
        "epsilon": EPSILON,
        "overall_psi": None,
        "features": [],
        "skipped_features": {},
        "output": {"status": "insufficient_data", "reason": "compared only with enough captured rows"},
        "metrics_published": False,
    }
    folder = report_folder(config, window_end)
    if decoded.rows < config.min_rows:
        report["verdict"] = "insufficient_data"
        report["reason"] = (
            f"{decoded.rows} captured rows < minimum {config.min_rows}: no drift verdict and no metric; "
            "these rows are evaluated again with the next run's"
        )
        _write_report(s3, config, folder, report)
        return _summary(report, config, folder, state="unchanged")

    drifts, skipped = compare(decoded.columns, config.schema, baseline.features)
    report["skipped_features"] = skipped
    if not drifts:
        raise BaselineMissing(f"no feature of {config.schema.name} has a baseline in {baseline.report_uri}")
    overall = max(drifts, key=lambda d: d.psi)
    report["overall_psi"] = overall.psi
    report["features"] = [_feature_entry(d, config) for d in drifts]
    drifted = [d.name for d in drifts if d.psi > config.psi_threshold]
    report["drifted_features"] = drifted
    output = evaluate_output(
        read.records,
        config.schema,
        registry=registry,
        s3=s3,
        group=config.model_package_group,
        min_rows=config.min_rows,
        psi_threshold=config.psi_threshold,
        ks_threshold=config.ks_threshold,
    )
    report["output"] = output.section
    report["verdict"] = "drift" if drifted or output.section["drifted"] else "no_drift"
    if drifted:
        report["reason"] = (
            f"PSI above {config.psi_threshold} for {', '.join(drifted)} (max {overall.psi:.4f} on {overall.name})"
        )
    else:
        report["reason"] = (
            f"every feature's PSI is at most {config.psi_threshold} (max {overall.psi:.4f} on {overall.name})"
        )
    report["reason"] += f"; output: {output.section['reason']}"
    publish(cloudwatch, config, metric_data(config, window_end, drifts, output.drift))
    report["metrics_published"] = True
    _write_report(s3, config, folder, report)

    keep_from = capture.floor_hour(window_end - timedelta(hours=config.lateness_hours))
    recent = [k for k in [*state.processed, *(o.key for o in objects)] if _recent(config, k, keep_from)]
    try:
        save_state(s3, config, state, window_end, sorted(set(recent)))
        outcome = "advanced"
    except StateConflict:
        outcome = "conflict"
    return _summary(report, config, folder, state=outcome)


def _recent(config: DriftConfig, key: str, keep_from: datetime) -> bool:
    parsed = capture.parse_key(config.capture_prefix, key)
    return parsed is not None and parsed[1] >= keep_from


def _write_report(s3: S3Client, config: DriftConfig, folder: str, report: dict[str, Any]) -> None:
    s3.put_object(
        Bucket=config.artifacts_bucket,
        Key=f"{folder}report.json",
        Body=json.dumps(report, indent=1, allow_nan=False).encode(),
        ContentType="application/json",
    )
    s3.put_object(
        Bucket=config.artifacts_bucket,
        Key=f"{folder}report.html",
        Body=render_html(report).encode(),
        ContentType="text/html; charset=utf-8",
    )


def _summary(report: Mapping[str, Any], config: DriftConfig, folder: str, state: str) -> dict[str, Any]:
    return {
        "status": report["verdict"],
        "reason": report["reason"],
        "rows": report["rows"],
        "overall_psi": report["overall_psi"],
        "drifted_features": report.get("drifted_features", []),
        "output": {k: report["output"].get(k) for k in ("status", "reason", "psi")},
        "metrics_published": report["metrics_published"],
        "report_uri": f"s3://{config.artifacts_bucket}/{folder}report.html",
        "window_end": report["window"]["end"],
        "state": state,
    }
