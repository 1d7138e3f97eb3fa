"""The delivery stack (stacks/delivery_stack.py): who GitHub Actions may act as, and what those roles may do.

Trust conditions as GitHub documents them for AWS: audience ``sts.amazonaws.com`` and an exact subject,
``repo:OWNER/REPO:ref:refs/heads/BRANCH``, ``repo:OWNER/REPO:environment:NAME`` or ``repo:OWNER/REPO:pull_request``
(https://docs.github.com/en/actions/how-tos/secure-your-work/security-harden-deployments/oidc-in-aws and
https://docs.github.com/en/actions/reference/security/oidc). cdk-nag AwsSolutions runs on every synth here.
"""

from __future__ import annotations

import re
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from cdk_nag import AwsSolutionsChecks

from stacks.app import cdk_json_context
from stacks.config import load_config
from stacks.delivery_stack import STACK_NAME, DeliveryStack, build_delivery_stack

REPOSITORY = "octo-org/octo-repo"
ISSUER = "token.actions.githubusercontent.com"
BOOTSTRAP_ROLE = re.compile(
    r"^arn:<p>:iam::<a>:role/cdk-hnb659fds-(deploy|file-publishing|image-publishing|lookup)-role-<a>-us-east-1$"
)


def _synth(tmp_path: Any, **context: str) -> dict[str, Any]:
    app = cdk.App(context={**cdk_json_context(), **context}, outdir=str(tmp_path))
    stack = build_delivery_stack(app)
    assert stack is not None
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    # Template.from_stack synthesizes the app: cdk-nag fails it on any unacknowledged finding
    return dict(assertions.Template.from_stack(stack).to_json())


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _synth(tmp_path_factory.mktemp("delivery"), github_repository=REPOSITORY)


def _flat(value: Any) -> str:
    """An ARN built with Fn::Join, as text: <p> for the partition, <a> for the account."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        return "".join(_flat(part) for part in value["Fn::Join"][1])
    return {"AWS::Partition": "<p>", "AWS::AccountId": "<a>"}.get(value.get("Ref"), f"<{value.get('Ref')}>")


def _role(template: dict[str, Any], name: str) -> dict[str, Any]:
    [role] = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Role" and r["Properties"]["RoleName"] == name
    ]
    return role


def _trust(role: dict[str, Any]) -> dict[str, Any]:
    [statement] = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"] == {"Federated": {"Ref": _provider_id(role)}}
    assert list(statement["Condition"]) == ["StringEquals"], "a StringLike pattern would admit more subjects"
    return dict(statement["Condition"]["StringEquals"])


def _provider_id(role: dict[str, Any]) -> str:
    return str(role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Federated"]["Ref"])


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_provider_is_githubs_issuer_for_the_sts_audience(template: dict[str, Any]) -> None:
    # Given the delivery stack for one repository
    providers = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::OIDCProvider"]
    # Then it declares GitHub's token issuer once, for the audience configure-aws-credentials requests
    assert [p["Properties"]["Url"] for p in providers] == [f"https://{ISSUER}"]
    assert providers[0]["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]


def test_the_dev_deploy_role_trusts_only_the_main_branch_of_the_repository(template: dict[str, Any]) -> None:
    # Given the dev deploy role (its job names no environment)
    role = _role(template, "mlops-dev-github-deploy")
    # Then its trust is the audience and exactly the main branch of this repository
    assert _trust(role) == {
        f"{ISSUER}:aud": "sts.amazonaws.com",
        f"{ISSUER}:sub": f"repo:{REPOSITORY}:ref:refs/heads/main",
    }


def test_the_prod_deploy_role_trusts_only_the_protected_environment_on_main(template: dict[str, Any]) -> None:
    # Given the prod deploy role, used by the job of the protected "prod" environment
    role = _role(template, "mlops-prod-github-deploy")
    # Then the subject is that environment (GitHub puts it in place of the ref) and the ref claim must be main
    assert _trust(role) == {
        f"{ISSUER}:aud": "sts.amazonaws.com",
        f"{ISSUER}:sub": f"repo:{REPOSITORY}:environment:prod",
        f"{ISSUER}:ref": "refs/heads/main",
    }


def test_the_diff_role_is_trusted_for_pull_requests_and_reads_through_the_lookup_role_only(
    template: dict[str, Any],
) -> None:
    # Given the role pull requests use for cdk diff
    role = _role(template, "mlops-github-diff")
    # Then only this repository's pull requests may assume it
    assert _trust(role) == {f"{ISSUER}:aud": "sts.amazonaws.com", f"{ISSUER}:sub": f"repo:{REPOSITORY}:pull_request"}
    # And it may only assume the CDK lookup role (read-only), nothing else
    [statement] = _statements(role)
    assert statement["Action"] == "sts:AssumeRole"
    assert [_flat(r) for r in _listed(statement["Resource"])] == [
        "arn:<p>:iam::<a>:role/cdk-hnb659fds-lookup-role-<a>-us-east-1"
    ]


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_a_deploy_role_may_only_assume_the_cdk_bootstrap_roles(template: dict[str, Any], stage: str) -> None:
    # Given a stage's deploy role
    role = _role(template, f"mlops-{stage}-github-deploy")
    # Then it has no managed policy and one statement: sts:AssumeRole on the four bootstrap roles of its region
    assert "ManagedPolicyArns" not in role
    [statement] = _statements(role)
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole"
    arns = [_flat(r) for r in _listed(statement["Resource"])]
    assert len(arns) == 4 and all(BOOTSTRAP_ROLE.match(arn) for arn in arns), arns


def test_no_role_gets_admin_wildcards_users_or_long_lived_keys(template: dict[str, Any]) -> None:
    resources = template["Resources"].values()
    # Given every resource of the stack
    types = {r["Type"] for r in resources}
    # Then there are no IAM users and no access keys: GitHub's short-lived OIDC token is the only credential
    assert not types & {"AWS::IAM::User", "AWS::IAM::AccessKey", "AWS::IAM::Group"}, types
    # And no statement grants "*" or "<service>:*", no managed policy is attached, no session lasts over an hour
    for resource in resources:
        if resource["Type"] != "AWS::IAM::Role":
            continue
        role = resource["Properties"]
        assert "ManagedPolicyArns" not in role, role["RoleName"]
        assert role["MaxSessionDuration"] <= 3600
        for statement in _statements(role):
            for action in _listed(statement["Action"]):
                assert action != "*" and not action.endswith(":*"), (role["RoleName"], action)
            assert "*" not in _listed(statement["Resource"]), (role["RoleName"], statement)


def test_the_smoke_role_reaches_only_its_stage_and_exists_only_where_the_stage_smokes(template: dict[str, Any]) -> None:
    # Given the dev smoke-run role (dev smokes, prod does not)
    dev = load_config("dev")
    role = _role(template, "mlops-dev-github-smoke")
    # Then it is trusted like the dev deploy role, and each statement names dev's resources
    assert _trust(role) == _trust(_role(template, "mlops-dev-github-deploy"))
    for statement in _statements(role):
        for resource in _listed(statement["Resource"]):
            assert dev.prefix in _flat(resource) or "key/*" in _flat(resource), statement
    kms = [s for s in _statements(role) if s["Action"] == "kms:GenerateDataKey"]
    assert kms[0]["Condition"]["ForAnyValue:StringEquals"] == {"kms:ResourceAliases": "alias/mlops-dev-data"}
    names = [r["Properties"]["RoleName"] for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    assert "mlops-prod-github-smoke" not in names


def test_an_existing_provider_is_imported_instead_of_created(tmp_path: Any) -> None:
    # Given an account that already has GitHub's provider (one per URL per account)
    template = _synth(tmp_path, github_repository=REPOSITORY, github_oidc_provider="import", delivery_stages="dev")
    # Then the stack creates none and trusts the provider by its fixed ARN; only the dev roles exist
    assert not [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::OIDCProvider"]
    role = _role(template, "mlops-dev-github-deploy")
    federated = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Federated"]
    assert _flat(federated) == f"arn:<p>:iam::<a>:oidc-provider/{ISSUER}"
    names = {r["Properties"]["RoleName"] for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role"}
    assert names == {"mlops-dev-github-deploy", "mlops-dev-github-smoke", "mlops-github-diff"}


def test_without_a_repository_there_is_no_delivery_stack() -> None:
    # Given an app without context github_repository (plain `cdk synth`)
    app = cdk.App(context=cdk_json_context())
    # Then no delivery stack is added: there is nothing to trust
    assert build_delivery_stack(app) is None
    assert app.node.try_find_child(STACK_NAME) is None


@pytest.mark.parametrize("repository", ["octo-org/*", "octo-org", "https://github.com/octo-org/octo-repo", "a/b/c"])
def test_a_repository_that_is_not_owner_slash_name_is_refused(repository: str) -> None:
    # When the stack is built for a pattern or a URL instead of one repository
    with pytest.raises(ValueError) as error:
        DeliveryStack(cdk.App(), STACK_NAME, repository=repository, stages=[load_config("dev")])
    # Then it fails naming the value and the rule
    assert repr(repository) in str(error.value) and "must be OWNER/NAME" in str(error.value)
