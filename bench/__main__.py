"""``python -m bench [NAME ...] [--quick] [--skip-suite] [--out DIR]``: every benchmark, one report.

Writes ``bench/results.json``, ``bench/results.md`` (also printed) and ``bench/results.svg``; exits 1 when a
budget is broken or a benchmark could not run. Benchmark modules are imported only when they run, so a
missing or half-written one never hides the others. See docs/performance.md.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # before anything imports aws_cdk

from bench.bench_asset import BUDGET as ASSET_BUDGET
from bench.bench_coldstart import BUDGET as COLD_START_BUDGET
from bench.bench_devloop import DATASETS_SYNTH_BUDGET, SUITE_BUDGET, SYNTH_BUDGET
from bench.bench_etl_scale import RSS_BUDGET as SCALE_RSS_BUDGET
from bench.bench_etl_scale import THROUGHPUT_BUDGET as SCALE_THROUGHPUT_BUDGET
from bench.bench_timeline import BUDGET as TIMELINE_BUDGET
from bench.external import DRIFT_BUDGET, LIFECYCLE_BUDGET
from bench.harness import Benchmark, Budget, main

REGISTRY: tuple[Benchmark, ...] = (
    Benchmark(
        "etl",
        "ETL transform + Parquet vs pyarrow CSV->Parquet, 1,000,000 rows",
        "bench.bench_etl:run",
        (("etl", Budget(on="ratio", op=">=", limit=0.25)),),
    ),
    Benchmark(
        "etl_scale",
        "the Glue script on local Spark, 1M and 10M rows, spark.driver.memory=512m: throughput and driver RSS ratios",
        "bench.bench_etl_scale:run",
        (
            ("etl_scale_throughput", SCALE_THROUGHPUT_BUDGET),
            ("etl_scale_driver_rss", SCALE_RSS_BUDGET),
        ),
    ),
    Benchmark(
        "inference",
        "inference handler vs bare predict_proba, 1 and 100 rows; 100 rows of the other estimators and scripts",
        "bench.bench_inference:run",
        (
            ("inference_100_rows", Budget(on="ratio", op="<=", limit=2.0)),
            ("inference_1_row_p99", Budget(on="figure", op="<", limit=5.0, unit="ms")),
            # issue 18: a non-default model, handler <= 2.0x its own bare predict (bench_inference.OTHER_MODELS)
            *(
                (f"inference_100_rows_{model}", Budget(on="ratio", op="<=", limit=2.0))
                for model in ("random_forest", "linear", "entry_point", "entry_point_uncompiled")
            ),
        ),
    ),
    Benchmark(
        "drift",
        "drift computation vs numpy histograms, 1,000,000 records x 20 features",
        "bench.external:drift",
        (("drift", DRIFT_BUDGET),),
    ),
    Benchmark(
        "cold_start",
        "import time of every lambdas/*/handler.py in a fresh interpreter vs import boto3",
        "bench.bench_coldstart:run",
        (("cold_start", COLD_START_BUDGET),),
    ),
    Benchmark(
        "lambda_asset",
        "zipped size of the Lambda code asset",
        "bench.bench_asset:run",
        (("lambda_asset", ASSET_BUDGET),),
    ),
    Benchmark(
        "lifecycle",
        "one local-cloud pipeline execution on 100,000 rows vs ETL + training called directly",
        "bench.external:lifecycle",
        (("lifecycle", LIFECYCLE_BUDGET),),
    ),
    Benchmark(
        "timeline",
        "issue 25's cloud timeline on paper: upload -> 100% traffic -> done (dev, prod; first deployment, update)",
        "bench.bench_timeline:run",
        (("timeline_dev_update", TIMELINE_BUDGET),),
    ),
    Benchmark("synth", "warm cdk synth", "bench.bench_devloop:synth", (("synth_warm", SYNTH_BUDGET),), full_only=True),
    Benchmark(
        "synth_datasets",
        "warm cdk synth of 20 declared datasets vs 1",
        "bench.bench_devloop:synth_datasets",
        (("synth_datasets", DATASETS_SYNTH_BUDGET),),
        full_only=True,
    ),
    Benchmark(
        "test_suite",
        "full test suite on 2 workers",
        "bench.bench_devloop:suite",
        (("test_suite", SUITE_BUDGET),),
        full_only=True,
    ),
)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], REGISTRY))
