"""A retrain's channels composed from its data plan under moto (issue 17): the upload's train split plus the
plan's labelled production rows, the test set from the newest production rows; the same plan, the same files."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pandas as pd
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from lambdas.prepare_training.compose import compose
from lambdas.shared.production_data import plan_retrain, read_rows
from pipelines.data.generator import generate, to_csv_bytes
from pipelines.etl import transforms as tf
from pipelines.schema import DataPolicy
from stacks.config import QualityGate
from tests.samples import CHURN_SCHEMA
from tests.unit.lambdas.drift_monitor.helpers import CURATED
from tests.unit.lambdas.ground_truth.test_production import DATABASE, put_production

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = DataPolicy(
    production_window_days=7, min_labelled_rows=60, max_production_share=0.5, test_from_production_rows=40
)
SCHEMA = dataclasses.replace(CHURN_SCHEMA, data_policy=POLICY)
VERSION = "v1"


@pytest.fixture
def aws() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("s3")


@pytest.fixture
def upload(aws: Any) -> dict[str, Any]:
    """The ETL's output for a 400-row upload: one Parquet file per split, and the view prepare makes of it."""
    aws.create_bucket(Bucket=CURATED)
    boto3.client("glue").create_database(DatabaseInput={"Name": DATABASE})
    result = tf.run_transform(to_csv_bytes(generate(400, seed=1)), "csv", CHURN_SCHEMA, QualityGate())
    view: dict[str, Any] = {"version": VERSION, "report_uri": "s3://c/r.json", "rows": result.report["rows"]}
    splits = {}
    for split, body in tf.split_parquet(result.curated, CHURN_SCHEMA).items():
        prefix = f"curated/dataset=churn/version={VERSION}/split={split}/"
        aws.put_object(Bucket=CURATED, Key=f"{prefix}part-00000.parquet", Body=body)
        view[f"{split}_uri"] = f"s3://{CURATED}/{prefix}"
        splits[split] = int((result.curated["split"] == split).sum())
    return {"view": view, "lineage": {"version": VERSION, "splits": splits}}


def parquet(s3: Any, uri: str) -> pd.DataFrame:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    return pd.concat(
        pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())).to_pandas() for k in keys
    )


def test_production_rows_join_the_upload_for_training_and_the_newest_decide(aws: Any, upload: dict[str, Any]) -> None:
    # Given 120 labelled production rows of the last day; the same label file delivered again (it overwrites its
    # own files), and a later file labelling 60 of the rows again (counted once: the latest label)
    glue = boto3.client("glue")
    rows = generate(120, seed=30)
    put_production(aws, glue, rows, NOW - timedelta(hours=6), NOW - timedelta(hours=3))
    put_production(aws, glue, rows, NOW - timedelta(hours=6), NOW - timedelta(hours=3))
    put_production(aws, glue, rows.iloc[:60], NOW - timedelta(hours=6), NOW - timedelta(hours=1))
    # And old ones outside the 7-day window
    put_production(aws, glue, generate(50, seed=31), NOW - timedelta(days=9), NOW - timedelta(days=9), prefix="old")
    # When a retrain plans at NOW and prepare composes its channels
    data_plan = plan_retrain(aws, CURATED, SCHEMA, upload["lineage"], NOW)
    curated = compose(aws, CURATED, SCHEMA, upload["view"], data_plan, "retrain-1")
    # Then the plan counts each row once, in the window only: 40 test, 80 train
    part = data_plan["production"]
    assert (part["rows_available"], part["duplicates_dropped"], part["test_rows"], part["train_rows"]) == (
        120,
        60,
        40,
        80,
    )
    # And the training channel holds the upload's train split then the 80 production rows, in the curated format
    train = parquet(aws, curated["train_uri"])
    upload_train = parquet(aws, upload["view"]["train_uri"])
    assert curated["train_uri"] == f"s3://{CURATED}/curated/composed/churn/retrain-1/split=train/"
    assert len(train) == len(upload_train) + 80 and list(train.columns) == list(upload_train.columns)
    assert train[CHURN_SCHEMA.key_column].str.startswith("evt-").sum() == 80
    # And the test channel is the 40 newest production rows; validation stays the upload's
    test = parquet(aws, curated["test_uri"])
    assert len(test) == 40 and test[CHURN_SCHEMA.key_column].str.startswith("evt-").all()
    assert set(test[CHURN_SCHEMA.key_column]).isdisjoint(train[CHURN_SCHEMA.key_column])
    assert curated["validation_uri"] == upload["view"]["validation_uri"]
    # And lineage says what each channel holds
    data = curated["data"]
    assert data["test_from"] == "production" and data["production"]["train_rows"] == 80
    assert data["upload"] == {"version": VERSION, "train_rows": len(upload_train), "test_rows": 0}
    assert data["production"]["window_start"] == "2026-11-24T12:00:00Z"
    # When the step is retried
    again = compose(aws, CURATED, SCHEMA, upload["view"], data_plan, "retrain-1")
    # Then it composes the same channels
    assert again == curated and len(parquet(aws, again["train_uri"])) == len(train)


def test_without_enough_labels_the_upload_trains_and_tests_and_the_reason_is_kept(
    aws: Any, upload: dict[str, Any]
) -> None:
    put_production(aws, boto3.client("glue"), generate(30, seed=32), NOW - timedelta(hours=3), NOW - timedelta(hours=1))
    data_plan = plan_retrain(aws, CURATED, SCHEMA, upload["lineage"], NOW)
    curated = compose(aws, CURATED, SCHEMA, upload["view"], data_plan, "retrain-2")
    assert {k: curated[k] for k in ("train_uri", "validation_uri", "test_uri")} == {
        k: upload["view"][k] for k in ("train_uri", "validation_uri", "test_uri")
    }
    assert curated["data"]["mode"] == "upload_only" and curated["data"]["test_from"] == "upload"
    assert curated["data"]["reason"].startswith("30 labelled production rows in the last 7 days < min_labelled_rows 60")
    assert "Contents" not in aws.list_objects_v2(Bucket=CURATED, Prefix="curated/composed/")


def test_an_upload_run_has_no_plan_and_is_left_as_it_was(aws: Any, upload: dict[str, Any]) -> None:
    assert compose(aws, CURATED, SCHEMA, upload["view"], None, "etl-run") == upload["view"]


def test_reading_production_rows_reads_only_the_days_of_the_window(aws: Any, upload: dict[str, Any]) -> None:
    glue = boto3.client("glue")
    put_production(aws, glue, generate(20, seed=33), NOW - timedelta(days=2), NOW - timedelta(days=2))
    put_production(aws, glue, generate(20, seed=34), NOW - timedelta(days=20), NOW - timedelta(days=20), prefix="o")
    rows = read_rows(aws, CURATED, SCHEMA, NOW - timedelta(days=3), NOW)
    assert len(rows) == 20 and all(r.key.startswith("evt-") for r in rows)
    assert {r.label for r in rows} <= {0, 1}
