"""Twenty declared datasets stay inside CloudFormation's and IAM's limits, and each dataset adds at most
``RESOURCE_BUDGET_PER_DATASET`` resources (one synth of a generated ``datasets/`` folder; the session's template
of the three samples is the reference).

Limits (documented by AWS): a template holds at most 500 resources, 200 outputs and 200 parameters, and a template
uploaded from S3 at most 1 MB (CloudFormation User Guide, "Understand CloudFormation quotas":
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html); a role's inline
policies hold at most 10,240 characters together (IAM User Guide, "IAM and AWS STS quotas":
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html); a dashboard at most 500 widgets
(CloudWatch API Reference, "Dashboard Body Structure and Syntax"). Later work that adds per-dataset resources
meets the budget here first.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import assertions

from stacks.app import build_app
from stacks.config import StageConfig
from stacks.constructs.dataset import RESOURCES_PER_DATASET
from stacks.datasets import synthetic_declarations
from stacks.footprint import footprints, table
from stacks.mlops_stack import MlopsStack
from tests.infrastructure import test_least_privilege
from tests.infrastructure.helpers import of_type
from tests.infrastructure.policies import identity_statements, literal_parts

DATASETS = 20
RESOURCE_BUDGET_PER_DATASET = 12
"""What one more declared dataset may add to the template (today at most ``RESOURCES_PER_DATASET``: a group, 3
rollback alarms, 4 retrain alarms, a drift schedule, a retrain schedule if it declares one). Raise it only together
with the 20-dataset totals below."""
MAX_RESOURCES, MAX_TEMPLATE_BYTES, MAX_OUTPUTS, MAX_PARAMETERS = 500, 1_000_000, 200, 200
ROLE_INLINE_POLICY_CHARS = 10_240
MAX_DASHBOARD_WIDGETS = 500
ARN_PLACEHOLDER = "x" * 64  # an intrinsic (bucket ARN, account id) as long as a real one, for policy sizes
AB_SERVING = "\nserving:\n  strategy: AB\n  ab: {challenger_share: 0.1, minimum_detectable_effect: 0.02}\n"


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory, config: StageConfig) -> tuple[MlopsStack, Path]:
    """The dev stage with 20 generated declarations, synthesized once (cdk-nag included)."""
    folder = tmp_path_factory.mktemp("datasets-20")
    for path in synthetic_declarations(folder, DATASETS):
        if path.stem.startswith("churn-"):  # the copies of churn are served with an A/B experiment
            path.write_text(path.read_text() + AB_SERVING)
    outdir = tmp_path_factory.mktemp("cdk.out.20")
    app = build_app(stage="dev", outdir=str(outdir), datasets_dir=folder)
    stack = app.node.find_child(config.stack_name)
    assert isinstance(stack, MlopsStack)
    assertions.Template.from_stack(stack)  # synthesizes the app into outdir: cdk-nag fails here on any finding
    return stack, outdir / f"{config.stack_name}.template.json"


@pytest.fixture(scope="module")
def scaled_template(scaled: tuple[MlopsStack, Path]) -> dict[str, Any]:
    return dict(json.loads(scaled[1].read_text()))


def test_twenty_datasets_fit_cloudformation_and_each_adds_at_most_the_budget(
    scaled: tuple[MlopsStack, Path], scaled_template: dict[str, Any], resources: dict[str, Any], stack: MlopsStack
) -> None:
    stack20, path = scaled
    # Given the 20-dataset template and the session's (the three samples)
    total, reference = len(scaled_template["Resources"]), len(resources)
    per_dataset = (total - reference) / (DATASETS - len(stack.dataset_configs))
    size = path.stat().st_size
    print(
        f"\n{table(stack20)}\n{DATASETS} datasets: {total} resources, {size:,} template bytes; "
        f"{per_dataset:g} resources per added dataset (3 datasets: {reference})"
    )
    # Then it stays inside CloudFormation's limits
    assert total < MAX_RESOURCES, total
    assert size < MAX_TEMPLATE_BYTES, size
    assert len(scaled_template.get("Outputs", {})) < MAX_OUTPUTS
    assert len(scaled_template.get("Parameters", {})) < MAX_PARAMETERS
    # And one more dataset costs what its own construct holds, within the budget
    assert per_dataset <= RESOURCES_PER_DATASET <= RESOURCE_BUDGET_PER_DATASET, per_dataset
    # (the copies of tickets declare a retrain schedule, those of churn an A/B experiment: one rule more each)
    configs = stack20.dataset_configs
    rules = {
        f.dataset: bool(configs[f.dataset].retrain.schedule) + (configs[f.dataset].serving.strategy == "AB")
        for f in footprints(stack20)
    }
    assert {rules[f.dataset] for f in footprints(stack20)} == {0, 1}  # no copy declares both
    for footprint in footprints(stack20):
        assert footprint.resources == RESOURCES_PER_DATASET - 2 + rules[footprint.dataset], footprint
    assert len(footprints(stack20)) == DATASETS


def test_datasets_served_with_ab_get_the_evaluators_schedule(scaled_template: dict[str, Any]) -> None:
    # Given the 20-dataset template, whose copies of churn are served with AB
    rules = {
        r["Properties"].get("Name", ""): r["Properties"]
        for r in of_type(scaled_template["Resources"], "AWS::Events::Rule").values()
    }
    experiments = sorted(name for name in rules if name.endswith("-experiment"))
    # Then each of them, and only they, has an experiment schedule at its evaluation cadence (60 min)
    assert experiments == [f"mlops-dev-churn-{n:02d}-experiment" for n in range(1, DATASETS + 1, 3)]
    assert {rules[name]["ScheduleExpression"] for name in experiments} == {"rate(1 hour)"}
    # invoking the one evaluator, with the scheduled event naming the dataset
    targets = {json.dumps(rules[name]["Targets"][0]["Arn"]) for name in experiments}
    assert len(targets) == 1 and "ExperimentEvaluator" in targets.pop()
    assert '"dataset":"churn-01"' in rules["mlops-dev-churn-01-experiment"]["Targets"][0]["InputTransformer"][
        "InputTemplate"
    ].replace(" ", "")


def test_the_evaluator_may_update_endpoints_and_packages_of_the_stage_only(scaled_template: dict[str, Any]) -> None:
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in of_type(scaled_template["Resources"], "AWS::IAM::Policy").values()
        if any("ExperimentEvaluatorRole" in json.dumps(role) for role in p["Properties"].get("Roles", []))
    ]
    statements = [s for group in policies for s in group]
    by_action = {
        json.dumps(sorted(s["Action"]) if isinstance(s["Action"], list) else [s["Action"]]): s for s in statements
    }
    update = by_action[json.dumps(["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpoint"])]
    assert "endpoint/mlops-dev-*" in json.dumps(update["Resource"])
    assert "endpoint-config/mlops-dev-*" in json.dumps(update["Resource"])
    registry = by_action[json.dumps(["sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage"])]
    assert "model-package/mlops-dev-*/*" in json.dumps(registry["Resource"])
    assert "monitoring/experiments/*" in json.dumps(statements) and "monitoring/quality/*" in json.dumps(statements)


def _rendered_size(document: dict[str, Any]) -> int:
    """Characters of a policy document as IAM counts them (no whitespace), intrinsics as long as real ARNs."""
    text = json.dumps(document, separators=(",", ":"), default=str)
    return len(re.sub(r"\$\{[^}]*\}", ARN_PLACEHOLDER, literal_parts_deep(text)))


def literal_parts_deep(text: str) -> str:
    """``text`` (a JSON dump) with every ``Fn::Join`` / ``Ref`` / ``Fn::GetAtt`` object rendered as its literal
    parts, the way ``literal_parts`` renders one value."""
    document = json.loads(text)

    def walk(value: Any) -> Any:
        if isinstance(value, dict) and ({"Fn::Join", "Ref", "Fn::GetAtt"} & set(value)):
            return literal_parts(value)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return json.dumps(walk(document), separators=(",", ":"))


def test_every_roles_inline_policies_fit_iam_with_twenty_datasets(scaled_template: dict[str, Any]) -> None:
    # Given every role's policies (AWS::IAM::Policy resources attached to it and its own inline ones)
    sizes: dict[str, int] = {}
    for logical_id, resource in scaled_template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy":
            for role in props.get("Roles", []):
                sizes[role["Ref"]] = sizes.get(role["Ref"], 0) + _rendered_size(props["PolicyDocument"])
        elif resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                sizes[logical_id] = sizes.get(logical_id, 0) + _rendered_size(policy["PolicyDocument"])
    largest = max(sizes, key=lambda role: sizes[role])
    print(f"\nlargest inline policies: {largest} {sizes[largest]:,} characters of {ROLE_INLINE_POLICY_CHARS:,}")
    # Then each role's total stays under IAM's quota, and aws-cdk-lib did not have to move statements into managed
    # "OverflowPolicy" resources (what it does with a policy it estimates over the quota: one more resource per role)
    over = {role: size for role, size in sizes.items() if size >= ROLE_INLINE_POLICY_CHARS}
    assert not over, over
    assert not of_type(scaled_template["Resources"], "AWS::IAM::ManagedPolicy")


def test_the_shared_functions_keep_small_resource_policies_and_the_dashboard_its_widget_limit(
    scaled_template: dict[str, Any],
) -> None:
    # Given the Lambda permissions of the 20-dataset stack, by function
    permissions: dict[str, int] = {}
    for props in (p["Properties"] for p in of_type(scaled_template["Resources"], "AWS::Lambda::Permission").values()):
        target = json.dumps(props["FunctionName"])
        permissions[target] = permissions.get(target, 0) + 1
    # Then no function's resource policy grows with the datasets (Lambda caps it at 20 KB: one statement for
    # every alarm, one for every schedule)
    assert max(permissions.values()) <= 2, permissions
    # And the dashboard's sections stay under CloudWatch's 500 widgets
    (board,) = of_type(scaled_template["Resources"], "AWS::CloudWatch::Dashboard").values()
    body = literal_parts(board["Properties"]["DashboardBody"])
    assert body.count('"type":') < MAX_DASHBOARD_WIDGETS


def test_least_privilege_holds_with_twenty_datasets(scaled_template: dict[str, Any]) -> None:
    """The data-checked IAM rules of test_least_privilege.py on the 20-dataset template: the ETL role reads each
    dataset's uploads (``datasets/<name>/*``, 20 of them), not the raw zone."""
    templates = {"dev-20": scaled_template}
    test_least_privilege.test_every_action_in_every_statement_is_one_aws_documents(templates)
    test_least_privilege.test_actions_on_star_are_only_those_without_resource_level_permissions(templates)
    test_least_privilege.test_data_actions_touch_only_this_stacks_resources_and_the_cdk_asset_bucket(templates)
    test_least_privilege.test_every_condition_key_applies_to_every_action_of_its_statement(templates)
    raw_reads = {
        literal_parts(resource).rsplit("}", 1)[-1]
        for statement in identity_statements(scaled_template)
        if any(role.startswith("DataLakeEtlRole") for role in statement.roles) and "s3:GetObject*" in statement.actions
        for resource in statement.resources
        if "DataLakeRaw" in json.dumps(resource)
    }
    assert len([p for p in raw_reads if p.startswith("/datasets/")]) == DATASETS, sorted(raw_reads)
    assert "/datasets/*" not in raw_reads and "/*" not in raw_reads
