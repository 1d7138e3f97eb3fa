"""Registry, deployment path, guardrail alarms, teardown."""

from __future__ import annotations

import json
from typing import Any

from stacks.config import StageConfig
from tests.infrastructure.helpers import definition, of_type


def _function(resources: dict[str, Any], prefix: str) -> dict[str, Any]:
    (fn,) = [
        v
        for k, v in of_type(resources, "AWS::Lambda::Function").items()
        if k.startswith(prefix) and not k.startswith(prefix + "Role")
    ]
    return fn


def test_model_package_group_and_approval_triggers_deployment(resources: dict[str, Any], config: StageConfig) -> None:
    (group,) = of_type(resources, "AWS::SageMaker::ModelPackageGroup").values()
    assert group["Properties"]["ModelPackageGroupName"] == config.model_package_group_name
    (rule,) = [
        r
        for r in of_type(resources, "AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.sagemaker"]
    ]
    detail = rule["Properties"]["EventPattern"]["detail"]
    assert detail == {
        "ModelPackageGroupName": [config.model_package_group_name],
        "ModelApprovalStatus": ["Approved"],
    }
    assert rule["Properties"]["Targets"][0]["Arn"]["Ref"].startswith("ServingDeployment")


def test_rollback_alarms_watch_the_fixed_endpoint_name(resources: dict[str, Any], config: StageConfig) -> None:
    alarms = {
        v["Properties"]["AlarmName"]: v["Properties"]
        for v in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if "-rollback-" in v["Properties"]["AlarmName"]
    }
    assert {a["MetricName"] for a in alarms.values()} == {
        "Invocation5XXErrors",
        "ModelLatency",
        "InvocationModelErrors",
    }
    for props in alarms.values():
        assert {"Name": "EndpointName", "Value": config.endpoint_name} in props["Dimensions"]


def test_deploy_lambda_gets_canary_settings_and_alarm_names(resources: dict[str, Any], config: StageConfig) -> None:
    env = _function(resources, "ServingDeploy")["Properties"]["Environment"]["Variables"]
    serving = json.loads(env["SERVING"])
    assert serving["strategy"] == "CANARY"
    assert serving["canary_percent"] == config.serving.canary_percent
    assert serving["bake_time_seconds"] == config.serving.bake_time_seconds
    assert len(json.loads(env["ROLLBACK_ALARMS"])) == 3
    assert env["ENDPOINT_NAME"] == config.endpoint_name


def test_deployment_machine_smoke_tests_before_rollout_and_verifies_after(resources: dict[str, Any]) -> None:
    (sm,) = [
        v
        for v in of_type(resources, "AWS::StepFunctions::StateMachine").values()
        if v["Properties"]["StateMachineName"].endswith("-deployment")
    ]
    d = definition(sm)
    states = d["States"]
    assert d["StartAt"] == "PrepareDeployment"
    assert states["PrepareDeployment"]["Next"] == "SmokeTest"
    assert states["SmokeTest"]["Next"] == "StartRollout"
    assert states["WaitForRollout"]["SecondsPath"] == "$.rollout.poll_seconds"
    assert states["VerifyDeployment"]["Next"] == "NotifyDeployed"
    assert states["DeploymentFailed"]["Type"] == "Fail"


def test_endpoint_role_is_assumed_by_sagemaker(resources: dict[str, Any]) -> None:
    (role,) = [v for k, v in of_type(resources, "AWS::IAM::Role").items() if k.startswith("ServingEndpointRole")]
    principals = [s["Principal"]["Service"] for s in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]]
    assert principals == ["sagemaker.amazonaws.com"]


def test_stack_deletion_cleans_up_pipeline_created_sagemaker_resources(
    resources: dict[str, Any], config: StageConfig
) -> None:
    (cleanup,) = of_type(resources, "Custom::SageMakerCleanup").values()
    assert cleanup["Properties"]["Prefix"] == config.prefix
    assert cleanup["DeletionPolicy"] == "Delete"
