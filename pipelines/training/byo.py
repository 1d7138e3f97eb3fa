"""Bring your own model: the helper a dataset's own training script uses (``model.entry_point``).

A declaration may name a directory instead of a built-in estimator::

    model:
      entry_point: models/churn          # holds train.py (``mlops model init --dataset churn`` writes one)
      hyperparameters: {n_estimators: 300}

The training job then runs ``models/churn/train.py`` under SageMaker's script-mode contract (the training
toolkit's environment variables ``SM_MODEL_DIR``, ``SM_CHANNEL_{channel}`` and hyperparameters as command-line
arguments: https://github.com/aws/sagemaker-training-toolkit/blob/master/ENVIRONMENT_VARIABLES.md): the curated splits
are the ``SM_CHANNEL_TRAIN`` / ``SM_CHANNEL_VALIDATION`` channels, the model goes to ``SM_MODEL_DIR``, and the
declared hyperparameters arrive as ``--name value`` arguments (with ``--dataset <name>`` and the stage's own
training hyperparameters, which a script may ignore). A script needs three calls of this module::

    from pipelines.training import byo

    args = byo.arguments(n_estimators=100)          # --n_estimators (typed by its default); others ignored
    data = byo.training_data()                       # X (features + engineered columns), y, schema
    model = make_pipeline(..., RandomForestClassifier(n_estimators=args.n_estimators))
    model.fit(data.train.X, data.train.y)
    byo.save_model(model)                            # SM_MODEL_DIR/model.joblib

``model`` is anything scikit-learn compatible that the serving container can unpickle (scikit-learn, numpy,
pandas, scipy objects; not a class defined in the script itself): ``predict_proba`` and ``classes_`` for a
binary or multiclass target (every declared label among the classes), ``predict`` for regression. It takes
the DataFrame of ``data.train.X`` (raw features in schema order, then the engineered columns; numeric columns
float64 with NaN for missing values, categorical ones strings or None).

After the script exits, the platform (``pipelines.training.entry_point``) loads the saved model in another
process, computes the task's metrics on both splits, writes ``model_metadata.json`` and the inference code
beside it, and answers golden payloads from the validation split through the inference handler: evaluation,
the gate, serving, the smoke test, shadow, drift and batch inference then work as for a built-in estimator.
A script that raises fails the job with the last lines of its traceback; one that saves no model, or whose
model cannot answer those payloads, fails with that reason before anything is registered.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from pipelines.features import model_frame
from pipelines.schema import DatasetSchema

MODEL_FILE = "model.joblib"  # the file serving loads (``pipelines.inference.inference.MODEL_FILE``)
DATASET_ARGUMENT = "dataset"  # ``pipelines.training.hyperparameters.DATASET_HYPERPARAMETER``
SCHEMA_FILE_ENV = "BYO_SCHEMA_FILE"
"""Set by the job for the script: a file holding the ``DatasetSchema`` (JSON) the job validated, so the script
trains on exactly that contract (without it, the schema comes from the platform document by ``--dataset``)."""


@dataclass(frozen=True)
class Split:
    """One curated split: ``X`` the model's input frame, ``y`` the target (labels as declared, or numbers)."""

    X: pd.DataFrame
    y: np.ndarray


@dataclass(frozen=True)
class TrainingData:
    schema: DatasetSchema
    train: Split
    validation: Split


def arguments(argv: Sequence[str] | None = None, **defaults: Any) -> argparse.Namespace:
    """The script's hyperparameters: each keyword is an option ``--name`` of its default's type (a bool accepts
    true/false); ``dataset`` is always there. Arguments the script does not declare are ignored (the job also
    passes the stage's training hyperparameters)."""
    parser = argparse.ArgumentParser(description="A dataset's training script (SageMaker script mode)")
    parser.add_argument(f"--{DATASET_ARGUMENT}", default=None)
    for name, default in defaults.items():
        kind = _boolean if isinstance(default, bool) else type(default) if default is not None else str
        parser.add_argument(f"--{name}", type=kind, default=default)
    known, _ = parser.parse_known_args(list(argv) if argv is not None else None)
    return known


def _boolean(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _schema(dataset: str | None) -> DatasetSchema:
    from pipelines.platform import platform

    if os.environ.get(SCHEMA_FILE_ENV):
        return DatasetSchema.from_json(Path(os.environ[SCHEMA_FILE_ENV]).read_text(encoding="utf-8"))
    if not dataset:
        raise ValueError("no dataset: the job passes --dataset <name>")
    return platform().dataset(dataset).schema


def training_data(dataset: str | None = None, schema: DatasetSchema | None = None) -> TrainingData:
    """The curated train and validation splits of the job's channels (``SM_CHANNEL_TRAIN``,
    ``SM_CHANNEL_VALIDATION``) as model input and target. The schema is the declared dataset's (``--dataset``),
    unless given."""
    from pipelines.training.train import load_split

    if schema is None:
        schema = _schema(dataset or arguments(sys.argv[1:]).dataset)
    splits = {}
    for split in ("train", "validation"):
        channel = os.environ.get(f"SM_CHANNEL_{split.upper()}", f"/opt/ml/input/data/{split}")
        frame = load_split(channel, schema, split)
        splits[split] = Split(model_frame(frame, schema), frame[schema.target].to_numpy())
    return TrainingData(schema, splits["train"], splits["validation"])


def save_model(model: Any, model_dir: str | Path | None = None) -> Path:
    """Save the fitted model where the job packs it (``SM_MODEL_DIR``); returns the file."""
    if not (hasattr(model, "predict") or hasattr(model, "predict_proba")):
        raise TypeError(f"a {type(model).__name__} cannot predict: save a fitted scikit-learn compatible model")
    directory = Path(model_dir or os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MODEL_FILE
    joblib.dump(model, path)
    return path
