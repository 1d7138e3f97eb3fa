"""``mlops logs FUNCTION|RUN [--since 1h] [--limit N]``: a Lambda function's log events (``retrain``, ``deploy``,
... the handler's package name), or one run's execution events plus the logs of the Glue and SageMaker jobs it ran."""

from __future__ import annotations

import argparse
import json
import re
import time
from datetime import UTC, datetime
from typing import Any

from cli import executions
from cli.context import Ops
from cli.errors import BAD_INPUT, OK, CliError
from cli.output import emit, when

JOB_LOGS = {
    "TrainingJobName": "/aws/sagemaker/TrainingJobs",
    "ProcessingJobName": "/aws/sagemaker/ProcessingJobs",
}
GLUE_LOGS = ("/aws-glue/jobs/output", "/aws-glue/jobs/error")
_SINCE = re.compile(r"^(\d+)([smhd])$")


def since_ms(text: str) -> int:
    match = _SINCE.match(text)
    if not match:
        raise CliError(f"--since {text!r}: give a number and a unit, e.g. 30m, 6h, 2d", BAD_INPUT)
    seconds = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return int((time.time() - seconds) * 1000)


def events(logs: Any, group: str, start: int, limit: int, stream_prefix: str | None = None) -> list[dict[str, Any]]:
    request: dict[str, Any] = {"logGroupName": group, "startTime": start, "limit": min(limit, 10000)}
    if stream_prefix:
        request["logStreamNamePrefix"] = stream_prefix
    try:
        found = logs.filter_log_events(**request).get("events", [])
    except Exception as error:
        if getattr(error, "response", {}).get("Error", {}).get("Code") == "ResourceNotFoundException":
            return []
        raise
    return [
        {
            "time": datetime.fromtimestamp(e["timestamp"] / 1000, UTC),
            "group": group,
            "stream": e.get("logStreamName"),
            "message": e["message"].rstrip("\n"),
        }
        for e in found
    ][-limit:]


def _job_names(history: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(log group, stream prefix) of every job the run's history names."""
    text = json.dumps(history, default=str)
    found = []
    for key, group in JOB_LOGS.items():
        found += [(group, f"{name}/") for name in dict.fromkeys(re.findall(rf'\\?"{key}\\?": ?\\?"([^"\\]+)', text))]
    for run_id in dict.fromkeys(re.findall(r'\\?"JobRunId\\?": ?\\?"([^"\\]+)', text)):
        found += [(group, run_id) for group in GLUE_LOGS]
    return found


def show(ops: Ops, args: argparse.Namespace) -> int:
    stack = ops.stack
    logs = ops.aws.client("logs")
    start = since_ms(args.since)
    functions = stack.functions()
    target = args.target.replace("_", "-")
    if target in functions:
        found = events(logs, functions[target]["log_group"], start, args.limit)
        data: dict[str, Any] = {"function": functions[target], "events": found}
    else:
        try:
            arn, kind = executions.resolve(stack, args.target)
        except CliError:
            raise CliError(
                f"{args.target!r} is neither a function ({', '.join(sorted(functions))}) nor a run (mlops runs)",
                BAD_INPUT,
            ) from None
        sfn = ops.aws.client("stepfunctions")
        history = executions.history(sfn, arn)
        found = [
            {"time": e["timestamp"], "group": "execution", "stream": kind, "message": _event_text(e)} for e in history
        ]
        for group, prefix in _job_names(history):
            found += events(logs, group, 0, args.limit, prefix)
        data = {"run": arn, "events": found}
    text = "".join(f"{when(e['time'])} {e['stream'] or ''} {e['message']}\n" for e in found) or "(no log events)\n"
    emit(ops.as_json, data, text)
    return OK


def _event_text(event: dict[str, Any]) -> str:
    details = next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})
    name = details.get("name") or details.get("resource") or ""
    extra = details.get("error") or ""
    cause = details.get("cause")
    return " ".join(part for part in (event["type"], name, extra, str(cause)[:500] if cause else "") if part)


def add(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("logs", parents=[common], help="a function's logs, or a run's events and job logs")
    parser.add_argument("target", help="a function (retrain, deploy, start-pipeline, ...) or a run name/ARN")
    parser.add_argument("--since", default="1h", help="how far back for a function (default %(default)s)")
    parser.add_argument("--limit", type=int, default=200)
    parser.set_defaults(operation=show)
