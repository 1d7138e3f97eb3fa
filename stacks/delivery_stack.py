"""``mlops-delivery``: what GitHub Actions needs in one account, deployed once per account by hand.

- the GitHub OIDC provider (or the account's existing one, context ``github_oidc_provider=import``);
- per stage deployed into this account (context ``delivery_stages``, default every stage): a deploy role that may
  only assume the CDK bootstrap roles of the stage's region (deploy, file and image publishing, lookup), trusted
  for the stage's branch (dev: ``main``) or its protected environment (prod), and for a stage with
  ``Delivery.smoke`` a smoke-run role with what ``mlops smoke`` calls, trusted like the deploy role;
- one read-only diff role, trusted for pull requests, that may only assume the bootstrap lookup roles:
  ``cdk diff --method=template`` "compares templates directly and uses the lookup role" (CDK CLI 2.1148
  ``cdk diff --help``; the change-set method needs the deploy role).

``stacks/app.py`` adds it only when context ``github_repository`` (``OWNER/NAME``) is given: the trust needs it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from pipelines.platform import RAW_DATASETS_PREFIX
from stacks.config import PROJECT, STAGES, StageConfig, load_config
from stacks.constructs.github_oidc import (
    GithubOidc,
    bootstrap_role_arn,
    branch_subject,
    environment_subject,
    pull_request_subject,
)

STACK_NAME = f"{PROJECT}-delivery"
DEPLOY_BOOTSTRAP_ROLES = ("deploy", "file-publishing", "image-publishing", "lookup")


def deploy_role_name(config: StageConfig) -> str:
    return f"{config.prefix}-github-deploy"


def smoke_role_name(config: StageConfig) -> str:
    return f"{config.prefix}-github-smoke"


DIFF_ROLE_NAME = f"{PROJECT}-github-diff"


class DeliveryStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        repository: str,
        stages: Sequence[StageConfig],
        import_provider: bool = False,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        cdk.Tags.of(self).add("project", PROJECT)
        qualifier = str(self.node.try_get_context("@aws-cdk/core:bootstrapQualifier") or "hnb659fds")
        self.oidc = GithubOidc(self, "GitHub", repository=repository, import_provider=import_provider)
        self.deploy_roles: dict[str, iam.Role] = {}
        self.smoke_roles: dict[str, iam.Role] = {}
        for config in stages:
            principal = self._stage_principal(config)
            self.deploy_roles[config.stage] = self.oidc.role(
                f"Deploy{config.stage.title()}",
                role_name=deploy_role_name(config),
                principal=principal,
                description=f"GitHub Actions deploys {config.stack_name} through the CDK bootstrap roles only",
                statements=[
                    _assume(bootstrap_role_arn(kind, config.region, qualifier) for kind in DEPLOY_BOOTSTRAP_ROLES)
                ],
            )
            if config.delivery.smoke:
                self.smoke_roles[config.stage] = self.oidc.role(
                    f"Smoke{config.stage.title()}",
                    role_name=smoke_role_name(config),
                    principal=principal,
                    description=f"GitHub Actions' smoke run against {config.stack_name} (mlops smoke)",
                    statements=smoke_statements(config),
                )
                _acknowledge_smoke(self.smoke_roles[config.stage], config)
        regions = sorted({config.region for config in stages})
        self.diff_role = self.oidc.role(
            "Diff",
            role_name=DIFF_ROLE_NAME,
            principal=self.oidc.principal(pull_request_subject(repository)),
            description="GitHub Actions' cdk diff on pull requests: the CDK lookup roles (read-only) only",
            statements=[_assume(bootstrap_role_arn("lookup", region, qualifier) for region in regions)],
        )
        self._outputs()

    def _stage_principal(self, config: StageConfig) -> iam.WebIdentityPrincipal:
        repository, delivery = self.oidc.repository, config.delivery
        if delivery.environment is None:
            return self.oidc.principal(branch_subject(repository, delivery.branch))
        return self.oidc.principal(
            environment_subject(repository, delivery.environment), ref=f"refs/heads/{delivery.branch}"
        )

    def _outputs(self) -> None:
        for stage, role in self.deploy_roles.items():
            cdk.CfnOutput(self, f"DeployRole{stage.title()}", value=role.role_arn)
        for stage, role in self.smoke_roles.items():
            cdk.CfnOutput(self, f"SmokeRole{stage.title()}", value=role.role_arn)
        cdk.CfnOutput(self, "DiffRole", value=self.diff_role.role_arn)


def _assume(role_arns: Iterable[str]) -> iam.PolicyStatement:
    return iam.PolicyStatement(actions=["sts:AssumeRole"], resources=sorted(role_arns))


def _arn(service: str, resource: str, region: str) -> str:
    return f"arn:{cdk.Aws.PARTITION}:{service}:{region}:{cdk.Aws.ACCOUNT_ID}:{resource}"


def smoke_statements(config: StageConfig) -> list[iam.PolicyStatement]:
    """What ``mlops smoke`` calls (cli/smoke.py), on this stage's resources only."""
    region, prefix = config.region, config.prefix
    raw_key = f"{RAW_DATASETS_PREFIX}*/smoke-*"
    return [
        iam.PolicyStatement(
            actions=["cloudformation:DescribeStacks"],
            resources=[_arn("cloudformation", f"stack/{config.stack_name}/*", region)],
        ),
        # CloudFormation names the buckets <stack name>-<logical id>-<suffix>; only smoke-* keys under the raw prefix
        iam.PolicyStatement(actions=["s3:PutObject"], resources=[f"arn:{cdk.Aws.PARTITION}:s3:::{prefix}-*/{raw_key}"]),
        iam.PolicyStatement(
            actions=["kms:GenerateDataKey"],
            resources=[_arn("kms", "key/*", region)],
            conditions={
                "ForAnyValue:StringEquals": {"kms:ResourceAliases": f"alias/{prefix}-data"},
                "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
            },
        ),
        iam.PolicyStatement(
            actions=["states:ListExecutions"], resources=[_arn("states", f"stateMachine:{prefix}-*", region)]
        ),
        iam.PolicyStatement(
            actions=["states:DescribeExecution"], resources=[_arn("states", f"execution:{prefix}-*:*", region)]
        ),
        iam.PolicyStatement(
            actions=["sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"],
            resources=[_arn("sagemaker", f"endpoint/{prefix}-*", region)],
        ),
    ]


def _acknowledge_smoke(role: iam.Role, config: StageConfig) -> None:
    region, account, prefix = config.region, "<AWS::AccountId>", config.prefix
    arn = f"arn:<AWS::Partition>:{{service}}:{region}:{account}:{{resource}}"
    for resource, reason in {
        f"arn:<AWS::Partition>:s3:::{prefix}-*/{RAW_DATASETS_PREFIX}*/smoke-*": "CloudFormation generates the bucket "
        "names under the stage's stack name; the key pattern admits smoke-run uploads under the raw prefix only",
        arn.format(service="kms", resource="key/*"): "the data key's id is generated; the conditions limit it to the "
        "stage's alias (kms:ResourceAliases) used through S3",
        arn.format(service="cloudformation", resource=f"stack/{config.stack_name}/*"): "a stack ARN ends in its "
        "generated id; the name is the stage's stack",
        arn.format(service="states", resource=f"stateMachine:{prefix}-*"): "the stage's state machines, named under "
        "its prefix",
        arn.format(service="states", resource=f"execution:{prefix}-*:*"): "executions of the stage's state machines "
        "(their names are generated per run)",
        arn.format(service="sagemaker", resource=f"endpoint/{prefix}-*"): "the stage's endpoints, named under its "
        "prefix",
    }.items():
        finding = f"AwsSolutions-IAM5[Resource::{resource}]"
        cdk.Validations.of(role).acknowledge(cdk.Acknowledgment(id=finding, reason=reason))


def build_delivery_stack(app: cdk.App) -> DeliveryStack | None:
    """The delivery stack when context ``github_repository`` is set (else None): for the stages in context
    ``delivery_stages`` (comma-separated; default every stage), account and region from the CLI's credentials."""
    repository = app.node.try_get_context("github_repository")
    if not repository:
        return None
    names = str(app.node.try_get_context("delivery_stages") or ",".join(STAGES)).split(",")
    return DeliveryStack(
        app,
        STACK_NAME,
        repository=str(repository),
        stages=[load_config(name.strip()) for name in names if name.strip()],
        import_provider=app.node.try_get_context("github_oidc_provider") == "import",
        description="GitHub Actions OIDC provider, deploy, smoke-run and read-only diff roles (once per account)",
    )
