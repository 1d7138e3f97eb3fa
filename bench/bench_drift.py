"""Drift computation against numpy histograms of the same data, measured in the same run.

The drift side is what the drift monitor runs once the captured requests are decoded: ``logic.compare``
(``drift_math.numeric_drift`` per feature: PSI over the baseline's quantile bins plus KS against its
100-point sketch) on 1,000,000 records x 20 numeric features, against a baseline built by the ETL's own
``build_quality_report``. The reference is ``np.histogram(values, bins=edges)`` per feature with the same
edges, i.e. numpy doing only the binning. Both take the best of ``repeats`` runs, interleaved so that machine
noise hits both. Budget: drift seconds / numpy seconds <= ``BUDGET``.
``python -m bench.bench_drift [--records N]`` exits 1 when the budget is broken.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from lambdas.drift_monitor.logic import compare
from pipelines.etl.transforms import REJECT_REASON, build_quality_report
from pipelines.schema import DatasetSchema, Feature

BUDGET = 3.0  # drift seconds / numpy histogram seconds
FEATURES = 20
BASELINE_ROWS = 100_000
QUICK_RECORDS = 200_000


def _schema(features: int) -> DatasetSchema:
    return DatasetSchema(
        name="bench",
        key="id",
        target="y",
        features=tuple(Feature(f"f{i:02d}", "numeric", nullable=True) for i in range(features)),
    )


def _columns(rows: int, features: int, seed: int, shift: float) -> dict[str, np.ndarray]:
    """Continuous, skewed and discrete columns (a few with missing values); ``shift`` moves them a little."""
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for i in range(features):
        kind = i % 4
        if kind == 0:
            values = rng.normal(50.0 + shift * 5, 10.0, rows)
        elif kind == 1:
            values = rng.gamma(2.0, 3.0 * (1 + shift * 0.2), rows)
        elif kind == 2:
            values = rng.poisson(2.0 + shift, rows).astype(np.float64)  # many ties
        else:
            values = np.exp(rng.normal(3.0 + shift * 0.1, 0.6, rows)).round(1)
        if i % 5 == 0:
            values[rng.random(rows) < 0.02] = np.nan
        columns[f"f{i:02d}"] = values
    return columns


def _seconds(step: Callable[[], Any]) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def run(
    records: int = 1_000_000, repeats: int = 3, features: int = FEATURES, seed: int = 5, quick: bool = False
) -> dict[str, Any]:
    """Measure both sides on ``records`` x ``features``; returns figure, reference, ratio and the verdict.

    ``quick`` measures 200,000 records once: fewer and the fixed per-feature cost (baseline parsing, a few
    small arrays) outweighs the data pass on both sides and the ratio stops saying anything.
    """
    if quick:
        records, repeats = min(records, QUICK_RECORDS), 1
    schema = _schema(features)
    base = _columns(BASELINE_ROWS, features, seed, shift=0.0)
    curated = pd.DataFrame({**base, "y": np.zeros(BASELINE_ROWS)})
    report = build_quality_report(schema, curated, pd.DataFrame({REJECT_REASON: pd.Series([], dtype=object)}))
    baseline = report["features"]
    current = pd.DataFrame(_columns(records, features, seed + 1, shift=0.3))
    arrays = {name: current[name].to_numpy() for name in schema.feature_names}
    edges = {name: np.asarray(baseline[name]["histogram"]["edges"]) for name in schema.feature_names}
    outcome: dict[str, Any] = {}

    def drift() -> None:
        drifts, skipped = compare(arrays, schema, baseline)
        if skipped or len(drifts) != features:
            raise RuntimeError(f"bench features were skipped: {skipped}")
        outcome["overall_psi"] = max(d.psi for d in drifts)
        outcome["max_ks"] = max(d.ks or 0.0 for d in drifts)

    def reference() -> None:
        for name in schema.feature_names:
            np.histogram(arrays[name], bins=edges[name])

    drift_times, numpy_times = [], []
    for _ in range(repeats):
        drift_times.append(_seconds(drift))
        numpy_times.append(_seconds(reference))
    drift_seconds, numpy_seconds = min(drift_times), min(numpy_times)
    ratio = drift_seconds / numpy_seconds
    return {
        "records": records,
        "features": features,
        "drift_seconds": round(drift_seconds, 4),
        "numpy_seconds": round(numpy_seconds, 4),
        "figure": round(drift_seconds, 4),
        "reference": round(numpy_seconds, 4),
        "ratio": round(ratio, 3),
        "budget": BUDGET,
        "passed": ratio <= BUDGET,
        "overall_psi": round(outcome["overall_psi"], 4),
        "max_ks": round(outcome["max_ks"], 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_drift", description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    result = run(args.records, args.repeats)
    verdict = "ok" if result["passed"] else "BUDGET BROKEN"
    print(
        f"bench_drift records={result['records']:,} features={result['features']} "
        f"drift={result['drift_seconds']} s numpy_histogram={result['numpy_seconds']} s "
        f"ratio={result['ratio']} budget<={BUDGET} {verdict}"
    )
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
