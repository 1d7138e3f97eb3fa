"""Data capture: keys, listing by hour, records (CSV / JSON / BASE64 bodies) and responses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from lambdas.drift_monitor import capture
from lambdas.shared.answers import Answer, Answers
from tests.unit.lambdas.drift_monitor.helpers import (
    ARTIFACTS,
    CAPTURE_PREFIX,
    capture_line,
    put_capture,
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


def test_a_malformed_capture_line_is_counted_not_fatal(s3: Any) -> None:
    key = put_capture(s3, [capture_line("1,2"), "{not json", json.dumps({"captureData": {}})], HOUR)
    result = capture.read_records(s3, ARTIFACTS, [capture.CaptureObject(key, "AllTraffic", HOUR, 0)])
    assert len(result.records) == 1 and result.bad_lines == 2


def test_responses_decode_model_version_and_predictions() -> None:
    body = json.dumps({"model_version": "v7", "predictions": [{"probability": 0.8, "label": 1}]})
    record = capture.parse_record(capture_line("x", output=body), "AllTraffic")
    assert capture.decode_predictions(record, "binary", (0, 1)) == Answers("v7", [Answer(1, 0.8)])
    csv_record = capture.parse_record(capture_line("x", output="0.25,0\n0.75,1\n", output_type="text/csv"), "A")
    expected = Answers(None, [Answer(0, 0.25), Answer(1, 0.75)])
    assert capture.decode_predictions(csv_record, "binary", (0, 1)) == expected
    regression = capture.parse_record(capture_line("x", output="812.5\n", output_type="text/csv"), "A")
    assert capture.decode_predictions(regression, "regression") == Answers(None, [Answer(value=812.5)])


def test_parse_time_accepts_the_formats_aws_uses() -> None:
    expected = datetime(2023, 8, 4, 12, 36, 15, 490000, tzinfo=UTC)
    assert capture.parse_time("2023-08-04T12:36:15.490+0000") == expected
    assert capture.parse_time("2023-08-04T12:36:15.490Z") == expected
    assert capture.parse_time("2023-08-04T12:36:15.490") == expected
