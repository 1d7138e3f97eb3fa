"""The checkov gate of ``make synth``: every failed check of every template is either skipped with a reason or fails.

    python -m stacks.checkov_gate --checkov .venv-checkov/bin/checkov cdk.out/*.template.json

checkov (pinned in ``requirements-checkov.lock``, its own virtualenv: its dependencies conflict with this project's)
scans a copy of each template without its ``checkov`` skip metadata, so that every check is evaluated; the skips
(``stacks/checkov_skips.py`` writes them) are then matched per resource and check id. The gate fails, listing check,
resource and template, on

- a failed check that is not skipped on that resource,
- a skip without a reason (``comment``),
- a skip whose check does not fail on that resource (stale: the resource was fixed, or the check does not apply),

and prints per template the checks passed, failed and skipped (findings and distinct check ids).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHECKOV_ARGS = ("--framework", "cloudformation", "--output", "json", "--compact", "--skip-download")
"""``--skip-download``: nothing is fetched (no guidelines, no platform policies); the result depends on the pinned
version and the template only."""


@dataclass(frozen=True, order=True)
class Finding:
    """One failed check on one resource of one template."""

    template: str
    resource: str  # the logical id
    check: str
    name: str = field(default="", compare=False)

    def __str__(self) -> str:
        title = f" ({self.name})" if self.name else ""
        return f"{self.check}{title} on {self.resource} in {self.template}"


@dataclass(frozen=True)
class Verdict:
    """What the gate found over every template."""

    passed: dict[str, int]
    failed: list[Finding]
    skipped: dict[Finding, str]
    stale: list[Finding]
    unexplained: list[Finding]

    @property
    def ok(self) -> bool:
        return not (self.failed or self.stale or self.unexplained)

    def report(self) -> str:
        lines = []
        for template in sorted(self.passed):
            skipped = [f for f in self.skipped if f.template == template]
            failed = [f for f in self.failed if f.template == template]
            lines.append(
                f"checkov {template}: {self.passed[template]} passed, {len(failed)} failed, {len(skipped)} skipped "
                f"({len({f.check for f in skipped})} check ids: {', '.join(sorted({f.check for f in skipped})) or '-'})"
            )
        for title, findings in (
            ("failed check(s) not skipped (fix, or skip with the reason in stacks/checkov_skips.py)", self.failed),
            ("skip(s) without a reason", self.unexplained),
            ("stale skip(s): the check does not fail there (remove from stacks/checkov_skips.py)", self.stale),
        ):
            if findings:
                lines.append(f"{len(findings)} {title}:")
                lines.extend(f"  {finding}" for finding in sorted(findings))
        return "\n".join(lines)


def skips_in(template: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    """(logical id, check id) -> reason of every ``Metadata.checkov.skip`` entry (an empty reason stays empty)."""
    found: dict[tuple[str, str], str] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        for entry in (resource.get("Metadata") or {}).get("checkov", {}).get("skip", []):
            found[(logical_id, str(entry.get("id", "")))] = str(entry.get("comment") or "").strip()
    return found


def without_skips(template: Mapping[str, Any]) -> dict[str, Any]:
    """The template with every resource's ``checkov`` metadata removed: what the gate scans."""
    stripped = json.loads(json.dumps(template))
    for resource in stripped.get("Resources", {}).values():
        metadata = resource.get("Metadata")
        if isinstance(metadata, dict):
            metadata.pop("checkov", None)
    return stripped


def _reports(output: Any) -> list[Mapping[str, Any]]:
    """checkov's JSON: one report (a dict) for one framework, a list of them otherwise."""
    reports = output if isinstance(output, list) else [output]
    if not all(isinstance(r, dict) and "summary" in r for r in reports):
        raise ValueError(f"unexpected checkov output: {str(output)[:300]}")
    return [r for r in reports if r.get("check_type", "cloudformation") == "cloudformation"]


def parse(output: Any, templates: Iterable[str]) -> tuple[dict[str, int], list[Finding]]:
    """Passed counts per template and the failed findings, from checkov's JSON ``output`` of a scan of files named
    like ``templates`` (matched by file name: the gate scans copies)."""
    names = {Path(t).name: t for t in templates}
    passed = dict.fromkeys(names.values(), 0)
    failed: list[Finding] = []
    for report in _reports(output):
        if report["summary"].get("parsing_errors"):
            raise ValueError(f"checkov could not parse {report['summary']['parsing_errors']} template(s)")
        results = report.get("results", {})
        for check in results.get("passed_checks", []):
            passed[names[Path(check["file_abs_path"]).name]] += 1
        for check in results.get("failed_checks", []):
            _type, _, logical_id = str(check["resource"]).partition(".")  # AWS::Lambda::Function.<logical id>
            template = names[Path(check["file_abs_path"]).name]
            failed.append(Finding(template, logical_id, check["check_id"], check.get("check_name") or ""))
    return passed, failed


def judge(
    passed: Mapping[str, int], failed: Sequence[Finding], skips: Mapping[str, Mapping[tuple[str, str], str]]
) -> Verdict:
    """Matches ``failed`` with ``skips`` (per template: (logical id, check id) -> reason)."""
    declared = {
        Finding(template, resource, check): reason
        for template, found in skips.items()
        for (resource, check), reason in found.items()
    }
    failing = set(failed)  # a Finding compares by template, resource and check
    return Verdict(
        passed=dict(passed),
        failed=[f for f in failed if f not in declared],
        skipped={f: declared[f] for f in failed if f in declared},
        stale=[f for f in declared if f not in failing],
        unexplained=[f for f, reason in declared.items() if not reason],
    )


def run_checkov(checkov: str, files: Sequence[Path]) -> Any:
    args = [checkov, *CHECKOV_ARGS, *(a for f in files for a in ("--file", str(f)))]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):  # 1: some check failed
        raise RuntimeError(f"checkov exited {done.returncode}: {done.stderr[-2000:]}")
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as e:
        raise RuntimeError(f"checkov printed no JSON ({e}): {done.stdout[:500]} {done.stderr[-2000:]}") from None


def gate(checkov: str, templates: Sequence[str]) -> Verdict:
    if not templates:
        raise ValueError("no template to scan")
    loaded = {t: json.loads(Path(t).read_text()) for t in templates}
    if len({Path(t).name for t in templates}) != len(templates):
        raise ValueError(f"two templates with one file name: {sorted(templates)}")
    with tempfile.TemporaryDirectory(prefix="checkov-gate-") as tmp:
        copies = []
        for t, template in loaded.items():
            copy = Path(tmp) / Path(t).name
            copy.write_text(json.dumps(without_skips(template)))
            copies.append(copy)
        passed, failed = parse(run_checkov(checkov, copies), templates)
    return judge(passed, failed, {t: skips_in(template) for t, template in loaded.items()})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stacks.checkov_gate", description=__doc__.splitlines()[0])
    parser.add_argument("--checkov", default="checkov", help="the checkov executable (make synth: .venv-checkov's)")
    parser.add_argument("templates", nargs="+", help="synthesized templates (cdk.out/*.template.json)")
    args = parser.parse_args(argv)
    verdict = gate(args.checkov, args.templates)
    print(verdict.report())
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
