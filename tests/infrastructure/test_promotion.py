"""``PromotionAccess``: the target stage's promotion role trusts the source account only, and may only put promoted
copies, use the data key, register packages in its groups and describe its stack (cdk-nag clean once its findings
are acknowledged with their reasons)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from stacks.app import build_app, cdk_json_context
from stacks.config import STAGES, load_config
from stacks.constructs.promotion import PromotionAccess

SOURCE = "111111111111"


ARTIFACTS = "arn:aws:s3:::mlops-prod-artifacts"
PACKAGES = "arn:aws:sagemaker:us-east-1:222222222222:model-package/mlops-prod-churn/*"
KEY = "arn:aws:kms:us-east-1:222222222222:key/11111111-2222-3333-4444-555555555555"


def build() -> tuple[cdk.Stack, PromotionAccess]:
    """The construct alone in a prod-account stack, over the data lake's bucket and key (imported: the data lake
    and its own findings are tested elsewhere)."""
    app = cdk.App(context=cdk_json_context())
    config = load_config("prod")
    stack = cdk.Stack(app, "promotion", env=cdk.Environment(account="222222222222", region="us-east-1"))
    access = PromotionAccess(
        stack,
        "Promotion",
        prefix=config.prefix,
        source_account=SOURCE,
        artifacts=s3.Bucket.from_bucket_arn(stack, "Artifacts", ARTIFACTS),
        key=kms.Key.from_key_arn(stack, "Key", KEY),
        model_package_groups=["mlops-prod-churn"],
    )
    return stack, access


def test_the_role_trusts_the_source_account_and_grants_only_the_copy() -> None:
    # Given the construct in a prod stack
    stack, access = build()
    template = assertions.Template.from_stack(stack)
    # Then one role, named for the CLI, assumable by the source account
    (role,) = [r for r in template.find_resources("AWS::IAM::Role").values() if r["Properties"].get("RoleName")]
    assert role["Properties"]["RoleName"] == "mlops-prod-promotion" == access.role_name
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRole"
    assert SOURCE in str(trust["Principal"]["AWS"])
    # And exactly these actions
    policies = template.find_resources("AWS::IAM::Policy")
    actions = sorted(
        a
        for p in policies.values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    )
    assert actions == [
        "cloudformation:DescribeStacks",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "s3:PutObject",
        "sagemaker:CreateModelPackage",
        "sagemaker:DescribeModelPackage",
        "sagemaker:ListModelPackages",
    ]
    puts = [
        s
        for p in policies.values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "s3:PutObject"
    ]
    text = str(puts)
    assert "/models/promoted/*" in text and "/evaluations/promoted-*" in text


def test_cdk_nag_is_clean_with_the_acknowledged_findings() -> None:
    # Given the construct under AwsSolutions with its findings acknowledged
    stack, access = build()
    for finding, reason in access.acknowledgments(ARTIFACTS, [PACKAGES]).items():
        cdk.Validations.of(access.role).acknowledge(cdk.Acknowledgment(id=finding, reason=reason))
    cdk.Validations.of(stack).add_plugins(AwsSolutionsChecks(stack, verbose=True))
    # Then the synthesis raises no finding (an unacknowledged one fails it: ValidationFailed)
    assertions.Template.from_stack(stack)


def _prod_stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dev_account: str, prod_account: str) -> Any:
    """The whole prod stack with both stages' accounts configured (cdk-nag attached, as in every synth)."""
    monkeypatch.setitem(STAGES, "dev", replace(STAGES["dev"], account=dev_account))
    monkeypatch.setitem(STAGES, "prod", replace(STAGES["prod"], account=prod_account))
    app = build_app(stage="prod", outdir=str(tmp_path / "cdk.out"))
    return app.node.find_child(STAGES["prod"].stack_name)


def test_prod_in_its_own_account_gets_the_promotion_role_for_devs_account(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given dev and prod configured in two accounts
    stack = _prod_stack(monkeypatch, tmp_path, SOURCE, "222222222222")
    # When prod is synthesized (cdk-nag fails the synthesis on an unacknowledged finding of the role)
    template = assertions.Template.from_stack(stack)
    # Then the role the CLI assumes exists, trusts dev's account, and may register in every dataset's group
    roles = {
        r["Properties"]["RoleName"]: r
        for r in template.find_resources("AWS::IAM::Role").values()
        if isinstance(r["Properties"].get("RoleName"), str)
    }
    assert SOURCE in str(roles["mlops-prod-promotion"]["Properties"]["AssumeRolePolicyDocument"])
    text = str(template.find_resources("AWS::IAM::Policy"))
    for config in stack.dataset_configs.values():
        assert f"model-package/{config.model_package_group_name}/*" in text


def test_one_account_needs_no_promotion_role(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given both stages in one account (the operator's own session copies)
    stack = _prod_stack(monkeypatch, tmp_path, "222222222222", "222222222222")
    # Then prod has no promotion role
    assert stack.promotion is None
