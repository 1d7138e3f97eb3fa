"""What a real account would refuse though the local cloud runs it: moto evaluates no IAM policy, no key policy
and no side effect of SSE-KMS, so each of these rules is asserted on the synthesized policies, citing AWS's
documentation."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from stacks.config import StageConfig
from stacks.mlops_stack import MlopsStack
from tests.infrastructure.helpers import definition, of_type
from tests.infrastructure.policies import Statement, expand, identity_statements, literal_parts, references


def _allows(template: dict[str, Any], role: str, action: str, target: str | None) -> bool:
    """Whether an identity policy of ``role`` allows ``action`` on a resource referring to logical id ``target``
    (``None``: on ``"*"``)."""
    for statement in identity_statements(template):
        if role not in statement.roles or not any(action in expand(a) for a in statement.actions):
            continue
        for resource in statement.resources:
            if (target is None and resource == "*") or (target is not None and target in references(resource)):
                return True
    return False


def _allows_arn(template: dict[str, Any], role: str, action: str, arn: str) -> bool:
    """Whether an identity policy of ``role`` allows ``action`` on the resource ``arn`` (intrinsics rendered as in
    ``literal_parts``: ``arn:aws:cloudwatch:us-east-1:${AWS::AccountId}:alarm:<name>``), wildcards matched as IAM
    matches them within the resource."""
    for statement in identity_statements(template):
        if role not in statement.roles or not any(action in expand(a) for a in statement.actions):
            continue
        if any(fnmatch.fnmatchcase(arn, literal_parts(resource)) for resource in statement.resources):
            return True
    return False


def _role_statements(template: dict[str, Any], role_prefix: str) -> list[Statement]:
    return [s for s in identity_statements(template) if any(r.startswith(role_prefix) for r in s.roles)]


def _role(template: dict[str, Any], prefix: str) -> str:
    (role,) = [k for k, v in template["Resources"].items() if v["Type"] == "AWS::IAM::Role" and k.startswith(prefix)]
    return role


def _key_policy(template: dict[str, Any]) -> list[dict[str, Any]]:
    (key,) = of_type(template["Resources"], "AWS::KMS::Key").values()
    return list(key["Properties"]["KeyPolicy"]["Statement"])


def _service_principals(statement: dict[str, Any]) -> list[str]:
    service = statement.get("Principal", {}).get("Service", [])
    return [service] if isinstance(service, str) else list(service)


def test_every_publisher_to_the_encrypted_topic_may_use_its_key(template_json: dict[str, Any]) -> None:
    """Publishing to an SSE-KMS topic needs ``kms:GenerateDataKey*`` and ``kms:Decrypt`` on the topic's key for the
    publisher (Amazon SNS Developer Guide, "Key management" / "Configuring AWS KMS permissions":
    https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html). Step Functions publishes with the state
    machine's role, so both state machines and the retrain Lambda need them; without, every Notify state fails."""
    # Given the encrypted topic and its key
    ((topic_id, topic),) = of_type(template_json["Resources"], "AWS::SNS::Topic").items()
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    # When a role may publish to it
    publishers = {
        role
        for s in identity_statements(template_json)
        if any("sns:Publish" in expand(a) for a in s.actions) and any(topic_id in references(r) for r in s.resources)
        for role in s.roles
    }
    assert {p.split("Role")[0] for p in publishers} >= {
        "PipelineStateMachine",
        "ServingDeployment",
        "MonitoringRetrain",
    }
    # Then it may also create and read the data key that encrypts the message
    missing = [
        f"{role}: {action}"
        for role in sorted(publishers)
        for action in ("kms:GenerateDataKey", "kms:Decrypt")
        if not _allows(template_json, role, action, key_id)
    ]
    assert not missing, missing


def test_the_key_policy_names_only_service_principals_that_use_the_key(
    template_json: dict[str, Any], config: StageConfig
) -> None:
    """A key policy statement per AWS service that encrypts with the key itself, and no other:
    - CloudWatch Logs, for the Glue job logs its security configuration encrypts (AWS Glue Developer Guide,
      "Setting up AWS Glue to use security configurations": "Any ETL job ... that writes encrypted Amazon
      CloudWatch Logs requires the following permissions in the key policy"; scoped to the job's log groups with
      ``kms:EncryptionContext:aws:logs:arn`` as CloudWatch Logs documents in "Encrypt log data in CloudWatch Logs
      using AWS KMS": https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html);
    - cloudwatch.amazonaws.com only if an alarm notifies the encrypted topic, events.amazonaws.com only if a rule
      targets it (the services publish as themselves); Step Functions and Lambda publish with their roles, so a
      ``states``/``lambda`` service statement serves no caller."""
    resources = template_json["Resources"]
    ((topic_id, _),) = of_type(resources, "AWS::SNS::Topic").items()
    alarm_to_topic = any(
        topic_id in references(v["Properties"].get("AlarmActions", []) + v["Properties"].get("OKActions", []))
        for v in of_type(resources, "AWS::CloudWatch::Alarm").values()
    )
    rule_to_topic = any(
        topic_id in references(v["Properties"].get("Targets", []))
        for v in of_type(resources, "AWS::Events::Rule").values()
    )
    logs = f"logs.{config.region}.amazonaws.com"
    expected = {logs} | ({"cloudwatch.amazonaws.com"} if alarm_to_topic else set())
    expected |= {"events.amazonaws.com"} if rule_to_topic else set()
    statements = _key_policy(template_json)
    assert {p for s in statements for p in _service_principals(s)} == expected
    (for_logs,) = [s for s in statements if logs in _service_principals(s)]
    assert sorted(for_logs["Action"]) == [
        "kms:Decrypt*",
        "kms:Describe*",
        "kms:Encrypt*",
        "kms:GenerateDataKey*",
        "kms:ReEncrypt*",
    ]
    # Glue's log groups among them (with a security configuration: /aws-glue/jobs/<configuration>-role/<role>/...);
    # the rest: tests/infrastructure/test_encryption_at_rest.py
    condition = json.dumps(for_logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"])
    assert ':log-group:/aws-glue/*"' in condition, condition


def test_the_etl_role_may_publish_the_job_metrics_it_enables(template_json: dict[str, Any]) -> None:
    """``--enable-metrics`` / ``--enable-observability-metrics`` make the job publish CloudWatch metrics in the
    ``Glue`` namespace with the job's role, which needs ``cloudwatch:PutMetricData`` (AWS Glue Developer Guide,
    "Step 2: Create an IAM role for AWS Glue" / AWSGlueServiceRole grants it; "Monitoring AWS Glue using Amazon
    CloudWatch metrics": namespace Glue). PutMetricData has no resource type: scoped by ``cloudwatch:namespace``."""
    (job,) = of_type(template_json["Resources"], "AWS::Glue::Job").values()
    assert job["Properties"]["DefaultArguments"]["--enable-metrics"] == "true"
    statements = [
        s for s in _role_statements(template_json, "DataLakeEtlRole") if "cloudwatch:PutMetricData" in s.actions
    ]
    assert [s.conditions for s in statements] == [{"StringEquals": {"cloudwatch:namespace": "Glue"}}]
    assert statements[0].resources == ["*"]


def test_the_deploy_lambda_may_create_the_target_tracking_alarms(
    template_json: dict[str, Any], config: StageConfig, stack: MlopsStack
) -> None:
    """PutScalingPolicy with a target tracking configuration needs the caller to hold ``cloudwatch:PutMetricAlarm``,
    ``cloudwatch:DescribeAlarms`` and ``cloudwatch:DeleteAlarms`` (Application Auto Scaling User Guide, "Permissions
    required for API actions on target services and CloudWatch":
    https://docs.aws.amazon.com/autoscaling/application/userguide/security_iam_id-based-policy-examples.html).
    The alarms it creates are named ``TargetTracking-<resource id>-AlarmHigh|Low-<uuid>``, the resource id of a
    SageMaker variant being ``endpoint/<endpoint>/variant/<variant>``: the grant is scoped to those names, for the
    endpoint of every declared dataset (``<prefix>-<dataset>``) and no other endpoint."""
    statements = [
        s for s in _role_statements(template_json, "ServingDeployRole") if "cloudwatch:PutMetricAlarm" in s.actions
    ]
    assert len(statements) == 1, statements
    (statement,) = statements
    assert sorted(statement.actions) == [
        "cloudwatch:DeleteAlarms",
        "cloudwatch:DescribeAlarms",
        "cloudwatch:PutMetricAlarm",
    ]
    (resource,) = statement.resources
    assert literal_parts(resource).endswith(f":alarm:TargetTracking-endpoint/{config.prefix}-*/variant/*")
    role = statements[0].roles[0]

    def alarm(endpoint: str) -> str:
        name = f"TargetTracking-endpoint/{endpoint}/variant/AllTraffic-AlarmHigh-4b2c"
        return f"arn:aws:cloudwatch:{config.region}:${{AWS::AccountId}}:alarm:{name}"

    for name, dataset in stack.dataset_configs.items():
        assert _allows_arn(template_json, role, "cloudwatch:PutMetricAlarm", alarm(dataset.endpoint_name)), name
    assert not _allows_arn(template_json, role, "cloudwatch:PutMetricAlarm", alarm("other-stack-endpoint"))


def test_the_endpoint_execution_role_may_describe_its_rollback_alarms(
    template_json: dict[str, Any], config: StageConfig, stack: MlopsStack
) -> None:
    """ "Ensure that your IAM execution role has permission to perform the cloudwatch:DescribeAlarms action on the
    auto-rollback alarms you specify" (SageMaker Developer Guide, "Auto-Rollback Configuration and Monitoring":
    https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html): the endpoint's
    execution role (the model's ExecutionRoleArn), not the caller of UpdateEndpoint. Every declared dataset's three
    guardrails, by name; a retrain alarm is not one of them."""
    role = _role(template_json, "ServingEndpointRole")
    alarms = sorted(
        v["Properties"]["AlarmName"]
        for v in of_type(template_json["Resources"], "AWS::CloudWatch::Alarm").values()
        if "-rollback-" in v["Properties"]["AlarmName"]
    )
    assert alarms == sorted(n for c in stack.dataset_configs.values() for n in c.rollback_alarm_names)
    arn = f"arn:aws:cloudwatch:{config.region}:${{AWS::AccountId}}:alarm:"
    for name in alarms:
        assert _allows_arn(template_json, role, "cloudwatch:DescribeAlarms", arn + name), name
    assert not _allows_arn(template_json, role, "cloudwatch:DescribeAlarms", f"{arn}{config.prefix}-churn-drift")


def test_the_training_job_writes_its_model_to_an_s3_uri(resources: dict[str, Any]) -> None:
    """SageMaker reads ``S3OutputPath`` with the S3Uri pattern ``(https|s3)://([^/]+)/?(.*)`` (botocore's sagemaker
    service model): the part after the scheme is the bucket. An ``https://s3.<region>.amazonaws.com/<bucket>/``
    URL (what ``tasks.S3Location.from_bucket`` renders) names the bucket ``s3.<region>.amazonaws.com`` and the job
    fails uploading its model ("ClientError: Artifact upload failed ... bucket must be in the same region")."""
    (machine,) = [v for k, v in of_type(resources, "AWS::StepFunctions::StateMachine").items() if "Pipeline" in k]
    parameters = definition(machine)["States"]["TrainModel"]["Parameters"]
    output = parameters["OutputDataConfig"]["S3OutputPath"]
    assert output.startswith("s3://") and output.endswith("/models/"), output
    for channel in parameters["InputDataConfig"]:
        assert "S3Uri.$" in channel["DataSource"]["S3DataSource"], channel
