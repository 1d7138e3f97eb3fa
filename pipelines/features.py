"""Feature engineering shared by the ETL job, training and inference.

One definition of the engineered columns (``DatasetSchema.engineered``) so the curated data, the model's
training rows and the rows served at the endpoint are computed the same way. Light on purpose (numpy and
pandas only): it ships in the model archive next to ``inference.py``.

The column functions take any mapping of column name -> column (a DataFrame, or a dict of numpy arrays as
the inference handler builds it), so serving does not need to build a DataFrame to engineer features.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from pipelines.schema import DatasetSchema

Columns = Mapping[str, Any]
"""A DataFrame or a dict of column arrays."""


def _numeric(columns: Columns, name: str) -> np.ndarray:
    """``columns[name]`` as float64 with missing values as NaN (non-numbers raise ``ValueError``)."""
    column = columns[name]
    if isinstance(column, np.ndarray) and column.dtype.kind in "fiu":
        return column.astype(np.float64, copy=False)
    series = column if isinstance(column, pd.Series) else pd.Series(column)
    if not pd.api.types.is_numeric_dtype(series.dtype):
        series = pd.to_numeric(series, errors="raise")
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _charges_per_tenure_month(columns: Columns) -> np.ndarray:
    """total_charges (missing: monthly_charges * tenure_months) / max(tenure_months, 1)."""
    tenure = _numeric(columns, "tenure_months")
    total = _numeric(columns, "total_charges")
    total = np.where(np.isnan(total), _numeric(columns, "monthly_charges") * tenure, total)
    return np.asarray(total / np.maximum(tenure, 1.0))


def _support_calls_per_year(columns: Columns) -> np.ndarray:
    """support_calls * 12 / max(tenure_months, 1)."""
    tenure = _numeric(columns, "tenure_months")
    return np.asarray(_numeric(columns, "support_calls") * 12.0 / np.maximum(tenure, 1.0))


ENGINEERED_FEATURES: dict[str, Callable[[Columns], np.ndarray]] = {
    "charges_per_tenure_month": _charges_per_tenure_month,
    "support_calls_per_year": _support_calls_per_year,
}
"""How each known engineered column is computed from the raw features."""


def engineered_columns(columns: Columns, schema: DatasetSchema) -> dict[str, np.ndarray]:
    """The schema's engineered columns (float64 arrays) computed from ``columns``.

    A missing input gives NaN (the model's imputer handles it). An engineered name without a definition
    raises ``KeyError`` naming it, so a schema change cannot silently drop a column.
    """
    unknown = [name for name in schema.engineered if name not in ENGINEERED_FEATURES]
    if unknown:
        raise KeyError(f"no definition for engineered column(s) {unknown}; known: {sorted(ENGINEERED_FEATURES)}")
    return {name: ENGINEERED_FEATURES[name](columns) for name in schema.engineered}


def engineer_features(df: pd.DataFrame, schema: DatasetSchema) -> pd.DataFrame:
    """A copy of ``df`` with every column of ``schema.engineered`` (re)computed from the raw features.

    - ``charges_per_tenure_month`` = total_charges (null -> monthly_charges * tenure_months)
      / max(tenure_months, 1)
    - ``support_calls_per_year`` = support_calls * 12 / max(tenure_months, 1)

    New columns are appended in schema order; existing ones are overwritten in place.
    """
    return df.assign(**engineered_columns(df, schema))


def model_input_columns(schema: DatasetSchema) -> list[str]:
    """The columns a trained model takes, in order: the raw features, then the engineered ones.

    It is the column order ``engineer_features(df[schema.feature_names], schema)`` produces.
    """
    return [*schema.feature_names, *schema.engineered]


def model_frame(df: pd.DataFrame, schema: DatasetSchema) -> pd.DataFrame:
    """The model's input frame (``model_input_columns`` order) from rows carrying the raw features.

    Engineered columns already present in ``df`` (all of them) are kept as they are; otherwise they are
    computed with ``engineer_features``. Other columns (key, target, partitions) are dropped.
    """
    if all(name in df.columns for name in schema.engineered):
        return df[model_input_columns(schema)]
    return engineer_features(df[schema.feature_names], schema)
