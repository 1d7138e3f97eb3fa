"""SageMaker endpoint control plane for the local cloud: UpdateEndpoint with blue/green deployments.

moto 5.2.5 stores models, endpoint configs and endpoints, but:

- ``UpdateEndpoint`` is not implemented at all (the response class has no ``update_endpoint``);
- ``CreateEndpoint`` accepts a ``DeploymentConfig`` that ``DescribeEndpoint`` never returns;
- ``CreateEndpointConfig`` drops ``ShadowProductionVariants``;
- creating a model, endpoint config or endpoint under an existing name silently replaces it (AWS refuses).

``install()`` closes these gaps by patching moto's SageMaker response class (request parsing and response
serialization stay moto's, so boto3 works the same in decorator and server mode) and its backend.

Provisioning takes time, as in SageMaker, on the local cloud's clock: ``CreateEndpoint`` leaves the endpoint
``Creating`` and an update provisions its green fleet (``Updating``, the pending variants ``Creating``) for the
delays of ``localcloud.durations`` (``ProvisioningTimes``; tests may set them to zero with
``provisioning_times(ProvisioningTimes.instant())``). Meanwhile the fleet's containers are started and must answer
``GET /ping`` with 200 (``set_fleet_check``: the local cloud's data plane does it; without one, every fleet is
healthy). A fleet that fails its check fails the operation, not the first invocation: a new endpoint ends
``Failed`` with SageMaker's ``FailureReason``; an update rolls back (``RollingBack``, then ``InService`` on the old
config with the ``FailureReason``, which the next update clears), the old fleet serving throughout.

A blue/green update runs on the local cloud's clock (``localcloud.clock.clock``), like SageMaker's
deployment guardrails: the new (green) fleet takes a share of production traffic in steps (ALL_AT_ONCE: all;
CANARY: ``CanarySize``, then the rest after ``WaitIntervalInSeconds``; LINEAR: ``LinearStepSize`` per step).
A step turns on whole instances (a ``CAPACITY_PERCENT`` is rounded up, at least one) and its traffic share is
its instances over the fleet's; a canary over half the instances, or a linear step outside 10-50% of them, is
refused as SageMaker refuses it (so a canary needs at least two instances). Each step is
followed by a baking period of ``WaitIntervalInSeconds`` (the last one is the final baking
period), then ``TerminationWaitInSeconds`` passes before the update completes. While a baking period is
running, the ``AutoRollbackConfiguration`` alarms are read from moto's CloudWatch backend: one in ``ALARM``
rolls the update back (all traffic returns to the old fleet at once; the endpoint is ``RollingBack`` while the
green fleet is torn down, then ``InService`` on its OLD config, with no failure reason: a silent rollback, as in
AWS). ``MaximumExecutionTimeoutInSeconds`` rolls
back an update that would outlast it. Nothing runs in the background: progress is computed lazily whenever
the endpoint is described or listed, or its routes are read. Alarms are sampled at those moments.

The data plane reads ``routes(account_id, region, endpoint_name)``: which model serves which share of the
production traffic right now (both fleets during a canary), and which shadow variants receive copies.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from moto.cloudwatch.models import cloudwatch_backends
from moto.core.responses import ActionResult
from moto.sagemaker import models as sm_models
from moto.sagemaker import responses as sm_responses
from moto.sagemaker.exceptions import ValidationError

from localcloud import durations
from localcloud.clock import clock

Role = Literal["production", "shadow"]

_STATE_ATTRIBUTE = "_localcloud_endpoint_deployments"
_INSTALLED_MARKER = "_localcloud_sagemaker_endpoints_installed"
_lock = threading.RLock()

MOTO_BASELINE: dict[str, bool] = {}
"""What the pinned moto did before ``install()`` patched it (read by the contract tests)."""

IN_FLIGHT_STATUSES = ("Creating", "Updating", "SystemUpdating", "RollingBack")


class EndpointNotFound(LookupError):
    """``routes()`` for an endpoint that does not exist."""


@dataclass(frozen=True)
class Route:
    """One place a request to the endpoint can go."""

    config_name: str
    variant_name: str
    model_name: str
    weight: float  # production: share of production traffic (all production routes sum to 1); shadow: copy rate
    role: Role


# ---- provisioning ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProvisioningTimes:
    """Seconds of cloud time SageMaker takes for a fleet (rows of ``localcloud.durations``)."""

    create: float  # CreateEndpoint until InService
    update: float  # the green fleet of an UpdateEndpoint, before any traffic shifts
    ping_failure: float  # after provisioning, until a container that fails GET /ping fails the operation
    rollback: float  # RollingBack: tearing the green fleet down

    @classmethod
    def from_table(cls, figure: Literal["typical", "upper"] = "typical") -> ProvisioningTimes:
        pick = durations.typical if figure == "typical" else durations.upper
        return cls(
            create=pick(durations.ENDPOINT_CREATE),
            update=pick(durations.ENDPOINT_UPDATE_PROVISION),
            ping_failure=pick(durations.ENDPOINT_PING_FAILURE),
            rollback=pick(durations.ENDPOINT_ROLLBACK),
        )

    @classmethod
    def instant(cls) -> ProvisioningTimes:
        return cls(create=0.0, update=0.0, ping_failure=0.0, rollback=0.0)


FleetCheck = Callable[[str, list[tuple[str, str]]], "Future[str | None]"]
"""(endpoint name, [(variant, model)]) -> a future of None (every container answered GET /ping with 200) or of
the ``FailureReason`` SageMaker would give."""

_times = ProvisioningTimes.from_table()
_fleet_check: FleetCheck | None = None


def set_provisioning_times(times: ProvisioningTimes) -> ProvisioningTimes:
    """Use ``times`` for the operations started from now on; returns the previous ones."""
    global _times
    previous, _times = _times, times
    return previous


@contextmanager
def provisioning_times(times: ProvisioningTimes) -> Iterator[None]:
    previous = set_provisioning_times(times)
    try:
        yield
    finally:
        set_provisioning_times(previous)


def set_fleet_check(check: FleetCheck | None) -> None:
    """How a new fleet's containers are started and pinged (the local cloud's endpoint data plane sets it)."""
    global _fleet_check
    _fleet_check = check


def _healthy() -> Future[str | None]:
    done: Future[str | None] = Future()
    done.set_result(None)
    return done


@dataclass
class _Fleet:
    """A fleet being provisioned: its instances are up at ``ready_at``; ``check`` says whether its containers
    answer GET /ping (``checked_at``: when that answer came, on the cloud clock)."""

    config: str
    ready_at: float
    check: Future[str | None]
    ping_failure: float  # how long SageMaker keeps pinging a container that does not answer 200
    checked_at: float | None = None

    @classmethod
    def start(cls, endpoint_name: str, config: Any, now: float, delay: float) -> _Fleet:
        variants = [(v["VariantName"], v["ModelName"]) for v in [*config.production_variants, *_shadows(config)]]
        check = _fleet_check(endpoint_name, variants) if _fleet_check is not None else _healthy()
        fleet = cls(config.endpoint_config_name, now + delay, check, _times.ping_failure)

        def done(_: Future[str | None]) -> None:
            fleet.checked_at = clock.time()

        check.add_done_callback(done)
        return fleet

    def outcome(self, now: float) -> tuple[float, str | None] | None:
        """(when, None) once healthy, (when, FailureReason) once failed, None while provisioning."""
        if now < self.ready_at or not self.check.done():
            return None
        ready = max(self.ready_at, self.checked_at if self.checked_at is not None else self.ready_at)
        error = self.check.exception()
        reason = f"local cloud: the fleet check failed: {error!r}" if error else self.check.result()
        if reason is None:
            return ready, None
        failed = ready + self.ping_failure
        return (failed, reason) if now >= failed else None


@dataclass(frozen=True)
class _Step:
    at: float  # clock seconds
    new_share: float  # share of production traffic on the new fleet from ``at`` on


@dataclass
class _Deployment:
    old_config: str
    new_config: str
    deployment_config: dict[str, Any]
    started: float
    fleet: _Fleet
    plan: tuple[list[_Step], float, float]  # steps, end of the final bake, completion: offsets from provisioning
    deadline: float | None  # started + MaximumExecutionTimeoutInSeconds
    alarms: list[str]
    retained_counts: dict[str, int]
    last_observed: float
    steps: list[_Step] = field(default_factory=list)  # on the clock, once the green fleet is provisioned
    bake_until: float = math.inf  # end of the final baking period: alarms are watched until then
    completes: float = math.inf  # bake_until + TerminationWaitInSeconds
    steps_logged: int = 0
    rolled_back_at: float | None = None  # traffic back on the old fleet from then on (RollingBack)
    rolling_back_until: float | None = None
    rollback: dict[str, Any] = field(default_factory=dict)  # why, and the FailureReason to show (if any)

    def provisioned(self, at: float) -> None:
        steps, bake_until, completes = self.plan
        self.steps = [_Step(at + step.at, step.new_share) for step in steps]
        self.bake_until, self.completes = at + bake_until, at + completes

    def deadline_at(self, now: float) -> float | None:
        """``started + MaximumExecutionTimeoutInSeconds``, not counting the cloud time the fleet waited, past its
        provisioning delay from the durations table, for the local containers to answer their first ping. The
        table's delay prices SageMaker's instances and containers; a local model server's start takes real seconds
        on a busy host, and at a demo's 240x ten real seconds would be forty cloud minutes, more than the whole
        timeout: an update would roll back for the host's load, not for anything SageMaker would do."""
        if self.deadline is None:
            return None
        answered = self.fleet.checked_at if self.fleet.check.done() and self.fleet.checked_at is not None else now
        return self.deadline + max(0.0, answered - self.fleet.ready_at)

    def share(self, now: float) -> float:
        if self.rolled_back_at is not None and now >= self.rolled_back_at:
            return 0.0
        share = 0.0
        for step in self.steps:
            if step.at <= now:
                share = step.new_share
        return share

    def current_step(self, now: float) -> _Step | None:
        passed = [step for step in self.steps if step.at <= now]
        return passed[-1] if passed else None


@dataclass
class _EndpointState:
    creating: _Fleet | None = None
    deployment: _Deployment | None = None
    last_deployment_config: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def log(self, at: float, event: str, **detail: Any) -> None:
        self.history.append({"time": _iso(at), "event": event, **detail})


# ---- helpers -------------------------------------------------------------------------------------------


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _naive(seconds: float) -> datetime:
    """moto keeps naive UTC datetimes; so do we."""
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


def _states(backend: Any) -> dict[str, _EndpointState]:
    """Per-endpoint state lives on the backend instance, so moto's reset (new mock, server reset) clears it."""
    states: dict[str, _EndpointState] | None = backend.__dict__.get(_STATE_ATTRIBUTE)
    if states is None:
        states = {}
        backend.__dict__[_STATE_ATTRIBUTE] = states
    return states


def _state(backend: Any, name: str) -> _EndpointState:
    return _states(backend).setdefault(name, _EndpointState())


def _endpoint(backend: Any, name: str) -> Any:
    endpoint = backend.endpoints.get(name)
    if endpoint is None:
        arn = sm_models.FakeEndpoint.arn_formatter(name, backend.account_id, backend.region_name)
        raise ValidationError(message=f"Could not find endpoint '{arn}'.")
    return endpoint


def _config(backend: Any, name: str) -> Any:
    config = backend.endpoint_configs.get(name)
    if config is None:
        arn = sm_models.FakeEndpointConfig.arn_formatter(name, backend.account_id, backend.region_name)
        raise ValidationError(message=f"Could not find endpoint configuration '{arn}'.")
    return config


def _shadows(config: Any) -> list[dict[str, Any]]:
    return list(getattr(config, "shadow_production_variants", None) or [])


def _weight(variant: dict[str, Any]) -> float:
    value = variant.get("CurrentWeight", variant.get("InitialVariantWeight"))
    return 1.0 if value is None else float(value)


def _alarm_states(backend: Any, names: list[str]) -> dict[str, str]:
    alarms = cloudwatch_backends[backend.account_id][backend.region_name].alarms
    return {name: alarms[name].state_value for name in names if name in alarms}


# ---- the deployment timeline ---------------------------------------------------------------------------


def _batch_instances(size: dict[str, Any], instances: int, what: str) -> int:
    """Instances a traffic batch (``CanarySize`` / ``LinearStepSize``) turns on: a ``CAPACITY_PERCENT`` is rounded
    up to whole instances (at least one), as SageMaker shifts traffic by turning on instances of the new fleet."""
    kind, value = size.get("Type"), float(size.get("Value", 0))
    if value <= 0:
        raise ValidationError(message=f"{what}.Value must be positive")
    if kind == "CAPACITY_PERCENT":
        if value > 100:
            raise ValidationError(message=f"{what}.Value must be at most 100 (percent)")
        return max(1, math.ceil(value * instances / 100 - 1e-9))
    if kind == "INSTANCE_COUNT":
        return int(value)
    raise ValidationError(message=f"{what}.Type must be INSTANCE_COUNT or CAPACITY_PERCENT, got {kind!r}")


def _timeline(deployment_config: dict[str, Any], instances: int, now: float) -> tuple[list[_Step], float, float]:
    """Traffic steps, end of the final baking period, completion time."""
    policy = deployment_config.get("BlueGreenUpdatePolicy")
    if deployment_config.get("RollingUpdatePolicy"):
        raise ValidationError(
            message="RollingUpdatePolicy is not supported by the local cloud; use BlueGreenUpdatePolicy"
        )
    if not policy:  # SageMaker's default: blue/green, all at once, no baking period
        return [_Step(now, 1.0)], now, now
    routing = policy["TrafficRoutingConfiguration"]
    kind = routing["Type"]
    wait = float(routing.get("WaitIntervalInSeconds", 0))
    termination = float(policy.get("TerminationWaitInSeconds", 0))
    if kind == "ALL_AT_ONCE":
        steps = [_Step(now, 1.0)]
    elif kind == "CANARY":
        canary = _batch_instances(routing.get("CanarySize") or {}, instances, "CanarySize")
        if 2 * canary > instances:
            raise ValidationError(
                message=f"CanarySize must be less than or equal to 50% of the variant's total instance count: "
                f"{canary} of {instances} instance(s)"
            )
        steps = [_Step(now, canary / instances), _Step(now + wait, 1.0)]
    elif kind == "LINEAR":
        step = _batch_instances(routing.get("LinearStepSize") or {}, instances, "LinearStepSize")
        if not 0.1 * instances <= step <= 0.5 * instances:
            raise ValidationError(
                message=f"LinearStepSize must be 10-50% of the variant's total instance count: "
                f"{step} of {instances} instance(s)"
            )
        count = math.ceil(instances / step)
        steps = [_Step(now + i * wait, min(1.0, (i + 1) * step / instances)) for i in range(count)]
        steps[-1] = _Step(steps[-1].at, 1.0)
    else:
        raise ValidationError(message=f"TrafficRoutingConfiguration.Type {kind!r} is not ALL_AT_ONCE, CANARY or LINEAR")
    bake_until = steps[-1].at + wait
    return steps, bake_until, bake_until + termination


def _finish(backend: Any, endpoint: Any, state: _EndpointState, at: float) -> None:
    deployment = state.deployment
    assert deployment is not None
    config = _config(backend, deployment.new_config)
    variants = endpoint._process_production_variants(config.production_variants)
    for variant in variants:
        variant.setdefault("CurrentWeight", 1.0)
        variant.setdefault("DesiredWeight", 1.0)
        retained = deployment.retained_counts.get(variant["VariantName"])
        if retained is not None:
            variant["CurrentInstanceCount"] = variant["DesiredInstanceCount"] = retained
    endpoint.endpoint_config_name = deployment.new_config
    endpoint.production_variants = variants
    endpoint.data_capture_config = config.data_capture_config
    endpoint.endpoint_status = "InService"
    endpoint.last_modified_time = _naive(at)
    state.deployment = None
    state.log(at, "completed", config=deployment.new_config)


def _roll_back(endpoint: Any, state: _EndpointState, at: float, reason: str, failure: str | None = None) -> None:
    """Start rolling back at ``at``: all traffic returns to the old fleet at once, the endpoint is ``RollingBack``
    while the green fleet is torn down, then ``InService`` on the old config (``_rolled_back``)."""
    deployment = state.deployment
    assert deployment is not None
    deployment.rolled_back_at = at
    deployment.rolling_back_until = at + _times.rollback
    deployment.rollback = {"reason": reason, "failure": failure}
    endpoint.endpoint_status = "RollingBack"
    endpoint.last_modified_time = _naive(at)
    state.log(at, "rolling-back", config=deployment.old_config, abandoned=deployment.new_config, reason=reason)


def _rolled_back(endpoint: Any, state: _EndpointState, at: float) -> None:
    """Back ``InService`` on the old config; a failed update leaves its ``FailureReason`` (the next update clears
    it), a rollback on an alarm leaves none: a silent rollback."""
    deployment = state.deployment
    assert deployment is not None
    endpoint.endpoint_status = "InService"
    endpoint.failure_reason = deployment.rollback.get("failure")
    endpoint.last_modified_time = _naive(at)
    state.deployment = None
    state.log(
        at,
        "rolled-back",
        config=deployment.old_config,
        abandoned=deployment.new_config,
        reason=deployment.rollback.get("reason"),
    )


def _advance_creation(endpoint: Any, state: _EndpointState, now: float) -> None:
    """A new endpoint's fleet: ``InService`` once provisioned and its containers answer GET /ping, ``Failed`` with
    SageMaker's ``FailureReason`` if they do not."""
    fleet = state.creating
    assert fleet is not None
    outcome = fleet.outcome(now)
    if outcome is None:
        return
    at, reason = outcome
    state.creating = None
    endpoint.last_modified_time = _naive(at)
    if reason is None:
        endpoint.endpoint_status = "InService"
        state.log(at, "in-service", config=fleet.config)
    else:
        endpoint.endpoint_status = "Failed"
        endpoint.failure_reason = reason
        state.log(at, "failed", config=fleet.config, reason=reason)


def _advance(backend: Any, name: str) -> None:
    """Bring the endpoint up to the clock: provisioning, traffic steps, alarms, rollback, completion."""
    endpoint = backend.endpoints.get(name)
    state = _states(backend).get(name)
    if endpoint is None or state is None:
        return
    now = clock.time()
    if state.creating is not None:
        _advance_creation(endpoint, state, now)
    deployment = state.deployment
    if deployment is None:
        return
    if deployment.rolling_back_until is None and not deployment.steps:
        outcome = deployment.fleet.outcome(now)
        if outcome is not None and outcome[1] is not None:
            _roll_back(endpoint, state, outcome[0], "the new fleet failed its health check", failure=outcome[1])
        elif outcome is not None:
            deployment.provisioned(outcome[0])
            state.log(outcome[0], "fleet-provisioned", config=deployment.new_config)
        elif (deadline := deployment.deadline_at(now)) is not None and now >= deadline:
            _roll_back(endpoint, state, deadline, "MaximumExecutionTimeoutInSeconds exceeded")
        else:
            return
    if deployment.rolling_back_until is not None:
        if now >= deployment.rolling_back_until:
            _rolled_back(endpoint, state, deployment.rolling_back_until)
        return
    while deployment.steps_logged < len(deployment.steps) and deployment.steps[deployment.steps_logged].at <= now:
        step = deployment.steps[deployment.steps_logged]
        state.log(step.at, "traffic-shifted", config=deployment.new_config, new_share=step.new_share)
        deployment.steps_logged += 1
    baking = deployment.steps and deployment.last_observed < deployment.bake_until
    if deployment.alarms and baking:
        tripped = sorted(n for n, value in _alarm_states(backend, deployment.alarms).items() if value == "ALARM")
        if tripped:
            at = max(deployment.steps[0].at, min(now, deployment.bake_until))
            _roll_back(endpoint, state, at, f"alarm(s) in ALARM: {', '.join(tripped)}")
            _advance(backend, name)
            return
    deadline = deployment.deadline_at(now)
    if deadline is not None and deployment.completes > deadline and now >= deadline:
        _roll_back(endpoint, state, deadline, "MaximumExecutionTimeoutInSeconds exceeded")
        _advance(backend, name)
        return
    if now >= deployment.completes:
        _finish(backend, endpoint, state, deployment.completes)
        return
    deployment.last_observed = now


# ---- operations ------------------------------------------------------------------------------------------


def update_endpoint(
    backend: Any,
    endpoint_name: str,
    endpoint_config_name: str,
    deployment_config: dict[str, Any] | None = None,
    retain_all_variant_properties: bool = False,
    retain_deployment_config: bool = False,
) -> str:
    """UpdateEndpoint: start a blue/green deployment to ``endpoint_config_name``; returns the endpoint ARN."""
    with _lock:
        _advance(backend, endpoint_name)
        endpoint = _endpoint(backend, endpoint_name)
        new = _config(backend, endpoint_config_name)
        if endpoint.endpoint_status != "InService":
            raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
        state = _state(backend, endpoint_name)
        if deployment_config is None and retain_deployment_config:
            deployment_config = state.last_deployment_config
        deployment_config = deployment_config or {}
        old = _config(backend, endpoint.endpoint_config_name)
        old_names = sorted(v["VariantName"] for v in old.production_variants)
        new_names = sorted(v["VariantName"] for v in new.production_variants)
        if deployment_config.get("BlueGreenUpdatePolicy") and old_names != new_names:
            raise ValidationError(
                message="When doing a blue/green deployment, the new endpoint configuration must have the same "
                f"variant names as the old one: {old_names} != {new_names}"
            )
        _check_autoscaling(backend, endpoint_name, old, new)
        retained: dict[str, int] = {}
        if retain_all_variant_properties:
            retained = {
                v["VariantName"]: int(v["DesiredInstanceCount"])
                for v in endpoint.production_variants
                if v.get("DesiredInstanceCount") is not None
            }
        instances = sum(  # the green fleet's size: what is retained, else what the new config asks for
            retained.get(v["VariantName"], int(v.get("InitialInstanceCount") or 1)) for v in new.production_variants
        )
        now = clock.time()
        plan = _timeline(deployment_config, instances, 0.0)  # refused here, before anything starts
        policy = deployment_config.get("BlueGreenUpdatePolicy") or {}
        timeout = policy.get("MaximumExecutionTimeoutInSeconds")
        alarms = [a["AlarmName"] for a in (deployment_config.get("AutoRollbackConfiguration") or {}).get("Alarms", [])]
        _check_alarm_access(backend, new, alarms)
        state.deployment = _Deployment(
            old_config=endpoint.endpoint_config_name,
            new_config=endpoint_config_name,
            deployment_config=deployment_config,
            started=now,
            fleet=_Fleet.start(endpoint_name, new, now, _times.update),
            plan=plan,
            deadline=None if timeout is None else now + float(timeout),
            alarms=alarms,
            retained_counts=retained,
            last_observed=now,
        )
        if deployment_config:
            state.last_deployment_config = deployment_config
        endpoint.endpoint_status = "Updating"
        endpoint.failure_reason = None  # a failed update's reason lasts until the next update
        endpoint.last_modified_time = _naive(now)
        kind = (policy.get("TrafficRoutingConfiguration") or {}).get("Type", "ALL_AT_ONCE")
        state.log(now, "update-started", config=endpoint_config_name, previous=endpoint.endpoint_config_name, mode=kind)
        _advance(backend, endpoint_name)
        return str(endpoint.arn)


def _check_alarm_access(backend: Any, config: Any, alarms: list[str]) -> None:
    """SageMaker watches the auto-rollback alarms with the execution role of the new fleet's models, which needs
    ``cloudwatch:DescribeAlarms`` on them
    (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html); refused at once."""
    from localcloud.iam.enforcer import AccessDenied, active

    enforcer = active()
    if enforcer is None or not alarms:
        return
    for variant in config.production_variants:
        model = backend._models.get(variant.get("ModelName"))
        role = getattr(model, "execution_role_arn", None)
        if not role:
            continue
        caller = enforcer.caller_of(
            enforcer.credentials(role, "sagemaker.amazonaws.com", "SageMaker")["AWS_ACCESS_KEY_ID"]
        )
        if caller is None:  # a role that does not exist: reported by the enforcer, not evaluated
            continue
        for alarm in alarms:
            arn = f"arn:aws:cloudwatch:{backend.region_name}:{backend.account_id}:alarm:{alarm}"
            try:
                enforcer.check(
                    caller, "cloudwatch:DescribeAlarms", arn, call="sagemaker:UpdateEndpoint (auto-rollback)"
                )
            except AccessDenied as denied:
                raise ValidationError(message=f"Could not access the auto-rollback alarm {alarm}: {denied}") from None


def _check_autoscaling(backend: Any, endpoint_name: str, old: Any, new: Any) -> None:
    """AWS refuses an update that changes the instance type of a variant registered for autoscaling."""
    from moto.applicationautoscaling.models import applicationautoscaling_backends

    targets = applicationautoscaling_backends[backend.account_id][backend.region_name].targets
    registered = set(targets.get("sagemaker:variant:DesiredInstanceCount", {}))
    new_types = {v["VariantName"]: v.get("InstanceType") for v in new.production_variants}
    for variant in old.production_variants:
        resource = f"endpoint/{endpoint_name}/variant/{variant['VariantName']}"
        if resource in registered and new_types.get(variant["VariantName"]) != variant.get("InstanceType"):
            raise ValidationError(
                message=f"The variant {variant['VariantName']} is registered for autoscaling: deregister it before "
                "changing its instance type or removing it"
            )


def describe(backend: Any, endpoint_name: str) -> dict[str, Any]:
    """DescribeEndpoint as AWS answers it, deployment progress included."""
    with _lock:
        _advance(backend, endpoint_name)
        endpoint = _endpoint(backend, endpoint_name)
        state = _states(backend).get(endpoint_name) or _EndpointState()
        config = backend.endpoint_configs.get(endpoint.endpoint_config_name)
        deployment = state.deployment
        now = clock.time()
        share = deployment.share(now) if deployment else 0.0
        variants = []
        for variant in endpoint.production_variants:
            summary = {k: v for k, v in variant.items() if v is not None}
            weight = _weight(variant)
            summary["DesiredWeight"] = float(variant.get("DesiredWeight") or weight)
            summary["CurrentWeight"] = weight * (1.0 - share)
            variants.append(summary)
        response: dict[str, Any] = {
            "EndpointName": endpoint.endpoint_name,
            "EndpointArn": endpoint.arn,
            "EndpointConfigName": endpoint.endpoint_config_name,
            "ProductionVariants": variants,
            "EndpointStatus": endpoint.endpoint_status,
            "CreationTime": endpoint.creation_time,
            "LastModifiedTime": endpoint.last_modified_time,
        }
        if endpoint.failure_reason:
            response["FailureReason"] = endpoint.failure_reason
        if config is not None:
            capture = _capture_summary(config.data_capture_config)
            if capture:
                response["DataCaptureConfig"] = capture
            shadows = _shadows(config)
            if shadows:
                response["ShadowProductionVariants"] = [_variant_summary(v, 1.0 - share) for v in shadows]
        if state.last_deployment_config:
            response["LastDeploymentConfig"] = state.last_deployment_config
        if deployment is not None:
            response["PendingDeploymentSummary"] = _pending(backend, deployment, now, share)
        return response


def _capture_summary(capture: dict[str, Any] | None) -> dict[str, Any]:
    if not capture:
        return {}
    summary = {
        "EnableCapture": bool(capture.get("EnableCapture", True)),
        "CaptureStatus": "Started" if capture.get("EnableCapture", True) else "Stopped",
        "CurrentSamplingPercentage": int(capture.get("InitialSamplingPercentage", 0)),
        "DestinationS3Uri": capture.get("DestinationS3Uri"),
    }
    if capture.get("KmsKeyId"):
        summary["KmsKeyId"] = capture["KmsKeyId"]
    return summary


def _variant_summary(variant: dict[str, Any], share: float, status: list[dict[str, Any]] | None = None) -> dict:
    weight = _weight(variant)
    count = int(variant.get("InitialInstanceCount") or 1)
    summary: dict[str, Any] = {
        "VariantName": variant["VariantName"],
        "CurrentWeight": weight * share,
        "DesiredWeight": weight,
        "CurrentInstanceCount": count,
        "DesiredInstanceCount": count,
    }
    if status:
        summary["VariantStatus"] = status
    return summary


def _pending(backend: Any, deployment: _Deployment, now: float, share: float) -> dict[str, Any]:
    config = _config(backend, deployment.new_config)
    step = deployment.current_step(now)
    if deployment.rolled_back_at is not None:
        message = f"rolling back ({deployment.rollback.get('reason')}): all traffic on the old fleet"
        status = [{"Status": "Deleting", "StatusMessage": message, "StartTime": _naive(deployment.rolled_back_at)}]
    elif step is None:
        message = f"provisioning the new fleet (instances ready at {_iso(deployment.fleet.ready_at)})"
        status = [{"Status": "Creating", "StatusMessage": message, "StartTime": _naive(deployment.started)}]
    elif now < deployment.bake_until:
        message = f"{share:.0%} of production traffic on the new fleet; baking until {_iso(deployment.bake_until)}"
        status = [{"Status": "Baking", "StatusMessage": message, "StartTime": _naive(step.at)}]
    else:
        message = f"all traffic on the new fleet; old fleet terminates at {_iso(deployment.completes)}"
        status = [{"Status": "ActivatingTraffic", "StatusMessage": message, "StartTime": _naive(deployment.bake_until)}]
    pending: dict[str, Any] = {
        "EndpointConfigName": deployment.new_config,
        "ProductionVariants": [
            {**_variant_summary(v, share, status), "InstanceType": v.get("InstanceType")}
            for v in config.production_variants
        ],
        "StartTime": _naive(deployment.started),
    }
    shadows = _shadows(config)
    if shadows:
        pending["ShadowProductionVariants"] = [
            {**_variant_summary(v, share, status), "InstanceType": v.get("InstanceType")} for v in shadows
        ]
    return pending


def routes(account_id: str, region: str, endpoint_name: str) -> list[Route]:
    """Where requests to ``endpoint_name`` go now: production routes (weights sum to 1) and shadow copies.

    During a blue/green update both fleets appear: the old config's variants with ``1 - share`` of their
    weight and the new config's with ``share``. A shadow route's weight is the share of requests copied to it
    (its variant weight relative to the production variants' total, at most 1).
    """
    backend = sm_models.sagemaker_backends[account_id][region]
    with _lock:
        _advance(backend, endpoint_name)
        endpoint = backend.endpoints.get(endpoint_name)
        if endpoint is None:
            raise EndpointNotFound(f"Endpoint {endpoint_name} of account {account_id} not found.")
        state = _states(backend).get(endpoint_name)
        if endpoint.endpoint_status in ("Creating", "Failed"):
            return []  # no fleet in service yet (or ever)
        deployment = state.deployment if state else None
        share = deployment.share(clock.time()) if deployment else 0.0
        current = backend.endpoint_configs.get(endpoint.endpoint_config_name)
        live_weights = {v["VariantName"]: _weight(v) for v in endpoint.production_variants}
        fleets: list[tuple[Any, float, dict[str, float]]] = []
        if current is not None:
            fleets.append((current, 1.0 - share, live_weights))
        if deployment is not None and share > 0:
            new = _config(backend, deployment.new_config)
            fleets.append((new, share, {v["VariantName"]: _weight(v) for v in new.production_variants}))
        result: list[Route] = []
        for config, fleet_share, weights in fleets:
            if fleet_share <= 0:
                continue
            total = sum(weights.get(v["VariantName"], 0.0) for v in config.production_variants) or 1.0
            for variant in config.production_variants:
                weight = fleet_share * weights.get(variant["VariantName"], 0.0) / total
                if weight > 0:
                    result.append(
                        Route(
                            config.endpoint_config_name,
                            variant["VariantName"],
                            variant["ModelName"],
                            weight,
                            "production",
                        )
                    )
            for shadow in _shadows(config):
                weight = fleet_share * min(1.0, _weight(shadow) / total)
                if weight > 0:
                    result.append(
                        Route(config.endpoint_config_name, shadow["VariantName"], shadow["ModelName"], weight, "shadow")
                    )
        return result


def history(account_id: str, region: str, endpoint_name: str) -> list[dict[str, Any]]:
    """Deployment events of an endpoint (update started, traffic shifted, rolled back, completed)."""
    backend = sm_models.sagemaker_backends[account_id][region]
    with _lock:
        _advance(backend, endpoint_name)
        state = _states(backend).get(endpoint_name)
        return [dict(event) for event in state.history] if state else []


# ---- install -----------------------------------------------------------------------------------------------


def _already_exists(kind: str, arn: str) -> ValidationError:
    return ValidationError(message=f'Cannot create already existing {kind} "{arn}".')


def install() -> None:
    """Patch moto's SageMaker response class and backend (idempotent)."""
    response_cls: Any = sm_responses.SageMakerResponse
    backend_cls: Any = sm_models.SageMakerModelBackend
    with _lock:
        if getattr(response_cls, _INSTALLED_MARKER, False):
            return
        MOTO_BASELINE.update(
            {
                "has_update_endpoint": "update_endpoint" in vars(response_cls),
                "create_endpoint_config_takes_shadow_variants": "shadow_production_variants"
                in backend_cls.create_endpoint_config.__code__.co_varnames,
                "create_endpoint_takes_deployment_config": "deployment_config"
                in backend_cls.create_endpoint.__code__.co_varnames,
            }
        )
        original_create_model = backend_cls.create_model
        original_create_config = backend_cls.create_endpoint_config
        original_create_endpoint = backend_cls.create_endpoint
        original_delete_endpoint = backend_cls.delete_endpoint
        original_list_endpoints = backend_cls.list_endpoints
        original_create_config_response = response_cls.create_endpoint_config
        original_create_endpoint_response = response_cls.create_endpoint

        def create_model(self: Any, model_name: str, *args: Any, **kwargs: Any) -> Any:
            if model_name in self._models:
                raise _already_exists("model", self._models[model_name].arn)
            return original_create_model(self, model_name, *args, **kwargs)

        def create_endpoint_config(self: Any, endpoint_config_name: str, *args: Any, **kwargs: Any) -> Any:
            if endpoint_config_name in self.endpoint_configs:
                existing = self.endpoint_configs[endpoint_config_name]
                raise _already_exists("endpoint configuration", existing.endpoint_config_arn)
            return original_create_config(self, endpoint_config_name, *args, **kwargs)

        def create_endpoint(self: Any, endpoint_name: str, *args: Any, **kwargs: Any) -> Any:
            if endpoint_name in self.endpoints:
                raise _already_exists("endpoint", self.endpoints[endpoint_name].arn)
            endpoint = original_create_endpoint(self, endpoint_name, *args, **kwargs)
            now = clock.time()
            endpoint.creation_time = endpoint.last_modified_time = _naive(now)
            state = _states(self)[endpoint_name] = _EndpointState()
            config = _config(self, endpoint.endpoint_config_name)
            state.creating = _Fleet.start(endpoint_name, config, now, _times.create)
            endpoint.endpoint_status = "Creating"
            state.log(now, "created", config=endpoint.endpoint_config_name)
            _advance(self, endpoint_name)
            return endpoint

        def delete_endpoint(self: Any, endpoint_name: str) -> None:
            original_delete_endpoint(self, endpoint_name)
            _states(self).pop(endpoint_name, None)

        def describe_endpoint(self: Any, endpoint_name: str) -> dict[str, Any]:
            return describe(self, endpoint_name)

        def list_endpoints(self: Any, *args: Any, **kwargs: Any) -> Any:
            with _lock:
                for name in list(self.endpoints):
                    _advance(self, name)
            return original_list_endpoints(self, *args, **kwargs)

        def create_endpoint_config_response(self: Any) -> ActionResult:
            shadows = self._get_param("ShadowProductionVariants") or []
            if shadows:
                self.sagemaker_backend.validate_production_variants(shadows)
                names = [v["VariantName"] for v in self._get_param("ProductionVariants") or []]
                clash = sorted({v["VariantName"] for v in shadows} & set(names))
                if clash:
                    raise ValidationError(message=f"Variant names must be unique across variants: {clash}")
            result = original_create_config_response(self)
            config = self.sagemaker_backend.endpoint_configs[self._get_param("EndpointConfigName")]
            config.shadow_production_variants = shadows  # describe_endpoint_config returns it (moto's camel-casing)
            return result

        def create_endpoint_response(self: Any) -> ActionResult:
            result = original_create_endpoint_response(self)
            deployment_config = self._get_param("DeploymentConfig")
            if deployment_config:
                with _lock:
                    _state(
                        self.sagemaker_backend, self._get_param("EndpointName")
                    ).last_deployment_config = deployment_config
            return result

        def update_endpoint_response(self: Any) -> ActionResult:
            arn = update_endpoint(
                self.sagemaker_backend,
                endpoint_name=self._get_param("EndpointName"),
                endpoint_config_name=self._get_param("EndpointConfigName"),
                deployment_config=self._get_param("DeploymentConfig"),
                retain_all_variant_properties=bool(self._get_param("RetainAllVariantProperties")),
                retain_deployment_config=bool(self._get_param("RetainDeploymentConfig")),
            )
            return ActionResult({"EndpointArn": arn})

        patches: list[tuple[Any, str, Callable[..., Any]]] = [
            (backend_cls, "create_model", create_model),
            (backend_cls, "create_endpoint_config", create_endpoint_config),
            (backend_cls, "create_endpoint", create_endpoint),
            (backend_cls, "delete_endpoint", delete_endpoint),
            (backend_cls, "describe_endpoint", describe_endpoint),
            (backend_cls, "list_endpoints", list_endpoints),
            (response_cls, "create_endpoint_config", create_endpoint_config_response),
            (response_cls, "create_endpoint", create_endpoint_response),
            (response_cls, "update_endpoint", update_endpoint_response),
        ]
        for owner, name, function in patches:
            function.__name__ = name
            function.__qualname__ = f"{owner.__name__}.{name}"
            setattr(owner, name, function)
        setattr(response_cls, _INSTALLED_MARKER, True)
