"""The decision for one request, following AWS's policy evaluation logic for a principal in the resource's account.

https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html:
1. an explicit ``Deny`` in any applicable policy (identity-based, resource-based, key policy) wins;
2. otherwise an ``Allow`` in the caller's identity-based policies **or** in the resource-based policy (one that names
   the caller itself: a policy naming only the account delegates to IAM) allows the request;
3. otherwise it is implicitly denied.

Two services differ, and both are applied:
- KMS (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html): "Unless the key policy
  explicitly allows it, you cannot use IAM policies to allow access to a KMS key". A key-policy ``Allow`` that names
  the caller allows; identity-based policies count only when the key policy allows the action to the account
  (``arn:aws:iam::<account>:root``).
- A service principal (``events.amazonaws.com``, ``lambda.alarms.cloudwatch.amazonaws.com``...) has no identity
  policies: only the resource-based policy can allow it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from localcloud.iam.policy import Policy, Request, Statement


@dataclass(frozen=True)
class Decision:
    request: Request
    allowed: bool
    statement: str  # the statement that decided, or why none did
    message: str = ""  # AWS's AccessDenied wording when denied

    @property
    def outcome(self) -> str:
        return "allowed" if self.allowed else "denied"


def _applicable(policies: Sequence[Policy], request: Request, effect: str) -> list[Statement]:
    return [s for p in policies for s in p.statements if s.effect == effect and s.applies(request)]


def _naming(statements: list[Statement], request: Request) -> list[Statement]:
    return [s for s in statements if s.principals is not None and s.principals.names(request.caller)]


def _naming_account(statements: list[Statement], request: Request) -> list[Statement]:
    return [s for s in statements if s.principals is not None and s.principals.names_account_of(request.caller)]


def message(request: Request, why: str) -> str:
    """AWS's AccessDenied message, e.g. ``User: arn:aws:sts::1:assumed-role/R/S is not authorized to perform:
    sns:Publish on resource: arn:aws:sns:...:t because no identity-based policy allows the sns:Publish action``."""
    return (
        f"User: {request.caller.arn} is not authorized to perform: {request.action} on resource: "
        f"{request.resource} {why}"
    )


def decide(
    request: Request,
    identity: Sequence[Policy] = (),
    resource_policy: Policy | None = None,
    key_policy: Policy | None = None,
) -> Decision:
    """Decide ``request`` against the caller's identity policies, the resource's policy and, for a KMS key, its key
    policy (given only for KMS keys: a key without one denies everything)."""
    resource_side = [p for p in (resource_policy, key_policy) if p is not None]
    identity = identity if request.caller.role_arn else ()
    for policies, kind in ((identity, "identity-based"), (resource_side, "resource-based")):
        denies = _applicable(policies, request, "Deny")
        if kind == "resource-based":
            denies = [
                s
                for s in denies
                if s.principals is not None
                and (s.principals.names(request.caller) or s.principals.names_account_of(request.caller))
            ]
        if denies:
            return Decision(
                request,
                False,
                denies[0].label,
                message(request, f"with an explicit deny in a {kind} policy"),
            )
    identity_allows = _applicable(identity, request, "Allow")
    if key_policy is not None or (request.action.startswith("kms:") and request.resource.startswith("arn:aws:kms:")):
        key_allows = _applicable([key_policy] if key_policy else [], request, "Allow")
        direct = _naming(key_allows, request)
        if direct:
            return Decision(request, True, direct[0].label)
        delegated = _naming_account(key_allows, request)
        if delegated and identity_allows:
            return Decision(request, True, f"{identity_allows[0].label} (key policy: {delegated[0].label})")
        if not delegated:
            return Decision(
                request,
                False,
                "no key policy statement allows it",
                message(request, f"because no resource-based policy allows the {request.action} action"),
            )
        return Decision(
            request,
            False,
            "no identity-based policy allows it",
            message(request, f"because no identity-based policy allows the {request.action} action"),
        )
    if identity_allows:
        return Decision(request, True, identity_allows[0].label)
    resource_allows = _naming(_applicable([resource_policy] if resource_policy else [], request, "Allow"), request)
    if resource_allows:
        return Decision(request, True, resource_allows[0].label)
    kind = "identity-based" if request.caller.role_arn else "resource-based"
    return Decision(
        request,
        False,
        f"no {kind} policy allows it",
        message(request, f"because no {kind} policy allows the {request.action} action"),
    )
