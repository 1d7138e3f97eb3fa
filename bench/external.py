"""Benchmarks owned by other parts of the project, imported lazily so a missing one reports "not available".

- ``drift``: ``bench/bench_drift.py`` (drift computation vs numpy histograms, budget <= 3.0x).
- ``lifecycle``: ``localcloud/bench.py`` (one demo pipeline execution on 100,000 rows vs the ETL transform +
  training run directly on the same rows, budget <= 1.5x).

Either module may implement the harness interface ``run(quick: bool) -> list[bench.harness.Result]`` (preferred)
or a ``run(...) -> dict`` with at least ``ratio`` (and optionally ``passed``, ``violations``, ``budget`` and
``*_seconds`` / ``*_ms`` figures); a dict is turned into one row here. A ``run`` without a ``quick`` parameter
gets small sizes through whichever of ``rows`` / ``records`` / ``n_rows`` / ``n_records`` / ``repeats`` it takes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from bench.harness import Budget, Result, import_optional

DRIFT_BUDGET = Budget(on="ratio", op="<=", limit=3.0)
LIFECYCLE_BUDGET = Budget(on="ratio", op="<=", limit=1.5)
QUICK_SIZES = {"rows": 20_000, "records": 20_000, "n_rows": 20_000, "n_records": 20_000, "repeats": 1}


def call_run(function: Callable[..., Any], quick: bool) -> Any:
    """Call ``function`` with ``quick`` if it takes it, else with the quick sizes it accepts (full: defaults)."""
    parameters = inspect.signature(function).parameters
    if "quick" in parameters:
        return function(quick=quick)
    if not quick:
        return function()
    return function(**{name: value for name, value in QUICK_SIZES.items() if name in parameters})


def _pick(measured: dict[str, Any], hints: Sequence[str], exclude: Sequence[str]) -> tuple[str, float] | None:
    """The first ``*_seconds`` / ``*_ms`` number whose key contains a hint (and no excluded word)."""
    for suffix, unit_factor in (("_ms", 1.0), ("_seconds", 1000.0), ("_s", 1000.0)):
        for key, value in measured.items():
            lowered = key.lower()
            if (
                lowered.endswith(suffix)
                and isinstance(value, int | float)
                and any(h in lowered for h in hints)
                and not any(x in lowered for x in exclude)
            ):
                return key, float(value) * unit_factor
    return None


def result_from_dict(
    name: str,
    measured: dict[str, Any],
    budget: Budget,
    *,
    figure_hints: Sequence[str],
    reference_hints: Sequence[str],
    reference_label: str,
) -> Result:
    """One row from a benchmark's dict: figure and reference in ms, its ratio, its own verdict respected."""
    figure = _pick(measured, figure_hints, reference_hints)
    reference = _pick(measured, reference_hints, ())
    ratio = measured.get("ratio")
    if ratio is None and figure and reference and reference[1]:
        ratio = figure[1] / reference[1]
    if not isinstance(ratio, int | float):
        raise ValueError(f"{name}: the benchmark's result has no numeric 'ratio' (keys: {sorted(measured)})")
    limit = measured.get("budget", measured.get("budget_ratio"))
    if isinstance(limit, int | float) and float(limit) != budget.limit:
        budget = Budget(on=budget.on, op=budget.op, limit=float(limit), unit=budget.unit)
    size_keys = [k for k in ("rows", "records", "features") if isinstance(measured.get(k), int)]
    sizes = ", ".join(f"{measured[k]:,} {k}" for k in size_keys)
    problems = [str(v) for v in measured.get("violations", [])]
    if measured.get("passed") is False and not problems and budget.holds(float(ratio)):
        problems.append("the benchmark reports a failure")
    return Result.measured(
        name,
        figure=figure[1] if figure else float(ratio),
        unit="ms" if figure else "x",
        reference=reference[1] if reference else None,
        reference_label=reference_label,
        ratio=float(ratio),
        budget=budget,
        problems=problems,
        note=sizes if figure else f"{sizes}; figure: the ratio (no *_seconds/*_ms figure in the result)".lstrip("; "),
        details=measured,
    )


def _adapt(
    name: str,
    module: str,
    budget: Budget,
    quick: bool,
    *,
    figure_hints: Sequence[str],
    reference_hints: Sequence[str],
    reference_label: str,
) -> list[Result]:
    run = import_optional(module).run
    measured = call_run(run, quick)
    if isinstance(measured, list):
        return measured
    if not isinstance(measured, dict):
        raise TypeError(f"{module}.run returned {type(measured).__name__}, expected list[Result] or dict")
    return [
        result_from_dict(
            name,
            measured,
            budget,
            figure_hints=figure_hints,
            reference_hints=reference_hints,
            reference_label=reference_label,
        )
    ]


def drift(quick: bool = False) -> list[Result]:
    """Drift computation (PSI/KS over 1,000,000 records x 20 features) vs numpy histograms of the same data."""
    return _adapt(
        "drift",
        "bench.bench_drift",
        DRIFT_BUDGET,
        quick,
        figure_hints=("drift", "psi", "monitor"),
        reference_hints=("numpy",),
        reference_label="numpy histograms",
    )


def lifecycle(quick: bool = False) -> list[Result]:
    """One local-cloud pipeline execution on 100,000 rows vs ETL transform + training called directly."""
    return _adapt(
        "lifecycle",
        "localcloud.bench",
        LIFECYCLE_BUDGET,
        quick,
        figure_hints=("pipeline", "execution", "lifecycle", "demo"),
        reference_hints=("direct", "reference", "baseline"),
        reference_label="ETL + training called directly",
    )
