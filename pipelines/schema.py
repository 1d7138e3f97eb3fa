"""The dataset contract: one model for the declaration a team writes and the document every job reads.

A dataset is declared in ``datasets/<name>.yaml`` (reviewed like code; ``stacks/datasets.py`` reads the YAML,
wraps every error with the file path and checks what only the stack knows: the stage settings a declaration
overrides and the SageMaker names derived from the dataset name). The document is this module's
``DatasetSchema``: ``DatasetSchema.from_dict`` is strict (an unknown key, a value of the wrong type or a rule
broken fails with the field's path, e.g. ``features[2].categories``), and the same rules run when a schema is
built in code (``__post_init__``), so the two ways cannot drift apart.

It is deliberately standard library only: the same file ships to Glue (``--extra-py-files``), into the
SageMaker model archive and into the Lambda asset; the stack passes it to the jobs as JSON
(``DatasetSchema.to_json`` / ``DatasetSchema.from_json``), so there is one source of truth.

What it holds:

- the task (``binary`` | ``multiclass`` | ``regression``), the target and an optional key column (without one,
  the ETL derives a row id from the row's content, column ``ROW_ID``);
- the features (numeric with an optional inclusive range, categorical with its categories; nullable or not);
- the class labels as they appear in the data (ints or strings; binary defaults to 0/1 with 1 positive);
- engineered features as expressions over numeric features (``parse_expression``: + - * /, comparisons,
  numbers, column names and the functions of ``FUNCTIONS``; ``pipelines.features`` evaluates them with numpy);
- the evaluation gate (primary metric, floor and minimum improvement, in the metric's direction: ``METRICS``);
- optional overrides of the stage's ``serving``, ``alarms``, ``retrain`` (its guard and an optional ``schedule``)
  and ``retention`` (days its captured requests, joined labels and labelled production rows are kept) settings
  (keys checked by the stack against ``stacks.config``).
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, cast

Task = Literal["binary", "multiclass", "regression"]
FeatureKind = Literal["numeric", "categorical"]
Label = str | int

TASKS: tuple[Task, ...] = ("binary", "multiclass", "regression")
FEATURE_KINDS: tuple[FeatureKind, ...] = ("numeric", "categorical")
SPLITS: tuple[str, ...] = ("train", "validation", "test")
ROW_ID = "row_id"
"""The derived key column of a dataset without a key: 16 hex digits of a hash of the row's typed values."""
RESERVED_COLUMNS: tuple[str, ...] = (ROW_ID, "split", "version", "source_line", "reject_reason")
"""Names the platform adds to curated rows, partitions and rejects: no declared column may take one."""
RESERVED_PREFIX = "prod_"
"""The provenance and partition columns of labelled production rows (``lambdas/ground_truth/production.py``)."""
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
"""A dataset name: lowercase letters and digits in hyphen-separated words (it becomes part of S3 prefixes and
of SageMaker names, whose pattern is ``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``)."""
MAX_EXPRESSION_CHARS = 500
OVERRIDE_SECTIONS: tuple[str, ...] = ("serving", "alarms", "retrain", "retention")
SCHEMA_KEYS: tuple[str, ...] = (
    "name",
    "description",
    "task",
    "target",
    "key",
    "labels",
    "positive_label",
    "features",
    "engineered",
    "gate",
    "stratify",
    "model",
    "data_policy",
    *OVERRIDE_SECTIONS,
)
"""The keys of a declaration, in the order ``to_dict`` and ``mlops dataset init`` write them."""


class SchemaError(ValueError):
    """A declaration breaks a rule; ``field`` is the path of the offending value (``features[2].name``)."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(f"{field_path}: {message}" if field_path else message)
        self.field = field_path
        self.message = message

    def under(self, prefix: str) -> SchemaError:
        """The same error with ``prefix`` in front of its field path."""
        return SchemaError(f"{prefix}.{self.field}" if self.field else prefix, self.message)


# ---- metrics ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A model-quality metric: the tasks that report it and its direction."""

    name: str
    tasks: tuple[Task, ...]
    higher_is_better: bool
    unit_interval: bool = False  # its values lie in [0, 1]

    def better(self, value: float, other: float) -> float:
        """How much ``value`` beats ``other`` in this metric's direction (negative: worse)."""
        return value - other if self.higher_is_better else other - value


METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric("auc", ("binary",), True, True),
        Metric("accuracy", ("binary", "multiclass"), True, True),
        Metric("f1", ("binary",), True, True),
        Metric("precision", ("binary",), True, True),
        Metric("recall", ("binary",), True, True),
        Metric("log_loss", ("binary", "multiclass"), False),
        Metric("brier_score", ("binary",), False, True),
        Metric("expected_calibration_error", ("binary",), False, True),
        Metric("macro_f1", ("multiclass",), True, True),
        Metric("weighted_f1", ("multiclass",), True, True),
        Metric("rmse", ("regression",), False),
        Metric("mae", ("regression",), False),
        Metric("r2", ("regression",), True),
    )
}
"""Every metric the jobs compute, in report order; ``task_metrics`` lists one task's."""


def task_metrics(task: Task) -> tuple[str, ...]:
    """The metrics the training and evaluation jobs report for ``task``, in report order."""
    return tuple(name for name, metric in METRICS.items() if task in metric.tasks)


# ---- engineered-feature expressions ----------------------------------------------------------------

FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "coalesce": (2, None),  # the first non-missing argument
    "min": (2, None),  # element-wise; missing if any argument is missing
    "max": (2, None),
    "abs": (1, 1),
    "log": (1, 1),  # natural log; missing for x <= 0
    "log1p": (1, 1),  # log(1 + x); missing for x <= -1
    "exp": (1, 1),
    "sqrt": (1, 1),  # missing for x < 0
    "clip": (3, 3),  # clip(x, low, high)
    "where": (3, 3),  # where(condition, if_true, if_false)
    "isnull": (1, 1),  # 1 where missing, else 0
}
"""The functions an expression may call, with their (minimum, maximum or None) number of arguments."""

_OPERATORS: tuple[type[ast.AST], ...] = (
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.USub,
    ast.UAdd,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.Eq,
    ast.NotEq,
)


def _syntax(node: ast.AST) -> str:
    return type(node).__name__


@lru_cache(maxsize=256)
def parse_expression(text: str) -> ast.Expression:
    """The syntax tree of an engineered-feature expression; ``SchemaError`` for anything outside the language.

    The language: numbers, column names, ``+ - * /``, unary ``-``, one comparison (``< <= > >= == !=``),
    parentheses and calls of ``FUNCTIONS`` by name with positional arguments. It is parsed, never executed:
    ``pipelines.features`` walks the tree with numpy.
    """
    if not isinstance(text, str) or not text.strip():
        raise SchemaError("", "an expression must be a non-empty string")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise SchemaError("", f"the expression is {len(text)} characters; at most {MAX_EXPRESSION_CHARS}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise SchemaError("", f"syntax error at column {error.offset or 0} in {text!r}: {error.msg}") from None
    except (ValueError, RecursionError, MemoryError) as error:
        raise SchemaError("", f"cannot parse {text!r}: {error}") from None
    for node in ast.walk(tree.body):
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise SchemaError("", f"{node.value!r} is not a number (expressions compute with numbers) in {text!r}")
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise SchemaError("", f"only functions called by name are allowed, in {text!r}")
            name = node.func.id
            if name not in FUNCTIONS:
                raise SchemaError(
                    "", f"unknown function {name!r} in {text!r} (allowed: {', '.join(sorted(FUNCTIONS))})"
                )
            if node.keywords:
                raise SchemaError("", f"{name}() takes positional arguments only, in {text!r}")
            low, high = FUNCTIONS[name]
            count = len(node.args)
            if count < low or (high is not None and count > high):
                wanted = str(low) if low == high else f"at least {low}" if high is None else f"{low} to {high}"
                raise SchemaError("", f"{name}() takes {wanted} argument(s), got {count}, in {text!r}")
            if any(isinstance(arg, ast.Starred) for arg in node.args):
                raise SchemaError("", f"{name}() cannot take *arguments, in {text!r}")
        elif isinstance(node, ast.Compare):
            if len(node.ops) != 1:
                raise SchemaError("", f"one comparison at a time (no chains like a < b < c), in {text!r}")
        elif isinstance(node, ast.Name):
            if not isinstance(node.ctx, ast.Load):
                raise SchemaError("", f"unsupported use of {node.id!r} in {text!r}")
        elif not isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Load, *_OPERATORS)):
            raise SchemaError("", f"unsupported syntax ({_syntax(node)}) in {text!r}")
    return tree


def expression_columns(text: str) -> list[str]:
    """The column names an expression reads, in order of first use (function names excluded)."""
    tree = parse_expression(text)
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    used = [node for node in ast.walk(tree.body) if isinstance(node, ast.Name) and id(node) not in called]
    names: list[str] = []
    for node in sorted(used, key=lambda n: n.col_offset):
        if node.id not in names:
            names.append(node.id)
    return names


# ---- strict parsing helpers ------------------------------------------------------------------------


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SchemaError(where, f"expected a mapping of keys to values, got {_kind(value)}")
    for key in value:
        if not isinstance(key, str):
            raise SchemaError(where, f"keys must be strings, got {key!r}")
    return value


def _keys(data: Mapping[str, Any], allowed: Sequence[str], required: Sequence[str], where: str) -> None:
    for key in data:
        if key not in allowed:
            raise SchemaError(_join(where, key), f"unknown key (allowed: {', '.join(allowed)})")
    for key in required:
        if key not in data or data[key] is None:
            raise SchemaError(_join(where, key), "is required")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list"}.get(
        type(value), type(value).__name__
    )


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SchemaError(where, f"expected a non-empty string, got {_kind(value)}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SchemaError(where, f"expected a finite number, got {_kind(value)} {value!r}")
    return float(value)


def _optional_number(value: Any, where: str) -> float | None:
    return None if value is None else _number(value, where)


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise SchemaError(where, f"expected true or false, got {_kind(value)}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise SchemaError(where, f"expected a list, got {_kind(value)}")
    return list(value)


_BOOLEAN = "a boolean: YAML reads yes/no/on/off/true/false unquoted as booleans; quote the value, e.g. 'yes'"


def _label(value: Any, where: str) -> Label:
    if isinstance(value, bool):
        raise SchemaError(where, _BOOLEAN)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip() == value and value:
        return value
    raise SchemaError(where, f"expected an integer or a string without surrounding spaces, got {_kind(value)}")


def _category(value: Any, where: str) -> str:
    if isinstance(value, bool):
        raise SchemaError(where, _BOOLEAN)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value:
        return value
    raise SchemaError(where, f"expected a string (or an integer), got {_kind(value)}")


def _column_name(value: Any, where: str) -> str:
    name = _str(value, where)
    if name != name.strip() or any(c in name for c in '\n\r\t,"'):
        raise SchemaError(
            where, f"{name!r}: a column name cannot hold surrounding spaces, tabs, newlines, commas or quotes"
        )
    return name


# ---- the model -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Feature:
    """One model input column."""

    name: str
    kind: FeatureKind
    # numeric: inclusive valid range (None = unbounded)
    minimum: float | None = None
    maximum: float | None = None
    # categorical: the allowed values
    categories: tuple[str, ...] = ()
    nullable: bool = False

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise SchemaError("kind", f"{self.kind!r} is not one of {', '.join(FEATURE_KINDS)}")
        if self.kind == "categorical":
            if not self.categories:
                raise SchemaError("categories", f"categorical feature {self.name!r} needs at least one category")
            if self.minimum is not None or self.maximum is not None:
                raise SchemaError("minimum", f"categorical feature {self.name!r} cannot have a range")
            seen: set[str] = set()
            for index, category in enumerate(self.categories):
                if category in seen:
                    raise SchemaError(f"categories[{index}]", f"{category!r} is listed twice")
                seen.add(category)
        if self.kind == "numeric" and self.categories:
            raise SchemaError("categories", f"numeric feature {self.name!r} cannot have categories")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise SchemaError("maximum", f"feature {self.name!r}: minimum {self.minimum} > maximum {self.maximum}")

    @classmethod
    def from_dict(cls, data: Any) -> Feature:
        data = _mapping(data, "")
        _keys(data, ("name", "kind", "minimum", "maximum", "categories", "nullable"), ("name", "kind"), "")
        kind = data["kind"]
        if kind not in FEATURE_KINDS:
            raise SchemaError("kind", f"{kind!r} is not one of {', '.join(FEATURE_KINDS)}")
        categories = tuple(
            _category(value, f"categories[{i}]")
            for i, value in enumerate(_list(data.get("categories", []), "categories"))
        )
        return cls(
            name=_column_name(data["name"], "name"),
            kind=cast(FeatureKind, kind),
            minimum=_optional_number(data.get("minimum"), "minimum"),
            maximum=_optional_number(data.get("maximum"), "maximum"),
            categories=categories,
            nullable=_bool(data.get("nullable", False), "nullable"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.categories:
            out["categories"] = list(self.categories)
        if self.nullable:
            out["nullable"] = True
        return out


@dataclass(frozen=True)
class Engineered:
    """A column computed from the numeric features (and earlier engineered columns) by an expression."""

    name: str
    expression: str

    def __post_init__(self) -> None:
        try:
            parse_expression(self.expression)
        except SchemaError as error:
            raise SchemaError("expression", error.message) from None

    @property
    def inputs(self) -> list[str]:
        return expression_columns(self.expression)

    @classmethod
    def from_dict(cls, data: Any) -> Engineered:
        data = _mapping(data, "")
        _keys(data, ("name", "expression"), ("name", "expression"), "")
        return cls(name=_column_name(data["name"], "name"), expression=_str(data["expression"], "expression"))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "expression": self.expression}


@dataclass(frozen=True)
class Gate:
    """The evaluation gate: a challenger must reach ``floor`` on ``metric`` and beat the champion by at least
    ``min_improvement``, both in the metric's direction (for an error such as RMSE, ``floor`` is the highest
    acceptable value). Satisfies ``pipelines.evaluation.evaluate.GateSettings``."""

    metric: str
    floor: float
    min_improvement: float = 0.0

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise SchemaError("metric", f"{self.metric!r} is not a metric ({', '.join(METRICS)})")
        if self.min_improvement < 0:
            raise SchemaError("min_improvement", f"{self.min_improvement} is negative")
        if METRICS[self.metric].unit_interval and not 0.0 <= self.floor <= 1.0:
            raise SchemaError("floor", f"{self.metric} lies in [0, 1]; a floor of {self.floor} is outside")
        if not METRICS[self.metric].higher_is_better and self.floor < 0:
            raise SchemaError("floor", f"{self.metric} is never negative; a ceiling of {self.floor} cannot be met")

    @property
    def primary_metric(self) -> str:
        return self.metric

    @property
    def absolute_floor(self) -> float:
        return self.floor

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.metric].higher_is_better

    @classmethod
    def from_dict(cls, data: Any) -> Gate:
        data = _mapping(data, "")
        _keys(data, ("metric", "floor", "min_improvement"), ("metric", "floor"), "")
        return cls(
            metric=_str(data["metric"], "metric"),
            floor=_number(data["floor"], "floor"),
            min_improvement=_number(data.get("min_improvement", 0.0), "min_improvement"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "floor": self.floor, "min_improvement": self.min_improvement}


# ---- what a retrain trains and tests on -------------------------------------------------------------


def _count(value: Any, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SchemaError(where, f"expected a whole number >= {minimum}, got {_kind(value)} {value!r}")
    return value


@dataclass(frozen=True)
class DataPolicy:
    """What a retrain trains and tests on besides the latest upload (``pipelines.data_policy`` applies it): the
    labelled production rows of the last ``production_window_days`` days, once at least ``min_labelled_rows`` of
    them arrived, making up at most ``max_production_share`` of the training rows; the test set that decides
    champion vs challenger is the most recent ``test_from_production_rows`` labelled rows when the window holds
    that many on top of the minimum (else the upload's test split). A declaration without ``data_policy``
    retrains on its latest upload only."""

    production_window_days: int = 14
    min_labelled_rows: int = 200
    max_production_share: float = 0.5
    test_from_production_rows: int = 200

    KEYS = ("production_window_days", "min_labelled_rows", "max_production_share", "test_from_production_rows")

    def __post_init__(self) -> None:
        _count(self.production_window_days, "production_window_days", 1)
        _count(self.min_labelled_rows, "min_labelled_rows", 1)
        _count(self.test_from_production_rows, "test_from_production_rows", 1)
        if not 0.0 < self.max_production_share <= 1.0:
            raise SchemaError("max_production_share", f"{self.max_production_share} is not in (0, 1]")

    @classmethod
    def from_dict(cls, data: Any) -> DataPolicy:
        data = _mapping(data, "")
        _keys(data, cls.KEYS, (), "")
        defaults = cls()
        return cls(
            production_window_days=_count(
                data.get("production_window_days", defaults.production_window_days), "production_window_days", 1
            ),
            min_labelled_rows=_count(data.get("min_labelled_rows", defaults.min_labelled_rows), "min_labelled_rows", 1),
            max_production_share=_number(
                data.get("max_production_share", defaults.max_production_share), "max_production_share"
            ),
            test_from_production_rows=_count(
                data.get("test_from_production_rows", defaults.test_from_production_rows),
                "test_from_production_rows",
                1,
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.KEYS}


# ---- the model a dataset trains ---------------------------------------------------------------------


@dataclass(frozen=True)
class Hyperparameter:
    """A hyperparameter a built-in estimator accepts: ``int``, ``float`` (an integer is accepted), ``bool`` or
    ``choice`` (one of ``choices``), inclusive bounds, ``nullable`` (null allowed: the estimator's "no limit")
    and ``only`` (``classifier`` or ``regressor`` when the other variant has no such parameter)."""

    kind: Literal["int", "float", "bool", "choice"]
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    nullable: bool = False
    only: Literal["classifier", "regressor"] | None = None

    def check(self, value: Any, where: str) -> Any:
        """``value`` typed (a float for a ``float``); ``SchemaError`` at ``where`` for a wrong type or range."""
        if value is None and self.nullable:
            return None
        if self.kind == "bool":
            return _bool(value, where)
        if self.kind == "choice":
            if value not in self.choices:
                raise SchemaError(where, f"expected one of {', '.join(self.choices)}, got {_kind(value)} {value!r}")
            return value
        if self.kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise SchemaError(where, f"expected an integer, got {_kind(value)} {value!r}")
        number = _number(value, where)
        if (self.minimum is not None and number < self.minimum) or (self.maximum is not None and number > self.maximum):
            low = "-inf" if self.minimum is None else f"{self.minimum:g}"
            high = "inf" if self.maximum is None else f"{self.maximum:g}"
            raise SchemaError(where, f"{value!r} is outside [{low}, {high}]")
        return int(number) if self.kind == "int" else number


@dataclass(frozen=True)
class Estimator:
    """A built-in estimator: the scikit-learn class for classification and for regression (by name: this module
    imports no scikit-learn; ``pipelines.training.estimators`` builds it) and the hyperparameters it accepts."""

    classifier: str
    regressor: str
    hyperparameters: Mapping[str, Hyperparameter]

    def accepts(self, task: Task) -> dict[str, Hyperparameter]:
        variant = "regressor" if task == "regression" else "classifier"
        return {name: spec for name, spec in self.hyperparameters.items() if spec.only in (None, variant)}

    def class_name(self, task: Task) -> str:
        return self.regressor if task == "regression" else self.classifier


DEFAULT_ESTIMATOR = "hist_gradient_boosting"
ESTIMATORS: dict[str, Estimator] = {
    DEFAULT_ESTIMATOR: Estimator(
        "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor",
        {
            "max_iter": Hyperparameter("int", 1, 10_000),
            "learning_rate": Hyperparameter("float", 1e-6, 10.0),
            "max_leaf_nodes": Hyperparameter("int", 2, 65_535, nullable=True),
            "max_depth": Hyperparameter("int", 1, 1_000, nullable=True),
            "min_samples_leaf": Hyperparameter("int", 1, None),
            "l2_regularization": Hyperparameter("float", 0.0, None),
        },
    ),
    "linear": Estimator(
        "LogisticRegression",
        "Ridge",
        {
            "C": Hyperparameter("float", 1e-9, None, only="classifier"),
            "class_weight": Hyperparameter("choice", choices=("balanced",), nullable=True, only="classifier"),
            "alpha": Hyperparameter("float", 0.0, None, only="regressor"),
            "max_iter": Hyperparameter("int", 1, 100_000),
            "fit_intercept": Hyperparameter("bool"),
        },
    ),
    "random_forest": Estimator(
        "RandomForestClassifier",
        "RandomForestRegressor",
        {
            "n_estimators": Hyperparameter("int", 1, 5_000),
            "max_depth": Hyperparameter("int", 1, 1_000, nullable=True),
            "min_samples_leaf": Hyperparameter("int", 1, None),
            "min_samples_split": Hyperparameter("int", 2, None),
            "max_features": Hyperparameter("choice", choices=("sqrt", "log2"), nullable=True),
            "class_weight": Hyperparameter("choice", choices=("balanced",), nullable=True, only="classifier"),
        },
    ),
}
"""The built-in estimators a declaration may name (``model.estimator``). The default, also when ``model`` is
absent, is histogram gradient boosting with the stage's hyperparameters (``TrainingSettings``)."""

ENTRY_POINT_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*/?$")
"""``model.entry_point``: a directory relative to the repository root (``models/churn``), no ``..``."""
ENTRY_POINT_SCRIPT = "train.py"
"""The script SageMaker runs in an ``entry_point`` directory (script mode's ``sagemaker_program``)."""


# ---- hyperparameter tuning (model.tuning) ------------------------------------------------------------

TUNING_STRATEGIES: tuple[str, ...] = ("Random", "Grid", "Bayesian", "Hyperband")
"""``HyperParameterTuningJobConfig.Strategy`` (SageMaker API Reference)."""
RANGE_TYPES: tuple[str, ...] = ("integer", "continuous", "categorical")
SCALING_TYPES: tuple[str, ...] = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
"""``ScalingType`` of an integer or continuous range; ``ReverseLogarithmic`` is for continuous ranges only."""
MAX_TUNED_HYPERPARAMETERS = 30
"""ParameterRanges: at most 30 ranges in all (the sum over the integer, continuous and categorical lists)."""
MAX_CATEGORICAL_VALUES = 30
"""CategoricalParameterRange.Values: 1 to 30 values."""
MAX_HYPERBAND_RESOURCE = 20_000
"""HyperbandStrategyConfig.MaxResource: at most 20,000 (epochs)."""
HYPERBAND_RESOURCE_KEYS: tuple[str, ...] = ("epochs", "numepochs", "n-epochs", "n_epochs", "num_epochs")
"""The static hyperparameters Hyperband infers ``MaxResource`` from when ``StrategyConfig`` gives none."""
TUNING_OBJECTIVE_SPLIT = "validation"
"""The split the tuning objective is computed on: never ``test``, which the evaluation gate scores."""


@dataclass(frozen=True)
class TuningRange:
    """The search range of one hyperparameter: ``integer`` / ``continuous`` between ``min`` and ``max`` (with
    an optional ``scaling``), or ``categorical`` over ``values``."""

    type: str
    minimum: float | None = None
    maximum: float | None = None
    scaling: str | None = None
    values: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))
        if self.type not in RANGE_TYPES:
            raise SchemaError("type", f"{self.type!r} is not one of {', '.join(RANGE_TYPES)}")
        if self.type == "categorical":
            if self.minimum is not None or self.maximum is not None or self.scaling is not None:
                raise SchemaError("type", "a categorical range has values, not min, max or scaling")
            if not 1 <= len(self.values) <= MAX_CATEGORICAL_VALUES:
                raise SchemaError("values", f"give 1 to {MAX_CATEGORICAL_VALUES} values, got {len(self.values)}")
            for index, value in enumerate(self.values):
                if value is not None and not isinstance(value, bool | int | float | str):
                    raise SchemaError(f"values[{index}]", f"expected a scalar, got {_kind(value)}")
            texts = [self.encode(value) for value in self.values]
            for index, text in enumerate(texts):
                if texts.index(text) != index:
                    raise SchemaError(f"values[{index}]", f"{self.values[index]!r} is listed twice")
            return
        if self.values:
            raise SchemaError("values", f"an {self.type} range has min and max, not values")
        for where, bound in (("min", self.minimum), ("max", self.maximum)):
            if bound is None:
                raise SchemaError(where, "is required")
            if self.type == "integer" and bound != int(bound):
                raise SchemaError(where, f"an integer range takes integers, got {bound!r}")
        assert self.minimum is not None and self.maximum is not None
        if self.minimum >= self.maximum:
            raise SchemaError("max", f"{self.maximum:g} must be greater than min {self.minimum:g}")
        if self.scaling is not None and self.scaling not in SCALING_TYPES:
            raise SchemaError("scaling", f"{self.scaling!r} is not one of {', '.join(SCALING_TYPES)}")
        if self.scaling == "Logarithmic" and self.minimum <= 0:
            raise SchemaError("scaling", "Logarithmic scaling needs a range of values greater than 0")
        if self.scaling == "ReverseLogarithmic":
            if self.type == "integer":
                raise SchemaError("scaling", "ReverseLogarithmic scaling is for continuous ranges only")
            if not (self.minimum >= 0 and self.maximum < 1):
                raise SchemaError("scaling", "ReverseLogarithmic scaling needs a range within 0 <= x < 1")

    @staticmethod
    def encode(value: Any) -> str:
        """A categorical value as SageMaker passes it (a string; the training toolkit ``json.loads`` it back):
        strings as they are, anything else as JSON (``true``, ``null``, ``3``)."""
        return value if isinstance(value, str) else json.dumps(value)

    def check_for(self, spec: Hyperparameter, where: str) -> None:
        """This range fits the built-in estimator's hyperparameter ``spec``; ``SchemaError`` at ``where``."""
        if self.type == "categorical":
            for index, value in enumerate(self.values):
                spec.check(value, f"{where}.values[{index}]")
            return
        wanted = {"integer": "int", "continuous": "float"}[self.type]
        if spec.kind != wanted:
            fitting = {"int": "an integer", "float": "a continuous"}.get(spec.kind, "a categorical")
            raise SchemaError(f"{where}.type", f"the hyperparameter is {spec.kind}: use {fitting} range")
        for key, bound in (("min", self.minimum), ("max", self.maximum)):
            spec.check(int(bound) if wanted == "int" and bound is not None else bound, f"{where}.{key}")

    def api(self, name: str) -> dict[str, Any]:
        """The range as CreateHyperParameterTuningJob takes it (every value a string)."""
        if self.type == "categorical":
            return {"Name": name, "Values": [self.encode(value) for value in self.values]}
        assert self.minimum is not None and self.maximum is not None
        low, high = (
            (str(int(self.minimum)), str(int(self.maximum)))
            if self.type == "integer"
            else (repr(float(self.minimum)), repr(float(self.maximum)))
        )
        return {"Name": name, "MinValue": low, "MaxValue": high, "ScalingType": self.scaling or "Auto"}

    @classmethod
    def from_dict(cls, data: Any) -> TuningRange:
        data = _mapping(data, "")
        _keys(data, ("type", "min", "max", "scaling", "values"), ("type",), "")
        return cls(
            type=_str(data["type"], "type"),
            minimum=_optional_number(data.get("min"), "min"),
            maximum=_optional_number(data.get("max"), "max"),
            scaling=None if data.get("scaling") is None else _str(data["scaling"], "scaling"),
            values=tuple(_list(data["values"], "values")) if "values" in data else (),
        )

    def to_dict(self) -> dict[str, Any]:
        if self.type == "categorical":
            return {"type": self.type, "values": list(self.values)}
        integer = self.type == "integer"
        out: dict[str, Any] = {
            "type": self.type,
            "min": int(self.minimum) if integer and self.minimum is not None else self.minimum,
            "max": int(self.maximum) if integer and self.maximum is not None else self.maximum,
        }
        if self.scaling is not None:
            out["scaling"] = self.scaling
        return out


@dataclass(frozen=True)
class Tuning:
    """``model.tuning``: a SageMaker automatic model tuning job instead of one training job. The objective is the
    gate's primary metric on the validation split, in the gate's direction (``DatasetSchema.tuning_objective``).

    ``max_jobs`` is required except for ``Grid``, which runs every combination of its categorical values and
    takes no maximum; ``max_resource`` (Hyperband's ``MaxResource``) is required for ``Hyperband``, which cannot
    infer it (no epochs hyperparameter here)."""

    strategy: str
    ranges: Mapping[str, TuningRange] = field(default_factory=dict, hash=False)
    max_jobs: int | None = None
    max_parallel_jobs: int = 1
    seed: int = 0
    max_resource: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ranges", dict(self.ranges))
        if self.strategy not in TUNING_STRATEGIES:
            raise SchemaError("strategy", f"{self.strategy!r} is not one of {', '.join(TUNING_STRATEGIES)}")
        if not self.ranges:
            raise SchemaError("ranges", "name at least one hyperparameter to tune")
        if len(self.ranges) > MAX_TUNED_HYPERPARAMETERS:
            raise SchemaError("ranges", f"at most {MAX_TUNED_HYPERPARAMETERS} hyperparameters, got {len(self.ranges)}")
        for name in self.ranges:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                raise SchemaError(f"ranges.{name}", "a hyperparameter name is letters, digits and _")
        for where, value in (("max_parallel_jobs", self.max_parallel_jobs), ("seed", self.seed)):
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if where == "seed" else 1):
                raise SchemaError(where, f"expected an integer >= {0 if where == 'seed' else 1}, got {value!r}")
        if self.strategy == "Grid":
            for name, spec in self.ranges.items():
                if spec.type != "categorical":
                    raise SchemaError(
                        f"ranges.{name}.type", "Grid searches categorical ranges only (SageMaker rejects the others)"
                    )
            if self.max_jobs is not None:
                raise SchemaError("max_jobs", "Grid runs every combination of the values: it takes no max_jobs")
            if self.max_parallel_jobs > self.trial_count:
                raise SchemaError(
                    "max_parallel_jobs",
                    f"{self.max_parallel_jobs} is more than the {self.trial_count} combinations Grid runs",
                )
        else:
            if self.max_jobs is None:
                raise SchemaError("max_jobs", f"is required for the {self.strategy} strategy")
            if isinstance(self.max_jobs, bool) or not isinstance(self.max_jobs, int) or self.max_jobs < 1:
                raise SchemaError("max_jobs", f"expected an integer >= 1, got {self.max_jobs!r}")
            if self.max_parallel_jobs > self.max_jobs:
                raise SchemaError(
                    "max_parallel_jobs", f"{self.max_parallel_jobs} is more than max_jobs ({self.max_jobs})"
                )
        if self.strategy == "Hyperband":
            if self.max_resource is None:
                raise SchemaError(
                    "max_resource",
                    "Hyperband needs its MaxResource (epochs): SageMaker infers it only from an epochs "
                    "hyperparameter, which the built-in training has not",
                )
            if isinstance(self.max_resource, bool) or not 1 <= self.max_resource <= MAX_HYPERBAND_RESOURCE:
                raise SchemaError("max_resource", f"expected an integer in [1, {MAX_HYPERBAND_RESOURCE}]")
        elif self.max_resource is not None:
            raise SchemaError("max_resource", "only the Hyperband strategy takes max_resource")

    @property
    def trial_count(self) -> int:
        """How many training jobs the tuning job runs at most: ``max_jobs``, or Grid's number of combinations."""
        if self.max_jobs is not None:
            return self.max_jobs
        return math.prod(len(spec.values) for spec in self.ranges.values())

    def check_model(self, model: ModelSpec, task: Task) -> None:
        """The ranges fit the model: a built-in estimator's hyperparameters for ``task`` (name, kind, bounds and
        choices); for a script, names only (its arguments are its own). A hyperparameter is either tuned or fixed."""
        for name in self.ranges:
            if name in model.hyperparameters:
                raise SchemaError(f"ranges.{name}", "also fixed in model.hyperparameters: tune it or fix it")
        if model.entry_point is not None:
            return
        accepted = ESTIMATORS[model.name].accepts(task)
        for name, spec in self.ranges.items():
            if name not in accepted:
                raise SchemaError(
                    f"ranges.{name}",
                    f"unknown hyperparameter of {model.name} for {task} (accepted: {', '.join(accepted)})",
                )
            spec.check_for(accepted[name], f"ranges.{name}")

    def job_config(self, objective: tuple[str, str]) -> dict[str, Any]:
        """CreateHyperParameterTuningJob's ``HyperParameterTuningJobConfig`` for ``(metric, Maximize|Minimize)``."""
        ranges: dict[str, list[dict[str, Any]]] = {
            "IntegerParameterRanges": [],
            "ContinuousParameterRanges": [],
            "CategoricalParameterRanges": [],
        }
        key = {"integer": "IntegerParameterRanges", "continuous": "ContinuousParameterRanges"}
        for name, spec in self.ranges.items():
            ranges[key.get(spec.type, "CategoricalParameterRanges")].append(spec.api(name))
        limits: dict[str, int] = {"MaxParallelTrainingJobs": self.max_parallel_jobs}
        if self.max_jobs is not None:
            limits["MaxNumberOfTrainingJobs"] = self.max_jobs
        config: dict[str, Any] = {
            "Strategy": self.strategy,
            "HyperParameterTuningJobObjective": {"MetricName": objective[0], "Type": objective[1]},
            "ResourceLimits": limits,
            "ParameterRanges": ranges,
            "RandomSeed": self.seed,
        }
        if self.strategy == "Hyperband":
            config["StrategyConfig"] = {"HyperbandStrategyConfig": {"MaxResource": self.max_resource}}
        return config

    @classmethod
    def from_dict(cls, data: Any) -> Tuning:
        data = _mapping(data, "")
        _keys(
            data,
            ("strategy", "max_jobs", "max_parallel_jobs", "seed", "max_resource", "ranges"),
            ("strategy", "ranges"),
            "",
        )
        ranges: dict[str, TuningRange] = {}
        for name, spec in _mapping(data["ranges"], "ranges").items():
            try:
                ranges[name] = TuningRange.from_dict(spec)
            except SchemaError as error:
                raise error.under(f"ranges.{name}") from None
        return cls(
            strategy=_str(data["strategy"], "strategy"),
            ranges=ranges,
            max_jobs=data.get("max_jobs"),
            max_parallel_jobs=data.get("max_parallel_jobs", 1),
            seed=data.get("seed", 0),
            max_resource=data.get("max_resource"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"strategy": self.strategy}
        if self.max_jobs is not None:
            out["max_jobs"] = self.max_jobs
        out["max_parallel_jobs"] = self.max_parallel_jobs
        if self.seed:
            out["seed"] = self.seed
        if self.max_resource is not None:
            out["max_resource"] = self.max_resource
        out["ranges"] = {name: spec.to_dict() for name, spec in self.ranges.items()}
        return out


@dataclass(frozen=True)
class ModelSpec:
    """``model:`` of a declaration: a built-in ``estimator`` with ``hyperparameters`` (checked against
    ``ESTIMATORS`` for the task), or an ``entry_point`` directory holding the user's ``train.py`` (script mode;
    its ``hyperparameters`` are passed as ``--name value`` and are the script's to check); ``tuning`` runs a
    SageMaker automatic model tuning job over ``tuning.ranges`` instead of one training job."""

    estimator: str | None = None
    hyperparameters: Mapping[str, Any] = field(default_factory=dict, hash=False)
    entry_point: str | None = None
    tuning: Tuning | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "hyperparameters", dict(self.hyperparameters))
        if self.entry_point is not None:
            if self.estimator is not None:
                raise SchemaError("entry_point", "give either estimator or entry_point, not both")
            if ".." in self.entry_point.split("/") or not ENTRY_POINT_PATTERN.match(self.entry_point):
                raise SchemaError(
                    "entry_point", f"{self.entry_point!r} must be a directory relative to the repository root"
                )
            for name, value in self.hyperparameters.items():
                if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                    raise SchemaError(f"hyperparameters.{name}", "a script argument name is letters, digits and _")
                if not isinstance(value, bool | int | float | str):
                    raise SchemaError(f"hyperparameters.{name}", f"expected a scalar, got {_kind(value)}")
        elif self.name not in ESTIMATORS:
            raise SchemaError("estimator", f"unknown estimator {self.name!r} (built-in: {', '.join(ESTIMATORS)})")

    @property
    def name(self) -> str:
        """The built-in estimator's name (the default when none is given); ``entry_point`` models have none."""
        return self.estimator or DEFAULT_ESTIMATOR

    @property
    def lineage(self) -> str:
        """What the registry records as the model: ``estimator=<name>`` or ``entry_point=<directory>``."""
        return f"entry_point={self.entry_point}" if self.entry_point else f"estimator={self.name}"

    def lineage_hyperparameters(self, task: Task, stage: Mapping[str, Any]) -> dict[str, Any]:
        """The hyperparameters the model trains with, for the registry: the stage's (``TrainingSettings``) that
        apply to the estimator (all of them for the default; ``seed`` for any built-in), the declared ones over
        them; a script's are its declared arguments only."""
        declared = self.check_task(task)
        if self.entry_point is not None:
            return declared
        accepted = ESTIMATORS[self.name].accepts(task)
        applied = {name: value for name, value in stage.items() if name in accepted or name == "seed"}
        return applied | declared

    def check_task(self, task: Task) -> dict[str, Any]:
        """The hyperparameters typed for ``task``; ``SchemaError`` (``hyperparameters.<name>``) for an unknown
        one or a wrong type/range."""
        if self.entry_point is not None:
            return dict(self.hyperparameters)
        accepted = ESTIMATORS[self.name].accepts(task)
        typed = {}
        for name, value in self.hyperparameters.items():
            where = f"hyperparameters.{name}"
            if name not in accepted:
                raise SchemaError(
                    where, f"unknown hyperparameter of {self.name} for {task} (accepted: {', '.join(accepted)})"
                )
            typed[name] = accepted[name].check(value, where)
        return typed

    def check_tuning(self, task: Task) -> None:
        """``tuning`` fits the model for ``task`` (``Tuning.check_model``); ``SchemaError`` under ``tuning``."""
        if self.tuning is None:
            return
        try:
            self.tuning.check_model(self, task)
        except SchemaError as error:
            raise error.under("tuning") from None

    def with_tuned(self, values: Mapping[str, Any]) -> ModelSpec:
        """This model with a tuning trial's hyperparameter values fixed (``values`` override the declared ones)."""
        return ModelSpec(
            estimator=self.estimator,
            hyperparameters={**self.hyperparameters, **values},
            entry_point=self.entry_point,
        )

    @classmethod
    def from_dict(cls, data: Any) -> ModelSpec:
        data = _mapping(data, "")
        _keys(data, ("estimator", "hyperparameters", "entry_point", "tuning"), (), "")
        estimator = data.get("estimator")
        entry_point = data.get("entry_point")
        tuning = None
        if data.get("tuning") is not None:
            try:
                tuning = Tuning.from_dict(data["tuning"])
            except SchemaError as error:
                raise error.under("tuning") from None
        return cls(
            estimator=None if estimator is None else _str(estimator, "estimator"),
            hyperparameters=_mapping(data.get("hyperparameters") or {}, "hyperparameters"),
            entry_point=None if entry_point is None else _str(entry_point, "entry_point"),
            tuning=tuning,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.entry_point is not None:
            out["entry_point"] = self.entry_point
        else:
            out["estimator"] = self.name
        if self.hyperparameters:
            out["hyperparameters"] = dict(self.hyperparameters)
        if self.tuning is not None:
            out["tuning"] = self.tuning.to_dict()
        return out


DEFAULT_GATES: dict[Task, Gate] = {
    "binary": Gate("auc", 0.7, 0.005),
    "multiclass": Gate("macro_f1", 0.6, 0.005),
    "regression": Gate("r2", 0.3, 0.005),
}
"""The gate of a declaration that names none (``mlops dataset init`` writes one to review)."""


@dataclass(frozen=True)
class DatasetSchema:
    """A declared dataset: its columns, task, labels, engineered features, gate and setting overrides."""

    name: str
    target: str
    features: tuple[Feature, ...]
    task: Task = "binary"
    key: str | None = None
    labels: tuple[Label, ...] = ()  # classification: the target's values; binary without labels: (0, 1)
    positive_label: Label | None = None  # binary: default 1 (or the second label)
    engineered: tuple[Engineered, ...] = ()
    gate: Gate | None = None  # None: DEFAULT_GATES[task]
    stratify: bool | None = None  # stratified splits; None: multiclass only (see ``stratified``)
    model: ModelSpec | None = None  # None: the default estimator with the stage's hyperparameters
    data_policy: DataPolicy | None = None  # None: a retrain trains and tests on the latest upload only
    description: str = ""
    serving: Mapping[str, Any] = field(default_factory=dict, hash=False)
    alarms: Mapping[str, Any] = field(default_factory=dict, hash=False)
    retrain: Mapping[str, Any] = field(default_factory=dict, hash=False)
    retention: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        for section in OVERRIDE_SECTIONS:
            object.__setattr__(self, section, dict(getattr(self, section)))
        if not NAME_PATTERN.match(self.name or ""):
            raise SchemaError(
                "name", f"{self.name!r} must be lowercase letters and digits in hyphen-separated words (e.g. churn-v2)"
            )
        if self.task not in TASKS:
            raise SchemaError("task", f"{self.task!r} is not one of {', '.join(TASKS)}")
        if not self.features:
            raise SchemaError("features", "a dataset needs at least one feature")
        self._check_columns()
        self._check_labels()
        self._check_engineered()
        if self.gate is not None and self.task not in METRICS[self.gate.metric].tasks:
            fitting = ", ".join(task_metrics(self.task))
            raise SchemaError(
                "gate.metric", f"{self.gate.metric} does not fit a {self.task} task (use one of {fitting})"
            )
        if self.model is not None:
            try:
                self.model.check_task(self.task)
                self.model.check_tuning(self.task)
            except SchemaError as error:
                raise error.under("model") from None

    def _check_columns(self) -> None:
        columns = [("key", self.key), ("target", self.target)]
        columns += [(f"features[{i}].name", f.name) for i, f in enumerate(self.features)]
        columns += [(f"engineered[{i}].name", e.name) for i, e in enumerate(self.engineered)]
        for where, name in columns:
            if name in RESERVED_COLUMNS:
                raise SchemaError(where, f"{name!r} is reserved by the platform ({', '.join(RESERVED_COLUMNS)})")
            if name is not None and name.startswith(RESERVED_PREFIX):
                raise SchemaError(where, f"{name!r}: names starting with {RESERVED_PREFIX!r} are the platform's")
        if self.key is not None and self.key == self.target:
            raise SchemaError("key", f"{self.key!r} is also the target")
        first: dict[str, str] = {name: role for role, name in (("key", self.key), ("target", self.target)) if name}
        for index, feature in enumerate(self.features):
            where = f"features[{index}].name"
            if first.get(feature.name) in ("key", "target"):
                role = first[feature.name]
                raise SchemaError(where, f"{feature.name!r} is the {role}; the {role} cannot also be a feature")
            if feature.name in first:
                raise SchemaError(where, f"duplicate feature name {feature.name!r} (also {first[feature.name]})")
            first[feature.name] = f"features[{index}]"
        for index, column in enumerate(self.engineered):
            if column.name in first:
                also = first[column.name]
                raise SchemaError(f"engineered[{index}].name", f"{column.name!r} is already a column ({also})")
            first[column.name] = f"engineered[{index}]"

    def _check_labels(self) -> None:
        if self.task == "regression":
            if self.labels:
                raise SchemaError("labels", "a regression target has no class labels")
            if self.positive_label is not None:
                raise SchemaError("positive_label", "a regression target has no positive label")
            return
        labels = self.class_labels
        if len({type(label) for label in labels}) > 1:
            raise SchemaError("labels", "labels must be all integers or all strings")
        for index, label in enumerate(labels):
            if labels.index(label) != index:
                raise SchemaError(f"labels[{index}]", f"{label!r} is listed twice")
        if self.task == "binary" and len(labels) != 2:
            raise SchemaError("labels", f"a binary target has exactly 2 labels, got {len(labels)}")
        if self.task == "multiclass":
            if len(labels) < 3:
                raise SchemaError(
                    "labels", f"a multiclass target needs at least 3 labels, got {len(labels)} (2: binary)"
                )
            if self.positive_label is not None:
                raise SchemaError("positive_label", "only a binary target has a positive label")
        if self.task == "binary":
            if self.positive_label is None and set(labels) != {0, 1}:
                raise SchemaError("positive_label", f"required when the labels are not 0/1 (one of {list(labels)})")
            if self.positive_label is not None and self.positive_label not in labels:
                raise SchemaError("positive_label", f"{self.positive_label!r} is not one of the labels {list(labels)}")

    def _check_engineered(self) -> None:
        kinds = {f.name: f.kind for f in self.features}
        known: set[str] = set()
        for index, column in enumerate(self.engineered):
            for name in column.inputs:
                if kinds.get(name) == "categorical":
                    raise SchemaError(
                        f"engineered[{index}].expression",
                        f"{name!r} is categorical in {column.expression!r}: expressions compute with numeric features",
                    )
                if kinds.get(name) != "numeric" and name not in known:
                    usable = sorted([n for n, k in kinds.items() if k == "numeric"] + sorted(known))
                    raise SchemaError(
                        f"engineered[{index}].expression",
                        f"unknown name {name!r} in {column.expression!r} (numeric features and earlier engineered "
                        f"columns: {', '.join(usable)})",
                    )
            if not column.inputs:
                raise SchemaError(f"engineered[{index}].expression", f"{column.expression!r} reads no column")
            known.add(column.name)

    # ---- derived views ----
    @property
    def class_labels(self) -> tuple[Label, ...]:
        """The target's values in declared order (binary without labels: 0, 1); empty for regression."""
        if self.task == "regression":
            return ()
        return self.labels or (0, 1)

    @property
    def positive(self) -> Label:
        """The positive label of a binary target."""
        if self.task != "binary":
            raise ValueError(f"a {self.task} target has no positive label")
        return self.positive_label if self.positive_label is not None else self.class_labels[-1]

    @property
    def numeric_labels(self) -> bool:
        """True when the target is read as a number (regression, or integer class labels)."""
        return self.task == "regression" or all(isinstance(label, int) for label in self.class_labels)

    @property
    def stratified(self) -> bool:
        """Whether splits are stratified by class: ``stratify`` if set, else multiclass only (binary keeps the
        per-row hash rule, so existing dataset versions keep their split assignment)."""
        if self.task == "regression":
            return False
        return self.stratify if self.stratify is not None else self.task == "multiclass"

    @property
    def model_spec(self) -> ModelSpec:
        """The declared ``model`` (the default estimator when the declaration has none)."""
        return self.model or ModelSpec()

    @property
    def evaluation_gate(self) -> Gate:
        return self.gate or DEFAULT_GATES[self.task]

    @property
    def tuning_objective(self) -> tuple[str, str]:
        """The tuning job's objective: the gate's primary metric on the validation split, as the training job
        logs it (``validation:<metric>``, which its ``MetricDefinitions`` capture), and its direction."""
        gate = self.evaluation_gate
        return f"{TUNING_OBJECTIVE_SPLIT}:{gate.metric}", "Maximize" if gate.higher_is_better else "Minimize"

    @property
    def key_column(self) -> str:
        """The row key of curated data: the declared key, or the derived ``ROW_ID``."""
        return self.key if self.key is not None else ROW_ID

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def numeric_features(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "numeric"]

    @property
    def categorical_features(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "categorical"]

    @property
    def engineered_names(self) -> list[str]:
        return [column.name for column in self.engineered]

    @property
    def input_columns(self) -> list[str]:
        """Columns a raw upload must carry, in order (the key when declared, the features, the target)."""
        return [*([self.key] if self.key is not None else []), *self.feature_names, self.target]

    def class_order(self, classes: Sequence[Any]) -> list[int]:
        """The position of each declared label (``class_labels`` order) in a fitted classifier's ``classes_``;
        ``ValueError`` names a label the classifier never saw."""
        known = [str(c) for c in classes]
        order = []
        for label in self.class_labels:
            if str(label) not in known:
                raise ValueError(f"the model has no class {label!r} (its classes: {known})")
            order.append(known.index(str(label)))
        return order

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    # ---- (de)serialisation ----
    def to_dict(self) -> dict[str, Any]:
        """The declaration as plain data (defaults left out); ``from_dict`` reads it back equal."""
        out: dict[str, Any] = {"name": self.name, "task": self.task, "target": self.target}
        if self.description:
            out["description"] = self.description
        if self.key is not None:
            out["key"] = self.key
        if self.labels:
            out["labels"] = list(self.labels)
        if self.positive_label is not None:
            out["positive_label"] = self.positive_label
        out["features"] = [f.to_dict() for f in self.features]
        if self.engineered:
            out["engineered"] = [e.to_dict() for e in self.engineered]
        if self.gate is not None:
            out["gate"] = self.gate.to_dict()
        if self.stratify is not None:
            out["stratify"] = self.stratify
        if self.model is not None:
            out["model"] = self.model.to_dict()
        if self.data_policy is not None:
            out["data_policy"] = self.data_policy.to_dict()
        for section in OVERRIDE_SECTIONS:
            if getattr(self, section):
                out[section] = dict(getattr(self, section))
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> DatasetSchema:
        """A schema from plain data (a parsed declaration or ``to_dict`` output); ``SchemaError`` names the
        field of the first problem (unknown key, wrong type, broken rule)."""
        data = _mapping(data, "")
        if "task" not in data and _legacy(data):
            data = _upgrade_legacy(data)
        _keys(data, SCHEMA_KEYS, ("name", "task", "target", "features"), "")
        features = []
        for index, item in enumerate(_list(data["features"], "features")):
            try:
                features.append(Feature.from_dict(item))
            except SchemaError as error:
                raise error.under(f"features[{index}]") from None
        engineered = []
        for index, item in enumerate(_list(data.get("engineered", []), "engineered")):
            try:
                engineered.append(Engineered.from_dict(item))
            except SchemaError as error:
                raise error.under(f"engineered[{index}]") from None
        gate = None
        if data.get("gate") is not None:
            try:
                gate = Gate.from_dict(data["gate"])
            except SchemaError as error:
                raise error.under("gate") from None
        model = None
        if data.get("model") is not None:
            try:
                model = ModelSpec.from_dict(data["model"])
            except SchemaError as error:
                raise error.under("model") from None
        data_policy = None
        if data.get("data_policy") is not None:
            try:
                data_policy = DataPolicy.from_dict(data["data_policy"])
            except SchemaError as error:
                raise error.under("data_policy") from None
        labels = tuple(_label(v, f"labels[{i}]") for i, v in enumerate(_list(data.get("labels", []), "labels")))
        positive = data.get("positive_label")
        overrides = {}
        for section in OVERRIDE_SECTIONS:
            values = _mapping(data.get(section) or {}, section)
            for key, value in values.items():
                # one level of nesting for a group of settings (``serving.ab``); the stack checks the keys
                inner = value.items() if isinstance(value, Mapping) else [(None, value)]
                for name, item in inner:
                    if not isinstance(item, bool | int | float | str):
                        where = f"{section}.{key}" if name is None else f"{section}.{key}.{name}"
                        raise SchemaError(where, f"expected a number, string or boolean, got {_kind(item)}")
            overrides[section] = values
        task = data["task"]
        if task not in TASKS:
            raise SchemaError("task", f"{task!r} is not one of {', '.join(TASKS)}")
        return cls(
            name=_str(data["name"], "name"),
            description=str(data.get("description") or ""),
            task=cast(Task, task),
            target=_column_name(data["target"], "target"),
            key=None if data.get("key") is None else _column_name(data["key"], "key"),
            labels=labels,
            positive_label=None if positive is None else _label(positive, "positive_label"),
            features=tuple(features),
            engineered=tuple(engineered),
            gate=gate,
            stratify=None if data.get("stratify") is None else _bool(data["stratify"], "stratify"),
            model=model,
            data_policy=data_policy,
            **overrides,
        )

    @classmethod
    def from_json(cls, text: str) -> DatasetSchema:
        return cls.from_dict(json.loads(text))


# ---- schemas written before declarations -----------------------------------------------------------

LEGACY_ENGINEERED: dict[str, str] = {
    "charges_per_tenure_month": "coalesce(total_charges, monthly_charges * tenure_months) / max(tenure_months, 1)",
    "support_calls_per_year": "support_calls * 12 / max(tenure_months, 1)",
}
"""The two engineered columns that were built into ``pipelines/features.py`` before datasets were declared,
as expressions (the same values). Only ``_upgrade_legacy`` uses them: a model archive trained before the
upgrade stores its schema in the old shape, and the evaluation job must still load that champion."""


def _legacy(data: Mapping[str, Any]) -> bool:
    engineered = data.get("engineered") or []
    return isinstance(engineered, list | tuple) and all(isinstance(item, str) for item in engineered)


def _upgrade_legacy(data: Mapping[str, Any]) -> dict[str, Any]:
    """A pre-declaration schema (binary, a key, ``positive_label`` 1, engineered columns by name) in today's
    shape; an engineered name without a known definition fails with its field."""
    upgraded = {k: v for k, v in data.items() if k not in ("engineered", "positive_label")}
    engineered = []
    for index, name in enumerate(data.get("engineered") or []):
        if name not in LEGACY_ENGINEERED:
            raise SchemaError(f"engineered[{index}]", f"no definition for the engineered column {name!r}")
        engineered.append({"name": name, "expression": LEGACY_ENGINEERED[name]})
    upgraded["task"] = "binary"
    if engineered:
        upgraded["engineered"] = engineered
    if int(data.get("positive_label", 1)) != 1:
        upgraded["positive_label"] = int(data["positive_label"])
    return upgraded
