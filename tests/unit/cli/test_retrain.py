"""``mlops retrain`` under moto: the CLI invokes the stack's retrain function, here answered by the real handler in
this process (moto would need Docker), so the guard's decisions reach the operator with their reasons."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody

from cli.errors import FAILED, OK
from cli.session import Aws
from lambdas.retrain import handler as retrain_handler
from tests.unit.cli.conftest import CURATED, Account, mlops
from tests.unit.lambdas.support import FakeContext, create_table

MANIFEST = {"dataset": "churn", "version": "v1", "status": "SUCCEEDED", "report_uri": "s3://c/r.json"}


@pytest.fixture
def retrain_function(account: Account, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Invocations of the retrain function run lambdas.retrain.handler with the stack's settings."""
    create_table("guard", "pk", "sk")
    boto3.client("s3").put_object(Bucket=CURATED, Key="manifests/churn/latest.json", Body=json.dumps(MANIFEST))
    topic = boto3.client("sns").create_topic(Name="notifications")["TopicArn"]
    for name, value in {
        "STATE_MACHINE_ARN": account.training,
        "GUARD_TABLE": "guard",
        "TOPIC_ARN": topic,
        "CURATED_BUCKET": CURATED,
        "MANIFEST_KEY": "manifests/churn/latest.json",
        "GUARD": json.dumps({"cooldown_minutes": 360, "max_per_day": 2, "consecutive_breaches": 3}),
        "ALARMS": json.dumps({"mlops-dev-drift": "GreaterThanThreshold"}),
    }.items():
        monkeypatch.setenv(name, value)
    cached = (
        retrain_handler.settings,
        retrain_handler._clients,
        retrain_handler.decide_once,
        retrain_handler.request_once,
    )
    for function in cached:
        function.cache_clear()
    invocations: list[dict[str, Any]] = []
    original = Aws.client
    level = retrain_handler.logger.log_level
    retrain_handler.logger.setLevel(logging.CRITICAL)

    def remember(params: dict[str, Any], **_: Any) -> None:
        invocations.append({"function": params["FunctionName"], "event": json.loads(params["Payload"])})

    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        event = invocations[-1]["event"]
        if event.get("dataset") == "crash":
            body, error = json.dumps({"errorType": "RuntimeError", "errorMessage": "boom"}).encode(), "Unhandled"
        else:
            with contextlib.redirect_stdout(io.StringIO()):  # the function's logs and metrics are not the CLI's output
                body, error = json.dumps(retrain_handler.handler(event, FakeContext())).encode(), None
        parsed: dict[str, Any] = {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(body), len(body))}
        if error:
            parsed["FunctionError"] = error
        return AWSResponse("", 200, {}, None), parsed

    def client(self: Aws, service: str) -> Any:
        made = original(self, service)
        if service == "lambda" and not getattr(made, "_routed", False):
            made.meta.events.register("before-parameter-build.lambda.Invoke", remember)
            made.meta.events.register("before-call.lambda.Invoke", answer)
            made._routed = True
        return made

    monkeypatch.setattr(Aws, "client", client)
    yield invocations
    retrain_handler.logger.setLevel(level)
    for function in cached:
        function.cache_clear()


def finish_runs(account: Account) -> None:
    sfn = boto3.client("stepfunctions")
    for execution in sfn.list_executions(stateMachineArn=account.training, statusFilter="RUNNING")["executions"]:
        sfn.stop_execution(executionArn=execution["executionArn"])


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_retrain_then_a_second_inside_the_cooldown_is_refused(
    account: Account, retrain_function: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    # When the operator asks for a retrain
    code, started, _ = mlops(capsys, "retrain", "--dataset", "churn", "--reason", "labels arrived", "--json")
    # Then the stack's retrain function got the request and the guard started the pipeline
    assert code == OK and (started["decision"], started["trigger"], started["forced"]) == ("started", "manual", False)
    (call,) = retrain_function
    assert call["function"] == account.retrain_function
    assert {k: call["event"][k] for k in ("source", "dataset", "reason", "force")} == {
        "source": "mlops.cli",
        "dataset": "churn",
        "reason": "labels arrived",
        "force": False,
    }
    # When a second is asked once that run has finished (inside the 360-minute cooldown)
    finish_runs(account)
    code, text, _ = mlops(capsys, "retrain", "--dataset", "churn")
    # Then it is refused with the guard's reason, exit code 1
    assert code == FAILED
    assert text.startswith("churn: retrain refused (cooldown): cooldown: the last retrain started at ")
    assert text.rstrip().endswith("(--force bypasses it)")
    # And --force starts it, saying so
    code, text, _ = mlops(capsys, "retrain", "--force")
    assert code == OK and "retrain started (forced: cooldown and budget bypassed)" in text


def test_a_failing_function_is_reported(
    account: Account, retrain_function: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stack that declares a dataset named "crash" (the fixture's function fails for it)
    from tests.unit.cli.conftest import deploy_stack, outputs

    resources = json.dumps({"crash": {}, "churn": {}})
    deploy_stack("mlops-qa", outputs(account.training, account.deployment, DatasetResources=resources))
    # Then the function's error reaches the operator, exit code 1
    code, _, err = mlops(capsys, "retrain", "--stage", "qa", "--dataset", "crash")
    assert (code, err) == (FAILED, "mlops retrain: the retrain function failed: boom\n")
