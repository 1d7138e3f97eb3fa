"""Render CloudFormation intrinsic values enough to read a state machine definition."""

from __future__ import annotations

import json
from typing import Any


def render(value: Any) -> str:
    """Fn::Join / Ref / GetAtt rendered as readable placeholders."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return sep.join(render(p) for p in parts)
        if "Ref" in value:
            return f"${{{value['Ref']}}}"
        if "Fn::GetAtt" in value:
            return f"${{{'.'.join(value['Fn::GetAtt'])}}}"
        if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
            return str(value["Fn::Sub"])
        if "Fn::Select" in value or "Fn::Split" in value:
            return "${expr}"
    raise TypeError(f"cannot render {value!r}")


def definition(resource: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(render(resource["Properties"]["DefinitionString"])))


def of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in resources.items() if v["Type"] == kind}
