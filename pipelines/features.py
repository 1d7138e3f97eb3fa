"""Engineered features: the declared expressions evaluated with numpy, for the ETL, training and inference.

A declaration's ``engineered`` columns (``pipelines.schema.Engineered``) are expressions over its numeric
features, validated when the declaration loads (``pipelines.schema.parse_expression``). This module walks the
same syntax tree with numpy, so the curated data, the model's training rows and the rows served at the
endpoint are computed the same way. Light on purpose (numpy and pandas only): it ships in the model archive
next to ``inference.py``.

Semantics (float64 throughout): a missing value is NaN and stays missing through arithmetic; ``coalesce``
takes the first non-missing argument; ``min``/``max`` are element-wise and missing when any argument is;
comparisons give 1.0/0.0 (and 0.0 against a missing value); a result that is not finite (a division by zero,
``log`` of 0) is missing, which the model's imputer fills.

The column functions take any mapping of column name -> column (a DataFrame, or a dict of numpy arrays as
the inference handler builds it), so serving does not need to build a DataFrame to engineer features.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any, cast

import numpy as np
import pandas as pd

from pipelines.schema import DatasetSchema, expression_columns, parse_expression

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


def _coalesce(*values: np.ndarray) -> np.ndarray:
    result = values[0]
    for value in values[1:]:
        result = np.where(np.isnan(result), value, result)
    return result


def _fold(function: Callable[[Any, Any], Any]) -> Callable[..., np.ndarray]:
    def apply(*values: np.ndarray) -> np.ndarray:
        result = values[0]
        for value in values[1:]:
            result = function(result, value)
        return np.asarray(result, dtype=np.float64)

    return apply


IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {
    "coalesce": _coalesce,
    "min": _fold(np.minimum),
    "max": _fold(np.maximum),
    "abs": np.abs,
    "log": np.log,
    "log1p": np.log1p,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "clip": lambda x, low, high: np.minimum(np.maximum(x, low), high),
    "where": lambda condition, yes, no: np.where(np.nan_to_num(condition, nan=0.0) != 0, yes, no),
    "isnull": lambda x: np.isnan(x).astype(np.float64),
}
"""numpy for each function of ``pipelines.schema.FUNCTIONS`` (a test keeps the two key sets equal)."""

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def _evaluate(node: ast.expr, values: Mapping[str, np.ndarray]) -> Any:
    if isinstance(node, ast.Constant):
        return float(cast(float, node.value))  # parse_expression admits int and float constants only
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_evaluate(node.left, values), _evaluate(node.right, values))
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, values)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.Compare):
        compare = _COMPARE[type(node.ops[0])]
        return np.asarray(compare(_evaluate(node.left, values), _evaluate(node.comparators[0], values)), np.float64)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return IMPLEMENTATIONS[node.func.id](*(_evaluate(arg, values) for arg in node.args))
    raise ValueError(f"unsupported syntax {type(node).__name__}")  # parse_expression refuses it first


def evaluate(expression: str, columns: Columns, rows: int) -> np.ndarray:
    """One expression over ``columns`` (numeric, missing = NaN): float64 of ``rows`` values, non-finite as NaN."""
    tree = parse_expression(expression)
    values = {name: _numeric(columns, name) for name in expression_columns(expression)}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        result = np.asarray(_evaluate(tree.body, values), dtype=np.float64)
    result = np.broadcast_to(result, (rows,)).copy() if result.shape != (rows,) else result
    finite = np.isfinite(result)
    return result if finite.all() else np.where(finite, result, np.nan)


def _rows(columns: Columns) -> int:
    if isinstance(columns, pd.DataFrame):
        return len(columns)
    return len(next(iter(columns.values()))) if columns else 0


def engineered_columns(columns: Columns, schema: DatasetSchema) -> dict[str, np.ndarray]:
    """The schema's engineered columns (float64 arrays) computed from ``columns``, in declared order; a later
    expression may read an earlier engineered column."""
    rows = _rows(columns)
    out: dict[str, np.ndarray] = {}
    for column in schema.engineered:
        source = {**{name: columns[name] for name in column.inputs if name not in out}, **out}
        out[column.name] = evaluate(column.expression, source, rows)
    return out


def engineer_features(df: pd.DataFrame, schema: DatasetSchema) -> pd.DataFrame:
    """A copy of ``df`` with every engineered column of ``schema`` (re)computed from the raw features.

    New columns are appended in schema order; existing ones are overwritten in place.
    """
    return df.assign(**engineered_columns(df, schema))


def model_input_columns(schema: DatasetSchema) -> list[str]:
    """The columns a trained model takes, in order: the raw features, then the engineered ones.

    It is the column order ``engineer_features(df[schema.feature_names], schema)`` produces.
    """
    return [*schema.feature_names, *schema.engineered_names]


def class_columns(classes: Any, schema: DatasetSchema) -> list[int]:
    """Columns of a fitted classifier's ``predict_proba`` to keep: binary, the positive label's; multiclass,
    one per declared label in ``class_labels`` order."""
    order = schema.class_order(list(classes))
    return [order[schema.class_labels.index(schema.positive)]] if schema.task == "binary" else order


def model_output(pipeline: Any, frame: Any, schema: DatasetSchema) -> np.ndarray:
    """A fitted model's answer for ``frame`` by task: binary, the positive label's probability (1-d);
    multiclass, one probability column per declared label; regression, the predicted values."""
    if schema.task == "regression":
        return np.asarray(pipeline.predict(frame), dtype=np.float64)
    probabilities = np.asarray(pipeline.predict_proba(frame), dtype=np.float64)
    chosen = probabilities[:, class_columns(pipeline.classes_, schema)]
    return chosen[:, 0] if schema.task == "binary" else chosen


def model_frame(df: pd.DataFrame, schema: DatasetSchema) -> pd.DataFrame:
    """The model's input frame (``model_input_columns`` order) from rows carrying the raw features.

    Engineered columns already present in ``df`` (all of them) are kept as they are; otherwise they are
    computed with ``engineer_features``. Other columns (key, target, partitions) are dropped.
    """
    if all(name in df.columns for name in schema.engineered_names):
        return df[model_input_columns(schema)]
    return engineer_features(df[schema.feature_names], schema)
