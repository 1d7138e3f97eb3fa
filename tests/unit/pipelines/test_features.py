"""engineer_features: the declared expressions shared by ETL, training and inference, evaluated with numpy."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.features import IMPLEMENTATIONS, engineer_features, engineered_columns, evaluate, model_input_columns
from pipelines.schema import FUNCTIONS, Engineered, SchemaError
from tests.samples import CHURN_SCHEMA

SAMPLE = Path(__file__).resolve().parents[3] / "pipelines" / "data" / "sample" / "churn.csv"


def _rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tenure_months": [24.0, 0.0, 10.0, 5.0],
            "monthly_charges": [50.0, 80.0, 30.0, 40.0],
            "total_charges": [1200.0, None, None, 210.0],
            "support_calls": [4.0, 3.0, 0.0, None],
            "contract": ["one-year", "month-to-month", "two-year", "one-year"],
        }
    )


def test_charges_per_tenure_month_uses_total_charges_or_monthly_times_tenure() -> None:
    # Given rows with and without total charges, one with zero tenure
    df = _rows()

    # When the features are engineered
    out = engineer_features(df, CHURN_SCHEMA)

    # Then total / max(tenure, 1), with a missing total replaced by monthly * tenure
    assert out["charges_per_tenure_month"].tolist() == [1200.0 / 24, 80.0 * 0 / 1, 30.0 * 10 / 10, 210.0 / 5]


def test_support_calls_per_year_is_annualised_over_at_least_one_month() -> None:
    # Given the same rows
    df = _rows()

    # When the features are engineered
    out = engineer_features(df, CHURN_SCHEMA)

    # Then calls * 12 / max(tenure, 1); a null count stays null for the imputer
    values = out["support_calls_per_year"].tolist()
    assert values[:3] == [4 * 12 / 24, 3 * 12 / 1, 0.0]
    assert math.isnan(values[3])


def test_input_frame_is_not_modified_and_other_columns_are_kept() -> None:
    # Given a frame
    df = _rows()
    before = df.copy()

    # When the features are engineered
    out = engineer_features(df, CHURN_SCHEMA)

    # Then the input is untouched and the output has the inputs plus the engineered columns, in order
    pd.testing.assert_frame_equal(df, before)
    assert list(out.columns) == [*df.columns, *CHURN_SCHEMA.engineered_names]
    assert out["charges_per_tenure_month"].dtype == np.float64


def test_existing_engineered_columns_are_recomputed() -> None:
    # Given a frame that already carries a stale engineered column
    df = _rows().assign(support_calls_per_year=-1.0)

    # When the features are engineered
    out = engineer_features(df, CHURN_SCHEMA)

    # Then the stale values are replaced
    assert (out["support_calls_per_year"].fillna(0) >= 0).all()


def test_schema_without_engineered_columns_returns_an_equal_copy() -> None:
    # Given a schema that engineers nothing
    schema = replace(CHURN_SCHEMA, engineered=())
    df = _rows()

    # When the features are engineered
    out = engineer_features(df, schema)

    # Then the frame comes back unchanged (as a copy)
    pd.testing.assert_frame_equal(out, df)
    assert out is not df


def test_an_engineered_column_over_an_undeclared_name_is_refused_by_the_schema() -> None:
    # Given an engineered column whose expression reads a column the dataset does not declare
    # When the schema is built / Then it fails naming the field, the name and the usable columns
    with pytest.raises(SchemaError, match=r"^engineered\[2\]\.expression: unknown name 'mystery'") as error:
        replace(CHURN_SCHEMA, engineered=(*CHURN_SCHEMA.engineered, Engineered("ratio", "mystery / 2")))
    assert error.value.field == "engineered[2].expression"
    assert "numeric features and earlier engineered columns: age, charges_per_tenure_month" in str(error.value)


def test_model_input_columns_are_the_raw_features_then_the_engineered_ones() -> None:
    # Given the churn schema and a frame restricted to its raw features
    df = _rows().reindex(columns=CHURN_SCHEMA.feature_names)

    # When the model columns are listed and the features engineered
    columns = model_input_columns(CHURN_SCHEMA)
    out = engineer_features(df, CHURN_SCHEMA)

    # Then both agree on the order, so a served frame needs no re-selection
    assert columns == [*CHURN_SCHEMA.feature_names, "charges_per_tenure_month", "support_calls_per_year"]
    assert list(out.columns) == columns


def test_columns_as_numpy_arrays_give_the_same_values_as_a_frame() -> None:
    # Given the same rows as a DataFrame and as a dict of numpy arrays (how the endpoint holds a request)
    df = _rows()
    arrays = {name: df[name].to_numpy(dtype=float) for name in df.columns if name != "contract"}

    # When the engineered columns are computed from both
    from_frame = engineer_features(df, CHURN_SCHEMA)
    from_arrays = engineered_columns(arrays, CHURN_SCHEMA)

    # Then they agree exactly, NaN included
    for name in CHURN_SCHEMA.engineered_names:
        np.testing.assert_array_equal(from_arrays[name], from_frame[name].to_numpy())


def test_nullable_pandas_dtypes_are_read_as_floats_with_nan() -> None:
    # Given nullable integer / float columns with pd.NA (as Spark-written Parquet can come back)
    df = pd.DataFrame(
        {
            "tenure_months": pd.array([10, None], dtype="Int64"),
            "monthly_charges": pd.array([30.0, 40.0], dtype="Float64"),
            "total_charges": pd.array([None, 100.0], dtype="Float64"),
            "support_calls": pd.array([1, 2], dtype="Int64"),
        }
    )

    # When the features are engineered
    out = engineered_columns(df, CHURN_SCHEMA)

    # Then NA is read as NaN instead of failing: a missing total falls back to monthly x tenure,
    # and a missing tenure gives missing ratios (for the model's imputer)
    assert out["charges_per_tenure_month"][0] == 30.0
    assert out["support_calls_per_year"][0] == 1.2
    assert math.isnan(out["charges_per_tenure_month"][1])
    assert math.isnan(out["support_calls_per_year"][1])


# ---- the churn expressions equal the Python they replaced ------------------------------------------


def _former_charges_per_tenure_month(df: pd.DataFrame) -> np.ndarray:
    """The deleted ``pipelines/features.py`` function, verbatim in numpy: the reference."""
    tenure = df["tenure_months"].to_numpy(dtype=np.float64, na_value=np.nan)
    total = df["total_charges"].to_numpy(dtype=np.float64, na_value=np.nan)
    total = np.where(np.isnan(total), df["monthly_charges"].to_numpy(dtype=np.float64) * tenure, total)
    return np.asarray(total / np.maximum(tenure, 1.0))


def _former_support_calls_per_year(df: pd.DataFrame) -> np.ndarray:
    tenure = df["tenure_months"].to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(df["support_calls"].to_numpy(dtype=np.float64, na_value=np.nan) * 12.0 / np.maximum(tenure, 1.0))


def test_the_churn_expressions_give_the_former_python_values_bit_for_bit_on_the_sample() -> None:
    # Given the 5,000-row churn sample (94 rows without total charges, tenures of 0)
    df = pd.read_csv(SAMPLE)
    assert df["total_charges"].isna().sum() > 0 and (df["tenure_months"] == 0).any()

    # When datasets/churn.yaml's expressions are evaluated
    engineered = engineered_columns(df, CHURN_SCHEMA)

    # Then every value equals the former built-in functions' exactly (not approximately)
    np.testing.assert_array_equal(engineered["charges_per_tenure_month"], _former_charges_per_tenure_month(df))
    np.testing.assert_array_equal(engineered["support_calls_per_year"], _former_support_calls_per_year(df))


# ---- expression semantics --------------------------------------------------------------------------


def _eval(expression: str, **columns: list[float | None]) -> list[float]:
    arrays = {
        name: np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        for name, values in columns.items()
    }
    return evaluate(expression, arrays, len(next(iter(arrays.values())))).tolist()


def test_missing_values_stay_missing_and_coalesce_fills_them() -> None:
    # Given a missing value among present ones
    # When computed / Then arithmetic keeps it missing, coalesce takes the first present argument
    assert _eval("x * 2 + 1", x=[1.0, None])[0] == 3.0 and math.isnan(_eval("x * 2 + 1", x=[1.0, None])[1])
    assert _eval("coalesce(x, y, 0)", x=[1.0, None, None], y=[5.0, 6.0, None]) == [1.0, 6.0, 0.0]


def test_functions_comparisons_and_where() -> None:
    # Given rows / When each function is applied / Then numpy's element-wise results
    assert _eval("min(x, 2)", x=[1.0, 3.0]) == [1.0, 2.0]
    assert _eval("max(x, y, 0)", x=[-1.0, 3.0], y=[-2.0, 4.0]) == [0.0, 4.0]
    assert _eval("abs(-x)", x=[-1.5, 2.0]) == [1.5, 2.0]
    assert _eval("clip(x, 0, 10)", x=[-5.0, 5.0, 50.0]) == [0.0, 5.0, 10.0]
    assert _eval("where(x > 2, 1, -1)", x=[1.0, 3.0, None]) == [-1.0, 1.0, -1.0]  # missing compares false
    assert _eval("isnull(x)", x=[1.0, None]) == [0.0, 1.0]
    assert _eval("log1p(x)", x=[0.0])[0] == 0.0 and _eval("sqrt(x)", x=[9.0]) == [3.0]
    assert _eval("x >= 1", x=[0.0, 1.0]) == [0.0, 1.0]


def test_a_result_that_is_not_finite_is_missing() -> None:
    # Given a division by zero and the log of zero / When computed / Then missing, for the model's imputer
    assert all(math.isnan(v) for v in _eval("1 / x", x=[0.0]) + _eval("log(x)", x=[0.0]) + _eval("sqrt(x)", x=[-1.0]))


def test_every_function_of_the_language_has_an_implementation() -> None:
    # Given the language's functions (pipelines.schema) and their numpy implementations (pipelines.features)
    # Then the two lists are the same
    assert set(IMPLEMENTATIONS) == set(FUNCTIONS)
