"""``mlops approve VERSION`` and ``mlops reject VERSION --reason ...``: the registry decision without copying ARNs.

Approving sets the version to Approved (UpdateModelPackage), which starts the deployment state machine through the
stack's approval rule, as in the console; ``--wait`` follows that deployment to its end. Rejecting records the
reason as the ApprovalDescription; a rejected version that still serves keeps serving until a rollback or the next
deployment (the command says so).
"""

from __future__ import annotations

import argparse
from typing import Any

from cli import executions, registry
from cli.context import Ops
from cli.errors import BAD_INPUT, FAILED, OK, CliError
from cli.output import emit, progress

DESCRIPTION_CHARS = 1000  # UpdateModelPackage ApprovalDescription: at most 1,000 characters, one line


def _one_line(text: str) -> str:
    return " ".join(text.split())[:DESCRIPTION_CHARS]


def decide(ops: Ops, args: argparse.Namespace, status: str) -> int:
    dataset = ops.stack.dataset(args.dataset)
    sagemaker = ops.aws.client("sagemaker")
    package = registry.find(sagemaker, dataset, args.version)
    if package.status == status:
        raise CliError(f"{dataset.name} v{package.version} is already {status}", BAD_INPUT)
    who = ops.aws.caller()
    verb = "approved" if status == registry.APPROVED else "rejected"
    description = _one_line(f"{verb} by {who}" + (f": {args.reason}" if args.reason else ""))
    sfn = ops.aws.client("stepfunctions")
    before = executions.arns(sfn, ops.stack.deployment_machine) if status == registry.APPROVED and args.wait else set()
    sagemaker.update_model_package(
        ModelPackageArn=package.arn,
        ModelApprovalStatus=status,
        ApprovalDescription=description,
        CustomerMetadataProperties=package.metadata,  # repeated whole: some registries replace the map on update
    )
    result: dict[str, Any] = {
        "dataset": dataset.name,
        "version": package.version,
        "model_package_arn": package.arn,
        "status": status,
        "previous_status": package.status,
        "description": description,
    }
    lines = [f"{dataset.name} v{package.version} ({package.model_version}): {package.status} -> {status}"]
    code = OK
    if status == registry.REJECTED:
        live = registry.serving(sagemaker, dataset)
        if live is not None and live["version"] == package.version:
            lines.append(
                f"v{package.version} still serves {dataset.endpoint}: `mlops rollback --dataset {dataset.name}`"
            )
    elif args.wait:
        progress(f"waiting for the deployment of v{package.version}")
        arn = executions.new_execution(
            sfn, ops.stack.deployment_machine, before, lambda i: i.get("model_package_arn") == package.arn, args.timeout
        )
        final = executions.wait(sfn, arn, args.timeout)
        result["deployment"] = {"arn": arn, "status": final["status"], "cause": final.get("cause")}
        lines.append(
            f"deployment {final['name']}: {final['status']}" + (f": {final.get('cause')}" if final.get("cause") else "")
        )
        code = OK if final["status"] == "SUCCEEDED" else FAILED
    else:
        lines.append("the deployment state machine starts on the approval (follow it: mlops runs --deployments)")
    emit(ops.as_json, result, "\n".join(lines) + "\n")
    return code


def approve(ops: Ops, args: argparse.Namespace) -> int:
    return decide(ops, args, registry.APPROVED)


def reject(ops: Ops, args: argparse.Namespace) -> int:
    if not args.reason.strip():
        raise CliError("--reason must say why the version is rejected", BAD_INPUT)
    return decide(ops, args, registry.REJECTED)


def add(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("approve", parents=[common], help="approve a model version (deploys it)")
    parser.add_argument("version", help="the version number (3 or v3) or the package ARN")
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--reason", default="", help="recorded with the approval")
    parser.add_argument("--wait", action="store_true", help="follow the deployment it starts to its end")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds --wait waits (default %(default)s)")
    parser.set_defaults(operation=approve)
    parser = commands.add_parser("reject", parents=[common], help="reject a model version, with the reason")
    parser.add_argument("version")
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--reason", required=True, help="why (recorded as the approval description)")
    parser.set_defaults(operation=reject, wait=False)
