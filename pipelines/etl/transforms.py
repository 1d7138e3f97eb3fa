"""Pure, schema-driven ETL transforms: parse, validate, engineer features, split, report, gate.

No AWS here. The Glue job (``glue_job.py``) runs ``transform_rows`` on each Spark partition and the rest
on the driver; ``transform_file`` runs them for one file in one process (the Lambda ETL of a small upload,
``pipelines/etl/driver.py``) and ``run_transform`` chains everything, report and gate included. The engineered columns
come from ``pipelines.features`` (re-exported here as ``engineer_features``), the one definition that
training and the inference handler use too.

Conventions:

* Parsing reads numbers as float64 when every number in the file parses (the fast path) and keeps
  everything as text otherwise; validation types and checks both alike. ``source_line`` is the
  row's record number in the file, the header being 1 (blank lines are not counted); for Parquet it
  is the 1-based row number.
* A row's ``reject_reason`` is the first failing check in schema order: ``null:<key>``, then per feature
  ``null:<col>``, ``type:<col>``, ``range:<col>``, ``category:<col>``, then ``null:<target>`` / ``target``
  (not a number for regression, not one of the declared labels for classification), then ``duplicate_key``
  (a key's first occurrence in the file is authoritative; later ones are rejected), and ``field_count`` for
  a CSV record with the wrong number of fields.
* A dataset without a key gets one: ``row_id`` (``ROW_ID``), 16 hex digits of a hash of the row's typed
  values (``content_hashes``), so the same row gets the same id whatever the file, order or format.
  Identical rows share an id (and a split); they are not rejected as duplicates.
* Splits come from a salted 64-bit hash of the key (``hash_keys``). By default each row on its own: the
  lowest hashes go to test, the next to validation (the same key always lands in the same split, whatever
  the row order, file or partitioning). A stratified schema (``DatasetSchema.stratified``: multiclass by
  default) ranks the rows of each class by that hash instead and gives each split its share of every class
  (``assign_splits``; in Spark terms ``row_number() over (partition by target order by hash)``). A class
  with no row in a split fails the quality gate with that reason.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import math
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipelines.features import engineer_features as engineer_features
from pipelines.features import engineered_columns
from pipelines.schema import SPLITS, DatasetSchema, Label

SOURCE_LINE = "source_line"
REJECT_REASON = "reject_reason"
SPLIT = "split"
NULL_VALUES: tuple[str, ...] = ("", "NA", "N/A", "NaN", "nan", "NULL", "null", "None")
QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 10
SKETCH_SIZE = 100
SKETCH_RULE = (
    "values[i] is the ((i + 0.5) / size)-quantile (numpy's linear method): a pseudo-sample whose empirical CDF "
    "is within about 1/size of the data's; the drift monitor's KS statistic compares against it"
)
BINNING_RULE = (
    "bin i holds edges[i] <= x < edges[i+1]; the first bin is open below and the last open above "
    "(np.searchsorted(edges[1:-1], x, side='right'))"
)
_SUSPECT_DELIMITERS = (";", "\t", "|")
_NUMBER_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


def _string_dtype() -> pd.StringDtype:
    """pandas' Arrow-backed string dtype with NaN as missing value (the default ``str`` of pandas 3)."""
    try:
        return pd.StringDtype("pyarrow", na_value=np.nan)
    except TypeError:  # pandas < 2.3
        return pd.StringDtype("pyarrow")


STR_DTYPE = _string_dtype()


def _types_mapper(arrow_type: pa.DataType) -> Any:
    return STR_DTYPE if arrow_type in (pa.string(), pa.large_string()) else None


class QualityParams(Protocol):
    """What the transforms read from the stage's ``QualityGate`` (stacks/config.py)."""

    @property
    def max_bad_row_share(self) -> float: ...
    @property
    def min_rows(self) -> int: ...
    @property
    def validation_share(self) -> float: ...
    @property
    def test_share(self) -> float: ...
    @property
    def split_seed(self) -> int: ...


class MalformedFileError(Exception):
    """The whole file is unusable; ``reason_code`` is machine-readable (e.g. ``missing_columns``)."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(f"{reason_code}: {message}")
        self.reason_code = reason_code
        self.message = message


@dataclass
class ParsedFile:
    """A parsed raw file: the required input columns (text, or float64 numbers) plus ``source_line``."""

    frame: pd.DataFrame
    dropped_columns: list[str] = field(default_factory=list)
    bad_records: pd.DataFrame | None = None  # CSV records with a wrong field count (already rejected)

    @property
    def input_rows(self) -> int:
        return len(self.frame) + (0 if self.bad_records is None else len(self.bad_records))


@dataclass
class TransformResult:
    """The outcome of ``run_transform``: curated rows (with ``split``), rejected rows, report, gate."""

    curated: pd.DataFrame
    rejected: pd.DataFrame
    report: dict[str, Any]
    gate_passed: bool
    gate_reasons: list[str]


# ---- arrow helpers ---------------------------------------------------------------------------------


def to_str_series(values: pa.Array | pa.ChunkedArray, name: str | None = None) -> pd.Series:
    """An Arrow string array as a pandas ``str`` Series without copying the text."""
    chunked = values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])
    return pd.Series(chunked.to_pandas(types_mapper=_types_mapper), name=name)


def _arrow_text(column: pd.Series) -> pa.ChunkedArray:
    """A column as an Arrow string array (zero-copy for Arrow-backed strings)."""
    try:
        arr = pa.array(column, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = None
    if arr is not None and pa.types.is_dictionary(arr.type) and pa.types.is_string(arr.type.value_type):
        arr = arr.cast(pa.string())
    if arr is None or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        text = column.astype(object).where(column.notna(), None)
        arr = pa.array([None if v is None else str(v) for v in text], type=pa.large_string())
    return arr if isinstance(arr, pa.ChunkedArray) else pa.chunked_array([arr])


def _bool(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)


def _floats(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)


# ---- parsing ---------------------------------------------------------------------------------------


def _check_utf8(raw: bytes) -> None:
    """Raise ``encoding`` unless ``raw`` is valid UTF-8 (vectorised check, no decoding copy)."""
    offsets = pa.py_buffer(np.array([0, len(raw)], dtype=np.int64).tobytes())
    blob = pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(raw)])
    try:
        blob.validate(full=True)
    except pa.ArrowInvalid:
        position = _first_invalid_utf8(raw)
        raise MalformedFileError(
            "encoding", f"the file is not valid UTF-8 (first invalid byte at offset {position})"
        ) from None


def _first_invalid_utf8(raw: bytes) -> int:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start
    return -1


def _header(raw: bytes) -> list[str]:
    end = raw.find(b"\n")
    line = (raw if end < 0 else raw[:end]).decode("utf-8").rstrip("\r")
    return next(csv.reader([line]), [])


def _check_columns(columns: Sequence[str], schema: DatasetSchema) -> list[str]:
    """Raise for duplicate or missing required columns; return the extra columns to drop."""
    if len(columns) == 1 and (delimiters := [d for d in _SUSPECT_DELIMITERS if d in columns[0]]):
        shown = columns[0] if len(columns[0]) <= 80 else columns[0][:77] + "..."
        raise MalformedFileError(
            "delimiter",
            f"the header is one column {shown!r}: expected comma-separated values, found {delimiters[0]!r}",
        )
    duplicates = sorted({c for c in columns if list(columns).count(c) > 1})
    if duplicates:
        raise MalformedFileError("duplicate_columns", f"columns appear more than once: {duplicates}")
    missing = [c for c in schema.input_columns if c not in columns]
    if missing:
        raise MalformedFileError("missing_columns", f"required columns missing: {missing} (found {list(columns)})")
    return [c for c in columns if c not in set(schema.input_columns)]


def parse_csv(raw: bytes, schema: DatasetSchema) -> ParsedFile:
    """Parse CSV bytes (UTF-8, comma, header row); raise ``MalformedFileError`` for whole-file problems."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    if not raw or raw.isspace():
        raise MalformedFileError("empty", "the file is empty")
    _check_utf8(raw)
    header = _header(raw)
    dropped = _check_columns(header, schema)
    required = schema.input_columns
    bad: list[tuple[int | None, str]] = []

    def on_invalid_row(row: Any) -> str:
        bad.append((row.number, row.text))
        return "skip"

    text_types = dict.fromkeys(header, pa.string())
    # Fast path: numbers parsed by the reader; any unparseable value sends the file down the text path.
    numbers = [*schema.numeric_features, *([schema.target] if schema.numeric_labels else [])]
    number_types = {**text_types, **dict.fromkeys(numbers, pa.float64())}

    def read(column_types: dict[str, pa.DataType], use_threads: bool) -> pa.Table:
        bad.clear()
        return pacsv.read_csv(
            io.BytesIO(raw),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, use_threads=use_threads),
            parse_options=pacsv.ParseOptions(delimiter=",", invalid_row_handler=on_invalid_row),
            convert_options=pacsv.ConvertOptions(
                column_types=column_types,
                include_columns=required,
                null_values=list(NULL_VALUES),
                strings_can_be_null=True,
                check_utf8=False,
            ),
        )

    try:
        try:
            table = read(number_types, use_threads=True)
        except pa.ArrowInvalid:
            number_types = text_types
            table = read(number_types, use_threads=True)
        if bad:  # the threaded reader does not know line numbers: read again serially
            table = read(number_types, use_threads=False)
    except pa.ArrowInvalid as error:
        raise MalformedFileError("unparseable_csv", f"the CSV cannot be parsed: {error}") from None
    if table.num_rows == 0 and not bad:
        raise MalformedFileError("no_rows", "the file has a header but no data rows")

    record_numbers = np.arange(2, table.num_rows + len(bad) + 2, dtype=np.int64)
    if bad:
        bad_numbers = np.array([number for number, _ in bad], dtype=np.int64)
        record_numbers = np.setdiff1d(record_numbers, bad_numbers, assume_unique=True)
    frame = table.to_pandas(types_mapper=_types_mapper)
    frame[SOURCE_LINE] = record_numbers
    return ParsedFile(frame=frame, dropped_columns=dropped, bad_records=_bad_records(bad, header, schema))


def _bad_records(bad: list[tuple[int | None, str]], header: list[str], schema: DatasetSchema) -> pd.DataFrame | None:
    """Records with a wrong field count, their fields spread over the header as far as they go."""
    if not bad:
        return None
    rows = []
    for number, text in bad:
        fields = next(csv.reader([text]), [])
        values = dict(zip(header, fields, strict=False))
        rows.append({**{c: values.get(c) for c in schema.input_columns}, SOURCE_LINE: number})
    records = pd.DataFrame(rows, columns=[*schema.input_columns, SOURCE_LINE])
    records[REJECT_REASON] = "field_count"
    return records


def parse_parquet(raw: bytes, schema: DatasetSchema) -> ParsedFile:
    """Read Parquet bytes into text columns (NaN and empty strings become missing)."""
    if not raw:
        raise MalformedFileError("empty", "the file is empty")
    try:
        table = pq.read_table(pa.BufferReader(raw))
    except (pa.ArrowException, OSError) as error:
        raise MalformedFileError("unreadable_parquet", f"the Parquet file cannot be read: {error}") from None
    dropped = _check_columns(table.column_names, schema)
    if table.num_rows == 0:
        raise MalformedFileError("no_rows", "the file has no data rows")
    frame = parquet_text(table, schema).to_pandas(types_mapper=_types_mapper)
    frame[SOURCE_LINE] = np.arange(1, table.num_rows + 1, dtype=np.int64)
    return ParsedFile(frame=frame, dropped_columns=dropped)


def parquet_text(table: pa.Table, schema: DatasetSchema) -> pa.Table:
    """The input columns of Parquet rows as text, as validation reads them (NaN and empty strings missing)."""
    columns = {}
    for name in schema.input_columns:
        column = table.column(name)
        if pa.types.is_floating(column.type):
            column = pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
        try:
            text = column if pa.types.is_string(column.type) else pc.cast(column, pa.string())
        except pa.ArrowNotImplementedError as error:
            raise MalformedFileError(
                "unreadable_parquet", f"column {name!r} of type {column.type} cannot be read as text: {error}"
            ) from None
        columns[name] = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    return pa.table(columns)


GZIP_MAGIC = b"\x1f\x8b"


def gunzip(raw: bytes) -> bytes:
    """The content of a gzip file (``*.csv.gz``: recognised by its magic bytes, whatever the key says)."""
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise MalformedFileError("unreadable_gzip", f"the gzip file cannot be decompressed: {error}") from None


def parse_raw(raw: bytes, file_format: str, schema: DatasetSchema) -> ParsedFile:
    """Parse a raw upload of ``file_format`` (``csv``, gzip-compressed or not, or ``parquet``)."""
    if file_format == "csv":
        return parse_csv(gunzip(raw) if raw.startswith(GZIP_MAGIC) else raw, schema)
    if file_format == "parquet":
        return parse_parquet(raw, schema)
    raise MalformedFileError("unsupported_format", f"unsupported file format {file_format!r}")


def detect_format(key: str) -> str:
    """``parquet`` for ``*.parquet``/``*.pq`` keys, else ``csv``."""
    return "parquet" if key.lower().endswith((".parquet", ".pq")) else "csv"


# ---- hashing and splits ----------------------------------------------------------------------------

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_BYTE_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [2**64 - 1], dtype=np.uint64)


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(30))
    h = h * _M1
    h = h ^ (h >> np.uint64(27))
    h = h * _M2
    return np.asarray(h ^ (h >> np.uint64(31)))


def _salt(seed: int) -> np.uint64:
    digest = hashlib.blake2b(f"split-salt:{seed}".encode(), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "little"))


def hash_keys(keys: pd.Series | pa.Array | pa.ChunkedArray, seed: int) -> np.ndarray:
    """A salted 64-bit hash of each key's UTF-8 text (missing = empty), stable across versions.

    Vectorised over 8-byte little-endian words of the text, mixed with the splitmix64 finaliser;
    defined by this code alone, so Glue, training and tests agree on every platform.
    """
    arr = keys if isinstance(keys, pa.Array | pa.ChunkedArray) else _arrow_text(keys)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], pa.large_string())
    if not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    buffers = arr.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
    starts = offsets[:-1]
    lengths = np.diff(offsets)
    if arr.null_count:
        lengths = np.where(_bool(arr.is_null()), 0, lengths)
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
    padded = np.zeros(len(data) + 8, dtype=np.uint8)
    padded[: len(data)] = data
    windows = np.lib.stride_tricks.sliding_window_view(padded, 8)

    h = _fmix64(_salt(seed) ^ (lengths.astype(np.uint64) * _GOLDEN))
    for word_start in range(0, int(lengths.max(initial=0)), 8):
        remaining = np.clip(lengths - word_start, 0, 8)
        positions = np.minimum(starts + word_start, len(data))
        words = np.ascontiguousarray(windows[positions]).view("<u8").reshape(n)
        mixed = _fmix64(h ^ (words.astype(np.uint64) & _BYTE_MASKS[remaining])) + _GOLDEN
        h = mixed if remaining.min() > 0 else np.where(remaining > 0, mixed, h)
    return _fmix64(h)


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_MISSING_WORD = np.uint64(0x7FF8_0000_0000_0001)  # what a missing value contributes to a content hash


def hex_ids(hashes: np.ndarray) -> pa.ChunkedArray:
    """Each 64-bit hash as 16 lowercase hex digits (big-endian), as an Arrow string array."""
    n = len(hashes)
    octets = np.ascontiguousarray(hashes, dtype=">u8").view(np.uint8).reshape(n, 8)
    text = np.empty((n, 16), dtype=np.uint8)
    text[:, 0::2] = _HEX_DIGITS[octets >> 4]
    text[:, 1::2] = _HEX_DIGITS[octets & 15]
    offsets = np.arange(0, 16 * n + 1, 16, dtype=np.int32)
    array = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(text.tobytes())])
    return pa.chunked_array([array])


def _number_words(values: np.ndarray) -> np.ndarray:
    """float64 values as 64-bit words: equal numbers give equal words (-0.0 is 0.0), a missing one a constant."""
    words = np.where(values == 0.0, 0.0, values).view(np.uint64)
    return np.where(np.isnan(values), _MISSING_WORD, words)


def _text_words(codes: np.ndarray, choices: Sequence[Label]) -> np.ndarray:
    """Indices into ``choices`` (-1: missing) as the 64-bit hash of each choice's text."""
    lookup = hash_keys(pa.array([str(choice) for choice in choices], pa.large_string()), 0)
    return np.where(codes >= 0, np.append(lookup, _MISSING_WORD)[codes], _MISSING_WORD)


def content_hashes(words: Sequence[np.ndarray], rows: int) -> np.ndarray:
    """One 64-bit hash per row of its column words (``_number_words`` / ``_text_words``), in column order:
    splitmix64 rounds like ``hash_keys``, so it is defined by this code alone."""
    h = _fmix64(np.full(rows, np.uint64(len(words)), dtype=np.uint64) * _GOLDEN)
    for column in words:
        h = _fmix64(h ^ column.astype(np.uint64, copy=False)) + _GOLDEN
    return _fmix64(h)


def _split_codes(hashes: np.ndarray, validation_share: float, test_share: float) -> np.ndarray:
    _check_shares(validation_share, test_share)
    unit = (hashes >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)  # uniform in [0, 1)
    # SPLITS order: train, validation, test; test takes the lowest hashes
    return np.where(unit < test_share, 2, np.where(unit < test_share + validation_share, 1, 0)).astype(np.int8)


def _check_shares(validation_share: float, test_share: float) -> None:
    if validation_share < 0 or test_share < 0 or validation_share + test_share >= 1:
        raise ValueError("validation_share and test_share must be >= 0 and sum to less than 1")


def _ceil_share(share: float, counts: np.ndarray) -> np.ndarray:
    """ceil(share * count) of each count, read to 9 decimals (0.15 * 20 is 3, not 4)."""
    return np.ceil(np.round(share * counts.astype(np.float64), 9)).astype(np.int64)


def stratified_split_codes(
    hashes: np.ndarray, classes: np.ndarray, validation_share: float, test_share: float
) -> np.ndarray:
    """Split codes (0 train, 1 validation, 2 test) giving each split its share of every class.

    Within a class of n rows ordered by hash (ties by position), the first ceil(test_share * n) go to test,
    up to ceil((test_share + validation_share) * n) to validation, the rest to train: every split of a
    class with enough rows gets at least one. Spark: ``row_number() over (partition by class order by
    hash)`` and ``count(*) over (partition by class)``.
    """
    _check_shares(validation_share, test_share)
    n = len(hashes)
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    order = np.lexsort((np.arange(n), hashes, classes))
    ordered = classes[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    counts = np.diff(np.append(starts, n))
    group = np.repeat(np.arange(len(starts)), counts)
    rank = np.arange(n) - starts[group]
    test = _ceil_share(test_share, counts)[group]
    held_out = np.maximum(_ceil_share(test_share + validation_share, counts)[group], test)
    codes = np.empty(n, dtype=np.int8)
    codes[order] = np.where(rank < test, 2, np.where(rank < held_out, 1, 0))
    return codes


def _split_series(codes: np.ndarray, index: pd.Index | None = None) -> pd.Series:
    return pd.Series(pd.Categorical.from_codes(codes, categories=list(SPLITS)), index=index, name=SPLIT)


def assign_split(keys: pd.Series | Iterable[str], seed: int, validation_share: float, test_share: float) -> pd.Series:
    """``train``/``validation``/``test`` per key, from the salted key hash (categorical Series)."""
    series = keys if isinstance(keys, pd.Series) else pd.Series(list(keys), dtype=object)
    codes = _split_codes(hash_keys(series, seed), validation_share, test_share)
    return _split_series(codes, series.index)


# ---- validation ------------------------------------------------------------------------------------


class _Reasons:
    """First failing check per row, as small integer codes."""

    def __init__(self, n: int) -> None:
        self.codes = np.zeros(n, dtype=np.int16)
        self.labels: list[str] = [""]

    def flag(self, mask: np.ndarray, label: str) -> None:
        hits = mask & (self.codes == 0)
        if hits.any():
            self.labels.append(label)
            self.codes[hits] = len(self.labels) - 1

    def text(self, mask: np.ndarray) -> np.ndarray:
        return np.asarray(self.labels, dtype=object)[self.codes[mask]]


def _to_float(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(values with NaN for missing or unparseable, True where a present value is not a finite number).

    Text follows the CSV reader's number grammar: surrounding spaces/tabs are ignored and a blank
    value is missing; ``inf``, ``nan`` and overflowing numbers are not valid values.
    """
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, np.isinf(values)
    text = _arrow_text(column)
    try:
        values = _floats(pc.cast(text, pa.float64()))
    except pa.ArrowInvalid:  # some values are not plain numbers: trim, then keep what the grammar accepts
        text = pc.utf8_trim(text, " \t")
        text = pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text)
        numeric = pc.match_substring_regex(text, _NUMBER_PATTERN)
        values = _floats(pc.cast(pc.if_else(numeric, text, pa.scalar(None, text.type)), pa.float64()))
    present = ~_bool(text.is_null())
    bad = present & ~np.isfinite(values)
    return (np.where(bad, np.nan, values) if bad.any() else values), bad


def duplicate_key_mask(keys: pd.Series | pa.ChunkedArray, hashes: np.ndarray | None = None) -> np.ndarray:
    """True for every occurrence of a key after its first (missing keys are never duplicates)."""
    arr = keys if isinstance(keys, pa.ChunkedArray) else _arrow_text(keys)
    hashes = hash_keys(arr, 0) if hashes is None else hashes
    mask = np.zeros(len(hashes), dtype=bool)
    ordered = np.sort(hashes)
    if not (ordered[1:] == ordered[:-1]).any():  # the usual case, settled by one sort
        return mask
    candidate = pd.Series(hashes).duplicated(keep=False).to_numpy() & ~_bool(arr.is_null())
    if candidate.any():  # confirm on the text: hashes may collide
        where = np.flatnonzero(candidate)
        text = to_str_series(arr.take(pa.array(where)))
        mask[where] = text.duplicated(keep="first").to_numpy()
    return mask


@dataclass
class _Checked:
    """Every row typed and checked (not yet filtered)."""

    key: pa.ChunkedArray  # the declared key as text, or the derived row id
    numbers: dict[str, np.ndarray]
    categories: dict[str, np.ndarray]  # index into the feature's categories, -1 when not valid
    target: np.ndarray  # float64 (number targets) or the index into the declared labels (-1: not valid)
    hashes: np.ndarray
    lines: np.ndarray
    reasons: _Reasons

    @property
    def valid(self) -> np.ndarray:
        return self.reasons.codes == 0


def _check_target(frame: pd.DataFrame, schema: DatasetSchema, reasons: _Reasons) -> np.ndarray:
    """The target as float64 (regression, integer labels) or label indices (string labels); flags
    ``null:<target>`` and ``target``."""
    name = schema.target
    if schema.numeric_labels:
        target, bad_target = _to_float(frame[name])
        reasons.flag(np.isnan(target) & ~bad_target, f"null:{name}")
        if schema.task == "regression":
            reasons.flag(bad_target, "target")
        else:
            reasons.flag(~np.isin(target, np.asarray(schema.class_labels, dtype=np.float64)), "target")
        return target
    text = _arrow_text(frame[name])
    missing = _bool(text.is_null())
    codes = _index_in(text, [str(label) for label in schema.class_labels])
    reasons.flag(missing, f"null:{name}")
    reasons.flag(codes < 0, "target")
    return codes


def _index_in(text: pa.ChunkedArray, choices: Sequence[str]) -> np.ndarray:
    """The index of each value in ``choices``; -1 for missing or unknown values."""
    index = pc.index_in(text, value_set=pa.array(choices, text.type))
    codes = np.asarray(index.to_numpy(zero_copy_only=False), dtype=np.float64)
    return np.nan_to_num(codes, nan=-1).astype(np.int64)


def _target_words(target: np.ndarray, schema: DatasetSchema) -> np.ndarray:
    return _number_words(target) if schema.numeric_labels else _text_words(target, schema.class_labels)


def _check(frame: pd.DataFrame, schema: DatasetSchema, seed: int) -> _Checked:
    n = len(frame)
    reasons = _Reasons(n)
    key = _arrow_text(frame[schema.key]) if schema.key is not None else None
    if key is not None:
        reasons.flag(_bool(key.is_null()), f"null:{schema.key}")
    numbers: dict[str, np.ndarray] = {}
    categories: dict[str, np.ndarray] = {}
    words: list[np.ndarray] = []
    for feature in schema.features:
        if feature.kind == "numeric":
            values, bad_type = _to_float(frame[feature.name])
            if not feature.nullable:
                reasons.flag(np.isnan(values) & ~bad_type, f"null:{feature.name}")
            reasons.flag(bad_type, f"type:{feature.name}")
            with np.errstate(invalid="ignore"):
                out_of_range = np.zeros(n, dtype=bool)
                if feature.minimum is not None:
                    out_of_range |= values < feature.minimum
                if feature.maximum is not None:
                    out_of_range |= values > feature.maximum
            reasons.flag(out_of_range, f"range:{feature.name}")
            numbers[feature.name] = values
            if key is None:
                words.append(_number_words(values))
        else:
            text = _arrow_text(frame[feature.name])
            missing = _bool(text.is_null())
            codes = _index_in(text, feature.categories)
            if not feature.nullable:
                reasons.flag(missing, f"null:{feature.name}")
            reasons.flag(~missing & (codes < 0), f"category:{feature.name}")
            categories[feature.name] = codes.astype(np.int16 if len(feature.categories) > 127 else np.int8)
            if key is None:
                words.append(_text_words(codes, feature.categories))
    target = _check_target(frame, schema, reasons)
    if key is None:
        key = hex_ids(content_hashes([*words, _target_words(target, schema)], n))
        hashes = hash_keys(key, seed)
    else:
        hashes = hash_keys(key, seed)
        reasons.flag(duplicate_key_mask(key, hashes), "duplicate_key")
    lines = frame[SOURCE_LINE].to_numpy() if SOURCE_LINE in frame else np.arange(2, n + 2, dtype=np.int64)
    return _Checked(key, numbers, categories, target, hashes, lines, reasons)


def _target_column(values: np.ndarray, schema: DatasetSchema) -> Any:
    """Typed target values: float64 (regression), int64 (integer labels), categorical (string labels)."""
    if schema.task == "regression":
        return values
    if schema.numeric_labels:
        return values.astype(np.int64)
    return pd.Categorical.from_codes(values, categories=[str(label) for label in schema.class_labels])


def _rows(checked: _Checked, schema: DatasetSchema, rows: np.ndarray | None) -> dict[str, Any]:
    """Typed columns of ``rows`` (all rows when None): str key, float64 numbers, categoricals, typed target."""

    def pick(values: np.ndarray) -> np.ndarray:
        return values if rows is None else values[rows]

    key = checked.key if rows is None else checked.key.take(pa.array(rows))
    columns: dict[str, Any] = {schema.key_column: to_str_series(key).array}
    for feature in schema.features:
        if feature.kind == "numeric":
            columns[feature.name] = pick(checked.numbers[feature.name])
        else:
            columns[feature.name] = pd.Categorical.from_codes(
                pick(checked.categories[feature.name]), categories=list(feature.categories)
            )
    columns[schema.target] = _target_column(pick(checked.target), schema)
    return columns


def _rejected(frame: pd.DataFrame, checked: _Checked, schema: DatasetSchema) -> pd.DataFrame:
    invalid = ~checked.valid
    rows = np.flatnonzero(invalid)
    columns: dict[str, Any] = {name: frame[name].iloc[rows].to_numpy() for name in schema.input_columns}
    columns[SOURCE_LINE] = checked.lines[rows]
    columns[REJECT_REASON] = checked.reasons.text(invalid)
    return pd.DataFrame(columns)


def validate_rows(frame: pd.DataFrame, schema: DatasetSchema) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows into (typed valid rows, rejected rows as read plus ``source_line`` and ``reject_reason``).

    Valid rows keep the key (the declared one as text, else the derived ``row_id``) then the input columns in
    schema order (numeric features as float64, categorical features as pandas categoricals over the schema's
    categories, the target typed by ``_target_column``) plus ``source_line``.
    """
    checked = _check(frame, schema, seed=0)
    rows = None if checked.valid.all() else np.flatnonzero(checked.valid)
    valid = pd.DataFrame(_rows(checked, schema, rows), copy=False)
    valid[SOURCE_LINE] = checked.lines if rows is None else checked.lines[rows]
    return valid, _rejected(frame, checked, schema)


# ---- features --------------------------------------------------------------------------------------


def _numeric(df: Mapping[str, Any], name: str) -> np.ndarray:
    column = df[name]
    if isinstance(column, np.ndarray) and column.dtype.kind in "fiu":
        return column.astype(np.float64, copy=False)
    series = pd.Series(column) if not isinstance(column, pd.Series) else column
    if not pd.api.types.is_numeric_dtype(series.dtype):
        series = pd.to_numeric(series, errors="coerce")
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def curated_columns(schema: DatasetSchema) -> list[str]:
    """Columns of the curated dataset files, in order (``split`` is the partition, not a column)."""
    return [schema.key_column, *schema.feature_names, schema.target, *schema.engineered_names]


# ---- the per-partition transform -------------------------------------------------------------------


def transform_rows(
    frame: pd.DataFrame, schema: DatasetSchema, params: QualityParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate, engineer features and assign splits: (curated rows, rejected rows).

    Curated rows have ``curated_columns(schema)`` plus ``split`` and come grouped by split (file order
    within a split). Pure and partition-safe as long as all rows of a key are in the same frame. The split
    is each row's own (the hash rule); a stratified schema's final split needs every row of a class:
    ``assign_splits`` over the union of the partitions (``run_transform`` and the Glue job call it), so
    its rows stay in file order here and are grouped there.
    """
    checked = _check(frame, schema, seed=params.split_seed)
    codes = _split_codes(checked.hashes, params.validation_share, params.test_share)
    valid = np.flatnonzero(checked.valid)
    rows = valid if schema.stratified else valid[np.argsort(codes[valid], kind="stable")]
    columns = _rows(checked, schema, rows)
    columns.update(engineered_columns(columns, schema))
    columns[SPLIT] = pd.Categorical.from_codes(codes[rows], categories=list(SPLITS))
    curated = pd.DataFrame(columns, copy=False)
    return curated, _rejected(frame, checked, schema)


def class_codes(target: pd.Series | np.ndarray, schema: DatasetSchema) -> np.ndarray:
    """The index of each curated target value among the schema's class labels."""
    names = [str(label) for label in schema.class_labels]
    categorical = isinstance(target, pd.Series) and isinstance(target.dtype, pd.CategoricalDtype)
    if isinstance(target, pd.Series) and categorical and list(target.cat.categories) == names:
        return np.asarray(target.cat.codes.to_numpy(), dtype=np.int64)
    values = np.asarray(target)
    labels = np.asarray(schema.class_labels if schema.numeric_labels else names)
    order = np.argsort(labels)
    found = order[np.searchsorted(labels, values, sorter=order).clip(0, len(labels) - 1)]
    return np.where(labels[found] == values, found, -1).astype(np.int64)


def assign_splits(curated: pd.DataFrame, schema: DatasetSchema, params: QualityParams) -> pd.DataFrame:
    """The final split of every curated row of a dataset (all its partitions together), grouped by split.

    The hash rule of ``transform_rows`` is already final (returned as is, regrouped if needed); a stratified
    schema gets ``stratified_split_codes`` over the key hashes and the classes.
    """
    if schema.stratified and len(curated):
        hashes = hash_keys(curated[schema.key_column], params.split_seed)
        codes = stratified_split_codes(
            hashes, class_codes(curated[schema.target], schema), params.validation_share, params.test_share
        )
        curated = curated.assign(**{SPLIT: pd.Categorical.from_codes(codes, categories=list(SPLITS))})
    codes = curated[SPLIT].cat.codes.to_numpy()
    if len(codes) and not (np.diff(codes) >= 0).all():
        curated = curated.iloc[np.argsort(codes, kind="stable")].reset_index(drop=True)
    return curated


# ---- report and gate -------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _quantiles(ordered: np.ndarray, probabilities: Sequence[float] | np.ndarray) -> np.ndarray:
    """Linear-interpolation quantiles (numpy's default method) of an already sorted array."""
    position = np.asarray(probabilities, dtype=np.float64) * (ordered.size - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, ordered.size - 1)
    return np.asarray(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def histogram_edges(values: np.ndarray, bins: int = HISTOGRAM_BINS) -> list[float]:
    """Quantile-based bin edges (min, deciles, max), duplicates removed; at least two edges."""
    ordered = np.sort(values[~np.isnan(values)])
    return _edges(ordered, bins)


def _edges(ordered: np.ndarray, bins: int = HISTOGRAM_BINS) -> list[float]:
    if ordered.size == 0:
        return []
    return edges_of(_quantiles(ordered, edge_probabilities(bins)))


def edge_probabilities(bins: int = HISTOGRAM_BINS) -> np.ndarray:
    """The probabilities whose quantiles are the histogram's edges (min, deciles, max)."""
    return np.linspace(0.0, 1.0, bins + 1)


def edges_of(quantiles: np.ndarray) -> list[float]:
    """Bin edges from the quantiles at ``edge_probabilities``: duplicates removed, at least two edges."""
    edges = np.unique(np.asarray(quantiles, dtype=np.float64))
    if edges.size == 1:
        edges = np.array([edges[0], edges[0]])
    return [float(e) for e in edges]


SKETCH_PROBABILITIES = (np.arange(SKETCH_SIZE) + 0.5) / SKETCH_SIZE
REPORT_PROBABILITIES: tuple[float, ...] = tuple(
    sorted({*QUANTILES, *(float(p) for p in edge_probabilities()), *(float(p) for p in SKETCH_PROBABILITIES)})
)
"""Every probability a numeric column's report entry needs a quantile of (quantiles, histogram edges, sketch)."""


def histogram_counts(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Counts per bin of ``edges`` under ``BINNING_RULE`` (missing values ignored)."""
    return _counts(np.sort(values[~np.isnan(values)]), edges)


def _counts(ordered: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    below = np.searchsorted(ordered, np.asarray(edges[1:-1], dtype=np.float64), side="left")
    return np.diff(np.concatenate(([0], below, [ordered.size]))).astype(np.int64)


def numeric_stats(values: np.ndarray) -> dict[str, Any]:
    """A numeric column's report entry (docs/contracts.md, "Quality report numeric feature"): count, nulls (NaN),
    moments, quantiles, the decile histogram and the 100-point sketch the drift monitor compares with."""
    ordered = np.sort(values[~np.isnan(values)])
    if ordered.size == 0:
        return numeric_stats_from(0, int(values.size), None, None, None, None, {}, lambda edges: np.zeros(0))
    quantiles = dict(zip(REPORT_PROBABILITIES, _quantiles(ordered, REPORT_PROBABILITIES), strict=True))
    return numeric_stats_from(
        int(ordered.size),
        int(values.size - ordered.size),
        float(ordered.mean()),
        float(ordered.std(ddof=1)) if ordered.size > 1 else None,
        float(ordered[0]),
        float(ordered[-1]),
        quantiles,
        lambda edges: _counts(ordered, edges),
    )


def numeric_stats_from(
    count: int,
    nulls: int,
    mean: float | None,
    std: float | None,
    minimum: float | None,
    maximum: float | None,
    quantiles: Mapping[float, float],
    counts: Callable[[list[float]], np.ndarray],
) -> dict[str, Any]:
    """A numeric column's report entry from its summary: ``quantiles`` by each of ``REPORT_PROBABILITIES`` (exact
    in one process, a mergeable sketch's on Spark) and ``counts(edges)`` per bin of ``BINNING_RULE``."""
    stats: dict[str, Any] = {"kind": "numeric", "count": int(count), "nulls": int(nulls)}
    if count == 0:
        return {
            **stats,
            "mean": None,
            "std": None,
            "min": None,
            "max": None,
            "quantiles": {},
            "histogram": None,
            "sketch": None,
        }
    edges = edges_of(np.array([quantiles[float(p)] for p in edge_probabilities()]))
    tally = counts(edges)
    return {
        **stats,
        "mean": _number(mean),
        "std": _number(std) if std is not None and count > 1 else None,
        "min": _number(minimum),
        "max": _number(maximum),
        "quantiles": {f"p{round(q * 100):02d}": _number(quantiles[q]) for q in QUANTILES},
        "histogram": {
            "edges": edges,
            "counts": [int(c) for c in tally],
            "proportions": [float(c) / count for c in tally],
            "rule": BINNING_RULE,
        },
        "sketch": {
            "size": SKETCH_SIZE,
            "values": [float(quantiles[float(p)]) for p in SKETCH_PROBABILITIES],
            "rule": SKETCH_RULE,
        },
    }


def _categorical_stats(column: pd.Series, categories: Sequence[str]) -> dict[str, Any]:
    if isinstance(column.dtype, pd.CategoricalDtype) and list(column.cat.categories) == list(categories):
        codes = column.cat.codes.to_numpy()
        tally = np.bincount(codes[codes >= 0], minlength=len(categories))
        counts = {c: int(tally[i]) for i, c in enumerate(categories)}
        nulls = int((codes < 0).sum())
    else:
        text = _arrow_text(column)
        nulls = text.null_count
        counts = dict.fromkeys(categories, 0)
        for entry in pc.value_counts(text).to_pylist():
            if entry["values"] is not None:
                counts[entry["values"]] = int(entry["counts"])
    return categorical_stats_from(counts, int(nulls))


def categorical_stats_from(counts: Mapping[str, int], nulls: int) -> dict[str, Any]:
    """A categorical column's report entry from its counts per category (every declared one) and its nulls."""
    present = sum(counts.values())
    return {
        "kind": "categorical",
        "count": int(present),
        "nulls": int(nulls),
        "counts": {k: int(v) for k, v in counts.items()},
        "proportions": {k: (v / present if present else 0.0) for k, v in counts.items()},
    }


def build_quality_report(
    schema: DatasetSchema,
    curated: pd.DataFrame,
    rejected: pd.DataFrame,
    *,
    input_rows: int | None = None,
    dropped_columns: Sequence[str] = (),
    source: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A JSON-serialisable quality report; its feature statistics are the drift baseline."""
    valid_rows, rejected_rows = len(curated), len(rejected)
    reasons = rejected[REJECT_REASON].value_counts() if rejected_rows else pd.Series(dtype=np.int64)
    features: dict[str, Any] = {}
    for feature in schema.features:
        if feature.kind == "numeric":
            features[feature.name] = numeric_stats(_numeric(curated, feature.name))
        else:
            features[feature.name] = _categorical_stats(curated[feature.name], feature.categories)
    engineered = {name: numeric_stats(_numeric(curated, name)) for name in schema.engineered_names if name in curated}
    codes = curated[SPLIT].cat.codes.to_numpy() if SPLIT in curated and valid_rows else np.zeros(0, np.int8)
    summary = SplitSummary.of(curated, schema, codes)
    return assemble_report(
        schema,
        valid_rows=valid_rows,
        rejects_by_reason={str(k): int(v) for k, v in reasons.items()},
        input_rows=input_rows,
        dropped_columns=dropped_columns,
        source=source,
        features=features,
        engineered=engineered,
        splits=summary.split_stats(schema) if SPLIT in curated else {},
        target=summary.target_stats(
            schema, numeric_stats(_numeric(curated, schema.target)) if schema.task == "regression" else None
        ),
    )


def assemble_report(
    schema: DatasetSchema,
    *,
    valid_rows: int,
    rejects_by_reason: Mapping[str, int],
    input_rows: int | None,
    dropped_columns: Sequence[str],
    source: Mapping[str, Any] | None,
    features: Mapping[str, Any],
    engineered: Mapping[str, Any],
    splits: Mapping[str, Any],
    target: Mapping[str, Any],
) -> dict[str, Any]:
    """The report's document from its parts (one process: ``build_quality_report``; Spark: aggregates)."""
    rejected_rows = int(sum(rejects_by_reason.values()))
    total = valid_rows + rejected_rows if input_rows is None else input_rows
    return {
        "dataset": schema.name,
        "source": dict(source or {}),
        "rows": {"input": int(total), "valid": int(valid_rows), "rejected": rejected_rows},
        "rejected_share": float(rejected_rows / total) if total else 0.0,
        "rejects_by_reason": {str(k): int(v) for k, v in sorted(rejects_by_reason.items())},
        "dropped_columns": list(dropped_columns),
        "features": dict(features),
        "engineered": dict(engineered),
        "splits": dict(splits),
        "target": dict(target),
    }


@dataclass(frozen=True)
class SplitSummary:
    """Rows per split and class (classification: ``table[split, class]``) or rows and target sums per split
    (regression): all the report needs about the target (``split_stats``, ``target_stats``)."""

    table: np.ndarray  # (len(SPLITS), classes) counts; regression: (len(SPLITS), 1)
    target_sums: np.ndarray  # per split; zeros for classification

    @classmethod
    def of(cls, curated: pd.DataFrame, schema: DatasetSchema, codes: np.ndarray) -> SplitSummary:
        if schema.task == "regression":
            rows = np.bincount(codes, minlength=len(SPLITS)).reshape(-1, 1)
            target = _numeric(curated, schema.target) if len(curated) else np.zeros(0)
            return cls(rows, np.bincount(codes, weights=target, minlength=len(SPLITS)))
        classes = class_codes(curated[schema.target], schema) if len(curated) else np.zeros(0, np.int64)
        table = np.zeros((len(SPLITS), len(schema.class_labels)), dtype=np.int64)
        np.add.at(table, (codes, classes), 1)
        return cls(table, np.zeros(len(SPLITS)))

    def split_stats(self, schema: DatasetSchema) -> dict[str, Any]:
        """Rows per split, with the class counts (binary: also the positive rate) or the target's mean."""
        rows = self.table.sum(axis=1)
        splits: dict[str, Any] = {name: {"rows": int(rows[i])} for i, name in enumerate(SPLITS)}
        if schema.task == "regression":
            for i, name in enumerate(SPLITS):
                splits[name]["target_mean"] = float(self.target_sums[i] / rows[i]) if rows[i] else None
            return splits
        labels = schema.class_labels
        for i, name in enumerate(SPLITS):
            splits[name]["classes"] = {str(label): int(self.table[i, j]) for j, label in enumerate(labels)}
            if schema.task == "binary":
                positives = self.table[i, labels.index(schema.positive)]
                splits[name]["positive_rate"] = float(positives / rows[i]) if rows[i] else None
        return splits

    def target_stats(self, schema: DatasetSchema, numeric: Mapping[str, Any] | None) -> dict[str, Any]:
        """The target's distribution: class counts (classification; binary also its positive rate) or ``numeric``,
        the target's statistics like a feature's (regression: the baseline of the model's output distribution)."""
        stats: dict[str, Any] = {"name": schema.target, "task": schema.task}
        if schema.task == "regression":
            return {**stats, **dict(numeric or {})}
        counts = self.table.sum(axis=0)
        present = int(counts.sum())
        stats["classes"] = {str(label): int(count) for label, count in zip(schema.class_labels, counts, strict=True)}
        if schema.task == "binary":
            positives = int(counts[schema.class_labels.index(schema.positive)])
            stats["positive_label"] = schema.positive
            stats["positives"] = positives
            stats["positive_rate"] = positives / present if present else None
        else:
            stats["proportions"] = {
                str(label): (int(c) / present if present else 0.0)
                for label, c in zip(schema.class_labels, counts, strict=True)
            }
        return stats


def check_quality_gate(report: Mapping[str, Any], max_bad_row_share: float, min_rows: int) -> tuple[bool, list[str]]:
    """(passed, reasons): too many rejected rows, too few valid rows, or (classification) a class without a row
    in a split fail the run."""
    reasons: list[str] = []
    share = float(report["rejected_share"])
    if share > max_bad_row_share:
        rejected, total = report["rows"]["rejected"], report["rows"]["input"]
        reasons.append(f"rejected share {share:.4f} > {max_bad_row_share} ({rejected} of {total} rows)")
    valid = int(report["rows"]["valid"])
    if valid < min_rows:
        reasons.append(f"valid rows {valid} < {min_rows}")
    splits = (report.get("splits") or {}) if valid >= min_rows else {}  # too few rows: that is the reason
    for split, stats in splits.items():
        missing = [label for label, count in (stats.get("classes") or {}).items() if count == 0]
        if missing:
            shown = ", ".join(repr(label) for label in missing)
            reasons.append(
                f"class {shown} has no rows in the {split} split"
                if len(missing) == 1
                else f"classes {shown} have no rows in the {split} split"
            )
    return not reasons, reasons


def malformed_report(
    schema: DatasetSchema, error: MalformedFileError, source: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The report of a file rejected as a whole."""
    return {
        "dataset": schema.name,
        "source": dict(source or {}),
        "malformed": {"reason_code": error.reason_code, "message": error.message},
        "gate": {"passed": False, "reasons": [f"malformed file: {error}"]},
    }


# ---- one file, one process -------------------------------------------------------------------------


def run_transform(
    raw_bytes: bytes,
    file_format: str,
    schema: DatasetSchema,
    gate: QualityParams,
    source: Mapping[str, Any] | None = None,
) -> TransformResult:
    """Parse, validate, engineer, split, report and gate one raw file (raises ``MalformedFileError``)."""
    parsed = parse_raw(raw_bytes, file_format, schema)
    curated, rejected = transform_file(parsed, schema, gate)
    return finish(schema, curated, rejected, gate, parsed.input_rows, parsed.dropped_columns, source)


def transform_file(parsed: ParsedFile, schema: DatasetSchema, gate: QualityParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every row of a parsed file in one process: (curated rows grouped by split, rejected rows by line, the
    parser's bad records among them). What the Glue job computes over Spark partitions, in one frame."""
    curated, rejected = transform_rows(parsed.frame, schema, gate)
    curated = assign_splits(curated, schema, gate)
    if parsed.bad_records is not None:
        rejected = pd.concat([parsed.bad_records, rejected], ignore_index=True)
        rejected = rejected.sort_values(SOURCE_LINE, kind="stable", ignore_index=True)
    return curated, rejected


def finish(
    schema: DatasetSchema,
    curated: pd.DataFrame,
    rejected: pd.DataFrame,
    gate: QualityParams,
    input_rows: int,
    dropped_columns: Sequence[str],
    source: Mapping[str, Any] | None,
) -> TransformResult:
    """Report and gate the combined output of ``transform_rows`` (one or many partitions)."""
    report = build_quality_report(
        schema, curated, rejected, input_rows=input_rows, dropped_columns=dropped_columns, source=source
    )
    passed, reasons = apply_gate(report, gate)
    return TransformResult(curated, rejected, report, passed, reasons)


def apply_gate(report: dict[str, Any], gate: QualityParams) -> tuple[bool, list[str]]:
    """Decide the quality gate on ``report`` and record the decision in it as ``gate``."""
    passed, reasons = check_quality_gate(report, gate.max_bad_row_share, gate.min_rows)
    report["gate"] = {
        "passed": passed,
        "reasons": reasons,
        "max_bad_row_share": gate.max_bad_row_share,
        "min_rows": gate.min_rows,
    }
    return passed, reasons


# ---- output ----------------------------------------------------------------------------------------


def split_parquet(curated: pd.DataFrame, schema: DatasetSchema, compression: str = "snappy") -> dict[str, bytes]:
    """One Parquet file per non-empty split of the curated rows (``split`` is left to the path)."""
    table = pa.Table.from_pandas(curated, columns=curated_columns(schema), preserve_index=False)
    codes = curated[SPLIT].cat.codes.to_numpy()
    grouped = bool((np.diff(codes) >= 0).all())
    order = np.arange(len(codes)) if grouped else np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(SPLITS) + 1))
    ordered = table if grouped else table.take(pa.array(order))
    files: dict[str, bytes] = {}
    for i, name in enumerate(SPLITS):
        if bounds[i + 1] > bounds[i]:
            sink = io.BytesIO()
            pq.write_table(ordered.slice(bounds[i], bounds[i + 1] - bounds[i]), sink, compression=compression)
            files[name] = sink.getvalue()
    return files


def rejected_jsonl(rejected: pd.DataFrame) -> bytes:
    """Rejected rows as JSON lines (original text values, ``source_line`` and ``reject_reason``)."""
    return rejected.astype(object).where(rejected.notna(), None).to_json(orient="records", lines=True).encode()


# ---- the Glue catalog ------------------------------------------------------------------------------

PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


def glue_type(dtype: Any) -> str:
    """The Glue/Hive column type of a curated pandas column."""
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
        return "string"
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "bigint"
    if pd.api.types.is_float_dtype(dtype):
        return "double"
    raise TypeError(f"no Glue type for {dtype}")


def parquet_storage(columns: list[dict[str, str]], location: str) -> dict[str, Any]:
    """A Glue ``StorageDescriptor`` of Parquet files under ``location`` (the curated tables and the production
    tables alike)."""
    return {
        "Columns": columns,
        "Location": location,
        "InputFormat": PARQUET_INPUT,
        "OutputFormat": PARQUET_OUTPUT,
        "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE, "Parameters": {"serialization.format": "1"}},
        "Compressed": True,
    }
