"""Render CloudFormation intrinsic values enough to read a state machine definition."""

from __future__ import annotations

import json
from typing import Any

from localcloud.timeline import render_intrinsics as render


def definition(resource: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(render(resource["Properties"]["DefinitionString"])))


def of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in resources.items() if v["Type"] == kind}


def policy_statements(resources: dict[str, Any], role_prefix: str) -> list[dict[str, Any]]:
    """The statements of the ``AWS::IAM::Policy`` resources whose logical id starts with ``role_prefix``."""
    return [
        statement
        for k, v in of_type(resources, "AWS::IAM::Policy").items()
        if k.startswith(role_prefix)
        for statement in v["Properties"]["PolicyDocument"]["Statement"]
    ]
