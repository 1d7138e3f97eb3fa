"""Builders of SageMaker data-capture objects and of the ETL baseline, shared by the monitoring tests."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from pipelines.data.generator import generate, to_csv_bytes
from pipelines.etl import transforms as tf
from stacks.config import QualityGate
from tests.samples import CHURN_SCHEMA

END = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # the window end of a run in the tests
HOUR = END - timedelta(hours=1)  # the capture hour of its traffic
ENDPOINT = "mlops-dev-churn"  # churn's endpoint in the dev platform document
CAPTURE_PREFIX = f"data-capture/{ENDPOINT}/"
ARTIFACTS = "artifacts-bucket"
CURATED = "curated-bucket"
FEATURES = CHURN_SCHEMA.feature_names


def capture_line(
    body: str,
    content_type: str = "text/csv",
    *,
    encoding: str | None = None,
    event_id: str | None = None,
    inference_id: str | None = None,
    inference_time: str = "2026-11-27T09:10:00Z",
    output: str = '{"model_version": "v1", "predictions": [{"probability": 0.5, "label": 1}]}',
    output_type: str = "application/json",
) -> str:
    """One capture record in SageMaker's format (``encoding`` defaults from the content type)."""
    enc = encoding or ("CSV" if content_type == "text/csv" else "JSON")
    data = base64.b64encode(body.encode()).decode() if enc == "BASE64" else body
    meta: dict[str, Any] = {"eventId": event_id or str(uuid.uuid4()), "inferenceTime": inference_time}
    if inference_id:
        meta["inferenceId"] = inference_id
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {"observedContentType": content_type, "mode": "INPUT", "data": data, "encoding": enc},
                "endpointOutput": {
                    "observedContentType": output_type,
                    "mode": "OUTPUT",
                    "data": output,
                    "encoding": "JSON" if output_type == "application/json" else "CSV",
                },
            },
            "eventMetadata": meta,
            "eventVersion": "0",
        }
    )


def csv_body(rows: pd.DataFrame, header: bool = False) -> str:
    return rows[FEATURES].to_csv(index=False, header=header)


def request_lines(rows: pd.DataFrame, per_request: int = 10, style: str = "csv") -> list[str]:
    """Capture lines for ``rows`` (features only), ``per_request`` rows per request, in one body style:
    csv, csv-header, base64 (CSV body base64-encoded), json-rows (``{"instances": [[...]]}``), json-records."""
    lines: list[str] = []
    for start in range(0, len(rows), per_request):
        chunk = rows.iloc[start : start + per_request][FEATURES]
        if style in ("csv", "csv-header", "base64"):
            body = csv_body(chunk, header=style == "csv-header")
            lines.append(capture_line(body, encoding="BASE64" if style == "base64" else None))
        else:
            records = json.loads(chunk.to_json(orient="records"))
            instances = records if style == "json-records" else [[r[f] for f in FEATURES] for r in records]
            lines.append(capture_line(json.dumps({"instances": instances}), "application/json"))
    return lines


def put_capture(s3: Any, lines: list[str], hour: datetime, variant: str = "AllTraffic", name: str | None = None) -> str:
    key = f"{CAPTURE_PREFIX}{variant}/{hour:%Y/%m/%d/%H}/{name or uuid.uuid4()}.jsonl"
    s3.put_object(Bucket=ARTIFACTS, Key=key, Body=("\n".join(lines) + "\n").encode())
    return key


def baseline_report(rows: int = 5000, seed: int = 1) -> dict[str, Any]:
    """The quality report the ETL writes for a generated dataset (its ``features`` are the drift baseline)."""
    return tf.run_transform(to_csv_bytes(generate(rows, seed=seed)), "csv", CHURN_SCHEMA, QualityGate()).report


def put_baseline(s3: Any, report: dict[str, Any]) -> str:
    """The quality report and the manifest that points to it, as the ETL leaves them in the curated zone."""
    key = "curated/dataset=churn/version=v1/_quality_report.json"
    s3.put_object(Bucket=CURATED, Key=key, Body=json.dumps(report).encode())
    uri = f"s3://{CURATED}/{key}"
    manifest = {"dataset": "churn", "version": "v1", "status": "SUCCEEDED", "report_uri": uri}
    s3.put_object(Bucket=CURATED, Key="manifests/churn/latest.json", Body=json.dumps(manifest).encode())
    return uri
