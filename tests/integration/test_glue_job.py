"""The Glue entry point on local pyspark against moto S3 and the moto Glue catalog."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from lambdas.etl import logic as etl_logic
from pipelines.data.generator import corrupt_with_defects, generate, to_csv_bytes, to_parquet_bytes
from pipelines.etl import glue_job, spark_etl
from pipelines.etl import transforms as tf
from pipelines.etl.glue_job import EtlJobError, GateParams
from pipelines.etl.spark_paths import STAGING_ENV
from pipelines.platform import platform
from pipelines.schema import SPLITS
from stacks.datasets import dataset_schema
from tests.samples import CHURN_SCHEMA

REGION = "us-east-1"
RAW, CURATED = "raw-bucket", "curated-bucket"
DATABASE, TABLE = "mlops_test", "churn"
KEY = "datasets/churn/upload.csv"


def gate(dataset: str) -> GateParams:
    """The data-quality rules the job applies to ``dataset``: the platform document's (the session's sample
    document, as the stack ships it next to the job's code), never arguments of the run."""
    return GateParams.from_dict(platform().dataset(dataset).quality)


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One local Spark session for the module (workers use this interpreter)."""
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("test-glue-job")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Fake credentials, moto, a versioned raw bucket, a curated bucket and the Glue database; Spark's ``s3://``
    paths staged under ``tmp_path`` as the local Glue runner stages them (``pipelines.etl.spark_paths``)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        STAGING_ENV: str(tmp_path / "spark-s3"),
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        glue = boto3.client("glue", region_name=REGION)
        s3.create_bucket(Bucket=RAW)
        s3.put_bucket_versioning(Bucket=RAW, VersioningConfiguration={"Status": "Enabled"})
        s3.create_bucket(Bucket=CURATED)
        glue.create_database(DatabaseInput={"Name": DATABASE})
        yield {"s3": s3, "glue": glue}


def upload(s3: Any, body: bytes, key: str = KEY) -> str:
    return str(s3.put_object(Bucket=RAW, Key=key, Body=body)["VersionId"])


def argv(
    version_id: str, execution_id: str = "exec-1", key: str = KEY, dataset: str = "churn", **extra: str
) -> list[str]:
    args = {
        "JOB_NAME": "mlops-test-etl",
        "dataset": dataset,
        "raw_bucket": RAW,
        "raw_key": key,
        "raw_version_id": version_id,
        "curated_bucket": CURATED,
        "database": DATABASE,
        "execution_id": execution_id,
        "partitions": "2",
        **extra,
    }
    return [token for name, value in args.items() for token in (f"--{name}", value)]


def run(aws: dict[str, Any], spark: Any, arguments: list[str]) -> dict[str, Any]:
    return glue_job.main(arguments, spark=spark, s3=aws["s3"], glue=aws["glue"])


def keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def read_json(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    return dict(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))


def parquet_rows(s3: Any, bucket: str, prefix: str) -> pd.DataFrame:
    """Every Parquet part under ``prefix`` (Spark writes one or more per task), as one frame of plain values
    (categoricals as text) sorted by the first column (the key or the row id)."""
    parts = [
        pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())).to_pandas()
        for key in keys(s3, bucket, prefix)
        if key.endswith(".parquet")
    ]
    frame = pd.concat(parts, ignore_index=True)
    frame = frame.astype({c: object for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)})
    return frame.sort_values(frame.columns[0], kind="stable", ignore_index=True)


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """A curated frame as ``parquet_rows`` gives it back."""
    frame = frame.drop(columns=[tf.SPLIT], errors="ignore")
    frame = frame.astype({c: object for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)})
    return frame.sort_values(frame.columns[0], kind="stable", ignore_index=True)


def rejected_rows(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    """The rejected rows of a quarantine folder in record order: ``rejected.jsonl`` (the Lambda ETL) or the JSON
    lines parts of ``rejected/`` (the Glue job's executors)."""
    rows = []
    for key in keys(s3, bucket, prefix):
        name = key.rsplit("/", 1)[-1]
        if key.endswith("rejected.jsonl") or ("/rejected/" in key and not name.startswith(("_", "."))):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
            rows += [json.loads(line) for line in body.splitlines() if line]
    return sorted(rows, key=lambda row: row[tf.SOURCE_LINE])


def assert_numeric_close(got: dict[str, Any], want: dict[str, Any], values: np.ndarray, where: str) -> None:
    """A numeric column's report entry from Spark's aggregates against the exact one: counts, min and max exact,
    moments to float rounding, and every quantile, histogram edge and sketch value within the documented rank
    tolerance (``spark_etl.QUANTILE_ACCURACY``); the histogram counts exact for the edges reported."""
    ordered = np.sort(values[~np.isnan(values)])
    n = ordered.size
    assert (got["count"], got["nulls"], got["min"], got["max"]) == (
        want["count"],
        want["nulls"],
        want["min"],
        want["max"],
    )
    for name in ("mean", "std"):
        assert got[name] == pytest.approx(want[name], rel=1e-9, abs=1e-12), f"{where}.{name}"
    tolerance = 1 / spark_etl.QUANTILE_ACCURACY + 1 / n

    def rank_ok(value: float, probability: float) -> bool:
        low = np.searchsorted(ordered, value, side="left") / n
        high = np.searchsorted(ordered, value, side="right") / n
        return bool(low - tolerance <= probability <= high + tolerance)

    assert sorted(got["quantiles"]) == sorted(want["quantiles"])
    for label, value in got["quantiles"].items():
        assert rank_ok(value, int(label[1:]) / 100), f"{where}.quantiles.{label}"
    for i, value in enumerate(got["sketch"]["values"]):
        assert rank_ok(value, (i + 0.5) / got["sketch"]["size"]), f"{where}.sketch[{i}]"
    edges = got["histogram"]["edges"]
    assert all(any(rank_ok(e, p) for p in tf.edge_probabilities()) for e in edges), f"{where}.histogram.edges"
    assert got["histogram"]["counts"] == tf.histogram_counts(values, edges).tolist(), f"{where}.histogram.counts"
    assert {k: got[k] for k in ("kind",)} == {k: want[k] for k in ("kind",)}


def assert_reports_match(got: Any, want: Any, curated: pd.DataFrame, where: str = "report") -> None:
    """Spark's aggregated report against the one-process report of the same rows (``curated``): equal, but for
    float rounding of sums and the quantile sketch's tolerance (``assert_numeric_close``)."""
    if isinstance(want, dict):
        if want.get("kind") == "numeric" and want.get("count"):
            column = want.get("name") or where.rsplit(".", 1)[-1]
            assert_numeric_close(got, want, curated[column].to_numpy(dtype=np.float64, na_value=np.nan), where)
            return
        assert sorted(got) == sorted(want), where
        for key, value in want.items():
            assert_reports_match(got[key], value, curated, f"{where}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_reports_match(a, b, curated, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), where
    else:
        assert got == want, where


def assert_raw_intact(s3: Any, body: bytes, version_id: str) -> None:
    versions = s3.list_object_versions(Bucket=RAW, Prefix=KEY).get("Versions", [])
    assert [v["VersionId"] for v in versions] == [version_id]
    assert s3.get_object(Bucket=RAW, Key=KEY, VersionId=version_id)["Body"].read() == body


def test_a_clean_file_becomes_a_curated_partitioned_and_catalogued_dataset(aws: dict[str, Any], spark: Any) -> None:
    # Given: a raw CSV upload with 2% bad rows (under the 5% gate)
    s3, glue = aws["s3"], aws["glue"]
    df, expected = corrupt_with_defects(generate(3_000, seed=31), 0.02, seed=4, schema=CHURN_SCHEMA)
    body = to_csv_bytes(df)
    version = upload(s3, body)

    # When: the job runs on two Spark partitions
    lineage = run(aws, spark, argv(version))

    # Then: the lineage names the exact raw version and the outputs
    prefix = "curated/dataset=churn/version=exec-1/"
    assert lineage["status"] == "SUCCEEDED"
    assert lineage["source"]["bucket"] == RAW and lineage["source"]["key"] == KEY
    assert lineage["source"]["version_id"] == version
    assert lineage["rows"] == {"input": 3_000, "valid": 2_940, "rejected": 60}
    assert lineage["curated_prefix"] == f"s3://{CURATED}/{prefix}"
    assert lineage["report_uri"] == f"s3://{CURATED}/{prefix}_quality_report.json"
    assert lineage["spark_partitions"] == 2
    # and the executors wrote Parquet parts under one folder per split, Hive style: the valid rows
    written = keys(s3, CURATED, "curated/")
    assert f"{prefix}_quality_report.json" in written
    assert {k.rsplit("/", 1)[0] for k in written if k.endswith(".parquet")} == {f"{prefix}split={n}" for n in SPLITS}
    frames = {name: parquet_rows(s3, CURATED, f"{prefix}split={name}/") for name in SPLITS}
    assert {name: len(frame) for name, frame in frames.items()} == lineage["splits"]
    assert sum(lineage["splits"].values()) == 2_940
    assert lineage["files"]["train"] == f"s3://{CURATED}/{prefix}split=train/"
    # and the Spark result equals the single-process transform of the same bytes
    single = tf.run_transform(body, "csv", CHURN_SCHEMA, gate("churn"))
    for name, frame in frames.items():
        want = plain(single.curated[single.curated[tf.SPLIT] == name])
        pd.testing.assert_frame_equal(frame, want, check_dtype=False)
    # and the executors wrote the rejected rows to quarantine with their reasons and record numbers
    quarantine = "quarantine/dataset=churn/version=exec-1/"
    assert f"{quarantine}_reason.json" in keys(s3, CURATED, "quarantine/")
    rejected = {row[tf.SOURCE_LINE]: row[tf.REJECT_REASON] for row in rejected_rows(s3, CURATED, quarantine)}
    wanted = expected[expected != ""]
    assert rejected == {int(i) + 2: reason for i, reason in wanted.items()}
    reason = read_json(s3, CURATED, f"{quarantine}_reason.json")
    assert reason["reason"] == "rejected_rows"
    assert reason["rejected_rows"] == f"s3://{CURATED}/{quarantine}rejected/"
    assert reason["source"]["version_id"] == version
    # and the report is stored with the gate decision and the drift baseline, aggregated by Spark
    report = read_json(s3, CURATED, f"{prefix}_quality_report.json")
    assert report["gate"]["passed"] is True
    assert report["rows"] == lineage["rows"]
    assert_reports_match(
        {k: report[k] for k in single.report if k != "source"},
        json.loads(json.dumps({k: v for k, v in single.report.items() if k != "source"})),
        single.curated,
    )
    assert report["output"]["status"] == "SUCCEEDED"
    assert report["job"]["execution_id"] == "exec-1"
    # and the catalog has the table with its partitions
    table = glue.get_table(DatabaseName=DATABASE, Name=TABLE)["Table"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["version", "split"]
    columns = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}
    assert list(columns) == tf.curated_columns(CHURN_SCHEMA)
    assert columns["age"] == "double" and columns["contract"] == "string" and columns["churned"] == "bigint"
    assert table["StorageDescriptor"]["Location"] == f"s3://{CURATED}/curated/dataset=churn/"
    assert table["Parameters"]["latest_version"] == "exec-1"
    partitions = glue.get_partitions(DatabaseName=DATABASE, TableName=TABLE)["Partitions"]
    assert sorted(tuple(p["Values"]) for p in partitions) == sorted(("exec-1", name) for name in SPLITS)
    locations = {p["Values"][1]: p["StorageDescriptor"]["Location"] for p in partitions}
    assert locations["train"] == f"s3://{CURATED}/{prefix}split=train/"
    # and the lineage record is published as the dataset's latest manifest (what a retrain starts from)
    assert read_json(s3, CURATED, "manifests/churn/latest.json") == json.loads(json.dumps(lineage, default=str))
    # and the raw object version is untouched
    assert_raw_intact(s3, body, version)


def test_a_second_version_adds_partitions_and_a_rerun_replaces_its_own(aws: dict[str, Any], spark: Any) -> None:
    # Given: a first successful run
    s3, glue = aws["s3"], aws["glue"]
    version = upload(s3, to_csv_bytes(generate(1_000, seed=2)))
    run(aws, spark, argv(version, execution_id="exec-1"))

    # When: another execution runs, then the same execution is retried
    run(aws, spark, argv(version, execution_id="arn:aws:states:us-east-1:123:execution:sm:exec-2"))
    again = run(aws, spark, argv(version, execution_id="arn:aws:states:us-east-1:123:execution:sm:exec-2"))

    # Then: both versions are partitions; the retry overwrote rather than duplicated
    partitions = glue.get_partitions(DatabaseName=DATABASE, TableName=TABLE)["Partitions"]
    assert sorted(tuple(p["Values"]) for p in partitions) == sorted(
        (version_id, name) for version_id in ("exec-1", "exec-2") for name in SPLITS
    )
    assert again["version"] == "exec-2"
    assert len(parquet_rows(s3, CURATED, "curated/dataset=churn/version=exec-2/")) == again["rows"]["valid"]
    table = glue.get_table(DatabaseName=DATABASE, Name=TABLE)["Table"]
    assert table["Parameters"]["latest_version"] == "exec-2"
    manifest = read_json(s3, CURATED, "manifests/churn/latest.json")
    assert manifest["version"] == "exec-2"
    assert manifest["files"]["train"] == f"s3://{CURATED}/curated/dataset=churn/version=exec-2/split=train/"


def test_the_gate_fails_the_run_and_keeps_the_data_out(aws: dict[str, Any], spark: Any) -> None:
    # Given: an upload with 20% bad rows
    s3, glue = aws["s3"], aws["glue"]
    body = to_csv_bytes(corrupt_with_defects(generate(1_000, seed=3), 0.2, seed=1, schema=CHURN_SCHEMA)[0])
    version = upload(s3, body)

    # When / Then: the run raises with a machine-readable reason first
    with pytest.raises(EtlJobError) as error:
        run(aws, spark, argv(version))
    message = str(error.value)
    assert message.startswith("QualityGateFailed: rejected share 0.2000 > 0.05 (200 of 1000 rows)")
    # and nothing is published: no data objects, no table, no manifest
    prefix = "curated/dataset=churn/version=exec-1/"
    assert keys(s3, CURATED, "curated/") == [f"{prefix}_quality_report.json"]
    assert keys(s3, CURATED, "manifests/") == []
    assert glue.get_tables(DatabaseName=DATABASE)["TableList"] == []
    # but the report and the quarantine explain why
    report = read_json(s3, CURATED, f"{prefix}_quality_report.json")
    assert report["gate"]["passed"] is False
    assert report["output"]["status"] == "FAILED"
    assert sum(report["rejects_by_reason"].values()) == 200
    assert len(rejected_rows(s3, CURATED, "quarantine/dataset=churn/version=exec-1/")) == 200
    # and the raw version is intact
    assert_raw_intact(s3, body, version)


def test_a_malformed_file_is_quarantined_as_a_whole(aws: dict[str, Any], spark: Any) -> None:
    # Given: a semicolon-separated upload
    s3 = aws["s3"]
    body = to_csv_bytes(generate(50, seed=1)).replace(b",", b";")
    version = upload(s3, body)

    # When / Then
    with pytest.raises(EtlJobError) as error:
        run(aws, spark, argv(version))
    assert str(error.value).startswith("MalformedFile: delimiter: the header is one column")
    # and a copy of the file and its reason sit in quarantine; the report says why
    quarantine = "quarantine/dataset=churn/version=exec-1/"
    assert keys(s3, CURATED, "quarantine/") == [f"{quarantine}_reason.json", f"{quarantine}upload.csv"]
    assert s3.get_object(Bucket=CURATED, Key=f"{quarantine}upload.csv")["Body"].read() == body
    reason = read_json(s3, CURATED, f"{quarantine}_reason.json")
    assert reason["reason_code"] == "delimiter"
    assert reason["source"]["version_id"] == version
    report = read_json(s3, CURATED, "curated/dataset=churn/version=exec-1/_quality_report.json")
    assert report["malformed"]["reason_code"] == "delimiter"
    assert keys(s3, CURATED, "manifests/") == []
    assert_raw_intact(s3, body, version)


def test_the_job_reads_the_requested_version_not_the_latest(aws: dict[str, Any], spark: Any) -> None:
    # Given: two versions of the same key, the older one with 500 rows
    s3 = aws["s3"]
    old = upload(s3, to_csv_bytes(generate(500, seed=1)))
    upload(s3, to_csv_bytes(generate(800, seed=2)))

    # When
    lineage = run(aws, spark, argv(old))

    # Then
    assert lineage["source"]["version_id"] == old
    assert lineage["rows"]["input"] == 500


def test_a_missing_raw_version_is_reported(aws: dict[str, Any], spark: Any) -> None:
    upload(aws["s3"], b"x")
    with pytest.raises(EtlJobError) as error:
        run(aws, spark, argv("no-such-version"))
    assert str(error.value).startswith(f"RawObjectUnavailable: s3://{RAW}/{KEY} (version no-such-version)")


def test_parquet_uploads_and_separate_quarantine_and_report_buckets(aws: dict[str, Any], spark: Any) -> None:
    # Given: a Parquet upload and dedicated quarantine/report buckets
    s3 = aws["s3"]
    s3.create_bucket(Bucket="quarantine-bucket")
    s3.create_bucket(Bucket="report-bucket")
    key = "datasets/churn/upload.parquet"
    df, _ = corrupt_with_defects(generate(1_000, seed=6), 0.01, seed=2, schema=CHURN_SCHEMA)
    version = upload(s3, to_parquet_bytes(df), key=key)

    # When: the job runs with the Spark default parallelism
    arguments = argv(version, key=key, quarantine_bucket="quarantine-bucket", report_bucket="report-bucket")
    at = arguments.index("--partitions")
    del arguments[at : at + 2]
    lineage = run(aws, spark, arguments)

    # Then
    assert lineage["source"]["format"] == "parquet"
    assert lineage["rows"] == {"input": 1_000, "valid": 990, "rejected": 10}
    assert lineage["spark_partitions"] == 2
    assert lineage["report_uri"] == "s3://report-bucket/curated/dataset=churn/version=exec-1/_quality_report.json"
    assert "quarantine/dataset=churn/version=exec-1/_reason.json" in keys(s3, "quarantine-bucket")
    assert len(rejected_rows(s3, "quarantine-bucket", "quarantine/")) == 10
    assert read_json(s3, "report-bucket", "curated/dataset=churn/version=exec-1/_quality_report.json")["gate"]["passed"]


# ---- parity: the Lambda ETL of a small upload (lambdas/etl) writes what the Glue job writes ----------------------


def _lambda_etl(aws: dict[str, Any], key: str, version: str, size: int, dataset: str) -> dict[str, Any]:
    settings = etl_logic.EtlSettings(curated_bucket=CURATED, database=DATABASE, max_bytes=size)
    upload_ = etl_logic.Upload(bucket=RAW, key=key, version_id=version, size=size)
    return etl_logic.run(
        execution="exec-1",
        dataset=dataset,
        upload=upload_,
        settings=settings,
        run_id="request-1",
        job_name="mlops-test-etl",
        s3=aws["s3"],
        glue=aws["glue"],
    )


def _engine_free(document: Any) -> Any:
    """A JSON document without what names the engine or the clock (the run's ``job`` block, ``engine``,
    ``spark_partitions``), its data files named by their folder (the Lambda writes ``split=<s>/part-00000.parquet``
    and ``rejected.jsonl``, the Glue job's executors Parquet and JSON lines parts in ``split=<s>/`` and
    ``rejected/``)."""
    if isinstance(document, dict):
        return {k: _engine_free(v) for k, v in document.items() if k not in ("job", "engine", "spark_partitions")}
    if isinstance(document, list):
        return [_engine_free(v) for v in document]
    if isinstance(document, str):
        return re.sub(r"(/split=[^/]+/)part-00000\.parquet$", r"\1", document).replace("rejected.jsonl", "rejected/")
    return document


def _outputs(aws: dict[str, Any]) -> dict[str, Any]:
    """Every output of a run, engine-free: each split's rows (however many Parquet parts), the rejected rows in
    record order, the JSON documents (``_engine_free``), any other object's bytes, and the catalog's partitions; then
    the bucket and the catalog are emptied for the other engine."""
    s3, glue = aws["s3"], aws["glue"]
    found: dict[str, Any] = {}
    for folder in sorted({key.rsplit("/", 1)[0] for key in keys(s3, CURATED) if key.endswith(".parquet")}):
        found[f"{folder}/"] = parquet_rows(s3, CURATED, f"{folder}/")
    for folder in sorted({key.rsplit("rejected", 1)[0] for key in keys(s3, CURATED) if "/rejected" in key}):
        found[f"{folder}rejected/"] = rejected_rows(s3, CURATED, folder)
    for key in keys(s3, CURATED):
        name = key.rsplit("/", 1)[-1]
        if key.endswith(".json"):
            found[key] = _engine_free(json.loads(s3.get_object(Bucket=CURATED, Key=key)["Body"].read()))
        elif not (key.endswith(".parquet") or "/rejected" in key or name == "_SUCCESS"):
            found[key] = s3.get_object(Bucket=CURATED, Key=key)["Body"].read()
        s3.delete_object(Bucket=CURATED, Key=key)
    for table in glue.get_tables(DatabaseName=DATABASE)["TableList"]:
        partitions = glue.get_partitions(DatabaseName=DATABASE, TableName=table["Name"])["Partitions"]
        found[f"table:{table['Name']}"] = {
            "columns": table["StorageDescriptor"]["Columns"],
            "partitions": sorted((p["Values"], p["StorageDescriptor"]["Location"]) for p in partitions),
        }
        glue.delete_table(DatabaseName=DATABASE, Name=table["Name"])
    return found


def _exact_curated(raw: bytes, dataset: str) -> pd.DataFrame:
    """The curated rows of one process (the exact side of the report's quantile tolerance)."""
    try:
        return tf.run_transform(raw, "csv", dataset_schema(dataset), gate(dataset)).curated
    except tf.MalformedFileError:
        return pd.DataFrame()


def _numbers_only_rejects() -> bytes:
    """Rejects whose numbers all parse (the pandas reader's fast path: rejected values are numbers in quarantine)
    and a record with a field too many (its values stay text)."""
    df = generate(1_000, seed=9)
    df.loc[[3, 500], "age"] = 500
    lines = to_csv_bytes(df).decode().splitlines()
    lines[42] += ",1"
    return ("\n".join(lines) + "\n").encode()


def _tickets() -> bytes:
    return (Path(__file__).resolve().parents[2] / "pipelines" / "data" / "sample" / "tickets.csv").read_bytes()


@pytest.mark.parametrize(
    ("case", "dataset", "body"),
    [
        ("the churn sample", "churn", lambda: to_csv_bytes(generate(5_000, seed=7))),
        (
            "rejects (3%, every defect kind), gzip-compressed (.csv.gz)",
            "churn",
            lambda: gzip.compress(
                to_csv_bytes(corrupt_with_defects(generate(2_000, seed=8), 0.03, seed=2, schema=CHURN_SCHEMA)[0])
            ),
        ),
        ("out-of-range numbers and a field too many", "churn", _numbers_only_rejects),
        ("no key, multiclass string labels, missing values", "tickets", _tickets),
        (
            "a failed gate (20% rejects)",
            "churn",
            lambda: to_csv_bytes(corrupt_with_defects(generate(1_000, seed=3), 0.2, seed=1, schema=CHURN_SCHEMA)[0]),
        ),
        ("a malformed file", "churn", lambda: to_csv_bytes(generate(50, seed=1)).replace(b",", b";")),
    ],
)
def test_the_lambda_etl_writes_what_the_glue_job_writes(
    aws: dict[str, Any], spark: Any, case: str, dataset: str, body: Any
) -> None:
    # Given: one upload of the dataset
    raw = body()
    key = f"datasets/{dataset}/upload.csv" + (".gz" if raw.startswith(tf.GZIP_MAGIC) else "")
    version = upload(aws["s3"], raw, key)

    # When: the Glue job runs it on three Spark partitions, then (its outputs set aside) the Lambda ETL in one process
    outcomes: list[tuple[Any, dict[str, Any]]] = []
    for engine in ("glue", "lambda"):
        try:
            if engine == "glue":
                result: Any = run(aws, spark, argv(version, key=key, dataset=dataset, partitions="3"))
            else:
                result = _lambda_etl(aws, key, version, len(raw), dataset)["lineage"]
            outcome: Any = _engine_free(result)
        except EtlJobError as error:
            outcome = f"EtlJobError: {error}"
        outcomes.append((outcome, _outputs(aws)))

    # Then: the same lineage or the same machine-readable failure, and the same outputs: curated rows per split,
    # rejected rows with their reasons and record numbers, quarantine, the manifest and the catalog's partitions;
    # the quality report the same but for the documented tolerance of Spark's quantile sketch
    (glue_outcome, glue_outputs), (lambda_outcome, lambda_outputs) = outcomes
    assert lambda_outcome == glue_outcome, case
    assert sorted(lambda_outputs) == sorted(glue_outputs), case
    for name, written in glue_outputs.items():
        if isinstance(written, pd.DataFrame):  # row for row (NaN equal to NaN)
            pd.testing.assert_frame_equal(written, lambda_outputs[name], obj=f"{case}: {name}")
        elif name.endswith("_quality_report.json"):
            assert_reports_match(written, lambda_outputs[name], _exact_curated(raw, dataset), f"{case}: report")
        else:
            assert written == lambda_outputs[name], f"{case}: {name}"
