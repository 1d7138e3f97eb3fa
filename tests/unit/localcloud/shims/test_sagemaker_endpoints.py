"""Contract and behaviour of the SageMaker endpoint control-plane shim (UpdateEndpoint, blue/green, rollback)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from importlib.metadata import version
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.server import ThreadedMotoServer

from localcloud.clock import clock
from localcloud.shims import sagemaker_endpoints as shim

ACCOUNT, REGION = "123456789012", "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/endpoint"
ENDPOINT = "mlops-test-churn"
ALARM = f"{ENDPOINT}-rollback-5xx"


def canary(percent: int = 10, wait: int = 300, termination: int = 120, timeout: int = 3600) -> dict[str, Any]:
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": percent},
                "WaitIntervalInSeconds": wait,
            },
            "TerminationWaitInSeconds": termination,
            "MaximumExecutionTimeoutInSeconds": timeout,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": ALARM}]},
    }


@pytest.fixture
def sm() -> Iterator[Any]:
    """moto + the shim with instant provisioning (the traffic-shifting tests); ``provisioned`` keeps the table."""
    with shim.provisioning_times(shim.ProvisioningTimes.instant()):
        yield from _moto_with_alarm()


@pytest.fixture
def provisioned() -> Iterator[Any]:
    """moto + the shim with the default provisioning times: the table's typical figures."""
    yield from _moto_with_alarm()


def _moto_with_alarm() -> Iterator[Any]:
    shim.install()
    clock.reset()
    with mock_aws():
        client = boto3.client("sagemaker", region_name=REGION)
        boto3.client("cloudwatch", region_name=REGION).put_metric_alarm(
            AlarmName=ALARM,
            Namespace="AWS/SageMaker",
            MetricName="Invocation5XXErrors",
            Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "AllTraffic"}],
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
        yield client
    clock.reset()


def model_and_config(
    client: Any, name: str, *, shadow_of: str | None = None, instance_type: str = "ml.m5.large", instances: int = 10
) -> str:
    """A model and its one-variant config on ``instances`` instances (10: a 10% canary is one instance)."""
    client.create_model(
        ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "img", "ModelDataUrl": f"s3://a/{name}"}
    )
    variants = [
        {
            "VariantName": "AllTraffic",
            "ModelName": shadow_of or name,
            "InitialInstanceCount": instances,
            "InstanceType": instance_type,
            "InitialVariantWeight": 1.0,
        }
    ]
    extra: dict[str, Any] = {}
    if shadow_of:
        extra["ShadowProductionVariants"] = [
            {"VariantName": "Shadow", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": instance_type}
        ]
    client.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=variants,
        DataCaptureConfig={
            "EnableCapture": True,
            "InitialSamplingPercentage": 50,
            "DestinationS3Uri": "s3://a/data-capture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        },
        **extra,
    )
    return name


def live(client: Any) -> dict[str, Any]:
    return dict(client.describe_endpoint(EndpointName=ENDPOINT))


def shares() -> dict[tuple[str, str], float]:
    return {(r.model_name, r.role): round(r.weight, 6) for r in shim.routes(ACCOUNT, REGION, ENDPOINT)}


def set_alarm(state: str) -> None:
    boto3.client("cloudwatch", region_name=REGION).set_alarm_state(
        AlarmName=ALARM, StateValue=state, StateReason="test"
    )


# ---- contract with the pinned moto -------------------------------------------------------------------------


def test_pinned_moto_still_lacks_what_the_shim_adds() -> None:
    # Given the pinned moto, before the shim patched it
    shim.install()
    # Then it is the version the shim was written for, and it still lacks every behaviour the shim adds
    assert version("moto") == "5.2.5"
    assert shim.MOTO_BASELINE == {
        "has_update_endpoint": False,
        "create_endpoint_config_takes_shadow_variants": False,
        "create_endpoint_takes_deployment_config": False,
    }


def test_patch_points_still_exist_in_moto(sm: Any) -> None:
    from moto.applicationautoscaling.models import applicationautoscaling_backends
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends

    # Given moto objects built through the API
    model_and_config(sm, "a")
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="a")
    backend = sagemaker_backends[ACCOUNT][REGION]
    # Then the internals the shim reads and writes are still there under these names
    endpoint = backend.endpoints[ENDPOINT]
    assert {"endpoint_config_name", "production_variants", "endpoint_status", "data_capture_config"} <= set(
        vars(endpoint)
    )
    assert callable(endpoint._process_production_variants)
    assert {"production_variants", "data_capture_config", "endpoint_config_arn"} <= set(
        vars(backend.endpoint_configs["a"])
    )
    assert "a" in backend._models
    for method in ("create_model", "create_endpoint_config", "create_endpoint", "describe_endpoint", "list_endpoints"):
        assert callable(getattr(SageMakerModelBackend, method))
    assert cloudwatch_backends[ACCOUNT][REGION].alarms[ALARM].state_value in ("OK", "INSUFFICIENT_DATA")
    # a variant registered through the API is where the shim looks for it (targets[dimension][resource id])
    resource = f"endpoint/{ENDPOINT}/variant/AllTraffic"
    boto3.client("application-autoscaling", region_name=REGION).register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=1,
        MaxCapacity=2,
    )
    targets = applicationautoscaling_backends[ACCOUNT][REGION].targets
    assert resource in targets["sagemaker:variant:DesiredInstanceCount"]


def test_install_is_idempotent() -> None:
    from moto.sagemaker.responses import SageMakerResponse

    shim.install()
    first = getattr(SageMakerResponse, "update_endpoint")  # noqa: B009  (added by the shim)
    shim.install()
    assert getattr(SageMakerResponse, "update_endpoint") is first  # noqa: B009


def test_moto_application_autoscaling_takes_sagemaker_variants_without_a_patch(sm: Any) -> None:
    # Given an endpoint variant
    model_and_config(sm, "m1")
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="m1")
    aas = boto3.client("application-autoscaling", region_name=REGION)
    resource = f"endpoint/{ENDPOINT}/variant/AllTraffic"
    # When it is registered with a target-tracking policy on invocations per instance
    aas.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=1,
        MaxCapacity=4,
    )
    aas.put_scaling_policy(
        PolicyName="invocations",
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 700.0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        },
    )
    # Then moto stores both as AWS describes them
    (target,) = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == (resource, 1, 4)
    (policy,) = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    spec = policy["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
    assert spec["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"


# ---- blue/green on the clock -------------------------------------------------------------------------------


def test_canary_shifts_traffic_bakes_then_completes(sm: Any) -> None:
    # Given an endpoint on the champion's config
    model_and_config(sm, "champion")
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="champion")
    model_and_config(sm, "challenger")
    # When a canary update starts
    sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="challenger", DeploymentConfig=canary())
    # Then the canary (one instance of ten) takes 10% while the endpoint still reports the old and the pending config
    described = live(sm)
    assert described["EndpointStatus"] == "Updating"
    assert described["EndpointConfigName"] == "champion"
    pending = described["PendingDeploymentSummary"]
    assert pending["EndpointConfigName"] == "challenger"
    assert pending["ProductionVariants"][0]["VariantStatus"][0]["Status"] == "Baking"
    assert described["ProductionVariants"][0]["CurrentWeight"] == pytest.approx(0.9)
    assert shares() == {("champion", "production"): 0.9, ("challenger", "production"): 0.1}
    # When the baking period passes: all traffic moves, the final baking period starts
    clock.advance(300)
    assert shares() == {("challenger", "production"): 1.0}
    assert live(sm)["EndpointStatus"] == "Updating"
    # When the final baking period and the termination wait pass
    clock.advance(300 + 120)
    described = live(sm)
    # Then the endpoint runs the new config and remembers how it got there
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "challenger"
    assert "PendingDeploymentSummary" not in described
    assert described["LastDeploymentConfig"] == canary()
    assert described["DataCaptureConfig"]["CurrentSamplingPercentage"] == 50
    events = [e["event"] for e in shim.history(ACCOUNT, REGION, ENDPOINT)]
    assert events == [
        "created",
        "in-service",
        "update-started",
        "fleet-provisioned",
        "traffic-shifted",
        "traffic-shifted",
        "completed",
    ]


def test_linear_moves_traffic_in_steps(sm: Any) -> None:
    model_and_config(sm, "a")
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="a")
    model_and_config(sm, "b")
    linear = canary()
    linear["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] = {
        "Type": "LINEAR",
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 50},
        "WaitIntervalInSeconds": 60,
    }
    sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="b", DeploymentConfig=linear)
    assert shares() == {("a", "production"): 0.5, ("b", "production"): 0.5}
    clock.advance(60)
    assert shares() == {("b", "production"): 1.0}
    clock.advance(60 + 120)
    assert live(sm)["EndpointConfigName"] == "b"


def test_update_without_deployment_config_is_all_at_once(sm: Any) -> None:
    model_and_config(sm, "a")
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="a")
    model_and_config(sm, "b")
    sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="b")
    described = live(sm)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "b")


def test_alarm_during_bake_rolls_back_silently(sm: Any) -> None:
    # Given a canary in its baking period
    model_and_config(sm, "champion")
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="champion")
    model_and_config(sm, "broken")
    sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="broken", DeploymentConfig=canary())
    clock.advance(100)
    assert shares()[("broken", "production")] == pytest.approx(0.1)
    # When a rollback alarm goes to ALARM
    set_alarm("ALARM")
    # Then all traffic returns to the old fleet, and the endpoint is InService on its OLD config, no failure reason
    assert shares() == {("champion", "production"): 1.0}
    described = live(sm)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "champion")
    assert "FailureReason" not in described and "PendingDeploymentSummary" not in described
    (rollback,) = [e for e in shim.history(ACCOUNT, REGION, ENDPOINT) if e["event"] == "rolled-back"]
    assert rollback["abandoned"] == "broken" and ALARM in rollback["reason"]
    # And time passing afterwards changes nothing
    set_alarm("OK")
    clock.advance(10_000)
    assert live(sm)["EndpointConfigName"] == "champion"


def test_alarm_after_completion_does_not_roll_back(sm: Any) -> None:
    model_and_config(sm, "a")
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="a")
    model_and_config(sm, "b")
    sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="b", DeploymentConfig=canary())
    clock.advance(800)
    assert live(sm)["EndpointConfigName"] == "b"
    set_alarm("ALARM")
    assert live(sm)["EndpointConfigName"] == "b"


def test_execution_timeout_rolls_back(sm: Any) -> None:
    model_and_config(sm, "a")
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="a")
    model_and_config(sm, "b")
    sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="b", DeploymentConfig=canary(wait=600, timeout=900))
    clock.advance(1000)
    assert live(sm)["EndpointConfigName"] == "a"


@pytest.mark.parametrize(
    ("instances", "percent", "want"),
    [(2, 10, 0.5), (2, 50, 0.5), (4, 25, 0.25), (4, 30, 0.5), (10, 15, 0.2), (3, 33, 1 / 3)],
)
def test_a_canary_turns_on_whole_instances(sm: Any, instances: int, percent: int, want: float) -> None:
    # Given a fleet of ``instances`` / When a CAPACITY_PERCENT canary starts
    model_and_config(sm, "a", instances=instances)
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="a")
    model_and_config(sm, "b", instances=instances)
    sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="b", DeploymentConfig=canary(percent=percent))
    # Then its share is rounded up to whole instances: traffic follows the instances turned on
    assert shares()[("b", "production")] == pytest.approx(want, abs=1e-6)


def test_a_canary_on_a_single_instance_is_refused(sm: Any) -> None:
    # Given a one-instance fleet, where any canary is the whole fleet
    model_and_config(sm, "a", instances=1)
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="a")
    model_and_config(sm, "b", instances=1)
    # When a 10% canary is asked for / Then SageMaker's rule (at most half the instances) refuses it
    with pytest.raises(ClientError) as error:
        sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="b", DeploymentConfig=canary(percent=10))
    assert "50% of the variant's total instance count: 1 of 1" in error.value.response["Error"]["Message"]
    assert live(sm)["EndpointConfigName"] == "a" and live(sm)["EndpointStatus"] == "InService"


def test_a_retained_instance_count_sizes_the_canary(sm: Any) -> None:
    # Given a 10-instance config whose endpoint autoscaling keeps at 2 instances
    model_and_config(sm, "a")
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="a")
    sm.update_endpoint_weights_and_capacities(
        EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 2}]
    )
    model_and_config(sm, "b")
    # When the update keeps the variant's properties / Then a 10% canary is one of those 2 instances: half
    sm.update_endpoint(
        EndpointName=ENDPOINT, EndpointConfigName="b", DeploymentConfig=canary(), RetainAllVariantProperties=True
    )
    assert shares()[("b", "production")] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (canary(percent=60), "CanarySize must be less than or equal to 50%"),
        (
            {
                "RollingUpdatePolicy": {
                    "MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1},
                    "WaitIntervalInSeconds": 60,
                }
            },
            "RollingUpdatePolicy",
        ),
    ],
)
def test_invalid_deployment_configs_are_refused(sm: Any, config: dict[str, Any], message: str) -> None:
    model_and_config(sm, "a")
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="a")
    model_and_config(sm, "b")
    with pytest.raises(ClientError) as error:
        sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="b", DeploymentConfig=config)
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert message in error.value.response["Error"]["Message"]
    assert live(sm)["EndpointStatus"] == "InService"


def test_update_of_an_updating_endpoint_and_of_a_missing_config_are_refused(sm: Any) -> None:
    model_and_config(sm, "a")
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="a")
    model_and_config(sm, "b")
    with pytest.raises(ClientError, match="Could not find endpoint configuration"):
        sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="missing")
    sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="b", DeploymentConfig=canary())
    with pytest.raises(ClientError) as error:
        sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="a")
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert "Cannot update in-progress endpoint" in error.value.response["Error"]["Message"]


def test_blue_green_needs_the_same_variant_names(sm: Any) -> None:
    model_and_config(sm, "a")
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="a")
    sm.create_endpoint_config(
        EndpointConfigName="renamed",
        ProductionVariants=[
            {"VariantName": "Other", "ModelName": "a", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    with pytest.raises(ClientError, match="same variant names"):
        sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="renamed", DeploymentConfig=canary())


def test_instance_type_change_of_an_autoscaled_variant_is_refused(sm: Any) -> None:
    model_and_config(sm, "a")
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="a")
    boto3.client("application-autoscaling", region_name=REGION).register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=f"endpoint/{ENDPOINT}/variant/AllTraffic",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=1,
        MaxCapacity=4,
    )
    model_and_config(sm, "bigger", instance_type="ml.m5.xlarge")
    with pytest.raises(ClientError, match="registered for autoscaling"):
        sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="bigger")
    model_and_config(sm, "same-type")
    sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="same-type")  # a new model is allowed


# ---- provisioning: delays from the table, the fleet's ping before InService, failures at create/update -------

PING_FAILED = (
    "The primary container for production variant AllTraffic did not pass the ping health check. "
    "Please check CloudWatch logs for this endpoint."
)


class FleetCheck:
    """A stand-in for the data plane's container start + GET /ping: models named in ``broken`` fail, the rest
    pass; with ``hold`` the answer waits until ``release``."""

    def __init__(self, broken: tuple[str, ...] = (), hold: bool = False) -> None:
        self.broken, self.hold = broken, hold
        self.calls: list[tuple[str, list[tuple[str, str]]]] = []
        self.waiting: list[tuple[Future[str | None], str | None]] = []

    def __call__(self, endpoint: str, variants: list[tuple[str, str]]) -> Future[str | None]:
        self.calls.append((endpoint, variants))
        answer = PING_FAILED if any(model in self.broken for _, model in variants) else None
        future: Future[str | None] = Future()
        if self.hold:
            self.waiting.append((future, answer))
        else:
            future.set_result(answer)
        return future

    def release(self) -> None:
        for future, answer in self.waiting:
            future.set_result(answer)
        self.waiting.clear()


@pytest.fixture
def fleet_check() -> Iterator[FleetCheck]:
    check = FleetCheck(broken=("broken",))
    shim.set_fleet_check(check)
    yield check
    shim.set_fleet_check(None)


def test_the_default_provisioning_times_are_the_tables_typical_figures() -> None:
    from localcloud import durations

    # The local cloud's endpoints take the shared table's delays unless a test sets others explicitly
    times = shim.set_provisioning_times(shim.ProvisioningTimes.instant())
    shim.set_provisioning_times(times)
    assert times == shim.ProvisioningTimes.from_table()
    assert times.create == durations.typical(durations.ENDPOINT_CREATE) > 0
    assert times.update == durations.typical(durations.ENDPOINT_UPDATE_PROVISION) > 0


def test_creation_takes_the_provisioning_time_and_pings_the_fleet_first(
    provisioned: Any, fleet_check: FleetCheck
) -> None:
    times = shim.ProvisioningTimes.from_table()
    # Given a model and its config
    model_and_config(provisioned, "champion")
    # When the endpoint is created
    provisioned.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="champion")
    # Then its fleet's containers are started and pinged, and it is Creating (no traffic) until provisioned
    assert fleet_check.calls == [(ENDPOINT, [("AllTraffic", "champion")])]
    assert live(provisioned)["EndpointStatus"] == "Creating"
    assert shim.routes(ACCOUNT, REGION, ENDPOINT) == []
    clock.advance(times.create - 1)
    assert live(provisioned)["EndpointStatus"] == "Creating"
    # When the provisioning time has passed on the cloud clock
    clock.advance(1)
    # Then it is InService and serves
    assert live(provisioned)["EndpointStatus"] == "InService"
    assert shares() == {("champion", "production"): 1.0}
    assert [e["event"] for e in shim.history(ACCOUNT, REGION, ENDPOINT)] == ["created", "in-service"]


def test_a_container_still_starting_keeps_the_endpoint_creating(provisioned: Any) -> None:
    # Given a fleet whose containers have not answered their ping yet (a slow host)
    check = FleetCheck(hold=True)
    shim.set_fleet_check(check)
    try:
        model_and_config(provisioned, "champion")
        provisioned.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="champion")
        # When the provisioning time passes / Then it stays Creating: InService needs the ping
        clock.advance(shim.ProvisioningTimes.from_table().create + 60)
        assert live(provisioned)["EndpointStatus"] == "Creating"
        # When the ping answers 200 / Then it is InService
        check.release()
        assert live(provisioned)["EndpointStatus"] == "InService"
    finally:
        shim.set_fleet_check(None)


def test_an_update_does_not_time_out_while_the_local_containers_start_but_its_own_timeout_still_counts(
    provisioned: Any,
) -> None:
    times = shim.ProvisioningTimes.from_table()
    check = FleetCheck(hold=True)
    try:
        # Given a live endpoint and an update whose whole plan (10% canary, 10-minute bake and final bake, 2-minute
        # termination wait) fits its 30-minute MaximumExecutionTimeoutInSeconds after the table's provisioning
        model_and_config(provisioned, "a")
        provisioned.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="a")
        clock.advance(times.create)
        assert live(provisioned)["EndpointStatus"] == "InService"
        shim.set_fleet_check(check)
        model_and_config(provisioned, "b")
        provisioned.update_endpoint(
            EndpointName=ENDPOINT, EndpointConfigName="b", DeploymentConfig=canary(wait=600, timeout=1800)
        )
        # When the green fleet's local containers answer their ping an hour of cloud time late (a busy host at 240x)
        clock.advance(times.update + 3600)
        assert live(provisioned)["EndpointStatus"] == "Updating"
        check.release()
        # Then the update goes on from there and completes: the host's wait is not SageMaker's time
        clock.advance(1)
        assert 0 < shares()[("b", "production")] < 1  # the canary
        clock.advance(600 + 600 + 120)
        assert live(provisioned)["EndpointConfigName"] == "b"
        # And an update whose own plan overruns its timeout still rolls back at it, however late the ping came
        model_and_config(provisioned, "c")
        provisioned.update_endpoint(
            EndpointName=ENDPOINT, EndpointConfigName="c", DeploymentConfig=canary(wait=600, timeout=900)
        )
        clock.advance(times.update + 3600)
        check.release()
        clock.advance(1000)
        assert live(provisioned)["EndpointConfigName"] == "b"
        (rollback,) = [e for e in shim.history(ACCOUNT, REGION, ENDPOINT) if e["event"] == "rolling-back"]
        assert rollback["reason"] == "MaximumExecutionTimeoutInSeconds exceeded"
    finally:
        shim.set_fleet_check(None)


def test_a_model_that_does_not_load_fails_the_creation_with_sagemakers_reason(
    provisioned: Any, fleet_check: FleetCheck
) -> None:
    times = shim.ProvisioningTimes.from_table()
    # Given a model whose container does not pass its ping (model_fn raises, the archive is missing or corrupt)
    model_and_config(provisioned, "broken")
    # When the endpoint is created
    provisioned.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="broken")
    # Then it is Creating through the provisioning time and SageMaker's health-check window
    clock.advance(times.create + times.ping_failure - 1)
    assert live(provisioned)["EndpointStatus"] == "Creating"
    clock.advance(1)
    # And then Failed with the FailureReason SageMaker gives; it never serves, and only deletion is possible
    described = live(provisioned)
    assert (described["EndpointStatus"], described["FailureReason"]) == ("Failed", PING_FAILED)
    assert shim.routes(ACCOUNT, REGION, ENDPOINT) == []
    model_and_config(provisioned, "champion")
    with pytest.raises(ClientError) as error:
        provisioned.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="champion")
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert "Cannot update in-progress endpoint" in error.value.response["Error"]["Message"]
    provisioned.delete_endpoint(EndpointName=ENDPOINT)
    [failed] = [e for e in shim.history(ACCOUNT, REGION, ENDPOINT)] or [None]
    assert failed is None  # deleted: no history left


def test_an_update_provisions_the_green_fleet_before_any_traffic_shifts(
    provisioned: Any, fleet_check: FleetCheck
) -> None:
    times = shim.ProvisioningTimes.from_table()
    model_and_config(provisioned, "champion")
    provisioned.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="champion")
    clock.advance(times.create)
    model_and_config(provisioned, "challenger")
    # When a canary update starts
    provisioned.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="challenger", DeploymentConfig=canary())
    # Then the green fleet is provisioning: Updating, its variants Creating, all traffic still on the champion
    described = live(provisioned)
    assert described["EndpointStatus"] == "Updating"
    [variant] = described["PendingDeploymentSummary"]["ProductionVariants"]
    assert variant["VariantStatus"][0]["Status"] == "Creating"
    assert shares() == {("champion", "production"): 1.0}
    assert fleet_check.calls[-1] == (ENDPOINT, [("AllTraffic", "challenger")])
    # When the green fleet is up / Then the canary takes its share and bakes
    clock.advance(times.update)
    assert shares() == {("champion", "production"): 0.9, ("challenger", "production"): 0.1}
    assert live(provisioned)["PendingDeploymentSummary"]["ProductionVariants"][0]["VariantStatus"][0]["Status"] == (
        "Baking"
    )
    # And the rest of the timeline follows from there: bake, all traffic, final bake, termination wait
    clock.advance(300 + 300 + 120)
    assert (live(provisioned)["EndpointStatus"], live(provisioned)["EndpointConfigName"]) == ("InService", "challenger")


def test_a_green_fleet_that_does_not_load_rolls_back_through_rolling_back(
    provisioned: Any, fleet_check: FleetCheck
) -> None:
    times = shim.ProvisioningTimes.from_table()
    # Given the champion in service
    model_and_config(provisioned, "champion")
    provisioned.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="champion")
    clock.advance(times.create)
    model_and_config(provisioned, "broken")
    # When an update to a model whose container fails its ping starts
    provisioned.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="broken", DeploymentConfig=canary())
    statuses = [live(provisioned)["EndpointStatus"]]
    clock.advance(times.update + times.ping_failure)
    # Then the update fails before any traffic reaches it: RollingBack, the champion serving everything
    described = live(provisioned)
    statuses.append(described["EndpointStatus"])
    assert shares() == {("champion", "production"): 1.0}
    [variant] = described["PendingDeploymentSummary"]["ProductionVariants"]
    assert variant["VariantStatus"][0]["Status"] == "Deleting"
    # And once the green fleet is gone: InService on the OLD config, with the FailureReason SageMaker shows
    clock.advance(times.rollback)
    described = live(provisioned)
    statuses.append(described["EndpointStatus"])
    assert statuses == ["Updating", "RollingBack", "InService"]
    assert described["EndpointConfigName"] == "champion"
    assert described["FailureReason"] == PING_FAILED
    assert "PendingDeploymentSummary" not in described
    events = [e["event"] for e in shim.history(ACCOUNT, REGION, ENDPOINT)]
    assert events[-3:] == ["update-started", "rolling-back", "rolled-back"]
    # And the next update clears the FailureReason
    model_and_config(provisioned, "fixed")
    provisioned.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="fixed")
    assert "FailureReason" not in live(provisioned)


def test_an_alarm_rollback_passes_through_rolling_back_and_leaves_no_reason(
    provisioned: Any, fleet_check: FleetCheck
) -> None:
    times = shim.ProvisioningTimes.from_table()
    model_and_config(provisioned, "champion")
    provisioned.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="champion")
    clock.advance(times.create)
    model_and_config(provisioned, "challenger")
    provisioned.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="challenger", DeploymentConfig=canary())
    clock.advance(times.update + 60)
    # When a rollback alarm trips during the canary's bake
    set_alarm("ALARM")
    # Then traffic is back on the champion at once, the endpoint RollingBack, then InService with no reason
    assert shares() == {("champion", "production"): 1.0}
    assert live(provisioned)["EndpointStatus"] == "RollingBack"
    clock.advance(times.rollback)
    described = live(provisioned)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "champion")
    assert "FailureReason" not in described


# ---- shadow variants, duplicates, server mode ---------------------------------------------------------------


def test_shadow_variants_are_stored_described_and_routed(sm: Any) -> None:
    # Given the champion in production
    model_and_config(sm, "champion")
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="champion")
    # When a config with the challenger as shadow goes live
    model_and_config(sm, "challenger", shadow_of="champion")
    shadow = sm.describe_endpoint_config(EndpointConfigName="challenger")["ShadowProductionVariants"]
    assert [(v["VariantName"], v["ModelName"]) for v in shadow] == [("Shadow", "challenger")]
    sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="challenger")
    # Then the champion answers all traffic and the shadow gets a copy of every request
    described = live(sm)
    assert [v["VariantName"] for v in described["ShadowProductionVariants"]] == ["Shadow"]
    assert shares() == {("champion", "production"): 1.0, ("challenger", "shadow"): 1.0}


def test_shadow_variant_with_unknown_model_is_refused(sm: Any) -> None:
    model_and_config(sm, "a")
    with pytest.raises(ClientError, match="Could not find model"):
        sm.create_endpoint_config(
            EndpointConfigName="bad",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "a",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
            ShadowProductionVariants=[
                {"VariantName": "Shadow", "ModelName": "nope", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
            ],
        )
    with pytest.raises(ClientError, match="Could not find endpoint configuration"):
        sm.describe_endpoint_config(EndpointConfigName="bad")


@pytest.mark.parametrize("kind", ["model", "endpoint configuration", "endpoint"])
def test_creating_under_an_existing_name_is_refused_as_in_aws(sm: Any, kind: str) -> None:
    model_and_config(sm, "a")
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="a")
    calls = {
        "model": lambda: model_and_config(sm, "a"),
        "endpoint configuration": lambda: sm.create_endpoint_config(
            EndpointConfigName="a",
            ProductionVariants=[
                {"VariantName": "X", "ModelName": "a", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
            ],
        ),
        "endpoint": lambda: sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="a"),
    }
    with pytest.raises(ClientError) as error:
        calls[kind]()
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert f"Cannot create already existing {kind}" in error.value.response["Error"]["Message"]


def test_routes_of_a_missing_endpoint_raise(sm: Any) -> None:
    with pytest.raises(shim.EndpointNotFound, match="nope"):
        shim.routes(ACCOUNT, REGION, "nope")


def test_update_endpoint_works_through_the_moto_server() -> None:
    # Given the shim and a moto server (the local cloud's mode: Lambdas call it over HTTP)
    shim.install()
    clock.reset()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = boto3.client("sagemaker", region_name=REGION, endpoint_url=f"http://{host}:{port}")
        model_and_config(client, "a")
        client.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="a", DeploymentConfig=canary())
        times = shim.ProvisioningTimes.from_table()
        assert client.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "Creating"
        clock.advance(times.create)
        model_and_config(client, "b")
        # When an update goes through HTTP and its green fleet is provisioned
        client.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="b", DeploymentConfig=canary(percent=20))
        clock.advance(times.update)
        # Then describe (over HTTP) and routes (in-process) see the same deployment
        assert client.describe_endpoint(EndpointName=ENDPOINT)["PendingDeploymentSummary"]["EndpointConfigName"] == "b"
        assert {r.model_name: round(r.weight, 6) for r in shim.routes(ACCOUNT, REGION, ENDPOINT)} == {
            "a": 0.8,
            "b": 0.2,
        }
    finally:
        server.stop()
        clock.reset()
