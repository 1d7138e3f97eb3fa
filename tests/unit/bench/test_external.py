"""Adapters for benchmarks owned elsewhere (drift, local lifecycle): their dicts become rows."""

from __future__ import annotations

from typing import Any

import pytest

from bench.external import DRIFT_BUDGET, call_run, result_from_dict


def test_a_drift_dict_becomes_a_row_with_figure_reference_and_ratio_in_ms() -> None:
    # Given the dict a drift benchmark returns
    measured = {"records": 1_000_000, "drift_seconds": 0.9, "numpy_seconds": 0.6, "ratio": 1.5, "passed": True}
    # When it is adapted
    row = result_from_dict(
        "drift", measured, DRIFT_BUDGET, figure_hints=("drift",), reference_hints=("numpy",), reference_label="numpy"
    )
    # Then both timings are in ms, the ratio is the benchmark's own, and the 3x budget holds
    assert (row.figure, row.reference, row.unit, row.ratio, row.status) == (900.0, 600.0, "ms", 1.5, "pass")
    assert row.note == "1,000,000 records"
    assert row.details == measured


def test_the_benchmark_s_own_failure_and_budget_are_respected() -> None:
    # Given a dict with its own budget (2.0) and a reported violation
    measured = {"drift_ms": 25.0, "numpy_ms": 10.0, "budget": 2.0, "passed": False, "violations": ["PSI differs"]}
    # When it is adapted
    row = result_from_dict(
        "drift", measured, DRIFT_BUDGET, figure_hints=("drift",), reference_hints=("numpy",), reference_label="numpy"
    )
    # Then the ratio is derived (2.5), checked against the benchmark's budget, and the violation is the note
    assert row.ratio == 2.5
    assert row.budget is not None and row.budget.limit == 2.0
    assert (row.status, row.note) == ("fail", "PSI differs")


def test_a_dict_without_a_ratio_is_rejected_with_its_keys() -> None:
    # Given a result with no ratio and no timings / When adapted / Then the error names the keys it saw
    with pytest.raises(ValueError, match=r"drift: the benchmark's result has no numeric 'ratio' \(keys: \['rows'\]\)"):
        result_from_dict("drift", {"rows": 5}, DRIFT_BUDGET, figure_hints=(), reference_hints=(), reference_label="")


def test_call_run_passes_quick_or_the_small_sizes_a_run_function_accepts() -> None:
    # Given one run() with a quick flag and one with size parameters
    calls: list[dict[str, Any]] = []

    def with_quick(quick: bool = False) -> dict[str, Any]:
        calls.append({"quick": quick})
        return {}

    def with_sizes(records: int = 1_000_000, features: int = 20, repeats: int = 3) -> dict[str, Any]:
        calls.append({"records": records, "features": features, "repeats": repeats})
        return {}

    # When each is called quick, and the sized one also in a full run
    call_run(with_quick, True)
    call_run(with_sizes, True)
    call_run(with_sizes, False)
    # Then quick is passed through, sizes shrink only in the quick run, unknown sizes keep their defaults
    assert calls == [
        {"quick": True},
        {"records": 20_000, "features": 20, "repeats": 1},
        {"records": 1_000_000, "features": 20, "repeats": 3},
    ]
