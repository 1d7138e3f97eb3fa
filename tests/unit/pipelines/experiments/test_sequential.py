"""The sequential test against known answers: closed forms, and simulated experiments whose truth is known
(an effect of the MDE is found at the configured power; no effect is promoted at most alpha of the time with a
look after every batch)."""

from __future__ import annotations

import math
import statistics
from typing import Any

import numpy as np
import pytest

from pipelines.experiments.sequential import (
    Arm,
    Design,
    decide,
    half_width,
    likelihood_ratio,
    required_samples,
)

LOOKS = 40  # a look after every batch of labels: the peeking the test must survive
SHARE = 0.2  # the challenger's share of traffic
BASE_RATE = 0.8  # the champion's share of correct answers
MDE = 0.03


def wilson(successes: int, runs: int, z: float) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion."""
    p = successes / runs
    centre = (p + z * z / (2 * runs)) / (1 + z * z / runs)
    spread = z * math.sqrt(p * (1 - p) / runs + z * z / (4 * runs * runs)) / (1 + z * z / runs)
    return centre - spread, centre + spread


def simulate(design: Design, effect: float, runs: int, seed: int, higher: float = BASE_RATE) -> dict[str, int]:
    """``runs`` binary-outcome experiments sized by ``required_samples``, a decision after each of ``LOOKS``
    batches, stopped at the first final one; the count of each verdict."""
    total = required_samples(design, higher * (1 - higher), SHARE)
    challenger_batch = int(total / LOOKS * SHARE)
    champion_batch = total // LOOKS - challenger_batch
    projected = (champion_batch * LOOKS, challenger_batch * LOOKS)
    rng = np.random.default_rng(seed)
    champion_hits = rng.binomial(champion_batch, higher, (runs, LOOKS))
    challenger_hits = rng.binomial(challenger_batch, higher + effect, (runs, LOOKS))
    verdicts: dict[str, int] = {}
    for run in range(runs):
        champion, challenger = Arm(), Arm()
        for look in range(LOOKS):
            a, b = int(champion_hits[run, look]), int(challenger_hits[run, look])
            champion = champion.merge(Arm.from_sums(champion_batch, a, a))  # 0/1 outcomes: squares = hits
            challenger = challenger.merge(Arm.from_sums(challenger_batch, b, b))
            decision = decide(design, champion, challenger, projected=projected, ended=look == LOOKS - 1)
            if decision.final:
                break
        verdicts[decision.verdict] = verdicts.get(decision.verdict, 0) + 1
    return verdicts


def test_no_effect_is_promoted_at_most_alpha_of_the_time_with_a_look_after_every_batch() -> None:
    # Given 2,000 experiments where the challenger is exactly as good, looked at after each of 40 batches
    design = Design(MDE, confidence=0.95)
    runs = 2000
    # When each runs to a decision
    verdicts = simulate(design, effect=0.0, runs=runs, seed=20261207)
    # Then even the upper end of a 99.9% interval of the false-promotion rate stays within alpha
    _, upper = wilson(verdicts.get("PROMOTE", 0), runs, z=3.29)
    assert upper <= design.alpha, verdicts
    assert sum(verdicts.values()) == runs


def test_an_effect_of_the_mde_is_detected_at_the_configured_power() -> None:
    # Given 1,000 experiments whose challenger is better by exactly the MDE, sized for 80% power
    design = Design(MDE, confidence=0.95, power=0.8)
    runs = 1000
    # When each runs to a decision
    verdicts = simulate(design, effect=MDE, runs=runs, seed=7)
    # Then the lower end of a 95% interval of the detection rate is at least the power, and none is called worse
    lower, _ = wilson(verdicts.get("PROMOTE", 0), runs, z=1.96)
    assert lower >= design.power, verdicts
    assert "STOP_WORSE" not in verdicts


def test_a_worse_challenger_is_stopped_early_as_worse_most_of_the_time() -> None:
    design = Design(MDE, confidence=0.95, power=0.8)
    verdicts = simulate(design, effect=-MDE, runs=300, seed=11)
    assert verdicts.get("STOP_WORSE", 0) >= 0.8 * 300, verdicts
    assert "PROMOTE" not in verdicts


def test_the_interval_edge_is_where_the_likelihood_ratio_reaches_one_over_alpha() -> None:
    # Given the closed form h(V) = sqrt(2V(V+tau2)/tau2 * (log(1/alpha) + log((V+tau2)/V)/2))
    design = Design(0.05, confidence=0.9)
    variance = 0.0004
    tau2 = 0.0025
    expected = math.sqrt(
        2 * variance * (variance + tau2) / tau2 * (math.log(10) + math.log((variance + tau2) / variance) / 2)
    )
    assert half_width(variance, design) == pytest.approx(expected, rel=1e-12)
    # Then an estimate exactly at the edge gives a likelihood ratio of exactly 1/alpha
    assert likelihood_ratio(expected, variance, design) == pytest.approx(10.0, rel=1e-9)
    assert likelihood_ratio(0.0, variance, design) == pytest.approx(math.sqrt(variance / (variance + tau2)))


def test_required_samples_is_the_smallest_that_detects_the_mde_at_the_power() -> None:
    design = Design(MDE, confidence=0.95, power=0.8)
    variance = BASE_RATE * (1 - BASE_RATE)
    total = required_samples(design, variance, SHARE)
    z = statistics.NormalDist().inv_cdf(0.8)

    def margin(n: int) -> float:
        v = variance / ((1 - SHARE) * n) + variance / (SHARE * n)
        return MDE - z * math.sqrt(v) - half_width(v, design)

    assert margin(total) >= 0 > margin(total - 1)
    # a smaller share, a smaller effect or a higher confidence need more observations
    assert required_samples(design, variance, 0.1) > total
    assert required_samples(Design(MDE / 2), variance, SHARE) > 3.5 * total
    assert required_samples(Design(MDE, confidence=0.99), variance, SHARE) > total
    with pytest.raises(ValueError, match="challenger_share"):
        required_samples(design, variance, 1.0)


def test_arm_statistics_equal_the_sample_mean_and_variance_however_they_are_combined() -> None:
    values = [0.5, 2.0, 3.5, 1.25, 8.0, 0.0, 4.75]
    arm = Arm.of(values)
    assert arm.n == 7
    assert arm.mean == pytest.approx(statistics.fmean(values))
    assert arm.variance == pytest.approx(statistics.variance(values))
    merged = Arm.of(values[:3]).merge(Arm.of(values[3:]))
    assert merged.variance == pytest.approx(arm.variance) and merged.mean == pytest.approx(arm.mean)
    sums = Arm.from_sums(7, sum(values), sum(v * v for v in values))
    assert sums.variance == pytest.approx(arm.variance)
    with pytest.raises(ValueError, match="finite"):
        arm.add(math.nan)


def test_lower_is_better_outcomes_count_a_smaller_error_as_an_improvement() -> None:
    # Given absolute errors: the challenger's are clearly smaller
    rng = np.random.default_rng(3)
    champion = Arm.of(np.abs(rng.normal(0, 10, 3000)).tolist())
    challenger = Arm.of(np.abs(rng.normal(0, 7, 1000)).tolist())
    decision = decide(Design(1.0, higher_is_better=False), champion, challenger)
    # Then the improvement is positive and the challenger is promoted, with the numbers and the reason
    assert decision.verdict == "PROMOTE"
    assert decision.improvement == pytest.approx(champion.mean - challenger.mean)
    assert decision.interval[0] > 0
    assert decision.statistic >= decision.threshold == pytest.approx(20.0)
    assert "lies above 0" in decision.reason and f"on {challenger.n}" in decision.reason
    assert decision.as_dict()["n_challenger"] == 1000


def test_no_decision_before_the_minimum_sample_and_a_clear_reason() -> None:
    design = Design(MDE, min_samples=100)
    decision = decide(design, Arm.of([1.0, 0.0] * 100), Arm.of([1.0] * 50 + [0.0]))
    assert decision.verdict == "CONTINUE"
    assert "51 challenger" in decision.reason and "needs 100 of each" in decision.reason
    ended = decide(design, Arm.of([1.0, 0.0] * 100), Arm.of([1.0] * 50 + [0.0]), ended=True)
    assert ended.verdict == "STOP_FUTILE" and "maximum duration reached" in ended.reason


def test_identical_outcomes_without_variance_continue() -> None:
    decision = decide(Design(MDE), Arm.of([1.0] * 200), Arm.of([1.0] * 200))
    assert decision.verdict == "CONTINUE" and "zero variance" in decision.reason


def test_futile_when_the_maximum_duration_cannot_reach_a_detectable_sample() -> None:
    # Given a tie so far, and traffic that will bring only 600 + 150 labelled observations by the end
    design = Design(MDE)
    champion = Arm.of([1.0] * 160 + [0.0] * 40)
    challenger = Arm.of([1.0] * 80 + [0.0] * 20)
    decision = decide(design, champion, challenger, projected=(600, 150))
    # Then it stops as futile, naming the smallest improvement it could detect
    assert decision.verdict == "STOP_FUTILE"
    assert "cannot be detected within the maximum duration" in decision.reason
    # and with enough projected traffic it continues
    plenty = decide(design, champion, challenger, projected=(100_000, 25_000))
    assert plenty.verdict == "CONTINUE" and "contains 0" in plenty.reason


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"minimum_detectable_effect": 0.0}, "minimum_detectable_effect"),
        ({"minimum_detectable_effect": 0.1, "confidence": 1.0}, "confidence"),
        ({"minimum_detectable_effect": 0.1, "power": 0.3}, "power"),
    ],
)
def test_a_design_out_of_range_is_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Design(**kwargs)
