"""Policy documents the evaluator does not understand are refused loudly
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html)."""

from __future__ import annotations

from typing import Any

import pytest

from localcloud.iam.policy import Caller, PolicyError, Request, parse

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/job"
CALLER = Caller(f"arn:aws:sts::{ACCOUNT}:assumed-role/job/s", ACCOUNT, role_arn=ROLE)


def statement(**extra: Any) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", **extra}],
    }


@pytest.mark.parametrize(
    ("document", "kind", "message"),
    [
        ({"Version": "2012-10-17", "Statement": [], "Extra": 1}, "identity", r"policy elements \['Extra'\]"),
        (statement(Foo=1), "identity", r"policy elements \['Foo'\] are not understood"),
        ({"Version": "2013-01-01", "Statement": []}, "identity", "is not a policy language version"),
        (statement(Effect="Maybe"), "identity", "Effect must be Allow or Deny"),
        (statement(NotAction="s3:PutObject"), "identity", "exactly one of Action and NotAction"),
        (statement(Principal="*"), "identity", "an identity-based policy cannot have a Principal"),
        (statement(Principal={"AWS": "*"}, NotPrincipal={"AWS": ROLE}), "resource", "NotPrincipal is not modelled"),
        (statement(Principal={"Federated": "cognito"}), "resource", r"Principal types \['Federated'\]"),
        (statement(Action="s3:GetObjekt"), "identity", "matches no action AWS defines"),
        (statement(Action="nosuchservice:Get"), "identity", "unknown AWS service prefix"),
        (statement(Resource="arn:aws:s3:::${aws:username}/*"), "identity", "policy variable"),
        (statement(Condition={"StringEquals": {"s3:nosuchkey": "x"}}), "identity", "is not defined by AWS"),
        (statement(Condition={"StringMatches": {"aws:SourceArn": "x"}}), "identity", "is not supported"),
        (statement(Condition={"StringEquals": {"aws:userid": "${aws:username}"}}), "identity", "policy variable"),
    ],
)
def test_a_policy_it_does_not_understand_is_refused(document: dict[str, Any], kind: str, message: str) -> None:
    # Given a document with an element, action, key or operator the evaluator does not know
    # When it is read, Then PolicyError names what was not understood
    with pytest.raises(PolicyError, match=message):
        parse(document, "test", kind)  # type: ignore[arg-type]


def test_a_condition_key_the_call_does_not_model_is_refused_at_evaluation() -> None:
    # Given a grant conditioned on a key AWS puts in PutMetricData's context
    policy = parse(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "cloudwatch:PutMetricData",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"cloudwatch:namespace": "MLOps/dev"}},
                }
            ],
        },
        "p",
        "identity",
    )
    # When a request whose mapping does not model that key is evaluated, Then it is refused, not treated as absent
    with pytest.raises(
        PolicyError, match="condition key cloudwatch:namespace of cloudwatch:PutMetricData is not modelled"
    ):
        policy.statements[0].applies(Request(CALLER, "cloudwatch:PutMetricData", "*"))


def test_a_global_key_the_evaluator_does_not_model_is_refused() -> None:
    policy = parse(statement(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}), "p", "identity")
    with pytest.raises(PolicyError, match="global condition key aws:SourceIp is not modelled"):
        policy.statements[0].applies(Request(CALLER, "s3:GetObject", "arn:aws:s3:::b/k"))


def test_a_service_key_that_does_not_apply_to_the_action_is_absent() -> None:
    # Given a key of another action (sns has no such key for s3:GetObject): it is absent, as in AWS
    policy = parse(statement(Condition={"StringEquals": {"sns:Protocol": "https"}}), "p", "identity")
    assert policy.statements[0].applies(Request(CALLER, "s3:GetObject", "arn:aws:s3:::b/k")) is False
