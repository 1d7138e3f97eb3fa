"""``mlops smoke``: its steps against a deployed stack, with injected clients (e2e: on a local cloud)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cli.smoke import Smoke, SmokeError, check_answer
from localcloud import cli as mlops
from stacks.datasets import DATASETS_DIR, read_schema

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:mlops-dev-training-pipeline"
DEPLOYMENT = "arn:aws:states:us-east-1:123456789012:stateMachine:mlops-dev-deployment"
OUTPUTS = {
    "UploadPrefix": "s3://raw-bucket/datasets/churn/",
    "TrainingStateMachine": MACHINE,
    "DeploymentStateMachine": DEPLOYMENT,
    "EndpointName": "mlops-dev-churn",
}


class _ClientError(Exception):
    pass


@dataclass
class FakeAccount:
    """What the smoke run calls: an upload starts a training run; an approved package starts a deployment."""

    training_status: str = "SUCCEEDED"
    approval: str = "Approved"
    starts_runs: bool = True
    served_version: str = "churn-new"
    refuse: bool = False
    executions: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {MACHINE: [], DEPLOYMENT: []})
    uploads: list[tuple[str, str]] = field(default_factory=list)
    invocations: list[str] = field(default_factory=list)

    def client(self, service: str) -> Any:
        return _Client(self, service)

    def _start(self, machine: str, name: str, status: str, output: dict[str, Any]) -> None:
        arn = f"{machine.replace(':stateMachine:', ':execution:')}:{name}"
        self.executions[machine].append(
            {"executionArn": arn, "name": name, "status": status, "output": json.dumps(output), "cause": "boom"}
        )


class _Client:
    def __init__(self, account: FakeAccount, service: str) -> None:
        self.account, self.service = account, service
        self.exceptions = type("Exceptions", (), {"ClientError": _ClientError})

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        outputs = [{"OutputKey": k, "OutputValue": v} for k, v in OUTPUTS.items()]
        return {"Stacks": [{"StackName": StackName, "Outputs": outputs}]}

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> None:
        account = self.account
        account.uploads.append((Bucket, Key))
        if account.starts_runs:
            registration = {"approval_status": account.approval, "model_version": "churn-new", "message": "gate"}
            account._start(MACHINE, "run-1", account.training_status, {"registration": registration})
            if account.training_status == "SUCCEEDED" and account.approval == "Approved":
                account._start(DEPLOYMENT, "deploy-1", "SUCCEEDED", {})

    def get_paginator(self, name: str) -> Any:
        account = self.account

        class Paginator:
            def paginate(self, stateMachineArn: str) -> list[dict[str, Any]]:
                return [{"executions": list(account.executions[stateMachineArn])}]

        return Paginator()

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        return next(e for runs in self.account.executions.values() for e in runs if e["executionArn"] == executionArn)

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        return {"EndpointStatus": "InService"}

    def invoke_endpoint(self, EndpointName: str, ContentType: str, Accept: str, Body: bytes) -> dict[str, Any]:
        rows = Body.decode().splitlines()
        if self.account.refuse:
            error = {"Error": {"Code": "ModelError", "Message": "Received client error (400): expected 9 columns"}}
            raise ClientError(error, "InvokeEndpoint")
        self.account.invocations.append(Body.decode())
        predictions = [{"probability": 0.3, "label": 0} for _ in rows]
        body = {"predictions": predictions, "model_version": self.account.served_version}
        return {"Body": io.BytesIO(json.dumps(body).encode())}


def _smoke(account: FakeAccount, timeout: float = 5.0) -> Smoke:
    return Smoke(stage="dev", dataset="churn", timeout=timeout, poll=0.01, session=account, log=lambda _: None)


def test_a_smoke_run_uploads_the_sample_waits_for_the_run_and_the_deployment_and_checks_the_answer() -> None:
    # Given a stack whose upload trains a model that is approved and deployed
    account = FakeAccount()
    # When the smoke run runs
    result = _smoke(account).run()
    # Then it uploaded the sample under the stack's upload prefix, as a smoke-* object
    [(bucket, key)] = account.uploads
    assert bucket == "raw-bucket" and key.startswith("datasets/churn/smoke-") and key.endswith(".csv")
    # And it sent five sample rows of the nine features (no key, no target) and accepted the new model's answer
    [body] = account.invocations
    rows = body.splitlines()
    assert len(rows) == 5 and all(len(row.split(",")) == 9 for row in rows)
    assert not any(row.startswith("C7-") for row in rows)
    assert list(result["steps"]) == [
        "stack outputs",
        "upload",
        "training run",
        "deployment",
        "endpoint in service",
        "invoke",
    ]
    assert result["answer"]["model_version"] == "churn-new"


def test_a_rejected_model_deploys_nothing_and_the_champion_must_still_answer() -> None:
    # Given a second upload of the same sample: the gate rejects the challenger, no deployment starts
    account = FakeAccount(approval="Rejected", served_version="churn-champion")
    # When the smoke run runs
    result = _smoke(account).run()
    # Then it does not wait for a deployment, and the serving champion's answer passes
    assert "deployment" not in result["steps"]
    assert result["answer"]["model_version"] == "churn-champion"


def test_a_failed_training_run_fails_the_smoke_run_with_its_cause() -> None:
    # Given an upload whose training run fails
    account = FakeAccount(training_status="FAILED")
    # When the smoke run runs
    with pytest.raises(SmokeError) as error:
        _smoke(account).run()
    # Then the error names the step, the execution, its status and cause
    assert str(error.value) == "training run: execution run-1 of mlops-dev-training-pipeline ended FAILED: boom"


def test_a_deployed_model_other_than_the_new_one_fails_the_check() -> None:
    # Given an approved model whose deployment succeeded while the endpoint still answers with the old model
    account = FakeAccount(served_version="churn-old")
    # When the smoke run runs, Then the invoke step fails naming both versions
    with pytest.raises(SmokeError, match=r"^invoke: the endpoint answers with model 'churn-old', expected 'churn-new'"):
        _smoke(account).run()


def test_an_endpoint_that_refuses_the_rows_fails_the_invoke_step_with_its_message() -> None:
    # Given an endpoint that answers the sample rows with a client error (the model's contract changed)
    account = FakeAccount(refuse=True)
    # When the smoke run runs
    with pytest.raises(SmokeError) as error:
        _smoke(account).run()
    # Then the step fails with the service's error code and message, not a traceback
    assert str(error.value).startswith("invoke: An error occurred (ModelError) when calling the InvokeEndpoint")
    assert "expected 9 columns" in str(error.value)


def test_no_run_starting_times_out_naming_what_it_waited_for() -> None:
    # Given a stack whose upload starts nothing (the event rule is missing)
    account = FakeAccount(starts_runs=False)
    # When the smoke run runs with a short timeout
    with pytest.raises(SmokeError) as error:
        _smoke(account, timeout=0.05).run()
    # Then it fails at the training step, saying what it waited for
    assert str(error.value).startswith("training run: timed out after 0 s waiting for an execution of ")
    assert str(error.value).endswith("mlops-dev-training-pipeline to start")


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"predictions": [{"probability": 0.2, "label": 0}], "model_version": "v"}, "expected 2 predictions, got 1"),
        ({"model_version": "v"}, "expected 2 predictions, got no"),
        ({"predictions": [{"probability": 0.2, "label": 0}] * 2}, "answers with model None"),
        ({"predictions": [{"probability": 1.5, "label": 1}] * 2, "model_version": "v"}, "probability is not within"),
        ({"predictions": [{"probability": 0.5, "label": 7}] * 2, "model_version": "v"}, "label is not one of"),
    ],
)
def test_a_binary_answer_of_the_wrong_shape_is_refused(answer: dict[str, Any], problem: str) -> None:
    schema = read_schema(DATASETS_DIR / "churn.yaml")
    with pytest.raises(SmokeError, match=problem):
        check_answer(answer, schema, rows=2, expected_version=None)


def test_multiclass_and_regression_answers_are_checked_by_their_shape() -> None:
    tickets, energy = read_schema(DATASETS_DIR / "tickets.yaml"), read_schema(DATASETS_DIR / "energy.yaml")
    label = str(tickets.labels[0])
    good = {"label": label, "probabilities": {str(x): 1 / len(tickets.labels) for x in tickets.labels}}
    check_answer({"predictions": [good], "model_version": "v"}, tickets, rows=1, expected_version="v")
    with pytest.raises(SmokeError, match="probabilities do not sum to 1"):
        bad = {**good, "probabilities": {label: 0.5}}
        check_answer({"predictions": [bad], "model_version": "v"}, tickets, rows=1, expected_version=None)
    check_answer({"predictions": [{"value": 3.5}], "model_version": "v"}, energy, rows=1, expected_version=None)
    with pytest.raises(SmokeError, match="value is not a finite number"):
        check_answer({"predictions": [{"value": "nan"}], "model_version": "v"}, energy, rows=1, expected_version=None)


def test_an_unknown_dataset_exits_2_before_any_call(capsys: pytest.CaptureFixture[str]) -> None:
    # When the command is given a dataset that is not declared
    code = mlops.main(["smoke", "--dataset", "nope"])
    # Then it exits 2 and says which declaration is missing
    assert code == 2
    assert "mlops smoke: unknown dataset 'nope': no datasets/nope.yaml" in capsys.readouterr().err
