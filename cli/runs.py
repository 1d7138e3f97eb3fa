"""``mlops runs [--dataset N] [--deployments] [--limit K]`` and ``mlops runs show RUN``: pipeline (and deployment)
executions, each run with per-step timings and the failure reason where one failed."""

from __future__ import annotations

import argparse
from typing import Any

from cli import executions
from cli.context import Ops
from cli.errors import FAILED, OK
from cli.output import duration, emit, table, when

COLUMNS = [
    ("name", "run"),
    ("kind", "kind"),
    ("dataset", "dataset"),
    ("status", "status"),
    ("started", "started"),
    ("took", "took"),
    ("trigger", "trigger"),
]
STEP_COLUMNS = [("step", "step"), ("type", "type"), ("status", "status"), ("started", "started"), ("took", "took")]


def list_runs(ops: Ops, args: argparse.Namespace) -> int:
    stack = ops.stack
    dataset = stack.dataset(args.dataset).name if args.dataset else None
    kinds = ("training", "deployment") if args.deployments else ("training",)
    found = executions.recent(stack, kinds, limit=args.limit, dataset=dataset)
    rows = [{**run, "took": duration(run["seconds"])} for run in found]
    emit(ops.as_json, found, table(rows, COLUMNS))
    return OK


def show(ops: Ops, args: argparse.Namespace) -> int:
    stack = ops.stack
    sfn = stack.aws.client("stepfunctions")
    arn, kind = executions.resolve(stack, args.run)
    summary = executions.summarize(stack, sfn, arn, kind)
    found = executions.steps(executions.history(sfn, arn))
    failure = summary["cause"] or next((s["cause"] for s in reversed(found) if s["status"] == "failed"), None)
    data: dict[str, Any] = {**summary, "steps": found, "failure_reason": failure}
    lines = [
        f"run {summary['name']} ({kind}, dataset {summary['dataset'] or '-'}): {summary['status']}",
        f"started {when(summary['started'])}, took {duration(summary['seconds'])}, trigger {summary['trigger']}",
        "",
        table([{**s, "took": duration(s["seconds"])} for s in found], STEP_COLUMNS).rstrip("\n"),
    ]
    if summary["status"] != "SUCCEEDED" and summary["status"] != "RUNNING":
        lines += ["", f"failure ({summary['error'] or 'unknown error'}): {failure or 'no reason recorded'}"]
    emit(ops.as_json, data, "\n".join(lines) + "\n")
    return FAILED if summary["status"] in ("FAILED", "TIMED_OUT", "ABORTED") else OK


def add(commands: Any, common: argparse.ArgumentParser) -> None:
    runs = commands.add_parser("runs", parents=[common], help="pipeline runs; `runs show RUN` for one run's steps")
    runs.add_argument("--dataset", default=None)
    runs.add_argument("--deployments", action="store_true", help="include deployment executions")
    runs.add_argument("--limit", type=int, default=20)
    runs.set_defaults(operation=list_runs)
    sub = runs.add_subparsers(dest="runs_command")
    show_parser = sub.add_parser("show", parents=[common], help="one run: per-step timings, the failure reason")
    show_parser.add_argument("run", help="the execution name or ARN (training or deployment)")
    show_parser.set_defaults(operation=show)
