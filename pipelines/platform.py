"""The platform document: every declared dataset of one stage, resolved, shipped next to the code that needs it.

At synth the stack resolves each ``datasets/<name>.yaml`` against the stage (``stacks/platform_document.py``)
and writes the result once, as ``pipelines/datasets.json``, into every code asset that runs per dataset: the
Lambda package, the Glue job's ``--extra-py-files`` zip and the training/evaluation ``sourcedir.tar.gz``. The
assets' hashes include it, so a declaration change redeploys the code. Environment variables carry names only
(buckets, tables, the topic, state machine ARNs); everything about a dataset comes from here:

- ``schema``: the ``DatasetSchema`` (the model archive keeps its own copy, so serving needs nothing else);
- ``evaluation``: the gate of this stage (the declared gate, or the stage's stricter floor);
- ``quality``, ``serving``, ``alarms``, ``retrain``: the stage's settings with the dataset's overrides, as plain
  mappings that each consumer validates with its own model (the deploy Lambda's ``ServingConfig``, the retrain
  guard's ``Guard``, the ETL's ``GateParams``);
- ``names``: every name the platform derives from the dataset (endpoint, model package group, alarms, S3 prefixes,
  the Glue table, the metric the quality alarm watches).

``platform()`` loads the document shipped with this module (once per process); ``Platform.dataset(name)`` raises
``UnknownDataset`` naming the declared datasets. Standard library only: it runs in Glue, SageMaker and Lambda.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pipelines.schema import METRICS, DatasetSchema, Gate

DOCUMENT_NAME = "datasets.json"
"""The document's file name, next to this module (``pipelines/datasets.json`` in every code asset)."""
FORMAT = 1
RAW_DATASETS_PREFIX = "datasets/"
"""``s3://<raw>/datasets/<dataset>/<file>``: a dataset's uploads (its folder names the dataset)."""
GROUND_TRUTH_PREFIX = "ground-truth/"
"""``s3://<raw>/ground-truth/<dataset>/<file>``: labels for a dataset's captured predictions."""
BATCH_INPUT_PREFIX = "batch-input/"
"""``s3://<raw>/batch-input/<dataset>/<file>``: rows for a batch transform with the dataset's champion."""
DATA_CAPTURE_PREFIX = "data-capture/"
MONITORING_PREFIX = "monitoring/"
MANIFESTS_PREFIX = "manifests/"
EXPERIMENTS_PREFIX = f"{MONITORING_PREFIX}experiments/"
"""Artifacts bucket: an A/B experiment's record and report, ``<dataset>/<experiment config>/experiment.json`` and
``report.html`` (written by the deploy Lambda when it starts, then by the experiment evaluator at every look)."""
COMPOSED_PREFIX = "curated/composed/"
"""Curated zone: a retrain's composed channels (upload + production rows), ``<dataset>/<version>/split=<split>/``."""
QUARANTINE_PREFIX = "quarantine/"
"""Curated zone: what failed validation, with the reason (uploads: ``dataset=<name>/version=<run>/``)."""
PRODUCTION_PREFIX = "production/"
"""Curated zone: labelled production rows, ``production/<dataset>/dt=YYYY-MM-DD/hour=HH/<batch>.parquet``."""

QUALITY_METRIC_NAMES: dict[str, str] = {
    "auc": "ModelAUC",
    "accuracy": "ModelAccuracy",
    "f1": "ModelF1",
    "precision": "ModelPrecision",
    "recall": "ModelRecall",
    "log_loss": "ModelLogLoss",
    "brier_score": "ModelBrierScore",
    "expected_calibration_error": "ModelExpectedCalibrationError",
    "macro_f1": "ModelMacroF1",
    "weighted_f1": "ModelWeightedF1",
    "rmse": "ModelRMSE",
    "mae": "ModelMAE",
    "r2": "ModelR2",
}
"""The CloudWatch name of each model-quality metric measured on ground truth (``pipelines.schema.METRICS``): the
ground-truth Lambda publishes a dataset's metrics under these names, and the dataset's quality alarm watches the
one of its gate (``DatasetNames.quality_metric``)."""


class PlatformError(ValueError):
    """The document is missing or does not have the expected shape."""


class UnknownDataset(LookupError):
    """A dataset name (or a model package group, an alarm) that no declaration of this stage gives."""

    def __init__(self, what: str, declared: tuple[str, ...]) -> None:
        names = ", ".join(declared) or "none"
        super().__init__(f"{what} is not declared in this stage (declared datasets: {names})")
        self.what = what
        self.declared = declared


def quality_metric_name(metric: str) -> str:
    """The CloudWatch metric name of ``metric`` measured on ground truth (``ModelAUC`` for ``auc``)."""
    try:
        return QUALITY_METRIC_NAMES[metric]
    except KeyError:
        raise PlatformError(f"{metric!r} is not a metric ({', '.join(QUALITY_METRIC_NAMES)})") from None


def glue_table_name(dataset: str) -> str:
    """The Glue catalog (and Athena) table of a dataset: ``-`` becomes ``_``, since Athena table names are
    lowercase letters, digits and underscores (a hyphenated name would need quoting in every query)."""
    return dataset.replace("-", "_")


def production_table_name(dataset: str) -> str:
    """The Glue table of a dataset's labelled production rows: ``<dataset table>_production``."""
    return f"{glue_table_name(dataset)}_production"


def production_quarantine_prefix(dataset: str) -> str:
    """Curated zone: a dataset's labelled production rows that failed its rules, with their reasons, beside its
    uploads' quarantine: ``quarantine/dataset=<dataset>/production/``."""
    return f"{QUARANTINE_PREFIX}dataset={dataset}/{PRODUCTION_PREFIX}"


def experiment_prefix(dataset: str, experiment_config: str) -> str:
    """``monitoring/experiments/<dataset>/<experiment config>/``: one A/B experiment's record and report."""
    return f"{EXPERIMENTS_PREFIX}{dataset}/{experiment_config}/"


def production_prefix(dataset: str) -> str:
    """Where a dataset's labelled production rows live in the curated zone: ``production/<dataset>/``."""
    return f"{PRODUCTION_PREFIX}{dataset}/"


def dataset_in_key(key: str, root: str) -> str | None:
    """The dataset folder of ``key`` under ``root`` (``datasets/churn/day1.csv`` -> ``churn``); None when the key is
    not under ``root`` or names no folder below it (``datasets/day1.csv``)."""
    if not key.startswith(root):
        return None
    folder, separator, rest = key[len(root) :].partition("/")
    return folder if folder and separator and rest else None


# ---- strict reading helpers -------------------------------------------------------------------------


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PlatformError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _exact(value: Any, keys: tuple[str, ...], where: str) -> Mapping[str, Any]:
    data = _mapping(value, where)
    unknown = sorted(set(data) - set(keys))
    missing = [key for key in keys if key not in data]
    if unknown or missing:
        raise PlatformError(f"{where}: unknown keys {unknown}, missing keys {missing} (expected {list(keys)})")
    return data


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise PlatformError(f"{where}: expected a non-empty string, got {value!r}")
    return value


# ---- the model --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetNames:
    """Every name the platform derives from a dataset name in a stage (``stacks/config.py`` builds them)."""

    endpoint: str  # <prefix>-<dataset>
    model_package_group: str  # <prefix>-<dataset>
    resource_prefix: str  # <prefix>-<dataset>: models, endpoint configs, training/processing/transform jobs
    rollback_alarms: tuple[str, ...]  # the deployment guardrails (AutoRollbackConfiguration)
    retrain_alarms: Mapping[str, str]  # alarm name -> ComparisonOperator; actions: the retrain Lambda
    quality_metric: str  # the CloudWatch metric the quality alarm watches (the gate's metric on ground truth)
    raw_prefix: str  # datasets/<dataset>/
    ground_truth_prefix: str  # ground-truth/<dataset>/
    batch_input_prefix: str  # batch-input/<dataset>/
    data_capture_prefix: str  # data-capture/<endpoint>/
    drift_report_prefix: str  # monitoring/drift/<dataset>/
    quality_prefix: str  # monitoring/quality/<dataset>/
    manifest_key: str  # manifests/<dataset>/latest.json (curated bucket)
    glue_table: str  # <dataset> with '-' -> '_'

    KEYS = (
        "endpoint",
        "model_package_group",
        "resource_prefix",
        "rollback_alarms",
        "retrain_alarms",
        "quality_metric",
        "raw_prefix",
        "ground_truth_prefix",
        "batch_input_prefix",
        "data_capture_prefix",
        "drift_report_prefix",
        "quality_prefix",
        "manifest_key",
        "glue_table",
    )

    def to_dict(self) -> dict[str, Any]:
        out = {key: getattr(self, key) for key in self.KEYS}
        out["rollback_alarms"] = list(self.rollback_alarms)
        out["retrain_alarms"] = dict(self.retrain_alarms)
        return out

    @classmethod
    def from_dict(cls, value: Any, where: str) -> DatasetNames:
        data = _exact(value, cls.KEYS, where)
        rollback = data["rollback_alarms"]
        if not isinstance(rollback, list) or not all(isinstance(a, str) and a for a in rollback):
            raise PlatformError(f"{where}.rollback_alarms: expected a list of alarm names")
        retrain = _mapping(data["retrain_alarms"], f"{where}.retrain_alarms")
        texts = {k: _text(data[k], f"{where}.{k}") for k in cls.KEYS if k not in ("rollback_alarms", "retrain_alarms")}
        return cls(
            rollback_alarms=tuple(rollback),
            retrain_alarms={_text(k, where): _text(v, f"{where}.retrain_alarms.{k}") for k, v in retrain.items()},
            **texts,
        )


@dataclass(frozen=True)
class Dataset:
    """One declared dataset as this stage runs it."""

    name: str
    schema: DatasetSchema
    evaluation: Mapping[str, Any]  # stacks.config.EvaluationGate: primary_metric, min_improvement, absolute_floor
    quality: Mapping[str, Any]  # stacks.config.QualityGate (the ETL's data-quality rules)
    serving: Mapping[str, Any]  # stacks.config.ServingSettings (with the dataset's overrides)
    alarms: Mapping[str, Any]  # stacks.config.AlarmThresholds (with the dataset's overrides)
    retrain: Mapping[str, Any]  # stacks.config.RetrainGuard (with the dataset's overrides)
    names: DatasetNames

    KEYS = ("schema", "evaluation", "quality", "serving", "alarms", "retrain", "names")

    @property
    def gate(self) -> Gate:
        """The evaluation gate of this stage (satisfies ``pipelines.evaluation.evaluate.GateSettings``)."""
        return Gate(
            metric=str(self.evaluation["primary_metric"]),
            floor=float(self.evaluation["absolute_floor"]),
            min_improvement=float(self.evaluation["min_improvement"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema.to_dict(),
            "evaluation": dict(self.evaluation),
            "quality": dict(self.quality),
            "serving": dict(self.serving),
            "alarms": dict(self.alarms),
            "retrain": dict(self.retrain),
            "names": self.names.to_dict(),
        }

    @classmethod
    def from_dict(cls, name: str, value: Any) -> Dataset:
        where = f"datasets.{name}"
        data = _exact(value, cls.KEYS, where)
        try:
            schema = DatasetSchema.from_dict(data["schema"])
        except ValueError as error:
            raise PlatformError(f"{where}.schema: {error}") from None
        if schema.name != name:
            raise PlatformError(f"{where}.schema.name: {schema.name!r} differs from the dataset name {name!r}")
        sections = {k: dict(_mapping(data[k], f"{where}.{k}")) for k in ("quality", "serving", "alarms", "retrain")}
        evaluation = dict(_exact(data["evaluation"], ("primary_metric", "min_improvement", "absolute_floor"), where))
        if evaluation["primary_metric"] not in METRICS:
            raise PlatformError(f"{where}.evaluation.primary_metric: {evaluation['primary_metric']!r} is not a metric")
        dataset = cls(
            name=name,
            schema=schema,
            evaluation=evaluation,
            names=DatasetNames.from_dict(data["names"], f"{where}.names"),
            **sections,
        )
        dataset.gate  # noqa: B018 - the gate's own checks (metric, floor range) run here
        return dataset


@dataclass(frozen=True)
class Platform:
    """The document: the stage and its declared datasets."""

    stage: str
    prefix: str  # mlops-<stage>: every resource name starts with it
    approval: str  # auto | manual: the status of a package that passed its gate
    hyperparameters: Mapping[str, Any]  # pipelines.training.hyperparameters.Hyperparameters of the stage
    monitoring: Mapping[str, Any]  # stacks.config.MonitorSettings (drift and ground-truth windows, minimums)
    datasets: Mapping[str, Dataset] = field(default_factory=dict)

    KEYS = ("format", "stage", "prefix", "approval", "hyperparameters", "monitoring", "datasets")

    @property
    def names(self) -> tuple[str, ...]:
        """The declared dataset names, sorted."""
        return tuple(sorted(self.datasets))

    def dataset(self, name: str) -> Dataset:
        """The declared dataset ``name``; ``UnknownDataset`` lists the declared ones."""
        try:
            return self.datasets[name]
        except KeyError:
            raise UnknownDataset(f"dataset {name!r}", self.names) from None

    def by_model_package_group(self, group: str) -> Dataset:
        """The dataset whose model package group is ``group``."""
        for dataset in self.datasets.values():
            if dataset.names.model_package_group == group:
                return dataset
        raise UnknownDataset(f"model package group {group!r}", self.names)

    def by_alarm(self, alarm: str) -> Dataset | None:
        """The dataset one of whose retrain alarms is ``alarm`` (None: no dataset's)."""
        for dataset in self.datasets.values():
            if alarm in dataset.names.retrain_alarms:
                return dataset
        return None

    @property
    def retrain_alarms(self) -> dict[str, str]:
        """Every dataset's retrain alarms: name -> ComparisonOperator."""
        return {alarm: op for d in self.datasets.values() for alarm, op in d.names.retrain_alarms.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "stage": self.stage,
            "prefix": self.prefix,
            "approval": self.approval,
            "hyperparameters": dict(self.hyperparameters),
            "monitoring": dict(self.monitoring),
            "datasets": {name: self.datasets[name].to_dict() for name in self.names},
        }

    def to_json(self) -> str:
        """The document as written into the code assets. Every mapping is built in a fixed order (datasets by name,
        settings in their fields' order), so the same declarations give the same bytes and the assets' hashes change
        only when a dataset or a setting does."""
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, value: Any) -> Platform:
        data = _exact(value, cls.KEYS, "document")
        if data["format"] != FORMAT:
            raise PlatformError(f"document format {data['format']!r}; this code reads format {FORMAT}")
        datasets = _mapping(data["datasets"], "datasets")
        return cls(
            stage=_text(data["stage"], "stage"),
            prefix=_text(data["prefix"], "prefix"),
            approval=_text(data["approval"], "approval"),
            hyperparameters=dict(_mapping(data["hyperparameters"], "hyperparameters")),
            monitoring=dict(_mapping(data["monitoring"], "monitoring")),
            datasets={name: Dataset.from_dict(name, entry) for name, entry in datasets.items()},
        )

    @classmethod
    def from_json(cls, text: str) -> Platform:
        try:
            data = json.loads(text)
        except ValueError as error:
            raise PlatformError(f"{DOCUMENT_NAME} is not JSON: {error}") from None
        return cls.from_dict(data)


# ---- loading ----------------------------------------------------------------------------------------


def document_path() -> Traversable:
    """Where the shipped document lives: next to this module, in a folder or in a zip on ``sys.path``."""
    return resources.files(__package__ or "pipelines") / DOCUMENT_NAME


def load_platform(source: Traversable | Path | str | None = None) -> Platform:
    """The document at ``source`` (default: the one shipped next to this module)."""
    location = document_path() if source is None else source
    path = Path(location) if isinstance(location, str) else location
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        raise PlatformError(
            f"no {DOCUMENT_NAME} at {path}: the stack writes it into the code assets at synth "
            "(stacks/platform_document.py); a checkout has none"
        ) from None
    return Platform.from_json(text)


_LOADED: dict[str, Platform] = {}


def platform() -> Platform:
    """The shipped document (``document_path()``), read once per process and location."""
    location = document_path()
    key = str(location)
    if key not in _LOADED:
        _LOADED[key] = load_platform(location)
    return _LOADED[key]


def clear_cache() -> None:
    """Forget the documents read so far (the next ``platform()`` reads its file again)."""
    _LOADED.clear()
