"""GitHub Actions' OpenID Connect identity provider in IAM and roles that only chosen workflow runs can assume.

The trust rules follow GitHub's and AWS's documentation:

- provider URL ``https://token.actions.githubusercontent.com``, audience (client id) ``sts.amazonaws.com`` for
  aws-actions/configure-aws-credentials
  (https://docs.github.com/en/actions/how-tos/secure-your-work/security-harden-deployments/oidc-in-aws);
- every role checks ``token.actions.githubusercontent.com:aud`` = ``sts.amazonaws.com`` and
  ``token.actions.githubusercontent.com:sub`` with ``StringEquals`` (no wildcard): ``repo:OWNER/REPO:ref:refs/heads/
  BRANCH`` for a branch, ``repo:OWNER/REPO:environment:NAME`` for a job that names an environment (the subject then
  names the environment instead of the branch), ``repo:OWNER/REPO:pull_request`` for pull requests
  (https://docs.github.com/en/actions/reference/security/oidc, "Example subject claims");
- a job with an environment is also held to the branch by the ``token.actions.githubusercontent.com:ref`` claim,
  which AWS STS checks as a condition key since 2026-01 ("AWS STS supports validation of identity provider
  claims": https://aws.amazon.com/about-aws/whats-new/2026/01/aws-sts-supports-validation-identity-provider-claims/).
  A missing claim fails ``StringEquals``, so the check can only deny.

An account holds one provider per URL: ``import_provider`` reuses one that already exists (its ARN is fixed by the
account and the URL) instead of creating it.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

ISSUER = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"


def branch_subject(repository: str, branch: str) -> str:
    return f"repo:{repository}:ref:refs/heads/{branch}"


def environment_subject(repository: str, environment: str) -> str:
    return f"repo:{repository}:environment:{environment}"


def pull_request_subject(repository: str) -> str:
    return f"repo:{repository}:pull_request"


def check_repository(repository: str) -> str:
    """``owner/name`` as GitHub spells it; anything else (a wildcard, a URL) is refused with the reason."""
    owner, _, name = repository.partition("/")
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    if not owner or not name or "/" in name or not set(owner + name) <= allowed:
        raise ValueError(
            f"github_repository {repository!r} must be OWNER/NAME (letters, digits, '-', '_', '.'; no wildcard): "
            "the deploy roles trust exactly that repository"
        )
    return repository


class GithubOidc(Construct):
    """The provider, and roles whose trust policy names one repository and one branch, environment or event."""

    def __init__(self, scope: Construct, construct_id: str, *, repository: str, import_provider: bool = False) -> None:
        super().__init__(scope, construct_id)
        self.repository = check_repository(repository)
        if import_provider:
            arn = f"arn:{cdk.Aws.PARTITION}:iam::{cdk.Aws.ACCOUNT_ID}:oidc-provider/{ISSUER}"
            self.provider_arn = iam.OidcProviderNative.from_oidc_provider_arn(self, "Provider", arn).oidc_provider_arn
        else:
            # No thumbprints: IAM verifies GitHub's certificate with its own library of trusted CAs
            # (AWS::IAM::OIDCProvider ThumbprintList is optional).
            native = iam.OidcProviderNative(self, "Provider", url=f"https://{ISSUER}", client_ids=[AUDIENCE])
            self.provider_arn = native.oidc_provider_arn

    def principal(self, subject: str, *, ref: str | None = None) -> iam.WebIdentityPrincipal:
        """Workflow runs of this repository whose ``sub`` is exactly ``subject`` (and whose ``ref`` is ``ref``)."""
        equals = {f"{ISSUER}:aud": AUDIENCE, f"{ISSUER}:sub": subject}
        if ref is not None:
            equals[f"{ISSUER}:ref"] = ref
        return iam.WebIdentityPrincipal(self.provider_arn, {"StringEquals": equals})

    def role(
        self,
        construct_id: str,
        *,
        role_name: str,
        principal: iam.WebIdentityPrincipal,
        description: str,
        statements: Sequence[iam.PolicyStatement],
    ) -> iam.Role:
        """A role with one inline policy and no managed policy: its permissions are exactly ``statements``."""
        return iam.Role(
            self,
            construct_id,
            role_name=role_name,
            assumed_by=principal,
            description=description,
            max_session_duration=cdk.Duration.hours(1),
            inline_policies={"Permissions": iam.PolicyDocument(statements=list(statements))},
        )


def bootstrap_role_arn(kind: str, region: str, qualifier: str) -> str:
    """ARN of a CDK bootstrap role (``deploy``, ``lookup``, ``file-publishing``, ``image-publishing``) in this
    account: ``cdk-<qualifier>-<kind>-role-<account>-<region>`` (aws-cdk-lib DefaultStackSynthesizer)."""
    account = cdk.Aws.ACCOUNT_ID
    return f"arn:{cdk.Aws.PARTITION}:iam::{account}:role/cdk-{qualifier}-{kind}-role-{account}-{region}"
