"""Contract and behaviour of the Step Functions shim (.sync on the cloud clock, SageMaker tasks, Wait on the clock,
state machines from CloudFormation in the executing backend)."""

from __future__ import annotations

import inspect
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.glue import models as glue_models
from moto.sagemaker import models as sm_models
from moto.stepfunctions import models as sfn_models
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_glue import (
    StateTaskServiceGlue,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_unsupported import (
    StateTaskServiceUnsupported,
)

from localcloud.clock import clock
from localcloud.shims import glue_jobs, sagemaker_jobs
from localcloud.shims import stepfunctions as shim
from tests.unit.localcloud import support
from tests.unit.localcloud.support import ACCOUNT, REGION, ROLE, assert_pinned_moto, revisit, unique

SHIM = "stepfunctions"
EXECUTE = {"stepfunctions": {"execute_state_machine": True}}
CATCH_ALL = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}]


def machine(*states: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """A definition that runs ``states`` in order, with a ``Caught`` state for Catch clauses."""
    names = [name for name, _ in states]
    definition: dict[str, Any] = {"StartAt": names[0], "States": {"Caught": {"Type": "Pass", "End": True}}}
    for index, (name, state) in enumerate(states):
        follow = {"Next": names[index + 1]} if index + 1 < len(names) else {"End": True}
        definition["States"][name] = {**state, **follow}
    return definition


def execute(sfn: Any, definition: dict[str, Any], payload: Any = None) -> dict[str, Any]:
    arn = sfn.create_state_machine(name=unique("sm"), definition=json.dumps(definition), roleArn=ROLE)[
        "stateMachineArn"
    ]
    return run(sfn, arn, payload)


def run(sfn: Any, arn: str, payload: Any = None) -> dict[str, Any]:
    execution = sfn.start_execution(stateMachineArn=arn, name=unique("run"), input=json.dumps(payload or {}))
    deadline = time.time() + 120
    while (described := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "RUNNING":
        assert time.time() < deadline, "the execution did not end"
        time.sleep(0.02)
    return dict(described)


@pytest.fixture
def aws(fast_clock: None) -> Iterator[dict[str, Any]]:
    for module in (shim, glue_jobs, sagemaker_jobs):
        module.install()
    glue_jobs.set_cloud(None)
    sagemaker_jobs.set_cloud(None)
    with mock_aws(config=EXECUTE):  # type: ignore[arg-type]
        yield {s: boto3.client(s, region_name=REGION) for s in ("stepfunctions", "glue", "sagemaker", "cloudformation")}


# ---- contract with the pinned moto ---------------------------------------------------------------------


def test_patch_points_still_exist_with_the_signatures_the_shim_implements() -> None:
    assert_pinned_moto(SHIM)
    assert state_task_factory.state_task_service_for in (shim._original_service_for, shim.state_task_service_for)
    assert list(inspect.signature(shim._original_service_for).parameters) == ["service_name"], revisit(SHIM)
    assert list(inspect.signature(shim._original_wait_interval).parameters) == ["self", "env", "wait_seconds"]
    for method in ("_eval_integration_pattern", "_build_sync_resolver", "_eval_service_task", "_from_error"):
        parameters = list(inspect.signature(getattr(StateTaskServiceCallback, method)).parameters)
        assert parameters[:2] == ["self", "env"], revisit(SHIM)
    assert list(inspect.signature(shim._original_create_state_machine).parameters)[:4] == [
        "resource_name",
        "cloudformation_json",
        "account_id",
        "region_name",
    ], revisit(SHIM)


def test_pinned_moto_has_no_sagemaker_integration_and_moto_s_glue_sync_needs_a_callback() -> None:
    assert isinstance(shim._original_service_for("sagemaker"), StateTaskServiceUnsupported), revisit(SHIM)
    assert isinstance(shim._original_service_for("glue"), StateTaskServiceGlue), revisit(SHIM)
    # moto's .sync runs through the waitForTaskToken callback machinery, whose endpoint only exists for tokens
    source = inspect.getsource(StateTaskServiceCallback._eval_integration_pattern)
    assert "callback_endpoint: CallbackEndpoint | None = None" in source, revisit(SHIM)
    assert "callback_endpoint.interrupt_all()" in source, revisit(SHIM)


def test_pinned_moto_waits_in_real_time() -> None:
    source = inspect.getsource(shim._original_wait_interval)
    assert "env.program_state_event.wait(wait_seconds)" in source, revisit(SHIM)


def test_pinned_moto_fails_glue_sync_and_sagemaker_tasks(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # Given moto's own service integrations
    monkeypatch.setattr(state_task_factory, "state_task_service_for", shim._original_service_for)
    job = unique("etl")
    aws["glue"].create_job(Name=job, Role=ROLE, Command={"Name": "glueetl", "ScriptLocation": "s3://b/etl.py"})
    glue = {"Type": "Task", "Resource": "arn:aws:states:::glue:startJobRun.sync", "Parameters": {"JobName": job}}
    sagemaker = {**training(unique("train")), "Catch": []}
    # When a Glue .sync task and a SageMaker .sync task run
    glue_run = execute(aws["stepfunctions"], machine(("Etl", glue)))
    sagemaker_run = execute(aws["stepfunctions"], machine(("Train", sagemaker)))
    # Then both executions fail
    assert (glue_run["status"], glue_run["error"]) == ("FAILED", "States.Runtime"), revisit(SHIM)
    assert "'NoneType' object has no attribute 'interrupt_all'" in glue_run["cause"], revisit(SHIM)
    assert sagemaker_run["status"] == "FAILED", revisit(SHIM)
    assert "Unsupported" in sagemaker_run["cause"], revisit(SHIM)


def test_pinned_moto_creates_cloudformation_state_machines_in_the_non_executing_backend(
    aws: dict[str, Any],
) -> None:
    # Given moto's own CloudFormation model, with state machine execution on
    name = unique("cfn-sm")
    definition = json.dumps(machine(("Done", {"Type": "Pass"})))
    properties = {"StateMachineName": name, "DefinitionString": definition, "RoleArn": ROLE}
    created = shim._original_create_state_machine(name, {"Properties": properties}, ACCOUNT, REGION)
    # Then the Step Functions API (the executing backend) does not know it
    listed = [m["name"] for m in aws["stepfunctions"].list_state_machines()["stateMachines"]]
    assert name not in listed, revisit(SHIM)
    assert created.arn in [m.arn for m in sfn_models.stepfunctions_backends[ACCOUNT][REGION].state_machines]


# ---- behaviour -----------------------------------------------------------------------------------------


def test_a_wait_state_waits_on_the_cloud_clock(aws: dict[str, Any]) -> None:
    # Given a state machine that waits an hour (SecondsPath, as the stack's bake waits)
    definition = machine(("Bake", {"Type": "Wait", "SecondsPath": "$.seconds"}))
    before = clock.time()
    # When it runs on a fast cloud clock
    described = execute(aws["stepfunctions"], definition, {"seconds": 3600})
    # Then it succeeded after an hour of cloud time
    assert described["status"] == "SUCCEEDED"
    assert clock.time() - before >= 3600


def test_glue_sync_returns_the_finished_run_with_epoch_millisecond_dates(aws: dict[str, Any]) -> None:
    # Given a Glue job
    job = unique("etl")
    aws["glue"].create_job(Name=job, Role=ROLE, Command={"Name": "glueetl", "ScriptLocation": "s3://b/etl.py"})
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::glue:startJobRun.sync",
        "Parameters": {"JobName": job, "Arguments": {"--dataset": "churn"}},
        "ResultPath": "$.etl",
    }
    # When a .sync task runs it
    described = execute(aws["stepfunctions"], machine(("Etl", task)))
    # Then the task result is the finished GetJobRun, with dates as Step Functions renders them
    assert described["status"] == "SUCCEEDED", described.get("cause")
    result = json.loads(described["output"])["etl"]
    assert (result["JobName"], result["JobRunState"], result["Arguments"]["--dataset"]) == (job, "SUCCEEDED", "churn")
    assert isinstance(result["StartedOn"], int) and result["StartedOn"] > 1_600_000_000_000


def test_a_failed_glue_run_reaches_the_catch_with_its_error_message(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Glue runs that fail (as the local runner reports a script error)
    start = glue_models.GlueBackend.start_job_run

    def failing(self: Any, name: str, arguments: Any, *args: Any, **kwargs: Any) -> str:
        run_id = start(self, name, arguments, *args, **kwargs)
        run = self.get_job(name).get_job_run(run_id)
        run.local_status, run.error_message, run.local_completed_on = (
            "FAILED",
            "ValueError: bad rows",
            datetime.now(UTC),
        )
        return str(run_id)

    monkeypatch.setattr(glue_models.GlueBackend, "start_job_run", failing)
    job = unique("etl")
    aws["glue"].create_job(Name=job, Role=ROLE, Command={"Name": "glueetl", "ScriptLocation": "s3://b/etl.py"})
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::glue:startJobRun.sync",
        "Parameters": {"JobName": job},
        "Catch": CATCH_ALL,
    }
    # When the .sync task runs
    described = execute(aws["stepfunctions"], machine(("Etl", task)))
    # Then the Catch receives States.TaskFailed with the run (and its ErrorMessage) as the cause
    assert described["status"] == "SUCCEEDED"
    error = json.loads(described["output"])["error"]
    assert error["Error"] == "States.TaskFailed"
    cause = json.loads(error["Cause"])
    assert (cause["JobRunState"], cause["ErrorMessage"], cause["JobName"]) == ("FAILED", "ValueError: bad rows", job)


def training(name: str) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
        "Parameters": {
            "TrainingJobName": name,
            "AlgorithmSpecification": {"TrainingImage": "sklearn:1.9-0", "TrainingInputMode": "File"},
            "RoleArn": ROLE,
            "OutputDataConfig": {"S3OutputPath": "s3://artifacts/models"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        },
        "ResultPath": "$.training",
        "Catch": CATCH_ALL,
    }


def test_sagemaker_training_sync_returns_the_completed_job(aws: dict[str, Any]) -> None:
    name = unique("train")
    described = execute(aws["stepfunctions"], machine(("Train", training(name))))
    assert described["status"] == "SUCCEEDED"
    result = json.loads(described["output"])["training"]
    assert (result["TrainingJobName"], result["TrainingJobStatus"]) == (name, "Completed")
    assert result["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://artifacts/models/{name}/output/model.tar.gz"
    assert isinstance(result["CreationTime"], int)
    assert "ResponseMetadata" not in result


def test_sagemaker_tuning_sync_returns_the_described_tuning_job_to_the_result_selector(aws: dict[str, Any]) -> None:
    # Given a tuning task selecting its best trial's name and archive as the training pipeline's TuneModel does
    # (moto's own tuning job: Completed at once, with a placeholder best trial, without a local cloud)
    definition = {key: value for key, value in training("unused")["Parameters"].items() if key != "TrainingJobName"}
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sagemaker:createHyperParameterTuningJob.sync",
        "Parameters": {
            "HyperParameterTuningJobName": unique("tune")[:32],
            "HyperParameterTuningJobConfig": {
                "Strategy": "Random",
                "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
                "HyperParameterTuningJobObjective": {"MetricName": "validation:auc", "Type": "Maximize"},
            },
            "TrainingJobDefinition": definition,
        },
        "ResultSelector": {
            "job_name.$": "$.BestTrainingJob.TrainingJobName",
            "model_data.$": "States.Format('{}{}/output/model.tar.gz', 's3://artifacts/models/', "
            "$.BestTrainingJob.TrainingJobName)",
            "trials.$": "$.TrainingJobStatusCounters",
        },
        "ResultPath": "$.training",
        "Catch": CATCH_ALL,
    }
    # When it runs / Then the .sync task waits for the job's end and hands its description to the selector
    described = execute(aws["stepfunctions"], machine(("Tune", state)))
    assert described["status"] == "SUCCEEDED", described
    result = json.loads(described["output"])["training"]
    best = result["job_name"]
    assert result["model_data"] == f"s3://artifacts/models/{best}/output/model.tar.gz"
    assert result["trials"]["Completed"] >= 1


def test_a_failed_training_job_reaches_the_catch_with_its_failure_reason(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    create = sm_models.SageMakerModelBackend.create_training_job

    def failing(self: Any, *args: Any, **kwargs: Any) -> Any:
        job = create(self, *args, **kwargs)
        job.training_job_status, job.failure_reason = "Failed", "AlgorithmError: ValueError: no label column"
        return job

    monkeypatch.setattr(sm_models.SageMakerModelBackend, "create_training_job", failing)
    described = execute(aws["stepfunctions"], machine(("Train", training(unique("train")))))
    assert described["status"] == "SUCCEEDED"
    error = json.loads(described["output"])["error"]
    assert error["Error"] == "States.TaskFailed"
    cause = json.loads(error["Cause"])
    assert (cause["TrainingJobStatus"], cause["FailureReason"]) == (
        "Failed",
        "AlgorithmError: ValueError: no label column",
    )


def test_sagemaker_request_response_tasks_and_their_api_errors(aws: dict[str, Any]) -> None:
    # Given a createModel task, then a createEndpointConfig on a model that does not exist
    model = unique("model")
    create_model = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sagemaker:createModel",
        "Parameters": {"ModelName": model, "ExecutionRoleArn": ROLE, "PrimaryContainer": {"Image": "img"}},
        "ResultPath": "$.model",
    }
    bad_config = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sagemaker:createEndpointConfig",
        "Parameters": {
            "EndpointConfigName": unique("config"),
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "absent",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        },
        "Catch": CATCH_ALL,
    }
    # When they run
    described = execute(aws["stepfunctions"], machine(("Model", create_model), ("Config", bad_config)))
    output = json.loads(described["output"])
    # Then the model was created (its API response is the result), and the API error is SageMaker.<Code>
    assert output["model"]["ModelArn"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/{model}"
    assert model in [m["ModelName"] for m in aws["sagemaker"].list_models()["Models"]]
    assert output["error"]["Error"] == "SageMaker.ValidationException"
    assert "absent" in output["error"]["Cause"]


def test_cloudformation_state_machines_can_be_executed(aws: dict[str, Any]) -> None:
    # Given a stack with a state machine
    name = unique("pipeline")
    template = {
        "Resources": {
            "Pipeline": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "StateMachineName": name,
                    "DefinitionString": json.dumps(machine(("Done", {"Type": "Pass", "Result": {"done": True}}))),
                    "RoleArn": ROLE,
                },
            }
        }
    }
    stack = unique("stack")
    aws["cloudformation"].create_stack(StackName=stack, TemplateBody=json.dumps(template))
    [resource] = aws["cloudformation"].list_stack_resources(StackName=stack)["StackResourceSummaries"]
    # When an execution of it is started through the API
    described = run(aws["stepfunctions"], resource["PhysicalResourceId"])
    # Then it runs
    assert described["status"] == "SUCCEEDED" and json.loads(described["output"]) == {"done": True}
    # And deleting the stack deletes it from the same backend
    aws["cloudformation"].delete_stack(StackName=stack)
    assert name not in [m["name"] for m in aws["stepfunctions"].list_state_machines()["stateMachines"]]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2027, 1, 15, 8, 0, tzinfo=UTC), 1_800_000_000_000),
        (datetime(2027, 1, 15, 8, 0), 1_800_000_000_000),  # naive: UTC
        ({"a": [datetime(2027, 1, 15, 8, 0, tzinfo=UTC)], "ResponseMetadata": {}}, {"a": [1_800_000_000_000]}),
        ("text", "text"),
    ],
)
def test_json_safe_renders_dates_as_epoch_milliseconds(value: Any, expected: Any) -> None:
    assert shim.json_safe(value) == expected


def test_installed_again_a_wait_state_waits_its_seconds_of_cloud_time_once(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the shim installed again, and the cloud time every sleeper of the executions asks for
    support.install_again(shim)
    asked: list[float] = []
    sleep = clock.sleep

    def recorded(seconds: float) -> None:
        if not threading.current_thread().name.startswith("localcloud"):  # not a stopped cloud's leftover work
            asked.append(seconds)
        sleep(seconds)

    monkeypatch.setattr(clock, "sleep", recorded)
    # When a state machine waits half an hour
    described = execute(aws["stepfunctions"], machine(("Bake", {"Type": "Wait", "Seconds": 1800})))
    # Then it succeeded after exactly that much cloud time, waited once (in the shim's slices of 10 minutes)
    assert described["status"] == "SUCCEEDED"
    assert asked == [600.0, 600.0, 600.0]
