"""``mlops data erase --dataset N (--key K | --inference-id I) [--dry-run]``: erase one record from the dataset's
captured requests, joined labels, labelled production rows and retrains' composed copies of them, with the versions
that held it (``cli.erasure``).
A retrain started afterwards plans and trains without it (its data plan reads the production rows as they are then).

The operator's credentials need, on the artifacts and curated zones: ``s3:ListBucket``, ``s3:ListBucketVersions``,
``s3:GetObject``, ``s3:PutObject``, ``s3:DeleteObject``, ``s3:DeleteObjectVersion``, and ``kms:Decrypt`` /
``kms:GenerateDataKey`` on the data key."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from cli import erasure
from cli.context import Ops
from cli.errors import BAD_INPUT, OK, CliError
from cli.output import emit
from pipelines.platform import (
    COMPOSED_PREFIX,
    DATA_CAPTURE_PREFIX,
    MONITORING_PREFIX,
    production_prefix,
    production_quarantine_prefix,
)


def where(ops: Ops, name: str, endpoint: str) -> erasure.Where:
    return erasure.Where(
        artifacts_bucket=ops.stack.output("ArtifactsBucket"),
        curated_bucket=ops.stack.output("CuratedBucket"),
        capture_prefix=f"{DATA_CAPTURE_PREFIX}{endpoint}/",
        quality_prefix=f"{MONITORING_PREFIX}quality/{name}/",
        production_prefix=production_prefix(name),
        composed_prefix=f"{COMPOSED_PREFIX}{name}/",
        quarantine_prefix=production_quarantine_prefix(name),
    )


def erase(ops: Ops, args: argparse.Namespace) -> int:
    dataset = ops.stack.dataset(args.dataset)
    try:
        record = erasure.Record.of(key=args.key, inference_id=args.inference_id)
    except ValueError as error:
        raise CliError(str(error), BAD_INPUT) from None
    places = where(ops, dataset.name, dataset.endpoint)
    result = erasure.erase(ops.aws.client("s3"), places, record, dry_run=args.dry_run)
    summary: dict[str, Any] = {
        "dataset": dataset.name,
        "ids": sorted(record.ids),
        "row": record.row,
        "dry_run": bool(args.dry_run),
        "objects_scanned": result.scanned,
        "removed": {
            "captured_requests": result.removed(places.capture_prefix),
            "joined_labels": result.removed(places.quality_prefix),
            "production_rows": result.removed(places.production_prefix),
            "composed_rows": result.removed(places.composed_prefix),
            "quarantined_rows": result.removed(places.quarantine_prefix),
        },
        "objects": [asdict(place) for place in result.places],
    }
    verb = "would erase" if args.dry_run else "erased"
    lines = [
        f"{dataset.name}: {verb} {summary['removed']['captured_requests']} captured request(s), "
        f"{summary['removed']['joined_labels']} joined label line(s), {summary['removed']['production_rows']} "
        f"production row(s), {summary['removed']['composed_rows']} composed training row(s), "
        f"{summary['removed']['quarantined_rows']} quarantined production row(s) of "
        f"{', '.join(summary['ids'])} ({result.scanned} objects scanned)",
        *(
            f"  {p.action} s3://{p.bucket}/{p.key} (-{p.removed}; {p.versions_deleted} other versions deleted)"
            for p in result.places
        ),
    ]
    emit(ops.as_json, summary, "\n".join(lines) + "\n")
    return OK


def add(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("data", help="a dataset's production data")
    actions = parser.add_subparsers(dest="data_command", required=True)
    erase_parser = actions.add_parser(
        "erase",
        parents=[common],
        help="erase a record from the captured requests, joined labels and production rows (and their versions)",
    )
    erase_parser.add_argument("--dataset", default=None)
    named = erase_parser.add_mutually_exclusive_group(required=True)
    named.add_argument("--key", default=None, help="a production row key: <inference id>:<request row>")
    named.add_argument("--inference-id", default=None, help="the request's inferenceId or eventId")
    erase_parser.add_argument("--dry-run", action="store_true", help="say what would be erased, change nothing")
    erase_parser.set_defaults(operation=erase)
