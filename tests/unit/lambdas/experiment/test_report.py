"""The experiment report draws every look, including the early ones without an interval, and escapes every text."""

from __future__ import annotations

from dataclasses import asdict

from lambdas.deploy.models import ExperimentConfig
from lambdas.experiment.models import ExperimentRecord, Look, Side
from lambdas.experiment.report import render
from stacks.config import ABSettings

DESIGN = ExperimentConfig.model_validate(asdict(ABSettings(minimum_detectable_effect=0.02)))


def look(at: str, verdict: str, n: int, interval: list[float | None], reason: str) -> Look:
    decision = {
        "verdict": verdict,
        "reason": reason,
        "n_champion": 4 * n,
        "n_challenger": n,
        "mean_champion": 0.8,
        "mean_challenger": 0.84,
        "improvement": 0.04,
        "interval": interval,
        "statistic": 3.5,
    }
    band = {"n": n, "mean": 0.84, "low": 0.8, "high": 0.88} if interval[0] is not None else {"n": n, "mean": 0.84}
    return Look(at=at, decision=decision, variants={"AllTraffic": {"n": 4 * n, "mean": 0.8}, "Challenger": band})


def test_the_report_draws_every_look_and_escapes_text() -> None:
    record = ExperimentRecord(
        dataset="churn",
        endpoint_name="mlops-dev-churn",
        experiment_config_name="mlops-dev-churn-v2-ab",
        started_at="2026-12-07T10:00:00Z",
        outcome="correct",
        design=DESIGN,
        champion=Side(variant="AllTraffic", model_name="mlops-dev-churn-v1", endpoint_config_name="mlops-dev-churn-v1"),
        challenger=Side(
            variant="Challenger",
            model_name="mlops-dev-churn-v2",
            endpoint_config_name="mlops-dev-churn-v2",
            model_version="<script>v2</script>",
        ),
        looks=[
            look("2026-12-07T11:00:00Z", "CONTINUE", 50, [None, None], "50 challenger observations; needs 100"),
            look("2026-12-07T12:00:00Z", "PROMOTE", 900, [0.01, 0.07], "the challenger is better: lies above 0"),
        ],
    )
    html = render(record)
    assert html.count("<svg") == 2 and html.count("<polyline") == 3  # two variants, and the improvement
    assert "&lt;script&gt;v2&lt;/script&gt;" in html and "<script>" not in html
    assert "class='verdict PROMOTE'" in html and "lies above 0" in html
    assert html.count("<tr>") == 3  # the header and both looks
    assert ">MDE</text>" in html and ">0</text>" in html
