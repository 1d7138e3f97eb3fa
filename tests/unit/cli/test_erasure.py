"""``mlops data erase`` under moto (versioned zones, as the stack's): a record named by an inference id or a
production row key leaves the dataset's captured requests, joined labels and production rows, with every version
that held it; another dataset's data and everything else stay; ``--dry-run`` changes nothing."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cli import erasure
from cli.errors import BAD_INPUT, OK
from tests.unit.cli.conftest import ARTIFACTS, CURATED, Account, mlops

CAPTURE = "data-capture/mlops-dev-churn/AllTraffic/2026/11/27/10/capture.jsonl"
OTHER_CAPTURE = "data-capture/mlops-dev-churn-2/AllTraffic/2026/11/27/10/capture.jsonl"  # not churn's prefix
JOINED = "monitoring/quality/churn/2026-11-27T11-00/labels-1a2b/joined.jsonl"
SUMMARY = "monitoring/quality/churn/2026-11-27T11-00/labels-1a2b/summary.json"
ROWS = "production/churn/prod_date=2026-11-27/prod_hour=10/0123456789abcdef.parquet"
ONLY_HIS = "production/churn/prod_date=2026-11-27/prod_hour=09/fedcba9876543210.parquet"
COMPOSED = "curated/composed/churn/v3-retrain/split=train/part-00000.parquet"
QUARANTINED = "quarantine/dataset=churn/production/0a1b2c3d4e5f6a7b/rejected.jsonl"
UPLOAD_REJECTS = "quarantine/dataset=churn/version=exec-1/rejected.jsonl"  # an upload's: not production data


def capture_line(event_id: str, inference_id: str | None, rows: str) -> str:
    meta = {"eventId": event_id, "inferenceTime": "2026-11-27T10:01:00Z"}
    if inference_id:
        meta["inferenceId"] = inference_id
    data = {"endpointInput": {"data": rows, "encoding": "CSV"}, "endpointOutput": {"data": "1", "encoding": "CSV"}}
    return json.dumps({"captureData": data, "eventMetadata": meta})


def joined_line(label_id: str, event_id: str, inference_id: str | None, row: int) -> str:
    return json.dumps({"id": label_id, "event_id": event_id, "inference_id": inference_id, "row": row, "label": 1})


def parquet(rows: list[tuple[str, int]], provenance: bool = True) -> bytes:
    """Production rows (key ``<id>:<row>`` and provenance), or a composed channel's copy of them (no ``prod_``)."""
    columns: dict[str, Any] = {"customer_id": [f"{i}:{r}" for i, r in rows], "tenure_months": [12.0] * len(rows)}
    if provenance:
        columns["prod_inference_id"] = [i for i, _ in rows]
        columns["prod_request_row"] = pa.array([r for _, r in rows], pa.int64())
    table = pa.table(columns)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


@pytest.fixture
def data(account: Account) -> Account:
    """Churn's production data holding customer A's two-row request (eventId ev-a, inferenceId inf-a) among others;
    the label file named it by its inferenceId. Each object written twice (an earlier version in the zone)."""
    s3 = boto3.client("s3")
    for bucket in (ARTIFACTS, CURATED):
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    capture = [
        capture_line("ev-a", "inf-a", "1,2\n3,4"),
        capture_line("ev-b", "inf-b", "5,6"),
        capture_line("ev-c", None, "7,8"),
    ]
    joined = [
        joined_line("inf-a", "ev-a", "inf-a", 0),
        joined_line("inf-a", "ev-a", "inf-a", 1),
        joined_line("ev-c", "ev-c", None, 0),
    ]
    objects = {
        (ARTIFACTS, CAPTURE): "\n".join(capture).encode() + b"\n",
        (ARTIFACTS, OTHER_CAPTURE): capture_line("ev-a", "inf-a", "1,2").encode() + b"\n",
        (ARTIFACTS, JOINED): "\n".join(joined).encode() + b"\n",
        (ARTIFACTS, SUMMARY): b'{"rows": 3}',
        (CURATED, ROWS): parquet([("inf-a", 0), ("inf-a", 1), ("ev-c", 0)]),
        (CURATED, ONLY_HIS): parquet([("inf-a", 0)]),
        (CURATED, COMPOSED): parquet([("upload-row", 7), ("inf-a", 0), ("inf-a", 1), ("ev-c", 0)], provenance=False),
        (CURATED, QUARANTINED): "".join(
            json.dumps({"age": "5", "reject_reason": "range:age", "prod_inference_id": i, "prod_request_row": r}) + "\n"
            for i, r in (("inf-a", 1), ("ev-b", 0))
        ).encode(),
        (CURATED, UPLOAD_REJECTS): b'{"customer_id": "inf-a:0", "reject_reason": "range:age"}\n',
    }
    for (bucket, key), body in objects.items():
        for _ in range(2):
            s3.put_object(Bucket=bucket, Key=key, Body=body)
    return account


def body(bucket: str, key: str) -> bytes:
    return bytes(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def versions(bucket: str, key: str) -> list[dict[str, Any]]:
    listed = boto3.client("s3").list_object_versions(Bucket=bucket, Prefix=key)
    return [v for v in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])] if v["Key"] == key]


def production_rows(key: str) -> list[tuple[str, int]]:
    table = pq.read_table(io.BytesIO(body(CURATED, key)))
    return list(zip(table["prod_inference_id"].to_pylist(), table["prod_request_row"].to_pylist(), strict=True))


def event_ids(bucket: str, key: str) -> list[str]:
    return [json.loads(line)["eventMetadata"]["eventId"] for line in body(bucket, key).decode().splitlines()]


def test_an_inference_id_leaves_capture_labels_and_production_rows_with_their_versions(
    data: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given customer A's request, known to the operator by its eventId (the label named its inferenceId)
    # When the operator erases it
    code, out, _ = mlops(capsys, "data", "erase", "--dataset", "churn", "--inference-id", "ev-a", "--json")
    # Then the capture record, both joined rows and every production row of the request are gone
    assert code == OK and out["removed"] == {
        "captured_requests": 1,
        "joined_labels": 2,
        "production_rows": 3,
        "composed_rows": 2,
        "quarantined_rows": 1,
    }
    assert out["ids"] == ["ev-a", "inf-a"]
    # (and a past retrain's composed copy of those rows: the upload's and the other production rows stay)
    composed = pq.read_table(io.BytesIO(body(CURATED, COMPOSED)))["customer_id"].to_pylist()
    assert composed == ["upload-row:7", "ev-c:0"] and len(versions(CURATED, COMPOSED)) == 1
    # (and the quarantined production row that failed the rules; an upload's quarantine is not production data)
    assert [json.loads(line)["prod_inference_id"] for line in body(CURATED, QUARANTINED).decode().splitlines()] == [
        "ev-b"
    ]
    assert len(versions(CURATED, UPLOAD_REJECTS)) == 2
    assert event_ids(ARTIFACTS, CAPTURE) == ["ev-b", "ev-c"]
    assert [json.loads(line)["id"] for line in body(ARTIFACTS, JOINED).decode().splitlines()] == ["ev-c"]
    assert production_rows(ROWS) == [("ev-c", 0)]
    # And each rewritten object keeps only its new version; an object left empty is gone with all its versions
    for bucket, key in ((ARTIFACTS, CAPTURE), (ARTIFACTS, JOINED), (CURATED, ROWS)):
        assert len(versions(bucket, key)) == 1, key
    assert versions(CURATED, ONLY_HIS) == []
    assert {(o["key"], o["action"]) for o in out["objects"]} >= {(ONLY_HIS, "deleted"), (ROWS, "rewritten")}
    # And another dataset's capture and what holds no row of the record are untouched (two versions each)
    assert event_ids(ARTIFACTS, OTHER_CAPTURE) == ["ev-a"] and len(versions(ARTIFACTS, OTHER_CAPTURE)) == 2
    assert len(versions(ARTIFACTS, SUMMARY)) == 2


def test_a_key_erases_its_row_and_the_whole_captured_request(data: Account, capsys: pytest.CaptureFixture[str]) -> None:
    # When the operator erases one production row by its key
    code, out, _ = mlops(capsys, "data", "erase", "--dataset", "churn", "--key", "inf-a:1", "--json")
    # Then that row leaves the joined labels and the production rows, the request's other row stays
    assert code == OK and out["removed"] == {
        "captured_requests": 1,
        "joined_labels": 1,
        "production_rows": 1,
        "composed_rows": 1,
        "quarantined_rows": 1,
    }
    assert production_rows(ROWS) == [("inf-a", 0), ("ev-c", 0)] and production_rows(ONLY_HIS) == [("inf-a", 0)]
    assert [json.loads(line)["row"] for line in body(ARTIFACTS, JOINED).decode().splitlines()] == [0, 0]
    # And the captured request, which holds both rows, is erased whole
    assert event_ids(ARTIFACTS, CAPTURE) == ["ev-b", "ev-c"]


def test_a_dry_run_says_what_would_go_and_changes_nothing(data: Account, capsys: pytest.CaptureFixture[str]) -> None:
    before = {key: body(bucket, key) for bucket, key in ((ARTIFACTS, CAPTURE), (ARTIFACTS, JOINED), (CURATED, ROWS))}
    code, out, _ = mlops(capsys, "data", "erase", "--dataset", "churn", "--inference-id", "inf-a", "--dry-run")
    assert code == OK and out.startswith(
        "churn: would erase 1 captured request(s), 2 joined label line(s), 3 production row(s), 2 composed"
    )
    assert {
        key: body(bucket, key) for bucket, key in ((ARTIFACTS, CAPTURE), (ARTIFACTS, JOINED), (CURATED, ROWS))
    } == before
    assert len(versions(CURATED, ONLY_HIS)) == 2


def test_an_unknown_id_erases_nothing(data: Account, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = mlops(capsys, "data", "erase", "--dataset", "churn", "--inference-id", "nobody", "--json")
    # (churn's: a capture file, a joined.jsonl, two production files, a composed channel, a quarantined batch)
    assert code == OK and out["objects"] == [] and out["objects_scanned"] == 6
    assert len(versions(ARTIFACTS, CAPTURE)) == 2


@pytest.mark.parametrize("key", ["inf-a", "inf-a:", "inf-a:x", ":3"])
def test_a_key_that_is_not_id_colon_row_is_refused(data: Account, capsys: pytest.CaptureFixture[str], key: str) -> None:
    code, _, err = mlops(capsys, "data", "erase", "--dataset", "churn", "--key", key)
    assert code == BAD_INPUT and "is not a production row key <inference id>:<request row>" in err


def test_a_record_is_named_by_exactly_one_of_key_and_inference_id() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        erasure.Record.of()
    with pytest.raises(ValueError, match="exactly one"):
        erasure.Record.of(key="a:1", inference_id="a")
    assert erasure.Record.of(key="ev:with:colons:2") == erasure.Record({"ev:with:colons"}, 2, {"ev:with:colons:2"})
