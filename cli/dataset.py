"""``mlops dataset init`` and ``mlops dataset check``: declare a dataset from a sample, and test a file locally.

- ``mlops dataset init FILE --name N --target T [--task binary|multiclass|regression] [--key K] [--force]``
  reads a CSV or Parquet sample and writes a draft ``datasets/N.yaml``: each column's kind, a numeric range
  (the sample's, widened by a margin), the categories, nullability and the task from the target. Columns that
  would make poor features are left out and said so: an ID-like column (every value distinct; suggested as
  the key), a constant column, a date column and a categorical with hundreds of levels. Every line to review
  is commented. The draft is validated like the stack validates it at synth before it is written; an existing
  file is only replaced with ``--force``.
- ``mlops dataset check FILE --name N`` runs the ETL's own parsing and validation (``pipelines.etl.transforms``
  with the stage's quality gate) on a local file and prints the rejected rows by reason, the splits and the
  gate's verdict, before anything is uploaded. Exit status 0 when the gate passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

from pipelines.etl import transforms as tf
from pipelines.schema import DEFAULT_GATES, SCHEMA_KEYS, TASKS, Task
from stacks.datasets import DATASETS_DIR, SUFFIX, DeclarationError, check_against_stages, schema_from_yaml

MAX_LEVELS = 100
"""A text column with more distinct values than this is left out (one-hot encoding would be huge, and unseen
values frequent); it is not ID-like unless every value is distinct."""
MAX_CLASSES = 20
"""An integer target with at most this many distinct values is read as classes, above it as a quantity."""
RANGE_MARGIN = 0.1
"""A numeric range is the sample's, widened by this share of its span on each side."""
MIN_ROWS_FOR_ID = 20
"""A column counts as ID-like (every value distinct) only in a sample of at least this many rows."""
_ID_NAME = re.compile(r"(^|_)(id|key|uuid|guid)$|^(id|key|uuid|guid)(_|$)", re.IGNORECASE)
_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$|^\d{1,2}/\d{1,2}/\d{2,4}$"
)
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


class DatasetCommandError(Exception):
    """A command cannot do what it was asked; the message says why (printed, exit status 2)."""


# ---- reading a sample ------------------------------------------------------------------------------


def read_sample(path: Path) -> pd.DataFrame:
    """Every column of a CSV or Parquet file as text (missing values as None), like the ETL reads it."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DatasetCommandError(f"cannot read {path}: {error}") from None
    if tf.detect_format(path.name) == "parquet":
        try:
            table = pq.read_table(pa.BufferReader(raw))
        except (pa.ArrowException, OSError) as error:
            raise DatasetCommandError(f"{path} is not a readable Parquet file: {error}") from None
        columns = {name: _text(table.column(name)) for name in table.column_names}
        return pd.DataFrame(columns)
    header = _csv_header(raw, path)
    try:
        table = pacsv.read_csv(
            io.BytesIO(raw),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                null_values=list(tf.NULL_VALUES),
                strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as error:
        raise DatasetCommandError(f"{path} cannot be parsed as CSV: {error}") from None
    return pd.DataFrame({name: tf.to_str_series(table.column(name)).astype(object) for name in header})


def _csv_header(raw: bytes, path: Path) -> list[str]:
    text = raw.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")
    header = next(csv.reader([text]), [])
    if not header or not any(name.strip() for name in header):
        raise DatasetCommandError(f"{path} has no header row")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise DatasetCommandError(f"{path}: columns appear more than once: {duplicates}")
    return header


def _text(column: pa.ChunkedArray) -> pd.Series:
    if pa.types.is_floating(column.type):
        column = pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
    text = column if pa.types.is_string(column.type) else pc.cast(column, pa.string())
    return tf.to_str_series(text).astype(object)


# ---- inferring a declaration -----------------------------------------------------------------------


@dataclass
class Draft:
    """A declaration being drafted: its data (``DatasetSchema.from_dict`` shape), the review comment of each
    feature, the columns left out with the reason, and what the command tells the user."""

    data: dict[str, Any]
    feature_notes: dict[str, str] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    rows: int = 0


def _numbers(column: pd.Series) -> np.ndarray | None:
    """float64 values of a text column whose every present value is a finite number; None otherwise."""
    values, bad = tf._to_float(column)
    return None if bad.any() or np.isnan(values).all() else values


def _nice(value: float, direction: str) -> float:
    """``value`` rounded outwards (``down`` or ``up``) to three significant digits."""
    if value == 0:
        return 0.0
    step = 10 ** (math.floor(math.log10(abs(value))) - 2)
    rounded = (math.floor if direction == "down" else math.ceil)(value / step) * step
    return float(round(rounded, 10))


def numeric_range(values: np.ndarray) -> tuple[float, float]:
    """The sample's range widened by ``RANGE_MARGIN`` of its span (of the value when constant), rounded
    outwards; a non-negative column keeps 0 as its lower bound at most."""
    present = values[~np.isnan(values)]
    low, high = float(present.min()), float(present.max())
    margin = RANGE_MARGIN * ((high - low) or abs(high) or 1.0)
    minimum, maximum = _nice(low - margin, "down"), _nice(high + margin, "up")
    if low >= 0:
        minimum = max(minimum, 0.0)
    if np.all(present == np.round(present)):
        minimum, maximum = float(math.floor(minimum)), float(math.ceil(maximum))
    return minimum, maximum


def _id_like(name: str, column: pd.Series, rows: int) -> bool:
    present = column.dropna()
    if rows < MIN_ROWS_FOR_ID or len(present) != rows or present.nunique() != rows:
        return False
    values = _numbers(column)
    return values is None or bool(np.all(values == np.round(values))) or bool(_ID_NAME.search(name))


def _is_date(column: pd.Series) -> bool:
    present = column.dropna().astype(str)
    if present.empty:
        return False
    return float(present.str.match(_DATE).mean()) >= 0.9


def _canonical(target: pd.Series) -> pd.Series:
    """The present target values as labels: integers when every value is a whole number, else the text."""
    present = target.dropna()
    values = _numbers(present)
    if values is not None and np.all(values == np.round(values)):
        return pd.Series(values.astype(np.int64), index=present.index, dtype=object)
    return present


def infer_task(target: pd.Series, name: str) -> tuple[Task, list[Any], str]:
    """(task, labels, why) from the target's values: text with 2 values is binary, more is multiclass;
    integers with 2 values are binary, up to ``MAX_CLASSES`` multiclass, other numbers regression."""
    present = target.dropna()
    distinct = sorted(set(present))
    if len(distinct) < 2:
        raise DatasetCommandError(
            f"the target {name!r} has {len(distinct)} distinct value(s) in the sample: nothing to learn"
        )
    values = _numbers(target)
    if values is None:
        task: Task = "binary" if len(distinct) == 2 else "multiclass"
        return task, distinct, f"{len(distinct)} distinct text values"
    numbers = values[~np.isnan(values)]
    distinct_numbers = np.unique(numbers)
    integers = bool(np.all(distinct_numbers == np.round(distinct_numbers)))
    if integers and len(distinct_numbers) == 2:
        return "binary", [int(v) for v in distinct_numbers], "2 distinct integer values"
    if integers and len(distinct_numbers) <= MAX_CLASSES:
        why = f"{len(distinct_numbers)} distinct integer values (use --task regression if it is a quantity)"
        return "multiclass", [int(v) for v in distinct_numbers], why
    return "regression", [], f"numbers with {len(distinct_numbers)} distinct values"


def _labels_for(target: pd.Series, task: Task, name: str) -> list[Any]:
    if task == "regression":
        if _numbers(target) is None:
            raise DatasetCommandError(f"--task regression needs a numeric target; {name!r} holds text")
        return []
    if _numbers(target) is not None and _canonical(target).map(type).eq(str).any():
        raise DatasetCommandError(f"the target {name!r} holds fractional numbers: not class labels")
    labels = sorted(set(_canonical(target)))
    if task == "binary" and len(labels) != 2:
        raise DatasetCommandError(f"--task binary needs 2 target values; {name!r} has {len(labels)}: {labels[:10]}")
    if task == "multiclass" and len(labels) < 3:
        raise DatasetCommandError(f"--task multiclass needs at least 3 target values; {name!r} has {len(labels)}")
    return labels


def _describe(column: pd.Series, name: str, rows: int, draft: Draft) -> dict[str, Any] | None:
    """The feature declaration of a column, or None (with the reason in ``draft.left_out``)."""
    present = column.dropna()
    nulls = int(column.isna().sum())
    if present.empty:
        draft.left_out[name] = "every value is missing in the sample"
        return None
    if rows > 1 and present.nunique() == 1 and nulls == 0:
        draft.left_out[name] = f"constant: {present.iloc[0]!r} in every row, it carries no information"
        return None
    values = _numbers(column)
    feature: dict[str, Any] = {"name": name}
    nullable = f"; {nulls} missing" if nulls else ""
    if values is not None:
        minimum, maximum = numeric_range(values)
        low, high = np.nanmin(values), np.nanmax(values)
        feature.update(kind="numeric", minimum=minimum, maximum=maximum)
        draft.feature_notes[name] = f"REVIEW the range: sample {_number_text(low)}..{_number_text(high)}{nullable}"
    else:
        if _is_date(column):
            draft.left_out[name] = "a date: the model takes numbers and categories; derive numbers from it upstream"
            return None
        counts = present.value_counts()
        if len(counts) > MAX_LEVELS:
            draft.left_out[name] = (
                f"{len(counts)} distinct values (more than {MAX_LEVELS}): one-hot encoding them would be huge and "
                "new values frequent; group it upstream, or declare its frequent values by hand"
            )
            return None
        categories = sorted(counts.index, key=lambda c: (-int(counts[c]), str(c)))
        feature.update(kind="categorical", categories=[str(c) for c in categories])
        draft.feature_notes[name] = f"REVIEW: a value outside the categories is rejected{nullable}"
    if nulls:
        feature["nullable"] = True
    return feature


def _number_text(value: float) -> str:
    return str(int(value)) if value == round(value) and abs(value) < 1e15 else f"{value:.6g}"


def infer_declaration(
    frame: pd.DataFrame, name: str, target: str, task: Task | None = None, key: str | None = None
) -> Draft:
    """A draft declaration for the sample ``frame`` (every column as text)."""
    if target not in frame.columns:
        raise DatasetCommandError(f"the file has no column {target!r} (its columns: {', '.join(frame.columns)})")
    if key is not None and key not in frame.columns:
        raise DatasetCommandError(f"the file has no column {key!r} for --key (its columns: {', '.join(frame.columns)})")
    if key == target:
        raise DatasetCommandError(f"{key!r} cannot be both the key and the target")
    rows = len(frame)
    if rows == 0:
        raise DatasetCommandError("the file has a header but no rows: nothing to infer from")
    draft = Draft(data={"name": name}, rows=rows)
    if rows == 1:
        draft.notes.append("one row: ranges and categories come from a single value; widen them before use")
    if task is None:
        task, labels, why = infer_task(frame[target], target)
        draft.notes.append(f"task {task} inferred from the target {target!r}: {why}")
    else:
        labels = _labels_for(frame[target], task, target)
    missing_target = int(frame[target].isna().sum())
    if missing_target:
        draft.notes.append(f"{missing_target} row(s) have no {target!r}: the ETL rejects them (null:{target})")

    draft.data.update(task=task, target=target)
    candidates = [c for c in frame.columns if c not in (target, key) and _id_like(c, frame[c], rows)]
    candidates.sort(key=lambda c: (not _ID_NAME.search(c), list(frame.columns).index(c)))
    if key is None and candidates:
        key = candidates.pop(0)
        draft.notes.append(
            f"{key!r} looks like an ID (every value distinct): made it the key, not a feature; delete the "
            "key line if rows may repeat it (the ETL then derives a row id from each row's content)"
        )
    elif key is None:
        draft.notes.append("no key column: the ETL derives each row's id from its content (column row_id)")
    for other in candidates:
        draft.left_out[other] = "ID-like (every value distinct): it identifies rows, it does not describe them"
    if key is not None:
        draft.data["key"] = key
        draft.left_out[key] = "the key"
        nulls = int(frame[key].isna().sum())
        repeats = int(frame[key].dropna().duplicated().sum())
        if nulls or repeats:
            draft.notes.append(
                f"the key {key!r} has {nulls} missing and {repeats} repeated value(s): the ETL rejects those rows"
            )
    if task != "regression":
        draft.data["labels"] = labels
        if task == "binary" and set(labels) != {0, 1}:
            counts = _canonical(frame[target]).value_counts()
            minority = min(labels, key=lambda label: (int(counts.get(label, 0)), str(label)))
            draft.data["positive_label"] = minority
            draft.notes.append(f"positive_label {minority!r}: the less frequent label; REVIEW it")
    features = []
    for column in frame.columns:
        if column in (target, key) or column in draft.left_out:
            continue
        described = _describe(frame[column], column, rows, draft)
        if described is not None:
            features.append(described)
    if not features:
        raise DatasetCommandError("no column of the file can be a feature: " + _left_out_text(draft))
    draft.data["features"] = features
    draft.data["gate"] = _gate(frame[target], task)
    for column, reason in draft.left_out.items():
        if column != key:
            draft.notes.append(f"left out {column!r}: {reason}")
    return draft


def _left_out_text(draft: Draft) -> str:
    return "; ".join(f"{column}: {reason}" for column, reason in draft.left_out.items())


def _gate(target: pd.Series, task: Task) -> dict[str, Any]:
    gate = DEFAULT_GATES[task].to_dict()
    if task == "regression":
        values = _numbers(target)
        present = values[~np.isnan(values)] if values is not None else np.zeros(0)
        spread = float(np.std(present)) if len(present) > 1 else 0.0
        gate = {"metric": "rmse", "floor": _nice(spread, "up") if spread else 1.0, "min_improvement": 0.0}
    return gate


# ---- writing YAML ----------------------------------------------------------------------------------


def yaml_scalar(value: Any) -> str:
    """A YAML scalar that reads back as ``value``: plain when unambiguous, else JSON-quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number_text(float(value)) if isinstance(value, float) else str(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS and not re.match(r"^[0-9.+-]", text):
        return text
    return json.dumps(text, ensure_ascii=False)


def _flow(mapping: dict[str, Any]) -> str:
    parts = []
    for key, value in mapping.items():
        shown = "[" + ", ".join(yaml_scalar(v) for v in value) + "]" if isinstance(value, list) else yaml_scalar(value)
        parts.append(f"{key}: {shown}")
    return "{" + ", ".join(parts) + "}"


def render_yaml(draft: Draft, source: str) -> str:
    """The draft as a commented declaration file."""
    data = draft.data
    lines = [
        f"# Drafted by `mlops dataset init` from {source} ({draft.rows} row{'s' if draft.rows != 1 else ''}).",
        "# REVIEW every line marked REVIEW, then `mlops dataset check <file> --name "
        f"{data['name']}` before uploading to datasets/{data['name']}/.",
    ]
    for key in SCHEMA_KEYS:
        if key not in data:
            continue
        value = data[key]
        if key == "features":
            lines.append("features:")
            for feature in value:
                note = draft.feature_notes.get(feature["name"])
                lines.append(f"  - {_flow(feature)}" + (f"  # {note}" if note else ""))
        elif key == "gate":
            lines.append("# The challenger must reach the floor (for an error metric: stay at or below it) and beat")
            lines.append("# the champion by min_improvement. REVIEW the floor for your use.")
            lines.append("gate:")
            lines += [f"  {k}: {yaml_scalar(v)}" for k, v in value.items()]
        elif key == "labels":
            shown = ", ".join(yaml_scalar(v) for v in value)
            lines.append(f"labels: [{shown}]  # REVIEW: every class the target takes")
        elif key == "key":
            lines.append(f"key: {yaml_scalar(value)}  # REVIEW: unique per row; delete to derive row ids from content")
        else:
            lines.append(f"{key}: {yaml_scalar(value)}")
    if draft.left_out:
        lines.append("# Columns that are not features (the ETL ignores extra columns):")
        lines += [f"#   {column}: {reason}" for column, reason in draft.left_out.items()]
    return "\n".join(lines) + "\n"


# ---- the commands ----------------------------------------------------------------------------------


def init(
    file: Path, name: str, target: str, task: Task | None, key: str | None, force: bool, folder: Path
) -> tuple[Path, Draft]:
    """Draft, validate and write ``<folder>/<name>.yaml``; returns its path and the draft."""
    out = folder / f"{name}{SUFFIX}"
    if out.exists() and not force:
        raise DatasetCommandError(f"{out} already exists; pass --force to replace it")
    draft = infer_declaration(read_sample(file), name, target, task, key)
    text = render_yaml(draft, file.name)
    schema = schema_from_yaml(out, yaml.safe_load(text))
    for field_path, message in check_against_stages(schema):
        raise DeclarationError(out, field_path, message)
    folder.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out, draft


def check(file: Path, name: str, folder: Path, stage: str) -> tuple[bool, str]:
    """Run the ETL's rules on ``file`` for the declared dataset ``name``: (gate passed, the printed report)."""
    from stacks.config import load_config
    from stacks.datasets import load_declaration

    declaration = load_declaration(folder / f"{name}{SUFFIX}")
    schema = declaration.schema
    try:
        raw = file.read_bytes()
    except OSError as error:
        raise DatasetCommandError(f"cannot read {file}: {error}") from None
    gate = load_config(stage).quality
    try:
        result = tf.run_transform(raw, tf.detect_format(file.name), schema, gate, source={"file": str(file)})
    except tf.MalformedFileError as error:
        return False, f"{name}: {file} is rejected as a whole: {error.reason_code}: {error.message}\n"
    return result.gate_passed, format_check(name, file, result)


def format_check(name: str, file: Path, result: tf.TransformResult) -> str:
    report = result.report
    rows = report["rows"]
    share = 100 * report["rejected_share"]
    counts = f"{rows['valid']} valid, {rows['rejected']} rejected ({share:.2f}%)"
    lines = [f"{name}: {rows['input']} rows in {file}: {counts}"]
    if report["dropped_columns"]:
        lines.append(f"columns not in the declaration (ignored): {', '.join(report['dropped_columns'])}")
    if rows["rejected"]:
        lines.append("rejected rows by reason (line numbers count the header as line 1):")
        width = max(len(reason) for reason in report["rejects_by_reason"])
        rejected = result.rejected
        for reason, count in sorted(report["rejects_by_reason"].items(), key=lambda item: (-item[1], item[0])):
            numbers = rejected.loc[rejected[tf.REJECT_REASON] == reason, tf.SOURCE_LINE].head(5).tolist()
            more = ", ..." if count > len(numbers) else ""
            lines.append(f"  {reason:<{width}}  {count:>6}  lines {', '.join(map(str, numbers))}{more}")
    splits = report.get("splits") or {}
    if splits:
        lines.append("splits: " + ", ".join(f"{split} {stats['rows']}" for split, stats in splits.items()))
    gate = report["gate"]
    verdict = "passed" if gate["passed"] else "FAILED: " + "; ".join(gate["reasons"])
    lines.append(
        f"quality gate: {verdict} (max rejected share {gate['max_bad_row_share']}, min rows {gate['min_rows']})"
    )
    return "\n".join(lines) + "\n"


def _init_command(args: argparse.Namespace) -> int:
    try:
        path, draft = init(args.file, args.name, args.target, args.task, args.key, args.force, args.datasets)
    except (DatasetCommandError, DeclarationError) as error:
        print(f"mlops dataset init: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({len(draft.data['features'])} features, task {draft.data['task']})")
    for note in draft.notes:
        print(f"  - {note}")
    print(f"review it, then: mlops dataset check {args.file} --name {args.name}")
    return 0


def _check_command(args: argparse.Namespace) -> int:
    try:
        passed, text = check(args.file, args.name, args.datasets, args.stage)
    except (DatasetCommandError, DeclarationError) as error:
        print(f"mlops dataset check: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0 if passed else 1


def add_commands(commands: Any) -> None:
    """Add ``dataset init`` and ``dataset check`` to an ``argparse`` sub-parser collection (``mlops``'s)."""
    dataset = commands.add_parser("dataset", help="declare a dataset (init) and test a file against it (check)")
    sub = dataset.add_subparsers(dest="dataset_command", required=True)
    init_parser = sub.add_parser("init", help="draft datasets/<name>.yaml from a CSV or Parquet sample")
    init_parser.add_argument("file", type=Path)
    init_parser.add_argument("--name", required=True, help="the dataset name (lowercase words joined by '-')")
    init_parser.add_argument("--target", required=True, help="the column to predict")
    init_parser.add_argument("--task", choices=TASKS, default=None, help="default: inferred from the target")
    init_parser.add_argument("--key", default=None, help="the row key (default: an ID-like column, else none)")
    init_parser.add_argument("--force", action="store_true", help="replace an existing declaration")
    init_parser.add_argument("--datasets", type=Path, default=DATASETS_DIR, help="the declarations folder")
    init_parser.set_defaults(func=_init_command)
    check_parser = sub.add_parser("check", help="run the ETL's validation on a local file and print the rejects")
    check_parser.add_argument("file", type=Path)
    check_parser.add_argument("--name", required=True, help="the declared dataset")
    check_parser.add_argument("--stage", default="dev", help="whose quality gate applies (default %(default)s)")
    check_parser.add_argument("--datasets", type=Path, default=DATASETS_DIR, help="the declarations folder")
    check_parser.set_defaults(func=_check_command)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))
