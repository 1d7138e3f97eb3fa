"""``mlops rollback --dataset N [--to VERSION] [--reason ...] [--wait]``: an earlier approved version serves again,
through the same guarded deployment state machine as an approval (smoke test, canary, auto-rollback, verify).

The execution is named ``rollback-<dataset>-v<from>-to-v<to>-<time>`` and its input's trigger records the rollback
(``{"source": "rollback", "from_version", "to_version", "reason", "requested_by"}``). Once the rollout is verified
the deploy Lambda sets the newer Approved versions to Rejected, marked ``rolled_back_by`` / ``rolled_back_to``
(``lambdas.deploy.logic.Deployer._retire_newer``): the champion of the next gate is the serving model. Without
``--to`` the target is the newest Approved version older than the one serving.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime
from typing import Any

from cli import executions, registry
from cli.context import Ops
from cli.errors import BAD_INPUT, FAILED, OK, CliError
from cli.output import emit, progress


def execution_name(dataset: str, source: int | None, target: int, now: datetime) -> str:
    """At most 80 characters of ``[A-Za-z0-9-_]`` (StartExecution's name rule)."""
    slug = re.sub(r"[^A-Za-z0-9_-]", "-", dataset)[:30]
    return f"rollback-{slug}-v{source or 0}-to-v{target}-{now:%Y%m%dT%H%M%S}"


def plan(ops: Ops, args: argparse.Namespace) -> tuple[Any, registry.Package, int | None]:
    dataset = ops.stack.dataset(args.dataset)
    sagemaker = ops.aws.client("sagemaker")
    live = registry.serving(sagemaker, dataset)
    if live is None:
        raise CliError(f"{dataset.name}: endpoint {dataset.endpoint} does not exist: nothing to roll back", BAD_INPUT)
    current = live["version"]
    if args.to is not None:
        target = registry.find(sagemaker, dataset, args.to)
    else:
        older = [
            p
            for p in registry.packages(sagemaker, dataset)
            if p.status == registry.APPROVED and p.version < (current or 0)
        ]
        if not older:
            raise CliError(f"{dataset.name}: no Approved version older than v{current} to roll back to", BAD_INPUT)
        target = older[0]
    if target.version == current:
        raise CliError(f"{dataset.name} v{target.version} already serves {dataset.endpoint}", BAD_INPUT)
    if target.status != registry.APPROVED:
        hint = (
            f"; approve it first (mlops approve {target.version}) if it should serve"
            if target.status == registry.REJECTED
            else ""
        )
        raise CliError(
            f"{dataset.name} v{target.version} is {target.status}: only an Approved version is rolled back to{hint}",
            BAD_INPUT,
        )
    return dataset, target, current


def rollback(ops: Ops, args: argparse.Namespace) -> int:
    dataset, target, current = plan(ops, args)
    sfn = ops.aws.client("stepfunctions")
    trigger = {
        "source": "rollback",
        "from_version": current,
        "to_version": target.version,
        "reason": args.reason or f"rollback to v{target.version}",
        "requested_by": ops.aws.caller(),
    }
    name = execution_name(dataset.name, current, target.version, datetime.now(UTC))
    started = sfn.start_execution(
        stateMachineArn=ops.stack.deployment_machine,
        name=name,
        input=json.dumps({"model_package_arn": target.arn, "trigger": trigger, "dataset": dataset.name}),
    )
    arn = started["executionArn"]
    result: dict[str, Any] = {
        "dataset": dataset.name,
        "from_version": current,
        "to_version": target.version,
        "model_package_arn": target.arn,
        "execution_arn": arn,
        "execution_name": name,
        "status": "RUNNING",
    }
    lines = [f"{dataset.name}: rolling back v{current} -> v{target.version} ({target.model_version}) as {name}"]
    code = OK
    if args.wait:
        progress(f"{name}: smoke test, canary and verify, as any deployment")
        final = executions.wait(sfn, arn, args.timeout)
        result.update(status=final["status"], cause=final.get("cause"))
        lines.append(f"{final['status']}" + (f": {final.get('cause')}" if final.get("cause") else ""))
        code = OK if final["status"] == "SUCCEEDED" else FAILED
    else:
        lines.append(f"follow it: mlops runs show {name}")
    emit(ops.as_json, result, "\n".join(lines) + "\n")
    return code


def add(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("rollback", parents=[common], help="serve an earlier approved version again (canary)")
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--to", default=None, help="the version (default: the newest Approved one older than serving)")
    parser.add_argument("--reason", default="", help="recorded in the execution and on the retired versions")
    parser.add_argument("--wait", action="store_true", help="follow the deployment to its end")
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.set_defaults(operation=rollback)
