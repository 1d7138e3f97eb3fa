"""Registry, deployment path, guardrail alarms, teardown."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from lambdas.deploy.models import Action, ServingConfig
from stacks.config import STAGES, AlarmThresholds, ServingSettings, StageConfig, traffic_batch_instances
from stacks.mlops_stack import MlopsStack
from tests.infrastructure.helpers import definition, of_type, policy_statements, render


def _function(resources: dict[str, Any], prefix: str) -> dict[str, Any]:
    (fn,) = [
        v
        for k, v in of_type(resources, "AWS::Lambda::Function").items()
        if k.startswith(prefix) and not k.startswith(prefix + "Role")
    ]
    return fn


def _statement(statements: list[dict[str, Any]], action: str) -> dict[str, Any]:
    (found,) = [s for s in statements if action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    return found


def test_a_retained_group_per_dataset_and_approval_of_any_triggers_the_one_deployment(
    resources: dict[str, Any], stack: MlopsStack
) -> None:
    # Given a model package group per declared dataset, retained when the stack or the declaration goes (its
    # versions are the dataset's model history)
    groups = of_type(resources, "AWS::SageMaker::ModelPackageGroup").values()
    expected = sorted(c.model_package_group_name for c in stack.dataset_configs.values())
    assert sorted(g["Properties"]["ModelPackageGroupName"] for g in groups) == expected
    assert all(g["DeletionPolicy"] == g["UpdateReplacePolicy"] == "Retain" for g in groups)
    # When a package of one of them is approved
    (rule,) = [
        r
        for r in of_type(resources, "AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.sagemaker"]
    ]
    detail = rule["Properties"]["EventPattern"]["detail"]
    # Then the one deployment state machine starts, with the package and its group (a retired dataset's group is
    # not listed: its approvals deploy nothing)
    assert detail == {"ModelPackageGroupName": expected, "ModelApprovalStatus": ["Approved"]}
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"]["Ref"].startswith("ServingDeployment")
    template = target["InputTransformer"]["InputTemplate"]
    assert '"model_package_group":<detail-ModelPackageGroupName>' in template.replace(" ", ""), template


def _rollback_alarms(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        v["Properties"]["AlarmName"]: v["Properties"]
        for v in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if "-rollback-" in v["Properties"]["AlarmName"]
    }


def test_rollback_alarms_watch_each_datasets_fixed_endpoint_name(resources: dict[str, Any], stack: MlopsStack) -> None:
    alarms = _rollback_alarms(resources)
    for name, config in stack.dataset_configs.items():
        own = {n: alarms[n] for n in config.rollback_alarm_names}
        assert {a["MetricName"] for a in own.values()} == {
            "Invocation5XXErrors",
            "ModelLatency",
            "InvocationModelErrors",
        }
        for props in own.values():
            assert {"Name": "EndpointName", "Value": config.endpoint_name} in props["Dimensions"], name
        assert stack.platform.dataset(name).names.rollback_alarms == config.rollback_alarm_names
    assert len(alarms) == 3 * len(stack.dataset_configs)


def test_no_rollback_guardrail_counts_client_errors(resources: dict[str, Any], config: StageConfig) -> None:
    """SageMaker sends 1 per request that matches an invocation error metric and 0 otherwise; InvocationModelErrors
    matches every request without a 2XX answer, 4XX included, and so does Invocation4XXErrors
    (https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html). A guardrail summing either would
    roll a good model back on one bad client request: those are watched as a share of the invocations (Average,
    a threshold below 1), while a 5XX, always a model failure, rolls back by count."""
    # Given the synthesized rollback guardrails of churn, by metric
    alarms = {
        props["MetricName"]: props for name, props in _rollback_alarms(resources).items() if "-churn-rollback-" in name
    }
    # Then the metrics that count client errors are judged as a rate
    for metric in ("InvocationModelErrors", "Invocation4XXErrors"):
        if metric in alarms:
            assert alarms[metric]["Statistic"] == "Average", alarms[metric]
            assert 0 < alarms[metric]["Threshold"] < 1, alarms[metric]
    assert alarms["InvocationModelErrors"]["Threshold"] == config.alarms.model_error_rate
    # And only a share that holds for every evaluated minute rolls back (one bad request is a large share of a
    # quiet minute), while a single 5XX in a minute does
    errors = alarms["InvocationModelErrors"]
    assert errors["DatapointsToAlarm"] == errors["EvaluationPeriods"] == config.alarms.rollback_evaluation_periods
    assert (alarms["Invocation5XXErrors"]["Statistic"], alarms["Invocation5XXErrors"]["Threshold"]) == ("Sum", 1)
    assert alarms["Invocation5XXErrors"]["DatapointsToAlarm"] == 1
    assert all(a["Period"] == 60 for a in alarms.values())


@pytest.mark.parametrize(("rate", "bound"), [(0.3, "0.25"), (0.0, "0.25")])
def test_a_model_error_rate_no_new_fleet_can_reach_is_refused(rate: float, bound: str) -> None:
    # Given the dev canary: 1 of 4 instances at the largest fleet, a quarter of the requests
    # When the model-errors guardrail asks for a share a refusing canary never reaches (or zero: any 4XX)
    # Then the configuration is refused with the reason
    with pytest.raises(ValueError, match=rf"model_error_rate {rate} must be above 0 and below {bound}"):
        replace(STAGES["dev"], alarms=AlarmThresholds(model_error_rate=rate))


def test_deploy_lambda_gets_each_datasets_canary_settings_and_alarm_names(
    resources: dict[str, Any], config: StageConfig, stack: MlopsStack
) -> None:
    # Given the deploy Lambda's environment: names only
    env = _function(resources, "ServingDeploy")["Properties"]["Environment"]["Variables"]
    assert set(env) == {
        "ENDPOINT_ROLE_ARN",
        "DATA_CAPTURE_URI",
        "KMS_KEY_ARN",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
        "STAGE",
    }
    # Then each dataset's serving settings and guardrails reach it in the platform document
    churn = stack.platform.dataset("churn")
    assert churn.serving["strategy"] == "CANARY"
    assert churn.serving["canary_percent"] == config.serving.canary_percent
    assert churn.serving["bake_time_seconds"] == config.serving.bake_time_seconds
    assert len(churn.names.rollback_alarms) == 3
    assert churn.names.endpoint == f"{config.prefix}-churn"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_stage_can_canary_at_every_fleet_size(stage: str) -> None:
    # Given a stage's serving settings / Then at every size autoscaling may pick, the canary is whole instances
    # and at most half of them (SageMaker's rule), so the first deployment update is not refused
    serving = STAGES[stage].serving
    assert serving.strategy == "CANARY"
    for instances in range(serving.min_capacity, serving.max_capacity + 1):
        assert 1 <= traffic_batch_instances(serving.canary_percent, instances) <= instances / 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"initial_instance_count": 1, "min_capacity": 1}, "25% canary on 1 instance(s) is 1 instance(s)"),
        ({"canary_percent": 60}, "60% canary on 2 instance(s)"),
        ({"strategy": "LINEAR", "min_capacity": 1, "initial_instance_count": 1}, "33% linear step on 1 instance"),
        ({"min_capacity": 3}, "min_capacity (3) <= initial_instance_count (2)"),
    ],
)
def test_serving_settings_refuse_a_fleet_the_strategy_cannot_run_on(overrides: dict[str, Any], message: str) -> None:
    # When a stage asks for a traffic shift SageMaker would refuse / Then synth stops with the reason
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        replace(ServingSettings(), **overrides)


def test_a_single_instance_stage_can_deploy_all_at_once() -> None:
    # Given the cheapest dev fleet / Then it is valid without a canary, and the Lambda's model agrees
    single = ServingSettings(strategy="ALL_AT_ONCE", initial_instance_count=1, min_capacity=1)
    assert ServingConfig.model_validate(asdict(single)).min_capacity == 1
    # And the Lambda's model refuses a canary on it even if built around the stage config
    with pytest.raises(ValidationError, match="CANARY needs at least 2 instances"):
        ServingConfig.model_validate({**asdict(single), "strategy": "CANARY"})


def _deployment(resources: dict[str, Any]) -> dict[str, Any]:
    (sm,) = [
        v
        for v in of_type(resources, "AWS::StepFunctions::StateMachine").values()
        if v["Properties"]["StateMachineName"].endswith("-deployment")
    ]
    return definition(sm)


def test_deployment_machine_rolls_out_the_smoke_tested_package_and_verifies_after(resources: dict[str, Any]) -> None:
    d = _deployment(resources)
    states = d["States"]
    assert d["StartAt"] == "PrepareDeployment"
    # no candidate endpoint: the evaluation job smoke-tested the archive on the image's serving stack before the
    # package was registered, so the rollout starts right after prepare
    assert states["PrepareDeployment"]["Next"] == "StartRollout"
    assert not [name for name in states if "Smoke" in name]
    # rollout: poll while InProgress, shadow bake + comparison, then verify (a silent rollback fails there)
    assert states["StartRollout"]["Next"] == "RolloutFinished"
    finished = states["RolloutFinished"]
    assert finished["Choices"] == [
        {"Variable": "$.rollout.status", "StringEquals": "InProgress", "Next": "WaitForRollout"},
        {"Variable": "$.rollout.status", "StringEquals": "ShadowBaking", "Next": "WaitForShadowBake"},
    ]
    assert finished["Default"] == "VerifyDeployment"
    assert states["WaitForRollout"]["Next"] == "CheckRollout"
    assert states["CheckRollout"]["Next"] == "RolloutFinished"
    assert states["WaitForShadowBake"]["Next"] == "CompareShadow"
    assert states["CompareShadow"]["Next"] == "RolloutFinished"
    assert states["VerifyDeployment"]["Next"] == "NotifyDeployed"
    assert states["NotifyDeployed"]["Next"] == "Deployed"
    assert states["DeploymentFailed"]["Type"] == "Fail"


def test_deployment_waits_take_their_seconds_from_the_state(resources: dict[str, Any]) -> None:
    states = _deployment(resources)["States"]
    waits = {name: s for name, s in states.items() if s["Type"] == "Wait"}
    assert {name: s["SecondsPath"] for name, s in waits.items()} == {
        "WaitForRollout": "$.rollout.poll_seconds",
        "WaitForShadowBake": "$.rollout.bake_seconds",
    }
    assert not any("Seconds" in s for s in waits.values())


def test_every_deployment_step_fails_into_explain_notify_fail(resources: dict[str, Any]) -> None:
    states = _deployment(resources)["States"]
    failure_path = {"ExplainDeployFailure", "NotifyDeployFailed"}
    tasks = {name: s for name, s in states.items() if s["Type"] == "Task" and name not in failure_path}
    assert len(tasks) == 6
    for name, task in tasks.items():
        assert task["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "ExplainDeployFailure"}
        ], name
    assert states["ExplainDeployFailure"]["ResultPath"] == "$.failure"
    assert states["ExplainDeployFailure"]["Next"] == "NotifyDeployFailed"
    assert states["NotifyDeployFailed"]["Next"] == "DeploymentFailed"
    assert states["DeploymentFailed"]["CausePath"] == "$.failure.reason"


def test_deployment_steps_call_actions_the_deploy_lambda_knows(resources: dict[str, Any]) -> None:
    states = _deployment(resources)["States"]
    payloads = {  # payload_response_only: the Parameters are the Lambda's event
        name: s["Parameters"]
        for name, s in states.items()
        if s["Type"] == "Task" and render(s["Resource"]).startswith("${ServingDeploy")
    }
    actions = {p["action"] for p in payloads.values()}
    assert actions == set(get_args(Action))
    for payload in payloads.values():
        assert payload["execution.$"] == "$$.Execution.Name" and payload["state.$"] == "$"
    assert {states[n]["ResultPath"] for n in ("StartRollout", "CheckRollout", "CompareShadow")} == {"$.rollout"}


def test_deploy_lambda_settings_parse_into_the_lambdas_own_model(resources: dict[str, Any], stack: MlopsStack) -> None:
    env = _function(resources, "ServingDeploy")["Properties"]["Environment"]["Variables"]
    # the Lambda cannot import stacks.config: its ServingConfig refuses unknown keys, so the two stay in step
    for name, config in stack.dataset_configs.items():
        serving = ServingConfig.model_validate(dict(stack.platform.dataset(name).serving))
        assert serving.model_dump() == asdict(config.serving), name
        assert stack.platform.dataset(name).names.resource_prefix == f"{config.prefix}-{name}"
    capture = render(env["DATA_CAPTURE_URI"])
    assert capture.startswith("s3://${DataLakeArtifacts") and capture.endswith("}/data-capture")


def test_deploy_role_can_autoscale_compare_shadows_and_use_the_data_key(resources: dict[str, Any]) -> None:
    statements = policy_statements(resources, "ServingDeployRole")
    slr = _statement(statements, "iam:CreateServiceLinkedRole")
    assert slr["Condition"] == {"StringLike": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}}
    assert "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint" in render(slr["Resource"])
    assert _statement(statements, "cloudwatch:GetMetricStatistics")["Resource"] == "*"
    kms = _statement(statements, "kms:CreateGrant")
    assert "kms:DescribeKey" in kms["Action"] and kms["Resource"]["Fn::GetAtt"][0].startswith("DataLakeDataKey")
    reads = [s for s in statements if "s3:GetObject*" in s["Action"]]
    prefixes = {render(r).rsplit("}/", 1)[-1] for s in reads for r in s["Resource"] if "/" in render(r)}
    assert {"evaluations/*", "data-capture/*"} <= prefixes


def test_cleanup_runs_before_the_endpoint_role_goes_and_may_deregister_autoscaling(resources: dict[str, Any]) -> None:
    (key,) = [k for k, v in resources.items() if v["Type"] == "Custom::SageMakerCleanup"]
    (role,) = [k for k in of_type(resources, "AWS::IAM::Role") if k.startswith("ServingEndpointRole")]
    assert role in resources[key]["DependsOn"]
    statements = policy_statements(resources, "ServingCleanupRole")
    deregister = _statement(statements, "application-autoscaling:DeregisterScalableTarget")
    assert deregister["Condition"] == {"StringEquals": {"application-autoscaling:service-namespace": "sagemaker"}}


def test_batch_inference_runs_once_per_object_version_with_the_champion(
    resources: dict[str, Any], stack: MlopsStack
) -> None:
    env = _function(resources, "ServingBatchInference")["Properties"]["Environment"]["Variables"]
    for name, config in stack.dataset_configs.items():
        names = stack.platform.dataset(name).names
        assert (names.batch_input_prefix, names.resource_prefix) == (f"batch-input/{name}/", config.resource_prefix)
    assert render(env["OUTPUT_URI"]).endswith("}/batch-output/")
    table = resources[env["IDEMPOTENCY_TABLE"]["Ref"]]["Properties"]
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True
    (rule,) = [
        r["Properties"]
        for r in of_type(resources, "AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("detail", {}).get("object")
        == {"key": [{"prefix": "batch-input/"}]}
    ]
    assert rule["Targets"][0]["Arn"]["Fn::GetAtt"][0].startswith("ServingBatchInference")


def test_endpoint_role_is_assumed_by_sagemaker(resources: dict[str, Any]) -> None:
    (role,) = [v for k, v in of_type(resources, "AWS::IAM::Role").items() if k.startswith("ServingEndpointRole")]
    principals = [s["Principal"]["Service"] for s in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]]
    assert principals == ["sagemaker.amazonaws.com"]


def test_stack_deletion_and_retired_datasets_clean_up_pipeline_created_sagemaker_resources(
    resources: dict[str, Any], config: StageConfig, stack: MlopsStack
) -> None:
    (cleanup,) = of_type(resources, "Custom::SageMakerCleanup").values()
    assert cleanup["Properties"]["Prefix"] == config.prefix
    # an update that drops a declared name retires that dataset's endpoints, configs and models
    assert cleanup["Properties"]["Datasets"] == sorted(stack.dataset_configs)
    assert cleanup["DeletionPolicy"] == "Delete"
