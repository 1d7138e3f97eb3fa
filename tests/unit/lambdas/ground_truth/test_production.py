"""Labelled production rows (issue 17): captured features + arrived labels, validated by the ETL's rules, written
to the curated zone by hour and catalogued; predictions never become labels; a redelivered batch adds nothing."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pandas as pd
import pyarrow.parquet as pq
import pytest

from lambdas.drift_monitor import capture
from lambdas.ground_truth import handler as gt_handler
from lambdas.ground_truth.logic import JoinResult, join
from lambdas.ground_truth.production import (
    PARTITION_KEYS,
    PRODUCTION_COLUMNS,
    ProductionConfig,
    production_rows,
    table_input,
    write,
)
from pipelines.data.generator import generate
from pipelines.etl import transforms as tf
from pipelines.schema import RESERVED_PREFIX, DatasetSchema, SchemaError
from tests.samples import CHURN_SCHEMA
from tests.unit.lambdas.drift_monitor.helpers import ARTIFACTS, CURATED, FEATURES, capture_line, csv_body, put_capture
from tests.unit.lambdas.ground_truth.conftest import RAW
from tests.unit.lambdas.ground_truth.test_ground_truth import s3_event, upload
from tests.unit.lambdas.support import FakeContext

LABELLED_AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DATABASE = "mlops_dev"
CONFIG = ProductionConfig(dataset="churn", curated_bucket=CURATED, database=DATABASE, schema=CHURN_SCHEMA)


TWO = json.dumps({"model_version": "v7", "predictions": [{"probability": 0.5, "label": 1}] * 2})


def traffic(
    rows: pd.DataFrame,
    per_request: int = 5,
    at: datetime = datetime(2026, 11, 27, 9, 10, tzinfo=UTC),
    prefix: str = "evt",
) -> tuple[list[str], dict[str, list[int]]]:
    """Capture lines of ``rows`` whose answers are the OPPOSITE of the true label, and the true labels by id; the
    first half inferred at ``at``, the second an hour later."""
    lines, labels = [], {}
    for start in range(0, len(rows), per_request):
        chunk = rows.iloc[start : start + per_request]
        truth = chunk["churned"].astype(int).tolist()
        answers = {
            "model_version": "v7",
            "predictions": [{"probability": 0.9 if y == 0 else 0.1, "label": 1 - y} for y in truth],
        }
        event_id = f"{prefix}-{start:05d}"
        moment = at if start < len(rows) // 2 else at + timedelta(hours=1)
        lines.append(
            capture_line(
                csv_body(chunk),
                event_id=event_id,
                inference_time=moment.isoformat().replace("+00:00", "Z"),
                output=json.dumps(answers),
            )
        )
        labels[event_id] = truth
    return lines, labels


def joined_rows(rows: pd.DataFrame, **kwargs: Any) -> tuple[Any, dict[str, list[int]]]:
    lines, labels = traffic(rows, **kwargs)
    records = [capture.parse_record(line, "AllTraffic") for line in lines]
    return join(records, {k: list(v) for k, v in labels.items()}, CHURN_SCHEMA), labels


def put_production(
    s3: Any, glue: Any, rows: pd.DataFrame, at: datetime, labelled_at: datetime, prefix: str = "evt"
) -> dict[str, Any]:
    """``rows`` as labelled production rows of churn in the curated bucket, inferred from ``at`` (other tests
    build the data a retrain plans with this way)."""
    joined, _ = joined_rows(rows, at=at, prefix=prefix)
    return write(s3, glue, CONFIG, production_rows(joined, CHURN_SCHEMA, labelled_at, f"s3://{RAW}/labels"))


def test_production_rows_are_the_captured_features_with_the_arrived_label_never_the_prediction() -> None:
    # Given 40 captured rows whose model answered the opposite of the truth, and the truth as labels
    rows = generate(40, seed=3)
    joined, labels = joined_rows(rows)
    # When they become production rows
    production = production_rows(joined, CHURN_SCHEMA, LABELLED_AT, "s3://raw/ground-truth/churn/a.jsonl?versionId=1")
    out = production.rows
    # Then every row is kept with the curated columns of an upload, then the provenance and the partition
    assert len(out) == 40 and production.rejects_by_reason == {}
    assert list(out.columns) == [
        *tf.curated_columns(CHURN_SCHEMA),
        *(name for name, _ in PRODUCTION_COLUMNS),
        "prod_date",
        "prod_hour",
    ]
    # And the target is the arrived label, not the model's answer (no prediction is stored at all)
    assert out["churned"].tolist() == [y for values in labels.values() for y in values]
    assert out["churned"].tolist() == rows["churned"].astype(int).tolist()
    assert not [c for c in out.columns if "predict" in c or "probab" in c]
    # And the features are the ones the endpoint saw, typed as the ETL types them
    assert out["tenure_months"].tolist() == rows["tenure_months"].astype(float).tolist()
    assert out["contract"].astype(str).tolist() == rows["contract"].astype(str).tolist()
    assert out["charges_per_tenure_month"].notna().all()
    # And each row is keyed by (labelled id, request row), partitioned by the capture's hour
    assert out["customer_id"].tolist()[:6] == [f"evt-00000:{i}" for i in range(5)] + ["evt-00005:0"]
    assert out["prod_model_version"].unique().tolist() == ["v7"]
    assert sorted(set(zip(out["prod_date"], out["prod_hour"], strict=True))) == [
        ("2026-11-27", "09"),
        ("2026-11-27", "10"),
    ]


def test_rows_that_fail_the_etl_rules_are_counted_with_their_reason_and_quarantined_not_kept() -> None:
    # Given captured rows of which one is out of range, one misses a required value, one has an unknown category
    rows = generate(10, seed=4)
    rows.loc[0, "tenure_months"] = 500
    rows.loc[1, "age"] = None
    rows.loc[2, "contract"] = "weekly"
    joined, _ = joined_rows(rows)
    # And a request of two rows in a body the decoder cannot read, and a short one-row request
    extra = [
        (
            capture_line(csv_body(rows.iloc[5:7]), "application/x-npy", encoding="BASE64", event_id="npy", output=TWO),
            [0, 1],
        ),
        (capture_line("1,2\n", event_id="short"), [1]),
    ]
    for line, values in extra:
        record = capture.parse_record(line, "AllTraffic")
        more = join([record], {record.event_id: values}, CHURN_SCHEMA)
        joined.records.update(more.records)
        joined.rows.extend(more.rows)
    # When they become production rows
    production = production_rows(joined, CHURN_SCHEMA, LABELLED_AT, "s3://raw/x")
    # Then the bad rows are counted by the ETL's reasons and only the valid ones are kept
    reasons = production.rejects_by_reason
    assert reasons["range:tenure_months"] == 1 and reasons["null:age"] == 1 and reasons["category:contract"] == 1
    assert reasons["request"] == 2  # the undecodable body's rows: not one feature row per label
    assert reasons["null:support_calls"] == 1  # the short request "1,2": its first missing required feature
    assert sum(reasons.values()) == 6 and len(production.rows) == 10 - 3
    assert 500.0 not in production.rows["tenure_months"].tolist()
    # And the rejected rows are kept for the quarantine: values as read, the reason, where each came from
    rejected = production.rejected
    assert rejected is not None and len(rejected) == 6
    assert sorted(rejected["reject_reason"]) == sorted(
        ["range:tenure_months", "null:age", "category:contract", "request", "request", "null:support_calls"]
    )
    out_of_range = rejected[rejected["reject_reason"] == "range:tenure_months"].iloc[0]
    assert float(out_of_range["tenure_months"]) == 500 and out_of_range["customer_id"] == "evt-00000:0"
    assert (out_of_range["prod_inference_id"], out_of_range["prod_request_row"]) == ("evt-00000", 0)
    undecodable = rejected[rejected["reject_reason"] == "request"]
    assert set(undecodable["prod_inference_id"]) == {"npy"} and sorted(undecodable["prod_request_row"]) == [0, 1]
    assert set(rejected["prod_label_source"]) == {"s3://raw/x"} and "prod_date" not in rejected.columns


def read_parquet(s3: Any, key: str) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(s3.get_object(Bucket=CURATED, Key=key)["Body"].read())).to_pandas()


def test_written_by_hour_catalogued_with_projection_and_a_redelivered_batch_adds_nothing(aws: Any) -> None:
    aws.create_bucket(Bucket=CURATED)
    glue = boto3.client("glue")
    glue.create_database(DatabaseInput={"Name": DATABASE})
    joined, _ = joined_rows(generate(40, seed=5))
    production = production_rows(joined, CHURN_SCHEMA, LABELLED_AT, "s3://raw/x")
    # When the batch is written
    first = write(aws, glue, CONFIG, production)
    # Then one Parquet file per capture hour holds the rows, under production/<dataset>/prod_date=/prod_hour=/
    keys = sorted(o["Key"] for o in aws.list_objects_v2(Bucket=CURATED)["Contents"])
    assert len(keys) == 2 and first["rows"] == 40 and first["table_change"] == "created"
    assert keys[0].startswith("production/churn/prod_date=2026-11-27/prod_hour=09/") and keys[0].endswith(".parquet")
    assert sum(len(read_parquet(aws, k)) for k in keys) == 40
    assert "prod_date" not in read_parquet(aws, keys[0]).columns  # the partition is the path
    # And the table projects its partitions from the path (nothing to add per batch)
    table = glue.get_table(DatabaseName=DATABASE, Name="churn_production")["Table"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["prod_date", "prod_hour"]
    assert table["Parameters"]["projection.enabled"] == "true"
    assert table["Parameters"]["storage.location.template"].endswith(
        "production/churn/prod_date=${prod_date}/prod_hour=${prod_hour}/"
    )
    # When the same labels arrive again (a redelivered label file)
    again = write(aws, glue, CONFIG, production_rows(joined, CHURN_SCHEMA, LABELLED_AT, "s3://raw/x"))
    # Then they land in the same objects: nothing is added, and the table is left as it is
    assert sorted(o["Key"] for o in aws.list_objects_v2(Bucket=CURATED)["Contents"]) == keys
    assert again["files"] == first["files"] and again["table_change"] == "unchanged"


def test_a_batch_without_valid_rows_writes_only_its_quarantine_and_needs_no_table(aws: Any) -> None:
    aws.create_bucket(Bucket=CURATED)
    rows = generate(5, seed=6)
    rows["age"] = 5  # below the declared minimum
    joined, _ = joined_rows(rows)
    result = write(aws, boto3.client("glue"), CONFIG, production_rows(joined, CHURN_SCHEMA, LABELLED_AT, "s3://x"))
    assert result["rows"] == 0 and result["rejects_by_reason"] == {"range:age": 5} and result["files"] == []
    # Then the rejected rows are quarantined with their reason beside the uploads' quarantine, nothing else written
    (key,) = [o["Key"] for o in aws.list_objects_v2(Bucket=CURATED)["Contents"]]
    assert key.startswith("quarantine/dataset=churn/production/") and key.endswith("/rejected.jsonl")
    assert result["quarantined"] == f"s3://{CURATED}/{key}"
    lines = [json.loads(line) for line in aws.get_object(Bucket=CURATED, Key=key)["Body"].read().splitlines()]
    assert [(line["reject_reason"], float(line["age"])) for line in lines] == [("range:age", 5.0)] * 5
    assert {line["prod_label_source"] for line in lines} == {"s3://x"}
    # And the same label file again overwrites its own quarantine
    write(aws, boto3.client("glue"), CONFIG, production_rows(joined, CHURN_SCHEMA, LABELLED_AT, "s3://x"))
    assert [o["Key"] for o in aws.list_objects_v2(Bucket=CURATED)["Contents"]] == [key]


def test_the_table_columns_follow_the_curated_types() -> None:
    joined, _ = joined_rows(generate(10, seed=7))
    table = table_input(CONFIG, production_rows(joined, CHURN_SCHEMA, LABELLED_AT, "s3://x").rows)
    types = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}
    assert types["tenure_months"] == "double" and types["contract"] == "string" and types["churned"] == "bigint"
    assert types["prod_request_row"] == "bigint" and types["customer_id"] == "string"


@pytest.fixture
def production_environment(monkeypatch: pytest.MonkeyPatch, aws: Any) -> None:
    aws.create_bucket(Bucket=CURATED)
    boto3.client("glue").create_database(DatabaseInput={"Name": DATABASE})
    for name, value in {
        "ARTIFACTS_BUCKET": ARTIFACTS,
        "CURATED_BUCKET": CURATED,
        "GLUE_DATABASE": DATABASE,
        "IDEMPOTENCY_TABLE": "idempotency",
        "POWERTOOLS_METRICS_NAMESPACE": "MLOps/test",
    }.items():
        monkeypatch.setenv(name, value)
    for function in (gt_handler.settings, gt_handler.evaluate_once):
        function.cache_clear()


def test_the_handler_keeps_the_labelled_rows_and_says_so_in_the_summary(aws: Any, production_environment: None) -> None:
    # Given captured churn traffic and its labels uploaded under ground-truth/churn/
    lines, labels = traffic(generate(30, seed=8))
    put_capture(aws, lines, datetime(2026, 11, 27, 9, tzinfo=UTC))
    body = "".join(f"{i},{y}\n" for i, ys in labels.items() for y in ys)
    obj = upload(aws, "ground-truth/churn/day1.csv", body)
    # When the label upload is handled
    summary = gt_handler.handler(s3_event(obj), FakeContext())
    # Then the 30 labelled rows are in the curated zone, and the summary names them
    assert summary["production"]["rows"] == 30 and summary["production"]["table"] == f"{DATABASE}.churn_production"
    written = [o["Key"] for o in aws.list_objects_v2(Bucket=CURATED, Prefix="production/churn/")["Contents"]]
    frame = pd.concat([read_parquet(aws, k) for k in written])
    assert len(frame) == 30 and frame["prod_label_source"].str.startswith(f"s3://{RAW}/ground-truth/churn/").all()
    assert sorted(frame["customer_id"]) == sorted(f"{i}:{r}" for i, ys in labels.items() for r in range(len(ys)))
    assert set(frame.columns) >= set(FEATURES)


def test_a_label_file_that_matches_no_capture_writes_nothing(aws: Any) -> None:
    aws.create_bucket(Bucket=CURATED)
    production = production_rows(JoinResult(unmatched_ids=["nope"]), CHURN_SCHEMA, LABELLED_AT, "s3://x")
    assert production.rows.empty and production.rejects_by_reason == {}
    assert write(aws, boto3.client("glue"), CONFIG, production)["files"] == []
    assert "Contents" not in aws.list_objects_v2(Bucket=CURATED)


def test_the_provenance_and_partition_columns_are_names_no_declaration_may_take() -> None:
    names = [name for name, _ in PRODUCTION_COLUMNS] + list(PARTITION_KEYS)
    assert all(name.startswith(RESERVED_PREFIX) for name in names)
    with pytest.raises(SchemaError, match="names starting with 'prod_' are the platform's"):
        DatasetSchema.from_dict({**CHURN_SCHEMA.to_dict(), "target": "prod_label"})
