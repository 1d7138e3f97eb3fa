"""``mlops models [--dataset N]``: the registry with status, primary metric, dataset version and code version,
marking the champion (the next gate's reference) and the version serving."""

from __future__ import annotations

import argparse
from typing import Any

from cli import registry
from cli.context import Ops
from cli.errors import OK
from cli.output import emit, table

COLUMNS = [
    ("dataset", "dataset"),
    ("version", "version"),
    ("status", "status"),
    ("role", "role"),
    ("metric", "metric"),
    ("value", "value"),
    ("dataset_version", "dataset version"),
    ("code_version", "code"),
    ("created", "created"),
    ("note", "note"),
]


def rows_of(ops: Ops, dataset_name: str | None) -> list[dict[str, Any]]:
    sagemaker = ops.aws.client("sagemaker")
    rows = []
    for dataset in ops.stack.selected(dataset_name):
        found = registry.packages(sagemaker, dataset)
        best = registry.champion(found)
        live = registry.serving(sagemaker, dataset)
        for package in found:
            roles = []
            if best is not None and package.version == best.version:
                roles.append("champion")
            if live is not None and live["version"] == package.version:
                roles.append("serving")
            rows.append({"dataset": dataset.name, **package.row(), "role": ", ".join(roles) or None})
    return rows


def show(ops: Ops, args: argparse.Namespace) -> int:
    rows = rows_of(ops, args.dataset)
    text_rows = [{**row, "note": (row["note"] or "")[:60] or None} for row in rows]
    emit(ops.as_json, rows, table(text_rows, COLUMNS))
    return OK


def add(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("models", parents=[common], help="the model registry of each dataset")
    parser.add_argument("--dataset", default=None)
    parser.set_defaults(operation=show)
