"""Decisions per AWS's policy evaluation logic
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html) and KMS key policies
(https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html)."""

from __future__ import annotations

from typing import Any

from localcloud.iam.evaluate import decide
from localcloud.iam.policy import Caller, Policy, Request, parse

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/etl"
CALLER = Caller(f"arn:aws:sts::{ACCOUNT}:assumed-role/etl/GlueJobRunnerSession", ACCOUNT, role_arn=ROLE)
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:start"
RULE = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/raw-upload"


def identity(*statements: dict[str, Any]) -> Policy:
    return parse({"Version": "2012-10-17", "Statement": list(statements)}, "etl/policy", "identity")


def resource(*statements: dict[str, Any]) -> Policy:
    return parse({"Version": "2012-10-17", "Statement": list(statements)}, "resource policy", "resource")


def allow(action: Any, res: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": res, **extra}


def request(action: str, res: str, caller: Caller = CALLER, **context: str) -> Request:
    return Request(caller, action, res, {k.lower(): [v] for k, v in context.items()})


def test_an_identity_grant_allows_and_names_its_statement() -> None:
    decision = decide(
        request("s3:GetObject", "arn:aws:s3:::raw/datasets/a.csv"),
        [identity(allow("s3:GetObject*", "arn:aws:s3:::raw/*"))],
    )
    assert decision.allowed
    assert decision.statement == "etl/policy statement 1"


def test_no_grant_is_an_implicit_deny_worded_as_aws_words_it() -> None:
    decision = decide(request("s3:PutObject", "arn:aws:s3:::raw/a"), [identity(allow("s3:GetObject", "*"))])
    assert not decision.allowed
    assert decision.message == (
        f"User: {CALLER.arn} is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::raw/a "
        "because no identity-based policy allows the s3:PutObject action"
    )


def test_an_explicit_deny_wins_over_an_allow() -> None:
    policy = identity(allow("s3:*"), {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"})
    decision = decide(request("s3:DeleteObject", "arn:aws:s3:::raw/a"), [policy])
    assert not decision.allowed
    assert decision.statement == "etl/policy statement 2"
    assert "with an explicit deny in a identity-based policy" in decision.message


def test_not_action_and_not_resource() -> None:
    policy = identity({"Effect": "Allow", "NotAction": "s3:Delete*", "NotResource": "arn:aws:s3:::secret/*"})
    assert decide(request("s3:GetObject", "arn:aws:s3:::raw/a"), [policy]).allowed
    assert not decide(request("s3:DeleteObject", "arn:aws:s3:::raw/a"), [policy]).allowed
    assert not decide(request("s3:GetObject", "arn:aws:s3:::secret/a"), [policy]).allowed


def test_actions_match_in_any_case_and_resources_case_sensitively() -> None:
    policy = identity(allow("S3:getobject", "arn:aws:s3:::Raw/*"))
    assert decide(request("s3:GetObject", "arn:aws:s3:::Raw/x"), [policy]).allowed
    assert not decide(request("s3:GetObject", "arn:aws:s3:::raw/x"), [policy]).allowed


def test_a_conditional_grant_needs_its_condition() -> None:
    policy = identity(
        allow("cloudwatch:PutMetricData", Condition={"StringEquals": {"cloudwatch:namespace": "MLOps/dev"}})
    )
    ok = Request(
        CALLER,
        "cloudwatch:PutMetricData",
        "*",
        {"cloudwatch:namespace": ["MLOps/dev"]},
        frozenset({"cloudwatch:namespace"}),
    )
    other = Request(
        CALLER, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": ["Glue"]}, frozenset({"cloudwatch:namespace"})
    )
    assert decide(ok, [policy]).allowed
    assert not decide(other, [policy]).allowed


def test_a_bucket_policy_deny_on_plain_http_applies_to_every_principal() -> None:
    # Given the CDK enforce_ssl statement and an identity grant
    bucket = resource(
        {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::raw", "arn:aws:s3:::raw/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )
    grant = identity(allow("s3:GetObject", "arn:aws:s3:::raw/*"))
    # When the call comes over HTTP, Then the bucket policy denies it; over HTTPS the grant allows it
    plain = decide(request("s3:GetObject", "arn:aws:s3:::raw/a", **{"aws:SecureTransport": "false"}), [grant], bucket)
    tls = decide(request("s3:GetObject", "arn:aws:s3:::raw/a", **{"aws:SecureTransport": "true"}), [grant], bucket)
    assert not plain.allowed and "explicit deny in a resource-based policy" in plain.message
    assert tls.allowed


def lambda_permission() -> Policy:
    return resource(
        {
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Resource": FUNCTION,
            "Condition": {"ArnLike": {"AWS:SourceArn": RULE}},
        }
    )


def test_a_lambda_function_policy_lets_eventbridge_invoke_for_its_rule_only() -> None:
    events = Caller("events.amazonaws.com", ACCOUNT, service="events.amazonaws.com")
    assert decide(
        request("lambda:InvokeFunction", FUNCTION, events, **{"aws:SourceArn": RULE}), [], lambda_permission()
    ).allowed
    other = decide(
        request("lambda:InvokeFunction", FUNCTION, events, **{"aws:SourceArn": RULE + "-2"}), [], lambda_permission()
    )
    assert not other.allowed
    assert other.message.endswith("because no resource-based policy allows the lambda:InvokeFunction action")


def test_a_resource_policy_naming_only_the_account_does_not_grant_a_role() -> None:
    # Same account: an account principal delegates to IAM, so the role still needs its own grant
    topic = resource(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "sns:Publish",
            "Resource": "*",
        }
    )
    assert not decide(request("sns:Publish", f"arn:aws:sns:us-east-1:{ACCOUNT}:t"), [], topic).allowed
    named = resource({"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "sns:Publish", "Resource": "*"})
    assert decide(request("sns:Publish", f"arn:aws:sns:us-east-1:{ACCOUNT}:t"), [], named).allowed


ROOT_DELEGATION = {
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "kms:*",
    "Resource": "*",
}


def test_a_key_policy_delegating_to_the_account_lets_identity_policies_decide() -> None:
    key = resource(ROOT_DELEGATION)
    assert decide(request("kms:Decrypt", KEY), [identity(allow("kms:Decrypt", KEY))], key_policy=key).allowed
    denied = decide(request("kms:Decrypt", KEY), [identity(allow("s3:GetObject"))], key_policy=key)
    assert not denied.allowed
    assert "because no identity-based policy allows the kms:Decrypt action" in denied.message


def test_without_delegation_an_identity_grant_does_not_open_a_key() -> None:
    # Given a key policy that names only a service (no account root), When a role with kms:* in IAM asks
    key = resource(
        {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "kms:Decrypt", "Resource": "*"}
    )
    decision = decide(request("kms:Decrypt", KEY), [identity(allow("kms:*"))], key_policy=key)
    # Then the key policy decides: denied
    assert not decision.allowed
    assert decision.message.endswith("because no resource-based policy allows the kms:Decrypt action")


def test_a_key_policy_naming_the_service_principal_allows_it() -> None:
    logs = Caller("logs.us-east-1.amazonaws.com", ACCOUNT, service="logs.us-east-1.amazonaws.com")
    key = resource(
        ROOT_DELEGATION,
        {
            "Effect": "Allow",
            "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
            "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            "Resource": "*",
        },
    )
    assert decide(request("kms:GenerateDataKey", KEY, logs), [], key_policy=key).allowed
    assert not decide(request("kms:GenerateDataKey", KEY, logs), [], key_policy=resource(ROOT_DELEGATION)).allowed


def test_a_trust_policy_is_a_resource_policy_on_sts_assume_role() -> None:
    trust = resource(
        {
            "Effect": "Allow",
            "Principal": {"Service": "states.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:*"}},
        }
    )
    states = Caller("states.amazonaws.com", ACCOUNT, service="states.amazonaws.com")
    machine = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:m"
    assert decide(request("sts:AssumeRole", ROLE, states, **{"aws:SourceArn": machine}), [], trust).allowed
    assert not decide(request("sts:AssumeRole", ROLE, states), [], trust).allowed
