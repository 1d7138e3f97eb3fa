"""Batch inference: one SageMaker batch transform per uploaded object version, scored by the dataset's champion.

An upload under ``batch-input/<dataset>/`` is scored by ``<dataset>``'s champion, the newest ``Approved`` package
of its model package group (an upload outside a declared dataset's folder is ignored with the declared names).
Its container becomes a Model (``<prefix>-<dataset>-batch-v<package version>``, created once and reused), and the
upload a transform job (``text/csv``, one record per line, mini-batches; output ``<OUTPUT_URI><job>/<file>.out``,
KMS-encrypted). Rows must be in the schema's feature order; a header line in that order is allowed (the inference
handler skips it).

The output holds one line per input data row, in input order, with the task's CSV answer (the inference handler's
``text/csv`` response): binary ``probability,label``, multiclass ``label,p1,p2,...`` (declared label order),
regression ``value``. So line i answers the i-th data row (blank lines and the header have no answer) for every
task. ``text/csv`` is the only answer format with a line per row: an ``application/json`` answer is one document
per mini-batch, which ``AssembleWith: Line`` cannot split back into rows. No ``JoinSource``: it needs one answer
line per input line, which a header line breaks (the handler answers nothing for it).

Notes: a transform job reads an S3 prefix, so the input URI is the object's key (which also matches longer keys
that start with it), and it reads the current version of the object: an overwrite right after the upload is
scored instead of the version that triggered the job (the job's tags record which version did).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from lambdas.shared import s3_events
from lambdas.shared.network import model_network
from lambdas.shared.s3_events import S3Object

NAME_LIMIT = 63
TAG_VALUE = re.compile(r"[^\w.:/=+\-@ ]")


MAX_PAYLOAD_MB = 6
BATCH_MAX_ROWS = 200_000
"""Rows the inference handler accepts per batch-transform request (a 6 MB mini-batch of ~30-byte rows)."""


@dataclass(frozen=True)
class BatchSettings:
    model_package_group: str
    output_uri: str  # s3://<curated>/batch-output/
    input_prefix: str  # batch-input/<dataset>/
    role_arn: str
    kms_key_arn: str
    instance_type: str
    resource_prefix: str  # <prefix>-<dataset>
    model_subnets: tuple[str, ...] = ()  # a private stage's models: VpcConfig and network isolation
    model_security_groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchDecision:
    started: bool
    reason: str
    job_name: str | None = None
    model_name: str | None = None
    model_package_arn: str | None = None
    output_uri: str | None = None


def skip_reason(obj: S3Object, input_prefix: str) -> str | None:
    """Why this upload does not start a transform job, or None when it should (``input_prefix``: the dataset's
    ``batch-input/<dataset>/``)."""
    return s3_events.skip_reason(
        obj,
        prefix=input_prefix,
        area="batch input prefix",
        suffixes=(".csv", ".csv.gz"),
        wrong_type="is not CSV (.csv or .csv.gz)",
    )


def job_name(prefix: str, obj: S3Object) -> str:
    """Deterministic per object version, <= 63 chars of [a-zA-Z0-9-]: a duplicate start is refused by name."""
    digest = hashlib.sha256(f"{obj.bucket}/{obj.key}?{obj.version_id}".encode()).hexdigest()[:12]
    stem = re.sub(r"[^a-zA-Z0-9]+", "-", obj.key.rsplit("/", 1)[-1].split(".")[0]).strip("-") or "input"
    head = f"{prefix}-batch-"
    room = NAME_LIMIT - len(head) - len(digest) - 1
    return f"{head}{stem[:room].rstrip('-')}-{digest}"


def _tag(value: str) -> str:
    return TAG_VALUE.sub("_", value)[:256]


def _code(error: Exception) -> str:
    return str((getattr(error, "response", None) or {}).get("Error", {}).get("Code", ""))


class BatchInference:
    def __init__(self, sagemaker: Any, settings: BatchSettings) -> None:
        self.sm = sagemaker
        self.settings = settings

    def start(self, obj: S3Object) -> BatchDecision:
        s = self.settings
        reason = skip_reason(obj, s.input_prefix)
        if reason:
            return BatchDecision(started=False, reason=reason)
        champion = self.champion()
        if champion is None:
            return BatchDecision(
                started=False, reason=f"no Approved model package in {s.model_package_group}: nothing to score with"
            )
        model = self._ensure_model(champion)
        name = job_name(s.resource_prefix, obj)
        output = f"{s.output_uri.rstrip('/')}/{name}/"
        source = f"s3://{obj.bucket}/{obj.key}"
        try:
            self.sm.create_transform_job(
                TransformJobName=name,
                ModelName=model,
                BatchStrategy="MultiRecord",
                MaxPayloadInMB=MAX_PAYLOAD_MB,
                # a 6 MB mini-batch of CSV lines holds far more rows than the real-time handler's 10,000-row cap
                Environment={"MAX_ROWS": str(BATCH_MAX_ROWS), "MAX_PAYLOAD_BYTES": str(MAX_PAYLOAD_MB * 1024 * 1024)},
                TransformInput={
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source}},
                    "ContentType": "text/csv",
                    "SplitType": "Line",
                    "CompressionType": "Gzip" if obj.key.lower().endswith(".gz") else "None",
                },
                TransformOutput={
                    "S3OutputPath": output,
                    "Accept": "text/csv",
                    "AssembleWith": "Line",
                    "KmsKeyId": s.kms_key_arn,
                },
                TransformResources={
                    "InstanceType": s.instance_type,
                    "InstanceCount": 1,
                    "VolumeKmsKeyId": s.kms_key_arn,
                },
                Tags=[
                    {"Key": "source-object", "Value": _tag(source)},
                    {"Key": "source-version", "Value": _tag(obj.version_id)},
                    {"Key": "model-package-arn", "Value": _tag(champion["ModelPackageArn"])},
                ],
            )
        except Exception as error:
            if _code(error) in ("ResourceInUse", "ValidationException") and "exist" in str(error):
                return BatchDecision(
                    started=False,
                    reason="a transform job for this object version already exists",
                    job_name=name,
                    model_name=model,
                    model_package_arn=champion["ModelPackageArn"],
                    output_uri=output,
                )
            raise
        return BatchDecision(
            started=True,
            reason=f"scoring {source} with model package version {champion['ModelPackageVersion']}",
            job_name=name,
            model_name=model,
            model_package_arn=champion["ModelPackageArn"],
            output_uri=output,
        )

    def champion(self) -> dict[str, Any] | None:
        """The newest Approved package of the group, described."""
        page = self.sm.list_model_packages(
            ModelPackageGroupName=self.settings.model_package_group,
            ModelApprovalStatus="Approved",
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=1,
        )
        summaries = page.get("ModelPackageSummaryList", [])
        if not summaries:
            return None
        return dict(self.sm.describe_model_package(ModelPackageName=summaries[0]["ModelPackageArn"]))

    def _ensure_model(self, package: dict[str, Any]) -> str:
        name = f"{self.settings.resource_prefix}-batch-v{package['ModelPackageVersion']}"[:NAME_LIMIT]
        try:
            self.sm.describe_model(ModelName=name)
            return name
        except Exception as error:
            if "Could not find" not in str(error):
                raise
        (container, *_) = package["InferenceSpecification"]["Containers"]
        primary = {"Image": container["Image"], "ModelDataUrl": container["ModelDataUrl"]}
        if container.get("Environment"):
            primary["Environment"] = dict(container["Environment"])
        try:
            self.sm.create_model(
                ModelName=name,
                ExecutionRoleArn=self.settings.role_arn,
                PrimaryContainer=primary,
                **model_network(self.settings.model_subnets, self.settings.model_security_groups),
                Tags=[{"Key": "model-package-arn", "Value": _tag(package["ModelPackageArn"])}],
            )
        except Exception as error:  # a concurrent upload created it first
            if "already existing" not in str(error):
                raise
        return name
