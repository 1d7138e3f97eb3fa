"""The endpoint's answers per task, as the Lambdas read them (golden payloads, data capture, shadow pairs).

The inference handler's response contract (``pipelines/inference/inference.py``; docs/contracts.md,
"Inference responses"), one prediction per request row:

=========== ================================================================ ==============================
task        ``application/json`` (``{"model_version", "predictions": [...]}``) ``text/csv`` line
=========== ================================================================ ==============================
binary      ``{"probability": p, "label": <label>}``                           ``p,label``
multiclass  ``{"label": <label>, "probabilities": {<label>: p, ...}}``          ``label,p1,p2,...``
regression  ``{"value": v}``                                                   ``v``
=========== ================================================================ ==============================

A CSV answer carries no model version, and its labels are text: ``labels`` (the dataset's declared class
labels, when the caller knows them) types them back (``1`` for integer labels) and names a multiclass line's
probability columns (declared order). Standard library only: the ground-truth Lambda reads answers too and
loads neither numpy nor pydantic.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # types only: the deploy Lambda reads answers without loading the schema module at cold start
    from pipelines.schema import Label, Task

JSON = "application/json"
CSV = "text/csv"
FIELDS: dict[Task, tuple[str, ...]] = {
    "binary": ("probability", "label"),
    "multiclass": ("label", "probabilities"),
    "regression": ("value",),
}
"""The fields of a JSON answer per task (the keys are ``pipelines.schema.TASKS``; a test keeps them equal)."""


@dataclass(frozen=True)
class Answer:
    """One row of an answer; the fields of its task are set, the others are None."""

    label: Label | None = None  # classification: the predicted label
    probability: float | None = None  # binary: the positive label's probability
    probabilities: Mapping[str, float] | None = None  # multiclass: per class (keys: str(label)), declared order
    value: float | None = None  # regression: the predicted value


@dataclass(frozen=True)
class Answers:
    """A decoded response: its rows, and the model version the JSON body names (None for CSV)."""

    model_version: str | None
    rows: list[Answer]


def check_task(task: str) -> Task:
    if task not in FIELDS:
        raise ValueError(f"unknown task {task!r} (one of {', '.join(FIELDS)})")
    return task  # type: ignore[return-value]


def number(value: Any, what: str) -> float:
    """A finite number (not a boolean); ``ValueError`` naming ``what`` otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected a number, got {json.dumps(value)}")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected a number, got {value!r}") from None
    if not math.isfinite(result):
        raise ValueError(f"{what}: expected a finite number, got {value!r}")
    return result


def typed_label(value: Any, labels: Sequence[Label]) -> Label:
    """A label as the dataset declares it: an int when the declared labels are ints (``"1"``, ``1.0`` -> 1),
    text when they are strings; as given when the labels are unknown (empty ``labels``)."""
    if isinstance(value, bool):
        raise ValueError(f"label {json.dumps(value)} is a boolean, not a label")
    if labels and all(isinstance(label, int) for label in labels):
        value_number = number(value, "label")
        if not value_number.is_integer():
            raise ValueError(f"label {value!r} is not an integer")
        return int(value_number)
    if labels:
        return str(value).strip()
    if isinstance(value, int | str):
        return value
    raise ValueError(f"label {value!r}: expected an integer or a string")


def _json_row(item: Any, task: Task, row: int, labels: Sequence[Label]) -> Answer:
    if not isinstance(item, Mapping):
        raise ValueError(f"row {row}: expected an object, got {json.dumps(item)[:80]}")
    missing = [k for k in FIELDS[task] if k not in item]
    if missing:
        shown = json.dumps(item)[:120]
        raise ValueError(f"row {row}: a {task} answer has {', '.join(FIELDS[task])}; {shown} lacks {missing[0]}")
    if task == "regression":
        return Answer(value=number(item["value"], f"row {row}: value"))
    label = typed_label(item["label"], labels)
    if task == "binary":
        return Answer(label=label, probability=number(item["probability"], f"row {row}: probability"))
    probabilities = item["probabilities"]
    if not isinstance(probabilities, Mapping) or not probabilities:
        raise ValueError(f"row {row}: probabilities must be an object of class -> probability")
    return Answer(
        label=label,
        probabilities={str(k): number(v, f"row {row}: probability of {k!r}") for k, v in probabilities.items()},
    )


def json_answers(payload: Any, task: str, labels: Sequence[Label] = ()) -> Answers:
    """The rows of a JSON response ``{"model_version", "predictions": [...]}``; ``ValueError`` names the row."""
    kind = check_task(task)
    if not isinstance(payload, Mapping) or not isinstance(payload.get("predictions"), list):
        raise ValueError('not a prediction response: expected {"model_version", "predictions": [...]}')
    version = payload.get("model_version")
    rows = [_json_row(item, kind, row, labels) for row, item in enumerate(payload["predictions"], start=1)]
    return Answers(model_version=None if version is None else str(version), rows=rows)


def csv_answers(text: str, task: str, labels: Sequence[Label] = ()) -> Answers:
    """The rows of a ``text/csv`` response (one line per request row, see the module docstring)."""
    kind = check_task(task)
    rows: list[Answer] = []
    for row, fields in enumerate((r for r in csv.reader(io.StringIO(text)) if r), start=1):
        if kind == "regression":
            if len(fields) != 1:
                raise ValueError(f"row {row}: a regression answer is one value, got {len(fields)} fields")
            rows.append(Answer(value=number(fields[0], f"row {row}: value")))
        elif kind == "binary":
            if len(fields) != 2:
                raise ValueError(f"row {row}: a binary answer is probability,label; got {len(fields)} fields")
            probability = number(fields[0], f"row {row}: probability")
            rows.append(Answer(label=typed_label(fields[1], labels), probability=probability))
        else:
            values = [number(v, f"row {row}: probability {i}") for i, v in enumerate(fields[1:], start=1)]
            if len(values) < 3 or (labels and len(values) != len(labels)):
                wanted = len(labels) if labels else "3 or more"
                raise ValueError(
                    f"row {row}: a multiclass answer is label,p1,...: {wanted} probabilities, got {len(values)}"
                )
            names = [str(label) for label in labels] if labels else [str(i) for i in range(len(values))]
            rows.append(
                Answer(label=typed_label(fields[0], labels), probabilities=dict(zip(names, values, strict=True)))
            )
    return Answers(model_version=None, rows=rows)


def decode_answers(body: str, content_type: str | None, task: str, labels: Sequence[Label] = ()) -> Answers:
    """A response body as answers: ``text/csv`` by its content type, anything else (or a body that starts with
    ``{``) as JSON. ``ValueError`` (``json.JSONDecodeError`` is one) for a body of another shape."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media == CSV and not body.lstrip().startswith("{"):
        return csv_answers(body, task, labels)
    return json_answers(json.loads(body), task, labels)
