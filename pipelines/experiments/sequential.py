"""An always-valid sequential test of a two-variant experiment (A/B test) on a per-observation outcome.

The test is the mixture sequential probability ratio test (mSPRT) with a normal mixture (Robbins 1970; Johari,
Pekelis, Walsh, "Always valid inference", 2017/2022), on the difference of the two variants' mean outcomes.
With ``d`` the challenger's improvement over the champion in the outcome's direction (positive: better), its
estimate ``d^ = +-(mean_challenger - mean_champion)`` and its variance ``V = s2_champion / n_champion +
s2_challenger / n_challenger`` (plug-in sample variances), the mixture likelihood ratio of ``d = d0`` against
``d ~ N(d0, tau^2)`` is

    L(d0) = sqrt(V / (V + tau^2)) * exp(tau^2 (d^ - d0)^2 / (2 V (V + tau^2)))

It is a martingale under ``d = d0``, so by Ville's inequality ``P(L ever >= 1/alpha) <= alpha``: the set of ``d0``
with ``L(d0) < 1/alpha``, ``d^ +- h(V)`` with

    h(V) = sqrt(2 V (V + tau^2) / tau^2 * (log(1/alpha) + log((V + tau^2) / V) / 2))

is a confidence sequence: it covers ``d`` at every look at once with probability >= 1 - alpha, however often
(and whenever) one looks. That is what makes peeking after every ground-truth batch safe. ``tau`` is the
configured minimum detectable effect (MDE): near the best mixture for an effect of that size at the sample that
detects it (``h`` is flat in ``tau^2 / V`` between 5 and 20, where that sample puts it).

Decisions, in this order, once both variants have ``min_samples`` labelled observations:

- PROMOTE: the interval lies above 0 (the challenger is better at the configured confidence);
- STOP_WORSE: the interval lies below 0 (clearly worse; stopped as soon as it shows);
- STOP_FUTILE: at the sample the maximum duration will have reached, ``h`` is still above the MDE (an improvement
  of the MDE could not be detected in time), or the maximum duration has passed without a decision (a tie);
- CONTINUE otherwise.

Standard library only (it runs in the evaluator Lambda; tests simulate thousands of experiments through it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Literal

Verdict = Literal["PROMOTE", "STOP_WORSE", "STOP_FUTILE", "CONTINUE"]
VERDICTS: tuple[Verdict, ...] = ("PROMOTE", "STOP_WORSE", "STOP_FUTILE", "CONTINUE")
MIN_SAMPLES = 100
"""Labelled observations per variant before any decision: the plug-in variances need a sample to settle."""


@dataclass(frozen=True)
class Design:
    """What the experiment must show: an absolute ``minimum_detectable_effect`` in the outcome's units (0.02 of
    a correct/incorrect outcome is two percentage points), at ``confidence`` (1 - alpha), with ``power`` of
    detecting that effect within the maximum duration (``required_samples``)."""

    minimum_detectable_effect: float
    confidence: float = 0.95
    higher_is_better: bool = True
    power: float = 0.8
    min_samples: int = MIN_SAMPLES

    def __post_init__(self) -> None:
        if not (self.minimum_detectable_effect > 0 and math.isfinite(self.minimum_detectable_effect)):
            raise ValueError(
                f"minimum_detectable_effect must be a positive number, got {self.minimum_detectable_effect}"
            )
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"confidence must be in [0.5, 1), got {self.confidence}")
        if not 0.5 <= self.power < 1:
            raise ValueError(f"power must be in [0.5, 1), got {self.power}")
        if self.min_samples < 2:
            raise ValueError(f"min_samples must be at least 2, got {self.min_samples}")

    @property
    def alpha(self) -> float:
        return 1 - self.confidence

    @property
    def tau2(self) -> float:
        return self.minimum_detectable_effect**2


@dataclass(frozen=True)
class Arm:
    """Sufficient statistics of one variant's outcomes: count, mean, and the sum of squared deviations."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @classmethod
    def of(cls, values: Iterable[float]) -> Arm:
        arm = cls()
        for value in values:
            arm = arm.add(value)
        return arm

    @classmethod
    def from_sums(cls, n: int, total: float, squares: float) -> Arm:
        """From ``n``, the sum and the sum of squares (as a simulation or a SQL aggregate gives them)."""
        if n == 0:
            return cls()
        mean = total / n
        return cls(n, mean, max(0.0, squares - n * mean * mean))

    def add(self, value: float) -> Arm:
        """Welford's update: one more observation."""
        if not math.isfinite(value):
            raise ValueError(f"an outcome must be a finite number, got {value!r}")
        n = self.n + 1
        delta = value - self.mean
        mean = self.mean + delta / n
        return Arm(n, mean, self.m2 + delta * (value - mean))

    def merge(self, other: Arm) -> Arm:
        """Chan's parallel combination of two samples' statistics."""
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        return Arm(n, self.mean + delta * other.n / n, self.m2 + other.m2 + delta * delta * self.n * other.n / n)

    @property
    def variance(self) -> float:
        """The unbiased sample variance (0 below two observations)."""
        return self.m2 / (self.n - 1) if self.n > 1 else 0.0


@dataclass(frozen=True)
class Decision:
    """A look at the experiment: the verdict, why, and the numbers behind it. ``improvement`` is the
    challenger's mean minus the champion's in the outcome's better direction (positive: the challenger is
    better); ``interval`` is the always-valid interval of that improvement; ``statistic`` is the mixture
    likelihood ratio of "no difference" and ``threshold`` the 1/alpha it must reach."""

    verdict: Verdict
    reason: str
    n_champion: int
    n_challenger: int
    mean_champion: float
    mean_challenger: float
    improvement: float
    interval: tuple[float, float]
    statistic: float
    threshold: float
    minimum_detectable_effect: float
    confidence: float

    @property
    def final(self) -> bool:
        return self.verdict != "CONTINUE"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["interval"] = list(self.interval)
        return data


def half_width(variance: float, design: Design) -> float:
    """``h(V)``: the half-width of the always-valid interval when the improvement's estimate has ``variance``."""
    tau2 = design.tau2
    return math.sqrt(
        2
        * variance
        * (variance + tau2)
        / tau2
        * (math.log(1 / design.alpha) + math.log((variance + tau2) / variance) / 2)
    )


def likelihood_ratio(estimate: float, variance: float, design: Design, null: float = 0.0) -> float:
    """The mixture likelihood ratio of ``improvement = null`` (capped at 1e300, far past any threshold)."""
    tau2 = design.tau2
    exponent = tau2 * (estimate - null) ** 2 / (2 * variance * (variance + tau2))
    return math.sqrt(variance / (variance + tau2)) * math.exp(min(exponent, 690.0))


def estimate_variance(var_champion: float, var_challenger: float, n_champion: int, n_challenger: int) -> float:
    """The variance of the improvement's estimate: the sum of the two means' variances."""
    return var_champion / n_champion + var_challenger / n_challenger


def required_samples(design: Design, variance: float, challenger_share: float) -> int:
    """Labelled observations (both variants together, split by ``challenger_share``) at which an improvement of
    exactly the MDE is detected with ``design.power``: the smallest ``N`` with ``MDE - z_power sqrt(V) >= h(V)``,
    ``V = variance / ((1 - share) N) + variance / (share N)`` (``variance``: one observation's, e.g. p(1-p))."""
    if not 0 < challenger_share < 1:
        raise ValueError(f"challenger_share must be in (0, 1), got {challenger_share}")
    if variance <= 0:
        raise ValueError(f"the outcome's variance must be positive, got {variance}")
    z = NormalDist().inv_cdf(design.power)
    per_total = variance / (1 - challenger_share) + variance / challenger_share  # V * N

    def detects(total: int) -> bool:
        v = per_total / total
        return design.minimum_detectable_effect - z * math.sqrt(v) >= half_width(v, design)

    low, high = 2, 4
    while not detects(high):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if detects(middle) else (middle, high)
    return high


def decide(
    design: Design,
    champion: Arm,
    challenger: Arm,
    *,
    projected: tuple[int, int] | None = None,
    ended: bool = False,
) -> Decision:
    """The decision after a look at ``champion`` and ``challenger``'s labelled outcomes so far.

    ``projected``: (champion, challenger) labelled observations expected by the end of the maximum duration (at
    the current rates, less the label delay), for the futility check; ``ended``: the maximum duration has passed.
    """
    sign = 1.0 if design.higher_is_better else -1.0
    improvement = sign * (challenger.mean - champion.mean)

    def made(verdict: Verdict, why: str, interval: tuple[float, float], statistic: float) -> Decision:
        return Decision(
            verdict=verdict,
            reason=why,
            n_champion=champion.n,
            n_challenger=challenger.n,
            mean_champion=champion.mean,
            mean_challenger=challenger.mean,
            improvement=improvement,
            interval=interval,
            statistic=statistic,
            threshold=1 / design.alpha,
            minimum_detectable_effect=design.minimum_detectable_effect,
            confidence=design.confidence,
        )

    mde = design.minimum_detectable_effect
    few = min(champion.n, challenger.n) < design.min_samples
    variance = 0.0 if few else estimate_variance(champion.variance, challenger.variance, champion.n, challenger.n)
    if few or variance <= 0:
        why = (
            f"{champion.n} champion and {challenger.n} challenger labelled observations; a decision needs "
            f"{design.min_samples} of each"
            if few
            else "the outcomes do not vary yet (zero variance): no interval can be formed"
        )
        verdict: Verdict = "STOP_FUTILE" if ended else "CONTINUE"
        if ended:
            why = f"maximum duration reached without a decision: {why}; the champion stays"
        return made(verdict, why, (-math.inf, math.inf), 1.0)
    h = half_width(variance, design)
    low, high = improvement - h, improvement + h
    statistic = likelihood_ratio(improvement, variance, design)
    numbers = (
        f"improvement {improvement:+.4g} (challenger {challenger.mean:.4g} on {challenger.n}, champion "
        f"{champion.mean:.4g} on {champion.n}), {design.confidence:.0%} always-valid interval [{low:+.4g}, {high:+.4g}]"
    )
    verdict, why = "CONTINUE", f"{numbers} contains 0: more labelled traffic needed"
    if low > 0:
        verdict, why = "PROMOTE", f"the challenger is better: {numbers} lies above 0"
    elif high < 0:
        verdict, why = "STOP_WORSE", f"the challenger is worse: {numbers} lies below 0"
    elif ended:
        verdict, why = "STOP_FUTILE", f"maximum duration reached without a decision: {numbers}; the champion stays"
    elif projected is not None and min(projected) >= 2:
        reachable = half_width(estimate_variance(champion.variance, challenger.variance, *projected), design)
        if reachable > mde:
            verdict = "STOP_FUTILE"
            why = (
                f"the MDE {mde:g} cannot be detected within the maximum duration: at the {projected[0]} champion "
                f"and {projected[1]} challenger observations it will reach, the smallest detectable improvement "
                f"is {reachable:.4g}; {numbers}"
            )
    return made(verdict, why, (low, high), statistic)
