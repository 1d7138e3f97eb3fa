"""``mlops promote VERSION --to prod [--dataset N]``: the same model moves from this stage's registry to the target
stage's, where the target's approval rule applies (prod: manual). Not a retrain: the package's model artifact,
image, lineage (CustomerMetadataProperties, MetadataProperties) and evaluation (report and golden payloads) are
copied, and the copy is registered as PendingManualApproval with ``promoted_from`` naming the source package.

Separate accounts: the copy is written with the target's credentials. ``--to-profile`` names them; otherwise, when
the target stage's configured account (``stacks.config`` ``StageConfig.account``) differs from the caller's, the
command assumes the target's promotion role ``arn:aws:iam::<account>:role/mlops-<stage>-promotion`` (CDK:
``stacks.constructs.promotion.PromotionAccess``), which may write promoted copies and register packages there and
nothing else. The source is read with this stage's credentials, so no bucket of one account is opened to the other.
In one account (and in the local cloud, where both stages run side by side) the same session does both.

Where the copies go in the target's artifacts bucket: ``models/promoted/<stage>/<group>-v<N>/`` (the endpoint
role reads ``models/*``) and ``evaluations/promoted-<stage>-<group>-v<N>/`` (the deploy Lambda reads the golden
payloads under ``evaluations/*``).
"""

from __future__ import annotations

import argparse
import hashlib
from typing import Any

import boto3

from cli import registry
from cli.context import Ops, stack_name
from cli.errors import BAD_INPUT, NO_ACCESS, OK, CliError
from cli.output import emit, progress
from cli.session import Aws
from cli.stack import Dataset, Stack

ROLE_NAME = "{prefix}-promotion"  # stacks.constructs.promotion.PromotionAccess.role_name
METADATA_VALUE_CHARS = 256


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise CliError(f"not an S3 object URI: {uri!r}", BAD_INPUT)
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def configured_account(stage: str) -> str | None:
    from stacks.config import load_config

    try:
        return load_config(stage).account
    except ValueError as error:
        raise CliError(str(error), BAD_INPUT) from None


def target_session(ops: Ops, args: argparse.Namespace) -> Aws:
    """The target stage's session: ``--to-profile``, ``--to-role-arn``, the configured promotion role when the
    target stage lives in another account, else this session."""
    region = args.to_region or ops.aws.region
    if args.to_profile:
        return Aws(profile=args.to_profile, region=region)
    role = args.to_role_arn
    if role is None:
        account = configured_account(args.to)
        caller_account = ops.aws.caller().split(":")[4] if ops.aws.caller().startswith("arn:") else None
        if account and account != caller_account:
            role = f"arn:aws:iam::{account}:role/{ROLE_NAME.format(prefix=stack_name(args.to))}"
    if role is None:
        return ops.aws if region == ops.aws.region else Aws(region=region, session=boto3.Session(region_name=region))
    try:
        credentials = ops.aws.client("sts").assume_role(RoleArn=role, RoleSessionName="mlops-promote")["Credentials"]
    except Exception as error:
        raise CliError(f"cannot assume the promotion role {role}: {error}", NO_ACCESS) from None
    session = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )
    return Aws(region=region, session=session)


def _copy(source: Aws, target: Aws, uri: str, bucket: str, key: str) -> str:
    src_bucket, src_key = split_uri(uri)
    body = source.client("s3").get_object(Bucket=src_bucket, Key=src_key)["Body"]
    target.client("s3").upload_fileobj(body, bucket, key)
    return f"s3://{bucket}/{key}"


def _copy_folder(source: Aws, target: Aws, folder_uri: str, bucket: str, prefix: str) -> dict[str, str]:
    """Every object under ``folder_uri`` to ``s3://bucket/prefix``; source URI -> copy URI."""
    src_bucket, src_prefix = split_uri(folder_uri.rstrip("/") + "/")
    paginator = source.client("s3").get_paginator("list_objects_v2")
    copied = {}
    for page in paginator.paginate(Bucket=src_bucket, Prefix=src_prefix):
        for obj in page.get("Contents", []):
            relative = obj["Key"][len(src_prefix) :]
            copied[f"s3://{src_bucket}/{obj['Key']}"] = _copy(
                source, target, f"s3://{src_bucket}/{obj['Key']}", bucket, prefix + relative
            )
    return copied


def _evaluation_folder(uri: str) -> str:
    return uri.rsplit("/", 1)[0] + "/" if uri.rstrip("/").endswith(".json") else uri.rstrip("/") + "/"


def existing_copy(sagemaker: Any, dataset: Dataset, source_arn: str) -> registry.Package | None:
    for package in registry.packages(sagemaker, dataset):
        if package.metadata.get("promoted_from") == source_arn[:METADATA_VALUE_CHARS]:
            return package
    return None


def promote(ops: Ops, args: argparse.Namespace) -> int:
    source_stage = ops.stack_name.removeprefix("mlops-")
    if args.to == source_stage or stack_name(args.to) == ops.stack_name:
        raise CliError(f"--to {args.to}: the package is already in {ops.stack_name}", BAD_INPUT)
    dataset = ops.stack.dataset(args.dataset)
    package = registry.find(ops.aws.client("sagemaker"), dataset, args.version)
    if package.status != registry.APPROVED:
        raise CliError(
            f"{dataset.name} v{package.version} is {package.status}: only an Approved version is promoted", BAD_INPUT
        )
    target_aws = target_session(ops, args)
    target = Stack.load(target_aws, args.to_stack or stack_name(args.to))
    target_dataset = target.dataset(dataset.name)
    sagemaker = target_aws.client("sagemaker")
    already = existing_copy(sagemaker, target_dataset, package.arn)
    if already is not None:
        result = _result(dataset, package, target, target_dataset, already, copied=False)
        emit(
            ops.as_json,
            result,
            f"{dataset.name} v{package.version} is already in {target.name} as v{already.version} ({already.status})\n",
        )
        return OK
    bucket = target.output("ArtifactsBucket")
    slug = f"{source_stage}/{dataset.model_package_group}-v{package.version}"
    containers = package.raw.get("InferenceSpecification", {}).get("Containers") or []
    if not containers or not containers[0].get("ModelDataUrl"):
        raise CliError(
            f"{package.arn} has no model artifact (InferenceSpecification.Containers[0].ModelDataUrl)", BAD_INPUT
        )
    container = containers[0]
    progress(f"copying the model artifact of v{package.version} to s3://{bucket}/models/promoted/{slug}/")
    model_uri = _copy(ops.aws, target_aws, container["ModelDataUrl"], bucket, f"models/promoted/{slug}/model.tar.gz")
    metadata = dict(package.metadata)
    evaluation_uri = metadata.get("evaluation_uri")
    if not evaluation_uri:
        raise CliError(f"{package.arn} has no evaluation_uri: its evaluation cannot go with it", BAD_INPUT)
    folder = _evaluation_folder(evaluation_uri)
    progress(f"copying its evaluation ({folder})")
    copies = _copy_folder(ops.aws, target_aws, folder, bucket, f"evaluations/promoted-{slug.replace('/', '-')}/")
    new_folder = f"s3://{bucket}/evaluations/promoted-{slug.replace('/', '-')}/"
    metadata["evaluation_uri"] = copies.get(evaluation_uri) or new_folder
    metadata.update(
        promoted_from=package.arn[:METADATA_VALUE_CHARS],
        promoted_from_stage=source_stage,
        promoted_by=ops.aws.caller()[:METADATA_VALUE_CHARS],
    )
    statistics = (package.raw.get("ModelMetrics") or {}).get("ModelQuality", {}).get("Statistics") or {}
    specification = package.raw["InferenceSpecification"]
    new_container = {"Image": container["Image"], "ModelDataUrl": model_uri}
    if container.get("Environment"):
        new_container["Environment"] = dict(container["Environment"])
    request: dict[str, Any] = {
        "ModelPackageGroupName": target_dataset.model_package_group,
        "ModelPackageDescription": f"{dataset.name} model {package.model_version} promoted from {source_stage} "
        f"v{package.version}"[:1024],
        "InferenceSpecification": {
            "Containers": [new_container],
            "SupportedContentTypes": list(specification.get("SupportedContentTypes") or ["text/csv"]),
            "SupportedResponseMIMETypes": list(specification.get("SupportedResponseMIMETypes") or ["application/json"]),
        },
        "CustomerMetadataProperties": metadata,
        "ModelApprovalStatus": registry.PENDING,
        "ClientToken": hashlib.sha256(f"{package.arn}|{target_dataset.model_package_group}".encode()).hexdigest()[:36],
    }
    if statistics.get("S3Uri"):
        request["ModelMetrics"] = {
            "ModelQuality": {
                "Statistics": {
                    "ContentType": statistics.get("ContentType", "application/json"),
                    "S3Uri": copies.get(statistics["S3Uri"], metadata["evaluation_uri"]),
                }
            }
        }
    if package.raw.get("MetadataProperties"):
        request["MetadataProperties"] = dict(package.raw["MetadataProperties"])
    arn = sagemaker.create_model_package(**request)["ModelPackageArn"]
    created = registry.package_of(sagemaker.describe_model_package(ModelPackageName=arn))
    result = _result(dataset, package, target, target_dataset, created, copied=True)
    emit(
        ops.as_json,
        result,
        f"{dataset.name} v{package.version} ({package.model_version}) -> {target.name} v{created.version}: "
        f"{created.status}\napprove it there: mlops approve {created.version} --stage {args.to} "
        f"--dataset {dataset.name}\n",
    )
    return OK


def _result(
    dataset: Dataset,
    package: registry.Package,
    target: Stack,
    target_dataset: Dataset,
    copy: registry.Package,
    *,
    copied: bool,
) -> dict[str, Any]:
    return {
        "dataset": dataset.name,
        "source": {
            "version": package.version,
            "model_package_arn": package.arn,
            "model_version": package.model_version,
        },
        "target": {
            "stack": target.name,
            "model_package_group": target_dataset.model_package_group,
            "version": copy.version,
            "model_package_arn": copy.arn,
            "status": copy.status,
            "model_data": (copy.raw.get("InferenceSpecification", {}).get("Containers") or [{}])[0].get("ModelDataUrl"),
            "evaluation_uri": copy.metadata.get("evaluation_uri"),
        },
        "copied": copied,
    }


def add(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("promote", parents=[common], help="copy an approved model to another stage's registry")
    parser.add_argument("version")
    parser.add_argument("--to", required=True, help="the target stage (e.g. prod)")
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--to-stack", default=None, help="the target stack (default mlops-<to>)")
    parser.add_argument("--to-profile", default=None, help="an AWS profile of the target account")
    parser.add_argument("--to-role-arn", default=None, help="a role to assume in the target account")
    parser.add_argument("--to-region", default=None, help="the target region (default: this one)")
    parser.set_defaults(operation=promote)
