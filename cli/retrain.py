"""``mlops retrain --dataset N [--reason ...] [--force] [--wait]``: a run on the data the dataset's curated manifest
names plus the labelled production rows its data policy adds (the plan is the execution input's ``data_plan``),
through the retrain Lambda's guard (``lambdas.retrain.manual``: no overlap, the cooldown and daily budget the
alarm path shares). ``--force`` bypasses cooldown and budget, never a running execution, and is recorded. A refusal
prints the guard's reason and exits 1."""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any

from cli import executions
from cli.context import Ops
from cli.errors import FAILED, OK, CliError
from cli.output import emit, progress

FUNCTION = "retrain"  # lambdas/retrain


def retrain(ops: Ops, args: argparse.Namespace) -> int:
    dataset = ops.stack.dataset(args.dataset)
    function = ops.stack.function(FUNCTION)
    request = {
        "source": "mlops.cli",
        "dataset": dataset.name,
        "reason": args.reason or "manual retrain (mlops retrain)",
        "requested_by": ops.aws.caller(),
        "request_id": uuid.uuid4().hex,
        "force": bool(args.force),
    }
    response = ops.aws.client("lambda").invoke(
        FunctionName=function["name"], InvocationType="RequestResponse", Payload=json.dumps(request).encode()
    )
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        message = payload.get("errorMessage") if isinstance(payload, dict) else payload
        raise CliError(f"the retrain function failed: {message}", FAILED)
    decision: dict[str, Any] = dict(payload)
    if decision.get("decision") != "started":
        emit(
            ops.as_json,
            decision,
            f"{dataset.name}: retrain refused ({decision.get('guard')}): {decision.get('reason')}\n",
        )
        return FAILED
    forced = " (forced: cooldown and budget bypassed)" if decision.get("forced") else ""
    lines = [f"{dataset.name}: retrain started{forced}: {decision.get('execution_name')}"]
    code = OK
    if args.wait:
        final = executions.wait(ops.aws.client("stepfunctions"), str(decision["execution_arn"]), args.timeout)
        decision["status"] = final["status"]
        lines.append(f"{final['status']}" + (f": {final.get('cause')}" if final.get("cause") else ""))
        code = OK if final["status"] == "SUCCEEDED" else FAILED
    else:
        progress(f"follow it: mlops runs show {decision.get('execution_name')}")
    emit(ops.as_json, decision, "\n".join(lines) + "\n")
    return code


def add(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("retrain", parents=[common], help="start a guarded retraining run")
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--reason", default="", help="recorded with the decision and the run")
    parser.add_argument("--force", action="store_true", help="bypass cooldown and daily budget (recorded)")
    parser.add_argument("--wait", action="store_true", help="follow the run to its end")
    parser.add_argument("--timeout", type=float, default=7200.0)
    parser.set_defaults(operation=retrain)
