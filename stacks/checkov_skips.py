"""checkov skips: per check and per resource, each with the reason the check is not met there and the stages it covers.

``make synth`` runs checkov on every synthesized template (``stacks/checkov_gate.py``) and fails on any failed check
that is not skipped here, the way cdk-nag fails on a finding ``stacks/nag.py`` does not acknowledge. A skip is
written into its resource's template metadata, ``Metadata: {"checkov": {"skip": [{"id": ..., "comment": <reason>}]}}``
(what checkov itself reads), so a security team running its own checkov on the template sees the same skips with
the same reasons. The gate scans a copy without them and fails as well on a skip whose check passes (stale) and on a
skip without a reason, whoever wrote it.

Resources are picked from the stack's own constructs (a new function is only skipped for the checks whose reason is
true of every function of the stack: no VPC, no reserved concurrency), so a new finding of any other kind fails the
synth until someone writes down why it is fine there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, get_args

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from constructs import IConstruct

from stacks.config import Stage
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
NO_RESERVED_CONCURRENCY = Skip(
    "CKV_AWS_115",
    "no per-function reserved concurrency: Lambda lets an account reserve only its unreserved concurrency minus 100 "
    "(AWS Lambda Developer Guide, 'Configuring reserved concurrency'), so a reservation fails the deployment in an "
    "account whose quota is that low (a new account's can be 10); limits "
    "chosen per function where a runaway would cost money or hammer a service, safe in such an account, are issue "
    "21's reserved-concurrency work, not built (only the retrain function reserves 1: its decisions are serialised)",
)
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
    NO_RESERVED_CONCURRENCY,
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
    unreserved = [
        f
        for f in functions
        if f.node.path not in framework_paths
        and not (isinstance(f, lambda_.CfnFunction) and f.reserved_concurrent_executions)
    ]
    pipeline, serving = stack.pipeline, stack.serving
    return {
        NOT_IN_VPC: functions,
        NO_RESERVED_CONCURRENCY: unreserved,
        FRAMEWORK_CONCURRENCY: framework,
        CLOUDFORMATION_INVOKED: framework,
        CUSTOM_RESOURCE_HANDLER: [_resource(serving.cleanup_fn)],
        STATE_MACHINE_STEP: [
            _resource(fn) for fn in (pipeline.prepare_fn, pipeline.register_fn, pipeline.failure_fn, serving.deploy_fn)
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
