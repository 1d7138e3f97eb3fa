"""Policy documents as statements that know whether they apply to a request.

The grammar is AWS's (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html): a document
has ``Version``, ``Id`` and ``Statement``; a statement ``Sid``, ``Effect``, ``Principal``, ``Action`` / ``NotAction``,
``Resource`` / ``NotResource`` and ``Condition``. Anything else, and anything this evaluator does not model
(``NotPrincipal``, ``Federated`` / ``CanonicalUser`` principals, policy variables, an action or condition key that the
Service Authorization Reference does not define), raises ``PolicyError`` when the document is read: a policy the
evaluator does not understand is refused loudly, never half-applied.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from localcloud.iam import catalog, conditions
from localcloud.iam.conditions import ConditionError, wildcard

Kind = Literal["identity", "resource"]
DOCUMENT_KEYS = frozenset({"Version", "Id", "Statement"})
STATEMENT_KEYS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)
VERSIONS = ("2012-10-17", "2008-10-17")
MODELLED_GLOBAL_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:SecureTransport",
        "aws:PrincipalArn",
        "aws:PrincipalAccount",
        "aws:PrincipalType",
        "aws:PrincipalIsAWSService",
        "aws:PrincipalServiceName",
        "aws:userid",
        "aws:username",
        "aws:SourceArn",
        "aws:SourceAccount",
        "aws:SourceOwner",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:RequestedRegion",
        "aws:ResourceAccount",
        "aws:ViaAWSService",
        "aws:CalledVia",
        "aws:CalledViaFirst",
        "aws:CalledViaLast",
    )
)
"""Global keys the local request context always models: absent from it means absent in AWS too."""


class PolicyError(ValueError):
    """A policy (or a condition in it) the local evaluator does not understand."""


@dataclass(frozen=True)
class Caller:
    """Who makes a call: a role session (``role_arn`` set) or an AWS service principal (``service`` set)."""

    arn: str  # arn:aws:sts::<account>:assumed-role/<role>/<session>, or the service principal's name
    account: str
    role_arn: str | None = None
    service: str | None = None

    @property
    def kind(self) -> str:
        return "AssumedRole" if self.role_arn else "AWSService"


@dataclass(frozen=True)
class Request:
    """One authorization request: the action on one resource with its request context.

    ``context`` maps lower-case condition keys to their values; ``modelled`` names the service condition keys
    (lower case; a trailing ``*`` a prefix) the call's mapping supplies for this action, present or not."""

    caller: Caller
    action: str
    resource: str
    context: Mapping[str, Sequence[str]] = field(default_factory=dict)
    modelled: frozenset[str] = frozenset()
    via: str = ""  # the API call this request was derived from, when it is an implied one

    def value(self, key: str) -> Sequence[str] | None:
        lower = key.lower()
        if lower in self.context:
            return self.context[lower]
        if lower in catalog.GLOBAL_KEYS or lower.startswith(catalog.GLOBAL_KEY_PREFIXES):
            if lower in MODELLED_GLOBAL_KEYS:
                return None
            raise PolicyError(f"global condition key {key} is not modelled by the local IAM evaluator")
        if catalog.key_applies(lower, self.action) and not self._models(lower):
            raise PolicyError(f"condition key {key} of {self.action} is not modelled by the local IAM evaluator")
        return None

    def _models(self, key: str) -> bool:
        return any(key == m or (m.endswith("*") and key.startswith(m[:-1])) for m in self.modelled)


def _strings(value: Any, element: str) -> tuple[str, ...]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) for v in values):
        raise PolicyError(f"{element} must be a string or a list of strings, got {value!r}")
    return tuple(values)


@dataclass(frozen=True)
class Principals:
    """A ``Principal`` element: ``everyone``, AWS principals (account, role, session ARNs) and service names."""

    everyone: bool = False
    aws: tuple[str, ...] = ()
    services: tuple[str, ...] = ()

    @staticmethod
    def parse(raw: Any) -> Principals:
        if raw == "*":
            return Principals(everyone=True)
        if not isinstance(raw, dict):
            raise PolicyError(f"Principal {raw!r} is not '*' or a map")
        unknown = set(raw) - {"AWS", "Service"}
        if unknown:
            raise PolicyError(f"Principal types {sorted(unknown)} are not modelled by the local IAM evaluator")
        aws = tuple("*" if a == "*" else a for a in _strings(raw["AWS"], "Principal.AWS")) if "AWS" in raw else ()
        services = _strings(raw["Service"], "Principal.Service") if "Service" in raw else ()
        return Principals(everyone="*" in aws, aws=tuple(a for a in aws if a != "*"), services=services)

    @staticmethod
    def _account_of(entry: str) -> str | None:
        if entry.isdigit() and len(entry) == 12:
            return entry
        parts = entry.split(":")
        if len(parts) == 6 and parts[2] == "iam" and parts[5] == "root":
            return parts[4]
        return None

    def names(self, caller: Caller) -> bool:
        """The element names the caller itself (not only its account)."""
        if self.everyone:
            return True
        if caller.service is not None:
            return caller.service.lower() in (s.lower() for s in self.services)
        return any(a in (caller.arn, caller.role_arn) for a in self.aws)

    def names_account_of(self, caller: Caller) -> bool:
        """The element names the caller's account (``arn:aws:iam::<account>:root`` or the bare account id)."""
        return caller.service is None and any(self._account_of(a) == caller.account for a in self.aws)


@dataclass(frozen=True)
class Statement:
    effect: str
    label: str  # where it comes from, for the journal: "<policy name> statement <n> (<Sid>)"
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] | None = None
    not_resources: tuple[str, ...] | None = None
    principals: Principals | None = None
    condition: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (operator, key, values)

    def matches_action(self, action: str) -> bool:
        if self.actions:
            return any(wildcard(p, action, ignore_case=True) for p in self.actions)
        return not any(wildcard(p, action, ignore_case=True) for p in self.not_actions)

    def matches_resource(self, resource: str) -> bool:
        if self.resources is not None:
            return any(wildcard(p, resource) for p in self.resources)
        if self.not_resources is not None:
            return not any(wildcard(p, resource) for p in self.not_resources)
        return True  # a resource-based policy's statement without Resource: the resource it is attached to

    def conditions_hold(self, request: Request) -> bool:
        try:
            return all(conditions.check(op, values, request.value(key)) for op, key, values in self.condition)
        except ConditionError as error:
            raise PolicyError(f"{self.label}: {error}") from None

    def applies(self, request: Request) -> bool:
        """Action, resource and conditions match (the principal is checked by the caller of this)."""
        return (
            self.matches_action(request.action)
            and self.matches_resource(request.resource)
            and self.conditions_hold(request)
        )


def _parse_statement(raw: Any, kind: Kind, label: str) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyError(f"{label}: a statement must be a map")
    unknown = set(raw) - STATEMENT_KEYS
    if unknown:
        raise PolicyError(f"{label}: policy elements {sorted(unknown)} are not understood")
    if "NotPrincipal" in raw:
        raise PolicyError(f"{label}: NotPrincipal is not modelled by the local IAM evaluator")
    if raw.get("Effect") not in ("Allow", "Deny"):
        raise PolicyError(f"{label}: Effect must be Allow or Deny, got {raw.get('Effect')!r}")
    if ("Action" in raw) == ("NotAction" in raw):
        raise PolicyError(f"{label}: exactly one of Action and NotAction is required")
    if "Resource" in raw and "NotResource" in raw:
        raise PolicyError(f"{label}: Resource and NotResource cannot both be given")
    if kind == "identity" and ("Principal" in raw):
        raise PolicyError(f"{label}: an identity-based policy cannot have a Principal")
    if kind == "identity" and "Resource" not in raw and "NotResource" not in raw:
        raise PolicyError(f"{label}: an identity-based policy statement needs Resource or NotResource")
    if kind == "resource" and "Principal" not in raw:
        raise PolicyError(f"{label}: a resource-based policy statement needs a Principal")
    actions = _strings(raw.get("Action", raw.get("NotAction")), "Action")
    for pattern in actions:
        try:
            if not catalog.matching_actions(pattern):
                raise PolicyError(f"{label}: action {pattern!r} matches no action AWS defines")
        except catalog.CatalogError as error:
            raise PolicyError(f"{label}: {error}") from None
    resources = {k: _strings(raw[k], k) for k in ("Resource", "NotResource") if k in raw}
    for values in resources.values():
        for value in values:
            if "${" in value:
                raise PolicyError(f"{label}: policy variable in {value!r} is not supported")
    parsed_condition = []
    for operator, block in (raw.get("Condition") or {}).items():
        try:
            conditions.split_operator(operator)
        except ConditionError as error:
            raise PolicyError(f"{label}: {error}") from None
        if not isinstance(block, dict):
            raise PolicyError(f"{label}: Condition {operator} must map keys to values")
        for key, value in block.items():
            if not catalog.key_known(key):
                raise PolicyError(f"{label}: condition key {key!r} is not defined by AWS")
            try:
                parsed_condition.append((operator, key, tuple(conditions.policy_values(value))))
            except ConditionError as error:
                raise PolicyError(f"{label}: {error}") from None
    return Statement(
        effect=raw["Effect"],
        label=label,
        actions=actions if "Action" in raw else (),
        not_actions=actions if "NotAction" in raw else (),
        resources=resources.get("Resource"),
        not_resources=resources.get("NotResource"),
        principals=Principals.parse(raw["Principal"]) if "Principal" in raw else None,
        condition=tuple(parsed_condition),
    )


@dataclass(frozen=True)
class Policy:
    name: str
    kind: Kind
    statements: tuple[Statement, ...]


def parse(document: str | Mapping[str, Any], name: str, kind: Kind) -> Policy:
    """A policy document (JSON text or parsed) as statements; ``PolicyError`` when not understood."""
    text = document if isinstance(document, str) else json.dumps(document, sort_keys=True)
    return _parse(text, name, kind)


@functools.lru_cache(maxsize=512)
def _parse(text: str, name: str, kind: Kind) -> Policy:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise PolicyError(f"{name}: not JSON: {error}") from None
    if not isinstance(raw, dict):
        raise PolicyError(f"{name}: a policy document must be a map")
    unknown = set(raw) - DOCUMENT_KEYS
    if unknown:
        raise PolicyError(f"{name}: policy elements {sorted(unknown)} are not understood")
    if raw.get("Version", "2008-10-17") not in VERSIONS:
        raise PolicyError(f"{name}: Version {raw.get('Version')!r} is not a policy language version")
    statements = raw.get("Statement")
    statements = statements if isinstance(statements, list) else [statements]
    parsed = []
    for index, statement in enumerate(statements, 1):
        sid = statement.get("Sid") if isinstance(statement, dict) else None
        label = f"{name} statement {index}" + (f" ({sid})" if sid else "")
        parsed.append(_parse_statement(statement, kind, label))
    return Policy(name, kind, tuple(parsed))
