"""The demo's checks are pure functions of the recorded summary: each one fails on a summary where its property
does not hold (and only that check, unless the property implies others)."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from typing import Any

import pytest

from lambdas.register_model.logic import data_lineage
from localcloud.report import (
    CHECKS,
    answers_as_its_task,
    checks,
    print_summary,
    render_html,
    traffic_shares,
    training_data,
)

TRAINING, DEPLOYMENT = "mlops-dev-training-pipeline", "mlops-dev-deployment"
OLD, NEW = "churn-20261127-aaaa", "churn-20261201-bbbb"
WINDOW = "2026-11-13T14:01:00Z..2026-11-27T14:01:00Z"
UPLOAD_AND_PRODUCTION = f"upload r1 3500 rows + production 1900 labelled rows inferred {WINDOW}"


def _answers(*models: str) -> list[dict[str, Any]]:
    """Answers the clients got, one cloud second apart, in this order."""
    return [{"at": 1_800_000_000.0 + i, "variant": "AllTraffic", "model": m} for i, m in enumerate(models)]


def passing() -> dict[str, Any]:
    """A summary of the demo's story in which every check holds."""
    return {
        "stage": "dev",
        "time_scale": 240.0,
        "executions": [
            {"machine": TRAINING, "name": "r1", "trigger": "upload", "status": "SUCCEEDED", "seconds": 9.0},
            {"machine": DEPLOYMENT, "name": "d1", "trigger": "approval", "status": "SUCCEEDED", "seconds": 3.0},
            {
                "machine": TRAINING,
                "name": "r2",
                "trigger": "alarm mlops-dev-churn-drift",
                "status": "SUCCEEDED",
                "seconds": 8.0,
            },
            {"machine": DEPLOYMENT, "name": "d2", "trigger": "approval", "status": "SUCCEEDED", "seconds": 6.0},
        ],
        "model_packages": [
            {
                "version": 1,
                "status": "Approved",
                "description": "passed the gate",
                "model_version": OLD,
                "trigger": "upload",
                "training_data": "upload r1 3500 rows",
                "test_data": "upload r1 test split",
                "production_train_rows": 0,
                "production_window": None,
            },
            {
                "version": 2,
                "status": "Approved",
                "description": "auc 0.80 beats the champion's 0.75 by 0.05",
                "model_version": NEW,
                "trigger": "alarm mlops-dev-churn-drift",
                "training_data": UPLOAD_AND_PRODUCTION,
                "test_data": "production: the 500 most recent labelled rows",
                "production_train_rows": 1900,
                "production_window": WINDOW,
            },
        ],
        "endpoint": {"name": "mlops-dev-churn", "status": "InService", "serving_model_version": NEW},
        "traffic": {"canary_answers": _answers(OLD, OLD, NEW, OLD, OLD, NEW, NEW, NEW)},
        "drift": [
            {"window_end": "2026-11-27T11:00", "verdict": "no_drift", "overall_psi": 0.02, "drifted_features": []},
            {"window_end": "2026-11-27T14:00", "verdict": "drift", "overall_psi": 0.61, "drifted_features": ["tenure"]},
        ],
        "alarms": [{"at": "2026-11-27T14:01", "alarm": "mlops-dev-churn-drift", "previous": "OK", "state": "ALARM"}],
        "retrain_decisions": [
            {"decision": "started", "guard": "-", "alarm": "mlops-dev-churn-drift", "reason": "3 breaches"}
        ],
        "quality": [{"overall": {"auc": 0.83}}],
        "datasets": [
            {"name": "churn", "status": "InService", "answer_fits_task": True},
            {"name": "energy", "status": "InService", "answer_fits_task": True},
            {"name": "tickets", "status": "InService", "answer_fits_task": True},
        ],
    }


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(summary: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = summary
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        target[int(last) if last.isdigit() else last] = value

    return change


def _canary(*models: str) -> Callable[[dict[str, Any]], None]:
    return _set("traffic.canary_answers", _answers(*models))


# check -> (what breaks it, the checks that must fail then)
BREAKS: list[tuple[str, str, Callable[[dict[str, Any]], None], set[str]]] = [
    ("first_run_succeeded", "the first run failed", _set("executions.0.status", "FAILED"), set()),
    ("endpoint_in_service", "the endpoint is still updating", _set("endpoint.status", "Updating"), set()),
    ("drift_detected", "no window drifted", _set("drift.1.verdict", "no_drift"), set()),
    ("no_drift_on_training_distribution", "every window drifted", _set("drift.0.verdict", "drift"), set()),
    ("drift_alarm_fired", "only another alarm fired", _set("alarms.0.alarm", "mlops-dev-quality"), set()),
    ("drift_alarm_fired", "the drift alarm went back to OK", _set("alarms.0.state", "OK"), set()),
    ("automatic_retrain_started", "the guard suppressed it", _set("retrain_decisions.0.decision", "suppressed"), set()),
    ("automatic_retrain_started", "no run was started by an alarm", _set("executions.2.trigger", "upload"), set()),
    (
        "challenger_promoted",
        "the challenger waits for approval",
        _set("model_packages.1.status", "PendingManualApproval"),
        {
            "canary_traffic_shift_observed",
            "new_champion_serving",
            "alarm_retrain_promoted",
            "challenger_learned_from_labelled_production",
        },
    ),
    (
        "alarm_retrain_promoted",
        "an upload's run trained the promoted model",
        _set("model_packages.1.trigger", "upload"),
        set(),
    ),
    (
        "challenger_learned_from_labelled_production",
        "it trained on the upload only",
        _set("model_packages.1.production_train_rows", 0),
        set(),
    ),
    (
        "challenger_learned_from_labelled_production",
        "its lineage names no production window",
        _set("model_packages.1.production_window", None),
        set(),
    ),
    (
        "challenger_learned_from_labelled_production",
        "the upload's test split decided",
        _set("model_packages.1.test_data", "upload r1 test split"),
        set(),
    ),
    ("canary_traffic_shift_observed", "all traffic moved at once", _canary(OLD, OLD, OLD, NEW, NEW, NEW), set()),
    ("canary_traffic_shift_observed", "it rolled back", _canary(OLD, NEW, OLD, NEW, OLD, OLD), set()),
    ("canary_traffic_shift_observed", "the new model never answered", _canary(OLD, OLD, OLD), set()),
    ("canary_traffic_shift_observed", "only the new model answered", _canary(NEW, NEW, NEW), set()),
    ("canary_traffic_shift_observed", "no traffic during the rollout", _canary(), set()),
    ("canary_traffic_shift_observed", "an unknown model answered", _canary(OLD, "other", OLD, "other"), set()),
    ("all_deployments_succeeded", "the canary deployment failed", _set("executions.3.status", "FAILED"), set()),
    ("new_champion_serving", "the old model still serves", _set("endpoint.serving_model_version", OLD), set()),
    ("quality_measured", "no quality summary", _set("quality", []), set()),
    ("quality_measured", "no AUC (no ground truth matched)", _set("quality.0.overall", {"auc": None}), set()),
    ("every_dataset_serving_its_task", "tickets' endpoint failed", _set("datasets.2.status", "Failed"), set()),
    (
        "every_dataset_serving_its_task",
        "energy answers another shape",
        _set("datasets.1.answer_fits_task", False),
        set(),
    ),
    (
        "every_dataset_serving_its_task",
        "only churn was deployed",
        _set("datasets", [{"name": "churn", "status": "InService", "answer_fits_task": True}]),
        set(),
    ),
]


def test_the_passing_summary_passes_every_check_and_there_are_fourteen() -> None:
    # Given the demo's story / When checked / Then all fourteen checks pass
    assert len(CHECKS) == 14
    assert checks(passing()) == dict.fromkeys(CHECKS, True)


def test_every_check_has_a_summary_that_fails_it() -> None:
    assert {name for name, *_ in BREAKS} == set(CHECKS)


@pytest.mark.parametrize(("check", "story", "change", "also"), BREAKS, ids=[f"{c}: {s}" for c, s, *_ in BREAKS])
def test_a_summary_without_the_property_fails_its_check(
    check: str, story: str, change: Callable[[dict[str, Any]], None], also: set[str]
) -> None:
    # Given the demo's story with one thing changed
    summary = copy.deepcopy(passing())
    change(summary)
    # When checked
    results = checks(summary)
    # Then that check fails (and only the checks the change also breaks)
    failed = {name for name, ok in results.items() if not ok}
    assert failed == {check} | also, (story, failed)


def test_a_models_training_data_is_read_from_the_lineage_the_registry_records() -> None:
    # Given the lineage the registration writes for a retrain with production rows, one without, and an upload's run
    with_production = data_lineage(
        {
            "mode": "with_production",
            "test_from": "production",
            "upload": {"version": "r1", "train_rows": 3500},
            "production": {
                "window_start": "2026-11-13T14:01:00Z",
                "window_end": "2026-11-27T14:01:00Z",
                "train_rows": 1900,
                "test_rows": 500,
            },
        }
    )
    upload_only = data_lineage(
        {"mode": "upload_only", "upload": {"version": "r1", "train_rows": 3500}, "reason": "0 labelled rows < 500"}
    )
    # When the report reads them
    retrained, fallback, first = (
        training_data(with_production),
        training_data(upload_only),
        training_data({"dataset_version": "r1"}, upload_train_rows=3500),
    )
    # Then it names the production rows and their window only where production data trained
    assert retrained == {
        "training_data": UPLOAD_AND_PRODUCTION,
        "test_data": "production: the 500 most recent labelled rows",
        "production_train_rows": 1900,
        "production_window": WINDOW,
    }
    assert fallback["production_train_rows"] == 0 and fallback["production_window"] is None
    assert fallback["training_data"] == "upload r1 only: 0 labelled rows < 500"
    assert first == {
        "training_data": "upload r1 3500 rows",
        "test_data": "upload r1 test split",
        "production_train_rows": 0,
        "production_window": None,
    }


def test_traffic_shares_are_each_models_share_of_the_answers_per_time_slice() -> None:
    # Given answers of a canary: the old model, then both, then the new one
    answers = _answers(OLD, OLD, NEW, OLD, NEW, NEW)
    # When sliced in three
    shares = traffic_shares(answers, buckets=3)
    # Then each slice gives each model's share of its requests
    assert [s["shares"] for s in shares] == [{OLD: 1.0}, {NEW: 0.5, OLD: 0.5}, {NEW: 1.0}]
    assert [s["requests"] for s in shares] == [2, 2, 2]
    assert traffic_shares([]) == []


def test_the_printed_summary_and_the_html_report_show_the_checks_the_observed_shares_and_rollbacks() -> None:
    # Given a checked summary
    summary = passing()
    summary.update(invocations=[], notifications=[], stages=[], duration_seconds=1.0)
    rollback = {"time": "2026-12-08T22:12:00Z", "event": "rolling-back", "abandoned": "c-v3", "reason": "why"}
    summary["endpoint"].update(config="c", deployment_history=[{"event": "update-started"}, rollback])
    summary["traffic"]["shares_over_time"] = traffic_shares(summary["traffic"]["canary_answers"], buckets=2)
    for dataset, task, value in (
        ("churn", "binary", 0.2),
        ("energy", "regression", 412.5),
        ("tickets", "multiclass", 0),
    ):
        entry = next(d for d in summary["datasets"] if d["name"] == dataset)
        entry.update(task=task, training_runs=["SUCCEEDED"], endpoint=f"mlops-dev-{dataset}", serving_model_version="m")
        entry["answer"] = {"predictions": [{"value": value}]}
    summary["checks"] = checks(summary)
    # When printed and rendered
    out = io.StringIO()
    print_summary(summary, out)
    html = render_html(summary)
    # Then both list every check, each model's observed share and every dataset with its endpoint's answer
    assert "PASS  canary_traffic_shift_observed" in out.getvalue()
    assert f"v2 Approved               {NEW} (alarm mlops-dev-churn-drift): " in out.getvalue()
    assert f"      trained on {UPLOAD_AND_PRODUCTION}; tested on production: the 500 most recent" in out.getvalue()
    assert f"<td>{UPLOAD_AND_PRODUCTION}</td>" in html and "<td>upload r1 3500 rows</td>" in html
    assert f"4 requests: {OLD} 75%, {NEW} 25%" in out.getvalue()
    assert "  2026-12-08T22:12:00Z  rolled back from c-v3: why\n" in out.getvalue()  # SageMaker's reason
    assert "✔ canary_traffic_shift_observed" in html and f">{NEW}</text>" in html
    assert "  energy     regression runs SUCCEEDED; endpoint mlops-dev-energy InService, serving m; answer " in (
        out.getvalue()
    )
    assert all(f"<td>mlops-dev-{name}</td>" in html for name in ("churn", "energy", "tickets"))
    assert "<td>{&quot;value&quot;: 412.5}</td>" in html


TICKETS = ["billing", "technical", "account", "sales"]
SHAPES: list[tuple[str, list[Any], dict[str, Any] | None, bool]] = [
    ("binary", [], {"predictions": [{"probability": 0.31, "label": 0}]}, True),
    ("binary", [], {"predictions": [{"probability": 1.2, "label": 1}]}, False),  # not a probability
    ("binary", [], {"predictions": [{"value": 0.31}]}, False),  # a regression answer
    (
        "multiclass",
        TICKETS,
        {"predictions": [{"label": "billing", "probabilities": dict(zip(TICKETS, [0.7, 0.1, 0.1, 0.1], strict=True))}]},
        True,
    ),
    (
        "multiclass",
        TICKETS,
        {"predictions": [{"label": "billing", "probabilities": {"billing": 0.9, "technical": 0.1}}]},
        False,  # not one probability per declared class
    ),
    (
        "multiclass",
        TICKETS,
        {"predictions": [{"label": "legal", "probabilities": dict(zip(TICKETS, [0.25] * 4, strict=True))}]},
        False,  # a label that is not declared
    ),
    ("regression", [], {"predictions": [{"value": 412.5}]}, True),
    ("regression", [], {"predictions": [{"value": 412.5, "label": 1}]}, False),  # an extra field
    ("regression", [], {"predictions": [{"value": 1.0}, {"value": 2.0}]}, False),  # two answers to one row
    ("regression", [], None, False),  # no answer
]


@pytest.mark.parametrize(("task", "labels", "answer", "fits"), SHAPES)
def test_an_answer_fits_its_tasks_response_shape_only(
    task: str, labels: list[Any], answer: dict[str, Any] | None, fits: bool
) -> None:
    # Given an endpoint's answer to one row / When judged for the dataset's task / Then only its task's shape fits
    assert answers_as_its_task(task, labels, answer) is fits
