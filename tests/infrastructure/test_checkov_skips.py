"""checkov skips in the synthesized templates (stacks/checkov_skips.py): each one a declared skip of that stage with
its reason, on the resources it is declared for, and counted in the README. Whether each skip is still needed (its
check still fails there) is checkov's to say: ``make synth`` fails on a stale skip (stacks/checkov_gate.py)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from stacks.checkov_gate import skips_in
from stacks.checkov_skips import NETWORK_PRIVATE, NOT_IN_VPC, RESERVATIONS_OFF, SKIPS, apply_skips
from stacks.config import FUNCTION_CONCURRENCY, load_config
from stacks.mlops_stack import MlopsStack

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_skip_in_a_template_is_a_declared_skip_of_that_stage(stage_templates: dict[str, dict[str, Any]]) -> None:
    for stage, template in stage_templates.items():
        declared = {(s.check, s.reason) for s in SKIPS if stage in s.stages}
        found = skips_in(template)
        assert found, stage
        for (resource, check), reason in found.items():
            assert (check, reason) in declared, f"{stage}: {resource} skips {check} with an undeclared reason"
        # every declared skip of the stage is written somewhere (else it is dead code in the skip file)
        assert {(c, r) for (_, c), r in found.items()} == declared, stage


def test_only_dev_functions_are_skipped_for_vpc(stage_templates: dict[str, dict[str, Any]]) -> None:
    """dev runs ``network: public``: every function is skipped for CKV_AWS_117 and none is in a VPC; prod runs
    ``network: private``: no function is skipped and every one is in the VPC (tests/infrastructure/test_network.py)."""
    assert NETWORK_PRIVATE in NOT_IN_VPC.reason
    for stage, template in stage_templates.items():
        functions = {k for k, v in template["Resources"].items() if v["Type"] == "AWS::Lambda::Function"}
        vpc = {resource for (resource, check) in skips_in(template) if check == NOT_IN_VPC.check}
        in_vpc = {f for f in functions if "VpcConfig" in template["Resources"][f]["Properties"]}
        assert functions, stage
        if stage == "dev":
            assert (vpc, in_vpc) == (functions, set()), stage
        else:
            assert (vpc, in_vpc) == (set(), functions), stage


def test_skips_are_per_resource_not_per_type(stage_templates: dict[str, dict[str, Any]]) -> None:
    """A function with a dead-letter queue is not skipped for CKV_AWS_116, a function with reserved concurrency
    not for CKV_AWS_115: a new asynchronous function without queue would fail the gate."""
    for stage, template in stage_templates.items():
        skipped = skips_in(template)
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] != "AWS::Lambda::Function":
                continue
            properties = resource["Properties"]
            assert ((logical_id, "CKV_AWS_116") in skipped) != ("DeadLetterConfig" in properties), logical_id
            reserved = "ReservedConcurrentExecutions" in properties
            assert ((logical_id, "CKV_AWS_115") in skipped) != reserved, (stage, logical_id)


def test_each_unreserved_function_is_skipped_with_its_own_decision(stage_templates: dict[str, dict[str, Any]]) -> None:
    """The CKV_AWS_115 reason of each of our functions is its decision in stacks/config.py FUNCTION_CONCURRENCY
    (why no figure), or in a stage without reservations, why that stage has none."""
    for stage, template in stage_templates.items():
        concurrency = load_config(stage).concurrency
        for logical_id, resource in template["Resources"].items():
            construct_id = resource.get("Metadata", {}).get("aws:cdk:path", "").split("/")[-2:-1]
            if resource["Type"] != "AWS::Lambda::Function" or construct_id[0] not in FUNCTION_CONCURRENCY:
                continue
            decision = FUNCTION_CONCURRENCY[construct_id[0]]
            reason = skips_in(template).get((logical_id, "CKV_AWS_115"))
            expected = decision.reason if decision.limit is None else None if concurrency.reserve else RESERVATIONS_OFF
            assert reason == expected, (stage, construct_id)


def test_checkov_metadata_written_elsewhere_is_refused(stack: MlopsStack) -> None:
    """Every skip lives in stacks/checkov_skips.py: a resource that already carries one (here: the skips applied
    when the stack was built) is refused before anything is written."""
    with pytest.raises(ValueError, match="checkov metadata written outside"):
        apply_skips(stack, SKIPS[:1])


def test_readme_counts_are_the_templates(stage_templates: dict[str, dict[str, Any]]) -> None:
    text = README.read_text()
    for stage, template in stage_templates.items():
        row = re.search(rf"^\| {stage} \| \d+ \| (\d+) \| (\d+) \|", text, re.MULTILINE)
        assert row, f"README has no checkov row for {stage}"
        found = skips_in(template)
        checks = Counter(check for _, check in found)
        assert (int(row.group(1)), int(row.group(2))) == (len(checks), len(found)), stage
