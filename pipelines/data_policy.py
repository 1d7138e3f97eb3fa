"""What a retrain trains and tests on: a dataset's ``DataPolicy`` applied to what is there (issue 17).

Pure: no AWS. The inputs are the latest upload's split row counts (its lineage record) and the labelled production
rows of the dataset (``lambdas/ground_truth/production.py`` writes them; here only their key, inference time,
label time and label). ``plan`` decides, and records why; ``select`` picks the rows a plan names, so the step that
composes the training channels takes exactly the rows the plan counted.

Rules, in order:

* No ``data_policy`` declared: the latest upload only (today's behaviour).
* Production rows count once per key (``<id>:<request row>``): a row labelled again keeps its latest label
  (``deduplicate``). Only rows labelled by the decision time count, so the plan can be replayed.
* The window is the ``production_window_days`` days up to the decision time, by inference time.
* Fewer than ``min_labelled_rows`` rows in the window: the upload only, with that reason. A declared class
  missing from the window (classification): the upload only, with that reason (a challenger trained on a window
  without a class would be judged on data it never saw).
* The test set: the most recent ``test_from_production_rows`` rows of the window, when the window holds that
  many beyond ``min_labelled_rows`` and they contain every declared class; otherwise the upload's test split
  (with the reason). The rest of the window trains.
* Cap: production rows make up at most ``max_production_share`` of the training rows (upload train + production
  train); the most recent rows are kept.
* The validation split stays the upload's (early stopping and tuning keep a fixed reference).

Order: rows sort by (inference time, key), newest first; the test set is the head, the training rows the next
ones. The same rows and the same plan always give the same selection.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pipelines.schema import DataPolicy, DatasetSchema, Label

UPLOAD_ONLY = "upload_only"
WITH_PRODUCTION = "with_production"


@dataclass(frozen=True)
class ProductionRow:
    """One labelled production row as the policy sees it."""

    key: str  # <labelled id>:<request row>
    inference_time: datetime
    labelled_at: datetime
    label: Label | float


@dataclass(frozen=True)
class UploadSplits:
    """The latest upload's dataset version (its lineage record): version and rows per split."""

    version: str
    train: int
    validation: int
    test: int

    @classmethod
    def from_lineage(cls, lineage: dict[str, Any]) -> UploadSplits:
        splits = lineage.get("splits") or {}
        return cls(
            version=str(lineage.get("version")),
            train=int(splits.get("train", 0)),
            validation=int(splits.get("validation", 0)),
            test=int(splits.get("test", 0)),
        )


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def deduplicate(rows: Iterable[ProductionRow]) -> tuple[list[ProductionRow], int]:
    """One row per key, the latest label winning (ties: the larger label text, so the result never depends on
    the order of the input); (rows, duplicates dropped)."""
    best: dict[str, ProductionRow] = {}
    total = 0
    for row in rows:
        total += 1
        kept = best.get(row.key)
        if kept is None or (row.labelled_at, str(row.label)) > (kept.labelled_at, str(kept.label)):
            best[row.key] = row
    return list(best.values()), total - len(best)


def newest_first(rows: Iterable[ProductionRow]) -> list[ProductionRow]:
    return sorted(rows, key=lambda r: (r.inference_time, r.key), reverse=True)


def window_rows(rows: Iterable[ProductionRow], start: datetime, decided_at: datetime) -> list[ProductionRow]:
    """Rows inferred in [start, decided_at] and labelled by ``decided_at``, deduplicated, newest first."""
    unique, _ = deduplicate(r for r in rows if r.labelled_at <= decided_at)
    return newest_first(r for r in unique if start <= r.inference_time <= decided_at)


def _missing_classes(rows: Sequence[ProductionRow], schema: DatasetSchema) -> list[Label]:
    if schema.task == "regression":
        return []
    present = {str(r.label) for r in rows}
    return [label for label in schema.class_labels if str(label) not in present]


def production_cap(policy: DataPolicy, upload_train: int) -> int | None:
    """The most production rows that keep their share of the training rows within ``max_production_share``
    (None: no cap)."""
    share = policy.max_production_share
    if share >= 1.0:
        return None
    return math.floor(share * upload_train / (1.0 - share) + 1e-9)


def plan(
    schema: DatasetSchema,
    upload: UploadSplits,
    production: Iterable[ProductionRow],
    decided_at: datetime,
) -> dict[str, Any]:
    """The data plan of a retrain decided at ``decided_at`` (JSON-ready; the training execution's input carries it
    and lineage records it)."""
    policy = schema.data_policy
    upload_part = {"version": upload.version, "train_rows": upload.train, "validation_rows": upload.validation}
    if policy is None:
        return {
            "mode": UPLOAD_ONLY,
            "reason": "no data_policy declared: the latest upload only",
            "decided_at": _iso(decided_at),
            "policy": None,
            "upload": {**upload_part, "test_rows": upload.test},
            "test_from": "upload",
            "production": None,
        }
    every = list(production)
    start = decided_at - timedelta(days=policy.production_window_days)
    _, duplicates = deduplicate(r for r in every if r.labelled_at <= decided_at)
    rows = window_rows(every, start, decided_at)
    window = {
        "start": _iso(start),
        "end": _iso(decided_at),
        "days": policy.production_window_days,
        "rows_available": len(rows),
        "duplicates_dropped": duplicates,
    }
    base = {"decided_at": _iso(decided_at), "policy": policy.to_dict()}

    def upload_only(reason: str) -> dict[str, Any]:
        return {
            **base,
            "mode": UPLOAD_ONLY,
            "reason": reason,
            "upload": {**upload_part, "test_rows": upload.test},
            "test_from": "upload",
            "production": {**window, "train_rows": 0, "test_rows": 0},
        }

    if len(rows) < policy.min_labelled_rows:
        return upload_only(
            f"{len(rows)} labelled production rows in the last {policy.production_window_days} days "
            f"< min_labelled_rows {policy.min_labelled_rows}: the latest upload only"
        )
    missing = _missing_classes(rows, schema)
    if missing:
        return upload_only(
            f"class {', '.join(map(str, missing))} missing from the labelled window "
            f"({len(rows)} rows, last {policy.production_window_days} days): the latest upload only"
        )
    test_rows = 0
    test_reason = (
        f"{len(rows)} labelled rows < min_labelled_rows {policy.min_labelled_rows} + test_from_production_rows "
        f"{policy.test_from_production_rows}: the upload's test split"
    )
    if len(rows) >= policy.min_labelled_rows + policy.test_from_production_rows:
        head = rows[: policy.test_from_production_rows]
        absent = _missing_classes(head, schema)
        if absent:
            test_reason = (
                f"class {', '.join(map(str, absent))} missing from the {len(head)} most recent labelled rows: "
                "the upload's test split"
            )
        else:
            test_rows = len(head)
            test_reason = f"the {test_rows} most recent labelled production rows"
    candidates = len(rows) - test_rows
    cap = production_cap(policy, upload.train)
    train_rows = candidates if cap is None else min(candidates, cap)
    capped = candidates - train_rows
    return {
        **base,
        "mode": WITH_PRODUCTION,
        "reason": (
            f"{train_rows} labelled production rows of the last {policy.production_window_days} days train"
            + (
                f" ({capped} older ones over the max_production_share {policy.max_production_share} cap)"
                if capped
                else ""
            )
            + f"; test set: {test_reason}"
        ),
        "upload": {**upload_part, "test_rows": 0 if test_rows else upload.test},
        "test_from": "production" if test_rows else "upload",
        "production": {**window, "train_rows": train_rows, "test_rows": test_rows, "capped_rows": capped},
    }


def select(data_plan: dict[str, Any], production: Iterable[ProductionRow]) -> dict[str, list[ProductionRow]]:
    """The production rows a plan names: ``{"train": [...], "test": [...]}`` (newest first)."""
    part = data_plan.get("production") or {}
    if data_plan.get("mode") != WITH_PRODUCTION or not part:
        return {"train": [], "test": []}
    start, end = (datetime.fromisoformat(part[k].replace("Z", "+00:00")) for k in ("start", "end"))
    rows = window_rows(production, start, end)
    test, train = int(part["test_rows"]), int(part["train_rows"])
    if len(rows) < test + train:
        raise ValueError(
            f"the plan names {test} test + {train} training rows but {len(rows)} are there: production data was "
            "removed after the plan was made"
        )
    return {"test": rows[:test], "train": rows[test : test + train]}
