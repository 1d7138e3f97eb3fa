"""The Spark engine's pure parts (no Spark): the executors' partition transform, the file checks on the raw
object's first bytes, and where Spark reads and writes S3 locations (``spark_paths``) on moto."""

from __future__ import annotations

import csv
import dataclasses
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from moto import mock_aws

from pipelines.data.generator import corrupt_with_defects, generate, to_csv_bytes
from pipelines.etl import spark_etl
from pipelines.etl import transforms as tf
from pipelines.etl.driver import GateParams, job_args
from pipelines.etl.spark_paths import STAGING_ENV, S3Paths, StagedPaths, spark_paths
from stacks.config import QualityGate
from tests.samples import CHURN_SCHEMA

GATE = GateParams(**dataclasses.asdict(QualityGate()))


def spark_table(body: bytes) -> pa.Table:
    """A CSV as Spark's reader hands it to an executor: every column text, a record with the wrong field count as
    its corrupt record (columns null), the record number in ``_line`` (header = 1, blank lines not counted)."""
    rows = [line for line in body.decode().splitlines() if line]
    header = next(csv.reader([rows[0]]))
    columns: dict[str, list[Any]] = {name: [] for name in [*CHURN_SCHEMA.input_columns, spark_etl.CORRUPT]}
    for line in rows[1:]:
        fields = next(csv.reader([line]))
        good = len(fields) == len(header)
        values = dict(zip(header, fields, strict=False))
        for name in CHURN_SCHEMA.input_columns:
            columns[name].append((values[name] or None) if good else None)
        columns[spark_etl.CORRUPT].append(None if good else line)
    table = pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})
    return table.append_column(spark_etl.LINE, pa.array(np.arange(2, len(rows) + 1, dtype=np.int64)))


def test_a_partition_gives_the_rows_and_rejects_of_the_pandas_path() -> None:
    # Given: a CSV with every kind of defect, one record with a field too many and one with a field too few
    df, _ = corrupt_with_defects(generate(400, seed=5), 0.05, seed=3, schema=CHURN_SCHEMA)
    lines = to_csv_bytes(df).decode().splitlines()
    lines[10] += ",extra"
    lines[20] = lines[20].rsplit(",", 1)[0]
    body = ("\n".join(lines) + "\n").encode()

    # When: one executor transforms the rows as Spark read them
    wide = spark_etl.transform_partition(spark_table(body), CHURN_SCHEMA, GATE, "csv", tf._header(body))

    # Then: the curated rows and splits equal the pandas path's (parse_csv, transform_rows) row for row
    parsed = tf.parse_csv(body, CHURN_SCHEMA)
    curated, rejected = tf.transform_rows(parsed.frame, CHURN_SCHEMA, GATE)
    assert wide.schema == spark_etl.output_schema(CHURN_SCHEMA)
    frame = wide.to_pandas()
    got = frame[frame[spark_etl.REASON].isna()].reset_index(drop=True)
    for name in tf.curated_columns(CHURN_SCHEMA):
        pd.testing.assert_series_equal(
            got[name], pd.Series(curated[name]), check_dtype=False, check_categorical=False, obj=name
        )
    assert got[tf.SPLIT].tolist() == curated[tf.SPLIT].astype(str).tolist()
    # and the rejects carry the same record numbers and reasons, the field-count records among them
    want = pd.concat([parsed.bad_records, rejected], ignore_index=True).sort_values(tf.SOURCE_LINE)
    bad = frame[frame[spark_etl.REASON].notna()].sort_values(spark_etl.LINE)
    assert bad[spark_etl.LINE].tolist() == want[tf.SOURCE_LINE].tolist()
    assert bad[spark_etl.REASON].tolist() == want[tf.REJECT_REASON].tolist()
    assert {11, 21} <= set(bad.loc[bad[spark_etl.REASON] == "field_count", spark_etl.LINE])
    # and each reject keeps its text as read
    for name in CHURN_SCHEMA.input_columns:
        expected = [None if pd.isna(v) else str(v) for v in want[name]]
        assert bad[spark_etl.RAW + name].tolist() == expected, name


def test_the_stratified_thresholds_are_the_pandas_rule() -> None:
    # Given: the class sizes where ceil(share * n) is easy to get wrong (0.15 * 20 is 3, not 4)
    counts = np.array([20, 7, 1, 1000])
    # Then: the Spark ranking uses transforms' own helper (exactly ceil at 9 decimals)
    assert tf._ceil_share(0.15, counts).tolist() == [3, 2, 1, 150]


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="raw")
        client.put_bucket_versioning(Bucket="raw", VersioningConfiguration={"Status": "Enabled"})
        client.create_bucket(Bucket="curated")
        yield client


def _args(key: str, version: str) -> Any:
    return job_args(
        {
            "JOB_NAME": "etl",
            "dataset": "churn",
            "raw_bucket": "raw",
            "raw_key": key,
            "raw_version_id": version,
            "curated_bucket": "curated",
            "database": "db",
            "execution_id": "exec-1",
        }
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "empty"),
        (b"  \n\n", "empty"),
        (b"customer_id;age\n1;2\n", "delimiter"),
        (b"customer_id,customer_id\n", "duplicate_columns"),
        (b"customer_id,age\n1,2\n", "missing_columns"),
        (b"\xff\xfecustomer_id\n", "encoding"),
    ],
)
def test_file_checks_read_only_the_first_bytes(s3: Any, body: bytes, code: str) -> None:
    # Given: an upload malformed as a whole
    version = s3.put_object(Bucket="raw", Key="d/u.csv", Body=body)["VersionId"]
    args = _args("d/u.csv", version)
    # When / Then: the driver refuses it from its first bytes, with parse_csv's reason code
    with pytest.raises(tf.MalformedFileError) as error:
        spark_etl.csv_header(s3, args, spark_etl.raw_source(s3, args))
    assert error.value.reason_code == code
    if body:  # and parse_csv says the same of the whole file
        with pytest.raises(tf.MalformedFileError) as whole:
            tf.parse_csv(body, CHURN_SCHEMA)
        assert whole.value.reason_code == code


def test_a_header_longer_than_the_first_probe_is_read_further(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spark_etl, "HEADER_PROBE", 8)
    header = ",".join([*CHURN_SCHEMA.input_columns, "extra"])
    version = s3.put_object(Bucket="raw", Key="d/u.csv", Body=f"{header}\n".encode() + b"x" * 100)["VersionId"]
    args = _args("d/u.csv", version)
    columns, dropped = spark_etl.csv_header(s3, args, spark_etl.raw_source(s3, args))
    assert columns == header.split(",") and dropped == ["extra"]


def test_an_older_version_is_staged_for_spark_and_the_current_one_is_read_in_place(s3: Any) -> None:
    # Given: two versions of the upload
    old = s3.put_object(Bucket="raw", Key="d/u.csv", Body=b"old")["VersionId"]
    new = s3.put_object(Bucket="raw", Key="d/u.csv", Body=b"new")["VersionId"]
    # When / Then: the current version is read where it is
    args = _args("d/u.csv", new)
    assert spark_etl.readable_raw(s3, args, spark_etl.raw_source(s3, args)) == ("raw", "d/u.csv", False)
    # and the older one is copied to a staging key first (Spark's S3 reads current objects only)
    args = _args("d/u.csv", old)
    bucket, key, staged = spark_etl.readable_raw(s3, args, spark_etl.raw_source(s3, args))
    assert (bucket, staged) == ("curated", True) and key == "_staging/churn/exec-1/u.csv"
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"old"


def test_staged_paths_read_the_current_object_and_publish_what_spark_wrote(s3: Any, tmp_path: Path) -> None:
    # Given: the local mapping of Spark's S3 paths
    paths = StagedPaths(tmp_path / "stage", s3)
    s3.put_object(Bucket="raw", Key="d/u.csv", Body=b"a,b\n1,2\n")
    s3.put_object(Bucket="curated", Key="out/v=1/split=train/stale.parquet", Body=b"old run")

    # When: Spark reads the object and writes a folder (with the local file system's checksums)
    source = paths.read("raw", "d/u.csv")
    target = paths.write("curated", "out/v=1")
    folder = Path(target.removeprefix("file://"))
    (folder / "split=train").mkdir(parents=True)
    (folder / "split=train" / "part-0.parquet").write_bytes(b"rows")
    (folder / "split=train" / ".part-0.parquet.crc").write_bytes(b"crc")
    paths.publish("curated", "out/v=1")

    # Then: Spark read a local copy of the object; the folder replaced the prefix's content, checksums left out
    assert source.startswith("file://") and Path(source.removeprefix("file://")).read_bytes() == b"a,b\n1,2\n"
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket="curated", Prefix="out/")["Contents"]]
    assert listed == ["out/v=1/split=train/part-0.parquet"]
    # and the URIs keep "=" as Hadoop reads it (no percent-encoding)
    assert "v=1" in target
    paths.cleanup()
    assert not (tmp_path / "stage").exists()


def test_the_mapping_is_chosen_by_the_local_runner_s_variable(tmp_path: Path) -> None:
    assert isinstance(spark_paths(object(), {}), S3Paths)
    assert S3Paths().read("b", "k/x.csv") == "s3://b/k/x.csv" and S3Paths().write("b", "p/") == "s3://b/p"
    staged = spark_paths(object(), {STAGING_ENV: str(tmp_path)})
    assert isinstance(staged, StagedPaths) and staged.root == tmp_path


def test_report_probabilities_cover_quantiles_edges_and_sketch() -> None:
    needed = {*tf.QUANTILES, *map(float, tf.edge_probabilities()), *map(float, tf.SKETCH_PROBABILITIES)}
    assert set(tf.REPORT_PROBABILITIES) == needed
    # and the report built from a summary equals the one-process statistics for exact quantiles
    values = np.random.default_rng(1).normal(size=501)
    exact = tf.numeric_stats(values)
    ordered = np.sort(values)
    quantiles = {p: float(np.quantile(ordered, p)) for p in tf.REPORT_PROBABILITIES}
    rebuilt = tf.numeric_stats_from(
        501,
        0,
        float(ordered.mean()),
        float(ordered.std(ddof=1)),
        float(ordered[0]),
        float(ordered[-1]),
        quantiles,
        lambda edges: tf.histogram_counts(values, edges),
    )
    assert rebuilt["histogram"]["counts"] == exact["histogram"]["counts"]
    assert rebuilt["histogram"]["edges"] == pytest.approx(exact["histogram"]["edges"], rel=1e-12)
    assert rebuilt["sketch"]["values"] == pytest.approx(exact["sketch"]["values"], rel=1e-12)
    assert rebuilt["quantiles"] == pytest.approx(exact["quantiles"], rel=1e-12)
    assert {k: rebuilt[k] for k in ("count", "nulls", "min", "max")} == {
        k: exact[k] for k in ("count", "nulls", "min", "max")
    }


def test_the_local_glue_runner_sets_the_variable_the_job_reads() -> None:
    from localcloud.runtime import jobs

    assert jobs.SPARK_S3_STAGING == STAGING_ENV


def test_a_gzip_csv_s_header_is_read_from_its_first_compressed_bytes(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given: a .csv.gz upload whose header needs more than the first probe
    monkeypatch.setattr(spark_etl, "HEADER_PROBE", 16)
    body = gzip.compress(to_csv_bytes(generate(200, seed=1)))
    version = s3.put_object(Bucket="raw", Key="d/u.csv.gz", Body=body)["VersionId"]
    args = _args("d/u.csv.gz", version)
    # When / Then: the driver decompresses only a prefix and finds the columns
    columns, dropped = spark_etl.csv_header(s3, args, spark_etl.raw_source(s3, args))
    assert columns[: len(CHURN_SCHEMA.input_columns)] == list(tf._header(gzip.decompress(body)))[: len(columns)]
    assert dropped == []
    # and the one-process path reads the same bytes (the Lambda ETL)
    assert len(tf.parse_raw(body, "csv", CHURN_SCHEMA).frame) == 200
    # and gzip content under a key Spark would not decompress is refused, as is a broken gzip file
    version = s3.put_object(Bucket="raw", Key="d/u.csv", Body=body)["VersionId"]
    with pytest.raises(tf.MalformedFileError, match="unsupported_format: a gzip-compressed CSV needs a key ending"):
        spark_etl.csv_header(s3, _args("d/u.csv", version), spark_etl.raw_source(s3, _args("d/u.csv", version)))
    with pytest.raises(tf.MalformedFileError, match="unreadable_gzip"):
        tf.parse_raw(body[:40], "csv", CHURN_SCHEMA)


@pytest.mark.parametrize(
    ("asked", "rows", "partitions"),
    [(2, 3, 2), (4, 3, 3), (2, 1_000_000, 4), (2, 10_000_000, 40), (64, 1_000_000, 64), (2, 0, 1)],
)
def test_a_transform_partition_holds_a_bounded_number_of_rows(asked: int, rows: int, partitions: int) -> None:
    assert spark_etl.transform_partitions(asked, rows) == partitions
