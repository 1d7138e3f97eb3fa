"""``etl_scale``: the Glue script on local Spark at two sizes, with a small ``spark.driver.memory``.

Issue 19's budgets, as ratios within one run: throughput at the large size at least 0.75x the throughput at the small
one, and the Python driver process's peak RSS at the large size under 1.5x its peak at the small one (in local mode
the JVM runs the executors too, so the Python driver is what must not grow with the file); the large run completes
with ``spark.driver.memory=512m``. The rows/s of pyarrow's CSV->Parquet on the same bytes are reported beside.

Each size runs the job in a fresh interpreter (``python -m bench.bench_etl_scale --child ...``): its peak RSS
(VmHWM, reset when the run starts) is the run's alone. A moto server in this process holds the raw object (not the
job), and Spark's S3 paths are staged as the local Glue runner stages them (``pipelines.etl.spark_paths``). The CSV
is generated here, chunk by chunk, into a temporary file. Full: 1,000,000 and 10,000,000 rows; ``--quick``:
20,000 and 200,000.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import Budget, Result

THROUGHPUT_BUDGET = Budget(on="ratio", op=">=", limit=0.75)
RSS_BUDGET = Budget(on="ratio", op="<", limit=1.5)
FULL_SIZES, QUICK_SIZES = (1_000_000, 10_000_000), (20_000, 200_000)
DRIVER_MEMORY = "512m"
CHUNK = 250_000
RAW, CURATED, KEY = "raw", "curated", "datasets/churn/upload.csv"


def write_csv(rows: int, path: Path) -> None:
    """Generated churn rows (distinct keys: each chunk's seed is in its ids), streamed to ``path``."""
    from pipelines.data.generator import generate, to_csv_bytes

    with path.open("wb") as out:
        for i, start in enumerate(range(0, rows, CHUNK)):
            body = to_csv_bytes(generate(min(CHUNK, rows - start), seed=1000 + i))
            out.write(body if i == 0 else body.split(b"\n", 1)[1])


def pyarrow_rate(path: Path, rows: int) -> float:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    started = time.perf_counter()
    pq.write_table(pacsv.read_csv(path), path.with_suffix(".parquet"))
    return rows / (time.perf_counter() - started)


def child(rows: int, endpoint: str, workdir: str) -> dict[str, Any]:
    """One job run in this (fresh) process; its seconds and this process's peak RSS."""
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PYSPARK_PYTHON": sys.executable,
            "LOCAL_SPARK_S3_STAGING": f"{workdir}/spark-s3-{rows}",
        }
    )
    import boto3
    from pyspark.sql import SparkSession

    from pipelines import platform as platform_module
    from pipelines.etl import glue_job

    document = Path(workdir) / "datasets.json"  # written by the parent: the child imports no stacks module
    platform_module.document_path = lambda: document  # type: ignore[assignment,return-value]
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", DRIVER_MEMORY)
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    arguments = {"JOB_NAME": "bench", "dataset": "churn", "raw_bucket": RAW, "raw_key": f"{rows}/{KEY}"}
    arguments |= {"curated_bucket": CURATED, "database": "bench", "execution_id": f"rows-{rows}"}
    before = _rss_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS: not the peak inherited from the fork
    started = time.perf_counter()
    lineage = glue_job.main(
        [token for name, value in arguments.items() for token in (f"--{name}", value)],
        spark=spark,
        s3=boto3.client("s3"),
        glue=boto3.client("glue"),
    )
    seconds = time.perf_counter() - started
    peak = _rss_mb("VmHWM")
    return {
        "rows": rows,
        "valid": lineage["rows"]["valid"],
        "seconds": seconds,
        "peak_rss_mb": peak,
        "rss_before_run_mb": before,
    }


def _rss_mb(field: str) -> float:
    """``VmRSS`` or ``VmHWM`` (the peak since the last reset) of this process, from /proc (Linux). Not
    ``getrusage``: a child's ``ru_maxrss`` starts at its parent's RSS when it was forked."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def measure(sizes: tuple[int, int]) -> dict[int, dict[str, Any]]:
    import boto3
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    runs: dict[int, dict[str, Any]] = {}
    try:
        s3, glue = (
            boto3.client(
                service,
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
            )
            for service in ("s3", "glue")
        )
        s3.create_bucket(Bucket=RAW)
        s3.create_bucket(Bucket=CURATED)
        glue.create_database(DatabaseInput={"Name": "bench"})
        with tempfile.TemporaryDirectory(prefix="etl-scale-") as workdir:
            from stacks.config import load_config
            from stacks.datasets import dataset_schema
            from stacks.platform_document import build_platform

            document = build_platform(load_config("dev"), [dataset_schema("churn")])
            (Path(workdir) / "datasets.json").write_text(document.to_json())
            for rows in sizes:
                path = Path(workdir) / f"{rows}.csv"
                write_csv(rows, path)
                s3.upload_file(str(path), RAW, f"{rows}/{KEY}")
                reference = pyarrow_rate(path, rows)
                size_mb = path.stat().st_size / 1e6
                path.unlink()
                path.with_suffix(".parquet").unlink()
                command = [sys.executable, "-m", "bench.bench_etl_scale", "--child", str(rows), endpoint, workdir]
                done = subprocess.run(
                    command, capture_output=True, text=True, check=False, cwd=Path(__file__).parents[1]
                )
                lines = [line for line in done.stdout.splitlines() if line.startswith('{"rows"')]
                if done.returncode or not lines:
                    raise RuntimeError(f"etl_scale child for {rows} rows failed: {done.stderr[-2000:]}")
                runs[rows] = {**json.loads(lines[-1]), "csv_mb": round(size_mb, 1), "pyarrow_rows_per_s": reference}
    finally:
        server.stop()
    return runs


def run(quick: bool = False) -> list[Result]:
    small, large = QUICK_SIZES if quick else FULL_SIZES
    runs = measure((small, large))
    rate = {rows: runs[rows]["rows"] / runs[rows]["seconds"] for rows in runs}
    details = {
        str(rows): {k: (round(v, 2) if isinstance(v, float) else v) for k, v in run_.items()}
        for rows, run_ in runs.items()
    }
    versus = ", ".join(
        f"{rows:,} rows: {rate[rows]:,.0f} rows/s vs pyarrow {runs[rows]['pyarrow_rows_per_s']:,.0f}" for rows in runs
    )
    return [
        Result.measured(
            "etl_scale_throughput",
            figure=rate[large],
            unit="rows/s",
            reference=rate[small],
            reference_label=f"rows/s at {small:,} rows",
            budget=THROUGHPUT_BUDGET,
            note=f"{large:,} rows with spark.driver.memory={DRIVER_MEMORY}; {versus}",
            details=details,
        ),
        Result.measured(
            "etl_scale_driver_rss",
            figure=runs[large]["peak_rss_mb"],
            unit="MB",
            reference=runs[small]["peak_rss_mb"],
            reference_label=f"Python driver peak RSS at {small:,} rows",
            budget=RSS_BUDGET,
            note=f"the Python driver process at {large:,} rows ({runs[large]['csv_mb']} MB CSV)",
            details=details,
        ),
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(int(sys.argv[2]), sys.argv[3], sys.argv[4])), flush=True)
    else:
        for result in run(quick="--quick" in sys.argv):
            print(json.dumps(result.to_json(), default=str))
