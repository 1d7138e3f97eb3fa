"""The smoke test per task: the candidate's answers against ``golden.json``'s ``predictions`` (binary, multiclass,
regression), and golden files written before tasks existed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.deploy.logic import SmokeTestFailed
from tests.unit.lambdas.deploy.support import ARTIFACTS, ENDPOINT, Cloud, deployer, run_deployment

PROBABILITIES = {"billing": 0.7, "technical": 0.1, "account": 0.15, "sales": 0.05}
GOLDEN: dict[str, list[dict[str, Any]]] = {
    "binary": [{"probability": 0.8, "label": "yes"}, {"probability": 0.1, "label": "no"}],
    "multiclass": [
        {"label": "billing", "probabilities": PROBABILITIES},
        {"label": "sales", "probabilities": {**PROBABILITIES, "billing": 0.05, "sales": 0.7}},
    ],
    "regression": [{"value": 1_250_000.0}, {"value": 0.0}],
}


def smoke(cloud: Cloud, task: str, answered: list[dict[str, Any]] | None = None) -> Any:
    """Deploy v1 of ``task`` whose golden answers are ``GOLDEN[task]`` and whose endpoint answers ``answered``."""
    arn = cloud.register(1, task=task, predictions=GOLDEN[task])
    if answered is not None:
        cloud.runtime.answers["v1"] = {"model_version": "v1", "predictions": answered}
    return run_deployment(deployer(cloud), arn)


@pytest.mark.parametrize(
    ("task", "answered"),
    [
        ("binary", [{"probability": 0.80000001, "label": "yes"}, {"probability": 0.1, "label": "no"}]),
        (
            "multiclass",
            [
                {"label": "billing", "probabilities": {**PROBABILITIES, "billing": 0.70000002}},
                GOLDEN["multiclass"][1],
            ],
        ),
        # float noise on a large value is relative (1e-3 absolute is 8e-10 of it); a zero stays within 1e-4
        ("regression", [{"value": 1_250_000.001}, {"value": 0.00005}]),
    ],
)
def test_answers_within_float_noise_pass_for_every_task(cloud: Cloud, task: str, answered: list[Any]) -> None:
    # Given a candidate whose answers differ from the golden ones by float noise only
    # When the deployment runs its smoke test
    run = smoke(cloud, task, answered)
    # Then it passes and records the task and the rows compared
    assert run.error is None, run.error
    assert (run.state["smoke"]["status"], run.state["smoke"]["task"], run.state["smoke"]["rows"]) == (
        "Passed",
        task,
        2,
    )


@pytest.mark.parametrize(
    ("task", "answered", "problem"),
    [
        (
            "binary",
            [{"probability": 0.8, "label": "no"}, {"probability": 0.1, "label": "no"}],
            "1 of 2 binary answers differ (tolerance 0.0001): row 1: label 'no' != 'yes'",
        ),
        (
            "multiclass",
            [
                {"label": "billing", "probabilities": {**PROBABILITIES, "technical": 0.2}},
                {"label": "billing", "probabilities": {"billing": 0.5, "technical": 0.5}},
            ],
            "2 of 2 multiclass answers differ (tolerance 0.0001): "
            "row 1: probability of 'technical' 0.200000 != 0.100000; "
            "row 2: label 'billing' != 'sales', probability of 'billing' 0.500000 != 0.050000, "
            "probability of 'technical' 0.500000 != 0.100000, no probability for class 'account', "
            "no probability for class 'sales'",
        ),
        (
            "regression",
            [{"value": 1_250_400.0}, {"value": 0.001}],
            "2 of 2 regression answers differ (tolerance 0.0001): row 1: value 1250400 != 1250000; "
            "row 2: value 0.001 != 0",
        ),
    ],
)
def test_a_different_answer_fails_the_smoke_test_naming_the_row_and_what_differs(
    cloud: Cloud, task: str, answered: list[Any], problem: str
) -> None:
    # Given a candidate whose answers differ from the golden ones in the task's terms
    # When the deployment runs its smoke test
    run = smoke(cloud, task, answered)
    # Then it fails with the rows and what differed, and the candidate endpoint is gone
    assert isinstance(run.error, SmokeTestFailed)
    assert str(run.error) == f"golden payloads on model v1: {problem}"
    assert run.state["failure"]["outcome"] == "smoke_test_failed"
    assert [e["EndpointName"] for e in cloud.sm.list_endpoints()["Endpoints"]] == []


def test_an_answer_of_another_task_fails_with_the_shape_it_lacks(cloud: Cloud) -> None:
    # Given a multiclass golden file and a candidate that answers like a binary model
    run = smoke(cloud, "multiclass", [{"probability": 0.8, "label": "billing"}] * 2)
    # Then the smoke test names what a multiclass answer needs
    assert isinstance(run.error, SmokeTestFailed)
    assert str(run.error).startswith(
        "candidate endpoint answered something that is not a multiclass prediction: row 1: a multiclass answer has "
        "label, probabilities;"
    )
    assert str(run.error).endswith("lacks probabilities")


def test_a_golden_file_written_before_tasks_existed_is_read_as_binary(cloud: Cloud) -> None:
    # Given a package whose golden.json has probabilities only (no task, no predictions)
    arn = cloud.register(1, expected=[0.8, 0.1], legacy=True)
    # When the candidate answers them
    run = run_deployment(deployer(cloud), arn)
    # Then the probabilities are compared as a binary model's
    assert run.error is None, run.error
    assert run.state["smoke"]["task"] == "binary"
    # And a candidate whose probability moved fails as before
    arn = cloud.register(2, expected=[0.8, 0.1], legacy=True)
    cloud.runtime.answers["v2"]["predictions"][1]["probability"] = 0.3
    run = run_deployment(deployer(cloud), arn)
    assert isinstance(run.error, SmokeTestFailed)
    assert "row 2: probability 0.300000 != 0.100000" in str(run.error)
    assert cloud.endpoint()["EndpointConfigName"] == f"{ENDPOINT}-v1"


def test_a_golden_file_without_predictions_is_refused(cloud: Cloud) -> None:
    # Given a regression golden.json that lacks its predictions list
    arn = cloud.register(1, task="regression", predictions=GOLDEN["regression"])
    key = "evaluations/exec-1/golden.json"
    golden = {"task": "regression", "body": {"instances": []}, "values": [1.0]}
    cloud.s3.put_object(Bucket=ARTIFACTS, Key=key, Body=json.dumps(golden))
    # When the smoke test reads it
    run = run_deployment(deployer(cloud), arn)
    # Then the file is refused with what is missing
    assert isinstance(run.error, SmokeTestFailed)
    assert (
        "is not a golden payload file (docs/contracts.md): a regression golden payload file needs its predictions"
        in (str(run.error))
    )
