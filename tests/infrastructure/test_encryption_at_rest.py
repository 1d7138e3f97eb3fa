"""Logs and function settings rest encrypted with the data key (issue 21): every log group carries the key, the key
policy lets CloudWatch Logs use it for exactly the stack's groups, and every function's environment is encrypted
with it."""

from __future__ import annotations

import fnmatch
from typing import Any

from stacks.config import StageConfig
from tests.infrastructure.helpers import of_type
from tests.infrastructure.policies import literal_parts, references

GENERATED_SUFFIX = "AbCdEf123456"
"""Stands for the random suffix of a name CloudFormation generates (``<stack name>-<logical id>-<suffix>``)."""


def _data_key(resources: dict[str, Any]) -> str:
    (key_id,) = of_type(resources, "AWS::KMS::Key")
    return str(key_id)


def _log_group_arn(config: StageConfig, logical_id: str, group: dict[str, Any]) -> str:
    """The ARN CloudWatch Logs puts in the encryption context (``aws:logs:arn``) for this group, rendered like
    ``literal_parts`` renders the key policy's patterns."""
    name = group["Properties"].get("LogGroupName")
    name = literal_parts(name) if name else f"{config.stack_name}-{logical_id}-{GENERATED_SUFFIX}"
    return f"arn:aws:logs:{config.region}:${{AWS::AccountId}}:log-group:{name}"


def _logs_patterns(resources: dict[str, Any], config: StageConfig) -> list[str]:
    (key,) = of_type(resources, "AWS::KMS::Key").values()
    logs = f"logs.{config.region}.amazonaws.com"
    (statement,) = [
        s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Principal", {}).get("Service") == logs
    ]
    patterns = statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    return [literal_parts(p) for p in (patterns if isinstance(patterns, list) else [patterns])]


def test_every_log_group_is_encrypted_with_the_data_key(resources: dict[str, Any]) -> None:
    # Given the stack's log groups (the functions', the state machines', the cleanup provider's)
    groups = of_type(resources, "AWS::Logs::LogGroup")
    assert len(groups) >= 10
    # Then each names the data key (CloudWatch Logs User Guide, "Encrypt log data in CloudWatch Logs using AWS KMS")
    key = _data_key(resources)
    unencrypted = [name for name, g in groups.items() if key not in references(g["Properties"].get("KmsKeyId"))]
    assert not unencrypted, unencrypted


def test_the_key_policy_lets_cloudwatch_logs_encrypt_each_group_and_no_other(
    resources: dict[str, Any], config: StageConfig
) -> None:
    """CloudWatch Logs uses the key as itself with ``kms:EncryptionContext:aws:logs:arn`` = the group's ARN
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html): a group no pattern
    matches could not be written; the patterns stay within the stack's own names."""
    # Given the key policy's CloudWatch Logs statement
    patterns = _logs_patterns(resources, config)
    # Then each log group's ARN matches one of its patterns (ArnLike: * spans any characters)
    groups = of_type(resources, "AWS::Logs::LogGroup")
    arns = {name: _log_group_arn(config, name, group) for name, group in groups.items()}
    unmatched = [arn for arn in arns.values() if not any(fnmatch.fnmatchcase(arn, p) for p in patterns)]
    assert not unmatched, (unmatched, patterns)
    # And no pattern reaches log groups outside Glue's, the stack's state machines' and the stack's own
    prefix = f"arn:aws:logs:{config.region}:${{AWS::AccountId}}:log-group:"
    assert sorted(p.removeprefix(prefix) for p in patterns) == sorted(
        ["/aws-glue/*", f"/aws/vendedlogs/states/{config.prefix}-*", f"{config.stack_name}-*"]
    )


def test_every_function_encrypts_its_environment_with_the_data_key(resources: dict[str, Any]) -> None:
    """``KmsKeyArn``: the customer managed key Lambda encrypts the environment variables with at rest (AWS Lambda
    Developer Guide, "Securing Lambda environment variables",
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-encryption.html)."""
    # Given every function that has environment variables (ours and the CDK provider framework's)
    functions = {
        k: v for k, v in of_type(resources, "AWS::Lambda::Function").items() if "Environment" in v["Properties"]
    }
    assert len(functions) >= 10
    # Then each encrypts them with the data key, not Lambda's AWS managed key
    key = _data_key(resources)
    plain = [name for name, fn in functions.items() if key not in references(fn["Properties"].get("KmsKeyArn"))]
    assert not plain, plain
