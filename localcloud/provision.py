"""Synthesize the CDK app and deploy its cloud assembly into moto, the way ``cdk deploy`` would.

1. ``synth``: the CDK app (``stacks.app.build_app``) writes a cloud assembly (templates, asset manifests,
   staged assets) in a subprocess, exactly what ``cdk synth`` produces.
2. ``publish_assets``: every file asset of the assembly is zipped (directories) or copied (files) into the
   bootstrap asset bucket under the object key its manifest names, unless that key is already there, as
   ``cdk-assets`` does.
3. ``deploy``: public SSM parameters are seeded, then the template goes through moto's CloudFormation
   (``create_stack``, or ``update_stack`` when the stack is deployed: a dataset added or removed creates its
   resources, deletes the removed ones except the retained, and updates the changed ones in place, as
   ``cdk deploy`` would). Resource types moto lacks are created by ``localcloud.shims.cloudformation`` from
   their resolved properties. A type nobody can create fails the deployment instead of being skipped.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcloud.shims import cloudformation as cfn_shim
from localcloud.shims import ssm_public

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT_ID = "123456789012"  # moto's default account


class DeployError(RuntimeError):
    pass


@dataclass
class Deployment:
    stack_name: str
    region: str
    template: dict[str, Any]
    outputs: dict[str, str]
    resources: dict[str, str]  # logical id -> physical id
    resource_types: dict[str, str]  # logical id -> type
    assembly: Path
    assets: dict[str, str] = field(default_factory=dict)  # asset hash -> s3://bucket/key

    def physical(self, resource_type: str) -> dict[str, str]:
        return {k: v for k, v in self.resources.items() if self.resource_types[k] == resource_type}


class Synth:
    """A CDK synth running in its own process (``start_synth``): ``wait()`` returns the assembly's directory once
    it is written, ``cancel()`` stops it. The process is Python driving the CDK's Node.js runtime (jsii), about
    1.3 of the host's cores: the caller can start the local cloud meanwhile."""

    def __init__(self, stage: str, outdir: Path, datasets_dir: Path | None = None) -> None:
        self.outdir = outdir
        outdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "CDK_OUTDIR": str(outdir), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
        folder = None if datasets_dir is None else str(datasets_dir)
        code = f"from stacks.app import build_app; build_app(stage={stage!r}, datasets_dir={folder!r}).synth()"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait(self) -> Path:
        _, stderr = self.process.communicate()
        if self.process.returncode != 0:
            raise DeployError(f"cdk synth failed:\n{stderr[-4000:]}")
        return self.outdir

    def cancel(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


def start_synth(stage: str, outdir: Path, datasets_dir: Path | None = None) -> Synth:
    """Start the CDK app into ``outdir`` in the background (cdk-nag runs inside the synth, as in ``cdk synth``),
    declaring the datasets of ``datasets_dir`` (default: the repository's ``datasets/``)."""
    return Synth(stage, outdir, datasets_dir)


def synth(stage: str, outdir: Path, datasets_dir: Path | None = None) -> Path:
    """Run the CDK app into ``outdir`` and wait for it (``start_synth``)."""
    return start_synth(stage, outdir, datasets_dir).wait()


def stacks_of(assembly: Path) -> list[str]:
    manifest = json.loads((assembly / "manifest.json").read_text())
    return [name for name, artifact in manifest["artifacts"].items() if artifact["type"] == "aws:cloudformation:stack"]


def _substitute(text: str, account_id: str, region: str) -> str:
    return (
        text.replace("${AWS::AccountId}", account_id)
        .replace("${AWS::Region}", region)
        .replace("${AWS::Partition}", "aws")
    )


def _zip_directory(directory: Path) -> bytes:
    """A zip of ``directory`` with sorted entries and fixed times (cdk-assets zips are deterministic too)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(directory).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


EMPTY_ZIP_SIZE = 22
"""cdk-assets counts an object of at most this size (an empty zip archive) as not published."""


def published(s3: Any, bucket: str, key: str) -> bool:
    """Whether the asset is already in its bucket, decided as cdk-assets decides (``objectExists`` of its file
    asset handler: ``ListObjectsV2`` with the key as prefix and ``MaxKeys=1``, an object with that exact key and more
    than the 22 bytes of an empty zip). The key is the asset's content hash: the same key holds the same content."""
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    return any(
        o["Key"] == key and o.get("Size", EMPTY_ZIP_SIZE + 1) > EMPTY_ZIP_SIZE for o in listing.get("Contents", [])
    )


def publish_assets(assembly: Path, stack_name: str, s3: Any, account_id: str, region: str) -> dict[str, str]:
    """Upload the stack's file assets that are not in their bucket yet (as ``cdk-assets`` does: an asset already
    published under its content-hash key is skipped); returns asset hash -> S3 URL. A file is streamed from the
    assembly, a directory zipped in memory."""
    manifest = json.loads((assembly / f"{stack_name}.assets.json").read_text())
    published_urls = {}
    for asset_hash, asset in manifest.get("files", {}).items():
        source = assembly / asset["source"]["path"]
        zipped = asset["source"].get("packaging", "file") == "zip" or source.is_dir()
        for destination in asset["destinations"].values():
            bucket = _substitute(destination["bucketName"], account_id, region)
            key = _substitute(destination["objectKey"], account_id, region)
            _ensure_bucket(s3, bucket, region)
            if not published(s3, bucket, key):
                if zipped:
                    s3.put_object(Bucket=bucket, Key=key, Body=_zip_directory(source))
                else:
                    with source.open("rb") as body:
                        s3.put_object(Bucket=bucket, Key=key, Body=body)
            published_urls[asset_hash] = f"s3://{bucket}/{key}"
    return published_urls


def _ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})


def _ssm_parameter_names(template: dict[str, Any]) -> list[str]:
    return [
        str(p["Default"])
        for p in template.get("Parameters", {}).values()
        if str(p.get("Type", "")).startswith("AWS::SSM::Parameter::") and "Default" in p
    ]


def deployed(stack_name: str, clients: Any) -> bool:
    """Whether ``stack_name`` is a live stack (a deleted one is not)."""
    try:
        stacks = clients.cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except clients.cloudformation.exceptions.ClientError:
        return False
    return any(stack["StackStatus"] != "DELETE_COMPLETE" for stack in stacks)


def deploy(assembly: Path, stack_name: str, clients: Any, account_id: str = ACCOUNT_ID) -> Deployment:
    """Publish the assets and create the stack, or update it when it is deployed; every resource of the template
    must exist afterwards."""
    template = json.loads((assembly / f"{stack_name}.template.json").read_text())
    region = clients.region
    cfn_shim.install()
    missing = cfn_shim.unsupported_types(template)
    if missing:
        raise DeployError(f"no local-cloud support for resource types {missing}")
    ssm_public.seed(account_id, region, _ssm_parameter_names(template))
    assets = publish_assets(assembly, stack_name, clients.s3, account_id, region)
    cloudformation = clients.cloudformation
    update = deployed(stack_name, clients)
    operation = cloudformation.update_stack if update else cloudformation.create_stack
    try:
        operation(
            StackName=stack_name,
            TemplateBody=json.dumps(template),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    except Exception as error:
        raise DeployError(f"{operation.__name__} {stack_name} failed: {error}") from error
    cfn_shim.apply_deferred()
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    if stack["StackStatus"] != ("UPDATE_COMPLETE" if update else "CREATE_COMPLETE"):
        raise DeployError(f"stack {stack_name} is {stack['StackStatus']}: {stack.get('StackStatusReason')}")
    resources, types = {}, {}
    paginator = cloudformation.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=stack_name):
        for summary in page["StackResourceSummaries"]:
            resources[summary["LogicalResourceId"]] = summary["PhysicalResourceId"]
            types[summary["LogicalResourceId"]] = summary["ResourceType"]
    expected = {k for k, v in template["Resources"].items() if v["Type"] != "AWS::CDK::Metadata"}
    absent = sorted(expected - set(resources))
    if absent:
        raise DeployError(f"stack {stack_name}: resources not created: {absent}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return Deployment(stack_name, region, template, outputs, resources, types, assembly, assets)


def destroy(stack_name: str, clients: Any) -> None:
    """Delete the stack (custom resources run their delete handlers; retained resources stay)."""
    clients.cloudformation.delete_stack(StackName=stack_name)
