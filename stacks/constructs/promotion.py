"""Promotion across accounts: the target stage's side of ``mlops promote`` (cli/promote.py).

A role named ``<prefix>-promotion`` that the source stage's account may assume (its operators still need
``sts:AssumeRole`` on it in their own account: "Granting a user permissions to switch roles", IAM User Guide,
https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_permissions-to-switch.html). It may only:

- put the promoted copies into this stage's artifacts bucket, under ``models/promoted/*`` (the endpoint role reads
  ``models/*``) and ``evaluations/promoted-*`` (the deploy Lambda reads the golden payloads under ``evaluations/*``),
  encrypted with the data key: ``kms:GenerateDataKey``, and ``kms:Decrypt`` because a multipart upload to an
  SSE-KMS bucket needs it ("Uploading and copying objects using multipart upload", Amazon S3 User Guide:
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions);
- register packages in this stage's model package groups, and list and describe them (a repeated promotion
  finds its earlier copy);
- describe this stack (its outputs name the bucket and the groups).

The role lives in the target account with the bucket and key, so its identity policy suffices: the bucket policy
and the key policy (the account may delegate to IAM, CDK's default) open nothing to the other account.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

MODELS_PREFIX = "models/promoted/"
EVALUATIONS_PREFIX = "evaluations/promoted-"


class PromotionAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        source_account: str,
        artifacts: s3.IBucket,
        key: kms.IKey,
        model_package_groups: list[str],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.role_name = f"{prefix}-promotion"
        self.role = iam.Role(
            self,
            "Role",
            role_name=self.role_name,
            assumed_by=iam.AccountPrincipal(source_account),
            description=f"mlops promote from account {source_account}: copy approved models into {prefix}'s registry",
            max_session_duration=cdk.Duration.hours(1),
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                resources=[
                    artifacts.arn_for_objects(f"{MODELS_PREFIX}*"),
                    artifacts.arn_for_objects(f"{EVALUATIONS_PREFIX}*"),
                ],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[key.key_arn])
        )
        groups = [
            stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=g)
            for g in model_package_groups
        ]
        packages = [
            stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{g}/*")
            for g in model_package_groups
        ]
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateModelPackage",
                    "sagemaker:ListModelPackages",
                    "sagemaker:DescribeModelPackage",
                ],
                resources=groups + packages,
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["cloudformation:DescribeStacks"], resources=[stack.stack_id])
        )

    def acknowledgments(self, artifacts_ref: str, package_arns: list[str]) -> dict[str, str]:
        """cdk-nag IAM5 findings of the role, each with its reason (for ``stacks/nag.py``): ``artifacts_ref`` is the
        bucket's ``<LogicalId.Arn>`` and ``package_arns`` each group's ``.../model-package/<group>/*`` as cdk-nag
        writes them (``stacks.nag._account_arn``)."""
        copies = "mlops promote writes only promoted copies: objects under a fixed prefix of the artifacts bucket"
        packages = (
            "CreateModelPackage/DescribeModelPackage name package versions, which exist only after registration; "
            "the versions of this stage's own groups"
        )
        return {
            f"AwsSolutions-IAM5[Resource::{artifacts_ref}/{MODELS_PREFIX}*]": copies,
            f"AwsSolutions-IAM5[Resource::{artifacts_ref}/{EVALUATIONS_PREFIX}*]": copies,
            **{f"AwsSolutions-IAM5[Resource::{arn}]": packages for arn in package_arns},
        }
