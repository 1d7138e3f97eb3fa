"""Deployment steps under moto + the endpoint shim: first deploy, canary, rollback, failures."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from lambdas.deploy.logic import (
    Deployer,
    DeploymentConflict,
    FleetTooSmall,
    PackageNotDeployable,
    SilentRollback,
    traffic_batch_instances,
)
from lambdas.deploy.models import DeploymentState
from localcloud.clock import clock
from localcloud.shims import sagemaker_endpoints as shim
from stacks.config import traffic_batch_instances as config_batch_instances
from tests.unit.lambdas.deploy.support import (
    ACCOUNT,
    ALARMS,
    ARTIFACTS,
    ENDPOINT,
    REGION,
    Cloud,
    deployer,
    run_deployment,
)


def shares() -> dict[str, float]:
    return {r.model_name: round(r.weight, 6) for r in shim.routes(ACCOUNT, REGION, ENDPOINT) if r.role == "production"}


def deploy_first(cloud: Cloud, **overrides: Any) -> None:
    run = run_deployment(deployer(cloud, **overrides), cloud.register(1))
    assert run.error is None, run.error


def test_first_deploy_creates_model_config_endpoint_and_autoscaling(cloud: Cloud) -> None:
    # Given an approved package and no endpoint yet
    arn = cloud.register(1)
    # When the deployment runs
    run = run_deployment(deployer(cloud), arn)
    # Then the endpoint serves the package's model on a config with data capture and KMS
    assert run.error is None
    live = cloud.endpoint()
    assert (live["EndpointStatus"], live["EndpointConfigName"]) == ("InService", f"{ENDPOINT}-v1")
    config = cloud.sm.describe_endpoint_config(EndpointConfigName=f"{ENDPOINT}-v1")
    assert config["KmsKeyId"].startswith("arn:aws:kms:")
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["DestinationS3Uri"] == f"s3://{ARTIFACTS}/data-capture"
    assert capture["InitialSamplingPercentage"] == 100
    assert capture["KmsKeyId"] == config["KmsKeyId"]
    assert capture["CaptureOptions"] == [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]
    assert capture["CaptureContentTypeHeader"] == {
        "CsvContentTypes": ["text/csv"],
        "JsonContentTypes": ["application/json"],
    }
    (variant,) = config["ProductionVariants"]
    assert (variant["VariantName"], variant["ModelName"], variant["InstanceType"]) == (
        "AllTraffic",
        f"{ENDPOINT}-v1",
        "ml.m5.large",
    )
    model = cloud.sm.describe_model(ModelName=f"{ENDPOINT}-v1")
    assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{ARTIFACTS}/models/train-1/output/model.tar.gz"
    assert model["PrimaryContainer"]["Environment"] == {"SAGEMAKER_PROGRAM": "inference.py"}
    # And no candidate endpoint or smoke config was made (the evaluation job smoke-tested the archive)
    assert [e["EndpointName"] for e in cloud.sm.list_endpoints()["Endpoints"]] == [ENDPOINT]
    assert [c["EndpointConfigName"] for c in cloud.sm.list_endpoint_configs()["EndpointConfigs"]] == [f"{ENDPOINT}-v1"]
    # And autoscaling tracks invocations per instance within the stage's bounds
    (target,) = cloud.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert target["ResourceId"] == f"endpoint/{ENDPOINT}/variant/AllTraffic"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 4)
    (policy,) = cloud.autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 700.0
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    # And the notification says what happened
    verified = run.state["verified"]
    assert verified["outcome"] == "deployed"
    assert verified["subject"] == f"Deployed model v1 to {ENDPOINT}"
    assert "first deploy" in verified["message"]


def test_canary_update_shifts_a_slice_then_completes(cloud: Cloud) -> None:
    # Given v1 in production
    deploy_first(cloud)
    seen: list[dict[str, float]] = []
    # When v2 is deployed with the stage's canary (25% of 2 instances, bake 300 s, termination wait 120 s)
    run = run_deployment(deployer(cloud), cloud.register(2), during_rollout=lambda _: seen.append(shares()))
    # Then the canary, one whole instance of the two, first carried half the traffic, then all of it
    assert run.error is None
    assert seen[0] == {f"{ENDPOINT}-v1": 0.5, f"{ENDPOINT}-v2": 0.5}
    assert {f"{ENDPOINT}-v2": 1.0} in seen
    live = cloud.endpoint()
    assert (live["EndpointStatus"], live["EndpointConfigName"]) == ("InService", f"{ENDPOINT}-v2")
    deployment = live["LastDeploymentConfig"]
    routing = deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {
        "Type": "CANARY",
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 25},
        "WaitIntervalInSeconds": 300,
    }
    assert deployment["BlueGreenUpdatePolicy"]["TerminationWaitInSeconds"] == 120
    assert deployment["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": a} for a in ALARMS]}
    assert run.state["rollout"]["previous_config_name"] == f"{ENDPOINT}-v1"
    assert run.checks >= 3  # it waited through the canary bake, the final bake and the termination wait
    # And the notification tells the operator what share of traffic each step really carried
    plan = "1/2 instances (50%) -> 2/2 instances (100%)"
    assert run.state["rollout"]["traffic_plan"] == plan
    assert f"Traffic shifting: {plan}." in run.state["verified"]["message"]


@pytest.mark.parametrize(
    ("strategy", "routing", "plan"),
    [
        (
            "LINEAR",
            {"Type": "LINEAR", "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 33}},
            "1/2 instances (50%) -> 2/2 instances (100%)",  # 33% of 2 instances is one instance
        ),
        ("ALL_AT_ONCE", {"Type": "ALL_AT_ONCE"}, "all at once on 2 instance(s)"),
    ],
)
def test_linear_and_all_at_once_use_their_traffic_routing(
    cloud: Cloud, strategy: str, routing: dict, plan: str
) -> None:
    deploy_first(cloud, strategy=strategy)
    run = run_deployment(deployer(cloud, strategy=strategy), cloud.register(2))
    assert run.error is None
    live = cloud.endpoint()
    assert live["EndpointConfigName"] == f"{ENDPOINT}-v2"
    sent = live["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert sent == {**routing, "WaitIntervalInSeconds": 300}
    assert run.state["rollout"]["traffic_plan"] == plan


def test_a_larger_fleet_gets_a_smaller_canary(cloud: Cloud) -> None:
    # Given v1 on four instances
    deploy_first(cloud, initial_instance_count=4, min_capacity=4, max_capacity=6)
    seen: list[dict[str, float]] = []
    # When v2 is deployed with a 25% canary / Then the canary is one instance of four: a quarter of the traffic
    run = run_deployment(
        deployer(cloud, initial_instance_count=4, min_capacity=4, max_capacity=6),
        cloud.register(2),
        during_rollout=lambda _: seen.append(shares()),
    )
    assert run.error is None
    assert seen[0] == {f"{ENDPOINT}-v1": 0.75, f"{ENDPOINT}-v2": 0.25}


def test_a_canary_on_a_one_instance_fleet_is_refused_before_the_update(cloud: Cloud) -> None:
    # Given v1 on a single instance (deployed all at once)
    single = {"strategy": "ALL_AT_ONCE", "initial_instance_count": 1, "min_capacity": 1}
    deploy_first(cloud, **single)
    # When a canary deployment of v2 finds that fleet (autoscaling keeps the live instance count)
    run = run_deployment(deployer(cloud), cloud.register(2))
    # Then it fails with the reason, before asking SageMaker for an update it would refuse; v1 keeps serving
    assert isinstance(run.error, FleetTooSmall)
    assert "CANARY on 1 instance(s)" in str(run.error) and "at least 2 instances" in str(run.error)
    live = cloud.endpoint()
    assert (live["EndpointStatus"], live["EndpointConfigName"]) == ("InService", f"{ENDPOINT}-v1")
    assert shares() == {f"{ENDPOINT}-v1": 1.0}


def test_the_lambda_rounds_traffic_batches_like_the_stage_config() -> None:
    # Given the Lambda's twin of stacks.config.traffic_batch_instances / Then they agree everywhere
    for percent in range(1, 101):
        for instances in range(1, 21):
            assert traffic_batch_instances(percent, instances) == config_batch_instances(percent, instances)


def test_alarm_during_the_canary_bake_rolls_back_and_fails_the_deployment(cloud: Cloud) -> None:
    # Given v1 in production and a canary of v2 in its baking period
    deploy_first(cloud)

    def five_hundreds(_: dict[str, Any]) -> None:
        if shares().get(f"{ENDPOINT}-v2") == 0.5:  # the canary slice is live
            cloud.set_alarm(ALARMS[0], "ALARM")

    # When the 5XX guardrail alarm fires during the bake
    run = run_deployment(deployer(cloud), cloud.register(2), during_rollout=five_hundreds)
    # Then SageMaker rolls back: the endpoint is InService on v1 again, with all the traffic
    live = cloud.endpoint()
    assert (live["EndpointStatus"], live["EndpointConfigName"]) == ("InService", f"{ENDPOINT}-v1")
    assert shares() == {f"{ENDPOINT}-v1": 1.0}
    # And verify calls it what it is: a silent rollback, reported as a failed deployment
    assert isinstance(run.error, SilentRollback)
    assert f"endpoint {ENDPOINT} rolled back: it runs {ENDPOINT}-v1 again instead of {ENDPOINT}-v2" in str(run.error)
    assert ALARMS[0] in str(run.error)
    failure = run.state["failure"]
    assert failure["outcome"] == "rolled_back"
    assert failure["error"] == "SilentRollback"
    assert failure["subject"] == "Deployment of model v2 rolled back"
    assert "rolled back" in failure["reason"]
    assert f"{ENDPOINT} runs {ENDPOINT}-v1 (InService)" in failure["message"]
    assert "verified" not in run.state
    # And the rolled-back package is Rejected with the reason, so it never becomes the champion
    package = cloud.sm.describe_model_package(ModelPackageName=run.state["model_package_arn"])
    assert package["ModelApprovalStatus"] == "Rejected"
    assert package["ApprovalDescription"].startswith("deployment rolled back: endpoint")
    assert "(now Rejected: the champion is unchanged)" in failure["message"]


def test_verify_detects_a_silent_rollback_without_any_alarm(cloud: Cloud) -> None:
    # Given v1 in production, and a rollout record that asked for v2
    deploy_first(cloud)
    steps = deployer(cloud)
    cloud.register(2)
    state: dict[str, Any] = {"model_package_arn": cloud.register(3), "trigger": "approval"}
    state["deploy"] = steps.handle("prepare", "x", DeploymentState.model_validate(state))
    state["rollout"] = {
        "status": "Done",
        "phase": "update",
        "endpoint_name": ENDPOINT,
        "endpoint_config_name": f"{ENDPOINT}-v3",
        "previous_config_name": f"{ENDPOINT}-v1",
        "endpoint_status": "InService",
        "poll_seconds": 60,
    }
    # When verify finds the endpoint on the previous config (e.g. a rollback whose alarm is back to OK)
    with pytest.raises(SilentRollback) as error:
        steps.handle("verify", "x", DeploymentState.model_validate(state))
    # Then the error says so, and names no alarm because none is in ALARM now
    assert f"endpoint {ENDPOINT} rolled back" in str(error.value)
    assert "rollback alarms in ALARM now: none" in str(error.value)
    # And an endpoint on a config that is neither is a conflict, not a rollback
    state["rollout"]["previous_config_name"] = f"{ENDPOINT}-v2"
    with pytest.raises(DeploymentConflict, match="neither"):
        steps.handle("verify", "x", DeploymentState.model_validate(state))


def test_a_model_that_cannot_come_up_fails_the_update_and_production_stays_on_the_champion(cloud: Cloud) -> None:
    from concurrent.futures import Future

    from localcloud.shims import sagemaker_endpoints

    reason = (
        "The primary container for production variant AllTraffic did not pass the ping health check. "
        "Please check CloudWatch logs for this endpoint."
    )

    def fleet_check(endpoint: str, variants: list[tuple[str, str]]) -> Future[str | None]:
        answer: Future[str | None] = Future()
        answer.set_result(reason if any(model.endswith("-v2") for _, model in variants) else None)
        return answer

    # Given v1 in production and a v2 whose model SageMaker cannot serve (its container fails the ping)
    deploy_first(cloud)
    arn = cloud.register(2)
    sagemaker_endpoints.set_fleet_check(fleet_check)
    try:
        # When the deployment runs
        run = run_deployment(deployer(cloud), arn)
    finally:
        sagemaker_endpoints.set_fleet_check(None)
    # Then the blue/green update's new fleet never takes traffic: the deployment fails with SageMaker's reason
    assert isinstance(run.error, SilentRollback)
    assert f"(model v2); SageMaker's update failed: {reason} (rollback alarms in ALARM now: none)" in str(run.error)
    assert run.state["failure"]["outcome"] == "rolled_back"
    # And production is untouched, the package Rejected
    assert cloud.endpoint()["EndpointConfigName"] == f"{ENDPOINT}-v1"
    assert reason in run.state["failure"]["message"]
    assert cloud.sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Rejected"


def test_prepare_refuses_a_package_that_is_not_approved(cloud: Cloud) -> None:
    arn = cloud.register(1, status="PendingManualApproval")
    run = run_deployment(deployer(cloud), arn)
    assert isinstance(run.error, PackageNotDeployable)
    assert str(run.error) == f"model package {arn} is PendingManualApproval, not Approved"
    assert run.state["failure"]["stage"] == "prepare"
    assert cloud.sm.list_models()["Models"] == []


def test_every_step_can_run_twice(cloud: Cloud) -> None:
    # Given v1 in production
    deploy_first(cloud)
    steps = deployer(cloud)
    state: dict[str, Any] = {"model_package_arn": cloud.register(2), "trigger": "approval"}

    def twice(action: str, path: str) -> dict[str, Any]:
        first = steps.handle(action, "x", DeploymentState.model_validate(state))
        second = steps.handle(action, "x", DeploymentState.model_validate(state))
        state[path] = second
        return first | {"second": second}

    # When prepare and rollout are retried (Step Functions retries a Lambda on transient errors)
    prepared = twice("prepare", "deploy")
    rollout = twice("rollout", "rollout")
    # Then the second call reuses what the first created and keeps watching the same update
    assert prepared["second"] == {k: v for k, v in prepared.items() if k != "second"}
    assert rollout["second"]["endpoint_config_name"] == f"{ENDPOINT}-v2"
    assert rollout["second"]["status"] == "InProgress"
    assert cloud.endpoint()["PendingDeploymentSummary"]["EndpointConfigName"] == f"{ENDPOINT}-v2"


def test_prepare_refuses_a_name_taken_by_other_artifacts(cloud: Cloud) -> None:
    arn = cloud.register(1)
    cloud.sm.create_model(
        ModelName=f"{ENDPOINT}-v1",
        ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/x",
        PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://elsewhere/model.tar.gz"},
    )
    run = run_deployment(deployer(cloud), arn)
    assert isinstance(run.error, DeploymentConflict)
    assert "exists with artifacts s3://elsewhere/model.tar.gz" in str(run.error)


def test_a_second_deployment_does_not_interrupt_a_running_update(cloud: Cloud) -> None:
    deploy_first(cloud)
    steps = deployer(cloud)
    first: dict[str, Any] = {"model_package_arn": cloud.register(2), "trigger": "approval"}
    first["deploy"] = steps.handle("prepare", "a", DeploymentState.model_validate(first))
    steps.handle("rollout", "a", DeploymentState.model_validate(first))
    second: dict[str, Any] = {"model_package_arn": cloud.register(3), "trigger": "approval"}
    second["deploy"] = steps.handle("prepare", "b", DeploymentState.model_validate(second))
    with pytest.raises(DeploymentConflict, match="another deployment is running"):
        steps.handle("rollout", "b", DeploymentState.model_validate(second))
    clock.advance(3600)
    assert cloud.endpoint()["EndpointConfigName"] == f"{ENDPOINT}-v2"


def test_explain_failure_reads_a_lambda_error_and_a_service_error(cloud: Cloud) -> None:
    steps = deployer(cloud)
    lambda_error = {
        "model_package_arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/g/4",
        "error": {"Error": "KeyError", "Cause": '{"errorMessage": "\'deploy\'", "errorType": "KeyError"}'},
    }
    failure = steps.handle("explain_failure", "exec-9", DeploymentState.model_validate(lambda_error))
    assert failure["reason"] == "'deploy'"
    assert failure["outcome"] == "failed"
    assert failure["subject"] == "Deployment of model 4 failed"
    assert "Deployment exec-9 of model 4 failed during prepare." in failure["message"]
    assert f"{ENDPOINT} does not exist" in failure["message"]
    timeout = {**lambda_error, "error": {"Error": "States.Timeout", "Cause": ""}}
    failure = steps.handle("explain_failure", "exec-9", DeploymentState.model_validate(timeout))
    assert (failure["outcome"], failure["reason"]) == ("timed_out", "States.Timeout")


def _create_model_requests(cloud: Cloud) -> list[dict[str, Any]]:
    """The CreateModel requests the deployer sends (moto keeps VpcConfig, not EnableNetworkIsolation)."""
    requests: list[dict[str, Any]] = []
    cloud.sm.meta.events.register(
        "provide-client-params.sagemaker.CreateModel", lambda params, **_: requests.append(dict(params))
    )
    return requests


def test_a_private_stage_creates_its_models_in_the_vpc_with_network_isolation(cloud: Cloud) -> None:
    # Given the deployer of a network: private stage (MODEL_SUBNETS / MODEL_SECURITY_GROUPS set)
    public = deployer(cloud)
    settings = replace(public.settings, model_subnets=("subnet-a", "subnet-b"), model_security_groups=("sg-1",))
    requests = _create_model_requests(cloud)
    # When a package deploys
    run = run_deployment(Deployer(settings, public.clients), cloud.register(1))
    # Then its model (the candidate's too: one model per package) runs in the VPC with network isolation
    assert run.error is None
    (request,) = requests
    assert request["VpcConfig"] == {"Subnets": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]}
    assert request["EnableNetworkIsolation"] is True
    assert cloud.sm.describe_model(ModelName=f"{ENDPOINT}-v1")["VpcConfig"] == request["VpcConfig"]


def test_a_public_stage_creates_its_models_without_a_vpc(cloud: Cloud) -> None:
    requests = _create_model_requests(cloud)
    run = run_deployment(deployer(cloud), cloud.register(1))
    assert run.error is None
    (request,) = requests
    assert "VpcConfig" not in request and "EnableNetworkIsolation" not in request
