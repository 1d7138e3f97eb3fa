"""checkov skips: per check and per resource, each with the reason the check is not met there and the stages it covers.

``make synth`` runs checkov on every synthesized template (``stacks/checkov_gate.py``) and fails on any failed check
that is not skipped here, the way cdk-nag fails on a finding ``stacks/nag.py`` does not acknowledge. A skip is
written into its resource's template metadata, ``Metadata: {"checkov": {"skip": [{"id": ..., "comment": <reason>}]}}``
(what checkov itself reads), so a security team running its own checkov on the template sees the same skips with
the same reasons. The gate scans a copy without them and fails as well on a skip whose check passes (stale) and on a
skip without a reason, whoever wrote it.

Resources are picked from the stack's own constructs (a new function is only skipped for the check whose reason is
true of every function of the stack: no VPC; a function without reserved concurrency is skipped with the reason of
its own decision in ``stacks.config.FUNCTION_CONCURRENCY``, which every function needs), so a new finding of any
other kind fails the synth until someone writes down why it is fine there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, get_args

import aws_cdk as cdk
from constructs import IConstruct

from stacks.config import STAGES as STAGE_CONFIGS
from stacks.config import ConcurrencySettings, Stage
from stacks.nag import BUCKET_NOTIFICATIONS_HANDLER

if TYPE_CHECKING:
    from stacks.mlops_stack import MlopsStack

STAGES: frozenset[str] = frozenset(get_args(Stage))
CHECK_ID = re.compile(r"CKV2?_AWS_\d+")
LAMBDA_FUNCTION = "AWS::Lambda::Function"


@dataclass(frozen=True)
class Skip:
    """One check skipped on the resources ``targets`` returns, in ``stages``, for ``reason``."""

    check: str
    reason: str
    stages: frozenset[str] = STAGES

    def __post_init__(self) -> None:
        if not CHECK_ID.fullmatch(self.check):
            raise ValueError(f"checkov skip {self.check!r}: not a checkov AWS check id (CKV_AWS_<n> or CKV2_AWS_<n>)")
        if not self.reason.strip():
            raise ValueError(f"checkov skip {self.check}: a skip needs the reason the check is not met there")
        if not self.stages or not self.stages <= STAGES:
            raise ValueError(f"checkov skip {self.check}: stages {sorted(self.stages)} not among {sorted(STAGES)}")


NETWORK_PRIVATE = "`network: private`"

NOT_IN_VPC = Skip(
    "CKV_AWS_117",
    "dev runs with `network: public` (stacks/config.py) to stay cheap: its functions call the AWS APIs they use "
    "(S3, DynamoDB, SageMaker, Step Functions, SNS, CloudWatch) on their public regional endpoints (TLS, "
    "SigV4-signed, IAM-scoped); the VPC's interface endpoints would bill about $5/day idle (docs/performance.md). "
    "prod runs `network: private`: every function in the VPC's isolated subnets (tests/infrastructure/test_network.py)",
    stages=frozenset({"dev"}),
)
CONCURRENCY_CHECK = "CKV_AWS_115"


def _concurrency_skips() -> dict[str, Skip]:
    """Per reason, the CKV_AWS_115 skip of the functions without a reservation in some stage: the reason of the
    function's own decision (``stacks.config.FUNCTION_CONCURRENCY``: why no figure), or, in a stage that deploys
    without reservations, why that stage does; with the stages it holds in."""
    stages: dict[str, set[str]] = {}
    for stage, config in STAGE_CONFIGS.items():
        for reason in _unreserved_reasons(config.concurrency).values():
            stages.setdefault(reason, set()).add(stage)
    return {reason: Skip(CONCURRENCY_CHECK, reason, frozenset(found)) for reason, found in stages.items()}


RESERVATIONS_OFF = (
    "this stage deploys without reserved concurrency (`ConcurrencySettings(reserve=False)` in stacks/config.py) so "
    "that it deploys into a new account, whose concurrency quota can be 10: Lambda lets an account reserve only its "
    "unreserved concurrency minus 100 (AWS Lambda Developer Guide, 'Configuring reserved concurrency'), so any "
    "reservation fails there; prod reserves this function's figure, whose reason is in FUNCTION_CONCURRENCY"
)


def _unreserved_reasons(concurrency: ConcurrencySettings) -> dict[str, str]:
    """Function construct id -> why it runs without a reservation under these settings (reserved ones absent)."""
    return {
        function: reservation.reason if reservation.limit is None else RESERVATIONS_OFF
        for function, reservation in concurrency.functions.items()
        if concurrency.reserved(function) is None
    }


CONCURRENCY_SKIPS = _concurrency_skips()
DEPLOYMENT_ONLY = (
    "invoked only by CloudFormation, once per change of its custom resource during a stack deployment: there is no "
    "traffic to limit or to lose"
)
FRAMEWORK_CONCURRENCY = Skip("CKV_AWS_115", f"aws-cdk-lib framework function {DEPLOYMENT_ONLY}")
CLOUDFORMATION_INVOKED = Skip(
    "CKV_AWS_116",
    f"aws-cdk-lib framework function {DEPLOYMENT_ONLY}: it answers an error to CloudFormation as FAILED (a crash "
    "without an answer fails when CloudFormation's wait times out), which fails and rolls back that stack operation, "
    "whose events show it; a queued event could not be replayed into the finished operation",
)
CUSTOM_RESOURCE_HANDLER = Skip(
    "CKV_AWS_116",
    "invoked synchronously (RequestResponse) by the custom resource provider's onEvent function during a stack "
    "deployment: its error fails that custom resource and the stack operation; a dead-letter queue only ever "
    "receives asynchronous invocations",
)
STATE_MACHINE_STEP = Skip(
    "CKV_AWS_116",
    "a state machine step: Step Functions invokes it synchronously (LambdaInvoke, RequestResponse) and gets its "
    "error back, retries transient errors, then takes the failure path (notified on the topic) or, for the failure "
    "path's own step, fails the execution (its history keeps the error); a dead-letter queue only ever receives "
    "asynchronous invocations",
)
ACCESS_LOG_TARGET = Skip(
    "CKV_AWS_18",
    "the data lake's server access log bucket itself (the raw, curated and artifacts buckets log into it): logging "
    "its own access into itself would log every log delivery, and a bucket for its logs would need one in turn",
)
SKIPS: tuple[Skip, ...] = (
    NOT_IN_VPC,
    *CONCURRENCY_SKIPS.values(),
    FRAMEWORK_CONCURRENCY,
    CLOUDFORMATION_INVOKED,
    CUSTOM_RESOURCE_HANDLER,
    STATE_MACHINE_STEP,
    ACCESS_LOG_TARGET,
)


def _functions(stack: cdk.Stack) -> list[cdk.CfnResource]:
    """Every Lambda function resource of the stack, aws-cdk-lib's framework functions included (the bucket
    notifications handler is a plain ``CfnResource``)."""
    return [
        c for c in stack.node.find_all() if isinstance(c, cdk.CfnResource) and c.cfn_resource_type == LAMBDA_FUNCTION
    ]


def _resource(construct: IConstruct) -> cdk.CfnResource:
    child = construct if isinstance(construct, cdk.CfnResource) else construct.node.default_child
    assert isinstance(child, cdk.CfnResource), f"{construct.node.path} has no CloudFormation resource"
    return child


def targets(stack: MlopsStack) -> dict[Skip, list[cdk.CfnResource]]:
    """Per skip, the resources it is written on (any stage; ``apply_skips`` keeps the stage's)."""
    framework = [
        _resource(stack.node.find_child(BUCKET_NOTIFICATIONS_HANDLER)),
        _resource(stack.serving.node.find_child("CleanupProvider").node.find_child("framework-onEvent")),
    ]
    framework_paths = {f.node.path for f in framework}
    functions = _functions(stack)
    unreserved: dict[Skip, list[cdk.CfnResource]] = {skip: [] for skip in CONCURRENCY_SKIPS.values()}
    reasons = _unreserved_reasons(stack.config.concurrency)
    for function in functions:
        if function.node.path in framework_paths:
            continue
        construct_id = function.node.scope.node.id if function.node.scope else ""
        if construct_id in reasons:
            if reasons[construct_id] not in CONCURRENCY_SKIPS:
                raise ValueError(f"{function.node.path}: no checkov skip for its concurrency decision (not a stage's)")
            unreserved[CONCURRENCY_SKIPS[reasons[construct_id]]].append(function)
    pipeline, serving = stack.pipeline, stack.serving
    return {
        NOT_IN_VPC: functions,
        **unreserved,
        FRAMEWORK_CONCURRENCY: framework,
        CLOUDFORMATION_INVOKED: framework,
        CUSTOM_RESOURCE_HANDLER: [_resource(serving.cleanup_fn)],
        STATE_MACHINE_STEP: [
            _resource(fn)
            for fn in (
                pipeline.lambda_etl.function,
                pipeline.prepare_fn,
                pipeline.register_fn,
                pipeline.failure_fn,
                serving.deploy_fn,
            )
        ],
        ACCESS_LOG_TARGET: [_resource(stack.lake.access_logs)],
    }


def skip_metadata(skips: Iterable[Skip]) -> dict[str, list[dict[str, str]]]:
    """The ``checkov`` metadata entry of one resource: ``{"skip": [{"id": <check>, "comment": <reason>}, ...]}``."""
    return {"skip": [{"id": s.check, "comment": s.reason} for s in skips]}


def apply_skips(stack: MlopsStack, skips: Sequence[Skip] = SKIPS) -> dict[str, list[Skip]]:
    """Writes each skip of the stack's stage on its resources; returns them per resource path (for the tests)."""
    found = targets(stack)
    missing = [s.check for s in skips if s not in found]
    if missing:
        raise ValueError(f"checkov skips without resources: {missing}")
    per_resource: dict[str, tuple[cdk.CfnResource, list[Skip]]] = {}
    for skip in skips:
        if stack.config.stage not in skip.stages:
            continue
        for resource in found[skip]:
            if resource.get_metadata("checkov") is not None:
                raise ValueError(f"{resource.node.path}: checkov metadata written outside stacks/checkov_skips.py")
            entry = per_resource.setdefault(resource.node.path, (resource, []))
            if any(s.check == skip.check for s in entry[1]):
                raise ValueError(f"{resource.node.path}: two checkov skips of {skip.check}")
            entry[1].append(skip)
    for resource, resource_skips in per_resource.values():
        resource.add_metadata("checkov", skip_metadata(resource_skips))
    return {path: resource_skips for path, (_, resource_skips) in per_resource.items()}
