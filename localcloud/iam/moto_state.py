"""The policies and encryption settings the evaluator needs, read from the running moto backends (the deployed
template's roles, inline and managed policies, bucket / topic / key / Lambda function policies)."""

from __future__ import annotations

import json
from typing import Any

from localcloud.iam import policy
from localcloud.iam.policy import Policy

RESOURCE_POLICY_SERVICES = ("s3", "sns", "lambda")


class MotoWorld:
    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region

    # ---- backends ----
    def _iam(self) -> Any:
        from moto.iam.models import iam_backends

        return iam_backends[self.account]["aws"]

    def _kms(self) -> Any:
        from moto.kms.models import kms_backends

        return kms_backends[self.account][self.region]

    def _s3(self) -> Any:
        from moto.s3.models import s3_backends

        return s3_backends[self.account]["aws"]

    # ---- identities ----
    def role(self, role_arn: str) -> Any:
        name = role_arn.rsplit("/", 1)[-1]
        return self._iam().get_role(name)

    def role_exists(self, role_arn: str) -> bool:
        try:
            self.role(role_arn)
        except Exception:
            return False
        return True

    def identity_policies(self, role_arn: str) -> list[Policy]:
        """The role's inline policies (``AWS::IAM::Policy`` and ``Policies``) and attached managed policies."""
        role = self.role(role_arn)
        name = role.name
        policies = [policy.parse(doc, f"{name}/{pname}", "identity") for pname, doc in sorted(role.policies.items())]
        for arn, managed in sorted(role.managed_policies.items()):
            policies.append(policy.parse(_managed_document(managed), f"{name}/{arn.rsplit('/', 1)[-1]}", "identity"))
        return policies

    def trust_policy(self, role_arn: str) -> Policy:
        role = self.role(role_arn)
        return policy.parse(role.assume_role_policy_document, f"{role.name} trust policy", "resource")

    # ---- resource policies ----
    def resource_policy(self, resource: str) -> Policy | None:
        parts = resource.split(":", 5)
        if len(parts) != 6:
            return None
        service = parts[2]
        if service == "s3":
            bucket = self._s3().buckets.get(parts[5].split("/", 1)[0])
            text = bucket.policy if bucket is not None else None
            return policy.parse(_text(text), f"bucket policy of {bucket.name}", "resource") if text else None
        if service == "sns":
            from moto.sns.models import sns_backends

            topic = sns_backends[self.account][self.region].topics.get(resource)
            return policy.parse(topic.policy, f"topic policy of {parts[5]}", "resource") if topic else None
        if service == "lambda":
            from moto.awslambda.models import lambda_backends

            name = parts[5].split(":")[1]
            try:
                text = lambda_backends[self.account][self.region].get_policy(name, None)
            except Exception:
                return None
            document = json.loads(text)
            document = document.get("Policy", document) if isinstance(document, dict) else document
            document = json.loads(document) if isinstance(document, str) else document
            for statement in document.get("Statement", []):
                # moto keeps AddPermission's request parameters in the statement; GetPolicy in AWS returns none
                for request_only in ("FunctionName", "Qualifier", "EventSourceToken", "FunctionUrlAuthType"):
                    statement.pop(request_only, None)
            return policy.parse(document, f"function policy of {name}", "resource")
        return None

    def key_policy(self, key_arn: str) -> Policy | None:
        key = self._kms().keys.get(key_arn.rsplit("/", 1)[-1])
        return policy.parse(key.policy, f"key policy of {key.id}", "resource") if key is not None else None

    # ---- encryption ----
    def key_arn(self, key_id: str) -> str | None:
        backend = self._kms()
        try:
            resolved = backend.get_key_id(key_id)
            if resolved.startswith("alias/"):
                resolved = backend.get_key_id_from_alias(resolved)
            key = backend.keys.get(str(resolved).rsplit("/", 1)[-1])
        except Exception:
            return None
        return key.arn if key is not None else None

    def bucket_key(self, bucket: str) -> str | None:
        found = self._s3().buckets.get(bucket)
        rule = ((found.encryption or {}).get("Rule") or {}) if found is not None else {}
        default = rule.get("ApplyServerSideEncryptionByDefault") or {}
        if default.get("SSEAlgorithm") != "aws:kms":
            return None
        return self.key_arn(str(default.get("KMSMasterKeyID") or "alias/aws/s3"))

    def object_key(self, bucket: str, key: str) -> str | None:
        found = self._s3().buckets.get(bucket)
        item = found.keys.get(key) if found is not None else None
        if item is None:
            return None
        if item.encryption == "aws:kms":
            return self.key_arn(str(item.kms_key_id)) if item.kms_key_id else self.bucket_key(bucket)
        return None

    def log_group_key(self, group: str) -> str | None:
        """The KMS key associated with a CloudWatch Logs group (CreateLogGroup/AssociateKmsKey ``kmsKeyId``)."""
        from moto.logs.models import logs_backends

        found = logs_backends[self.account][self.region].groups.get(group)
        key_id = getattr(found, "kms_key_id", None) if found is not None else None
        return self.key_arn(str(key_id)) if key_id else None

    def topic_key(self, topic_arn: str) -> str | None:
        from moto.sns.models import sns_backends

        topic = sns_backends[self.account][self.region].topics.get(topic_arn)
        key_id = getattr(topic, "kms_master_key_id", "") if topic is not None else ""
        return self.key_arn(key_id) if key_id else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _managed_document(managed: Any) -> str:
    version = next((v for v in managed.versions if v.is_default), None)
    document = version.document if version is not None else managed.document
    return document if isinstance(document, str) else json.dumps(document)
