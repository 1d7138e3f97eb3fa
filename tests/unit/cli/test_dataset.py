"""``mlops dataset init`` drafts a declaration from a sample; ``mlops dataset check`` runs the ETL's rules locally."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from cli import dataset as cmd
from localcloud import cli as mlops
from pipelines.data.generator import to_csv_bytes
from stacks.datasets import load_declaration

SAMPLES = Path(__file__).resolve().parents[3] / "pipelines" / "data" / "sample"


def _frame(rows: int = 60, seed: int = 0) -> pd.DataFrame:
    """A small sample: a numeric and a categorical feature, a 0/1 target, no key."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": np.round(rng.uniform(10, 90, rows), 1),
            "colour": rng.choice(["red", "green", "blue"], rows),
            "bought": rng.integers(0, 2, rows),
        }
    )


def _init(tmp_path: Path, frame: pd.DataFrame, *args: str, name: str = "shop") -> tuple[int, dict[str, Any], str]:
    """Run ``mlops dataset init`` on ``frame`` (as CSV); (exit code, the written YAML parsed, its text)."""
    sample = tmp_path / "sample.csv"
    sample.write_bytes(to_csv_bytes(frame))
    folder = tmp_path / "datasets"
    code = mlops.main(["dataset", "init", str(sample), "--name", name, "--datasets", str(folder), *args])
    out = folder / f"{name}.yaml"
    text = out.read_text() if out.exists() else ""
    return code, (yaml.safe_load(text) if text else {}), text


def _features(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in data["features"]}


def test_a_file_without_a_key_gets_no_key_and_a_valid_draft(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a sample without any ID-like column
    code, data, text = _init(tmp_path, _frame(), "--target", "bought")

    # Then the draft declares no key (row ids from content), infers binary 0/1, and loads like the stack loads it
    assert code == 0
    assert "key" not in data
    assert (data["task"], data["labels"]) == ("binary", [0, 1])
    assert _features(data)["amount"]["kind"] == "numeric" and _features(data)["colour"]["kind"] == "categorical"
    assert load_declaration(tmp_path / "datasets" / "shop.yaml").schema.key is None
    assert "no key column: the ETL derives each row's id from its content" in capsys.readouterr().out
    assert "# REVIEW" in text


def test_string_labels_make_a_multiclass_or_a_binary_with_its_positive_label(tmp_path: Path) -> None:
    # Given a text target with three values, and one with two
    three = _frame().assign(bought=np.resize(["none", "some", "lots"], 60))
    two = _frame().assign(bought=np.resize(["no", "yes", "no"], 60))

    # When drafted
    _, multi, _ = _init(tmp_path, three, "--target", "bought", name="three")
    _, binary, _ = _init(tmp_path, two, "--target", "bought", name="two")

    # Then the labels are kept as given; binary names the less frequent label positive
    assert (multi["task"], multi["labels"]) == ("multiclass", ["lots", "none", "some"])
    assert (binary["task"], binary["labels"], binary["positive_label"]) == ("binary", ["no", "yes"], "yes")
    assert multi["gate"]["metric"] == "macro_f1"


def test_nulls_in_a_numeric_column_make_it_nullable_with_a_range_around_the_sample(tmp_path: Path) -> None:
    # Given a numeric column with missing values (10..90)
    frame = _frame()
    frame.loc[[3, 7], "amount"] = np.nan

    # When drafted
    _, data, text = _init(tmp_path, frame, "--target", "bought")

    # Then it stays numeric, nullable, its range covers the sample with a margin, and the missing count is said
    amount = _features(data)["amount"]
    assert amount["nullable"] is True and amount["kind"] == "numeric"
    low, high = frame["amount"].min(), frame["amount"].max()
    assert 0 <= amount["minimum"] < low and amount["maximum"] > high
    assert "2 missing" in text


def test_a_constant_column_is_left_out_and_said_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a column with the same value in every row
    code, data, text = _init(tmp_path, _frame().assign(country="fr"), "--target", "bought")

    # Then it is not a feature, and both the command and the file say why
    assert code == 0 and "country" not in _features(data)
    assert "left out 'country': constant: 'fr' in every row" in capsys.readouterr().out
    assert "#   country: constant" in text


def test_an_id_like_column_is_suggested_as_the_key_not_a_feature(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a column with a distinct value per row
    frame = _frame().assign(order_ref=[f"O-{i:05d}" for i in range(60)])
    frame = frame[["order_ref", "amount", "colour", "bought"]]

    # When drafted without --key
    _, data, _ = _init(tmp_path, frame, "--target", "bought")

    # Then it becomes the key, is not a feature, and the command says what it did
    assert data["key"] == "order_ref" and "order_ref" not in _features(data)
    assert "'order_ref' looks like an ID (every value distinct): made it the key, not a feature" in (
        capsys.readouterr().out
    )


def test_an_explicit_key_wins_and_other_id_like_columns_are_left_out(tmp_path: Path) -> None:
    # Given two ID-like columns and --key naming the second
    frame = _frame().assign(row=range(60), ticket_id=[f"T{i}" for i in range(60)])

    # When drafted with --key / Then that is the key and neither is a feature
    _, data, text = _init(tmp_path, frame, "--target", "bought", "--key", "ticket_id")
    assert data["key"] == "ticket_id"
    assert {"row", "ticket_id"}.isdisjoint(_features(data))
    assert "#   row: ID-like (every value distinct): it identifies rows, it does not describe them" in text
    assert set(_features(data)) == {"amount", "colour"}


def test_a_date_column_is_left_out_with_the_reason(tmp_path: Path) -> None:
    # Given a date column with repeated dates
    frame = _frame().assign(signup=np.resize(["2024-01-05", "2024-02-11", "2024-03-30"], 60))

    # When drafted / Then it is not a feature and the draft says to derive numbers from it
    _, data, text = _init(tmp_path, frame, "--target", "bought")
    assert "signup" not in _features(data)
    assert "#   signup: a date: the model takes numbers and categories; derive numbers from it upstream" in text


def test_a_categorical_with_500_levels_is_left_out(tmp_path: Path) -> None:
    # Given a text column with 500 distinct values over 1,000 rows
    frame = _frame(1000).assign(city=[f"city-{i % 500}" for i in range(1000)])

    # When drafted / Then it is not a feature; the draft says how many levels and what to do
    _, data, text = _init(tmp_path, frame, "--target", "bought")
    assert "city" not in _features(data)
    assert "#   city: 500 distinct values (more than 100): one-hot encoding them would be huge" in text


def test_a_one_row_file_gives_a_draft_with_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a sample of one row and --task (one row cannot show two classes)
    code, data, _ = _init(tmp_path, _frame(1), "--target", "amount", "--task", "regression")

    # Then a draft is written (nothing is constant in one row) with the warning to widen it
    assert code == 0
    assert data["task"] == "regression" and {"colour", "bought"} <= set(_features(data))
    assert "one row: ranges and categories come from a single value; widen them before use" in capsys.readouterr().out

    # and without --task the task cannot be inferred from one target value: said so, nothing written
    code, _, _ = _init(tmp_path, _frame(1), "--target", "bought", name="one")
    assert code == 2 and not (tmp_path / "datasets" / "one.yaml").exists()
    assert "the target 'bought' has 1 distinct value(s) in the sample: nothing to learn" in capsys.readouterr().err


def test_a_file_without_the_target_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a sample without the named target
    code, data, _ = _init(tmp_path, _frame(), "--target", "churned")

    # Then nothing is written and the error lists the file's columns
    assert code == 2 and data == {}
    assert "mlops dataset init: the file has no column 'churned' (its columns: amount, colour, bought)" in (
        capsys.readouterr().err
    )


def test_an_existing_declaration_is_only_replaced_with_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a written draft
    _init(tmp_path, _frame(), "--target", "bought")
    out = tmp_path / "datasets" / "shop.yaml"
    out.write_text(out.read_text() + "# my review notes\n")

    # When init runs again without, then with --force
    refused, _, kept = _init(tmp_path, _frame(), "--target", "bought")
    replaced, _, fresh = _init(tmp_path, _frame(), "--target", "bought", "--force")

    # Then the first leaves the reviewed file untouched and says how to replace it
    assert refused == 2 and "# my review notes" in kept
    assert f"{out} already exists; pass --force to replace it" in capsys.readouterr().err
    assert replaced == 0 and "# my review notes" not in fresh


def test_integer_targets_with_few_values_are_classes_and_others_quantities(tmp_path: Path) -> None:
    # Given an integer target with 4 values, and a fractional one
    classes = _frame().assign(bought=np.resize([1, 2, 3, 4], 60))
    quantity = _frame().assign(bought=np.linspace(0.5, 99.5, 60))

    # When drafted / Then multiclass with integer labels, and regression with an RMSE ceiling of the target's spread
    _, multi, _ = _init(tmp_path, classes, "--target", "bought", name="classes")
    _, regression, _ = _init(tmp_path, quantity, "--target", "bought", name="quantity")
    assert (multi["task"], multi["labels"]) == ("multiclass", [1, 2, 3, 4])
    assert regression["task"] == "regression" and regression["gate"]["metric"] == "rmse"
    assert regression["gate"]["floor"] >= float(np.std(quantity["bought"]))


def test_awkward_values_are_quoted_so_the_yaml_reads_back_the_same(tmp_path: Path) -> None:
    # Given categories YAML would misread unquoted (booleans, numbers, a colon, a hash)
    awkward = ["yes", "no", "on", "007", "1.5", "a: b", "#x"]
    frame = _frame().assign(colour=np.resize(awkward, 60))

    # When drafted / Then the categories read back as the same strings
    _, data, _ = _init(tmp_path, frame, "--target", "bought")
    assert sorted(_features(data)["colour"]["categories"]) == sorted(awkward)


def test_a_parquet_sample_is_read_like_a_csv(tmp_path: Path) -> None:
    # Given the tickets sample as Parquet (typed columns, nulls)
    sample = tmp_path / "tickets.parquet"
    pq.write_table(pa.Table.from_pandas(pd.read_csv(SAMPLES / "tickets.csv"), preserve_index=False), sample)

    # When drafted
    folder = tmp_path / "datasets"
    assert (
        mlops.main(["dataset", "init", str(sample), "--name", "tk", "--target", "team", "--datasets", str(folder)]) == 0
    )

    # Then it matches the committed declaration's columns, kinds and nullability
    drafted = load_declaration(folder / "tk.yaml").schema
    declared = load_declaration(SAMPLES.parents[2] / "datasets" / "tickets.yaml").schema
    assert drafted.task == "multiclass" and drafted.key is None
    assert sorted(drafted.class_labels) == sorted(declared.class_labels)
    assert [(f.name, f.kind, f.nullable) for f in drafted.features] == [
        (f.name, f.kind, f.nullable) for f in declared.features
    ]


# ---- check -----------------------------------------------------------------------------------------


def test_check_prints_the_rejects_by_reason_and_fails_the_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the churn sample with 10 broken rows out of 120
    frame = pd.read_csv(SAMPLES / "churn.csv", nrows=120, dtype=str, keep_default_na=False)
    frame.loc[:5, "contract"] = "weekly"
    frame.loc[6:9, "age"] = "old"
    sample = tmp_path / "upload.csv"
    sample.write_bytes(to_csv_bytes(frame))

    # When checked against the churn declaration
    code = mlops.main(["dataset", "check", str(sample), "--name", "churn"])

    # Then each reason is listed with its count and first lines, and the gate's verdict decides the exit status
    out = capsys.readouterr().out
    assert code == 1
    assert f"churn: 120 rows in {sample}: 110 valid, 10 rejected (8.33%)" in out
    assert "category:contract       6  lines 2, 3, 4, 5, 6, ..." in out
    assert "type:age                4  lines 8, 9, 10, 11" in out
    assert "quality gate: FAILED: rejected share 0.0833 > 0.05 (10 of 120 rows)" in out


def test_check_passes_a_clean_file_and_reports_a_malformed_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the energy sample, and a file missing a declared column
    broken = tmp_path / "broken.csv"
    broken.write_bytes(to_csv_bytes(pd.read_csv(SAMPLES / "energy.csv").drop(columns="heating")))

    # When both are checked
    clean = mlops.main(["dataset", "check", str(SAMPLES / "energy.csv"), "--name", "energy"])
    clean_out = capsys.readouterr().out
    malformed = mlops.main(["dataset", "check", str(broken), "--name", "energy"])

    # Then the clean one passes with its splits; the malformed one is rejected as a whole with the reason
    assert clean == 0 and "quality gate: passed" in clean_out and "splits: train" in clean_out
    assert malformed == 1
    assert "is rejected as a whole: missing_columns: required columns missing: ['heating']" in capsys.readouterr().out


def test_check_of_an_undeclared_dataset_names_the_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no declaration named "nope" / When checked / Then exit 2 with the path it looked for
    assert mlops.main(["dataset", "check", str(SAMPLES / "energy.csv"), "--name", "nope"]) == 2
    assert "nope.yaml: cannot read the file" in capsys.readouterr().err


def test_numeric_ranges_are_widened_and_rounded_outwards() -> None:
    # Given sample values / When a range is drafted / Then it covers them with a margin, non-negative stays >= 0
    assert cmd.numeric_range(np.array([15.0, 132.51])) == (3.24, 145.0)
    assert cmd.numeric_range(np.array([0.0, 72.0])) == (0.0, 80.0)
    assert cmd.numeric_range(np.array([-15.0, 32.0])) == (-20.0, 37.0)
