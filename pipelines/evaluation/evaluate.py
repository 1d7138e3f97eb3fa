"""SageMaker Processing job: evaluate the challenger (and the champion) on the held-out test split and gate.

Run as ``python3 -m pipelines.evaluation.evaluate --primary_metric auc --min_improvement 0.005
--absolute_floor 0.7`` with the ``pipelines`` package on ``PYTHONPATH`` (``processing_arguments`` builds the
arguments from the stage's ``EvaluationGate``). Inputs (paths overridable by arguments):

- ``/opt/ml/processing/test``: the curated test split (``*.parquet``, possibly nested or ``split=test/``)
- ``/opt/ml/processing/challenger``: the new ``model.tar.gz``
- ``/opt/ml/processing/champion``: the approved model's ``model.tar.gz``; absent or empty = no champion

Outputs in ``/opt/ml/processing/evaluation/``:

- ``evaluation.json``: its top level is a SageMaker model-quality statistics document for the challenger
  (``{"binary_classification_metrics": {"auc": {"value": ...}}}``; ``multiclass_classification_metrics`` or
  ``regression_metrics`` for the other tasks, as Model Monitor names them:
  https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-metrics.html), usable as
  ``ModelMetrics.ModelQuality.Statistics``, plus the champion's metrics and the gate decision.
- ``evaluation.json``'s ``output_baseline``: the distribution of the challenger's answers on the test split
  (``output_baseline``), the drift monitor's baseline of the model's output.
- ``golden.json``: up to ``GOLDEN_ROWS`` test rows as an ``application/json`` request body in records form
  (``{"instances": [{feature: value}, ...]}``, features only) and the challenger's answer to it through the
  inference handler's own request path, with its ``model_version``: ``predictions`` is the response's list
  (every task); binary also keeps ``probabilities`` and ``labels``, multiclass ``labels`` and
  ``probabilities`` (one list per row, in ``classes`` order), regression ``values``. The job's smoke
  test sends ``body`` (and the same rows as ``text/csv``) and compares the answer within ``tolerance``.
- ``evaluation.json``'s ``smoke``: the golden-payload smoke test of the challenger's archive on the image's own
  serving stack, started inside this job (``pipelines.evaluation.smoke``: ``passed``, ``reason``, ``requests``,
  ``rows``, ``max_abs_diff``, ``tolerance``, ``seconds``, ``command``). A failed smoke fails the gate with its
  reason (``refuse_unserved``) and the registration refuses the candidate: nothing is registered.

The gate compares in the primary metric's direction (``pipelines.schema.METRICS``): for an error such as
RMSE the floor is a ceiling and an improvement is a decrease.

The job succeeds whatever the decision; the state machine branches on ``decision.passed``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from pipelines.etl.transforms import numeric_stats
from pipelines.evaluation import model_metrics, quality_confusion
from pipelines.evaluation.smoke import PING_TIMEOUT_SECONDS, SERVE_COMMAND, EarlyServing, SmokeResult
from pipelines.features import model_frame
from pipelines.inference.inference import (
    JSON,
    MODEL_FILE,
    Limits,
    LoadedModel,
    decode_request,
    load_model,
    predict,
    prediction_records,
)
from pipelines.platform import platform
from pipelines.schema import METRICS, DatasetSchema
from pipelines.training.train import load_split

PROCESSING_DIR = Path("/opt/ml/processing")
EVALUATION_FILE = "evaluation.json"
GOLDEN_FILE = "golden.json"
GOLDEN_ROWS = 8
GOLDEN_TOLERANCE = 1e-6
"""Absolute difference allowed between a served probability (or value) and the golden one (float noise only)."""
GATE_METRICS: tuple[str, ...] = tuple(METRICS)
"""Metrics the gate can compare, each in its direction; the model's task must report it."""
QUALITY_SECTIONS: dict[str, str] = {
    "binary": "binary_classification_metrics",
    "multiclass": "multiclass_classification_metrics",
    "regression": "regression_metrics",
}
"""The model-quality statistics section of each task (SageMaker Model Monitor's names)."""
TOLERANCE = 1e-9
"""Differences below this are float noise: a tie, or exactly on the floor / the required improvement."""


class GateSettings(Protocol):
    """What the gate needs; ``stacks.config.EvaluationGate`` satisfies it."""

    @property
    def primary_metric(self) -> str: ...

    @property
    def min_improvement(self) -> float: ...

    @property
    def absolute_floor(self) -> float: ...


@dataclass(frozen=True)
class Gate:
    """The gate as passed to the job on the command line."""

    primary_metric: str
    min_improvement: float
    absolute_floor: float


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reason: str
    primary_metric: str
    challenger_value: float
    champion_value: float | None
    improvement: float | None


def processing_arguments() -> list[str]:
    """The job's ``ContainerArguments`` after ``--dataset <name>`` (which the state machine adds per execution):
    the container paths of the inputs and the output, explicitly (the job definition names every path it uses;
    nothing relies on a default). The gate is the dataset's, from the platform document."""
    return [
        *(
            item
            for name in ("test", "challenger", "champion")
            for item in (f"--{name}_dir", str(PROCESSING_DIR / name))
        ),
        "--output_dir",
        str(PROCESSING_DIR / "evaluation"),
    ]


def decide(
    challenger_metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None,
    gate: GateSettings,
) -> GateDecision:
    """Pass only if the challenger clears ``absolute_floor`` and, when there is a champion, beats it by at
    least ``min_improvement`` on ``primary_metric``, both in the metric's direction (for a lower-is-better
    metric the floor is a ceiling, and ``improvement`` is the champion's value minus the challenger's). A tie
    always fails."""
    metric = gate.primary_metric
    if metric not in GATE_METRICS:
        raise ValueError(f"primary metric {metric!r} is not one of {list(GATE_METRICS)}")
    if metric not in challenger_metrics:
        raise ValueError(f"challenger metrics lack the primary metric {metric!r}")
    direction = METRICS[metric]
    value = float(challenger_metrics[metric])
    floor = gate.absolute_floor
    required = gate.min_improvement

    def verdict(passed: bool, reason: str, champion: float | None = None) -> GateDecision:
        improvement = None if champion is None else direction.better(value, champion)
        return GateDecision(passed, reason, metric, value, champion, improvement)

    if direction.better(value, floor) < -TOLERANCE:
        champion_value = None if champion_metrics is None else float(champion_metrics[metric])
        side = "below the absolute floor" if direction.higher_is_better else "above the ceiling"
        return verdict(False, f"challenger {metric} {value:.4f} is {side} {floor:.4f}", champion_value)
    if champion_metrics is None:
        return verdict(True, f"no champion; challenger {metric} {value:.4f} clears the floor {floor:.4f}")
    if metric not in champion_metrics:
        raise ValueError(f"champion metrics lack the primary metric {metric!r}")
    champion = float(champion_metrics[metric])
    improvement = direction.better(value, champion)
    if abs(improvement) <= TOLERANCE:
        return verdict(
            False,
            f"tie: challenger {metric} {value:.4f} equals the champion's; an improvement of at least "
            f"{required:.4f} is required",
            champion,
        )
    if improvement < 0:
        worse = "below" if direction.higher_is_better else "above"
        return verdict(
            False,
            f"champion wins: challenger {metric} {value:.4f} is {worse} the champion's {champion:.4f} "
            f"(by {-improvement:.4f})",
            champion,
        )
    if improvement < required - TOLERANCE:
        return verdict(
            False,
            f"challenger {metric} {value:.4f} improves on the champion's {champion:.4f} "
            f"by {improvement:.4f}, less than the required {required:.4f}",
            champion,
        )
    return verdict(
        True,
        f"challenger {metric} {value:.4f} beats the champion's {champion:.4f} by {improvement:.4f} "
        f"(required {required:.4f})",
        champion,
    )


# ---- models ----------------------------------------------------------------------------------------


def find_model(directory: str | Path) -> Path | None:
    """The model in a processing input: an unpacked model dir or the one ``*.tar.gz`` in it; None if empty."""
    root = Path(directory)
    if not root.is_dir():
        return None
    if (root / MODEL_FILE).is_file():
        return root
    archives = sorted(root.rglob("*.tar.gz"))
    if len(archives) > 1:
        raise ValueError(f"{root}: expected one model archive, found {[str(a) for a in archives]}")
    return archives[0] if archives else None


def unpack_model(archive: str | Path, destination: str | Path) -> Path:
    """Extract a ``model.tar.gz`` (safely: no absolute paths, links out or devices) into ``destination``."""
    target = Path(destination)
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(target, filter="data")
    if not (target / MODEL_FILE).is_file():
        raise FileNotFoundError(f"{archive}: no {MODEL_FILE} at the archive root")
    return target


def model_directory(directory: str | Path, workdir: Path) -> Path | None:
    """The unpacked model of a processing input (unpacked into ``workdir`` when it is an archive); None if empty."""
    found = find_model(directory)
    if found is None:
        return None
    return found if found.is_dir() else unpack_model(found, workdir)


def open_model(directory: str | Path, workdir: Path) -> LoadedModel | None:
    model_dir = model_directory(directory, workdir)
    return None if model_dir is None else load_model(model_dir)


@dataclass(frozen=True)
class ModelEvaluation:
    model_version: str
    metrics: dict[str, float]
    confusion_matrix: dict[str, dict[str, int]] | None  # None for regression
    rows: int
    task: str = "binary"
    output_baseline: dict[str, Any] | None = None


def evaluate_model(model: LoadedModel, test_dir: str | Path) -> ModelEvaluation:
    """``model``'s metrics on the test split, read and featurised under the model's own schema."""
    schema = model.schema
    test = load_split(test_dir, schema, "test")
    output = model.predict_proba(model_frame(test, schema))
    labels = test[schema.target].to_numpy()
    return ModelEvaluation(
        model_version=model.version,
        metrics=model_metrics(schema, labels, output, model.threshold),
        confusion_matrix=quality_confusion(schema, labels, output, model.threshold),
        rows=len(test),
        task=schema.task,
        output_baseline=output_baseline(model, output),
    )


def output_baseline(model: LoadedModel, output: np.ndarray) -> dict[str, Any]:
    """The distribution of ``model``'s answers on the test split, the drift monitor's baseline of the model's
    output: binary, the positive label's probability and regression, the value (numeric statistics of the ETL
    quality report: decile histogram and sketch); multiclass, the shares of the predicted labels (categorical
    statistics over the declared labels). The model's own answers on held-out rows are what its answers should
    look like without drift; the target's distribution is not (a regressor's values are narrower than the
    target's, a probability is not a 0/1 label)."""
    schema = model.schema
    if schema.task != "multiclass":
        what = "value" if schema.task == "regression" else "probability"
        statistics = numeric_stats(np.asarray(output, dtype=np.float64))
    else:
        what = "label"
        names = [str(label) for label in schema.class_labels]
        counts = np.bincount(np.asarray(output).argmax(axis=1), minlength=len(names))
        total = int(counts.sum())
        statistics = {
            "kind": "categorical",
            "count": total,
            "nulls": 0,
            "counts": {name: int(count) for name, count in zip(names, counts, strict=True)},
            "proportions": {name: (int(c) / total if total else 0.0) for name, c in zip(names, counts, strict=True)},
        }
    return {
        "task": schema.task,
        "output": what,
        "model_version": model.version,
        "source": "the model's answers on the test split",
        "statistics": statistics,
    }


def model_quality(evaluation: ModelEvaluation) -> dict[str, Any]:
    """SageMaker model-quality statistics layout: ``{"<task section>": {name: {"value"}, "confusion_matrix"}}``
    (``QUALITY_SECTIONS``; no confusion matrix for regression)."""
    values: dict[str, Any] = {name: {"value": value} for name, value in evaluation.metrics.items()}
    if evaluation.confusion_matrix is not None:
        values["confusion_matrix"] = evaluation.confusion_matrix
    return {QUALITY_SECTIONS[evaluation.task]: values}


def _json_value(value: Any) -> Any:
    """A feature value as JSON: numbers as floats, missing values (None / NaN) as null, the rest as text."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        return None if math.isnan(number) else number
    return str(value)


def golden_records(test: pd.DataFrame, schema: DatasetSchema, rows: int = GOLDEN_ROWS) -> list[dict[str, Any]]:
    """The first ``rows`` test rows as request records: the schema's features only, missing values null."""
    head = test.head(rows)
    return [{name: _json_value(row[name]) for name in schema.feature_names} for row in head.to_dict(orient="records")]


def golden_payload(model: LoadedModel, test: pd.DataFrame, rows: int = GOLDEN_ROWS) -> dict[str, Any]:
    """``golden.json``: a request body of test rows and ``model``'s answer to it, computed by the inference
    handler's own decode -> predict path (what the endpoint will run)."""
    body = {"instances": golden_records(test, model.schema, rows)}
    if not body["instances"]:
        raise ValueError("the test split has no rows for the golden payload")
    prediction = predict(decode_request(json.dumps(body), JSON, Limits()), model)
    key = model.schema.key_column
    keys = test[key].head(rows).tolist() if key in test.columns else []
    golden: dict[str, Any] = {
        "model_version": model.version,
        "task": model.schema.task,
        "content_type": JSON,
        "accept": JSON,
        "body": body,
        "predictions": prediction_records(prediction),
        "tolerance": GOLDEN_TOLERANCE,
        "keys": [str(key) for key in keys],
    }
    if prediction.values is not None:
        golden["values"] = prediction.values.tolist()
    if prediction.probabilities is not None and prediction.labels is not None:
        golden["probabilities"] = prediction.probabilities.tolist()
        golden["labels"] = prediction.labels.tolist()
    if prediction.task == "multiclass":
        golden["classes"] = list(prediction.classes)
    return golden


def refuse_unserved(decision: GateDecision, smoke: SmokeResult) -> GateDecision:
    """The gate refuses a challenger that the serving stack did not answer as the handler does, whatever its
    metrics: the reason is the smoke test's (the request, the status code, the body's start)."""
    if smoke.passed:
        return decision
    return replace(decision, passed=False, reason=f"smoke test failed: {smoke.reason}")


def build_report(
    challenger: ModelEvaluation,
    champion: ModelEvaluation | None,
    decision: GateDecision,
    gate: GateSettings,
    smoke: SmokeResult,
) -> dict[str, Any]:
    return {
        "model_version": challenger.model_version,
        **model_quality(challenger),
        "champion": None if champion is None else {"model_version": champion.model_version, **model_quality(champion)},
        "decision": asdict(decision),
        "gate": {
            "primary_metric": gate.primary_metric,
            "min_improvement": gate.min_improvement,
            "absolute_floor": gate.absolute_floor,
        },
        "test_rows": challenger.rows,
        "output_baseline": challenger.output_baseline,
        "smoke": smoke.as_dict(),
        "evaluated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def run(
    test_dir: str | Path,
    challenger_dir: str | Path,
    champion_dir: str | Path | None,
    output_dir: str | Path,
    gate: GateSettings,
    dataset: str | None = None,
    *,
    smoke_command: Sequence[str] = SERVE_COMMAND,
    smoke_tolerance: float = GOLDEN_TOLERANCE,
    smoke_timeout: float = PING_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    """Evaluate, smoke-test the challenger's archive on the image's serving stack (``smoke_command``), decide and
    write ``evaluation.json`` and ``golden.json``; returns the report. With ``dataset``, the challenger must be a
    model of that dataset (its archive's schema says which)."""
    with tempfile.TemporaryDirectory(prefix="evaluate-") as scratch:
        challenger_unpacked = model_directory(challenger_dir, Path(scratch) / "challenger")
        if challenger_unpacked is None:
            raise FileNotFoundError(f"no challenger model under {challenger_dir}")
        challenger_model = load_model(challenger_unpacked)
        if dataset is not None and challenger_model.schema.name != dataset:
            raise ValueError(
                f"the challenger under {challenger_dir} is a model of {challenger_model.schema.name!r}, "
                f"not of {dataset!r}"
            )
        task = challenger_model.schema.task
        if gate.primary_metric in METRICS and task not in METRICS[gate.primary_metric].tasks:
            raise ValueError(
                f"the gate's primary metric {gate.primary_metric} does not fit the {task} task of "
                f"{challenger_model.schema.name}"
            )
        # the serving stack starts now: its start-up overlaps the evaluation; the golden requests come after it
        with EarlyServing(challenger_unpacked, smoke_command) as serving:
            champion_model = None if champion_dir is None else open_model(champion_dir, Path(scratch) / "champion")
            challenger = evaluate_model(challenger_model, test_dir)
            champion = None if champion_model is None else evaluate_model(champion_model, test_dir)
            golden = golden_payload(challenger_model, load_split(test_dir, challenger_model.schema, "test"))
            tolerance = max(GOLDEN_TOLERANCE, smoke_tolerance)
            smoke = serving.test(challenger_model, golden, tolerance, timeout=smoke_timeout)
    decision = decide(challenger.metrics, None if champion is None else champion.metrics, gate)
    report = build_report(challenger, champion, refuse_unserved(decision, smoke), gate, smoke)
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / EVALUATION_FILE).write_text(json.dumps(report, indent=2, sort_keys=True, allow_nan=False))
    (output / GOLDEN_FILE).write_text(json.dumps(golden, indent=2, allow_nan=False))  # records in schema order
    return report


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="evaluate", description="Champion/challenger evaluation (SageMaker).")
    parser.add_argument("--dataset", required=True, help="the declared dataset: its gate from the platform document")
    parser.add_argument("--test_dir", type=Path, default=PROCESSING_DIR / "test")
    parser.add_argument("--challenger_dir", type=Path, default=PROCESSING_DIR / "challenger")
    parser.add_argument("--champion_dir", type=Path, default=PROCESSING_DIR / "champion")
    parser.add_argument("--output_dir", type=Path, default=PROCESSING_DIR / "evaluation")
    return parser.parse_args(list(argv) if argv is not None else None)


def dataset_gate(dataset: str) -> Gate:
    """The gate of ``dataset`` in this stage (the platform document shipped with the code)."""
    gate = platform().dataset(dataset).gate
    return Gate(gate.metric, gate.min_improvement, gate.floor)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    gate = dataset_gate(args.dataset)
    serving = platform().dataset(args.dataset).serving
    report = run(
        args.test_dir,
        args.challenger_dir,
        args.champion_dir,
        args.output_dir,
        gate,
        dataset=args.dataset,
        smoke_tolerance=float(serving.get("smoke_tolerance", GOLDEN_TOLERANCE)),
    )
    print(f"smoke test {'PASSED' if report['smoke']['passed'] else 'FAILED'}: {report['smoke']['reason']}", flush=True)
    decision = report["decision"]
    print(f"gate {'PASSED' if decision['passed'] else 'FAILED'}: {decision['reason']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
