"""The ETL for every task: derived row ids without a key, stratified splits, labels and numeric targets."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.data.generator import to_csv_bytes
from pipelines.etl import transforms as tf
from pipelines.schema import ROW_ID, SPLITS
from stacks.config import QualityGate
from stacks.datasets import dataset_schema

SAMPLES = Path(__file__).resolve().parents[4] / "pipelines" / "data" / "sample"
TICKETS = dataset_schema("tickets")
ENERGY = dataset_schema("energy")
GATE = QualityGate()


@pytest.fixture(scope="module")
def tickets() -> pd.DataFrame:
    return pd.read_csv(SAMPLES / "tickets.csv", dtype=str, keep_default_na=False)


def _run(frame: pd.DataFrame, schema=TICKETS, gate: QualityGate = GATE) -> tf.TransformResult:  # type: ignore[no-untyped-def]
    return tf.run_transform(to_csv_bytes(frame), "csv", schema, gate)


# ---- row ids without a key -------------------------------------------------------------------------


def test_rows_without_a_key_get_a_content_id_that_does_not_depend_on_order_or_format(tickets: pd.DataFrame) -> None:
    # Given the tickets sample (no key column), shuffled, and as Parquet
    shuffled = tickets.sample(frac=1.0, random_state=3).reset_index(drop=True)
    parquet = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(pd.read_csv(SAMPLES / "tickets.csv"), preserve_index=False), parquet)

    # When each goes through the ETL
    first = _run(tickets).curated
    again = _run(shuffled).curated
    from_parquet = tf.run_transform(parquet.getvalue(), "parquet", TICKETS, GATE).curated

    # Then every row has a 16-hex-digit row_id, and the same row gets the same id and split every time
    assert first.columns[0] == ROW_ID and first[ROW_ID].str.fullmatch(r"[0-9a-f]{16}").all()
    expected = first.set_index(ROW_ID)["split"].astype(str)
    for other in (again, from_parquet):
        pd.testing.assert_series_equal(other.set_index(ROW_ID)["split"].astype(str).loc[expected.index], expected)


def test_the_row_id_is_the_same_whichever_way_the_numbers_were_parsed(tickets: pd.DataFrame) -> None:
    # Given the sample, and the same sample plus one row whose number does not parse (the parser then reads the
    # whole file as text instead of numbers)
    broken = pd.concat([tickets, tickets.head(1).assign(devices="three")], ignore_index=True)

    # When both go through the ETL
    clean, with_text = _run(tickets), _run(broken)

    # Then the extra row is rejected for its type and every other row keeps its id
    assert with_text.report["rejects_by_reason"] == {"type:devices": 1}
    assert sorted(with_text.curated[ROW_ID]) == sorted(clean.curated[ROW_ID])


def test_identical_rows_share_an_id_and_a_split_and_are_not_rejected(tickets: pd.DataFrame) -> None:
    # Given a file where one row appears three times (no key: nothing says they are duplicates of one record)
    repeated = pd.concat([tickets, tickets.iloc[[5, 5]]], ignore_index=True)

    # When it goes through the ETL
    result = _run(repeated)

    # Then nothing is rejected, and the three copies have one id and one split (no copy leaks into the test split)
    assert result.report["rows"]["rejected"] == 0
    copies = result.curated[result.curated[ROW_ID] == result.curated[ROW_ID].value_counts().index[0]]
    assert len(copies) == 3 and copies["split"].nunique() == 1


def test_partitions_split_like_the_whole_file(tickets: pd.DataFrame) -> None:
    # Given the parsed sample cut into three partitions (without a key no check spans rows)
    parsed = tf.parse_csv(to_csv_bytes(tickets), TICKETS)
    payloads = [parsed.frame.iloc[start : start + 1000] for start in (0, 1000, 2000)]
    parts = [tf.transform_rows(payload, TICKETS, GATE)[0] for payload in payloads]

    # When the partitions' rows are combined and split as the Glue job does
    combined = tf.assign_splits(pd.concat(parts, ignore_index=True), TICKETS, GATE)

    # Then the rows and their splits are those of the single-process run (stratification spans partitions)
    whole = tf.run_transform(to_csv_bytes(tickets), "csv", TICKETS, GATE).curated
    assert [len(p) for p in payloads] == [1000, 1000, 1000]
    pd.testing.assert_frame_equal(combined, whole)


# ---- stratified splits -----------------------------------------------------------------------------


def test_a_multiclass_split_gives_each_split_its_share_of_every_class(tickets: pd.DataFrame) -> None:
    # Given the tickets sample (4 classes of different sizes)
    # When it goes through the ETL
    report = _run(tickets).report

    # Then each class is split ceil(15%) test, ceil(30%) - that validation, the rest train: exact, class by class
    classes = report["target"]["classes"]
    for label, count in classes.items():
        test = int(np.ceil(round(0.15 * count, 9)))
        held_out = int(np.ceil(round(0.30 * count, 9)))
        assert report["splits"]["test"]["classes"][label] == test
        assert report["splits"]["validation"]["classes"][label] == held_out - test
        assert report["splits"]["train"]["classes"][label] == count - held_out
    assert report["gate"]["passed"]


def test_stratified_codes_rank_each_class_by_hash() -> None:
    # Given 10 rows of class 0 and 4 of class 1 with known hashes
    hashes = np.arange(14, dtype=np.uint64)[::-1].copy()
    classes = np.array([0] * 10 + [1] * 4)

    # When split 20% test, 20% validation
    codes = tf.stratified_split_codes(hashes, classes, validation_share=0.2, test_share=0.2)

    # Then within each class the lowest hashes go to test (2), the next to validation (1), the rest to train (0)
    assert codes[:10].tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 2, 2]
    assert codes[10:].tolist() == [0, 0, 1, 2]


def test_a_class_missing_from_a_split_fails_the_gate_with_that_reason(tickets: pd.DataFrame) -> None:
    # Given a file where the class 'account' has only 2 rows (too few for three splits)
    accounts = tickets.index[tickets["team"] == "account"]
    thin = tickets.drop(accounts[2:]).reset_index(drop=True)

    # When it goes through the ETL
    result = _run(thin)

    # Then the gate fails naming the class and the split it is missing from (one row to test, one to train)
    assert not result.gate_passed
    assert result.report["splits"]["test"]["classes"]["account"] == 1
    assert result.gate_reasons == ["class 'account' has no rows in the validation split"]


def test_binary_keeps_the_per_row_split_unless_stratification_is_declared() -> None:
    # Given the churn declaration (binary: per-row hash rule) and the same declaration with stratify: true
    churn = dataset_schema("churn")
    raw = (SAMPLES / "churn.csv").read_bytes()

    # When the sample goes through both
    per_row = tf.run_transform(raw, "csv", churn, GATE).report["splits"]
    stratified = tf.run_transform(raw, "csv", replace(churn, stratify=True), GATE).report["splits"]

    # Then per-row shares only approximate 15% (today's assignment), stratified ones are exact per class
    assert per_row["test"]["rows"] == 770
    assert stratified["test"]["classes"] == {"0": 530, "1": 221}  # ceil(0.15 * 3527), ceil(0.15 * 1473)


# ---- targets ---------------------------------------------------------------------------------------


def test_a_label_outside_the_declared_ones_or_a_missing_one_is_rejected(tickets: pd.DataFrame) -> None:
    # Given rows with an undeclared team, a missing team and a team in the wrong case
    broken = tickets.copy()
    broken.loc[0, "team"] = "legal"
    broken.loc[1, "team"] = ""
    broken.loc[2, "team"] = "Billing"

    # When they go through the ETL
    result = _run(broken)

    # Then each is rejected with its reason; the curated target keeps the declared labels
    reasons = dict(zip(result.rejected[tf.SOURCE_LINE], result.rejected[tf.REJECT_REASON], strict=True))
    assert reasons == {2: "target", 3: "null:team", 4: "target"}
    assert list(result.curated["team"].cat.categories) == list(TICKETS.class_labels)


def test_integer_class_labels_are_read_as_numbers() -> None:
    # Given a multiclass declaration with labels 0, 1, 2 and a file with 1.0 and an undeclared 3
    schema = replace(TICKETS, labels=(0, 1, 2))
    frame = pd.DataFrame({**{f.name: [None] * 4 for f in TICKETS.features}, "team": ["0", "1.0", "2", "3"]})
    frame = frame.assign(channel="chat", product="tv", devices="1", account_age_days="10")

    # When it goes through the ETL / Then 1.0 is the label 1 and 3 is rejected
    result = _run(frame, schema, replace(GATE, min_rows=1))
    assert result.curated["team"].dtype == np.int64 and sorted(result.curated["team"]) == [0, 1, 2]
    assert result.rejected[tf.REJECT_REASON].tolist() == ["target"]


def test_a_regression_target_must_be_a_number_and_is_reported_like_a_feature() -> None:
    # Given the energy sample with one target that is not a number and one missing
    frame = pd.read_csv(SAMPLES / "energy.csv", dtype=str, keep_default_na=False)
    frame.loc[0, "monthly_kwh"] = "a lot"
    frame.loc[1, "monthly_kwh"] = ""

    # When it goes through the ETL
    result = tf.run_transform(to_csv_bytes(frame), "csv", ENERGY, GATE)

    # Then those two rows are rejected; the target's statistics are the baseline of the model's output
    assert result.report["rejects_by_reason"] == {"null:monthly_kwh": 1, "target": 1}
    target = result.report["target"]
    assert target["task"] == "regression" and target["kind"] == "numeric" and target["count"] == 1998
    assert target["histogram"]["edges"] and len(target["sketch"]["values"]) == 100
    assert set(result.report["splits"]["test"]) == {"rows", "target_mean"}
    assert result.curated["monthly_kwh"].dtype == np.float64 and result.gate_passed


def test_every_task_writes_curated_parquet_with_its_key_and_typed_target(tickets: pd.DataFrame) -> None:
    # Given the three samples
    results = {
        "tickets": (TICKETS, _run(tickets)),
        "energy": (ENERGY, tf.run_transform((SAMPLES / "energy.csv").read_bytes(), "csv", ENERGY, GATE)),
    }
    for schema, result in results.values():
        # When the splits are written
        files = tf.split_parquet(result.curated, schema)

        # Then each split's file holds the curated columns: the key (declared or derived) first
        assert set(files) == set(SPLITS)
        table = pq.read_table(pa.BufferReader(files["test"]))
        assert table.column_names == tf.curated_columns(schema)
        assert table.column_names[0] == schema.key_column
