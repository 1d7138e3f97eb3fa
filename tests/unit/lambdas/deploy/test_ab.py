"""AB: after the smoke test (in the evaluation job) the challenger becomes a second production variant with the
declared share, through an UpdateEndpoint without a DeploymentConfig (blue/green keeps variant names); the deploy
Lambda records the experiment for the evaluator."""

from __future__ import annotations

import json

from lambdas.experiment.models import ExperimentRecord
from localcloud.shims import sagemaker_endpoints as shim
from tests.unit.lambdas.deploy.support import ACCOUNT, ARTIFACTS, ENDPOINT, REGION, Cloud, run_deployment
from tests.unit.lambdas.experiment.support import ab_deployer, start_experiment


def test_the_challenger_becomes_a_second_production_variant_with_its_share(cloud: Cloud) -> None:
    # Given v1 serving, When v2 is approved with strategy AB
    state = start_experiment(cloud, challenger_share=0.25)
    # Then the endpoint runs the two-variant config: the champion with 75%, v2 with 25% on its own instance
    live = cloud.endpoint()
    assert live["EndpointConfigName"] == f"{ENDPOINT}-v2-ab" == state["deploy"]["experiment_config_name"]
    config = cloud.sm.describe_endpoint_config(EndpointConfigName=f"{ENDPOINT}-v2-ab")
    variants = {v["VariantName"]: v for v in config["ProductionVariants"]}
    assert (variants["AllTraffic"]["ModelName"], variants["AllTraffic"]["InitialVariantWeight"]) == (
        f"{ENDPOINT}-v1",
        0.75,
    )
    challenger = variants["Challenger"]
    assert (challenger["ModelName"], challenger["InitialVariantWeight"], challenger["InitialInstanceCount"]) == (
        f"{ENDPOINT}-v2",
        0.25,
        1,
    )
    assert config["DataCaptureConfig"]["EnableCapture"] is True  # both variants' answers are captured
    routes = {r.variant_name: round(r.weight, 6) for r in shim.routes(ACCOUNT, REGION, ENDPOINT)}
    assert routes == {"AllTraffic": 0.75, "Challenger": 0.25}
    # And the update carried no blue/green DeploymentConfig (SageMaker refuses one that changes the variants)
    assert state["rollout"]["phase"] == "experiment" and state["rollout"]["deployment_config"] is None
    # And the notification says it started, and how a client pins a variant
    verified = state["verified"]
    assert verified["outcome"] == "experiment_started"
    assert "serves 25% of requests as variant Challenger" in verified["message"]
    assert "TargetVariant" in verified["message"]
    # And autoscaling is the champion variant's only
    assert [s["resource_id"] for s in verified["autoscaling"]] == [f"endpoint/{ENDPOINT}/variant/AllTraffic"]
    # And the evaluator finds the experiment's record: its start, design and both sides' single-variant configs
    key = f"monitoring/experiments/churn/{ENDPOINT}-v2-ab/experiment.json"
    record = ExperimentRecord.model_validate(json.loads(cloud.s3.get_object(Bucket=ARTIFACTS, Key=key)["Body"].read()))
    assert (record.outcome, record.design.challenger_share, record.looks) == ("correct", 0.25, [])
    assert (record.champion.endpoint_config_name, record.challenger.endpoint_config_name) == (
        f"{ENDPOINT}-v1",
        f"{ENDPOINT}-v2",
    )
    assert record.challenger.model_package_arn.endswith("/2") and record.challenger.model_version == "v2"


def test_a_retried_verify_keeps_the_record_of_the_running_experiment(cloud: Cloud) -> None:
    start_experiment(cloud)
    key = f"monitoring/experiments/churn/{ENDPOINT}-v2-ab/experiment.json"
    first = cloud.s3.get_object(Bucket=ARTIFACTS, Key=key)["Body"].read()
    # the same deployment again (a retried execution): nothing changes, the record is not rewritten
    again = run_deployment(ab_deployer(cloud), _arn(2))
    assert again.error is None and again.state["rollout"]["phase"] == "experiment"
    assert cloud.s3.get_object(Bucket=ARTIFACTS, Key=key)["Body"].read() == first


def _arn(version: int) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/mlops-dev-churn/{version}"


def test_another_challenger_waits_for_the_running_experiment_to_end(cloud: Cloud) -> None:
    # Given v2 in an experiment next to v1
    start_experiment(cloud)
    # When v3 is approved with strategy AB
    run = run_deployment(ab_deployer(cloud), cloud.register(3))
    # Then its deployment fails with the reason, and the experiment keeps running untouched
    assert run.error is not None and "an A/B experiment runs on" in str(run.error)
    assert cloud.endpoint()["EndpointConfigName"] == f"{ENDPOINT}-v2-ab"
