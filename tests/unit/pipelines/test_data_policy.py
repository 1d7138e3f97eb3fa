"""The data policy (issue 17): windows, minimums, caps, deduplication, the test-set choice and the fallbacks."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from pipelines.data_policy import (
    UPLOAD_ONLY,
    WITH_PRODUCTION,
    ProductionRow,
    UploadSplits,
    deduplicate,
    plan,
    production_cap,
    select,
)
from pipelines.schema import DataPolicy, DatasetSchema, SchemaError
from stacks.datasets import DATASETS_DIR, read_schema
from tests.samples import CHURN_SCHEMA

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
UPLOAD = UploadSplits(version="v1", train=700, validation=150, test=150)
POLICY = DataPolicy(
    production_window_days=7, min_labelled_rows=100, max_production_share=0.5, test_from_production_rows=50
)
SCHEMA = dataclasses.replace(CHURN_SCHEMA, data_policy=POLICY)
UNDECLARED = dataclasses.replace(CHURN_SCHEMA, data_policy=None)  # churn.yaml without its data_policy


def rows(
    n: int,
    *,
    start: datetime = NOW - timedelta(hours=1),
    step: timedelta = timedelta(minutes=1),
    labels=(0, 1),
    prefix: str = "e",
) -> list[ProductionRow]:
    """``n`` rows going back in time from ``start``, labels cycling through ``labels``, labelled an hour later."""
    out = []
    for i in range(n):
        moment = start - i * step
        out.append(
            ProductionRow(f"{prefix}{i:05d}:0", moment, min(moment + timedelta(hours=1), NOW), labels[i % len(labels)])
        )
    return out


def test_without_a_declared_policy_a_retrain_uses_the_latest_upload_as_today() -> None:
    decided = plan(UNDECLARED, UPLOAD, rows(5000), NOW)
    assert decided["mode"] == UPLOAD_ONLY and decided["test_from"] == "upload" and decided["production"] is None
    assert decided["upload"] == {"version": "v1", "train_rows": 700, "validation_rows": 150, "test_rows": 150}
    assert "no data_policy" in decided["reason"]
    json.dumps(decided)  # the execution input carries it


def test_enough_labelled_rows_train_and_the_most_recent_ones_test() -> None:
    available = rows(300)
    decided = plan(SCHEMA, UPLOAD, available, NOW)
    assert decided["mode"] == WITH_PRODUCTION and decided["test_from"] == "production"
    part = decided["production"]
    assert (part["rows_available"], part["test_rows"], part["train_rows"], part["capped_rows"]) == (300, 50, 250, 0)
    assert decided["upload"]["test_rows"] == 0 and decided["upload"]["train_rows"] == 700
    chosen = select(decided, available)
    # the test rows are the newest, the training rows the next ones: no row is in both
    assert chosen["test"] == available[:50] and chosen["train"] == available[50:300]
    assert min(r.inference_time for r in chosen["test"]) > max(r.inference_time for r in chosen["train"])


def test_the_window_keeps_only_the_last_days_and_rows_labelled_by_the_decision() -> None:
    recent = rows(120)
    old = rows(500, start=NOW - timedelta(days=8), prefix="old")  # inferred before the 7-day window
    late = [
        dataclasses.replace(r, key=f"late{i}", labelled_at=NOW + timedelta(minutes=5)) for i, r in enumerate(rows(80))
    ]
    decided = plan(SCHEMA, UPLOAD, recent + old + late, NOW)
    assert decided["production"]["rows_available"] == 120
    assert (
        decided["production"]["start"] == "2026-11-24T12:00:00Z"
        and decided["production"]["end"] == "2026-12-01T12:00:00Z"
    )
    # 120 < 100 + 50: the upload's test split decides, all 120 train
    assert decided["test_from"] == "upload" and decided["upload"]["test_rows"] == 150
    assert decided["production"]["train_rows"] == 120 and "upload's test split" in decided["reason"]
    assert {r.key for r in select(decided, recent + old + late)["train"]} == {r.key for r in recent}


def test_too_few_labels_fall_back_to_the_upload_with_the_reason() -> None:
    decided = plan(SCHEMA, UPLOAD, rows(99), NOW)
    assert decided["mode"] == UPLOAD_ONLY and decided["production"]["rows_available"] == 99
    assert decided["reason"].startswith("99 labelled production rows in the last 7 days < min_labelled_rows 100")
    assert select(decided, rows(99)) == {"train": [], "test": []}
    # and with no label at all (labels never arrived)
    assert plan(SCHEMA, UPLOAD, [], NOW)["reason"].startswith("0 labelled production rows")


def test_a_class_missing_from_the_window_falls_back_to_the_upload() -> None:
    decided = plan(SCHEMA, UPLOAD, rows(400, labels=(0,)), NOW)
    assert decided["mode"] == UPLOAD_ONLY and decided["reason"].startswith("class 1 missing from the labelled window")


def test_a_class_missing_from_the_recent_rows_keeps_the_upload_test_split() -> None:
    available = rows(50, labels=(0,)) + rows(300, start=NOW - timedelta(hours=3), prefix="f")
    decided = plan(SCHEMA, UPLOAD, available, NOW)
    assert decided["mode"] == WITH_PRODUCTION and decided["test_from"] == "upload"
    assert "class 1 missing from the 50 most recent labelled rows" in decided["reason"]
    assert decided["production"]["test_rows"] == 0


def test_production_rows_are_capped_at_their_share_of_the_training_rows_keeping_the_newest() -> None:
    available = rows(2000)
    decided = plan(SCHEMA, UPLOAD, available, NOW)
    part = decided["production"]
    # share 0.5 of (700 upload + p): p <= 700
    assert (part["test_rows"], part["train_rows"], part["capped_rows"]) == (50, 700, 1250)
    assert "1250 older ones over the max_production_share 0.5 cap" in decided["reason"]
    assert select(decided, available)["train"] == available[50:750]
    assert production_cap(dataclasses.replace(POLICY, max_production_share=1.0), 700) is None
    assert production_cap(dataclasses.replace(POLICY, max_production_share=0.2), 800) == 200


def test_a_row_labelled_twice_counts_once_with_its_latest_label() -> None:
    first = rows(150, start=NOW - timedelta(hours=2))  # all labelled, and labelled again, before the decision
    again = [
        dataclasses.replace(r, labelled_at=r.labelled_at + timedelta(seconds=30), label=1 - int(r.label))
        for r in first[:40]
    ]
    unique, dropped = deduplicate(first + again)
    assert len(unique) == 150 and dropped == 40
    assert {r.key: r.label for r in unique}[first[0].key] == 1 - int(first[0].label)
    # the order of the input does not matter
    assert sorted(deduplicate(again + first)[0], key=lambda r: r.key) == sorted(unique, key=lambda r: r.key)
    decided = plan(SCHEMA, UPLOAD, first + again + first, NOW)  # the same label file delivered twice as well
    assert decided["production"]["rows_available"] == 150 and decided["production"]["duplicates_dropped"] == 190


def test_a_regression_dataset_has_no_classes_to_miss() -> None:
    energy = dataclasses.replace(
        read_schema(DATASETS_DIR / "energy.yaml"), data_policy=DataPolicy(min_labelled_rows=10)
    )
    decided = plan(energy, UPLOAD, rows(20, labels=(812.5,)), NOW)
    assert decided["mode"] == WITH_PRODUCTION and decided["production"]["train_rows"] == 20


def test_select_refuses_a_plan_whose_rows_are_gone() -> None:
    decided = plan(SCHEMA, UPLOAD, rows(300), NOW)
    with pytest.raises(ValueError, match="removed after the plan"):
        select(decided, rows(200))


def test_the_policy_declaration_defaults_and_round_trip() -> None:
    declared = DatasetSchema.from_dict({**UNDECLARED.to_dict(), "data_policy": {"production_window_days": 3}})
    assert declared.data_policy == DataPolicy(production_window_days=3)
    assert DatasetSchema.from_dict(declared.to_dict()) == declared
    assert "data_policy" not in UNDECLARED.to_dict()
    with pytest.raises(SchemaError) as error:
        DatasetSchema.from_dict({**CHURN_SCHEMA.to_dict(), "data_policy": {"min_labelled_rows": 0}})
    assert error.value.field == "data_policy.min_labelled_rows"


def test_the_churn_declarations_policy_at_the_demos_volumes_trains_and_tests_on_the_drifted_hours() -> None:
    # Given churn.yaml's policy, its sample's upload (5,000 rows: 3,500 train) and the demo's labelled traffic: an
    # hour of 600 steady rows, then three hours of 600 drifted rows each, newest last
    upload = UploadSplits(version="sample", train=3500, validation=750, test=750)
    hours = [
        rows(600, start=NOW - timedelta(hours=3 - h), step=timedelta(seconds=5), prefix=f"h{h}-") for h in range(4)
    ]
    # When the drift alarm's retrain plans right after the third drifted hour
    decided = plan(CHURN_SCHEMA, upload, [row for hour in hours for row in hour], NOW)
    # Then the 500 newest labelled rows (the last drifted hour) test and the other 1,900 train beside the upload
    assert decided["mode"] == WITH_PRODUCTION and decided["test_from"] == "production"
    assert decided["production"]["test_rows"] == 500 and decided["production"]["train_rows"] == 1900
    assert decided["production"]["capped_rows"] == 0  # 1,900 of 5,400 training rows: within the 0.5 share
    test = select(decided, [row for hour in hours for row in hour])["test"]
    assert {row.key.split("-")[0] for row in test} == {"h3"}
    # And with a quiet endpoint (400 labelled rows) the upload alone trains and tests, with the reason
    quiet = plan(CHURN_SCHEMA, upload, hours[3][:400], NOW)
    assert quiet["mode"] == UPLOAD_ONLY and "400 labelled production rows" in quiet["reason"]
