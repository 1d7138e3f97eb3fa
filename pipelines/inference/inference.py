"""SageMaker scikit-learn inference handler: ``model_fn`` and ``transform_fn``.

The training job copies this file into the model archive as ``code/inference.py``, next to
``code/pipelines/{__init__,schema,features}.py``; the container imports it with ``code/`` on ``sys.path``,
so the absolute ``pipelines.*`` imports below resolve inside the archive exactly as they do in the repo.

Request formats (``schema.feature_names`` in schema order; no key, no target, no engineered columns):

- ``text/csv``: one row per line, with or without a header line. With a header, the columns may come in
  any order. An empty field is a missing value (allowed only for nullable features).
- ``application/json``: ``{"instances": [[...], ...]}`` (rows in schema order; a bare ``[[...], ...]`` too),
  ``{"instances": [{...}]}`` or ``[{...}, ...]`` (records keyed by feature name; a nullable feature may be
  left out). Numeric features must be JSON numbers (or null where nullable).

Response (``application/json`` by default, or ``text/csv``), one prediction per row, by the dataset's task:

- binary: ``{"probability": p, "label": <label>}`` (p of the positive label; the label as declared, 0/1 by
  default); CSV ``probability,label``;
- multiclass: ``{"label": <label>, "probabilities": {<label>: p, ...}}`` (every declared label, in declared
  order); CSV ``label,p1,p2,...`` in declared label order;
- regression: ``{"value": v}``; CSV ``value``.

The JSON body is ``{"model_version": ..., "predictions": [...]}``.

Errors. The scikit-learn container (``sagemaker_sklearn_container`` on ``sagemaker-containers``, reproduced by
``localcloud/runtime/model_server.py``) answers 500 to any exception of a handler function, and serves a
``transform_fn``'s return value as it is when it is not a ``(body, content_type)`` tuple. So a bad request
raises a ``RequestError`` inside ``transform_fn``, which answers it itself with a ``ClientErrorResponse`` (a
WSGI application: Flask sends its status, a ``text/plain`` body with the message): 400 malformed payload,
406 unsupported ``Accept``, 413 payload too large, 415 unsupported ``Content-Type``. Any other exception is a
real failure of the model and stays a 500. Rows are numbered from 1, not counting a CSV header. Unknown
category values are accepted (the one-hot encoder ignores them). The container may not see ``input_fn``,
``predict_fn`` or ``output_fn`` next to ``transform_fn`` (it refuses to load the module), hence the names
``decode_request`` / ``predict`` / ``encode_prediction``.

Serving does not build a DataFrame: the request becomes one numpy array per feature, the engineered
columns come from the shared ``engineered_columns``, and the fitted preprocessing is applied as numpy
(``CompiledPreprocessing``, checked against the sklearn pipeline when the model loads).

Limits come from the environment: ``MAX_PAYLOAD_BYTES`` (default 6 MB) and ``MAX_ROWS`` (default 10,000);
``INFERENCE_THREADS`` (default 1) caps OpenMP threads per worker.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from http import HTTPStatus
from pathlib import Path
from typing import Any, Literal

import joblib
import numpy as np
import pandas as pd
import sklearn
from scipy.special import expit
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from pipelines.features import class_columns, engineered_columns, model_input_columns, model_output
from pipelines.schema import DatasetSchema, Feature, Label

logger = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
METADATA_FILE = "model_metadata.json"
CSV = "text/csv"
JSON = "application/json"
MAX_PAYLOAD_ENV = "MAX_PAYLOAD_BYTES"
MAX_ROWS_ENV = "MAX_ROWS"
DEFAULT_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
DEFAULT_MAX_ROWS = 10_000
DEFAULT_THRESHOLD = 0.5
THREADS_ENV = "INFERENCE_THREADS"
DEFAULT_THREADS = 1


@dataclass(frozen=True)
class ClientErrorResponse:
    """A client-error answer as a WSGI application (PEP 3333): Flask's ``make_response`` calls a WSGI callable
    that a view returns and sends its status and headers, so the container answers with this status."""

    status: HTTPStatus
    message: str

    def __call__(self, environ: Mapping[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = self.message.encode("utf-8")
        headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
        start_response(f"{self.status.value} {self.status.phrase}", headers)
        return [body]


class RequestError(Exception):
    """A client error: ``transform_fn`` answers it with ``status`` and ``message``."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message

    def response(self) -> ClientErrorResponse:
        return ClientErrorResponse(self.status, self.message)


def _bad_request(message: str) -> RequestError:
    return RequestError(HTTPStatus.BAD_REQUEST, message)


@dataclass(frozen=True)
class Limits:
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    max_rows: int = DEFAULT_MAX_ROWS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        env = os.environ if environ is None else environ
        return cls(
            max_payload_bytes=int(env.get(MAX_PAYLOAD_ENV, DEFAULT_MAX_PAYLOAD_BYTES)),
            max_rows=int(env.get(MAX_ROWS_ENV, DEFAULT_MAX_ROWS)),
        )


# ---- the model -------------------------------------------------------------------------------------


SMALL_BATCH_ROWS = 16
"""Up to this many rows, ``CompiledTrees`` beats the estimator's per-tree loop; above, sklearn is faster."""


@dataclass(frozen=True)
class CompiledTrees:
    """A binary ``HistGradientBoostingClassifier`` or a squared-error ``HistGradientBoostingRegressor`` (numeric
    splits) as flat node arrays, all trees at once.

    sklearn walks its trees one by one, a Python call per tree (about 1.5 ms for 200 trees and one row).
    Here the nodes of all trees sit in one array (children as global indices, a leaf pointing at itself),
    and each step moves every (row, tree) pair one level down with the estimator's own rule: NaN follows
    ``missing_go_to_left``, otherwise ``x <= num_threshold`` goes left. The raw score is the baseline plus
    the leaf values; the classifier's probability is its logistic sigmoid, as in the estimator's binomial
    loss, and the regressor's prediction is the raw score itself (the squared error's identity link).
    """

    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    is_leaf: np.ndarray
    value: np.ndarray
    depth: int
    baseline: float

    def raw_scores(self, matrix: np.ndarray) -> np.ndarray:
        rows = matrix.shape[0]
        node = np.repeat(self.roots[np.newaxis, :], rows, axis=0)
        row = np.arange(rows)[:, np.newaxis]
        for _ in range(self.depth):
            x = matrix[row, self.feature[node]]
            go_left = np.where(np.isnan(x), self.missing_left[node], x <= self.threshold[node])
            node = np.where(go_left, self.left[node], self.right[node])
            if self.is_leaf[node].all():
                break
        return np.asarray(self.baseline + self.value[node].sum(axis=1))

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        positive = expit(self.raw_scores(matrix))
        return np.column_stack([1.0 - positive, positive])

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        return self.raw_scores(matrix)


def _compilable(estimator: Any) -> bool:
    if isinstance(estimator, HistGradientBoostingClassifier):
        return len(estimator.classes_) == 2
    return isinstance(estimator, HistGradientBoostingRegressor) and estimator.loss == "squared_error"


def compile_trees(estimator: Any) -> CompiledTrees | None:
    """``CompiledTrees`` for a fitted binary HistGradientBoostingClassifier or squared-error
    HistGradientBoostingRegressor without categorical splits."""
    if not _compilable(estimator):
        return None
    predictors = getattr(estimator, "_predictors", None)
    baseline = np.ravel(getattr(estimator, "_baseline_prediction", np.empty(0)))
    if not predictors or baseline.size != 1 or any(len(trees) != 1 for trees in predictors):
        return None
    node_arrays = [trees[0].nodes for trees in predictors]
    if any(nodes["is_categorical"].any() for nodes in node_arrays):
        return None
    sizes = np.array([len(nodes) for nodes in node_arrays])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    nodes = np.concatenate(node_arrays)
    is_leaf = nodes["is_leaf"].astype(bool)
    shift = np.repeat(offsets, sizes)
    leaves = np.flatnonzero(is_leaf)
    left = nodes["left"].astype(np.intp) + shift
    right = nodes["right"].astype(np.intp) + shift
    left[leaves] = leaves
    right[leaves] = leaves
    return CompiledTrees(
        roots=offsets.astype(np.intp),
        feature=nodes["feature_idx"].astype(np.intp),
        threshold=nodes["num_threshold"].astype(np.float64),
        missing_left=nodes["missing_go_to_left"].astype(bool),
        left=left,
        right=right,
        is_leaf=is_leaf,
        value=nodes["value"].astype(np.float64),
        depth=int(max(tree_nodes["depth"].max() for tree_nodes in node_arrays)),
        baseline=float(baseline[0]),
    )


@dataclass(frozen=True)
class CompiledPreprocessing:
    """The fitted preprocessing of ``train.build_pipeline`` as plain numpy, in front of the same estimator.

    The sklearn ``ColumnTransformer`` costs milliseconds per call in input validation and DataFrame
    indexing, which dominates a small request. The fitted parameters (imputer fill values, scaler mean and
    scale, one-hot categories) are applied here with the same float64 operations, so the estimator sees
    the same matrix. ``compile_pipeline`` only builds one for the exact pipeline shape it understands, and
    ``load_model`` checks it against the sklearn pipeline on probe rows before using it.
    """

    numeric: tuple[str, ...]
    fill: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    numeric_slice: slice
    categorical: tuple[tuple[str, dict[Any, int]], ...]  # (column, {category: output column})
    width: int
    estimator: Any
    trees: CompiledTrees | None = None

    def transform(self, columns: Mapping[str, np.ndarray], rows: int) -> np.ndarray:
        matrix = np.zeros((rows, self.width), dtype=np.float64)
        numeric = np.column_stack([np.asarray(columns[name], dtype=np.float64) for name in self.numeric])
        numeric = np.where(np.isnan(numeric), self.fill, numeric)
        numeric -= self.mean
        numeric /= self.scale
        matrix[:, self.numeric_slice] = numeric
        for name, lookup in self.categorical:
            targets = np.fromiter((lookup.get(value, -1) for value in columns[name]), np.int64, rows)
            hit = np.flatnonzero(targets >= 0)
            matrix[hit, targets[hit]] = 1.0
        return matrix

    def predict_proba(self, columns: Mapping[str, np.ndarray], rows: int) -> np.ndarray:
        matrix = self.transform(columns, rows)
        if self.trees is not None and rows <= SMALL_BATCH_ROWS:
            return self.trees.predict_proba(matrix)
        return np.asarray(self.estimator.predict_proba(matrix))

    def predict(self, columns: Mapping[str, np.ndarray], rows: int) -> np.ndarray:
        """A regressor's predictions (the compiled trees for small batches)."""
        matrix = self.transform(columns, rows)
        if self.trees is not None and rows <= SMALL_BATCH_ROWS:
            return self.trees.predict(matrix)
        return np.asarray(self.estimator.predict(matrix), dtype=np.float64)


def compile_pipeline(pipeline: Any) -> CompiledPreprocessing | None:
    """A ``CompiledPreprocessing`` for a fitted ``train.build_pipeline`` pipeline; None for anything else."""
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        return None
    preprocess, estimator = pipeline.steps[0][1], pipeline.steps[1][1]
    if not isinstance(preprocess, ColumnTransformer) or not hasattr(estimator, "predict"):
        return None
    numeric_part: tuple[tuple[str, ...], Any, Any, slice] | None = None
    categorical: list[tuple[str, dict[Any, int]]] = []
    for name, transformer, columns in preprocess.transformers_:
        if name == "remainder":
            if transformer != "drop":
                return None
            continue
        section = preprocess.output_indices_[name]
        if isinstance(transformer, Pipeline) and [type(step) for _, step in transformer.steps] == [
            SimpleImputer,
            StandardScaler,
        ]:
            imputer, scaler = transformer.steps[0][1], transformer.steps[1][1]
            statistics = np.asarray(imputer.statistics_, dtype=np.float64)
            missing = imputer.missing_values
            plain_imputer = not imputer.add_indicator and isinstance(missing, float) and math.isnan(missing)
            if numeric_part is not None or not plain_imputer or not np.isfinite(statistics).all():
                return None
            if not (scaler.with_mean and scaler.with_std) or len(statistics) != len(columns):
                return None
            numeric_part = (tuple(columns), statistics, scaler, section)
        elif isinstance(transformer, OneHotEncoder):
            plain_encoder = (
                transformer.handle_unknown == "ignore"
                and transformer.drop is None
                and transformer.min_frequency is None
                and transformer.max_categories is None
            )
            if not plain_encoder:
                return None
            offset = section.start
            for column, categories in zip(columns, transformer.categories_, strict=True):
                categorical.append((column, {value: offset + i for i, value in enumerate(categories.tolist())}))
                offset += len(categories)
        else:
            return None
    if numeric_part is None:
        return None
    numeric, statistics, scaler, section = numeric_part
    return CompiledPreprocessing(
        numeric=numeric,
        fill=statistics,
        mean=np.asarray(scaler.mean_, dtype=np.float64),
        scale=np.asarray(scaler.scale_, dtype=np.float64),
        numeric_slice=section,
        categorical=tuple(categorical),
        width=int(sum(s.stop - s.start for s in preprocess.output_indices_.values())),
        estimator=estimator,
        trees=compile_trees(estimator),
    )


@dataclass(frozen=True)
class LoadedModel:
    """A trained pipeline with the contract it was trained under (from ``model_metadata.json``).

    Its output per row depends on the task (``model_output``): binary, the positive label's probability;
    multiclass, one probability per declared label (declared order); regression, the predicted value.
    """

    pipeline: Any
    schema: DatasetSchema
    version: str
    threshold: float = DEFAULT_THRESHOLD
    metadata: dict[str, Any] = field(default_factory=dict)
    compiled: CompiledPreprocessing | None = None

    @cached_property
    def class_columns(self) -> list[int]:
        """Columns of ``predict_proba`` to keep (binary: the positive label's; multiclass: declared order)."""
        return class_columns(self.pipeline.classes_, self.schema)

    @property
    def positive_index(self) -> int:
        return self.class_columns[0]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's output for each row of a model frame, through the sklearn pipeline (binary: the
        positive label's probability, as the name says)."""
        return model_output(self.pipeline, frame, self.schema)

    def predict_columns(self, columns: Mapping[str, np.ndarray], rows: int) -> np.ndarray:
        """The model's output from model-input columns (raw and engineered features), fast path if verified."""
        if self.compiled is None:
            frame = pd.DataFrame({name: columns[name] for name in model_input_columns(self.schema)})
            return self.predict_proba(frame)
        if self.schema.task == "regression":
            return self.compiled.predict(columns, rows)
        chosen = self.compiled.predict_proba(columns, rows)[:, self.class_columns]
        return np.asarray(chosen[:, 0] if self.schema.task == "binary" else chosen, dtype=np.float64)


def probe_columns(schema: DatasetSchema, rows: int = 24, seed: int = 0) -> dict[str, np.ndarray]:
    """Synthetic model-input columns covering the schema: in-range numbers, every category, an unknown
    category, and missing values where the schema allows them."""
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for feature in schema.features:
        if feature.kind == "numeric":
            low = feature.minimum if feature.minimum is not None else -100.0
            high = feature.maximum if feature.maximum is not None else 100.0
            values = rng.uniform(low, high, rows).round(2)
            if feature.nullable:
                values[::5] = np.nan
            columns[feature.name] = values
        else:
            choices: list[str | None] = [*feature.categories, "__unknown__"]
            if feature.nullable:
                choices.append(None)
            columns[feature.name] = np.array([choices[i % len(choices)] for i in range(rows)], dtype=object)
    columns.update(engineered_columns(columns, schema))
    return columns


def _verified(model: LoadedModel, compiled: CompiledPreprocessing | None) -> CompiledPreprocessing | None:
    """``compiled`` if it answers like the sklearn pipeline on probe rows (its tree walk, if any, like the
    estimator); otherwise the part that does not, dropped with a warning."""
    if compiled is None:
        return None
    probe = probe_columns(model.schema)
    rows = len(next(iter(probe.values())))
    expected = replace(model, compiled=None).predict_columns(probe, rows)
    matrix = compiled.transform(probe, rows)
    if not np.allclose(_estimator_output(compiled.estimator, matrix, model), expected, rtol=0.0, atol=1e-12):
        logger.warning("compiled preprocessing disagrees with the sklearn pipeline; serving through sklearn")
        return None
    if compiled.trees is not None and not np.allclose(
        _estimator_output(compiled.trees, matrix, model), expected, rtol=0.0, atol=1e-12
    ):
        logger.warning("compiled trees disagree with the estimator; small batches use the estimator")
        return replace(compiled, trees=None)
    return compiled


def _estimator_output(estimator: Any, matrix: np.ndarray, model: LoadedModel) -> np.ndarray:
    """The task's output of an estimator (or ``CompiledTrees``) on an already transformed matrix."""
    if model.schema.task == "regression":
        return np.asarray(estimator.predict(matrix), dtype=np.float64)
    chosen = np.asarray(estimator.predict_proba(matrix))[:, model.class_columns]
    return chosen[:, 0] if model.schema.task == "binary" else chosen


def load_model(model_dir: str | Path) -> LoadedModel:
    """Load ``model.joblib`` and ``model_metadata.json`` from ``model_dir`` (with a verified fast path)."""
    directory = Path(model_dir)
    metadata = json.loads((directory / METADATA_FILE).read_text())
    pipeline = joblib.load(directory / MODEL_FILE)
    trained_with = metadata.get("sklearn_version")
    if trained_with and trained_with != sklearn.__version__:
        logger.warning("model trained with scikit-learn %s, serving with %s", trained_with, sklearn.__version__)
    model = LoadedModel(
        pipeline=pipeline,
        schema=DatasetSchema.from_dict(metadata["schema"]),
        version=str(metadata["model_version"]),
        threshold=float(metadata.get("decision_threshold", DEFAULT_THRESHOLD)),
        metadata=metadata,
    )
    return replace(model, compiled=_verified(model, compile_pipeline(pipeline)))


# ---- decoding: bytes -> rows (schema-free) ---------------------------------------------------------


@dataclass(frozen=True)
class DecodedRequest:
    """A syntactically valid request; ``predict_fn`` checks it against the model's schema.

    ``rows``: lists of values (CSV strings or JSON values); ``records``: dicts keyed by feature name.
    A CSV request may still start with a header (recognised with the schema), so its row limit is checked
    again once the header is known.
    """

    kind: Literal["rows", "records"]
    items: Sequence[Any]
    source: Literal["csv", "json"] = "json"
    limits: Limits = Limits()


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _text(body: str | bytes | bytearray, limits: Limits) -> str:
    size = len(body)
    if isinstance(body, str) and limits.max_payload_bytes >= size > limits.max_payload_bytes // 4:
        size = len(body.encode("utf-8"))
    if size > limits.max_payload_bytes:
        raise RequestError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"payload of {size} bytes exceeds the limit of {limits.max_payload_bytes} bytes",
        )
    if isinstance(body, str):
        text = body
        # the container decodes exactly text/csv and application/json itself, replacing undecodable bytes
        replaced = text.find("\ufffd")
        if replaced >= 0:
            raise _bad_request(f"body is not valid UTF-8: an undecodable byte at character {replaced}")
    else:
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError as error:
            raise _bad_request(f"body is not valid UTF-8: {error}") from None
    if not text.strip():
        raise _bad_request("empty request body")
    return text


def _check_row_count(count: int, limits: Limits) -> None:
    if count == 0:
        raise _bad_request("no rows in request")
    if count > limits.max_rows:
        raise RequestError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"{count} rows exceed the limit of {limits.max_rows} rows"
        )


def _decode_csv(text: str, limits: Limits) -> DecodedRequest:
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > limits.max_rows + 1:  # (+1: a header line) cheap early exit before splitting
        _check_row_count(len(lines), limits)
    rows = list(csv.reader(lines)) if '"' in text else [line.split(",") for line in lines]
    return DecodedRequest(kind="rows", items=rows, source="csv", limits=limits)


def _decode_json(text: str, limits: Limits) -> DecodedRequest:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        raise _bad_request(f"invalid JSON: {error}") from None
    items = payload.get("instances") if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        raise _bad_request('JSON body must be {"instances": [...]} or a list of records')
    _check_row_count(len(items), limits)
    first = items[0]
    if isinstance(first, dict):
        kind: Literal["rows", "records"] = "records"
    elif isinstance(first, list):
        kind = "rows"
    else:
        raise _bad_request(f"row 1: expected a list of values or an object, got {type(first).__name__}")
    expected = dict if kind == "records" else list
    for number, item in enumerate(items, start=1):
        if not isinstance(item, expected):
            raise _bad_request(
                f"row {number}: expected {'an object' if kind == 'records' else 'a list'} like row 1, "
                f"got {type(item).__name__}"
            )
    return DecodedRequest(kind=kind, items=items, source="json", limits=limits)


def decode_request(body: str | bytes | bytearray, content_type: str | None, limits: Limits) -> DecodedRequest:
    """Check size, encoding and syntax of a request body; raises ``RequestError``."""
    media = _media_type(content_type)
    if media not in (CSV, JSON):
        problem = f"unsupported Content-Type {content_type!r}" if content_type else "missing Content-Type"
        raise RequestError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, f"{problem}; use {CSV} or {JSON}")
    text = _text(body, limits)
    return _decode_csv(text, limits) if media == CSV else _decode_json(text, limits)


# ---- validation: rows -> feature arrays (needs the schema) ----------------------------------------


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, float) and math.isnan(value)


def _numeric_column(values: Sequence[Any], feature: Feature, json_values: bool) -> np.ndarray:
    try:
        column = np.array(values, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        column = None
    if column is not None and json_values and any(isinstance(v, bool | str) for v in values):
        column = None  # JSON numbers only: true/false or "12" must not slip through as numbers
    if column is None:
        column = np.empty(len(values), dtype=np.float64)
        for index, value in enumerate(values):
            if _is_missing(value):
                column[index] = np.nan
                continue
            if isinstance(value, bool) or (json_values and not isinstance(value, int | float)):
                raise _bad_request(
                    f"row {index + 1}, column {feature.name!r}: expected a number, got {json.dumps(value)}"
                )
            try:
                column[index] = float(value)
            except (ValueError, TypeError, OverflowError):
                raise _bad_request(
                    f"row {index + 1}, column {feature.name!r}: expected a number, got {value!r}"
                ) from None
    finite = np.isfinite(column)
    if not finite.all():
        for index in np.flatnonzero(~finite).tolist():
            value = values[index]
            if np.isinf(column[index]):
                raise _bad_request(f"row {index + 1}, column {feature.name!r}: expected a finite number, got {value!r}")
            if not feature.nullable:
                shown = "a missing value" if _is_missing(value) else repr(value)
                raise _bad_request(f"row {index + 1}, column {feature.name!r}: a value is required, got {shown}")
    return column


def _categorical_column(values: Sequence[Any], feature: Feature) -> np.ndarray:
    column = np.empty(len(values), dtype=object)
    for index, value in enumerate(values):
        if isinstance(value, str):
            text = value.strip()
            column[index] = text if text else None
        elif value is None:
            column[index] = None
        elif isinstance(value, int | float) and not isinstance(value, bool):
            column[index] = str(value)  # an unknown category for the one-hot encoder, not an error
        else:
            raise _bad_request(f"row {index + 1}, column {feature.name!r}: expected a string, got {json.dumps(value)}")
        if column[index] is None and not feature.nullable:
            raise _bad_request(f"row {index + 1}, column {feature.name!r}: a value is required")
    return column


def _column_order(header: Sequence[str], schema: DatasetSchema) -> list[int]:
    names = [name.strip() for name in header]
    expected = schema.feature_names
    missing = [name for name in expected if name not in names]
    unknown = [name for name in names if name not in expected]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if missing or unknown or duplicated:
        problems = [
            f"{label} column(s) {values}"
            for label, values in (("missing", missing), ("unknown", unknown), ("duplicated", duplicated))
            if values
        ]
        raise _bad_request(f"header: {'; '.join(problems)}")
    return [names.index(name) for name in expected]


def _columns_from_rows(request: DecodedRequest, schema: DatasetSchema) -> list[Sequence[Any]]:
    rows = list(request.items)
    expected = len(schema.feature_names)
    order = list(range(expected))
    if request.source == "csv" and rows and rows[0] and rows[0][0].strip() in schema.feature_names:
        order = _column_order(rows[0], schema)
        rows = rows[1:]
        if not rows:
            raise _bad_request("no rows in request (only a header)")
    _check_row_count(len(rows), request.limits)
    for number, row in enumerate(rows, start=1):
        if len(row) != expected:
            raise _bad_request(f"row {number}: expected {expected} columns, got {len(row)}")
    columns = list(zip(*rows, strict=True))
    return [columns[index] for index in order]


def _columns_from_records(request: DecodedRequest, schema: DatasetSchema) -> list[Sequence[Any]]:
    records: Sequence[dict[str, Any]] = request.items
    names = schema.feature_names
    allowed = set(names)
    required = {f.name for f in schema.features if not f.nullable}
    for number, record in enumerate(records, start=1):
        if record.keys() == allowed:
            continue
        unknown = sorted(set(record) - allowed)
        if unknown:
            raise _bad_request(f"row {number}: unknown field(s) {unknown}")
        missing = [name for name in names if name in required and name not in record]
        if missing:
            raise _bad_request(f"row {number}: missing field(s) {missing}")
    return [[record.get(name) for record in records] for name in names]


def request_columns(request: DecodedRequest, schema: DatasetSchema) -> dict[str, np.ndarray]:
    """Validate a decoded request against ``schema``: one array per raw feature, in schema order.

    Numeric features become float64 (missing: NaN), categorical ones object arrays (missing: None).
    """
    if request.kind == "records":
        columns = _columns_from_records(request, schema)
    else:
        columns = _columns_from_rows(request, schema)
    json_values = request.source == "json"
    data: dict[str, np.ndarray] = {}
    for feature, values in zip(schema.features, columns, strict=True):
        if feature.kind == "numeric":
            data[feature.name] = _numeric_column(values, feature, json_values)
        else:
            data[feature.name] = _categorical_column(values, feature)
    return data


# ---- encoding --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """The answer for every row of a request, by task: binary, ``probabilities`` (of the positive label) and
    ``labels``; multiclass, ``labels`` and ``probabilities`` (rows x ``classes``, declared order); regression,
    ``values``."""

    probabilities: np.ndarray | None
    labels: np.ndarray | None
    model_version: str
    task: str = "binary"
    classes: tuple[Label, ...] = ()
    values: np.ndarray | None = None


def prediction_of(output: np.ndarray, model: LoadedModel) -> Prediction:
    """A ``Prediction`` from the model's output (``LoadedModel.predict_columns``)."""
    schema = model.schema
    if schema.task == "regression":
        return Prediction(None, None, model.version, "regression", values=np.asarray(output, dtype=np.float64))
    labels = np.asarray(schema.class_labels, dtype=np.int64 if schema.numeric_labels else object)
    if schema.task == "multiclass":
        return Prediction(output, labels[output.argmax(axis=1)], model.version, "multiclass", schema.class_labels)
    positive = schema.class_labels.index(schema.positive)
    chosen = np.where(output >= model.threshold, positive, 1 - positive)
    return Prediction(output, labels[chosen], model.version, "binary", schema.class_labels)


def _csv_field(value: Any) -> str:
    text = str(value)
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n\r') else text


def prediction_records(prediction: Prediction) -> list[dict[str, Any]]:
    """The ``predictions`` of the JSON response: one object per row (see the module docstring)."""
    if prediction.task == "regression" and prediction.values is not None:
        return [{"value": v} for v in prediction.values.tolist()]
    assert prediction.probabilities is not None and prediction.labels is not None
    labels = prediction.labels.tolist()
    if prediction.task == "multiclass":
        names = [str(c) for c in prediction.classes]
        return [
            {"label": label, "probabilities": dict(zip(names, row, strict=True))}
            for label, row in zip(labels, prediction.probabilities.tolist(), strict=True)
        ]
    probabilities = prediction.probabilities.tolist()
    return [{"probability": p, "label": label} for p, label in zip(probabilities, labels, strict=True)]


def prediction_lines(prediction: Prediction) -> list[str]:
    """The ``text/csv`` response lines: ``probability,label`` / ``label,p1,p2,...`` / ``value``."""
    if prediction.task == "regression" and prediction.values is not None:
        return [repr(v) for v in prediction.values.tolist()]
    assert prediction.probabilities is not None and prediction.labels is not None
    labels = prediction.labels.tolist()
    if prediction.task == "multiclass":
        return [
            ",".join([_csv_field(label), *map(repr, row)])
            for label, row in zip(labels, prediction.probabilities.tolist(), strict=True)
        ]
    probabilities = prediction.probabilities.tolist()
    return [f"{p!r},{_csv_field(label)}" for p, label in zip(probabilities, labels, strict=True)]


def _negotiate(accept: str | None) -> str:
    if not accept:
        return JSON
    for part in accept.split(","):
        media = _media_type(part)
        if media in (JSON, CSV):
            return media
        if media in ("*/*", "application/*", ""):
            return JSON
        if media == "text/*":
            return CSV
    raise RequestError(HTTPStatus.NOT_ACCEPTABLE, f"unsupported Accept {accept!r}; use {JSON} or {CSV}")


def encode_prediction(prediction: Prediction, accept: str | None) -> tuple[str, str]:
    """The response body and its content type."""
    media = _negotiate(accept)
    if media == CSV:
        return "\n".join(prediction_lines(prediction)) + "\n", CSV
    body = {"model_version": prediction.model_version, "predictions": prediction_records(prediction)}
    return json.dumps(body), JSON


# ---- what the container calls ------------------------------------------------------------------------


def model_fn(model_dir: str) -> LoadedModel:
    """Load the model for serving; OpenMP is limited to ``INFERENCE_THREADS`` (default 1) threads.

    The container runs one worker process per CPU, and a small request gains nothing from a thread team:
    on a busy host, waking OpenMP threads turns a millisecond prediction into tens of milliseconds.
    """
    threadpool_limits(limits=int(os.environ.get(THREADS_ENV, DEFAULT_THREADS)), user_api="openmp")
    return load_model(model_dir)


def predict(request: DecodedRequest, model: LoadedModel) -> Prediction:
    """Validate a decoded request against the model's schema and score it; raises ``RequestError``."""
    columns = request_columns(request, model.schema)
    columns.update(engineered_columns(columns, model.schema))
    return prediction_of(model.predict_columns(columns, len(next(iter(columns.values())))), model)


def transform_fn(
    model: LoadedModel, request_body: str | bytes | bytearray, content_type: str | None, accept: str | None
) -> tuple[str, str] | ClientErrorResponse:
    """One request: ``(body, content_type)`` (the container answers 200), or the client error's own response."""
    try:
        prediction = predict(decode_request(request_body, content_type, Limits.from_env()), model)
        return encode_prediction(prediction, accept)
    except RequestError as error:
        return error.response()
