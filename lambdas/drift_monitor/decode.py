"""Captured requests -> one numpy array per schema feature (the drift monitor's input).

Request bodies follow the inference handler's formats (``pipelines/inference/inference.py``): ``text/csv`` rows
in schema order with or without a header line (with a header, columns in any order), ``application/json``
``{"instances": [[...]]}`` / ``[[...]]`` / ``{"instances": [{...}]}`` / ``[{...}]``; BASE64 bodies are decoded
by ``capture.parse_record``. The columns are those of the handler's ``request_columns`` (numbers parsed as
``float``, categorical text stripped), but decoded leniently: an empty, missing or unparseable value is a
missing value (NaN / None) rather than an error, a short CSV row is padded with missing values, a CSV row with
too many fields is dropped and counted, and a body that cannot be decoded at all is counted with its reason.
numpy and the standard library only (``csv``, ``json``): no pandas, so the import stays cheap at cold start.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lambdas.drift_monitor.capture import CaptureRecord
from pipelines.schema import DatasetSchema


class ParserError(ValueError):
    """A CSV body with a header and a row wider than that header (the whole body is rejected)."""


@dataclass
class FeatureColumns:
    """Decoded request rows: one array per schema feature, in schema order.

    Numeric features are float64 (missing or unparseable -> NaN), categorical ones object arrays of stripped
    text (missing or blank -> None), as the inference handler's ``request_columns`` gives them.
    """

    columns: dict[str, np.ndarray]
    rows: int
    bad_records: int = 0
    bad_reasons: Counter[str] = field(default_factory=Counter)


def _is_header(line: str, names: set[str]) -> bool:
    fields = [f.strip().strip('"') for f in line.split(",")]
    return bool(fields) and all(f in names for f in fields)


def _split_csv(lines: list[str]) -> list[list[str]]:
    """CSV lines as fields: the ``csv`` module only when a quote is present (as the inference handler)."""
    if any('"' in line for line in lines):
        return list(csv.reader(lines))
    return [line.split(",") for line in lines]


def _header_rows(lines: list[str], names: list[str]) -> list[list[Any]]:
    """The rows of a CSV body whose first line is a header, in schema order; absent columns are missing."""
    rows = _split_csv(lines)
    header = [name.strip().strip('"') for name in rows[0]]
    width = len(header)
    for number, row in enumerate(rows[1:], start=2):
        if len(row) > width:
            raise ParserError(f"CSV line {number} has {len(row)} fields, its header {width}")
    position: dict[str, int] = {}
    for index, name in enumerate(header):
        position.setdefault(name, index)  # a duplicated column: its first occurrence
    order = [position.get(name) for name in names]
    return [[row[i] if i is not None and i < len(row) else None for i in order] for row in rows[1:]]


def _headerless_columns(lines: list[str], width: int) -> tuple[list[list[Any]], int]:
    """Columns in schema order; a short row is padded with missing values, a too-wide one is dropped (counted).

    When every line has exactly ``width`` fields and no quote, all lines are split in one ``str.split`` and each
    column is a slice of that: the common case costs about what a C CSV parser does.
    """
    if not any('"' in line for line in lines) and all(line.count(",") == width - 1 for line in lines):
        fields = ",".join(lines).split(",")
        return [fields[i::width] for i in range(width)], 0
    rows: list[list[Any]] = []
    too_wide = 0
    for row in _split_csv(lines):
        if len(row) == width:
            rows.append(row)
        elif len(row) < width:
            rows.append([*row, *([None] * (width - len(row)))])
        else:
            too_wide += 1
    return _transpose(rows, width), too_wide


def _concat(parts: list[list[Any]]) -> list[Any]:
    filled = [part for part in parts if part]
    return filled[0] if len(filled) == 1 else [value for part in filled for value in part]


def _transpose(rows: list[list[Any]], width: int) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def _json_rows(body: str, names: list[str]) -> list[list[Any]]:
    doc = json.loads(body)
    instances = doc.get("instances") if isinstance(doc, dict) else doc
    if not isinstance(instances, list):
        raise ValueError("JSON body has no instances list")
    rows: list[list[Any]] = []
    for item in instances:
        if isinstance(item, dict):
            rows.append([item.get(n) for n in names])
        elif isinstance(item, list) and len(item) == len(names):
            rows.append(item)
        else:
            raise ValueError(f"JSON instance is neither a record nor a row of {len(names)} values")
    return rows


def _number(value: Any) -> float:
    """A CSV field or JSON value as a float: NaN when missing or not a number (booleans count as 0 / 1)."""
    if isinstance(value, bool | int | float):
        return float(value)
    if isinstance(value, str) and value.strip():
        try:
            return float(value)
        except ValueError:
            return math.nan
    return math.nan


def _numeric_column(values: list[Any]) -> np.ndarray:
    """float64 values. numpy parses the common cases in one call (numbers, numeric text and None, then the same
    with empty fields as None); anything else goes value by value."""
    for candidate in (values, [None if value == "" else value for value in values]):
        try:
            column = np.array(candidate, dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            continue
        if column.shape == (len(values),):
            return column
    parsed = np.empty(len(values), dtype=np.float64)
    for index, value in enumerate(values):
        try:
            parsed[index] = _number(value)
        except OverflowError:
            parsed[index] = math.nan
    return parsed


def _category(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value).strip() or None


def _categorical_column(values: list[Any]) -> np.ndarray:
    """Stripped text (blank -> None); numbers become their text (an unknown category, as at inference)."""
    try:
        texts = [value.strip() or None for value in values]  # all text: the common case
    except AttributeError:
        texts = [_category(value) for value in values]
    column = np.empty(len(values), dtype=object)
    column[:] = texts
    return column


def request_columns(records: list[CaptureRecord], schema: DatasetSchema) -> FeatureColumns:
    """The feature columns of every captured request (bodies and rows that cannot be decoded are counted).

    Rows keep the order: CSV bodies with a header, then header-less CSV rows, then JSON rows.
    """
    names = schema.feature_names
    name_set = set(names)
    header_rows: list[list[Any]] = []
    csv_lines: list[str] = []
    json_rows: list[list[Any]] = []
    bad: Counter[str] = Counter()
    for record in records:
        try:
            if record.input_type in ("text/csv", "text/plain", ""):
                lines = [line for line in record.input_body.splitlines() if line.strip()]
                if lines and _is_header(lines[0], name_set):
                    header_rows += _header_rows(lines, names)
                else:
                    csv_lines += lines
            elif record.input_type == "application/json":
                json_rows += _json_rows(record.input_body, names)
            else:
                bad[f"content type {record.input_type!r}"] += 1
        except (ValueError, TypeError, csv.Error) as error:
            bad[type(error).__name__] += 1
    width = len(names)
    csv_columns, too_wide = _headerless_columns(csv_lines, width) if csv_lines else (_transpose([], width), 0)
    if too_wide:
        bad["CSV rows with too many fields"] += too_wide
    blocks = (_transpose(header_rows, width), csv_columns, _transpose(json_rows, width))
    values = [_concat([block[i] for block in blocks]) for i in range(width)]
    columns = {
        feature.name: _numeric_column(column) if feature.kind == "numeric" else _categorical_column(column)
        for feature, column in zip(schema.features, values, strict=True)
    }
    return FeatureColumns(
        columns=columns, rows=len(values[0]) if values else 0, bad_records=sum(bad.values()), bad_reasons=bad
    )
