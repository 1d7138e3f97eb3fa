"""SageMaker scikit-learn script-mode training entry point.

The training job ships the repo's ``pipelines`` package as its source directory (``/opt/ml/code``) and runs
``pipelines/training/train.py`` (hyperparameter ``sagemaker_program``); the training toolkit puts the source
directory on ``PYTHONPATH`` and passes every hyperparameter as ``--name value``:

- ``--max_iter --learning_rate --max_leaf_nodes --l2_regularization --seed`` (``hyperparameters.Hyperparameters``,
  which is also the stage's ``TrainingSettings.hyperparameters``), and ``--dataset`` (the declared dataset: its
  ``DatasetSchema`` comes from the platform document ``pipelines/datasets.json`` in the source directory; build
  the job's hyperparameters with ``job_hyperparameters``).
- ``SM_MODEL_DIR``, ``SM_CHANNEL_TRAIN``, ``SM_CHANNEL_VALIDATION``, ``SM_OUTPUT_DATA_DIR``, ``SM_HPS``
  (defaults: the ``/opt/ml`` layout); ``MODEL_VERSION`` (default: a hash of the model file).

Outputs in ``SM_MODEL_DIR`` (SageMaker packs it into ``model.tar.gz``): ``model.joblib``,
``model_metadata.json`` and ``code/`` (``inference.py`` plus the ``pipelines`` modules it imports).
Metrics are printed as ``validation:auc=0.871234;`` lines that ``METRIC_DEFINITIONS`` capture.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import json
import os
import platform
import shutil
import sys
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from pipelines.evaluation import model_metrics
from pipelines.features import model_frame, model_input_columns, model_output
from pipelines.platform import PlatformError, UnknownDataset
from pipelines.platform import platform as platform_document
from pipelines.schema import DatasetSchema, SchemaError
from pipelines.training.estimators import build_estimator, estimator_record
from pipelines.training.hyperparameters import DATASET_HYPERPARAMETER, Hyperparameters, decode_value
from pipelines.training.hyperparameters import MAX_HYPERPARAMETER_LENGTH as MAX_HYPERPARAMETER_LENGTH
from pipelines.training.hyperparameters import job_hyperparameters as job_hyperparameters
from pipelines.training.metric_definitions import format_metric

MODEL_FILE = "model.joblib"
METADATA_FILE = "model_metadata.json"
METRICS_FILE = "metrics.json"
CODE_DIR = "code"
DECISION_THRESHOLD = 0.5

PACKAGE_DIR = Path(__file__).resolve().parents[1]
INFERENCE_SCRIPT = PACKAGE_DIR / "inference" / "inference.py"
SHIPPED_MODULES: tuple[str, ...] = ("__init__.py", "schema.py", "features.py")
"""The ``pipelines`` modules ``inference.py`` imports; copied to ``code/pipelines/``."""


@dataclass(frozen=True)
class TrainingEnv:
    """The SageMaker training environment, read from the ``SM_*`` variables."""

    model_dir: Path
    train_dir: Path
    validation_dir: Path
    output_data_dir: Path
    hyperparameters: dict[str, Any]
    model_version: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> TrainingEnv:
        env = os.environ if environ is None else environ
        try:
            hps = json.loads(env.get("SM_HPS") or "{}")
        except json.JSONDecodeError as error:
            raise ValueError(f"SM_HPS is not JSON: {error}") from None
        return cls(
            model_dir=Path(env.get("SM_MODEL_DIR", "/opt/ml/model")),
            train_dir=Path(env.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train")),
            validation_dir=Path(env.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation")),
            output_data_dir=Path(env.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data")),
            hyperparameters=hps if isinstance(hps, dict) else {},
            model_version=env.get("MODEL_VERSION") or None,
        )


@dataclass(frozen=True)
class TrainingResult:
    pipeline: Any  # a fitted build_pipeline Pipeline, or the model a dataset's own script saved
    metrics: dict[str, dict[str, float]]  # split -> metric -> value
    rows: dict[str, int]


# ---- hyperparameters --------------------------------------------------------------------------------


def parse_args(
    argv: Sequence[str] | None, sm_hps: Mapping[str, Any] | None = None
) -> tuple[Hyperparameters, DatasetSchema]:
    """Hyperparameters and the dataset's schema: command line over ``SM_HPS`` over the built-in defaults; the
    schema of ``--dataset`` from the platform document shipped with this code.

    A trial of the dataset's tuning job (``model.tuning``) also gets one ``--<name> <value>`` per tuned
    hyperparameter: the returned schema's model has those values fixed (``ModelSpec.with_tuned``; a built-in's
    are checked against its catalog), so the estimator, its record and the script's arguments use them."""
    parser = argparse.ArgumentParser(prog="train.py", description="Train a declared dataset's model (SageMaker).")
    defaults_of = Hyperparameters()
    for spec in fields(Hyperparameters):
        default = getattr(defaults_of, spec.name)
        parser.add_argument(f"--{spec.name}", type=type(default), default=default)
    parser.add_argument(f"--{DATASET_HYPERPARAMETER}", default=None)
    hps = dict(sm_hps or {})
    defaults: dict[str, Any] = {}
    for spec in fields(Hyperparameters):
        if spec.name in hps:
            defaults[spec.name] = type(getattr(defaults_of, spec.name))(hps[spec.name])
    if DATASET_HYPERPARAMETER in hps:
        defaults[DATASET_HYPERPARAMETER] = str(hps[DATASET_HYPERPARAMETER])
    parser.set_defaults(**defaults)
    args, rest = parser.parse_known_args(list(argv) if argv is not None else None)
    if rest and not args.dataset:  # no dataset, so no tuned hyperparameters: nothing else is known
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if not args.dataset:
        parser.error("the declared dataset to train is required: --dataset or the dataset hyperparameter")
    try:
        schema = platform_document().dataset(args.dataset).schema
    except (UnknownDataset, PlatformError) as error:
        parser.error(str(error))
    tuning = schema.model_spec.tuning
    tuned_names = list(tuning.ranges) if tuning is not None else []
    tuned_parser = argparse.ArgumentParser(prog="train.py")
    for name in tuned_names:
        tuned_parser.add_argument(f"--{name}", default=None)
    tuned_args, unknown = tuned_parser.parse_known_args(rest)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    # SM_HPS first for these: the toolkit's decoded JSON keeps null and booleans, which its command line renders as
    # '' and 'True'; the command line alone (a run by hand) is JSON-decoded here
    tuned = {
        name: hps[name] if name in hps else decode_value(getattr(tuned_args, name))
        for name in tuned_names
        if name in hps or getattr(tuned_args, name) is not None
    }
    if tuned:
        model = schema.model_spec.with_tuned(tuned)
        try:
            model.check_task(schema.task)
        except SchemaError as error:
            parser.error(f"tuned hyperparameter {error}")
        schema = dataclasses.replace(schema, model=model)
    hyperparameters = Hyperparameters(**{spec.name: getattr(args, spec.name) for spec in fields(Hyperparameters)})
    return hyperparameters, schema


# ---- data ------------------------------------------------------------------------------------------


def _parquet_files(root: Path, split: str | None) -> list[Path]:
    files = sorted(
        path
        for path in root.rglob("*.parquet")
        if path.is_file() and not any(part.startswith(("_", ".")) for part in path.relative_to(root).parts)
    )
    partitioned = [p for p in files if any(part.startswith("split=") for part in p.relative_to(root).parts)]
    if split is not None and partitioned:
        files = [p for p in files if f"split={split}" in p.relative_to(root).parts]
    return files


def load_split(directory: str | Path, schema: DatasetSchema, split: str | None = None) -> pd.DataFrame:
    """The curated rows under ``directory`` (a SageMaker channel): every ``*.parquet`` file, however nested.

    When the directory holds Hive partitions ``split=<name>/`` (the curated prefix itself), only ``split``'s
    files are read. Returns the key (if present), the features, the engineered columns (if all present)
    and the target (int 0/1); numeric columns as float64, categorical ones as objects (missing: None).
    """
    root = Path(directory)
    files = _parquet_files(root, split)
    if not files:
        where = f"{root} (split={split})" if split else str(root)
        raise FileNotFoundError(f"no *.parquet files under {where}")
    frame = pd.concat([pq.read_table(path).to_pandas() for path in files], ignore_index=True)
    missing = [name for name in [*schema.feature_names, schema.target] if name not in frame.columns]
    if missing:
        raise ValueError(f"{root}: missing column(s) {missing}")

    out: dict[str, Any] = {}
    if schema.key_column in frame.columns:
        out[schema.key_column] = frame[schema.key_column].astype(object)
    for feature in schema.features:
        column = frame[feature.name]
        if feature.kind == "numeric":
            out[feature.name] = pd.to_numeric(column, errors="raise").astype(np.float64)
        else:
            text = column.astype(object)
            out[feature.name] = text.where(column.notna(), None).map(lambda v: v if v is None else str(v))
    if all(name in frame.columns for name in schema.engineered_names):
        for name in schema.engineered_names:
            out[name] = frame[name].astype(np.float64)
    out[schema.target] = _target(frame[schema.target], schema, root)
    return pd.DataFrame(out)


def _target(column: pd.Series, schema: DatasetSchema, root: Path) -> Any:
    """The curated target typed for the task; a value outside the declared labels (or not a finite number for
    regression) raises ``ValueError`` naming it."""
    if schema.numeric_labels:
        values = pd.to_numeric(column, errors="coerce")
        bad = ~np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan))
        if schema.task != "regression":
            bad |= ~values.isin(np.asarray(schema.class_labels, dtype=np.float64)).to_numpy()
        if bad.any():
            found = sorted({str(v) for v in column[bad].unique()})[:5]
            wanted = "finite numbers" if schema.task == "regression" else f"one of {list(schema.class_labels)}"
            raise ValueError(f"{root}: target {schema.target!r} must be {wanted}, found {found}")
        return values.to_numpy(dtype=np.float64 if schema.task == "regression" else np.int64)
    text = column.astype(object).where(column.notna(), None).map(lambda v: None if v is None else str(v))
    unknown = text.isna() | ~text.isin([str(label) for label in schema.class_labels])
    if unknown.any():
        found = sorted({str(v) for v in text[unknown].unique()})[:5]
        raise ValueError(f"{root}: target {schema.target!r} must be one of {list(schema.class_labels)}, found {found}")
    return text.to_numpy(dtype=object)


# ---- model -----------------------------------------------------------------------------------------


def build_pipeline(schema: DatasetSchema, hyperparameters: Hyperparameters) -> Pipeline:
    """Impute + scale the numeric and engineered columns, one-hot the categorical ones, then the declared
    built-in estimator (``model.estimator``; boosted trees by default): a classifier for binary and multiclass
    targets, a regressor for regression (``estimators.build_estimator``).

    The one-hot encoder knows the schema's categories only: an unknown or missing value encodes to zeros.
    """
    numeric = [*schema.numeric_features, *schema.engineered_names]
    categorical = schema.categorical_features
    preprocess = ColumnTransformer(
        [
            (
                "numeric",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                numeric,
            ),
            (
                "categorical",
                OneHotEncoder(
                    categories=[list(schema.feature(name).categories) for name in categorical],
                    handle_unknown="ignore",
                    sparse_output=False,
                ),
                categorical,
            ),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    return Pipeline([("preprocess", preprocess), ("model", build_estimator(schema, hyperparameters))])


class TrainingDataError(ValueError):
    """The curated splits cannot train or score the task's model; the message says why (the job's FailureReason)."""


def check_splits(splits: Mapping[str, pd.DataFrame], schema: DatasetSchema) -> None:
    """Every split has rows; a binary split has both classes (AUC needs them); the train split of a multiclass
    target has every declared class (the model could never predict a class it did not see)."""
    for split, frame in splits.items():
        if frame.empty:
            raise TrainingDataError(f"the {split} split is empty")
        if schema.task == "regression":
            if len(frame) < 2:
                raise TrainingDataError(f"the {split} split has {len(frame)} row: R² needs at least 2")
            continue
        classes = sorted({str(v) for v in pd.unique(frame[schema.target])})
        if schema.task == "binary" and len(classes) < 2:
            raise TrainingDataError(
                f"the {split} split has a single class ({schema.target}={classes[0]} for all {len(frame)} rows): "
                "a binary classifier needs both classes"
            )
        missing = [label for label in schema.class_labels if str(label) not in classes]
        if schema.task == "multiclass" and split == "train" and missing:
            raise TrainingDataError(
                f"the train split has no row of class(es) {missing}: the model could never predict them"
            )


def train(
    train_df: pd.DataFrame,
    validation_df: pd.DataFrame,
    schema: DatasetSchema,
    hyperparameters: Hyperparameters,
) -> TrainingResult:
    """Fit on ``train_df``; the task's metrics on both splits. Raises ``TrainingDataError`` when a split cannot
    train or score the model (``check_splits``)."""
    check_splits({"train": train_df, "validation": validation_df}, schema)
    pipeline = build_pipeline(schema, hyperparameters)
    pipeline.fit(model_frame(train_df, schema), train_df[schema.target].to_numpy())
    metrics = {}
    for split, frame in (("train", train_df), ("validation", validation_df)):
        output = model_output(pipeline, model_frame(frame, schema), schema)
        metrics[split] = model_metrics(schema, frame[schema.target].to_numpy(), output, DECISION_THRESHOLD)
    return TrainingResult(
        pipeline=pipeline, metrics=metrics, rows={"train": len(train_df), "validation": len(validation_df)}
    )


def metric_lines(metrics: Mapping[str, Mapping[str, float]]) -> list[str]:
    """``<split>:<metric>=<value>;`` lines, the format ``METRIC_DEFINITIONS`` parse from the job log."""
    return [format_metric(split, name, value) for split, values in metrics.items() for name, value in values.items()]


# ---- artifacts -------------------------------------------------------------------------------------


def copy_inference_code(model_dir: str | Path) -> Path:
    """``code/inference.py`` and ``code/pipelines/<SHIPPED_MODULES>`` in ``model_dir``; the code dir."""
    code = Path(model_dir) / CODE_DIR
    (code / "pipelines").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(INFERENCE_SCRIPT, code / "inference.py")
    for name in SHIPPED_MODULES:
        shutil.copyfile(PACKAGE_DIR / name, code / "pipelines" / name)
    return code


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_model_artifacts(
    model_dir: str | Path,
    result: TrainingResult,
    schema: DatasetSchema,
    hyperparameters: Hyperparameters,
    model_version: str | None = None,
    estimator: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``model.joblib``, ``model_metadata.json`` and ``code/``; returns the metadata. ``estimator`` is what
    trained the model (default: the declared built-in's ``estimators.estimator_record``).

    Without ``model_version`` the version is ``sha256-<first 16 hex digits of model.joblib>``, so the same
    data, hyperparameters and seed give the same version.
    """
    directory = Path(model_dir)
    directory.mkdir(parents=True, exist_ok=True)
    model_path = directory / MODEL_FILE
    joblib.dump(result.pipeline, model_path)
    version = model_version or f"sha256-{_file_digest(model_path)[:16]}"
    metadata = {
        "model_version": version,
        "schema": schema.to_dict(),
        "features": schema.feature_names,
        "model_input_columns": list(getattr(result.pipeline, "feature_names_in_", model_input_columns(schema))),
        "target": schema.target,
        "task": schema.task,
        "labels": list(schema.class_labels),
        "positive_label": schema.positive if schema.task == "binary" else None,
        "decision_threshold": DECISION_THRESHOLD,
        "hyperparameters": asdict(hyperparameters),
        "estimator": dict(estimator) if estimator is not None else estimator_record(schema, hyperparameters),
        "metrics": result.metrics,
        "rows": result.rows,
        "sklearn_version": sklearn.__version__,
        "python_version": platform.python_version(),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True))
    copy_inference_code(directory)
    return metadata


def package_model(model_dir: str | Path, tar_path: str | Path) -> Path:
    """Pack ``model_dir`` into a gzipped tar like SageMaker's ``model.tar.gz`` (paths relative to the root).

    The archive is reproducible: sorted entries, zeroed times and owners, no ``__pycache__``.
    """
    root = Path(model_dir)
    target = Path(tar_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    entries = sorted(
        path
        for path in root.rglob("*")
        if "__pycache__" not in path.relative_to(root).parts and path.resolve() != target.resolve()
    )
    with (
        target.open("wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for path in entries:
            info = archive.gettarinfo(str(path), arcname=path.relative_to(root).as_posix())
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isfile():
                with path.open("rb") as handle:
                    archive.addfile(info, handle)
            else:
                archive.addfile(info)
    return target


# ---- entry point -----------------------------------------------------------------------------------


def train_declared(
    model_dir: str | Path,
    train_df: pd.DataFrame,
    validation_df: pd.DataFrame,
    schema: DatasetSchema,
    hyperparameters: Hyperparameters,
    model_version: str | None = None,
) -> tuple[TrainingResult, dict[str, Any]]:
    """Train the model the declaration's ``model:`` names and write its artifacts to ``model_dir``: the built-in
    estimator (``train``), or the dataset's own script (``model.entry_point``: ``entry_point.train_with_script``,
    which reads the splits from the job's ``SM_CHANNEL_*`` directories, then the golden-payload check).
    Returns the result and the metadata written."""
    if schema.model_spec.entry_point is None:
        result = train(train_df, validation_df, schema, hyperparameters)
        return result, write_model_artifacts(model_dir, result, schema, hyperparameters, model_version)
    from pipelines.training import entry_point  # the dataset's own script (pipelines/training/byo.py)

    directory = Path(model_dir)
    model, metrics, record = entry_point.train_with_script(directory, train_df, validation_df, schema, hyperparameters)
    rows = {"train": len(train_df), "validation": len(validation_df)}
    result = TrainingResult(pipeline=model, metrics=metrics, rows=rows)
    metadata = write_model_artifacts(directory, result, schema, hyperparameters, model_version, estimator=record)
    entry_point.check_serves(directory, validation_df)
    return result, metadata


def main(argv: Sequence[str] | None = None) -> int:
    """The training job: the declared model fitted on the train and validation channels; when the job has the
    held-out channels (an upload's ``TrainModel``; a tuning trial has none), the platform's evaluation of the
    saved model after the fit (``held_out``: the test split and the champion are sealed away before any training
    code runs)."""
    from pipelines.training import held_out

    env = TrainingEnv.from_environ()
    hyperparameters, schema = parse_args(argv, env.hyperparameters)
    sealed = held_out.seal(os.environ)
    train_df = load_split(env.train_dir, schema, "train")
    validation_df = load_split(env.validation_dir, schema, "validation")
    result, metadata = train_declared(
        env.model_dir, train_df, validation_df, schema, hyperparameters, env.model_version
    )
    env.output_data_dir.mkdir(parents=True, exist_ok=True)
    (env.output_data_dir / METRICS_FILE).write_text(json.dumps(result.metrics, indent=2, sort_keys=True))
    for line in metric_lines(result.metrics):
        print(line, flush=True)
    print(f"model_version={metadata['model_version']} rows={result.rows}", flush=True)
    if sealed.channels:
        held_out.evaluate(sealed, env.model_dir, env.output_data_dir, schema.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
