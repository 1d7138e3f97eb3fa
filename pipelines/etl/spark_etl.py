"""The Glue job's Spark engine: Spark reads, transforms and writes; the driver holds aggregates only.

1. The driver looks at the raw object version (``head_object``, the header's first bytes by range) for the file-level
   checks (empty, delimiter, duplicate or missing columns). Spark then reads the object itself from S3
   (``spark_paths``; a requested version that is no longer the current one is first copied server-side to a
   staging key, since Spark's S3 file systems read current objects only): a CSV with every column as text (what
   the pandas parser of ``driver.py`` gives validation on its text path), records with a wrong field count kept
   as Spark's corrupt records; or Parquet. Each row gets its record number (``source_line``: header = 1 in a CSV,
   1-based in Parquet) from its read partition's offset (one count per partition reaches the driver).
2. Rows are repartitioned by key (rows of a key meet in one partition; without a key by record number), sorted by
   record number within each partition, and ``mapInArrow`` runs the pure ``transforms.transform_rows`` on every
   partition. Its output is one wide table: curated rows (typed, with their split), rejected rows (their text as
   read, record number and reason).
3. A stratified dataset's split is ranked over all partitions in Spark (``row_number() over (partition by class
   order by key hash)`` against the class's ``ceil(share * n)``, class counts from an aggregation), identical to
   ``transforms.stratified_split_codes``.
4. The report is aggregated: counts, rejects by reason, categorical counts, moments, min/max exactly; the
   quantiles, histogram edges and drift sketch from Spark's ``percentile_approx`` (a mergeable sketch with
   accuracy ``QUANTILE_ACCURACY``: the value reported for probability p has a rank within
   ``n / QUANTILE_ACCURACY`` of ``p * n``, and is a value of the data rather than numpy's interpolation between
   two; docs/performance.md) and the histogram counts exactly for those edges.
5. Executors write the rejected rows (JSON lines, ``rejected/`` in quarantine) and, if the gate passes, the curated
   Parquet partitioned by ``split`` under the version's prefix; the driver registers the catalog partitions and
   writes the report and the manifest (``driver.conclude``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.etl import driver
from pipelines.etl import transforms as tf
from pipelines.etl.driver import GateParams, JobArgs
from pipelines.etl.spark_paths import SparkPaths
from pipelines.schema import SPLITS, DatasetSchema

CORRUPT = "_corrupt_record"
LINE = "_line"
REASON = "_reason"
HASH = "_hash"
CLASS = "_class"
NUMBERS_PARSE = "_numbers_parse"
RAW = "_raw_"
QUANTILE_ACCURACY = 10_000
"""``percentile_approx``'s accuracy: the rank of a reported quantile is within ``n / QUANTILE_ACCURACY`` of exact."""
ROWS_PER_PARTITION = 250_000
"""The most rows one transform partition holds (a Python worker's frame: ~6 MB of memory per MB of CSV)."""
HEADER_PROBE = 1 << 16
HEADER_LIMIT = 1 << 22
STAGING_PREFIX = "_staging"
REJECTED_FOLDER = "rejected"
_SIGN = np.uint64(1 << 63)
_MASK33 = (1 << 33) - 1


# ---- the raw object --------------------------------------------------------------------------------


def raw_source(s3: Any, args: JobArgs) -> dict[str, Any]:
    """The lineage record of the raw object version (``head_object``), or ``RawObjectUnavailable``."""
    head = driver.raw_call(s3.head_object, args)
    return driver.raw_lineage(head, args, int(head.get("ContentLength", 0)))


def _copy_version(s3: Any, args: JobArgs, source: dict[str, Any], bucket: str, key: str) -> None:
    """Server-side copy of the raw version (multipart above 5 GB: ``s3.copy``); no byte passes the driver."""
    copy_source = {"Bucket": args.raw_bucket, "Key": args.raw_key}
    if source.get("version_id"):
        copy_source["VersionId"] = source["version_id"]
    s3.copy(copy_source, bucket, key)


def staging_key(args: JobArgs) -> str:
    name = args.raw_key.rsplit("/", 1)[-1] or "raw"
    return f"{STAGING_PREFIX}/{args.schema.name}/{args.execution_id}/{name}"


def readable_raw(s3: Any, args: JobArgs, source: dict[str, Any]) -> tuple[str, str, bool]:
    """(bucket, key, staged) Spark reads the raw version at: the object itself when the version is the current
    one, else a server-side copy under ``_staging/`` of the curated bucket (deleted after the run)."""
    try:
        current = s3.head_object(Bucket=args.raw_bucket, Key=args.raw_key).get("VersionId")
    except Exception:  # a delete marker on top: the version is not the current one
        current = None
    if not args.raw_version_id or current == source["version_id"]:
        return args.raw_bucket, args.raw_key, False
    key = staging_key(args)
    _copy_version(s3, args, source, args.curated_bucket, key)
    return args.curated_bucket, key, True


def _first_bytes(s3: Any, args: JobArgs, source: dict[str, Any], size: int) -> bytes:
    request = {"Bucket": args.raw_bucket, "Key": args.raw_key, "Range": f"bytes=0-{size - 1}"}
    if source.get("version_id"):
        request["VersionId"] = source["version_id"]
    return bytes(s3.get_object(**request)["Body"].read())


def _gunzip_prefix(head: bytes) -> bytes:
    """What the first bytes of a gzip file decompress to (Spark reads ``*.gz`` with Hadoop's gzip codec)."""
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head)
    except zlib.error as error:
        raise tf.MalformedFileError("unreadable_gzip", f"the gzip file cannot be decompressed: {error}") from None


def csv_header(s3: Any, args: JobArgs, source: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(header, dropped columns) of a CSV from its first bytes; ``MalformedFileError`` as ``parse_csv`` raises
    it for an empty file, a header that is not UTF-8, another delimiter, duplicate or missing columns."""
    size = int(source["size"])
    probe = min(HEADER_PROBE, size)
    head = _first_bytes(s3, args, source, probe) if probe else b""
    compressed = head.startswith(tf.GZIP_MAGIC)
    if compressed and not args.raw_key.endswith(".gz"):  # Spark picks Hadoop's gzip codec by the name
        raise tf.MalformedFileError("unsupported_format", "a gzip-compressed CSV needs a key ending in .gz")
    head = _gunzip_prefix(head) if compressed else head
    while b"\n" not in head and probe < min(size, HEADER_LIMIT):
        probe = min(probe * 4, size, HEADER_LIMIT)
        head = _first_bytes(s3, args, source, probe)
        head = _gunzip_prefix(head) if compressed else head
    text = head.removeprefix(b"\xef\xbb\xbf")
    whole = probe >= size
    if not text or (whole and text.isspace()):
        raise tf.MalformedFileError("empty", "the file is empty")
    line = text.split(b"\n", 1)[0]
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as error:
        offset = error.start + (len(head) - len(text))
        raise tf.MalformedFileError(
            "encoding", f"the file is not valid UTF-8 (first invalid byte at offset {offset})"
        ) from None
    header = tf._header(line)
    return header, tf._check_columns(header, args.schema)


# ---- reading with Spark ----------------------------------------------------------------------------


def read_rows(
    spark: Any, uri: str, args: JobArgs, header: list[str], header_dropped: list[str]
) -> tuple[Any, list[str]]:
    """(the raw rows as Spark reads them: a CSV's input columns as text plus its corrupt records, or Parquet's;
    the file's columns that are not inputs)."""
    from pyspark.sql import types as T

    if args.file_format == "csv":
        columns = [T.StructField(name, T.StringType()) for name in header]
        frame = spark.read.csv(
            uri,
            schema=T.StructType([*columns, T.StructField(CORRUPT, T.StringType())]),
            header=True,
            enforceSchema=True,
            mode="PERMISSIVE",
            columnNameOfCorruptRecord=CORRUPT,
            escape='"',
            multiLine=False,
            encoding="UTF-8",
        )
        return frame.select(*args.schema.input_columns, CORRUPT), header_dropped
    try:
        frame = spark.read.parquet(uri)
    except Exception as error:  # AnalysisException and friends: Spark cannot read the footer
        raise tf.MalformedFileError("unreadable_parquet", f"the Parquet file cannot be read: {error}") from None
    return frame.select(*args.schema.input_columns), tf._check_columns(frame.columns, args.schema)


def with_lines(spark: Any, frame: Any, first: int) -> tuple[Any, int]:
    """``frame`` with each row's record number (``first`` for its first row) in ``LINE``, and the row count: a
    row's number is its read partition's offset plus its position there (one count per partition is collected)."""
    from pyspark.sql import functions as F

    ided = frame.select("*", F.spark_partition_id().alias("_pid"), F.monotonically_increasing_id().alias("_mid"))
    counts = sorted((int(r["_pid"]), int(r["count"])) for r in ided.groupBy("_pid").count().collect())
    offsets, total = [], 0
    for pid, count in counts:
        offsets += [F.lit(pid), F.lit(total)]
        total += count
    if not counts:
        return ided.drop("_pid", "_mid").withColumn(LINE, F.lit(0).cast("long")), 0
    offset = F.create_map(*offsets)[F.col("_pid")]
    line = F.lit(first) + offset + F.col("_mid").bitwiseAND(F.lit(_MASK33))
    return ided.withColumn(LINE, line.cast("long")).drop("_pid", "_mid"), total


# ---- the executors' transform ----------------------------------------------------------------------


def output_schema(schema: DatasetSchema) -> pa.Schema:
    """The wide rows of ``transform_partition``: curated columns, split, key hash and class code; record number,
    reason and the input columns as read (``_raw_<name>``) of rejected rows; whether the partition's numbers all
    parse (the pandas reader's fast path)."""
    columns = pa.schema([(name, _arrow_type(dtype)) for name, dtype in empty_curated(schema).dtypes.items()])
    return pa.schema(
        [
            *[f for f in columns if f.name != tf.SPLIT],
            pa.field(tf.SPLIT, pa.string()),
            pa.field(HASH, pa.int64()),
            pa.field(CLASS, pa.int64()),
            pa.field(LINE, pa.int64()),
            pa.field(REASON, pa.string()),
            *[pa.field(RAW + name, pa.string()) for name in schema.input_columns],
            pa.field(NUMBERS_PARSE, pa.bool_()),
        ]
    )


def _arrow_type(dtype: Any) -> pa.DataType:
    return {"string": pa.string(), "boolean": pa.bool_(), "bigint": pa.int64(), "double": pa.float64()}[
        tf.glue_type(dtype)
    ]


def empty_curated(schema: DatasetSchema) -> pd.DataFrame:
    """The curated columns and their dtypes (what ``transform_rows`` gives for no rows)."""
    frame = pd.DataFrame({name: pd.Series([], dtype=tf.STR_DTYPE) for name in schema.input_columns})
    frame[tf.SOURCE_LINE] = np.zeros(0, dtype=np.int64)
    gate = GateParams(max_bad_row_share=0.0, min_rows=0, validation_share=0.1, test_share=0.1, split_seed=0)
    return tf.transform_rows(frame, schema, gate)[0]


def _numbers(schema: DatasetSchema) -> list[str]:
    return [*schema.numeric_features, *([schema.target] if schema.numeric_labels else [])]


def _text(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A CSV column as the pandas reader gives it: ``NULL_VALUES`` missing."""
    values = pc.cast(values, pa.string())
    return pc.if_else(pc.is_in(values, pa.array(tf.NULL_VALUES)), pa.scalar(None, pa.string()), values)


def _all_parse(columns: dict[str, Any], names: list[str]) -> bool:
    for name in names:
        try:
            pc.cast(columns[name], pa.float64())
        except pa.ArrowInvalid:
            return False
    return True


def transform_partition(
    table: pa.Table, schema: DatasetSchema, gate: GateParams, file_format: str, header: list[str]
) -> pa.Table:
    """One partition's raw rows (sorted by record number) -> its wide rows (``output_schema``)."""
    lines = table.column(LINE)
    bad: pd.DataFrame | None = None
    if file_format == "csv":
        corrupt = pc.is_valid(table.column(CORRUPT))
        if pc.any(corrupt).as_py():
            rows = table.filter(corrupt)
            records = list(zip(rows.column(LINE).to_pylist(), rows.column(CORRUPT).to_pylist(), strict=True))
            bad = tf._bad_records(records, header, schema)
            table = table.filter(pc.invert(corrupt))
            lines = table.column(LINE)
        columns = {name: _text(table.column(name)) for name in schema.input_columns}
        numbers_parse = _all_parse(columns, _numbers(schema))
    else:
        columns = {name: tf.parquet_text(table, schema).column(name) for name in schema.input_columns}
        numbers_parse = False
    frame = pa.table(columns).to_pandas(types_mapper=tf._types_mapper)
    frame[tf.SOURCE_LINE] = np.asarray(lines.to_numpy(), dtype=np.int64)
    curated, rejected = tf.transform_rows(frame, schema, gate)
    if bad is not None:
        rejected = pd.concat([bad, rejected], ignore_index=True)
    return pa.concat_tables(
        [_curated_part(curated, schema, gate, numbers_parse), _rejected_part(rejected, schema, numbers_parse)]
    )


def _curated_part(curated: pd.DataFrame, schema: DatasetSchema, gate: GateParams, numbers_parse: bool) -> pa.Table:
    out = output_schema(schema)
    n = len(curated)
    plain = curated.astype({c: object for c in curated.columns if isinstance(curated[c].dtype, pd.CategoricalDtype)})
    table = pa.Table.from_pandas(plain, preserve_index=False)
    columns: dict[str, Any] = {name: table.column(name).cast(out.field(name).type) for name in table.column_names}
    hashes = tf.hash_keys(curated[schema.key_column], gate.split_seed) if n else np.zeros(0, np.uint64)
    columns[HASH] = pa.array((hashes ^ _SIGN).view(np.int64))  # signed order = unsigned order
    classes = tf.class_codes(curated[schema.target], schema) if schema.task != "regression" and n else np.zeros(n)
    columns[CLASS] = pa.array(np.asarray(classes, dtype=np.int64))
    columns[NUMBERS_PARSE] = pa.array(np.full(n, numbers_parse))
    return pa.table({f.name: columns.get(f.name, pa.nulls(n, f.type)) for f in out}, schema=out)


def _rejected_part(rejected: pd.DataFrame, schema: DatasetSchema, numbers_parse: bool) -> pa.Table:
    out = output_schema(schema)
    n = len(rejected)
    columns: dict[str, Any] = {
        LINE: pa.array(rejected[tf.SOURCE_LINE].to_numpy(dtype=np.int64)),
        REASON: pa.array(rejected[tf.REJECT_REASON].astype(object).to_numpy(), pa.string()),
        NUMBERS_PARSE: pa.array(np.full(n, numbers_parse)),
    }
    for name in schema.input_columns:
        values = rejected[name].astype(object)
        text = [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values]
        columns[RAW + name] = pa.array(text, pa.string())
    return pa.table({f.name: columns.get(f.name, pa.nulls(n, f.type)) for f in out}, schema=out)


def _spark_type(arrow_type: pa.DataType) -> Any:
    from pyspark.sql import types as T

    types = {pa.string(): T.StringType(), pa.float64(): T.DoubleType(), pa.int64(): T.LongType()}
    return types.get(arrow_type, T.BooleanType())


def transform_partitions(asked: int, rows: int) -> int:
    """How many partitions the transform runs on: the ones asked for (``--partitions``, else Spark's default
    parallelism), more when a partition would hold over ``ROWS_PER_PARTITION`` rows (a Python worker holds its
    partition whole: duplicate keys are found across all its rows), at most one per row."""
    return max(1, min(max(asked, math.ceil(rows / ROWS_PER_PARTITION)), rows))


def transform(frame: Any, args: JobArgs, header: list[str], partitions: int) -> Any:
    """``transform_partition`` over ``partitions`` Spark partitions (rows of a key in one, each in record order)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    schema, gate, file_format = args.schema, args.gate, args.file_format
    schema_json, gate_json = schema.to_json(), json.dumps(dataclasses.asdict(gate))
    spread = F.col(schema.key) if schema.key is not None else F.col(LINE)
    arranged = frame.repartition(partitions, spread).sortWithinPartitions(LINE)
    out = output_schema(schema)
    spark_schema = T.StructType([T.StructField(f.name, _spark_type(f.type)) for f in out])

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        items = list(batches)
        if not items or not sum(b.num_rows for b in items):
            return
        table = pa.Table.from_batches(items)
        result = transform_partition(
            table, DatasetSchema.from_json(schema_json), GateParams.from_json(gate_json), file_format, header
        )
        yield from result.to_batches()

    return arranged.mapInArrow(run, spark_schema)


# ---- splits, report, outputs -----------------------------------------------------------------------


def stratify(curated: Any, class_counts: dict[int, int], gate: GateParams) -> Any:
    """``transforms.stratified_split_codes`` in Spark: each class's rows ranked by key hash."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if not class_counts:
        return curated
    classes = np.array(sorted(class_counts), dtype=np.int64)
    counts = np.array([class_counts[c] for c in classes], dtype=np.int64)
    test = tf._ceil_share(gate.test_share, counts)
    held = np.maximum(tf._ceil_share(gate.test_share + gate.validation_share, counts), test)

    def lookup(values: np.ndarray) -> Any:
        pairs = [item for c, v in zip(classes, values, strict=True) for item in (F.lit(int(c)), F.lit(int(v)))]
        return F.create_map(*pairs)[F.col(CLASS)]

    rank = F.row_number().over(Window.partitionBy(CLASS).orderBy(HASH, curated.columns[0])) - 1
    split = F.when(rank < lookup(test), "test").when(rank < lookup(held), "validation").otherwise("train")
    return curated.withColumn(tf.SPLIT, split)


def _numeric_names(schema: DatasetSchema) -> list[str]:
    names = [*schema.numeric_features, *schema.engineered_names]
    return [*names, schema.target] if schema.task == "regression" else names


def aggregate_report(
    curated: Any, rejects: dict[str, int], args: JobArgs, input_rows: int, dropped: list[str], source: dict[str, Any]
) -> dict[str, Any]:
    """The quality report of the curated rows from Spark aggregations (see the module docstring)."""
    from pyspark.sql import functions as F

    schema = args.schema
    numeric = _numeric_names(schema)
    probabilities = F.array(*[F.lit(p) for p in tf.REPORT_PROBABILITIES])
    aggregates = [F.count(F.lit(1)).alias("rows")]
    for i, name in enumerate(numeric):
        column = F.col(name)
        aggregates += [
            F.count(column).alias(f"n{i}"),
            F.avg(column).alias(f"mean{i}"),
            F.stddev_samp(column).alias(f"std{i}"),
            F.min(column).alias(f"min{i}"),
            F.max(column).alias(f"max{i}"),
            F.percentile_approx(column, probabilities, QUANTILE_ACCURACY).alias(f"q{i}"),
        ]
    categorical = [f for f in schema.features if f.kind != "numeric"]
    for i, feature in enumerate(categorical):
        column = F.col(feature.name)
        aggregates.append(F.count(F.when(column.isNull(), 1)).alias(f"null_c{i}"))
        aggregates += [
            F.count(F.when(column == value, 1)).alias(f"c{i}_{j}") for j, value in enumerate(feature.categories)
        ]
    summary = curated.agg(*aggregates).collect()[0]
    valid = int(summary["rows"])

    edges_of: dict[str, list[float]] = {}
    quantiles_of: dict[str, dict[float, float]] = {}
    for i, name in enumerate(numeric):
        if not summary[f"n{i}"]:
            continue
        values = dict(zip(tf.REPORT_PROBABILITIES, [float(v) for v in summary[f"q{i}"]], strict=True))
        values[0.0], values[1.0] = float(summary[f"min{i}"]), float(summary[f"max{i}"])
        quantiles_of[name] = values
        edges_of[name] = tf.edges_of(np.array([values[float(p)] for p in tf.edge_probabilities()]))
    below = [
        F.count(F.when(F.col(name) < F.lit(edge), 1)).alias(f"b{i}_{j}")
        for i, name in enumerate(numeric)
        if name in edges_of
        for j, edge in enumerate(edges_of[name][1:-1])
    ]
    tallies = curated.agg(*below).collect()[0] if below else {}

    def stats(i: int, name: str) -> dict[str, Any]:
        count = int(summary[f"n{i}"])
        if name not in edges_of:
            return tf.numeric_stats_from(0, valid, None, None, None, None, {}, lambda edges: np.zeros(0))
        inner = [int(tallies[f"b{i}_{j}"]) for j in range(len(edges_of[name]) - 2)]
        counts = np.diff(np.array([0, *inner, count]))
        return tf.numeric_stats_from(
            count,
            valid - count,
            summary[f"mean{i}"],
            summary[f"std{i}"],
            summary[f"min{i}"],
            summary[f"max{i}"],
            quantiles_of[name],
            lambda edges: counts,
        )

    numbers = {name: stats(i, name) for i, name in enumerate(numeric)}
    features: dict[str, Any] = {}
    for feature in schema.features:
        if feature.kind == "numeric":
            features[feature.name] = numbers[feature.name]
        else:
            i = categorical.index(feature)
            counts = {value: int(summary[f"c{i}_{j}"]) for j, value in enumerate(feature.categories)}
            features[feature.name] = tf.categorical_stats_from(counts, int(summary[f"null_c{i}"]))
    split_summary = _split_summary(curated, schema)
    return tf.assemble_report(
        schema,
        valid_rows=valid,
        rejects_by_reason=rejects,
        input_rows=input_rows,
        dropped_columns=dropped,
        source=source,
        features=features,
        engineered={name: numbers[name] for name in schema.engineered_names},
        splits=split_summary.split_stats(schema),
        target=split_summary.target_stats(schema, numbers.get(schema.target)),
    )


def _split_summary(curated: Any, schema: DatasetSchema) -> tf.SplitSummary:
    from pyspark.sql import functions as F

    index = {name: i for i, name in enumerate(SPLITS)}
    if schema.task == "regression":
        table = np.zeros((len(SPLITS), 1), dtype=np.int64)
        sums = np.zeros(len(SPLITS))
        for row in (
            curated.groupBy(tf.SPLIT).agg(F.count(F.lit(1)).alias("n"), F.sum(schema.target).alias("s")).collect()
        ):
            table[index[row[tf.SPLIT]], 0], sums[index[row[tf.SPLIT]]] = int(row["n"]), float(row["s"] or 0.0)
        return tf.SplitSummary(table, sums)
    table = np.zeros((len(SPLITS), len(schema.class_labels)), dtype=np.int64)
    for row in curated.groupBy(tf.SPLIT, CLASS).count().collect():
        table[index[row[tf.SPLIT]], int(row[CLASS])] = int(row["count"])
    return tf.SplitSummary(table, np.zeros(len(SPLITS)))


def _field(name: str, column: Any) -> Any:
    """``"name":value`` as Spark's JSON writer gives it (null included)."""
    from pyspark.sql import functions as F

    document = F.to_json(F.struct(column.alias(name)), {"ignoreNullFields": "false"})
    return F.regexp_extract(document, r"^\{(.*)\}$", 1)


def write_rejected(wide: Any, args: JobArgs, paths: SparkPaths, numbers_parse: bool) -> str:
    """Executors write the rejected rows as JSON lines in record order: the input columns as read (on the pandas
    reader's fast path, ``numbers_parse``, numbers as numbers except in records it could not split), the record
    number and the reason, as ``transforms.rejected_jsonl`` does; returns the folder's URI."""
    from pyspark.sql import functions as F

    numbers = set(_numbers(args.schema)) if numbers_parse else set()
    fragments = []
    for name in args.schema.input_columns:
        raw = F.col(RAW + name)
        if name in numbers:
            unsplit = F.col(REASON) == "field_count"
            fragments.append(F.when(unsplit, _field(name, raw)).otherwise(_field(name, raw.cast("double"))))
        else:
            fragments.append(_field(name, raw))
    fragments += [_field(tf.SOURCE_LINE, F.col(LINE)), _field(tf.REJECT_REASON, F.col(REASON))]
    lines = wide.filter(F.col(REASON).isNotNull()).select(
        F.col(LINE), F.concat(F.lit("{"), F.concat_ws(",", *fragments), F.lit("}")).alias("value")
    )
    prefix = f"{args.quarantine_version_prefix}{REJECTED_FOLDER}"
    lines.orderBy(LINE).select("value").write.mode("overwrite").text(paths.write(args.quarantine_bucket, prefix))
    paths.publish(args.quarantine_bucket, prefix)
    return f"s3://{args.quarantine_bucket}/{prefix}/"


def write_curated(curated: Any, args: JobArgs, paths: SparkPaths, splits: list[str]) -> dict[str, str]:
    """Executors write the curated Parquet partitioned by split under the version's prefix (replacing an earlier
    run's); returns each split's folder."""
    prefix = args.version_prefix.rstrip("/")
    columns = [*tf.curated_columns(args.schema), tf.SPLIT]
    curated.select(*columns).write.mode("overwrite").partitionBy(tf.SPLIT).parquet(
        paths.write(args.curated_bucket, prefix)
    )
    paths.publish(args.curated_bucket, prefix)
    return {split: f"s3://{args.curated_bucket}/{args.version_prefix}{tf.SPLIT}={split}/" for split in splits}


# ---- the run ---------------------------------------------------------------------------------------


def run(args: JobArgs, spark: Any, s3: Any, glue: Any, paths: SparkPaths) -> dict[str, Any]:
    """One ETL run with Spark doing the I/O and the row work; returns the lineage record or raises ``EtlJobError``."""
    from pyspark import StorageLevel

    job = driver.job_record(args)
    source = raw_source(s3, args)
    staged = None
    try:
        try:
            header = csv_header(s3, args, source) if args.file_format == "csv" else ([], [])
            if args.file_format not in ("csv", "parquet"):
                raise tf.MalformedFileError("unsupported_format", f"unsupported file format {args.file_format!r}")
            bucket, key, was_staged = readable_raw(s3, args, source)
            staged = (bucket, key) if was_staged else None
            if args.file_format == "parquet" and not source["size"]:
                raise tf.MalformedFileError("empty", "the file is empty")
            frame, dropped = read_rows(spark, paths.read(bucket, key), args, *header)
            lined, total = with_lines(spark, frame, 2 if args.file_format == "csv" else 1)
            if total == 0:
                message = (
                    "the file has a header but no data rows"
                    if args.file_format == "csv"
                    else "the file has no data rows"
                )
                raise tf.MalformedFileError("no_rows", message)
        except tf.MalformedFileError as error:

            def copy(bucket: str, key: str) -> None:
                _copy_version(s3, args, source, bucket, key)

            raise driver.malformed(
                s3, args, error, source, job, driver.quarantine_file(s3, args, error, source, copy)
            ) from error

        partitions = transform_partitions(args.partitions or int(spark.sparkContext.defaultParallelism), total)
        wide = transform(lined, args, header[0], partitions).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            return _finish(args, s3, glue, paths, wide, total, dropped, source, job, partitions)
        finally:
            wide.unpersist()
    finally:
        if staged is not None:
            s3.delete_object(Bucket=staged[0], Key=staged[1])
        paths.cleanup()


def _finish(
    args: JobArgs,
    s3: Any,
    glue: Any,
    paths: SparkPaths,
    wide: Any,
    total: int,
    dropped: list[str],
    source: dict[str, Any],
    job: dict[str, Any],
    partitions: int,
) -> dict[str, Any]:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    counts = wide.groupBy(REASON, CLASS).agg(F.count(F.lit(1)).alias("n"), F.min(NUMBERS_PARSE).alias("p")).collect()
    rejects: dict[str, int] = {}
    class_counts: dict[int, int] = {}
    numbers_parse = args.file_format == "csv"
    for row in counts:
        numbers_parse = numbers_parse and bool(row["p"])
        if row[REASON] is None:
            class_counts[int(row[CLASS])] = class_counts.get(int(row[CLASS]), 0) + int(row["n"])
        else:
            rejects[row[REASON]] = rejects.get(row[REASON], 0) + int(row["n"])
    curated = wide.filter(F.col(REASON).isNull())
    if args.schema.stratified:
        curated = stratify(curated, class_counts, args.gate).persist(StorageLevel.MEMORY_AND_DISK)
    report = aggregate_report(curated, rejects, args, total, dropped, source)
    gate = tf.apply_gate(report, args.gate)
    quarantine = None
    if rejects:
        rows_uri = write_rejected(wide, args, paths, numbers_parse)
        quarantine = driver.rejected_reason(s3, args, report, source, rows_uri)
    splits = [name for name in SPLITS if report["splits"][name]["rows"]]
    return driver.conclude(
        s3,
        glue,
        args,
        report,
        gate,
        quarantine,
        {"engine": "glue", "spark_partitions": partitions},
        job,
        lambda: write_curated(curated, args, paths, splits),
        empty_curated(args.schema),
    )
