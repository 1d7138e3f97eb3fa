"""Ground truth under moto: label formats, the join with captured predictions, metrics per version, idempotency."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lambdas.ground_truth import handler as gt_handler
from lambdas.ground_truth import logic
from lambdas.ground_truth.logic import LabelFileError, LabelObject, QualityConfig
from tests.samples import CHURN_SCHEMA
from tests.unit.lambdas.drift_monitor.helpers import ARTIFACTS, CAPTURE_PREFIX, ENDPOINT, capture_line, put_capture
from tests.unit.lambdas.ground_truth.conftest import RAW
from tests.unit.lambdas.support import FakeContext, object_created

NAMESPACE = "MLOps/test"
UPLOAD = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
HOUR = datetime(2026, 11, 27, 9, tzinfo=UTC)


@pytest.fixture
def config() -> QualityConfig:
    return QualityConfig(
        endpoint_name=ENDPOINT,
        artifacts_bucket=ARTIFACTS,
        capture_prefix=CAPTURE_PREFIX,
        quality_prefix="monitoring/quality/",
        namespace=NAMESPACE,
        schema=CHURN_SCHEMA,
        lookback_hours=168,
        min_rows=50,
    )


class Recording:
    """The moto CloudWatch client, with every PutMetricData call kept as sent."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[dict[str, Any]] = []

    def put_metric_data(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return dict(self.client.put_metric_data(**kwargs))


def captured_traffic(s3: Any, requests: int = 80, rows_per_request: int = 2, seed: int = 0) -> dict[str, Any]:
    """Captured requests answered by model v1 (first half) and v2 (second half); returns the truth to label.

    Labels are drawn from the predicted probabilities, so AUC is well above 0.5 but below 1.
    """
    rng = np.random.default_rng(seed)
    lines, truth = [], {}
    for i in range(requests):
        version = "v1" if i < requests // 2 else "v2"
        probabilities = rng.beta(2, 3, rows_per_request).round(4).tolist()
        labels = [int(rng.random() < p) for p in probabilities]
        output = {
            "model_version": version,
            "predictions": [{"probability": p, "label": int(p >= 0.5)} for p in probabilities],
        }
        event_id = f"evt-{i:04d}"
        inference_id = f"inf-{i:04d}" if i % 2 else None
        lines.append(capture_line("1,2", event_id=event_id, inference_id=inference_id, output=json.dumps(output)))
        truth[event_id] = {"inference_id": inference_id, "version": version, "p": probabilities, "y": labels}
    put_capture(s3, lines[: requests // 2], HOUR)
    put_capture(s3, lines[requests // 2 :], HOUR + timedelta(hours=3), variant="Canary")
    return truth


def model_monitor_lines(truth: dict[str, Any]) -> str:
    """Model Monitor's merge format, keyed by eventId (or by inferenceId where the request had one)."""
    lines = []
    for event_id, t in truth.items():
        key = t["inference_id"] or event_id
        lines.append(
            json.dumps(
                {
                    "groundTruthData": {"data": ",".join(map(str, t["y"])), "encoding": "CSV"},
                    "eventMetadata": {"eventId": key},
                    "eventVersion": "0",
                }
            )
        )
    return "\n".join(lines) + "\n"


def upload(s3: Any, key: str, body: str) -> LabelObject:
    version = s3.put_object(Bucket=RAW, Key=key, Body=body.encode())["VersionId"]
    return LabelObject(RAW, key, version, UPLOAD.isoformat())


def datapoints(metric: str, dims: dict[str, str], stat: str = "Maximum") -> list[dict[str, Any]]:
    response = boto3.client("cloudwatch").get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=metric,
        Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        StartTime=UPLOAD - timedelta(days=1),
        EndTime=UPLOAD + timedelta(days=1),
        Period=60,
        Statistics=[stat],
    )
    return list(response["Datapoints"])


def test_labels_join_captured_predictions_and_quality_is_published_per_version(aws: Any, config: QualityConfig) -> None:
    # Given 80 captured two-row requests (v1 then v2, two variants) and their labels in Model Monitor's format
    truth = captured_traffic(aws)
    obj = upload(aws, "ground-truth/day1.jsonl", model_monitor_lines(truth))
    # When the labels are evaluated
    cloudwatch = Recording(boto3.client("cloudwatch"))
    summary = logic.run(aws, cloudwatch, config, obj)
    # Then every label found its prediction, by eventId or by inferenceId
    assert summary["matched_ids"] == 80 and summary["unmatched_ids"] == 0
    assert summary["overall"]["rows"] == 160
    # and AUC / accuracy are sklearn's on the same pairs, overall and per model version
    y = [v for t in truth.values() for v in t["y"]]
    p = [v for t in truth.values() for v in t["p"]]
    assert summary["overall"]["auc"] == pytest.approx(roc_auc_score(y, p))
    assert summary["overall"]["accuracy"] == pytest.approx(np.mean(np.array(y) == (np.array(p) >= 0.5)))
    for version in ("v1", "v2"):
        yv = [v for t in truth.values() if t["version"] == version for v in t["y"]]
        pv = [v for t in truth.values() if t["version"] == version for v in t["p"]]
        assert summary["by_model_version"][version]["auc"] == pytest.approx(roc_auc_score(yv, pv))
        # published with EndpointName + ModelVersion
        (point,) = datapoints("ModelAUC", {"EndpointName": ENDPOINT, "ModelVersion": version})
        assert point["Maximum"] == pytest.approx(roc_auc_score(yv, pv)) and point["Timestamp"] == UPLOAD
    assert set(summary["by_variant"]) == {"AllTraffic", "Canary"}
    # and the alarm's metric has exactly the alarm's dimension, at the upload time (moto's statistics match
    # dimension subsets, CloudWatch matches exact sets: the published datapoints are read back as sent)
    published = {
        (d["MetricName"], tuple(sorted((x["Name"], x["Value"]) for x in d["Dimensions"]))): d
        for call in cloudwatch.calls
        for d in call["MetricData"]
    }
    alarm_dims = (("EndpointName", ENDPOINT),)
    assert published[("ModelAUC", alarm_dims)]["Value"] == pytest.approx(summary["overall"]["auc"])
    assert published[("ModelAccuracy", alarm_dims)]["Value"] == pytest.approx(summary["overall"]["accuracy"])
    assert {d["Timestamp"] for d in published.values()} == {UPLOAD}
    assert len(published) == 6  # AUC + accuracy for the endpoint, v1 and v2
    listed = boto3.client("cloudwatch").list_metrics(Namespace=NAMESPACE, MetricName="ModelAUC")["Metrics"]
    dimension_sets = {tuple(d["Name"] for d in m["Dimensions"]) for m in listed}
    assert dimension_sets == {("EndpointName",), ("EndpointName", "ModelVersion")}
    # and the joined rows and the summary are written under monitoring/quality/
    folder = summary["summary_uri"].removeprefix(f"s3://{ARTIFACTS}/").removesuffix("summary.json")
    assert folder.startswith("monitoring/quality/2026-11-28T12-00/day1.jsonl-")
    joined = aws.get_object(Bucket=ARTIFACTS, Key=f"{folder}joined.jsonl")["Body"].read().decode().splitlines()
    first = json.loads(joined[0])
    assert len(joined) == 160
    assert first == {
        "id": "evt-0000",
        "event_id": "evt-0000",
        "inference_id": None,
        "variant": "AllTraffic",
        "model_version": "v1",
        "inference_time": "2026-11-27T09:10:00Z",
        "row": 0,
        "probability": truth["evt-0000"]["p"][0],
        "predicted_label": int(truth["evt-0000"]["p"][0] >= 0.5),
        "label": truth["evt-0000"]["y"][0],
        "predicted_value": None,
    }


def test_csv_labels_unknown_ids_and_row_count_mismatches_are_reported(aws: Any, config: QualityConfig) -> None:
    # Given CSV labels (with a header) for two requests, one unknown id, and one request labelled with too few rows
    truth = captured_traffic(aws, requests=4)
    body = "inference_id,label\n"
    body += "".join(f"evt-0000,{v}\n" for v in truth["evt-0000"]["y"])
    body += "".join(f"inf-0001,{v}\n" for v in truth["evt-0001"]["y"])
    body += "nope,1\nevt-0002,1\nevt-0003,maybe\n"
    obj = upload(aws, "ground-truth/day2.csv", body)
    # When
    summary = logic.run(aws, boto3.client("cloudwatch"), config, obj)
    # Then the good pairs are joined, and each problem is counted
    assert summary["overall"]["rows"] == 4
    assert summary["unmatched_ids"] == 1 and summary["unmatched_sample"] == ["nope"]
    assert summary["mismatched_ids"] == 1  # evt-0002: 1 label for 2 predicted rows
    assert summary["labels"]["bad_lines"] == 1  # "maybe"
    # and 4 labelled rows are too few to publish anything (minimum 50)
    assert summary["metrics"] == [] and "4 labelled rows < minimum 50" in summary["reason"]
    assert datapoints("ModelAccuracy", {"EndpointName": ENDPOINT}) == []


@pytest.mark.parametrize(
    ("data", "encoding", "expected"),
    [("1", "CSV", [1]), ("0,1,1", "CSV", [0, 1, 1]), ("[1, 0]", "JSON", [1, 0]), ("1.0", "CSV", [1])],
)
def test_model_monitor_label_encodings(data: str, encoding: str, expected: list[int]) -> None:
    line = {"groundTruthData": {"data": data, "encoding": encoding}, "eventMetadata": {"eventId": "e"}}
    assert logic.parse_labels(json.dumps(line).encode(), "x.jsonl", CHURN_SCHEMA).by_id == {"e": expected}
    b64 = {"groundTruthData": {"data": base64.b64encode(data.encode()).decode(), "encoding": "BASE64"}}
    b64["eventMetadata"] = {"eventId": "e"}
    if encoding == "CSV":
        assert logic.parse_labels(json.dumps(b64).encode(), "x.jsonl", CHURN_SCHEMA).by_id == {"e": expected}


def test_a_label_file_that_cannot_be_read_says_why() -> None:
    with pytest.raises(LabelFileError, match=r"g/empty\.csv: the file is empty"):
        logic.parse_labels(b"  \n", "g/empty.csv", CHURN_SCHEMA)
    with pytest.raises(LabelFileError, match="not UTF-8"):
        logic.parse_labels(b"\xff\xfe1,0", "g/bad.csv", CHURN_SCHEMA)
    not_binary = b'{"groundTruthData": {"data": "2"}, "eventMetadata": {"eventId": "e"}}'
    assert logic.parse_labels(not_binary, "a.jsonl", CHURN_SCHEMA).bad_lines == 1


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, aws: Any) -> Iterator[None]:
    for name, value in {
        "ARTIFACTS_BUCKET": ARTIFACTS,
        "CURATED_BUCKET": "curated-bucket",
        "GLUE_DATABASE": "mlops_dev",
        "IDEMPOTENCY_TABLE": "idempotency",
        "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
        "DATASET_SCHEMA": CHURN_SCHEMA.to_json(),
    }.items():
        monkeypatch.setenv(name, value)
    aws.create_bucket(Bucket="curated-bucket")  # labelled production rows, and those quarantined
    cached = (gt_handler.settings, gt_handler.evaluate_once)
    for function in cached:
        function.cache_clear()
    yield
    for function in cached:
        function.cache_clear()


def s3_event(obj: LabelObject) -> dict[str, Any]:
    return object_created(obj.key, bucket=obj.bucket, version=obj.version_id, size=10, time="2026-11-28T12:00:00Z")


def test_the_same_label_upload_delivered_twice_is_evaluated_once(aws: Any, environment: None) -> None:
    # Given labels for 80 requests and their upload event, delivered twice
    truth = captured_traffic(aws)
    obj = upload(aws, "ground-truth/churn/day1.jsonl", model_monitor_lines(truth))
    # When the handler sees the event twice
    first = gt_handler.handler(s3_event(obj), FakeContext())
    second = gt_handler.handler(s3_event(obj), FakeContext())
    # Then the second call returns the first result and publishes nothing more
    assert second == first and first["overall"]["rows"] == 160
    # (this traffic's requests are not churn's features: every joined row is quarantined with its reason)
    production = first["production"]
    assert production["rows"] == 0 and production["rejects_by_reason"] == {"request": 160}
    assert production["quarantined"].startswith("s3://curated-bucket/quarantine/dataset=churn/production/")
    # And the labels of churn's folder were joined with churn's endpoint's captures, written under churn's prefix
    assert first["endpoint"] == ENDPOINT == "mlops-dev-churn"
    assert first["summary_uri"].startswith(f"s3://{ARTIFACTS}/monitoring/quality/churn/")
    v1 = {"EndpointName": ENDPOINT, "ModelVersion": "v1"}
    (point,) = datapoints("ModelAUC", v1, stat="SampleCount")
    assert point["SampleCount"] == 1
    # When a corrected version of the same file is uploaded
    again = upload(aws, "ground-truth/churn/day1.jsonl", model_monitor_lines(truth))
    gt_handler.handler(s3_event(again), FakeContext())
    # Then it is evaluated as a new upload
    (point,) = datapoints("ModelAUC", v1, stat="SampleCount")
    assert point["SampleCount"] == 2


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("datasets/churn/x.csv", "not a label file under ground-truth/<dataset>/"),
        ("ground-truth/day1.jsonl", "not a label file under ground-truth/<dataset>/"),
        ("ground-truth/sales/day1.jsonl", "dataset 'sales' is not declared"),
    ],
)
def test_objects_outside_a_declared_datasets_label_folder_are_ignored(
    aws: Any, environment: None, key: str, why: str
) -> None:
    obj = upload(aws, key, "a,b\n")
    result = gt_handler.handler(s3_event(obj), FakeContext())
    assert result == {"evaluated": False, "reason": f"key {key!r}: {why} (declared: churn, energy, tickets)"}
