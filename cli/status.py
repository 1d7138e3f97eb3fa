"""``mlops status [--dataset N]``: per dataset, the last pipeline run and its step, the champion and its metric,
the endpoint's variants (traffic and instances), a running A/B experiment (its last look), the alarms in ALARM and
the last drift verdict."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cli import executions, registry
from cli.context import Ops
from cli.errors import OK
from cli.output import cell, emit, table, when
from cli.session import error_code
from cli.stack import Dataset, Stack

DRIFT_PREFIX = "monitoring/drift/"  # stacks/constructs/monitoring.py DRIFT_REPORT_PREFIX
CHALLENGER_VARIANT = "Challenger"  # lambdas/experiment/models.py: the challenger's variant during an experiment
VARIANT_COLUMNS = [("variant", "variant"), ("model", "model"), ("weight", "traffic weight"), ("instances", "instances")]


def alarms_in_alarm(ops: Ops, stack: Stack) -> list[dict[str, Any]]:
    cloudwatch = ops.aws.client("cloudwatch")
    paginator = cloudwatch.get_paginator("describe_alarms")
    pages = paginator.paginate(AlarmNamePrefix=f"{stack.name}-", StateValue="ALARM")
    return [
        {"name": a["AlarmName"], "reason": a.get("StateReason"), "since": a.get("StateUpdatedTimestamp")}
        for page in pages
        for a in page.get("MetricAlarms", [])
        if a.get("StateValue") == "ALARM"  # moto 5.2.5 ignores StateValue next to AlarmNamePrefix
    ]


def _alarms_of(stack: Stack, dataset: Dataset, alarms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(stack.datasets) == 1:
        return alarms
    return [a for a in alarms if a["name"].startswith(f"{stack.name}-{dataset.name}-")]


def last_drift(ops: Ops, stack: Stack, dataset: Dataset) -> dict[str, Any] | None:
    """The newest drift report of the dataset (its verdict, reason and overall PSI)."""
    bucket = stack.outputs.get("ArtifactsBucket")
    if not bucket:
        return None
    s3 = ops.aws.client("s3")
    paginator = s3.get_paginator("list_objects_v2")
    keys = [
        o["Key"]
        for page in paginator.paginate(Bucket=bucket, Prefix=DRIFT_PREFIX)
        for o in page.get("Contents", [])
        if o["Key"].endswith("/report.json")
    ]
    if len(stack.datasets) > 1:
        keys = [k for k in keys if f"/{dataset.name}/" in k]
    if not keys:
        return None
    key = max(keys, key=lambda k: k.rsplit("/", 2)[-2])  # folders are the window end, YYYY-MM-DDTHH-MM
    report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return {
        "verdict": report.get("verdict"),
        "reason": report.get("reason"),
        "overall_psi": report.get("overall_psi"),
        "report": f"s3://{bucket}/{key}",
    }


def experiment(ops: Ops, stack: Stack, dataset: Dataset, endpoint: dict[str, Any] | None) -> dict[str, Any] | None:
    """The A/B experiment the endpoint runs (a ``Challenger`` variant): its record's design and last look
    (``monitoring/experiments/<dataset>/<config>/experiment.json``); None when it runs none."""
    bucket = stack.outputs.get("ArtifactsBucket")
    if endpoint is None or not bucket or all(v["variant"] != CHALLENGER_VARIANT for v in endpoint["variants"]):
        return None
    prefix = f"monitoring/experiments/{dataset.name}/{endpoint['config']}/"
    try:
        body = ops.aws.client("s3").get_object(Bucket=bucket, Key=f"{prefix}experiment.json")["Body"].read()
    except Exception as error:
        if error_code(error) in ("NoSuchKey", "404"):
            return {"config": endpoint["config"], "record": None, "reason": f"no record at s3://{bucket}/{prefix}"}
        raise
    record = json.loads(body)
    looks = record.get("looks") or []
    last = (record.get("final") or (looks[-1] if looks else None) or {}).get("decision")
    design = record.get("design") or {}
    return {
        "config": endpoint["config"],
        "started": record.get("started_at"),
        "challenger": (record.get("challenger") or {}).get("model_version"),
        "champion": (record.get("champion") or {}).get("model_name"),
        "share": design.get("challenger_share"),
        "outcome": record.get("outcome"),
        "minimum_detectable_effect": design.get("minimum_detectable_effect"),
        "max_duration_hours": design.get("max_duration_hours"),
        "looks": len(looks),
        "last": last,
        "report": f"s3://{bucket}/{prefix}report.html",
    }


def dataset_status(ops: Ops, stack: Stack, dataset: Dataset, alarms: list[dict[str, Any]]) -> dict[str, Any]:
    sagemaker = ops.aws.client("sagemaker")
    runs = executions.recent(stack, ("training",), limit=1, dataset=dataset.name)
    last_run = runs[0] if runs else None
    if last_run is not None and last_run["status"] == "RUNNING":
        last_run["step"] = executions.current_step(ops.aws.client("stepfunctions"), last_run["arn"])
    best = registry.champion(registry.packages(sagemaker, dataset))
    endpoint = registry.serving(sagemaker, dataset)
    return {
        "dataset": dataset.name,
        "last_run": last_run,
        "champion": best.row() if best else None,
        "endpoint": endpoint,
        "experiment": experiment(ops, stack, dataset, endpoint),
        "alarms": _alarms_of(stack, dataset, alarms),
        "drift": last_drift(ops, stack, dataset),
    }


def render(status: dict[str, Any]) -> str:
    lines = [f"== {status['dataset']} =="]
    run = status["last_run"]
    if run is None:
        lines.append("last run:   none (upload a file to the dataset's raw prefix)")
    else:
        step = f" at {run['step']}" if run.get("step") else ""
        lines.append(
            f"last run:   {run['name']} {run['status']}{step} (started {when(run['started'])}, {run['trigger']})"
        )
    best = status["champion"]
    if best is None:
        lines.append("champion:   none (no Approved version)")
    else:
        metric = f"{best['metric']} {cell(best['value'])}" if best["metric"] else "no metric recorded"
        lines.append(
            f"champion:   v{best['version']} {best['model_version']} ({metric}, data {best['dataset_version']})"
        )
    endpoint = status["endpoint"]
    if endpoint is None:
        lines.append("endpoint:   not deployed yet")
    else:
        lines.append(f"endpoint:   {endpoint['endpoint']} {endpoint['status']} on {endpoint['config']}")
        lines += ["  " + line for line in table(endpoint["variants"], VARIANT_COLUMNS).splitlines()]
    lines += _experiment_lines(status.get("experiment"))
    alarms = status["alarms"]
    lines.append("alarms:     " + (", ".join(a["name"] for a in alarms) + " in ALARM" if alarms else "none in ALARM"))
    drift = status["drift"]
    if drift is None:
        lines.append("drift:      no report yet")
    else:
        lines.append(f"drift:      {drift['verdict']} (overall PSI {cell(drift['overall_psi'])}): {drift['reason']}")
    return "\n".join(lines) + "\n"


def _percent(share: Any) -> str:
    return f"{share:.0%}" if isinstance(share, int | float) else cell(share)


def _experiment_lines(found: dict[str, Any] | None) -> list[str]:
    if found is None:
        return []
    if found.get("record") is None and "reason" in found:
        return [f"experiment: running on {found['config']}, {found['reason']}"]
    lines = [
        f"experiment: {found['challenger']} takes {_percent(found['share'])} of requests since {found['started']} "
        f"({found['outcome']}, MDE {cell(found['minimum_detectable_effect'])}, at most {found['max_duration_hours']} h)"
    ]
    last = found["last"]
    if last is None:
        lines.append("  no look yet")
    else:
        low, high = last["interval"]
        lines.append(
            f"  look {found['looks']}: {last['verdict']}: n {last['n_champion']} champion / {last['n_challenger']} "
            f"challenger, improvement {cell(last['improvement'])} [{cell(low)}, {cell(high)}]: {last['reason']}"
        )
    lines.append(f"  report: {found['report']}")
    return lines


def show(ops: Ops, args: argparse.Namespace) -> int:
    stack = ops.stack
    alarms = alarms_in_alarm(ops, stack)
    found = [dataset_status(ops, stack, dataset, alarms) for dataset in stack.selected(args.dataset)]
    emit(ops.as_json, {"stack": stack.name, "datasets": found}, "\n".join(render(s) for s in found))
    return OK


def add(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "status", parents=[common], help="runs, champion, endpoint, alarms and drift per dataset"
    )
    parser.add_argument("--dataset", default=None)
    parser.set_defaults(operation=show)
