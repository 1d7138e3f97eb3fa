"""Data capture: keys, listing by hour, record decoding (CSV / JSON / BASE64) and responses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from lambdas.drift_monitor import capture
from pipelines.data.generator import generate
from pipelines.schema import CHURN_SCHEMA
from tests.unit.lambdas.drift_monitor.helpers import (
    ARTIFACTS,
    CAPTURE_PREFIX,
    FEATURES,
    capture_line,
    put_capture,
    request_lines,
)

HOUR = datetime(2026, 11, 27, 9, tzinfo=UTC)


def test_parse_key_reads_variant_and_hour() -> None:
    key = f"{CAPTURE_PREFIX}Canary/2026/11/27/09/abc.jsonl"
    assert capture.parse_key(CAPTURE_PREFIX, key) == ("Canary", HOUR)
    assert capture.parse_key(CAPTURE_PREFIX, f"{CAPTURE_PREFIX}Canary/2026/13/27/09/abc.jsonl") is None
    assert capture.parse_key(CAPTURE_PREFIX, "other/Canary/2026/11/27/09/abc.jsonl") is None


def test_list_objects_returns_every_variant_within_the_hours(s3: Any) -> None:
    # Given files in hours 07..11 for two variants
    keys = {
        (variant, hour): put_capture(s3, ["{}"], HOUR.replace(hour=hour), variant=variant)
        for variant in ("AllTraffic", "Canary")
        for hour in range(7, 12)
    }
    # When listing 08:30 .. 10:05
    found = capture.list_objects(
        s3, ARTIFACTS, CAPTURE_PREFIX, HOUR.replace(hour=8, minute=30), HOUR.replace(hour=10, minute=5)
    )
    # Then exactly hours 08, 09 and 10 of both variants come back
    assert sorted(o.key for o in found) == sorted(keys[(v, h)] for v in ("AllTraffic", "Canary") for h in (8, 9, 10))
    assert {o.variant for o in found} == {"AllTraffic", "Canary"}


@pytest.mark.parametrize("style", ["csv", "csv-header", "base64", "json-rows", "json-records"])
def test_request_bodies_decode_into_the_same_feature_columns(style: str) -> None:
    # Given 25 generated rows captured in one body style (missing total_charges included)
    rows = generate(25, seed=3)[FEATURES]
    records = [capture.parse_record(line, "AllTraffic") for line in request_lines(rows, per_request=10, style=style)]
    # When
    decoded = capture.request_frame(records, CHURN_SCHEMA)
    # Then every row and value comes back, numbers as float64 and missing values as NaN / None
    assert decoded.rows == 25 and decoded.bad_records == 0
    for name in CHURN_SCHEMA.numeric_features:
        np.testing.assert_allclose(decoded.frame[name].to_numpy(), rows[name].to_numpy(dtype=float), equal_nan=True)
    for name in CHURN_SCHEMA.categorical_features:
        assert decoded.frame[name].tolist() == rows[name].tolist()


def test_undecodable_bodies_are_counted_with_their_reason() -> None:
    # Given a good CSV request, a JSON body without instances, an unknown content type and a too-wide CSV row
    good = generate(2, seed=1)[FEATURES].to_csv(index=False, header=False)
    lines = [
        capture_line(good),
        capture_line(json.dumps({"rows": []}), "application/json"),
        capture_line("abc", "application/x-npy", encoding="BASE64"),
        capture_line(",".join(["1"] * 12)),
    ]
    records = [capture.parse_record(line, "AllTraffic") for line in lines]
    # When
    decoded = capture.request_frame(records, CHURN_SCHEMA)
    # Then the good rows are kept and each failure is counted by reason
    assert decoded.rows == 2
    assert decoded.bad_reasons == {
        "ValueError": 1,
        "content type 'application/x-npy'": 1,
        "CSV rows with too many fields": 1,
    }


def test_a_malformed_capture_line_is_counted_not_fatal(s3: Any) -> None:
    key = put_capture(s3, [capture_line("1,2"), "{not json", json.dumps({"captureData": {}})], HOUR)
    result = capture.read_records(s3, ARTIFACTS, [capture.CaptureObject(key, "AllTraffic", HOUR, 0)])
    assert len(result.records) == 1 and result.bad_lines == 2


def test_responses_decode_model_version_and_predictions() -> None:
    body = json.dumps({"model_version": "v7", "predictions": [{"probability": 0.8, "label": 1}]})
    record = capture.parse_record(capture_line("x", output=body), "AllTraffic")
    assert capture.decode_predictions(record) == capture.Predictions("v7", [0.8], [1])
    csv_record = capture.parse_record(capture_line("x", output="0.25,0\n0.75,1\n", output_type="text/csv"), "A")
    assert capture.decode_predictions(csv_record) == capture.Predictions(None, [0.25, 0.75], [0, 1])


def test_parse_time_accepts_the_formats_aws_uses() -> None:
    expected = datetime(2023, 8, 4, 12, 36, 15, 490000, tzinfo=UTC)
    assert capture.parse_time("2023-08-04T12:36:15.490+0000") == expected
    assert capture.parse_time("2023-08-04T12:36:15.490Z") == expected
    assert capture.parse_time("2023-08-04T12:36:15.490") == expected
