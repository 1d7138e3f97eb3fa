"""Latency of the inference handler against the bare model, measured in the same run.

The handler path is what the endpoint runs per request: ``transform_fn`` (decode, predict, encode) on a
CSV body. The reference is the trained pipeline's ``predict_proba`` on the same rows as a prebuilt
DataFrame (raw + engineered columns), i.e. the model with no request handling at all. Handler and
reference calls alternate, so load on the host affects both alike.

Budgets: 1-row handler p99 < 5 ms; 100-row handler median <= 2.0x the reference median.
``python -m bench inference`` runs it (``--quick``: fewer calls, a model trained on fewer rows).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.harness import Budget, Result
from pipelines.data.generator import generate
from pipelines.features import model_frame
from pipelines.inference import inference
from pipelines.training import train
from stacks.datasets import dataset_schema

ONE_ROW_CALLS = 2000
BATCH_CALLS = 200
BATCH_ROWS = 100
ONE_ROW_P99_BUDGET_MS = 5.0
BATCH_RATIO_BUDGET = 2.0
QUICK_ONE_ROW_CALLS, QUICK_BATCH_CALLS, QUICK_TRAINING_ROWS = 200, 40, 1000


def _paired_timings(first: Callable[[], Any], second: Callable[[], Any], calls: int) -> tuple[np.ndarray, np.ndarray]:
    """Milliseconds per call of ``first`` and ``second``, called alternately ``calls`` times each."""
    for _ in range(20):  # warm caches and lazy imports
        first()
        second()
    a = np.empty(calls)
    b = np.empty(calls)
    clock = time.perf_counter_ns
    for index in range(calls):
        start = clock()
        first()
        middle = clock()
        second()
        a[index] = (middle - start) / 1e6
        b[index] = (clock() - middle) / 1e6
    return a, b


def _train_model(directory: str, training_rows: int = 4000) -> inference.LoadedModel:
    """The production model shape: default hyperparameters (TrainingSettings), 4,000 generated rows."""
    rows = generate(training_rows, seed=11)
    hyperparameters = train.Hyperparameters()
    cut = training_rows * 3 // 4
    result = train.train(rows.iloc[:cut], rows.iloc[cut:], dataset_schema("churn"), hyperparameters)
    train.write_model_artifacts(directory, result, dataset_schema("churn"), hyperparameters, model_version="bench")
    return inference.model_fn(directory)


def measure(
    one_row_calls: int = ONE_ROW_CALLS, batch_calls: int = BATCH_CALLS, training_rows: int = 4000
) -> dict[str, Any]:
    """Measure and return the latencies, the budgets and whether they hold."""
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as directory:
        model = _train_model(directory, training_rows)
    rows = generate(BATCH_ROWS, seed=12)[dataset_schema("churn").feature_names]
    bodies = {
        1: rows.head(1).to_csv(index=False, header=False),
        BATCH_ROWS: rows.to_csv(index=False, header=False),
    }
    frames = {n: model_frame(rows.head(n), dataset_schema("churn")).copy() for n in bodies}

    def handler(n: int) -> Callable[[], Any]:
        return lambda: inference.transform_fn(model, bodies[n], "text/csv", "text/csv")

    def bare(n: int) -> Callable[[], Any]:
        return lambda: model.pipeline.predict_proba(frames[n])

    # the handler must answer what the model answers
    served = [float(line.split(",")[0]) for line in handler(BATCH_ROWS)()[0].splitlines()]
    reference = bare(BATCH_ROWS)()[:, 1]
    max_difference = float(np.max(np.abs(np.array(served) - reference)))

    handler_1, bare_1 = _paired_timings(handler(1), bare(1), one_row_calls)
    handler_100, bare_100 = _paired_timings(handler(BATCH_ROWS), bare(BATCH_ROWS), batch_calls)
    ratio = float(np.median(handler_100) / np.median(bare_100))
    one_row_p99 = float(np.percentile(handler_1, 99))

    violations = []
    if one_row_p99 >= ONE_ROW_P99_BUDGET_MS:
        violations.append(f"1-row handler p99 {one_row_p99:.3f} ms >= {ONE_ROW_P99_BUDGET_MS} ms")
    if ratio > BATCH_RATIO_BUDGET:
        violations.append(f"{BATCH_ROWS}-row handler / model ratio {ratio:.2f} > {BATCH_RATIO_BUDGET}")
    if max_difference > 1e-9:
        violations.append(f"handler and model disagree by {max_difference:.3g}")
    return {
        "one_row": {
            "calls": one_row_calls,
            "handler_p50_ms": round(float(np.percentile(handler_1, 50)), 4),
            "handler_p99_ms": round(one_row_p99, 4),
            "model_p50_ms": round(float(np.percentile(bare_1, 50)), 4),
            "model_p99_ms": round(float(np.percentile(bare_1, 99)), 4),
            "budget_p99_ms": ONE_ROW_P99_BUDGET_MS,
        },
        "batch": {
            "rows": BATCH_ROWS,
            "calls": batch_calls,
            "handler_median_ms": round(float(np.median(handler_100)), 4),
            "model_median_ms": round(float(np.median(bare_100)), 4),
            "ratio": round(ratio, 3),
            "budget_ratio": BATCH_RATIO_BUDGET,
        },
        "fast_path": model.compiled is not None,
        # p99 on a shared host is mostly scheduling: the model's own p99 above shows how busy it was
        "host": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)},
        "max_abs_difference": max_difference,
        "violations": violations,
        "passed": not violations,
    }


def run(quick: bool = False) -> list[Result]:
    """The harness entry point: the 100-row ratio and the 1-row p99, each against the bare model."""
    measured = measure(QUICK_ONE_ROW_CALLS, QUICK_BATCH_CALLS, QUICK_TRAINING_ROWS) if quick else measure()
    one, batch = measured["one_row"], measured["batch"]
    disagreement = [v for v in measured["violations"] if v.startswith("handler and model disagree")]
    return [
        Result.measured(
            f"inference_{BATCH_ROWS}_rows",
            figure=batch["handler_median_ms"],
            unit="ms",
            reference=batch["model_median_ms"],
            reference_label="bare predict_proba, median",
            budget=Budget(on="ratio", op="<=", limit=BATCH_RATIO_BUDGET),
            problems=disagreement,
            note=f"handler median over {batch['calls']} calls; fast path {'on' if measured['fast_path'] else 'off'}",
            details=measured,
        ),
        Result.measured(
            "inference_1_row_p99",
            figure=one["handler_p99_ms"],
            unit="ms",
            reference=one["model_p99_ms"],
            reference_label="bare predict_proba, p99",
            budget=Budget(on="figure", op="<", limit=ONE_ROW_P99_BUDGET_MS, unit="ms"),
            note=f"p99 over {one['calls']} calls (load {measured['host']['load_average_1m']})",
        ),
    ]
