"""Step Functions executions of the stack's two state machines: listed per dataset, with per-step timings, the
failure reason, and a wait loop with progress."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from cli.errors import BAD_INPUT, CliError
from cli.output import progress, seconds
from cli.session import error_code
from cli.stack import Stack

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
POLL_SECONDS = 2.0


def input_of(described: dict[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(described.get("input") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def dataset_of(stack: Stack, described: dict[str, Any]) -> str | None:
    """The execution's dataset: its input's ``dataset``; on a single-dataset stack, that one dataset."""
    value = input_of(described).get("dataset")
    if isinstance(value, str) and value:
        return value  # an upload's input names the raw object under "dataset" on single-dataset stacks
    return next(iter(stack.datasets)) if len(stack.datasets) == 1 else None


def trigger_text(execution_input: dict[str, Any]) -> str:
    trigger = execution_input.get("trigger")
    if isinstance(trigger, dict):
        source = str(trigger.get("source", "?"))
        extra = trigger.get("alarm") or trigger.get("requested_by") or ""
        forced = " (forced)" if trigger.get("forced") else ""
        return f"{source}{forced}" + (f": {extra}" if extra else "")
    return str(trigger or "-")


def summarize(stack: Stack, sfn: Any, arn: str, kind: str) -> dict[str, Any]:
    described = sfn.describe_execution(executionArn=arn)
    execution_input = input_of(described)
    return {
        "kind": kind,
        "name": described["name"],
        "arn": arn,
        "dataset": dataset_of(stack, described),
        "status": described["status"],
        "started": described.get("startDate"),
        "stopped": described.get("stopDate"),
        "seconds": seconds(described.get("startDate"), described.get("stopDate")),
        "trigger": trigger_text(execution_input),
        "model_package_arn": execution_input.get("model_package_arn"),
        "error": described.get("error"),
        "cause": described.get("cause"),
    }


def machines(stack: Stack) -> dict[str, str]:
    return {"training": stack.training_machine, "deployment": stack.deployment_machine}


def recent(
    stack: Stack, kinds: tuple[str, ...] = ("training",), limit: int = 20, dataset: str | None = None
) -> list[dict[str, Any]]:
    """The newest executions of the state machines ``kinds`` (of ``dataset`` when given), newest first."""
    sfn = stack.aws.client("stepfunctions")
    found: list[dict[str, Any]] = []
    for kind in kinds:
        listed = sfn.list_executions(stateMachineArn=machines(stack)[kind], maxResults=100).get("executions", [])
        listed = sorted(listed, key=lambda e: e["startDate"], reverse=True)
        for execution in listed:
            summary = summarize(stack, sfn, execution["executionArn"], kind)
            if dataset is None or summary["dataset"] == dataset:
                found.append(summary)
            if len([f for f in found if f["kind"] == kind]) >= limit:
                break
    return sorted(found, key=lambda e: e["started"], reverse=True)[:limit]


def resolve(stack: Stack, run: str) -> tuple[str, str]:
    """(ARN, kind) of ``run``: an execution ARN, or a name of either state machine's executions."""
    sfn = stack.aws.client("stepfunctions")
    for kind, machine in machines(stack).items():
        arn = run if run.startswith("arn:") else machine.replace(":stateMachine:", ":execution:") + f":{run}"
        if run.startswith("arn:") and not arn.startswith(machine.replace(":stateMachine:", ":execution:") + ":"):
            continue
        try:
            sfn.describe_execution(executionArn=arn)
        except Exception as error:
            if error_code(error) in ("ExecutionDoesNotExist", "InvalidArn", "ValidationException"):
                continue
            raise
        return arn, kind
    raise CliError(
        f"no run {run!r} in {stack.name}'s training or deployment state machine (see: mlops runs)", BAD_INPUT
    )


def history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    paginator = sfn.get_paginator("get_execution_history")
    return [e for page in paginator.paginate(executionArn=arn) for e in page["events"]]


def steps(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each state entered, in order, with its timing and, when it failed, the error and cause."""
    found: list[dict[str, Any]] = []
    open_steps: dict[str, dict[str, Any]] = {}
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            step = {"step": name, "type": kind.removesuffix("StateEntered"), "started": event["timestamp"]}
            step.update(stopped=None, seconds=None, status="running", error=None, cause=None)
            found.append(step)
            open_steps[name] = step
        elif kind.endswith("StateExited"):
            exited = open_steps.pop(event["stateExitedEventDetails"]["name"], None)
            if exited is not None:
                status = "ok" if exited["status"] == "running" else exited["status"]
                exited.update(stopped=event["timestamp"], status=status)
                exited["seconds"] = seconds(exited["started"], exited["stopped"])
        elif kind.endswith("Failed") or kind.endswith("TimedOut"):
            details = next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})
            if found and details:
                last = found[-1]
                last.update(status="failed", error=details.get("error"), cause=_cause(details.get("cause")))
    return found


def _cause(cause: Any) -> Any:
    """A Lambda error's cause is JSON: its errorMessage is the reason."""
    if isinstance(cause, str):
        try:
            parsed = json.loads(cause)
        except ValueError:
            return cause
        if isinstance(parsed, dict) and parsed.get("errorMessage"):
            return f"{parsed.get('errorType', 'Error')}: {parsed['errorMessage']}"
    return cause


def current_step(sfn: Any, arn: str) -> str:
    found = steps(history(sfn, arn))
    running = [s["step"] for s in found if s["status"] == "running"]
    return running[-1] if running else (found[-1]["step"] if found else "starting")


def wait(
    sfn: Any, arn: str, timeout: float, poll: float = POLL_SECONDS, sleep: Callable[[float], None] = time.sleep
) -> dict[str, Any]:
    """Poll until the execution ends, printing each step it enters; the final DescribeExecution."""
    deadline = time.monotonic() + timeout
    shown = 0
    while True:
        described = sfn.describe_execution(executionArn=arn)
        entered = steps(history(sfn, arn))
        for new in entered[shown:]:  # every state entered since the last poll, even one already left
            progress(f"{described['name']}: {new['step']}")
        shown = len(entered)
        if described["status"] in TERMINAL:
            progress(f"{described['name']}: {described['status']}")
            return dict(described)
        if time.monotonic() > deadline:
            at = entered[-1]["step"] if entered else "starting"
            raise CliError(f"{described['name']} is still {described['status']} after {timeout:.0f} s (at {at})", 1)
        sleep(poll)


def arns(sfn: Any, machine: str) -> set[str]:
    return {
        e["executionArn"] for e in sfn.list_executions(stateMachineArn=machine, maxResults=100).get("executions", [])
    }


def new_execution(
    sfn: Any, machine: str, before: set[str], match: Callable[[dict[str, Any]], bool], timeout: float
) -> str:
    """The ARN of the first execution of ``machine`` not in ``before`` whose input matches (an approval's
    deployment starts from an EventBridge rule, a little after the approval)."""
    deadline = time.monotonic() + timeout
    while True:
        for arn in sorted(arns(sfn, machine) - before):
            if match(input_of(sfn.describe_execution(executionArn=arn))):
                return arn
        if time.monotonic() > deadline:
            raise CliError(f"no execution of {machine.rsplit(':', 1)[-1]} started within {timeout:.0f} s", 1)
        time.sleep(POLL_SECONDS)
