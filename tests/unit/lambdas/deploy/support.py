"""Helpers of the deployment tests: the deploy steps under moto + the endpoint shim, on the local clock.

``run_deployment`` walks the steps in the order of the deployment state machine (stacks/constructs/serving.py;
tests/infrastructure/test_registry_and_serving.py pins that graph): prepare -> rollout -> check (wait loop)
[-> shadow bake -> compare_shadow -> check ...] -> verify, and on a failure: explain_failure. Waits advance the
clock instead of sleeping.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from lambdas.deploy.logic import Clients, Deployer, DeploymentError, DeploySettings
from lambdas.deploy.models import DeploymentState, ServingConfig
from localcloud.clock import clock
from stacks.config import ServingSettings

ACCOUNT, REGION = "123456789012", "us-east-1"
PREFIX = "mlops-dev"  # the dev stage: churn's names match the platform document the handler reads
ENDPOINT = f"{PREFIX}-churn"
GROUP = f"{PREFIX}-churn"
ARTIFACTS = "artifacts-bucket"
ALARMS = (f"{ENDPOINT}-rollback-5xx", f"{ENDPOINT}-rollback-model-latency", f"{ENDPOINT}-rollback-model-errors")
GOLDEN_ROWS = [[42, 3, 70.5, "month-to-month"], [7, 1, 20.0, "two-year"]]


def answer(model_version: str, probabilities: list[float]) -> dict[str, Any]:
    """What the inference handler answers (pipelines/inference/inference.py) for a binary model."""
    return {"model_version": model_version, "predictions": binary_predictions(probabilities)}


def binary_predictions(probabilities: list[float]) -> list[dict[str, Any]]:
    return [{"probability": p, "label": int(p >= 0.5)} for p in probabilities]


@dataclass
class Cloud:
    """The moto account the deploy steps run against."""

    sm: Any
    s3: Any
    cloudwatch: Any
    autoscaling: Any

    def register(
        self,
        version: int,
        *,
        expected: list[float] | None = None,
        status: str = "Approved",
        group: str = GROUP,
        task: str = "binary",
        predictions: list[dict[str, Any]] | None = None,
    ) -> str:
        """A package version (of ``group``) with golden payloads (evaluate.golden_payload's shape): a binary model
        whose expected probabilities are ``expected``, or ``predictions`` of ``task`` (the shadow comparison reads
        the task from them)."""
        evaluation = f"s3://{ARTIFACTS}/evaluations/exec-{version}/"
        predictions = predictions or binary_predictions(expected or [0.8, 0.1])
        golden: dict[str, Any] = {
            "body": {"instances": GOLDEN_ROWS},
            "content_type": "application/json",
            "accept": "application/json",
            "model_version": f"v{version}",
            "tolerance": 1e-6,
            "task": task,
            "predictions": predictions,
        }
        self.s3.put_object(Bucket=ARTIFACTS, Key=f"evaluations/exec-{version}/golden.json", Body=json.dumps(golden))
        arn = self.sm.create_model_package(
            ModelPackageGroupName=group,
            ModelApprovalStatus=status,
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3",
                        "ModelDataUrl": f"s3://{ARTIFACTS}/models/train-{version}/output/model.tar.gz",
                        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
                    }
                ],
                "SupportedContentTypes": ["text/csv", "application/json"],
                "SupportedResponseMIMETypes": ["application/json", "text/csv"],
            },
            CustomerMetadataProperties={"evaluation_uri": evaluation, "model_version": f"v{version}"},
        )["ModelPackageArn"]
        return str(arn)

    def endpoint(self) -> dict[str, Any]:
        return dict(self.sm.describe_endpoint(EndpointName=ENDPOINT))

    def set_alarm(self, name: str, state: str) -> None:
        self.cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")


def serving(**overrides: Any) -> ServingConfig:
    return ServingConfig.model_validate(asdict(replace(ServingSettings(), **overrides)))


def deployer(cloud: Cloud, **overrides: Any) -> Deployer:
    settings = DeploySettings(
        endpoint_name=ENDPOINT,
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/endpoint",
        resource_prefix=PREFIX,
        model_package_group=GROUP,
        data_capture_uri=f"s3://{ARTIFACTS}/data-capture",
        kms_key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234",
        serving=serving(**overrides),
        rollback_alarms=ALARMS,
    )
    clients = Clients(
        sagemaker=cloud.sm,
        s3=cloud.s3,
        cloudwatch=cloud.cloudwatch,
        autoscaling=cloud.autoscaling,
        now=clock.now,
    )
    return Deployer(settings, clients)


@dataclass
class Run:
    state: dict[str, Any]
    error: DeploymentError | None = None
    checks: int = 0


def run_deployment(
    steps: Deployer,
    package_arn: str,
    *,
    during_rollout: Callable[[dict[str, Any]], None] | None = None,
    during_bake: Callable[[dict[str, Any]], None] | None = None,
    execution: str = "deploy-exec",
    trigger: str | dict[str, Any] = "approval",
) -> Run:
    """The deployment state machine's path through the steps; a DeploymentError goes to explain_failure."""
    run = Run(state={"model_package_arn": package_arn, "trigger": trigger})

    def step(action: str, path: str) -> dict[str, Any]:
        run.state[path] = steps.handle(action, execution, DeploymentState.model_validate(run.state))
        return dict(run.state[path])

    try:
        step("prepare", "deploy")
        rollout = step("rollout", "rollout")
        while rollout["status"] != "Done":
            if rollout["status"] == "InProgress":
                if during_rollout:
                    during_rollout(rollout)
                clock.advance(rollout["poll_seconds"])
                run.checks += 1
                rollout = step("check", "rollout")
            else:  # ShadowBaking
                if during_bake:
                    during_bake(rollout)
                clock.advance(rollout["bake_seconds"])
                rollout = step("compare_shadow", "rollout")
        step("verify", "verified")
    except DeploymentError as error:
        run.error = error
        cause = {"errorMessage": str(error), "errorType": type(error).__name__}
        run.state["error"] = {"Error": type(error).__name__, "Cause": json.dumps(cause)}
        step("explain_failure", "failure")
    return run
