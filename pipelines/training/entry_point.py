"""Train a dataset with its own script (``model.entry_point``): run it, then make its model a platform model.

``train.main`` hands over here when the declaration names an entry point. The script
(``<code root>/<entry_point>/train.py``; the stack ships the directory in the training source archive next to
``pipelines/``) runs in a child process with the job's environment (``SM_*``, without the held-out channels:
``held_out.fit_environment``), ``code root`` on ``PYTHONPATH``
and the SageMaker script-mode command line: ``--dataset <name>``, the stage's training hyperparameters and the
declared ``model.hyperparameters``, each ``--name value``. It saves its model with ``pipelines.training.byo``.

Then, in this process: the model must load (a class defined inside the script does not unpickle elsewhere,
nor would it at the endpoint), have the task's interface, score both splits (the metrics the job logs), and
answer golden payloads of the validation split through the inference handler (``evaluate.golden_payload``),
after ``train.write_model_artifacts`` wrote the metadata and the inference code. Any failure raises
``EntryPointError`` whose one-line message is the job's failure reason (the toolkit logs the traceback; the
last ``...Error: message`` line becomes SageMaker's ``FailureReason``), so nothing is registered.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from pipelines.evaluation import model_metrics
from pipelines.features import model_frame, model_output
from pipelines.schema import ENTRY_POINT_SCRIPT, DatasetSchema
from pipelines.training import byo, held_out
from pipelines.training.hyperparameters import Hyperparameters

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
"""Where the ``pipelines`` package sits (the script's ``PYTHONPATH``): ``/opt/ml/code`` in the job, the
repository locally."""
CODE_ROOT = PACKAGE_ROOT
"""Where the entry point directories sit (the same source directory; tests point it elsewhere)."""
TRACEBACK_LINES = 3
"""How many of the script's last stderr lines the failure reason carries."""


class EntryPointError(RuntimeError):
    """The dataset's training script failed, saved no usable model, or its model cannot serve; the message
    (one line) says which and why."""


def script_path(schema: DatasetSchema) -> Path:
    entry_point = schema.model_spec.entry_point
    if entry_point is None:
        raise ValueError(f"dataset {schema.name!r} declares no model.entry_point")
    return CODE_ROOT / entry_point.rstrip("/") / ENTRY_POINT_SCRIPT


def script_arguments(schema: DatasetSchema, stage: Hyperparameters) -> list[str]:
    """The script-mode command line: ``--dataset``, the stage's hyperparameters, the declared ones last."""
    values: dict[str, Any] = {byo.DATASET_ARGUMENT: schema.name, **asdict(stage), **schema.model_spec.hyperparameters}
    arguments: list[str] = []
    for name, value in values.items():
        text = json.dumps(value) if isinstance(value, bool) or value is None else str(value)
        arguments += [f"--{name}", text]
    return arguments


def last_lines(text: str, count: int = TRACEBACK_LINES) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:])


def run_script(
    schema: DatasetSchema, stage: Hyperparameters, model_dir: Path, environ: Mapping[str, str] | None = None
) -> Path:
    """Run the script with the job's environment; the saved model's path. ``EntryPointError`` when it fails or
    saves nothing."""
    script = script_path(schema)
    shown = script.relative_to(CODE_ROOT) if script.is_relative_to(CODE_ROOT) else script
    if not script.is_file():
        raise EntryPointError(f"{shown}: no such file in the training code")
    model_path = model_dir / byo.MODEL_FILE
    model_path.unlink(missing_ok=True)
    # the held-out channels (test split, champion) are not the script's: no variable names them
    env = held_out.fit_environment(os.environ if environ is None else environ)
    env["SM_MODEL_DIR"] = str(model_dir)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="byo-") as scratch:
        schema_file = Path(scratch) / "schema.json"
        schema_file.write_text(schema.to_json(), encoding="utf-8")
        env[byo.SCHEMA_FILE_ENV] = str(schema_file)
        completed = subprocess.run(
            [sys.executable, str(script), *script_arguments(schema, stage)],
            env=env,
            cwd=script.parent,
            capture_output=True,
            text=True,
            check=False,
        )
    sys.stdout.write(completed.stdout)  # the job log: the script's own metric lines stay visible
    sys.stderr.write(completed.stderr)
    if completed.returncode != 0:
        detail = last_lines(completed.stderr) or f"exit code {completed.returncode}"
        raise EntryPointError(f"{shown} failed: {detail}")
    if not model_path.is_file():
        raise EntryPointError(
            f"{shown} wrote no model: save it with pipelines.training.byo.save_model(model) ({model_path.name})"
        )
    return model_path


def load_user_model(path: Path, schema: DatasetSchema) -> Any:
    """The saved model, checked for the task's interface."""
    try:
        model = joblib.load(path)
    except Exception as error:  # any unpickling failure is the script's: name it
        raise EntryPointError(
            f"the saved model cannot be loaded outside the script: {type(error).__name__}: {error}"
        ) from error
    needed = "predict" if schema.task == "regression" else "predict_proba"
    if not hasattr(model, needed):
        raise EntryPointError(f"the saved {type(model).__name__} has no {needed}() (a {schema.task} model needs it)")
    if schema.task != "regression":
        try:
            schema.class_order(getattr(model, "classes_", ()))
        except ValueError as error:
            raise EntryPointError(
                f"the saved {type(model).__name__} cannot answer every declared label: {error}"
            ) from error
    return model


def score(model: Any, splits: Mapping[str, pd.DataFrame], schema: DatasetSchema, threshold: float) -> dict[str, Any]:
    """The task's metrics of ``model`` per split; ``EntryPointError`` when it cannot predict one."""
    metrics = {}
    for split, frame in splits.items():
        try:
            output = model_output(model, model_frame(frame, schema), schema)
            metrics[split] = model_metrics(schema, frame[schema.target].to_numpy(), output, threshold)
        except Exception as error:
            raise EntryPointError(
                f"the model cannot predict the {split} split: {type(error).__name__}: {error}"
            ) from error
    return metrics


def check_serves(model_dir: Path, validation: pd.DataFrame) -> None:
    """The archive answers golden payloads (validation rows) through the inference handler."""
    from pipelines.evaluation.evaluate import golden_payload
    from pipelines.inference.inference import load_model

    try:
        golden_payload(load_model(model_dir), validation)
    except Exception as error:
        raise EntryPointError(
            f"the model cannot predict the golden payloads (the endpoint's requests): {type(error).__name__}: {error}"
        ) from None


def script_record(schema: DatasetSchema, model: Any) -> dict[str, Any]:
    """``model_metadata.json``'s ``estimator`` for a script: its directory, digest, model class, arguments."""
    script = script_path(schema)
    return {
        "entry_point": schema.model_spec.entry_point,
        "script_sha256": hashlib.sha256(script.read_bytes()).hexdigest(),
        "class": type(model).__name__,
        "parameters": dict(schema.model_spec.hyperparameters),
    }


def train_with_script(
    model_dir: Path, train_df: pd.DataFrame, validation_df: pd.DataFrame, schema: DatasetSchema, stage: Hyperparameters
) -> tuple[Any, dict[str, dict[str, float]], dict[str, Any]]:
    """Run the dataset's script and check its model: ``(model, metrics per split, metadata record)``."""
    from pipelines.training.train import DECISION_THRESHOLD, check_splits

    check_splits({"train": train_df, "validation": validation_df}, schema)
    model = load_user_model(run_script(schema, stage, model_dir), schema)
    metrics = score(model, {"train": train_df, "validation": validation_df}, schema, DECISION_THRESHOLD)
    return model, metrics, script_record(schema, model)
