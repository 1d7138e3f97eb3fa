"""ExplainFailure: the underlying Glue / SageMaker / Lambda reason and the failed stage, for a person.

The Cause documents are built from the services' own responses (moto follows the botocore models), the way
Step Functions serialises them for a failed ``.sync`` task: GetJobRun's ``JobRun`` and Describe*Job.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.pipeline_failure import handler as failure_handler
from lambdas.pipeline_failure import logic
from tests.unit.lambdas.support import FakeContext

EXECUTION = "day1-csv-0123456789abcdef"
UPLOAD = {
    "dataset": "churn",
    "upload": {"bucket": "raw", "key": "datasets/churn/day1.csv", "version_id": "v7", "size": 9, "etag": "e"},
    "trigger": {"source": "s3-upload", "reason": "upload of s3://raw/datasets/churn/day1.csv"},
}
GATE_MESSAGE = "EtlJobError: QualityGateFailed: rejected share 0.2000 > 0.05 (200 of 1000 rows)"
TRAINING_MESSAGE = 'AlgorithmError: ExecuteUserScriptError:\nExitCode 1\nErrorMessage "ValueError: no *.parquet files"'


def as_cause(document: dict[str, Any]) -> str:
    """JSON the way Step Functions writes a service response (timestamps as epoch milliseconds)."""

    def default(value: Any) -> Any:
        if isinstance(value, dt.datetime):
            return int(value.timestamp() * 1000)
        raise TypeError(type(value))

    return json.dumps(document, default=default)


@pytest.fixture
def services() -> Iterator[dict[str, Any]]:
    with mock_aws():
        yield {"glue": boto3.client("glue"), "sagemaker": boto3.client("sagemaker")}


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("STAGE", "dev")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    failure_handler.settings.cache_clear()
    yield
    failure_handler.settings.cache_clear()


def glue_cause(glue: Any) -> str:
    glue.create_job(Name="mlops-dev-etl", Role="arn:aws:iam::123456789012:role/etl", Command={"Name": "glueetl"})
    run_id = glue.start_job_run(JobName="mlops-dev-etl")["JobRunId"]
    run = glue.get_job_run(JobName="mlops-dev-etl", RunId=run_id)["JobRun"]
    return as_cause({**run, "JobRunState": "FAILED", "ErrorMessage": GATE_MESSAGE, "JobName": "mlops-dev-etl"})


def training_cause(sagemaker: Any, name: str = "mlops-dev-train-day1-csv-0123456789") -> str:
    sagemaker.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
        RoleArn="arn:aws:iam::123456789012:role/sm",
        OutputDataConfig={"S3OutputPath": "s3://artifacts/models/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    job = sagemaker.describe_training_job(TrainingJobName=name)
    job.pop("ResponseMetadata")
    failed = {"TrainingJobStatus": "Failed", "SecondaryStatus": "Failed", "FailureReason": TRAINING_MESSAGE}
    return as_cause({**job, **failed})


def processing_cause(sagemaker: Any, **outcome: str) -> str:
    name = "mlops-dev-eval-day1-csv-0123456789"
    sagemaker.create_processing_job(
        ProcessingJobName=name,
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
        },
        AppSpecification={"ImageUri": "img"},
        RoleArn="arn:aws:iam::123456789012:role/sm",
    )
    job = sagemaker.describe_processing_job(ProcessingJobName=name)
    job.pop("ResponseMetadata")
    return as_cause({**job, "ProcessingJobStatus": "Failed", **outcome})


def lambda_cause(error_type: str, message: str) -> str:
    """The Lambda runtime's error document for an unhandled exception."""
    return json.dumps(
        {
            "errorMessage": message,
            "errorType": error_type,
            "requestId": "5d1e3c2a-0000-4000-8000-000000000000",
            "stackTrace": [
                '  File "/var/task/lambdas/prepare_training/handler.py", line 66, in handler\n    prepare(\n',
                '  File "/var/task/lambdas/prepare_training/logic.py", line 147, in read_lineage\n    raise ...\n',
            ],
        }
    )


def invoke(error: dict[str, Any], state: dict[str, Any] | None, execution_input: dict[str, Any] | None = None) -> Any:
    event = {"execution": EXECUTION, "error": error, "input": execution_input or UPLOAD, "state": state}
    return failure_handler.handler(event, FakeContext())


def test_a_failed_etl_run_reports_the_glue_error_message(services: dict[str, Any]) -> None:
    # Given the Catch of a glue:startJobRun.sync task whose run failed the quality gate
    error = {"Error": "States.TaskFailed", "Cause": glue_cause(services["glue"])}

    # When the failure is explained
    failure = invoke(error, {**UPLOAD, "error": error})

    # Then the reason is Glue's ErrorMessage, the stage the ETL, and the message tells the whole story
    assert set(failure) == {"subject", "message", "reason", "stage"}
    assert failure["reason"] == GATE_MESSAGE
    assert failure["stage"] == "etl"
    assert failure["subject"] == f"MLOps dev: churn training pipeline failed in etl ({EXECUTION})"
    assert failure["message"].startswith("The training pipeline of dataset churn (dev) failed in stage 'etl'")
    message = failure["message"]
    assert f"Reason: {GATE_MESSAGE}" in message
    assert "Error: States.TaskFailed" in message
    assert "Glue job mlops-dev-etl, run jr_" in message and ": FAILED after" in message
    assert "https://eu-west-1.console.aws.amazon.com/gluestudio/home?region=eu-west-1#/job/mlops-dev-etl/run/jr_" in (
        message
    )
    assert "Input: upload s3://raw/datasets/churn/day1.csv (version v7)" in message
    assert "No model package was registered by this execution." in message


def test_a_failed_training_job_reports_its_failure_reason(services: dict[str, Any]) -> None:
    # Given the Catch of a createTrainingJob.sync task whose job failed in the user script
    error = {"Error": "States.TaskFailed", "Cause": training_cause(services["sagemaker"])}

    # When the failure is explained
    failure = invoke(error, {**UPLOAD, "etl": {}, "prepared": {}, "error": error})

    # Then the reason is SageMaker's FailureReason and the stage is training
    assert failure["reason"] == TRAINING_MESSAGE
    assert failure["stage"] == "training"
    assert "SageMaker training job mlops-dev-train-day1-csv-0123456789: Failed (Failed)" in failure["message"]
    assert "#/jobs/mlops-dev-train-day1-csv-0123456789" in failure["message"]


def test_a_failed_tuning_job_reports_its_failure_reason_as_the_training_stage(services: dict[str, Any]) -> None:
    # Given the Catch of a createHyperParameterTuningJob.sync task whose trials all failed (its description as Cause)
    name = "mlops-dev-churn-0123456789"
    reason = f"All 4 training jobs failed or logged no validation:auc: {TRAINING_MESSAGE}"
    tuning = {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobStatus": "Failed",
        "TrainingJobStatusCounters": {"Completed": 0, "NonRetryableError": 4},
        "FailureReason": reason,
        "TrainingJobDefinition": {"StaticHyperParameters": {"dataset": '"churn"'}},
    }
    error = {"Error": "States.TaskFailed", "Cause": as_cause(tuning)}

    # When the failure is explained / Then the reason is the tuning job's and the stage is training
    failure = invoke(error, {**UPLOAD, "etl": {}, "prepared": {}, "error": error})
    assert (failure["reason"], failure["stage"]) == (reason, "training")
    assert f"SageMaker tuning job {name}: Failed (Failed)" in failure["message"]
    assert f"#/hyper-tuning-jobs/{name}" in failure["message"]


def test_a_failed_evaluation_job_reports_its_failure_reason(services: dict[str, Any]) -> None:
    # Given the Catch of a createProcessingJob.sync task
    cause = processing_cause(services["sagemaker"], FailureReason="AlgorithmError: no challenger model")
    error = {"Error": "States.TaskFailed", "Cause": cause}

    # When / Then
    failure = invoke(error, {**UPLOAD, "etl": {}, "prepared": {}, "training": {}})
    assert (failure["reason"], failure["stage"]) == ("AlgorithmError: no challenger model", "evaluation")
    assert "#/processing-jobs/mlops-dev-eval-day1-csv-0123456789" in failure["message"]


def test_a_processing_job_with_only_an_exit_message_reports_it(services: dict[str, Any]) -> None:
    cause = processing_cause(services["sagemaker"], ExitMessage="FileNotFoundError: no *.parquet files under /x")
    failure = invoke({"Error": "States.TaskFailed", "Cause": cause}, None)
    assert failure["reason"] == "FileNotFoundError: no *.parquet files under /x"
    assert failure["stage"] == "evaluation"


def test_a_lambda_error_reports_its_message_and_the_stage_from_the_state() -> None:
    # Given the prepare step raised (no $.prepared yet)
    message = "no quality report at s3://curated/curated/dataset=churn/version=x/_quality_report.json (NoSuchKey)"
    error = {"Error": "LineageNotFound", "Cause": lambda_cause("LineageNotFound", message)}

    # When the failure is explained
    failure = invoke(error, {**UPLOAD, "etl": {"job_run_id": "jr_1", "state": "SUCCEEDED"}, "error": error})

    # Then the reason is the function's errorMessage and the stage the one that was running
    assert failure["reason"] == message
    assert failure["stage"] == "prepare"
    assert "Lambda error LineageNotFound" in failure["message"]
    assert 'Raised at: File "/var/task/lambdas/prepare_training/logic.py", line 147' in failure["message"]


def test_a_failed_lambda_etl_reports_the_same_reason_as_the_glue_job_in_the_etl_stage() -> None:
    # Given the Catch of the RunEtlInLambda task (a small upload) whose run failed the quality gate
    reason = GATE_MESSAGE.removeprefix("EtlJobError: ")
    error = {"Error": "EtlJobError", "Cause": lambda_cause("EtlJobError", reason)}

    # When the failure is explained
    failure = invoke(error, {**UPLOAD, "error": error})

    # Then the reason is the driver's machine-readable message, as Glue's ErrorMessage carries it, and the stage
    # the ETL (no $.etl yet)
    assert failure["reason"] == reason and reason.startswith("QualityGateFailed: ")
    assert failure["stage"] == "etl"
    assert "Lambda error EtlJobError" in failure["message"]
    assert "No model package was registered by this execution." in failure["message"]


def test_a_registration_failure_points_at_the_registry() -> None:
    error = {"Error": "EvaluationNotFound", "Cause": lambda_cause("EvaluationNotFound", "no evaluation report")}
    state = {**UPLOAD, "etl": {}, "prepared": {}, "training": {}, "evaluation_job": {}}
    failure = invoke(error, state)
    assert failure["stage"] == "registration"
    assert "Check the model package group for this execution's record" in failure["message"]


def test_a_registration_failure_after_a_training_job_that_evaluated_points_at_the_registry() -> None:
    # Given an untuned run: its training job evaluated (its output archive is in $.training), no evaluation job ran
    error = {"Error": "SmokeTestFailed", "Cause": lambda_cause("SmokeTestFailed", "smoke test failed: 500")}
    training = {"model_data": "s3://a/models/j/output/model.tar.gz", "evaluation_archive": "s3://a/o.tar.gz"}
    state = {**UPLOAD, "etl": {}, "prepared": {}, "training": training}
    # Then the registration is the stage that failed, as after an evaluation job
    assert invoke(error, state)["stage"] == "registration"
    # and a run without the archive (tuned: the evaluation job was next) still names the evaluation
    assert logic.stage_from_state({**state, "training": {"model_data": "s3://a/m.tar.gz"}}) == "evaluation"


def test_a_lambda_timeout_without_an_error_type_still_reports_its_message() -> None:
    cause = json.dumps({"errorMessage": "2026-11-27T10:00:00Z req Task timed out after 60.00 seconds"})
    failure = invoke({"Error": "Sandbox.Timedout", "Cause": cause}, {**UPLOAD, "etl": {}})
    assert failure["reason"] == "2026-11-27T10:00:00Z req Task timed out after 60.00 seconds"
    assert "Lambda error Sandbox.Timedout" in failure["message"]


def test_a_states_timeout_on_the_etl_is_plain_text() -> None:
    # Given the Glue task hit its Step Functions timeout (plain-text cause)
    error = {"Error": "States.Timeout", "Cause": "Task timed out after 2100 seconds"}

    # When / Then the text is the reason and the progress names the stage
    failure = invoke(error, {**UPLOAD, "error": error})
    assert (failure["reason"], failure["stage"]) == ("Task timed out after 2100 seconds", "etl")


def test_a_synchronous_glue_error_names_the_etl() -> None:
    error = {"Error": "Glue.EntityNotFoundException", "Cause": "Job mlops-dev-etl not found (Service: Glue)"}
    failure = invoke(error, None)
    assert (failure["reason"], failure["stage"]) == ("Job mlops-dev-etl not found (Service: Glue)", "etl")


def test_an_error_without_a_cause_reports_the_error_name() -> None:
    failure = invoke({"Error": "States.Timeout"}, {**UPLOAD, "etl": {}, "prepared": {}})
    assert failure["reason"] == "States.Timeout"
    assert failure["stage"] == "training"


def test_a_retrain_failing_in_prepare_describes_the_retrain() -> None:
    # Given a retrain execution (no upload, so no ETL stage)
    retrain = {"curated": {"version": "old-run"}, "trigger": {"source": "alarm", "reason": "drift PSI 0.31 > 0.2"}}
    error = {"Error": "LineageNotUsable", "Cause": lambda_cause("LineageNotUsable", "status 'FAILED'")}

    # When / Then the stage is prepare and the input line names the retrain
    failure = invoke(error, {**retrain, "error": error}, execution_input=retrain)
    assert failure["stage"] == "prepare"
    assert "Input: alarm retrain on dataset version old-run: drift PSI 0.31 > 0.2" in failure["message"]


def test_an_unknown_json_cause_is_kept_as_text() -> None:
    failure = invoke({"Error": "States.Runtime", "Cause": '{"unexpected": true}'}, None)
    assert failure["reason"] == '{"unexpected": true}'
    assert failure["stage"] == "unknown"


def test_subject_fits_sns_and_reason_is_bounded() -> None:
    # Given a huge, multi-line, non-ASCII reason and the longest execution name
    long_name = "x" * 80
    error = {"Error": "States.TaskFailed", "Cause": "Fehler: übergroß\n" * 1000}

    # When the failure is explained
    failure = logic.explain(
        execution=long_name, error=error, execution_input=None, state=None, stage_label="prod", region="us-east-1"
    )

    # Then the subject is at most 100 printable ASCII characters and the reason is capped
    assert len(failure["subject"]) <= 100 and failure["subject"].isascii() and failure["subject"].isprintable()
    assert len(failure["reason"]) <= logic.MAX_REASON
    assert failure["reason"].startswith("Fehler: übergroß")


def test_stage_from_state_follows_the_pipeline_order() -> None:
    assert logic.stage_from_state(None) is None
    assert logic.stage_from_state({"dataset": "churn", "upload": {}}) == "etl"
    assert logic.stage_from_state({"curated": {}}) == "prepare"
    everything = {"upload": {}, "etl": {}, "prepared": {}, "training": {}, "evaluation_job": {}, "registration": {}}
    assert logic.stage_from_state(everything) == "notification"
