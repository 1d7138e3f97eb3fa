"""The trials a local tuning job runs: SageMaker's Random and Grid strategies as documented; Bayesian and
Hyperband refused with the reason."""

from __future__ import annotations

import math
from typing import Any

import pytest

from localcloud.runtime.tuning import TuningRefused, best_trial, plan_trials


def config(strategy: str, ranges: dict[str, list[dict[str, Any]]], jobs: int | None = 4, seed: int = 7) -> dict:
    limits: dict[str, int] = {"MaxParallelTrainingJobs": 2}
    if jobs is not None:
        limits["MaxNumberOfTrainingJobs"] = jobs
    return {"Strategy": strategy, "ResourceLimits": limits, "ParameterRanges": ranges, "RandomSeed": seed}


RANDOM_RANGES = {
    "IntegerParameterRanges": [
        {"Name": "n_estimators", "MinValue": "10", "MaxValue": "1000", "ScalingType": "Logarithmic"}
    ],
    "ContinuousParameterRanges": [
        {"Name": "learning_rate", "MinValue": "0.001", "MaxValue": "0.5", "ScalingType": "Linear"},
        {"Name": "momentum", "MinValue": "0.9", "MaxValue": "0.999", "ScalingType": "ReverseLogarithmic"},
    ],
    "CategoricalParameterRanges": [{"Name": "max_features", "Values": ["sqrt", "log2"]}],
}


def test_random_draws_max_jobs_trials_inside_the_ranges_as_strings() -> None:
    # Given a Random tuning job of 4 trials over integer, continuous and categorical ranges
    trials = plan_trials(config("Random", RANDOM_RANGES, jobs=4))
    # Then there are 4 trials, each with every hyperparameter, as strings inside its range
    assert len(trials) == 4
    for values in trials:
        assert set(values) == {"n_estimators", "learning_rate", "momentum", "max_features"}
        assert 10 <= int(values["n_estimators"]) <= 1000 and values["n_estimators"].isdigit()
        assert 0.001 <= float(values["learning_rate"]) <= 0.5
        assert 0.9 <= float(values["momentum"]) <= 0.999
        assert values["max_features"] in ("sqrt", "log2")
    # And the trials differ (a sampler, not one point)
    assert len({tuple(sorted(v.items())) for v in trials}) == 4


def test_random_is_reproducible_by_its_seed_and_changes_with_it() -> None:
    assert plan_trials(config("Random", RANDOM_RANGES)) == plan_trials(config("Random", RANDOM_RANGES))
    assert plan_trials(config("Random", RANDOM_RANGES, seed=1)) != plan_trials(config("Random", RANDOM_RANGES, seed=2))


def test_logarithmic_scaling_draws_uniformly_in_log_space() -> None:
    # Given a continuous range over four decades on a log scale, drawn many times
    ranges = {
        "ContinuousParameterRanges": [
            {"Name": "C", "MinValue": "0.001", "MaxValue": "10", "ScalingType": "Logarithmic"}
        ]
    }
    values = [float(t["C"]) for t in plan_trials(config("Random", ranges, jobs=2000))]
    # Then each decade gets about a quarter of the draws (linear scaling would put 90% in the last one)
    decades = [sum(1 for v in values if 10**low <= v < 10 ** (low + 1)) / len(values) for low in (-3, -2, -1, 0)]
    assert all(math.isclose(share, 0.25, abs_tol=0.05) for share in decades), decades


def test_grid_runs_every_combination_of_the_categorical_values_in_order() -> None:
    ranges = {
        "CategoricalParameterRanges": [
            {"Name": "max_features", "Values": ["sqrt", "log2"]},
            {"Name": "class_weight", "Values": ["balanced", "null"]},
        ]
    }
    assert plan_trials(config("Grid", ranges, jobs=None)) == [
        {"max_features": "sqrt", "class_weight": "balanced"},
        {"max_features": "sqrt", "class_weight": "null"},
        {"max_features": "log2", "class_weight": "balanced"},
        {"max_features": "log2", "class_weight": "null"},
    ]


def test_grid_refuses_a_numeric_range() -> None:
    ranges = {
        "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2", "MaxValue": "8"}],
        "CategoricalParameterRanges": [{"Name": "max_features", "Values": ["sqrt"]}],
    }
    with pytest.raises(TuningRefused, match="the Grid strategy takes categorical parameter ranges only, got max_depth"):
        plan_trials(config("Grid", ranges, jobs=None))


@pytest.mark.parametrize(
    ("strategy", "why"), [("Bayesian", "earlier trials' objective values"), ("Hyperband", "stops trials early")]
)
def test_bayesian_and_hyperband_are_refused_with_the_reason(strategy: str, why: str) -> None:
    with pytest.raises(TuningRefused) as refused:
        plan_trials(config(strategy, RANDOM_RANGES))
    message = str(refused.value)
    assert message.startswith("the local cloud runs the Random and Grid strategies only: ")
    assert why in message and message.endswith("The strategy stays valid in the template and runs in AWS")


def test_random_without_max_jobs_is_refused() -> None:
    with pytest.raises(TuningRefused, match="MaxNumberOfTrainingJobs is required for the Random strategy"):
        plan_trials(config("Random", RANDOM_RANGES, jobs=None))


def test_the_best_trial_follows_the_objective_type_and_skips_failed_trials() -> None:
    trials = [
        {"name": "a", "status": "Completed", "objective": 0.7},
        {"name": "b", "status": "Failed", "objective": None},
        {"name": "c", "status": "Completed", "objective": 0.9},
        {"name": "d", "status": "Completed", "objective": 0.9},
        {"name": "e", "status": "Completed", "objective": 0.6},
    ]
    assert best_trial(trials, "Maximize")["name"] == "c"  # type: ignore[index]  # the first of a tie
    assert best_trial(trials, "Minimize")["name"] == "e"  # type: ignore[index]
    assert best_trial([trials[1]], "Maximize") is None
