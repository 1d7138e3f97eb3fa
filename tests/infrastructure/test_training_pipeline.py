"""Training pipeline: the state machine's shape, retries, catches, logging/tracing, and its trigger."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.config import StageConfig
from tests.infrastructure.helpers import definition, of_type


@pytest.fixture(scope="module")
def machine(resources: dict[str, Any], config: StageConfig) -> dict[str, Any]:
    (sm,) = [
        v
        for v in of_type(resources, "AWS::StepFunctions::StateMachine").values()
        if v["Properties"]["StateMachineName"] == config.state_machine_name
    ]
    return sm


def test_order_etl_train_evaluate_gate_register_notify(machine: dict[str, Any]) -> None:
    states = definition(machine)["States"]
    assert definition(machine)["StartAt"] == "NeedsEtl"
    assert states["RunEtl"]["Resource"].endswith(":states:::glue:startJobRun.sync")
    assert states["RunEtl"]["Next"] == "PrepareTraining"
    assert states["PrepareTraining"]["Next"] == "TrainModel"
    assert states["TrainModel"]["Resource"].endswith(":states:::sagemaker:createTrainingJob.sync")
    assert states["TrainModel"]["Next"] == "EvaluateModels"
    assert states["EvaluateModels"]["Resource"].endswith(":states:::sagemaker:createProcessingJob.sync")
    assert states["EvaluateModels"]["Next"] == "RegisterModel"
    assert states["RegisterModel"]["Next"] == "GatePassed"
    gate = states["GatePassed"]
    assert gate["Choices"][0]["Variable"] == "$.registration.passed"
    assert gate["Choices"][0]["Next"] == "NotifyRegistered"
    assert gate["Default"] == "NotifyRejected"
    # a retrain on existing curated data skips the ETL
    assert states["NeedsEtl"]["Choices"][0] == {
        "Variable": "$.curated",
        "IsPresent": True,
        "Next": "PrepareTraining",
    }


def test_every_task_retries_transient_errors_and_catches_into_one_failure_path(
    machine: dict[str, Any],
) -> None:
    states = definition(machine)["States"]
    tasks = {
        name: s for name, s in states.items() if s["Type"] == "Task" and name not in ("ExplainFailure", "NotifyFailure")
    }
    assert set(tasks) == {
        "RunEtl",
        "PrepareTraining",
        "TrainModel",
        "EvaluateModels",
        "RegisterModel",
        "NotifyRegistered",
        "NotifyRejected",
    }
    for name, state in tasks.items():
        retry = state["Retry"][0]
        assert "ThrottlingException" in retry["ErrorEquals"], name
        assert "States.TaskFailed" not in retry["ErrorEquals"], name  # a failed job is never re-run
        assert retry["BackoffRate"] == 2 and retry["MaxAttempts"] == 4, name
        (catch,) = state["Catch"]
        assert catch == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "ExplainFailure"}
    assert states["ExplainFailure"]["Next"] == "NotifyFailure"
    assert states["NotifyFailure"]["Next"] == "PipelineFailed"
    assert states["PipelineFailed"] == {
        "Type": "Fail",
        "Error": "PipelineFailed",
        "CausePath": "$.failure.reason",
    }


def test_training_job_runs_the_sklearn_container_in_script_mode(machine: dict[str, Any], config: StageConfig) -> None:
    params = definition(machine)["States"]["TrainModel"]["Parameters"]
    image = params["AlgorithmSpecification"]["TrainingImage"]
    assert "sagemaker-scikit-learn:1.9-0-cpu-py3" in image
    assert image.startswith("683313688378.dkr.ecr.us-east-1.amazonaws.com/")  # from the SDK lookup
    hps = params["HyperParameters"]
    assert hps["sagemaker_program"] == "pipelines/training/train.py"
    assert hps["sagemaker_submit_directory"].startswith("s3://")
    assert hps["max_iter"] == dict(config.training.hyperparameters)["max_iter"]
    names = {m["Name"] for m in params["AlgorithmSpecification"]["MetricDefinitions"]}
    assert {"validation:auc", "validation:f1"} <= names
    assert {c["ChannelName"] for c in params["InputDataConfig"]} == {"train", "validation"}
    assert params["ResourceConfig"]["InstanceType"] == config.training.instance_type
    assert "VolumeKmsKeyId" in params["ResourceConfig"]
    assert "KmsKeyId" in params["OutputDataConfig"]


def test_logging_all_and_tracing(machine: dict[str, Any]) -> None:
    props = machine["Properties"]
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is True
    assert props["TracingConfiguration"] == {"Enabled": True}


def test_notifications_topic_is_encrypted_and_tls_only(resources: dict[str, Any]) -> None:
    (topic,) = of_type(resources, "AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in topic["Properties"]
    (policy,) = of_type(resources, "AWS::SNS::TopicPolicy").values()
    stmts = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in stmts)


def test_raw_upload_under_the_dataset_prefix_invokes_the_start_lambda(
    resources: dict[str, Any], config: StageConfig
) -> None:
    rules = [
        r
        for r in of_type(resources, "AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("detail", {}).get("object", {}).get("key")
        == [{"prefix": config.raw_dataset_prefix}]
    ]
    (rule,) = rules
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    target = rule["Properties"]["Targets"][0]
    assert target["Arn"]["Fn::GetAtt"][0].startswith("PipelineStartPipeline")
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 4


def test_idempotency_table_is_encrypted_with_ttl(resources: dict[str, Any]) -> None:
    tables = [v for k, v in of_type(resources, "AWS::DynamoDB::Table").items() if "Idempotency" in k]
    (table,) = tables
    props = table["Properties"]
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["SSESpecification"]["SSEType"] == "KMS"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
