"""Remove one grant from a deployed stack, to show that the local run then fails with AccessDenied naming it.

``without_action`` drops an action from every ``Allow`` statement of a policy document that grants it (an action
pattern such as ``kms:GenerateDataKey*`` that covers it goes too, since IAM has no way to subtract from a pattern),
and drops statements left without actions. ``remove_grant`` applies it to the deployed policies of a role (found by
its logical id in the template) or to a KMS key's key policy, through the IAM and KMS APIs, as a template without
the grant would have deployed them.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from localcloud.iam.conditions import wildcard


def without_action(document: dict[str, Any], action: str, principal_service: str | None = None) -> dict[str, Any]:
    """``document`` without any ``Allow`` of ``action`` (only in statements naming ``principal_service``, if
    given); raises ``LookupError`` when nothing granted it."""
    out = copy.deepcopy(document)
    statements = out["Statement"] if isinstance(out["Statement"], list) else [out["Statement"]]
    kept, removed = [], False
    for statement in statements:
        services = (
            (statement.get("Principal") or {}).get("Service", [])
            if isinstance(statement.get("Principal"), dict)
            else []
        )
        services = [services] if isinstance(services, str) else services
        applies = statement.get("Effect") == "Allow" and (principal_service is None or principal_service in services)
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else list(actions)
        remaining = [a for a in actions if not (applies and wildcard(a, action, ignore_case=True))]
        if len(remaining) != len(actions):
            removed = True
            if not remaining:
                continue
            statement["Action"] = remaining
        kept.append(statement)
    if not removed:
        raise LookupError(f"no Allow of {action} to remove")
    out["Statement"] = kept
    return out


def remove_grant(cloud: Any, logical_id_prefix: str, action: str, principal_service: str | None = None) -> str:
    """Remove ``action`` from the deployed policies of the template resource whose logical id starts with
    ``logical_id_prefix`` (an ``AWS::IAM::Role`` or an ``AWS::KMS::Key``); returns its physical id."""
    deployment = next(iter(cloud.deployments.values()))
    logical, physical = next((k, v) for k, v in deployment.resources.items() if k.startswith(logical_id_prefix))
    kind = deployment.resource_types[logical]
    if kind == "AWS::KMS::Key":
        kms = cloud.clients.kms
        document = json.loads(kms.get_key_policy(KeyId=physical, PolicyName="default")["Policy"])
        kms.put_key_policy(
            KeyId=physical, PolicyName="default", Policy=json.dumps(without_action(document, action, principal_service))
        )
        return str(physical)
    if kind != "AWS::IAM::Role":
        raise ValueError(f"{logical} is a {kind}: only roles and keys carry grants here")
    iam = cloud.clients.iam
    removed = False
    for name in iam.list_role_policies(RoleName=physical)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=physical, PolicyName=name)["PolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        try:
            changed = without_action(document, action)
        except LookupError:
            continue
        iam.put_role_policy(RoleName=physical, PolicyName=name, PolicyDocument=json.dumps(changed))
        removed = True
    if not removed:
        raise LookupError(f"{logical} has no policy granting {action}")
    return str(physical)
