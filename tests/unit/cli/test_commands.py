"""Each operations command under moto, in both output modes, with its exit codes and error paths:
status, runs (+ show), models, approve, reject, rollback, invoke, logs."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from cli import executions
from cli.errors import BAD_INPUT, FAILED, NO_ACCESS, OK
from cli.output import table
from cli.session import explain
from tests.unit.cli.conftest import ARTIFACTS, ENDPOINT, ROLE, STACK, Account, deploy_stack, mlops, outputs

# ---- status / models ------------------------------------------------------------------------------------


def test_status_shows_run_champion_endpoint_alarms_and_drift(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given v1 approved and serving, a finished run, one alarm in ALARM and a drift report
    account.register(1)
    account.serve(1)
    boto3.client("stepfunctions").start_execution(
        stateMachineArn=account.training, name="churn-csv-1", input=json.dumps({"trigger": {"source": "s3-upload"}})
    )
    cloudwatch = boto3.client("cloudwatch")
    for name in ("mlops-dev-drift", "mlops-dev-5xx", "other-stack-drift"):
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            MetricName="m",
            Namespace="n",
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanThreshold",
        )
    cloudwatch.set_alarm_state(AlarmName="mlops-dev-drift", StateValue="ALARM", StateReason="drifted")
    cloudwatch.set_alarm_state(AlarmName="other-stack-drift", StateValue="ALARM", StateReason="not ours")
    report = {"verdict": "drift", "reason": "contract drifted", "overall_psi": 0.31}
    s3 = boto3.client("s3")
    s3.put_object(Bucket=ARTIFACTS, Key="monitoring/drift/2026-11-27T09-00/report.json", Body=b'{"verdict": "old"}')
    s3.put_object(Bucket=ARTIFACTS, Key="monitoring/drift/2026-11-27T10-00/report.json", Body=json.dumps(report))
    # When the operator asks
    code, status, _ = mlops(capsys, "status", "--json")
    # Then
    assert code == OK
    (churn,) = status["datasets"]
    assert churn["last_run"]["name"] == "churn-csv-1" and churn["last_run"]["trigger"] == "s3-upload"
    assert (churn["champion"]["version"], churn["champion"]["metric"], churn["champion"]["value"]) == (1, "auc", 0.81)
    assert churn["endpoint"]["version"] == 1 and churn["endpoint"]["variants"][0]["model"] == f"{ENDPOINT}-v1"
    assert [a["name"] for a in churn["alarms"]] == ["mlops-dev-drift"]
    assert churn["drift"]["verdict"] == "drift" and churn["drift"]["overall_psi"] == 0.31
    # And the same for people
    code, text, _ = mlops(capsys, "status")
    assert "champion:   v1 churn-0001 (auc 0.81, data data-1)" in text
    assert "alarms:     mlops-dev-drift in ALARM" in text
    assert "drift:      drift (overall PSI 0.31): contract drifted" in text


def test_status_shows_a_running_experiment_and_its_last_look(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given v1 and v2 serving side by side (the deploy Lambda's experiment config) and the evaluator's record
    account.register(1)
    account.register(2)
    account.serve(1)
    sm = account.sm
    config = f"{ENDPOINT}-v2-ab"
    variants = [
        {
            "VariantName": "AllTraffic",
            "ModelName": f"{ENDPOINT}-v1",
            "InitialInstanceCount": 2,
            "InstanceType": "ml.m5.large",
            "InitialVariantWeight": 0.8,
        },
        {
            "VariantName": "Challenger",
            "ModelName": f"{ENDPOINT}-v1",
            "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large",
            "InitialVariantWeight": 0.2,
        },
    ]
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=variants)
    sm.delete_endpoint(EndpointName=ENDPOINT)
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config)
    decision = {
        "verdict": "CONTINUE",
        "reason": "interval contains 0: more labelled traffic needed",
        "n_champion": 812,
        "n_challenger": 207,
        "improvement": 0.021,
        "interval": [-0.03, 0.072],
    }
    record = {
        "started_at": "2026-12-07T10:00:00Z",
        "outcome": "correct",
        "design": {"challenger_share": 0.2, "minimum_detectable_effect": 0.02, "max_duration_hours": 168},
        "champion": {"model_name": f"{ENDPOINT}-v1"},
        "challenger": {"model_version": "churn-0002"},
        "looks": [{"at": "2026-12-07T11:00:00Z", "decision": decision}],
        "final": None,
    }
    boto3.client("s3").put_object(
        Bucket=ARTIFACTS, Key=f"monitoring/experiments/churn/{config}/experiment.json", Body=json.dumps(record)
    )
    # When the operator asks
    code, status, _ = mlops(capsys, "status", "--json")
    # Then the experiment, its design and its last look are shown
    assert code == OK
    found = status["datasets"][0]["experiment"]
    assert (found["challenger"], found["share"], found["looks"], found["last"]["verdict"]) == (
        "churn-0002",
        0.2,
        1,
        "CONTINUE",
    )
    assert found["report"] == f"s3://{ARTIFACTS}/monitoring/experiments/churn/{config}/report.html"
    code, text, _ = mlops(capsys, "status")
    assert "experiment: churn-0002 takes 20% of requests since 2026-12-07T10:00:00Z (correct, MDE 0.02" in text
    assert "look 1: CONTINUE: n 812 champion / 207 challenger, improvement 0.021 [-0.03, 0.072]" in text


def test_status_without_an_experiment_shows_none(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    account.register(1)
    account.serve(1)
    code, status, _ = mlops(capsys, "status", "--json")
    assert code == OK and status["datasets"][0]["experiment"] is None
    code, text, _ = mlops(capsys, "status")
    assert "experiment:" not in text


def test_status_of_an_empty_stack_says_what_is_missing(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    code, text, _ = mlops(capsys, "status")
    assert code == OK
    for line in (
        "last run:   none",
        "champion:   none",
        "endpoint:   not deployed yet",
        "alarms:     none in ALARM",
        "drift:      no report yet",
    ):
        assert line in text


def test_models_mark_champion_and_serving(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    # Given v1 serving, v2 approved after it (not yet deployed), v3 rejected
    account.register(1)
    account.register(2)
    account.register(3, status="Rejected")
    account.serve(1)
    # When
    code, models, _ = mlops(capsys, "models", "--json")
    # Then newest first, v2 the champion (the next gate's reference), v1 serving
    assert code == OK
    assert [(m["version"], m["status"], m["role"]) for m in models] == [
        (3, "Rejected", None),
        (2, "Approved", "champion"),
        (1, "Approved", "serving"),
    ]
    assert models[0]["dataset_version"] == "data-3" and models[0]["code_version"] == "abc123"


def test_table_aligns_and_says_none() -> None:
    assert table([], [("a", "a")]) == "(none)\n"
    assert table([{"a": 1, "b": None}, {"a": 22, "b": 0.5}], [("a", "a"), ("b", "bee")]) == "A   BEE\n1   -\n22  0.5\n"


# ---- approve / reject -----------------------------------------------------------------------------------


def test_approve_sets_approved_with_who_and_why_keeping_lineage(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a pending version
    arn = account.register(1, status="PendingManualApproval")
    # When it is approved
    code, result, _ = mlops(capsys, "approve", "v1", "--reason", "reviewed", "--json")
    # Then it is Approved, the description says who and why, and the lineage keys are untouched
    assert code == OK and (result["previous_status"], result["status"]) == ("PendingManualApproval", "Approved")
    package = account.sm.describe_model_package(ModelPackageName=arn)
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["ApprovalDescription"] == "approved by arn:aws:sts::123456789012:user/moto: reviewed"
    assert package["CustomerMetadataProperties"]["dataset_version"] == "data-1"


def test_approve_errors(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    account.register(1)
    # an unknown version lists the known ones; an approved one cannot be approved again; a bad version is named
    assert mlops(capsys, "approve", "7")[::2] == (
        BAD_INPUT,
        "mlops approve: dataset churn has no model version 7 (versions: 1)\n",
    )
    assert mlops(capsys, "approve", "1")[::2] == (BAD_INPUT, "mlops approve: churn v1 is already Approved\n")
    assert mlops(capsys, "approve", "latest")[::2] == (
        BAD_INPUT,
        "mlops approve: 'latest' is not a version: give its number, e.g. 3 or v3\n",
    )
    code, _, err = mlops(capsys, "approve", "--dataset", "tickets", "1")
    assert code == BAD_INPUT and "unknown dataset 'tickets': stack mlops-dev declares churn" in err


def test_reject_records_the_reason_and_warns_when_it_still_serves(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given v1 serving
    arn = account.register(1)
    account.serve(1)
    # When it is rejected
    code, text, _ = mlops(capsys, "reject", "1", "--reason", "bias found")
    # Then the reason is recorded and the operator is told it still serves
    assert code == OK
    package = account.sm.describe_model_package(ModelPackageName=arn)
    assert (package["ModelApprovalStatus"], package["ApprovalDescription"]) == (
        "Rejected",
        "rejected by arn:aws:sts::123456789012:user/moto: bias found",
    )
    assert "v1 still serves mlops-dev-churn: `mlops rollback --dataset churn`" in text
    # And an empty reason is refused
    assert mlops(capsys, "reject", "1", "--reason", " ")[0] == BAD_INPUT


def test_approve_wait_follows_the_deployment(
    account: Account, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a pending version whose approval starts a deployment (the approval rule, played here by the hook)
    arn = account.register(1, status="PendingManualApproval")
    sfn = boto3.client("stepfunctions")
    original = executions.new_execution

    def deployment_starts(*args: Any, **kwargs: Any) -> str:
        sfn.start_execution(stateMachineArn=account.deployment, name="d1", input=json.dumps({"model_package_arn": arn}))
        sfn.stop_execution(
            executionArn=account.deployment.replace(":stateMachine:", ":execution:") + ":d1", cause="canary rolled back"
        )
        return original(*args, **kwargs)

    monkeypatch.setattr(executions, "new_execution", deployment_starts)
    # When approved with --wait
    code, result, err = mlops(capsys, "approve", "1", "--wait", "--json")
    # Then the command followed that deployment and reports its failure with exit code 1
    assert code == FAILED
    assert result["deployment"]["status"] == "ABORTED" and result["deployment"]["arn"].endswith(":d1")
    assert "d1: ABORTED" in err


# ---- rollback -------------------------------------------------------------------------------------------


def test_rollback_starts_the_deployment_machine_recorded_as_a_rollback(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given v1 and v2 approved, v2 serving
    v1 = account.register(1)
    account.register(2)
    account.serve(1)
    account.serve(2)
    # When the operator rolls back without naming a version
    code, result, _ = mlops(capsys, "rollback", "--dataset", "churn", "--reason", "bad answers", "--json")
    # Then the deployment state machine deploys v1 with the rollback as its trigger
    assert code == OK and (result["from_version"], result["to_version"]) == (2, 1)
    assert result["execution_name"].startswith("rollback-churn-v2-to-v1-")
    described = boto3.client("stepfunctions").describe_execution(executionArn=result["execution_arn"])
    assert json.loads(described["input"]) == {
        "model_package_arn": v1,
        "trigger": {
            "source": "rollback",
            "from_version": 2,
            "to_version": 1,
            "reason": "bad answers",
            "requested_by": "arn:aws:sts::123456789012:user/moto",
        },
        "dataset": "churn",
    }


def test_rollback_errors(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    # no endpoint yet
    account.register(1)
    code, _, err = mlops(capsys, "rollback")
    assert code == BAD_INPUT and "endpoint mlops-dev-churn does not exist: nothing to roll back" in err
    account.serve(1)
    # nothing older than what serves
    assert "no Approved version older than v1" in mlops(capsys, "rollback")[2]
    # the version already serving
    assert "churn v1 already serves mlops-dev-churn" in mlops(capsys, "rollback", "--to", "1")[2]
    # a rejected target
    account.register(2, status="Rejected")
    code, _, err = mlops(capsys, "rollback", "--to", "2")
    assert code == BAD_INPUT
    assert "churn v2 is Rejected: only an Approved version is rolled back to; approve it first (mlops approve 2)" in err
    # an unknown one
    assert mlops(capsys, "rollback", "--to", "9")[0] == BAD_INPUT


# ---- runs -----------------------------------------------------------------------------------------------


def failing_stack(account: Account) -> None:
    """Stack mlops-qa, whose training machine fails in its second step with the reason as the cause."""
    definition = {
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Next": "Fail"},
            "Fail": {"Type": "Fail", "Error": "PipelineFailed", "Cause": "ETL quality gate failed: 12% rejected rows"},
        },
    }
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(name="mlops-qa-training", definition=json.dumps(definition), roleArn=ROLE)
    deploy_stack("mlops-qa", outputs(machine["stateMachineArn"], account.deployment), with_function=False)


def test_runs_lists_and_shows_a_failed_run_with_steps_and_reason(
    account: Account, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a training execution that failed (moto runs it: execute_state_machine)
    from moto.core.config import default_user_config

    monkeypatch.setitem(default_user_config, "stepfunctions", {"execute_state_machine": True})
    sfn = boto3.client("stepfunctions")
    failing_stack(account)
    machine = sfn.list_state_machines()["stateMachines"]
    training = next(m["stateMachineArn"] for m in machine if m["name"] == "mlops-qa-training")
    arn = sfn.start_execution(stateMachineArn=training, name="churn-bad-1", input="{}")["executionArn"]
    for _ in range(100):
        if sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
            break
        time.sleep(0.05)
    # When listed
    code, runs, _ = mlops(capsys, "runs", "--stage", "qa", "--json")
    assert code == OK and [(r["name"], r["status"]) for r in runs] == [("churn-bad-1", "FAILED")]
    # When shown
    code, shown, _ = mlops(capsys, "runs", "show", "churn-bad-1", "--stage", "qa", "--json")
    # Then each step with its status, and the failure reason the notification carries; exit code 1
    assert code == FAILED
    assert [(s["step"], s["status"]) for s in shown["steps"]] == [("Prepare", "ok"), ("Fail", "failed")]
    assert shown["failure_reason"] == "ETL quality gate failed: 12% rejected rows"
    code, text, _ = mlops(capsys, "runs", "show", arn, "--stage", "qa")
    assert "failure (PipelineFailed): ETL quality gate failed: 12% rejected rows" in text


def test_runs_show_an_unknown_run(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = mlops(capsys, "runs", "show", "nope")
    assert code == BAD_INPUT and "no run 'nope' in mlops-dev's training or deployment state machine" in err


def test_steps_read_a_lambda_failure_cause() -> None:
    # Given a history whose task failed with a Lambda error (its cause is JSON)
    t = datetime(2026, 11, 27, tzinfo=UTC)
    cause = json.dumps({"errorType": "LineageNotFound", "errorMessage": "no quality report"})
    events = [
        {"type": "TaskStateEntered", "timestamp": t, "stateEnteredEventDetails": {"name": "Prepare"}},
        {
            "type": "LambdaFunctionFailed",
            "timestamp": t,
            "lambdaFunctionFailedEventDetails": {"error": "E", "cause": cause},
        },
    ]
    (step,) = executions.steps(events)
    assert (step["status"], step["cause"]) == ("failed", "LineageNotFound: no quality report")


# ---- invoke ---------------------------------------------------------------------------------------------


def test_invoke_errors(account: Account, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    odd = tmp_path / "rows.txt"
    odd.write_text("1,2")
    assert mlops(capsys, "invoke", str(tmp_path / "missing.csv"))[::2] == (
        BAD_INPUT,
        f"mlops invoke: cannot read {tmp_path / 'missing.csv'}: No such file or directory\n",
    )
    assert mlops(capsys, "invoke", str(empty))[2] == f"mlops invoke: {empty} is empty: nothing to send\n"
    assert "cannot tell the content type of rows.txt" in mlops(capsys, "invoke", str(odd))[2]


def test_invoke_sends_the_file_and_prints_the_answer(
    account: Account, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an endpoint whose data plane answers a fixed body (the request is what is checked here; the served
    # model's own answers are the local cloud's e2e tests)
    account.register(1)
    account.serve(1)
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    from localcloud.shims import sagemaker_runtime

    class Answers:
        def invoke(self, endpoint: str, body: bytes, content_type: str | None, accept: str | None, **_: Any) -> Any:
            return SimpleNamespace(content_type="application/json", variant="AllTraffic", body=b'{"predictions": [1]}')

    monkeypatch.setattr(sagemaker_runtime, "_runtime", Answers())
    monkeypatch.setattr(SageMakerRuntimeResponse, "invoke_endpoint", sagemaker_runtime.invoke_endpoint)
    rows = tmp_path / "rows.csv"
    rows.write_text("22,81.2,1786.9,3,104.9,30,one-year,mailed-check,fiber\n")
    sent: list[dict[str, Any]] = []
    from cli.session import Aws

    original = Aws.client

    def client(self: Aws, service: str) -> Any:
        made = original(self, service)
        if service == "sagemaker-runtime":
            made.meta.events.register(
                "provide-client-params.sagemaker-runtime.InvokeEndpoint", lambda params, **_: sent.append(dict(params))
            )
        return made

    monkeypatch.setattr(Aws, "client", client)
    code, answer, _ = mlops(capsys, "invoke", str(rows), "--json")
    assert code == OK and answer["endpoint"] == ENDPOINT and answer["content_type"] == "text/csv"
    assert sent[0]["EndpointName"] == ENDPOINT and sent[0]["Body"] == rows.read_bytes()
    assert answer["answer"] == {"predictions": [1]}


# ---- logs -----------------------------------------------------------------------------------------------


def test_logs_of_a_function_and_of_a_run(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    # Given log events in the retrain function's log group
    logs = boto3.client("logs")
    group = f"/{STACK}/retrain"
    logs.create_log_stream(logGroupName=group, logStreamName="s1")
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group, logStreamName="s1", logEvents=[{"timestamp": now, "message": "retrain started: x"}]
    )
    # When
    code, found, _ = mlops(capsys, "logs", "retrain", "--json")
    # Then
    assert code == OK and [e["message"] for e in found["events"]] == ["retrain started: x"]
    # And a run's events come from its history
    boto3.client("stepfunctions").start_execution(stateMachineArn=account.training, name="r1", input="{}")
    code, found, _ = mlops(capsys, "logs", "r1", "--json")
    assert code == OK and found["events"][0]["message"] == "ExecutionStarted"
    # And anything else is refused, naming what exists
    code, _, err = mlops(capsys, "logs", "nope")
    assert code == BAD_INPUT and "'nope' is neither a function (retrain) nor a run" in err
    assert mlops(capsys, "logs", "retrain", "--since", "yesterday")[0] == BAD_INPUT


# ---- credentials and AWS errors -------------------------------------------------------------------------


def test_sdk_errors_become_messages_and_exit_codes() -> None:
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "DescribeStacks")
    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "ListExecutions")
    cases = {
        NoCredentialsError(): (NO_ACCESS, "no AWS credentials found"),
        EndpointConnectionError(endpoint_url="https://x"): (NO_ACCESS, "cannot reach AWS"),
        denied: (NO_ACCESS, "DescribeStacks: AccessDeniedException: not allowed"),
        throttled: (FAILED, "ListExecutions failed: ThrottlingException: slow down"),
    }
    for error, (code, text) in cases.items():
        explained = explain(error)
        assert explained is not None and explained.code == code and text in str(explained)
    assert explain(ValueError("x")) is None


def test_no_credentials_and_no_region_exit_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given no credentials anywhere (no variables, empty config files, no instance metadata)
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # Then the region is asked for first, then the credentials, and an unknown profile is named
    code, _, err = mlops(capsys, "status")
    assert code == NO_ACCESS and "no AWS region: pass --region" in err
    code, _, err = mlops(capsys, "status", "--region", "us-east-1")
    assert code == NO_ACCESS and "no AWS credentials found: set AWS_PROFILE or pass --profile" in err
    code, _, err = mlops(capsys, "status", "--profile", "ops")
    assert code == NO_ACCESS and "AWS profile 'ops' is not configured" in err


def test_an_uploads_input_names_the_raw_object_not_the_dataset(account: Account) -> None:
    # Given the start Lambda's input on a single-dataset stack ("dataset" is the raw object there)
    from cli.context import Ops
    from cli.session import Aws

    stack = Ops(Aws(), STACK).stack
    upload = {"input": json.dumps({"dataset": {"bucket": "raw", "key": "datasets/churn/a.csv"}})}
    # Then the run belongs to the stack's one dataset; a multi-dataset input names it
    assert executions.dataset_of(stack, upload) == "churn"
    assert executions.dataset_of(stack, {"input": json.dumps({"dataset": "tickets"})}) == "tickets"
