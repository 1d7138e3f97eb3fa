"""The trials of a SageMaker automatic model tuning job, chosen as SageMaker documents its strategies
(https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-how-it-works.html):

- ``Random``: each trial draws every hyperparameter independently inside its range, on the range's scale
  (``Linear``; ``Logarithmic``: uniform in log space; ``ReverseLogarithmic``: uniform in log(1 - x); ``Auto``
  is taken as linear), from a generator seeded with the request's ``RandomSeed``, so a rerun picks the same
  values; ``MaxNumberOfTrainingJobs`` trials.
- ``Grid``: categorical ranges only (SageMaker rejects the others); one trial per combination of their values
  (the cartesian product, in the declared order), at most ``MaxNumberOfTrainingJobs`` when given.
- ``Bayesian`` and ``Hyperband`` are refused (``TuningRefused``): the next trial of either comes from
  SageMaker's own optimizer over the earlier trials' objective values (Hyperband also stops trials early on
  intermediate metrics), which is not reproduced offline. A template may declare them; they run in AWS.

Values are strings, as SageMaker passes hyperparameters: integers as ``"17"``, continuous values as Python's
shortest float text, categorical values as given.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

LOCAL_STRATEGIES = ("Random", "Grid")
REFUSED_STRATEGIES = {
    "Bayesian": "Bayesian picks each trial from a model of the earlier trials' objective values (SageMaker's own "
    "optimizer)",
    "Hyperband": "Hyperband stops trials early on their intermediate metrics with SageMaker's own scheduler",
}


class TuningRefused(ValueError):
    """A tuning job request the local cloud does not run (or that SageMaker rejects); the message says why."""


def _ranges(config: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    return list((config.get("ParameterRanges") or {}).get(key) or [])


def _draw(rng: random.Random, low: float, high: float, scaling: str) -> float:
    if scaling == "Logarithmic":
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    if scaling == "ReverseLogarithmic":
        return 1 - math.exp(rng.uniform(math.log(1 - high), math.log(1 - low)))
    return rng.uniform(low, high)


def _random_trial(rng: random.Random, config: Mapping[str, Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for spec in _ranges(config, "IntegerParameterRanges"):
        low, high = int(spec["MinValue"]), int(spec["MaxValue"])
        scaling = spec.get("ScalingType") or "Auto"
        drawn = rng.randint(low, high) if scaling in ("Auto", "Linear") else round(_draw(rng, low, high, scaling))
        values[spec["Name"]] = str(min(high, max(low, drawn)))
    for spec in _ranges(config, "ContinuousParameterRanges"):
        bottom, top = float(spec["MinValue"]), float(spec["MaxValue"])
        drawn_float = _draw(rng, bottom, top, spec.get("ScalingType") or "Auto")
        values[spec["Name"]] = repr(min(top, max(bottom, drawn_float)))
    for spec in _ranges(config, "CategoricalParameterRanges"):
        values[spec["Name"]] = str(rng.choice(list(spec["Values"])))
    return values


def plan_trials(config: Mapping[str, Any]) -> list[dict[str, str]]:
    """The hyperparameter values of every trial, in launch order; ``TuningRefused`` for a strategy the local cloud
    does not run or a request SageMaker rejects."""
    strategy = config.get("Strategy")
    if strategy in REFUSED_STRATEGIES:
        raise TuningRefused(
            f"the local cloud runs the {' and '.join(LOCAL_STRATEGIES)} strategies only: "
            f"{REFUSED_STRATEGIES[strategy]}, which is not reproduced offline. The strategy stays valid in the "
            "template and runs in AWS"
        )
    if strategy not in LOCAL_STRATEGIES:
        raise TuningRefused(f"Strategy {strategy!r} is not one of Bayesian, Random, Hyperband, Grid")
    limits = config.get("ResourceLimits") or {}
    if int(limits.get("MaxParallelTrainingJobs") or 0) < 1:
        raise TuningRefused("ResourceLimits.MaxParallelTrainingJobs must be at least 1")
    maximum = limits.get("MaxNumberOfTrainingJobs")
    if strategy == "Grid":
        numeric = [
            spec["Name"]
            for key in ("IntegerParameterRanges", "ContinuousParameterRanges")
            for spec in _ranges(config, key)
        ]
        if numeric:
            raise TuningRefused(f"the Grid strategy takes categorical parameter ranges only, got {', '.join(numeric)}")
        categorical = _ranges(config, "CategoricalParameterRanges")
        if not categorical:
            raise TuningRefused("the Grid strategy needs at least one categorical parameter range")
        names = [spec["Name"] for spec in categorical]
        grid = [
            dict(zip(names, combination, strict=True))
            for combination in itertools.product(*[[str(value) for value in spec["Values"]] for spec in categorical])
        ]
        return grid[: int(maximum)] if maximum else grid
    if not maximum or int(maximum) < 1:
        raise TuningRefused(f"ResourceLimits.MaxNumberOfTrainingJobs is required for the {strategy} strategy")
    rng = random.Random(int(config.get("RandomSeed") or 0))
    return [_random_trial(rng, config) for _ in range(int(maximum))]


def best_trial(trials: Sequence[Mapping[str, Any]], objective_type: str) -> Mapping[str, Any] | None:
    """The completed trial with the best ``objective`` (``Maximize``: highest, ``Minimize``: lowest; the first
    launched wins a tie); None when no trial completed with an objective value."""
    scored = [t for t in trials if t.get("status") == "Completed" and t.get("objective") is not None]
    if not scored:
        return None
    sign = -1.0 if objective_type == "Maximize" else 1.0
    return min(enumerate(scored), key=lambda pair: (sign * float(pair[1]["objective"]), pair[0]))[1]
