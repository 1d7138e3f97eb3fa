"""The deployment steps: prepare, guarded rollout, shadow comparison, verify, explain a failure.

Every step is safe to run twice (Step Functions retries a Lambda on transient errors): resources have
deterministic names per package version and a step first looks at what already exists.

- ``prepare``: the approved package -> a Model and a production EndpointConfig (data capture, KMS) and, for
  SHADOW with a live champion, a config with the champion in production and the new model as a shadow variant.
  The golden-payload smoke test is not a deployment step: the evaluation job ran it on the image's own serving
  stack before the package was registered (``pipelines/evaluation/smoke.py``); a package without a passed smoke
  test is never registered. What only a real endpoint shows is the canary's guard (auto-rollback).
- ``rollout`` / ``check``: create the endpoint (first deploy) or update it with SageMaker deployment guardrails
  (blue/green CANARY / LINEAR / ALL_AT_ONCE with auto-rollback on the guardrail alarms); SHADOW puts the new
  model next to the champion first.
- ``compare_shadow``: after the bake, shadow vs production from CloudWatch (invocations, errors, latency) and data
  capture (the answers to the same requests: label agreement for classification, relative error of the values for
  regression); promote (a normal update) only if the shadow is not worse, otherwise put the champion-only config
  back and fail with the comparison.
- ``verify``: the endpoint really runs the requested config and variants (back on the previous config after an
  update = a silent rollback: fail), then register autoscaling on invocations per instance.
- ``explain_failure``: subject / message / reason for the failure notification.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lambdas.deploy.comparison import (
    PairStatistics,
    answer_reasons,
    golden_task,
    index_captures,
    pair_statistics,
    paired_answers,
)
from lambdas.deploy.models import (
    Champion,
    Comparison,
    DeploymentState,
    ExperimentConfig,
    Prepared,
    Rollout,
    ServingConfig,
)
from lambdas.experiment.models import CHALLENGER_VARIANT, RECORD_FILE, ExperimentRecord, Side
from lambdas.shared.network import model_network
from pipelines.experiments.outcomes import DEFAULT_OUTCOMES
from pipelines.platform import experiment_prefix
from pipelines.schema import DatasetSchema

logger = logging.getLogger(__name__)

NAME_LIMIT = 63
SHADOW_VARIANT = "Shadow"
EXPERIMENT_SUFFIX = "-ab"
PROVISIONING_ALLOWANCE_SECONDS = 900  # a new fleet takes minutes to come up before traffic shifts
IN_FLIGHT = ("Creating", "Updating", "SystemUpdating", "RollingBack")
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
GOLDEN_FILE = "golden.json"
MAX_CAPTURE_OBJECTS = 500  # per variant and comparison


def traffic_steps(strategy: str, canary_percent: int, linear_step_percent: int, instances: int) -> list[int]:
    """Instances serving the new model after each traffic step of a blue/green update on a fleet of ``instances``
    (traffic follows the instances turned on); ALL_AT_ONCE is one step of the whole fleet."""
    if strategy == "CANARY":
        return [traffic_batch_instances(canary_percent, instances), instances]
    if strategy == "LINEAR":
        batch = traffic_batch_instances(linear_step_percent, instances)
        return [min(instances, batch * i) for i in range(1, math.ceil(instances / batch) + 1)]
    return [instances]


def rollout_poll_seconds(bake_time_seconds: int) -> int:
    """How long the deployment state machine waits between two looks at a rollout: a fifth of the bake, 10-60 s
    (the traffic shifts on SageMaker's schedule; the poll only delays when the state machine notices)."""
    return max(10, min(60, bake_time_seconds // 5))


# ---- errors (the Lambda's errorType is the class name; the failure path reads it) -----------------------


class DeploymentError(Exception):
    """Base of every deployment failure."""


class PackageNotDeployable(DeploymentError):
    """The package is not approved, not in our group, or lacks what the deployment needs."""


class DeploymentConflict(DeploymentError):
    """A resource under our deterministic name exists with different content, or another update is running."""


class EndpointFailed(DeploymentError):
    """SageMaker reports the endpoint Failed / UpdateRollbackFailed."""


class SilentRollback(DeploymentError):
    """The update ended with the endpoint back on its previous config (deployment guardrails rolled it back)."""


class ShadowNotPromoted(DeploymentError):
    """The shadow model was worse than (or not proven against) the champion."""


class FleetTooSmall(DeploymentError):
    """The live variant has too few instances for the stage's traffic shifting (SageMaker would refuse it)."""


def traffic_batch_instances(percent: int, instances: int) -> int:
    """Instances a ``CAPACITY_PERCENT`` traffic batch turns on: rounded up, at least one (twin of
    ``stacks.config.traffic_batch_instances``: the Lambda asset cannot import ``stacks``; a test keeps them equal)."""
    return max(1, math.ceil(percent * instances / 100))


OUTCOMES = {
    "SilentRollback": "rolled_back",
    "ShadowNotPromoted": "shadow_rejected",
    "States.Timeout": "timed_out",
}


# ---- settings and clients ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeploySettings:
    endpoint_name: str
    role_arn: str
    resource_prefix: str
    model_package_group: str
    data_capture_uri: str  # s3://<artifacts>/data-capture: SageMaker appends <endpoint>/<variant>/yyyy/mm/dd/hh/
    kms_key_arn: str
    serving: ServingConfig
    rollback_alarms: tuple[str, ...]
    dataset: str = ""  # the declared dataset this deployer serves (notifications name it)
    schema: DatasetSchema | None = None  # its declaration (the task: what a prediction looks like)
    model_subnets: tuple[str, ...] = ()  # a private stage's models: VpcConfig and network isolation
    model_security_groups: tuple[str, ...] = ()


@dataclass
class Clients:
    sagemaker: Any
    s3: Any
    cloudwatch: Any
    autoscaling: Any
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def error_message(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Message", "")) or str(error)


def _not_found(error: Exception) -> bool:
    return error_code(error) in ("ValidationException", "ResourceNotFound") and (
        "Could not find" in error_message(error) or "does not exist" in error_message(error)
    )


def resource_name(base: str, suffix: str = "") -> str:
    """A SageMaker name (<= 63 chars of [a-zA-Z0-9-]) ending with ``suffix``."""
    clean = re.sub(r"[^a-zA-Z0-9-]", "-", base).strip("-")
    return f"{clean[: NAME_LIMIT - len(suffix)].rstrip('-')}{suffix}"


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise PackageNotDeployable(f"not an S3 URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# ---- the steps -------------------------------------------------------------------------------------------


class Deployer:
    def __init__(self, settings: DeploySettings, clients: Clients) -> None:
        self.settings = settings
        self.serving = settings.serving
        self.clients = clients
        self.sm = clients.sagemaker

    @property
    def _dataset_label(self) -> str:
        """``<dataset>: `` in front of a notification subject (nothing for a deployer without a dataset)."""
        return f"{self.settings.dataset}: " if self.settings.dataset else ""

    @property
    def _of_dataset(self) -> str:
        return f" of dataset {self.settings.dataset}" if self.settings.dataset else ""

    def handle(self, action: str, execution: str, state: DeploymentState) -> dict[str, Any]:
        """The one entry point of the handler."""
        steps: dict[str, Callable[[DeploymentState], Any]] = {
            "prepare": self.prepare,
            "rollout": self.rollout,
            "check": self.check,
            "compare_shadow": self.compare_shadow,
            "verify": lambda s: self.verify(s, execution),
            "explain_failure": lambda s: self.explain_failure(execution, s),
        }
        result = steps[action](state)
        return result if isinstance(result, dict) else result.model_dump(mode="json")

    # ---- prepare -------------------------------------------------------------------------------------------

    def prepare(self, state: DeploymentState) -> Prepared:
        arn = state.model_package_arn
        package = self.sm.describe_model_package(ModelPackageName=arn)
        status = package.get("ModelApprovalStatus")
        if status != "Approved":
            raise PackageNotDeployable(f"model package {arn} is {status}, not Approved")
        group = package.get("ModelPackageGroupName")
        if group != self.settings.model_package_group:
            raise PackageNotDeployable(
                f"model package {arn} belongs to group {group!r}, not {self.settings.model_package_group!r}"
            )
        version = int(package["ModelPackageVersion"])
        metadata = package.get("CustomerMetadataProperties") or {}
        evaluation_uri = metadata.get("evaluation_uri")
        if not evaluation_uri:
            raise PackageNotDeployable(
                f"model package {arn} has no evaluation_uri in its CustomerMetadataProperties: "
                "no evaluation report nor golden payloads"
            )
        containers = (package.get("InferenceSpecification") or {}).get("Containers") or []
        if not containers or not containers[0].get("Image") or not containers[0].get("ModelDataUrl"):
            raise PackageNotDeployable(f"model package {arn} has no inference container with Image and ModelDataUrl")
        model_version = str(metadata.get("model_version") or f"v{version}")
        endpoint = self.settings.endpoint_name
        base = f"{endpoint}-v{version}"
        model_name = resource_name(base)
        self._ensure_model(model_name, containers[0], arn, model_version)
        config_name = resource_name(base)
        self._ensure_config(config_name, [self._variant(model_name, self.serving.initial_instance_count)], capture=True)
        champion = self._champion()
        shadow_config = None
        if self.serving.strategy == "SHADOW" and champion and champion.endpoint_config_name != config_name:
            shadow_config = resource_name(base, "-shadow")
            production = self._production_variants(champion.endpoint_config_name)
            shadow = {**self._variant(model_name, self.serving.initial_instance_count), "VariantName": SHADOW_VARIANT}
            self._ensure_config(shadow_config, production, capture=True, shadows=[shadow])
        experiment_config = None
        if self.serving.strategy == "AB" and champion and champion.endpoint_config_name != config_name:
            experiment_config = resource_name(base, EXPERIMENT_SUFFIX)
            self._ensure_config(experiment_config, self._experiment_variants(champion, model_name), capture=True)
        golden_uri = evaluation_uri.rstrip("/")
        golden_uri = golden_uri.rsplit("/", 1)[0] if golden_uri.endswith(".json") else golden_uri
        return Prepared(
            model_package_arn=arn,
            package_version=version,
            model_version=model_version,
            model_name=model_name,
            endpoint_name=endpoint,
            endpoint_config_name=config_name,
            shadow_config_name=shadow_config,
            shadow_variant_name=SHADOW_VARIANT if shadow_config else None,
            experiment_config_name=experiment_config,
            challenger_variant_name=CHALLENGER_VARIANT if experiment_config else None,
            strategy=self.serving.strategy,
            golden_uri=f"{golden_uri}/{GOLDEN_FILE}",
            champion=champion,
        )

    def _experiment_variants(self, champion: Champion, model_name: str) -> list[dict[str, Any]]:
        """An A/B experiment's production variants: the champion's serving variant with ``1 - share`` of the
        weight, and the challenger as a second production variant with ``share`` (SageMaker routes each request
        by weight; a client's ``TargetVariant`` pins one)."""
        ab = self._ab()
        live = self._production_variants(champion.endpoint_config_name)
        running = any(v["VariantName"] == CHALLENGER_VARIANT for v in live)
        if running and champion.endpoint_config_name != resource_name(f"{model_name}", EXPERIMENT_SUFFIX):
            raise DeploymentConflict(
                f"an A/B experiment runs on {self.settings.endpoint_name} ({champion.endpoint_config_name}): it must "
                f"end (the evaluator promotes or stops its challenger) before model {model_name} can enter one"
            )
        main = [v for v in live if v["VariantName"] == self.serving.variant_name]
        if not main:
            raise DeploymentConflict(
                f"endpoint config {champion.endpoint_config_name} has no variant {self.serving.variant_name}"
            )
        challenger = {
            **self._variant(model_name, ab.challenger_instance_count),
            "VariantName": CHALLENGER_VARIANT,
            "InitialVariantWeight": ab.challenger_share,
        }
        return [{**main[0], "InitialVariantWeight": round(1 - ab.challenger_share, 6)}, challenger]

    def _ab(self) -> ExperimentConfig:
        if self.serving.ab is None:
            raise DeploymentError("strategy AB needs the serving settings' ab section (stacks.config.ABSettings)")
        return self.serving.ab

    def _variant(self, model_name: str, instances: int) -> dict[str, Any]:
        return {
            "VariantName": self.serving.variant_name,
            "ModelName": model_name,
            "InitialInstanceCount": instances,
            "InstanceType": self.serving.instance_type,
            "InitialVariantWeight": 1.0,
        }

    def _ensure_model(self, name: str, container: dict[str, Any], arn: str, model_version: str) -> None:
        try:
            existing = self.sm.describe_model(ModelName=name)
        except Exception as error:
            if not _not_found(error):
                raise
        else:
            url = (existing.get("PrimaryContainer") or {}).get("ModelDataUrl")
            if url != container["ModelDataUrl"]:
                raise DeploymentConflict(f"model {name} exists with artifacts {url}, not {container['ModelDataUrl']}")
            return
        primary = {"Image": container["Image"], "ModelDataUrl": container["ModelDataUrl"]}
        if container.get("Environment"):
            primary["Environment"] = dict(container["Environment"])
        self.sm.create_model(
            ModelName=name,
            ExecutionRoleArn=self.settings.role_arn,
            PrimaryContainer=primary,
            **model_network(self.settings.model_subnets, self.settings.model_security_groups),
            Tags=[
                {"Key": "model-package-arn", "Value": arn[-256:]},
                {"Key": "model-version", "Value": model_version[:256]},
            ],
        )

    def _ensure_config(
        self,
        name: str,
        variants: list[dict[str, Any]],
        *,
        capture: bool,
        shadows: list[dict[str, Any]] | None = None,
    ) -> None:
        try:
            existing = self.sm.describe_endpoint_config(EndpointConfigName=name)
        except Exception as error:
            if not _not_found(error):
                raise
        else:
            wanted = sorted((v["VariantName"], v["ModelName"]) for v in variants + (shadows or []))
            found = sorted(
                (v["VariantName"], v["ModelName"])
                for v in existing.get("ProductionVariants", []) + existing.get("ShadowProductionVariants", [])
            )
            if wanted != found:
                raise DeploymentConflict(f"endpoint config {name} exists with variants {found}, not {wanted}")
            return
        request: dict[str, Any] = {
            "EndpointConfigName": name,
            "ProductionVariants": variants,
            "KmsKeyId": self.settings.kms_key_arn,
        }
        if shadows:
            request["ShadowProductionVariants"] = shadows
        if capture:
            request["DataCaptureConfig"] = {
                "EnableCapture": True,
                "InitialSamplingPercentage": self.serving.data_capture_percent,
                "DestinationS3Uri": self.settings.data_capture_uri,
                "KmsKeyId": self.settings.kms_key_arn,
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                "CaptureContentTypeHeader": {
                    "CsvContentTypes": ["text/csv"],
                    "JsonContentTypes": ["application/json"],
                },
            }
        self.sm.create_endpoint_config(**request)

    def _describe_endpoint(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.sm.describe_endpoint(EndpointName=name))
        except Exception as error:
            if _not_found(error):
                return None
            raise

    def _production_variants(self, config_name: str) -> list[dict[str, Any]]:
        config = self.sm.describe_endpoint_config(EndpointConfigName=config_name)
        keep = ("VariantName", "ModelName", "InitialInstanceCount", "InstanceType", "InitialVariantWeight")
        return [{k: v[k] for k in keep if k in v} for v in config["ProductionVariants"]]

    def _champion(self) -> Champion | None:
        live = self._describe_endpoint(self.settings.endpoint_name)
        if live is None:
            return None
        variants = self._production_variants(live["EndpointConfigName"])
        main = next((v for v in variants if v["VariantName"] == self.serving.variant_name), variants[0])
        return Champion(endpoint_config_name=live["EndpointConfigName"], model_name=main["ModelName"])

    # ---- golden payloads (the dataset's task, for the shadow comparison) ----------------------------------

    def _golden(self, uri: str) -> dict[str, Any]:
        bucket, key = split_s3_uri(uri)
        try:
            text = self.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as error:
            raise PackageNotDeployable(f"cannot read the golden payloads {uri}: {error_message(error)}") from None
        golden = json.loads(text)
        if not isinstance(golden, dict):
            raise PackageNotDeployable(f"{uri} is not a golden payload file (docs/contracts.md)")
        return dict(golden)

    # ---- rollout -------------------------------------------------------------------------------------------

    def _poll_seconds(self) -> int:
        return rollout_poll_seconds(self.serving.bake_time_seconds)

    def deployment_config(self, strategy: str) -> dict[str, Any]:
        """DeploymentConfig of an update: blue/green with the stage's traffic shifting and auto-rollback."""
        s = self.serving
        bake = s.bake_time_seconds
        routing: dict[str, Any] = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": bake}
        steps = 1
        if strategy == "CANARY":
            routing = {
                "Type": "CANARY",
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": s.canary_percent},
                "WaitIntervalInSeconds": bake,
            }
            steps = 2
        elif strategy == "LINEAR":
            routing = {
                "Type": "LINEAR",
                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": s.linear_step_percent},
                "WaitIntervalInSeconds": bake,
            }
            steps = math.ceil(100 / s.linear_step_percent)
        elif strategy == "SHADOW":  # the shadow phase: production keeps the champion model, no traffic to bake
            routing = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
            steps, bake = 1, 0
        needed = steps * bake + s.termination_wait_seconds + PROVISIONING_ALLOWANCE_SECONDS
        timeout = min(28800, max(s.max_execution_timeout_seconds, needed))
        if timeout > s.max_execution_timeout_seconds:
            logger.warning(
                "max_execution_timeout_seconds %s is shorter than the rollout needs; using %s",
                s.max_execution_timeout_seconds,
                timeout,
            )
        config: dict[str, Any] = {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": routing,
                "TerminationWaitInSeconds": s.termination_wait_seconds,
                "MaximumExecutionTimeoutInSeconds": timeout,
            }
        }
        if self.settings.rollback_alarms:
            config["AutoRollbackConfiguration"] = {
                "Alarms": [{"AlarmName": name} for name in self.settings.rollback_alarms]
            }
        return config

    def traffic_plan(self, strategy: str, instances: int) -> str:
        """What the new model's traffic share will be, step by step, on a fleet of ``instances`` (traffic follows
        the instances turned on); raises ``FleetTooSmall`` where SageMaker would refuse the strategy."""
        s = self.serving
        if strategy not in ("CANARY", "LINEAR"):
            return f"all at once on {instances} instance(s)"
        steps = traffic_steps(strategy, s.canary_percent, s.linear_step_percent, instances)
        if 2 * steps[0] > instances:  # a first step over half the fleet (every step on a 1-instance fleet)
            raise FleetTooSmall(
                f"{strategy} on {instances} instance(s) would turn on {steps[0]} at first, over the half of the "
                f"variant SageMaker allows: run at least 2 instances (serving min_capacity) or use ALL_AT_ONCE"
            )
        return " -> ".join(f"{n}/{instances} instances ({100 * n // instances}%)" for n in steps)

    def rollout(self, state: DeploymentState) -> Rollout:
        prepared = _prepared(state)
        endpoint = prepared.endpoint_name
        live = self._describe_endpoint(endpoint)
        if live is None:
            self.sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=prepared.endpoint_config_name)
            return self._status("create", prepared.endpoint_config_name, None, None)
        if prepared.shadow_config_name and live["EndpointConfigName"] != prepared.endpoint_config_name:
            return self._update("shadow", prepared.shadow_config_name, live, "SHADOW")
        if prepared.experiment_config_name:
            return self._start_experiment(prepared.experiment_config_name, live)
        strategy = "ALL_AT_ONCE" if prepared.strategy == "SHADOW" else prepared.strategy
        return self._update("update", prepared.endpoint_config_name, live, strategy)

    def _update(self, phase: str, target: str, live: dict[str, Any], strategy: str) -> Rollout:
        endpoint = live["EndpointName"]
        status, current = live["EndpointStatus"], live["EndpointConfigName"]
        pending = (live.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
        if status in IN_FLIGHT:
            if pending == target:  # this step already ran (a retried invocation): keep watching it
                return self._status(phase, target, current, live)
            raise DeploymentConflict(
                f"endpoint {endpoint} is {status} (to {pending or 'an unknown config'}): another deployment is "
                f"running, {target} was not started"
            )
        if status != "InService":
            raise EndpointFailed(f"endpoint {endpoint} is {status}: {live.get('FailureReason') or 'no reason given'}")
        if current == target:
            return self._status(phase, target, current, live)
        config = self.deployment_config(strategy)
        instances = sum(
            int(v.get("CurrentInstanceCount") or v.get("DesiredInstanceCount") or 0)
            for v in live.get("ProductionVariants", [])
            if v.get("VariantName") == self.serving.variant_name
        )
        plan = self.traffic_plan(strategy, instances)
        logger.info("traffic shifting of %s", target, extra={"plan": plan})
        self.sm.update_endpoint(
            EndpointName=endpoint,
            EndpointConfigName=target,
            RetainAllVariantProperties=True,  # keep the instance count autoscaling chose
            ExcludeRetainedVariantProperties=[{"VariantPropertyType": "DataCaptureConfig"}],
            DeploymentConfig=config,
        )
        rollout = self._status(phase, target, current, None)
        return rollout.model_copy(update={"deployment_config": config, "traffic_plan": plan})

    def _start_experiment(self, target: str, live: dict[str, Any]) -> Rollout:
        """UpdateEndpoint to the two-variant config with no DeploymentConfig: SageMaker's blue/green deployments
        (and their guardrails) need the new config to keep the old one's variant names
        (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html), and this one
        adds a variant. The update is SageMaker's default one (the new fleet comes up, then takes the traffic);
        the variant weights are the config's (RetainAllVariantProperties false), so the share is the declared
        one. The guardrail alarms keep watching the champion's variant; the evaluator watches the challenger's."""
        endpoint = live["EndpointName"]
        status, current = live["EndpointStatus"], live["EndpointConfigName"]
        pending = (live.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
        if status in IN_FLIGHT:
            if pending == target:
                return self._status("experiment", target, current, live)
            raise DeploymentConflict(
                f"endpoint {endpoint} is {status} (to {pending or 'an unknown config'}): another deployment is "
                f"running, the experiment {target} was not started"
            )
        if status != "InService":
            raise EndpointFailed(f"endpoint {endpoint} is {status}: {live.get('FailureReason') or 'no reason given'}")
        if current != target:
            self.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=target, RetainAllVariantProperties=False)
        rollout = self._status("experiment", target, current, None)
        ab = self._ab()
        plan = f"challenger {ab.challenger_share:.0%} of requests (variant {CHALLENGER_VARIANT}), champion the rest"
        return rollout.model_copy(update={"traffic_plan": plan})

    def _status(self, phase: str, target: str, previous: str | None, live: dict[str, Any] | None) -> Rollout:
        live = live or self._describe_endpoint(self.settings.endpoint_name) or {}
        endpoint_status = live.get("EndpointStatus", "Creating")
        return Rollout(
            status="InProgress",
            phase=phase,  # type: ignore[arg-type]
            endpoint_name=self.settings.endpoint_name,
            endpoint_config_name=target,
            previous_config_name=previous,
            endpoint_status=endpoint_status,
            poll_seconds=self._poll_seconds(),
            progress=_progress(live),
        )

    def check(self, state: DeploymentState) -> Rollout:
        rollout = _rollout(state)
        live = self._describe_endpoint(rollout.endpoint_name)
        if live is None:
            raise EndpointFailed(f"endpoint {rollout.endpoint_name} disappeared during the rollout")
        status = live["EndpointStatus"]
        update: dict[str, Any] = {"endpoint_status": status, "progress": _progress(live)}
        if status in IN_FLIGHT:
            return rollout.model_copy(update={**update, "status": "InProgress"})
        if status != "InService":
            reason = live.get("FailureReason") or "no reason given"
            raise EndpointFailed(f"endpoint {rollout.endpoint_name} is {status} during the {rollout.phase}: {reason}")
        if rollout.phase == "shadow" and live["EndpointConfigName"] == rollout.endpoint_config_name:
            since = _iso(live.get("LastModifiedTime") or self.clients.now())
            return rollout.model_copy(
                update={
                    **update,
                    "status": "ShadowBaking",
                    "bake_seconds": self.serving.shadow_bake_seconds,
                    "shadow_since": since,
                }
            )
        return rollout.model_copy(update={**update, "status": "Done"})

    # ---- shadow ------------------------------------------------------------------------------------------

    def compare_shadow(self, state: DeploymentState) -> Rollout:
        prepared, rollout = _prepared(state), _rollout(state)
        if rollout.shadow_since is None or prepared.shadow_variant_name is None:
            raise DeploymentError("compare_shadow needs a shadow phase in $.rollout and $.deploy")
        start = _parse_time(rollout.shadow_since)
        end = max(self.clients.now(), start + timedelta(seconds=rollout.bake_seconds)) + timedelta(seconds=60)
        task = self._task(state)
        comparison = self.comparison(start, end, self.serving.variant_name, prepared.shadow_variant_name, task)
        logger.info("shadow comparison", extra={"comparison": comparison.model_dump(mode="json")})
        if not comparison.promote:
            champion = prepared.champion
            note = "the champion keeps 100% of production traffic"
            if champion is not None:
                live = self._describe_endpoint(prepared.endpoint_name) or {}
                reverted = live.get("EndpointConfigName") == champion.endpoint_config_name
                if live.get("EndpointStatus") == "InService" and not reverted:
                    self.sm.update_endpoint(
                        EndpointName=prepared.endpoint_name,
                        EndpointConfigName=champion.endpoint_config_name,
                        RetainAllVariantProperties=True,
                    )
                note += f" (endpoint returning to {champion.endpoint_config_name}, without the shadow)"
            raise ShadowNotPromoted(
                f"shadow model {prepared.model_version} not promoted: {'; '.join(comparison.reasons)}; {note}"
            )
        current = self._describe_endpoint(prepared.endpoint_name)
        if current is None:
            raise EndpointFailed(f"endpoint {prepared.endpoint_name} disappeared during the shadow bake")
        promoted = self._update("promote", prepared.endpoint_config_name, current, "ALL_AT_ONCE")
        return promoted.model_copy(update={"comparison": comparison})

    def comparison(
        self, start: datetime, end: datetime, production: str, shadow: str, task: str = "binary"
    ) -> Comparison:
        s = self.serving
        prod = self._variant_metrics(production, start, end)
        shad = self._variant_metrics(shadow, start, end)
        pairs = self._paired_answers(production, shadow, start, end, task)
        reasons = []
        if shad["invocations"] < s.shadow_min_invocations:
            reasons.append(
                f"the shadow answered {shad['invocations']:.0f} requests in the bake window, fewer than the "
                f"{s.shadow_min_invocations} needed for a comparison"
            )
        if shad["error_rate"] > prod["error_rate"] + s.shadow_max_error_rate_increase:
            reasons.append(f"error rate {shad['error_rate']:.2%} vs {prod['error_rate']:.2%} on production")
        slower = shad["latency_us"] > prod["latency_us"] * s.shadow_max_latency_ratio
        if prod["latency_us"] and shad["latency_us"] and slower:
            reasons.append(
                f"mean model latency {shad['latency_us'] / 1000:.1f} ms vs {prod['latency_us'] / 1000:.1f} ms "
                f"on production (more than x{s.shadow_max_latency_ratio})"
            )
        reasons += answer_reasons(
            pairs,
            min_agreement=s.shadow_min_agreement,
            max_median_relative_error=s.shadow_max_median_relative_error,
            max_p90_relative_error=s.shadow_max_p90_relative_error,
        )
        return Comparison(
            window_start=_iso(start),
            window_end=_iso(end),
            production=prod,
            shadow=shad,
            task=task,  # type: ignore[arg-type]
            paired_rows=pairs.paired_rows,
            agreement=pairs.agreement,
            mean_abs_probability_diff=pairs.mean_abs_probability_diff,
            median_relative_error=pairs.median_relative_error,
            p90_relative_error=pairs.p90_relative_error,
            promote=not reasons,
            reasons=reasons,
        )

    def _task(self, state: DeploymentState) -> str:
        """The dataset's task, as the package's golden payloads (written by its evaluation job) say."""
        return golden_task(self._golden(_prepared(state).golden_uri))

    def _variant_metrics(self, variant: str, start: datetime, end: datetime) -> dict[str, float]:
        period = max(60, math.ceil((end - start).total_seconds() / 60) * 60)

        def statistic(metric: str, stat: str) -> tuple[float, float]:
            points = self.clients.cloudwatch.get_metric_statistics(
                Namespace="AWS/SageMaker",
                MetricName=metric,
                Dimensions=[
                    {"Name": "EndpointName", "Value": self.settings.endpoint_name},
                    {"Name": "VariantName", "Value": variant},
                ],
                StartTime=start,
                EndTime=end,
                Period=period,
                Statistics=[stat, "SampleCount"],
            )["Datapoints"]
            count = sum(float(p["SampleCount"]) for p in points)
            if stat == "Average":
                total = sum(float(p["Average"]) * float(p["SampleCount"]) for p in points)
                return (total / count if count else 0.0), count
            return sum(float(p[stat]) for p in points), count

        invocations, _ = statistic("Invocations", "Sum")
        errors_5xx, _ = statistic("Invocation5XXErrors", "Sum")
        model_errors, _ = statistic("InvocationModelErrors", "Sum")
        latency, _ = statistic("ModelLatency", "Average")
        # InvocationModelErrors counts non-2XX answers of the model and overlaps Invocation5XXErrors: no sum
        errors = max(errors_5xx, model_errors)
        return {
            "invocations": invocations,
            "errors": errors,
            "error_rate": errors / invocations if invocations else 0.0,
            "latency_us": latency,
        }

    def _paired_answers(
        self, production: str, shadow: str, start: datetime, end: datetime, task: str
    ) -> PairStatistics:
        """Pair production and shadow captures of the same request (inferenceId, else the same input) and
        compare their answers row by row, by ``task``."""
        prod = index_captures(self._captures(production, start, end), task)
        shad = index_captures(self._captures(shadow, start, end), task)
        return pair_statistics(paired_answers(prod, shad), task)

    def _captures(self, variant: str, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        bucket, prefix = split_s3_uri(self.settings.data_capture_uri)
        base = f"{prefix.rstrip('/')}/{self.settings.endpoint_name}/{variant}/"
        hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        paginator = self.clients.s3.get_paginator("list_objects_v2")
        read = 0
        while hour <= end:
            for page in paginator.paginate(Bucket=bucket, Prefix=f"{base}{hour:%Y/%m/%d/%H}/"):
                for obj in page.get("Contents", []):
                    if read >= MAX_CAPTURE_OBJECTS:  # a sample is enough, and the Lambda has minutes, not hours
                        return
                    read += 1
                    body = self.clients.s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                    for line in body.decode("utf-8").splitlines():
                        if not line.strip():
                            continue
                        record = json.loads(line)
                        when = (record.get("eventMetadata") or {}).get("inferenceTime")
                        if when and start <= _parse_time(when) <= end:
                            yield record
            hour += timedelta(hours=1)

    # ---- verify ------------------------------------------------------------------------------------------

    def verify(self, state: DeploymentState, execution: str = "") -> dict[str, Any]:
        prepared, rollout = _prepared(state), _rollout(state)
        endpoint = prepared.endpoint_name
        live = self._describe_endpoint(endpoint)
        if live is None or live["EndpointStatus"] != "InService":
            status = live["EndpointStatus"] if live else "missing"
            raise EndpointFailed(f"endpoint {endpoint} is {status}, not InService, after the rollout")
        running, target = live["EndpointConfigName"], rollout.endpoint_config_name
        if running != target:
            if rollout.previous_config_name and running == rollout.previous_config_name:
                alarms = self._alarms_in_alarm()
                if rollout.phase == "promote" and prepared.champion:
                    self.sm.update_endpoint(
                        EndpointName=endpoint,
                        EndpointConfigName=prepared.champion.endpoint_config_name,
                        RetainAllVariantProperties=True,
                    )
                # an update whose new fleet never came up (its container failed the ping: a model that cannot
                # load) ends InService on the old config with SageMaker's FailureReason; the update clears it
                why = (
                    f"SageMaker's update failed: {live['FailureReason']}"
                    if live.get("FailureReason")
                    else "SageMaker's auto-rollback returned all traffic to the previous model"
                )
                raise SilentRollback(
                    f"endpoint {endpoint} rolled back: it runs {running} again instead of {target} "
                    f"(model {prepared.model_version}); {why} "
                    f"(rollback alarms in ALARM now: {', '.join(alarms) or 'none'})"
                )
            raise DeploymentConflict(f"endpoint {endpoint} runs {running}, neither {target} nor the previous config")
        config = self.sm.describe_endpoint_config(EndpointConfigName=target)
        wanted = sorted(v["VariantName"] for v in config["ProductionVariants"])
        found = sorted(v["VariantName"] for v in live.get("ProductionVariants", []))
        wanted_shadows = sorted(v["VariantName"] for v in config.get("ShadowProductionVariants", []))
        found_shadows = sorted(v["VariantName"] for v in live.get("ShadowProductionVariants", []))
        if wanted != found or wanted_shadows != found_shadows:
            raise DeploymentConflict(
                f"endpoint {endpoint} runs {target} with variants {found} / shadows {found_shadows}, "
                f"the config asks for {wanted} / {wanted_shadows}"
            )
        if rollout.phase == "experiment":
            return self._experiment_started(prepared, rollout, live)
        scaling = [self._autoscale(endpoint, variant) for variant in wanted]
        comparison = rollout.comparison
        lines = [
            f"Model {prepared.model_version}{self._of_dataset} (package {prepared.model_package_arn}) serves endpoint "
            f"{endpoint}.",
            f"Endpoint config: {target} (was {rollout.previous_config_name or 'none: first deploy'}).",
            f"Strategy: {prepared.strategy}; golden payloads answered by the serving stack in the evaluation job.",
            *([f"Traffic shifting: {rollout.traffic_plan}."] if rollout.traffic_plan else []),
            f"Autoscaling: {self.serving.min_capacity}-{self.serving.max_capacity} instances, target "
            f"{self.serving.target_invocations_per_instance} invocations per instance per minute.",
        ]
        if comparison is not None:
            lines.append(
                f"Shadow comparison: {comparison.shadow['invocations']:.0f} shadow requests, error rate "
                f"{comparison.shadow['error_rate']:.2%} vs {comparison.production['error_rate']:.2%}, "
                f"{_answers_summary(comparison)}."
            )
        rollback = rollback_trigger(state.trigger)
        retired = self._retire_newer(prepared, execution, rollback) if rollback is not None else []
        if rollback is not None:
            lines.append(
                f"Rollback asked by {rollback.get('requested_by', 'unknown')}: {rollback.get('reason', 'no reason')}. "
                f"Set to Rejected (rolled back): {', '.join(f'v{v}' for v in retired) or 'none'}; "
                f"{prepared.model_version} is the champion again."
            )
        verb = f"Rolled back endpoint {endpoint} to" if rollback is not None else "Deployed"
        where = "" if rollback is not None else f" to {endpoint}"
        return {
            "subject": _subject(f"{self._dataset_label}{verb} model {prepared.model_version}{where}"),
            "message": "\n".join(lines),
            "outcome": "deployed",
            "rolled_back": retired,
            "endpoint_name": endpoint,
            "endpoint_config_name": target,
            "model_version": prepared.model_version,
            "autoscaling": scaling,
        }

    def _experiment_started(self, prepared: Prepared, rollout: Rollout, live: dict[str, Any]) -> dict[str, Any]:
        """The two-variant config serves: autoscaling on the champion's variant (the challenger keeps its
        declared instances), and the experiment's record for the evaluator (its start: observations before it
        belong to no variant of this experiment). Idempotent: an existing record is kept."""
        ab = self._ab()
        endpoint, target = prepared.endpoint_name, rollout.endpoint_config_name
        scaling = [self._autoscale(endpoint, self.serving.variant_name)]
        if prepared.champion is None:
            raise DeploymentError("an experiment needs the champion it was prepared against ($.deploy.champion)")
        schema = self.settings.schema
        record = ExperimentRecord(
            dataset=self.settings.dataset or endpoint,
            endpoint_name=endpoint,
            experiment_config_name=target,
            started_at=_iso(self.clients.now()),
            outcome=ab.outcome or DEFAULT_OUTCOMES[schema.task if schema else "binary"],
            design=ab,
            champion=Side(
                variant=self.serving.variant_name,
                model_name=prepared.champion.model_name,
                endpoint_config_name=prepared.champion.endpoint_config_name,
            ),
            challenger=Side(
                variant=CHALLENGER_VARIANT,
                model_name=prepared.model_name,
                endpoint_config_name=prepared.endpoint_config_name,
                model_version=prepared.model_version,
                model_package_arn=prepared.model_package_arn,
            ),
        )
        bucket, _ = split_s3_uri(self.settings.data_capture_uri)
        key = f"{experiment_prefix(record.dataset, target)}{RECORD_FILE}"
        try:
            self.clients.s3.head_object(Bucket=bucket, Key=key)
        except Exception as error:
            if error_code(error) not in ("404", "NoSuchKey", "NotFound"):
                raise
            self.clients.s3.put_object(
                Bucket=bucket, Key=key, Body=record.model_dump_json(indent=1).encode(), ContentType="application/json"
            )
        lines = [
            f"A/B experiment{self._of_dataset} on endpoint {endpoint}: model {prepared.model_version} (package "
            f"{prepared.model_package_arn}) serves {ab.challenger_share:.0%} of requests as variant "
            f"{CHALLENGER_VARIANT}; the champion ({prepared.champion.model_name}) serves the rest as "
            f"{self.serving.variant_name}.",
            f"Endpoint config: {target} (was {rollout.previous_config_name}).",
            f"Outcome: {record.outcome} per labelled request; minimum detectable effect "
            f"{ab.minimum_detectable_effect:g} at {ab.confidence:.0%} confidence, at most "
            f"{ab.max_duration_hours} h (labels within {ab.label_delay_hours} h); the evaluator looks every "
            f"{ab.evaluation_minutes} min.",
            f"Record and report: s3://{bucket}/{experiment_prefix(record.dataset, target)}",
            "Clients that need a consistent assignment pin a variant with InvokeEndpoint's TargetVariant.",
        ]
        return {
            "subject": _subject(f"{self._dataset_label}A/B experiment started: model {prepared.model_version}"),
            "message": "\n".join(lines),
            "outcome": "experiment_started",
            "rolled_back": [],
            "endpoint_name": endpoint,
            "endpoint_config_name": target,
            "model_version": prepared.model_version,
            "autoscaling": scaling,
        }

    def _retire_newer(self, prepared: Prepared, execution: str, rollback: dict[str, Any]) -> list[int]:
        """After a verified rollback: every Approved version newer than the one now serving is set to Rejected and
        marked (``rolled_back_by`` / ``rolled_back_to`` in its CustomerMetadataProperties), so the champion the
        next challenger is measured against (the newest Approved version, ``prepare_training.find_champion``) is
        the model that serves. Approving a retired version again (``mlops approve``) deploys it again."""
        retired = []
        paginator = self.sm.get_paginator("list_model_packages")
        pages = paginator.paginate(
            ModelPackageGroupName=self.settings.model_package_group, ModelApprovalStatus="Approved"
        )
        for summary in (s for page in pages for s in page.get("ModelPackageSummaryList", [])):
            version = int(summary.get("ModelPackageVersion") or 0)
            if version <= prepared.package_version:
                continue
            arn = summary["ModelPackageArn"]
            metadata = dict(
                self.sm.describe_model_package(ModelPackageName=arn).get("CustomerMetadataProperties") or {}
            )
            metadata.update(rolled_back_by=execution[:256] or "unknown", rolled_back_to=f"v{prepared.package_version}")
            why = f"rolled back: v{prepared.package_version} serves again ({rollback.get('reason') or 'no reason'})"
            self.sm.update_model_package(
                ModelPackageArn=arn,
                ModelApprovalStatus="Rejected",
                ApprovalDescription=" ".join(why.split())[:1000],
                CustomerMetadataProperties=metadata,  # repeated whole: moto replaces the map on every update
            )
            retired.append(version)
        return sorted(retired)

    def _autoscale(self, endpoint: str, variant: str) -> dict[str, Any]:
        resource = f"endpoint/{endpoint}/variant/{variant}"
        s = self.serving
        self.clients.autoscaling.register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension=SCALABLE_DIMENSION,
            MinCapacity=s.min_capacity,
            MaxCapacity=s.max_capacity,
        )
        policy = resource_name(f"{endpoint}-{variant}-invocations")
        self.clients.autoscaling.put_scaling_policy(
            PolicyName=policy,
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension=SCALABLE_DIMENSION,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": float(s.target_invocations_per_instance),
                "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                "ScaleInCooldown": 300,
                "ScaleOutCooldown": 60,
            },
        )
        return {"resource_id": resource, "policy": policy, "min": s.min_capacity, "max": s.max_capacity}

    def _alarms_in_alarm(self) -> list[str]:
        if not self.settings.rollback_alarms:
            return []
        try:
            alarms = self.clients.cloudwatch.describe_alarms(AlarmNames=list(self.settings.rollback_alarms))
        except Exception as error:  # the message is still worth sending without the alarm list
            logger.warning("describe_alarms failed: %s", error)
            return []
        return sorted(a["AlarmName"] for a in alarms.get("MetricAlarms", []) if a.get("StateValue") == "ALARM")

    # ---- failure -----------------------------------------------------------------------------------------

    def explain_failure(self, execution: str, state: DeploymentState) -> dict[str, Any]:
        error = state.error or {}
        name = str(error.get("Error") or "Unknown")
        cause = error.get("Cause") or ""
        reason = cause
        try:
            parsed = json.loads(cause) if cause else {}
            if isinstance(parsed, dict) and parsed.get("errorMessage"):
                reason = str(parsed["errorMessage"])
                name = str(parsed.get("errorType") or name)
        except ValueError:
            pass
        reason = reason or name
        outcome = OUTCOMES.get(name, "failed")
        prepared = state.deploy
        stage = _failed_stage(state)
        what = prepared.model_version if prepared else state.model_package_arn.rsplit("/", 1)[-1]
        words = {
            "rolled_back": "rolled back",
            "shadow_rejected": "not promoted from shadow",
            "timed_out": "timed out",
        }.get(outcome, "failed")
        try:
            live = self._describe_endpoint(self.settings.endpoint_name)
            serving = (
                f"{self.settings.endpoint_name} runs {live['EndpointConfigName']} ({live['EndpointStatus']})"
                if live
                else f"{self.settings.endpoint_name} does not exist"
            )
        except Exception as describe_error:  # the notification must go out even if SageMaker does not answer
            serving = f"{self.settings.endpoint_name}: unknown ({describe_error})"
        demoted = self._demote(state.model_package_arn, f"deployment {words}: {reason}") if outcome in DEMOTING else ""
        message = "\n".join(
            [
                f"Deployment {execution} of model {what}{self._of_dataset} {words} during {stage}.",
                f"Model package: {state.model_package_arn}{demoted}",
                f"Reason ({name}): {reason}",
                f"Endpoint now: {serving}.",
            ]
        )
        return {
            "subject": _subject(f"{self._dataset_label}Deployment of model {what} {words}"),
            "message": message,
            "reason": reason,
            "error": name,
            "outcome": outcome,
            "stage": stage,
        }

    def _demote(self, package_arn: str, why: str) -> str:
        """An approved package that failed its deployment is set to Rejected (with the reason), so it never
        becomes the champion that the next challengers are measured against. Best effort: the notification
        matters more."""
        try:
            status = self.sm.describe_model_package(ModelPackageName=package_arn).get("ModelApprovalStatus")
            if status != "Approved":
                return ""
            # one line: ApprovalDescription must match ".*" as a whole, and "." matches no line break
            description = " ".join(why.split())[:1000]
            self.sm.update_model_package(
                ModelPackageArn=package_arn, ModelApprovalStatus="Rejected", ApprovalDescription=description
            )
        except Exception as error:
            logger.warning("could not set %s to Rejected: %s", package_arn, error)
            return f" (could not be set to Rejected: {error_message(error)})"
        return " (now Rejected: the champion is unchanged)"


# ---- helpers ---------------------------------------------------------------------------------------------


def rollback_trigger(trigger: str | dict[str, Any] | None) -> dict[str, Any] | None:
    """The execution's trigger when it is an operator's rollback (``mlops rollback``: ``{"source": "rollback",
    "to_version", "from_version", "reason", "requested_by"}``), else None."""
    return trigger if isinstance(trigger, dict) and trigger.get("source") == "rollback" else None


DEMOTING = frozenset({"rolled_back", "shadow_rejected", "timed_out"})
"""Deployment outcomes after which the package must not stay Approved."""


def _prepared(state: DeploymentState) -> Prepared:
    if state.deploy is None:
        raise DeploymentError("$.deploy is missing: run prepare first")
    return state.deploy


def _rollout(state: DeploymentState) -> Rollout:
    if state.rollout is None:
        raise DeploymentError("$.rollout is missing: run rollout first")
    return state.rollout


def _failed_stage(state: DeploymentState) -> str:
    if state.rollout is not None:
        return f"the rollout ({state.rollout.phase})"
    if state.deploy is not None:
        return "the start of the rollout"
    return "prepare"


def _subject(text: str) -> str:
    """SNS subjects: ASCII, no newlines, at most 100 characters."""
    clean = re.sub(r"[^\x20-\x7e]", "?", text)
    return clean if len(clean) <= 100 else clean[:97] + "..."


def _progress(live: dict[str, Any]) -> str:
    pending = live.get("PendingDeploymentSummary") or {}
    statuses = [
        s.get("StatusMessage") or s.get("Status")
        for v in pending.get("ProductionVariants", [])
        for s in v.get("VariantStatus", [])
    ]
    return "; ".join(str(s) for s in statuses if s) or str(live.get("EndpointStatus", ""))


def _answers_summary(comparison: Comparison) -> str:
    """How close the shadow's captured answers were to production's, in the task's measure."""
    if comparison.task == "regression":
        if comparison.median_relative_error is None or comparison.p90_relative_error is None:
            return "relative error n/a (no paired captured rows)"
        return (
            f"relative error of the values median {comparison.median_relative_error:.1%}, "
            f"p90 {comparison.p90_relative_error:.1%} over {comparison.paired_rows} rows"
        )
    return f"agreement {'n/a' if comparison.agreement is None else f'{comparison.agreement:.1%}'}"
