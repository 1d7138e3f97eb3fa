"""The churn generator: schema conformance, determinism, a learnable concept, drift and defect injection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from pipelines.data import generator
from pipelines.data.generator import corrupt, corrupt_with_defects, generate, to_csv_bytes
from pipelines.etl.transforms import engineer_features, run_transform
from stacks.config import QualityGate
from tests.samples import CHURN_SCHEMA

SAMPLE = Path(generator.__file__).parent / "sample" / "churn.csv"


def test_generate_matches_the_schema_contract() -> None:
    # Given / When: a generated dataset
    df = generate(5_000, seed=1)

    # Then: the columns are the schema's input columns, in order
    assert list(df.columns) == CHURN_SCHEMA.input_columns
    assert len(df) == 5_000
    # and every value honours the schema's ranges, categories and nullability
    for feature in CHURN_SCHEMA.features:
        column = df[feature.name]
        if not feature.nullable:
            assert column.notna().all(), feature.name
        if feature.kind == "numeric":
            present = column.dropna()
            assert present.min() >= feature.minimum, feature.name
            assert present.max() <= feature.maximum, feature.name
        else:
            assert set(column.unique()) == set(feature.categories), feature.name
    assert df[CHURN_SCHEMA.key].is_unique
    assert set(df[CHURN_SCHEMA.target].unique()) == {0, 1}
    # and total_charges is missing exactly for customers never billed (tenure 0)
    assert (df["total_charges"].isna() == (df["tenure_months"] == 0)).all()


def test_same_seed_same_data_other_seed_other_customers() -> None:
    # Given / When: two runs with one seed and one with another
    first, again, other = generate(1_000, seed=3), generate(1_000, seed=3), generate(1_000, seed=4)

    # Then: the same seed reproduces the data exactly; another seed gives other keys and values
    pd.testing.assert_frame_equal(first, again)
    assert set(first[CHURN_SCHEMA.key]).isdisjoint(other[CHURN_SCHEMA.key])
    assert not np.array_equal(first["monthly_charges"].to_numpy(), other["monthly_charges"].to_numpy())


def test_generated_data_passes_the_etl_without_rejects() -> None:
    # Given: generated data as CSV bytes
    raw = to_csv_bytes(generate(2_000, seed=8))

    # When: the ETL transforms it
    result = run_transform(raw, "csv", CHURN_SCHEMA, QualityGate())

    # Then: nothing is rejected and the gate passes
    assert result.report["rows"] == {"input": 2_000, "valid": 2_000, "rejected": 0}
    assert result.gate_passed


def test_the_target_is_learnable_but_not_trivially() -> None:
    # Given: a training and a holdout sample with the engineered features
    df = engineer_features(generate(20_000, seed=11), CHURN_SCHEMA)
    x = df[[*CHURN_SCHEMA.feature_names, *CHURN_SCHEMA.engineered_names]].copy()
    for name in CHURN_SCHEMA.categorical_features:
        x[name] = x[name].astype("category")
    y = df[CHURN_SCHEMA.target]

    # When: a gradient-boosting model is trained on 12k rows (one thread: OpenMP crawls on a busy machine)
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=60, random_state=0)
    with threadpool_limits(1):
        model.fit(x[:12_000], y[:12_000])
    auc = roc_auc_score(y[12_000:], model.predict_proba(x[12_000:])[:, 1])

    # Then: the AUC is realistic, well above chance and well below perfect
    assert 0.80 <= auc <= 0.90
    # and the churn rate is plausible for a telecom
    assert 0.2 <= y.mean() <= 0.4


def test_churn_follows_the_business_drivers() -> None:
    # Given / When: a large sample
    df = generate(50_000, seed=2)
    rate = df.groupby("contract")[CHURN_SCHEMA.target].mean()

    # Then: month-to-month churns most, two-year least; more support calls, more churn
    assert rate["month-to-month"] > rate["one-year"] > rate["two-year"]
    calls = df.groupby(df["support_calls"].clip(upper=4))[CHURN_SCHEMA.target].mean()
    assert calls.is_monotonic_increasing


def test_drift_shifts_the_distributions_and_the_concept() -> None:
    # Given / When: the same seed without and with full drift
    base, drifted = generate(50_000, seed=5), generate(50_000, seed=5, drift=1.0)

    # Then: more support calls, higher charges, more month-to-month and fiber, shorter tenure
    assert drifted["support_calls"].mean() > base["support_calls"].mean() + 0.8
    assert drifted["monthly_charges"].mean() > base["monthly_charges"].mean() + 10
    share = lambda df, col, value: (df[col] == value).mean()  # noqa: E731
    assert share(drifted, "contract", "month-to-month") > share(base, "contract", "month-to-month") + 0.1
    assert share(drifted, "internet_service", "fiber") > share(base, "internet_service", "fiber") + 0.1
    assert drifted["tenure_months"].mean() < base["tenure_months"].mean()
    # and the drifted data still fits the schema
    assert run_transform(to_csv_bytes(drifted), "csv", CHURN_SCHEMA, QualityGate()).report["rows"]["rejected"] == 0


@pytest.mark.parametrize(("rows", "drift", "message"), [(-1, 0.0, "rows"), (10, 1.5, "drift"), (10, -0.1, "drift")])
def test_generate_rejects_bad_arguments(rows: int, drift: float, message: str) -> None:
    # Given / When / Then: invalid sizes or drift levels are refused with a clear message
    with pytest.raises(ValueError, match=message):
        generate(rows, drift=drift)


def test_generate_zero_rows_gives_an_empty_frame_with_the_columns() -> None:
    df = generate(0)
    assert df.empty
    assert list(df.columns) == CHURN_SCHEMA.input_columns


def test_corrupt_breaks_the_requested_share_with_one_known_defect_per_row() -> None:
    # Given: clean data
    df = generate(1_000, seed=4)
    before = df.copy()

    # When: 20% of it is corrupted
    broken, expected = corrupt_with_defects(df, 0.2, seed=1, schema=CHURN_SCHEMA)

    # Then: exactly 200 rows differ, each with a reason; the input is untouched
    pd.testing.assert_frame_equal(df, before)
    assert (expected != "").sum() == 200
    as_text = lambda frame: frame.astype(object).where(frame.notna(), None).map(str)  # noqa: E731
    changed = (as_text(broken) != as_text(df)).any(axis=1)
    assert (changed == (expected != "")).all()
    # and every defect family shows up
    kinds = set(expected[expected != ""].str.split(":").str[0])
    assert kinds == {"range", "null", "category", "type", "target", "duplicate_key"}
    # and duplicate keys copy the key of an earlier clean row
    for row in np.flatnonzero(expected == "duplicate_key"):
        matches = np.flatnonzero(broken[CHURN_SCHEMA.key] == broken.loc[row, CHURN_SCHEMA.key])
        assert matches[0] < row
        assert expected.iloc[matches[0]] == ""


def test_corrupt_is_seeded_and_equals_the_first_value_of_corrupt_with_defects() -> None:
    df = generate(300, seed=4)
    pd.testing.assert_frame_equal(
        corrupt(df, 0.1, seed=2, schema=CHURN_SCHEMA), corrupt_with_defects(df, 0.1, seed=2, schema=CHURN_SCHEMA)[0]
    )
    assert not corrupt(df, 0.1, seed=2, schema=CHURN_SCHEMA).equals(corrupt(df, 0.1, seed=3, schema=CHURN_SCHEMA))


def test_corrupt_rejects_a_share_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="share"):
        corrupt(generate(10), 1.5, schema=CHURN_SCHEMA)


def test_cli_writes_csv_and_parquet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given: output paths
    csv_path, parquet_path = tmp_path / "out" / "churn.csv", tmp_path / "churn.parquet"

    # When: the CLI writes both formats
    assert generator.main(["--rows", "50", "--seed", "3", "--out", str(csv_path)]) == 0
    assert (
        generator.main(["--rows", "50", "--seed", "3", "--drift", "0.5", "--out", str(parquet_path), "--parquet"]) == 0
    )

    # Then: the CSV holds the header and 50 rows, the Parquet the schema's columns
    lines = csv_path.read_text().splitlines()
    assert lines[0].replace('"', "").split(",") == CHURN_SCHEMA.input_columns
    assert len(lines) == 51
    assert pq.read_table(parquet_path).column_names == CHURN_SCHEMA.input_columns
    assert "wrote 50 rows" in capsys.readouterr().out


def test_the_generated_columns_and_categories_are_the_churn_declaration_s() -> None:
    # Given the generator's own constants / When compared with datasets/churn.yaml
    # Then they agree: the generated file passes the declaration's checks column for column
    assert list(generator.COLUMNS) == CHURN_SCHEMA.input_columns
    assert CHURN_SCHEMA.feature("contract").categories == generator.CONTRACTS
    assert CHURN_SCHEMA.feature("payment_method").categories == generator.PAYMENTS
    assert CHURN_SCHEMA.feature("internet_service").categories == generator.INTERNET


def test_the_shipped_sample_is_the_seed_7_dataset() -> None:
    # Given / When / Then: the committed sample is exactly what the generator produces (5,000 rows, seed 7)
    assert SAMPLE.read_bytes() == to_csv_bytes(generate(5_000, seed=7))
