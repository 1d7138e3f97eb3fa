"""The IAM decision journal of a run as a Markdown table: every principal, the actions it was decided on, allowed or
denied, how often, an example resource and the statement that decided (``mlops demo --iam-report FILE``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _short(principal: str) -> str:
    return principal.rsplit("/", 1)[-1] if principal.startswith("arn:aws:iam::") else principal


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"IAM enforced: {'yes' if report.get('enforced') else 'no (LOCALCLOUD_IAM=0)'}; "
        f"{report.get('decisions', 0)} decisions, {len(report.get('denials') or [])} denied.",
        "",
        "| principal | action | outcome | decisions | example resource | via | decided by |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report.get("summary") or []:
        resource = (row["resources"] or ["*"])[0]
        lines.append(
            f"| {_short(row['principal'])} | {row['action']} | {row['outcome']} | {row['count']} | `{resource}` "
            f"| {row['via'] or ', '.join(row['calls'][:1])} | {row['statement']} |"
        )
    denials = report.get("denials") or []
    if denials:
        lines += ["", "Denied calls:", ""]
        lines += [f"- {d['message'] or d['statement']} (call {d['call']})" for d in denials]
    return "\n".join(lines) + "\n"


def write(report: dict[str, Any], path: Path) -> None:
    path.write_text(markdown(report))
