"""Drift monitor runs under moto: verdicts, metrics (dimensions, timestamps), report, watermark, quiet endpoint."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from lambdas.drift_monitor import handler as drift_handler
from lambdas.drift_monitor import logic
from lambdas.drift_monitor.logic import DriftConfig
from pipelines.data.generator import generate
from tests.unit.lambdas.drift_monitor.conftest import NAMESPACE
from tests.unit.lambdas.drift_monitor.helpers import (
    ARTIFACTS,
    END,
    ENDPOINT,
    FEATURES,
    HOUR,
    baseline_report,
    put_baseline,
    put_capture,
    request_lines,
)
from tests.unit.lambdas.support import FakeContext


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return baseline_report(rows=5000, seed=1)


def _cloudwatch() -> Any:
    return boto3.client("cloudwatch")


def _datapoints(metric: str, dimensions: dict[str, str]) -> list[dict[str, Any]]:
    response = _cloudwatch().get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=metric,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=END - timedelta(days=1),
        EndTime=END + timedelta(days=1),
        Period=60,
        Statistics=["Maximum"],
    )
    return list(response["Datapoints"])


def _read_json(s3: Any, key: str) -> dict[str, Any]:
    return dict(json.loads(s3.get_object(Bucket=ARTIFACTS, Key=key)["Body"].read()))


def _capture(s3: Any, rows: int, seed: int, drift: float, hour: datetime = HOUR, style: str = "csv") -> str:
    frame = generate(rows, seed=seed, drift=drift)[FEATURES]
    return put_capture(s3, request_lines(frame, per_request=20, style=style), hour)


def test_a_drifted_window_is_detected_published_and_reported(s3: Any, config: DriftConfig, report: Any) -> None:
    # Given the ETL baseline and an hour of captured traffic from a drifted population (two body styles)
    put_baseline(s3, report)
    _capture(s3, 1500, seed=11, drift=1.0)
    _capture(s3, 500, seed=12, drift=1.0, style="json-records")
    # When the monitor runs for the window ending at 10:00
    summary = logic.run(s3, _cloudwatch(), config, END)
    # Then the verdict is drift, led by the features the generator shifts most
    assert summary["status"] == "drift"
    assert summary["rows"] == 2000 and summary["metrics_published"] is True
    assert {"monthly_charges", "support_calls"} <= set(summary["drifted_features"])
    assert "age" not in summary["drifted_features"]  # the generator does not move age
    # and the alarm metric carries exactly the alarm's dimensions and the window end as its timestamp
    (overall,) = _datapoints("OverallDriftPSI", {"EndpointName": ENDPOINT})
    assert overall["Timestamp"] == END
    assert overall["Maximum"] == pytest.approx(summary["overall_psi"]) and overall["Maximum"] > 0.2
    (psi,) = _datapoints("FeatureDriftPSI", {"EndpointName": ENDPOINT, "Feature": "monthly_charges"})
    (ks,) = _datapoints("FeatureDriftKS", {"EndpointName": ENDPOINT, "Feature": "monthly_charges"})
    assert psi["Maximum"] > 0.2 and 0.1 < ks["Maximum"] <= 1.0
    assert _datapoints("FeatureDriftKS", {"EndpointName": ENDPOINT, "Feature": "contract"}) == []  # no KS
    for metric, names in (("OverallDriftPSI", ["EndpointName"]), ("FeatureDriftPSI", ["EndpointName", "Feature"])):
        listed = _cloudwatch().list_metrics(Namespace=NAMESPACE, MetricName=metric)["Metrics"]
        assert {tuple(d["Name"] for d in m["Dimensions"]) for m in listed} == {tuple(names)}
    # and the report is written next to its HTML page
    doc = _read_json(s3, "monitoring/drift/2026-11-27T10-00/report.json")
    assert doc["verdict"] == "drift"
    assert doc["window"] == {"start": "2026-11-26T10:00:00Z", "end": "2026-11-27T10:00:00Z"}
    assert [f["name"] for f in doc["features"]] == FEATURES
    assert summary["report_uri"] == f"s3://{ARTIFACTS}/monitoring/drift/2026-11-27T10-00/report.html"


def test_a_same_distribution_window_shows_no_drift(s3: Any, config: DriftConfig, report: Any) -> None:
    # Given traffic drawn from the training population (another seed)
    put_baseline(s3, report)
    _capture(s3, 2000, seed=21, drift=0.0)
    # When
    summary = logic.run(s3, _cloudwatch(), config, END)
    # Then no feature drifts, and the overall PSI is still published (a low value is information too)
    assert summary["status"] == "no_drift" and summary["drifted_features"] == []
    assert summary["overall_psi"] < 0.05
    (overall,) = _datapoints("OverallDriftPSI", {"EndpointName": ENDPOINT})
    assert overall["Maximum"] == pytest.approx(summary["overall_psi"])


def test_the_html_report_shows_plots_table_and_highlights_breaches(s3: Any, config: DriftConfig, report: Any) -> None:
    # Given a drifted window
    put_baseline(s3, report)
    _capture(s3, 2000, seed=31, drift=1.0)
    logic.run(s3, _cloudwatch(), config, END)
    # When the page is read back
    page = s3.get_object(Bucket=ARTIFACTS, Key="monitoring/drift/2026-11-27T10-00/report.html")
    html = page["Body"].read().decode()
    # Then it is one self-contained HTML document with a bar chart per feature and a CDF plot per numeric one
    assert page["ContentType"].startswith("text/html")
    assert (
        html.startswith("<!DOCTYPE html>")
        and "<script" not in html
        and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    assert html.count("<svg") == len(FEATURES) + 6  # 9 bar charts + 6 numeric CDF charts
    for name in FEATURES:
        assert f'id="f-{name}"' in html
    # and the PSI cell of a drifted feature is highlighted, a stable one is not
    doc = _read_json(s3, "monitoring/drift/2026-11-27T10-00/report.json")
    charges = next(f for f in doc["features"] if f["name"] == "monthly_charges")
    age = next(f for f in doc["features"] if f["name"] == "age")
    assert f'<td class="breach">{charges["psi"]:.4f}</td>' in html
    assert f"<td>{age['psi']:.4f}</td>" in html
    assert "drift (PSI)" in html and f"{doc['rows']:,} captured rows" in html


def test_a_quiet_endpoint_gets_no_verdict_no_metric_and_keeps_its_rows(
    s3: Any, config: DriftConfig, report: Any
) -> None:
    # Given only 120 captured rows (minimum 200), heavily drifted
    put_baseline(s3, report)
    _capture(s3, 120, seed=41, drift=1.0)
    # When the monitor runs
    summary = logic.run(s3, _cloudwatch(), config, END)
    # Then there is no verdict and no metric, the report says why, and the watermark does not move
    assert summary["status"] == "insufficient_data" and summary["metrics_published"] is False
    assert "120 captured rows < minimum 200" in summary["reason"]
    assert _datapoints("OverallDriftPSI", {"EndpointName": ENDPOINT}) == []
    assert _read_json(s3, "monitoring/drift/2026-11-27T10-00/report.json")["verdict"] == "insufficient_data"
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=ARTIFACTS, Key="monitoring/drift/_state.json")
    # When 100 more rows arrive and the next hourly run comes
    _capture(s3, 100, seed=42, drift=1.0, hour=END)
    later = logic.run(s3, _cloudwatch(), config, END + timedelta(hours=1))
    # Then both hours' rows count together
    assert later["status"] == "drift" and later["rows"] == 220


def test_the_watermark_makes_every_capture_file_count_once(s3: Any, config: DriftConfig, report: Any) -> None:
    # Given a first run over 300 rows
    put_baseline(s3, report)
    first_key = _capture(s3, 300, seed=51, drift=0.0)
    assert logic.run(s3, _cloudwatch(), config, END)["rows"] == 300
    state = _read_json(s3, "monitoring/drift/_state.json")
    assert state == {"window_end": "2026-11-27T10:00:00Z", "processed": [first_key]}
    # When the same schedule event is delivered again
    again = logic.run(s3, _cloudwatch(), config, END)
    # Then nothing is read or published twice
    assert again["status"] == "skipped" and "not after the watermark" in again["reason"]
    # When a late file for the already processed hour lands, plus a file in the new hour
    _capture(s3, 150, seed=52, drift=0.0, hour=HOUR)
    _capture(s3, 100, seed=53, drift=0.0, hour=END)
    # Then the next run reads exactly those two files, not the first one again
    assert logic.run(s3, _cloudwatch(), config, END + timedelta(hours=1))["rows"] == 250


def test_a_concurrent_run_cannot_move_the_watermark_twice(s3: Any, config: DriftConfig, report: Any) -> None:
    # Given a state read by a run, then changed by another run before this one saves
    put_baseline(s3, report)
    state = logic.load_state(s3, config)
    logic.save_state(s3, config, state, END, [])
    # When the first run tries to save on top of what it read
    # Then the conditional write refuses
    with pytest.raises(logic.StateConflict, match=r"monitoring/drift/_state\.json changed"):
        logic.save_state(s3, config, state, END + timedelta(hours=1), [])
    assert _read_json(s3, "monitoring/drift/_state.json")["window_end"] == "2026-11-27T10:00:00Z"


def test_without_a_curated_dataset_there_is_nothing_to_compare(s3: Any, config: DriftConfig) -> None:
    _capture(s3, 300, seed=61, drift=0.0)
    summary = logic.run(s3, _cloudwatch(), config, END)
    assert summary["status"] == "no_baseline"
    assert "manifests/churn/latest.json does not exist" in summary["reason"]


def test_the_handler_uses_the_schedule_time_as_the_window_end(
    s3: Any, environment: None, report: Any, config: DriftConfig
) -> None:
    # Given a scheduled event for 10:00 and drifted traffic before it
    put_baseline(s3, report)
    _capture(s3, 400, seed=71, drift=1.0)
    event = {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-27T10:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/mlops-dev-churn-drift"],
        "detail": {"dataset": "churn"},  # the rule's input transformer adds it
    }
    # When
    summary = drift_handler.handler(event, FakeContext())
    # Then churn's run covers the window and reports under churn's prefix, with churn's settings from the document
    assert summary["status"] == "drift" and summary["window_end"] == "2026-11-27T10:00:00Z"
    assert summary["report_uri"].startswith(f"s3://{config.artifacts_bucket}/monitoring/drift/churn/")
    assert drift_handler.settings().drift_config("churn") == replace(
        config, min_rows=200, report_prefix="monitoring/drift/churn/", model_package_group="mlops-dev-churn"
    )


def test_a_scheduled_event_without_a_dataset_is_refused(environment: None) -> None:
    # Given a schedule whose rule sends no dataset (not one this stack creates)
    event = {
        "version": "0",
        "id": "1",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": "2026-11-27T10:00:00Z",
        "resources": [],
        "detail": {},
    }
    # When / Then the run fails, saying what is missing
    with pytest.raises(
        ValueError, match=r"the scheduled event names no dataset \(detail: \{\}\): its rule must send one"
    ):
        drift_handler.handler(event, FakeContext())
