"""`python -m bench --quick` end to end on the cheap benchmarks: real registry, real reports, exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_quick_run_of_a_subset_writes_a_passing_report(tmp_path: Path) -> None:
    # Given the real registry / When the ETL and asset benchmarks run in quick mode through the entry point
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "etl", "lambda_asset", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Then both rows are measured, the table is printed and the exit code follows the verdicts
    report = json.loads((tmp_path / "results.json").read_text())
    rows = {r["name"]: r for r in report["results"]}
    assert report["selected"] == ["etl", "lambda_asset"]
    assert set(rows) == {"etl", "lambda_asset"}
    assert rows["etl"]["details"]["rows"] == 20_000
    assert rows["etl"]["reference_label"] == "pyarrow CSV->Parquet"
    assert rows["etl"]["ratio"] > 0
    assert rows["lambda_asset"]["unit"] == "bytes"
    assert "| benchmark | figure | reference (same run) | ratio | budget | result |" in done.stdout
    assert done.returncode == (0 if report["passed"] else 1), done.stderr
    assert (tmp_path / "results.svg").read_text().startswith("<svg")


def test_every_issue_budget_has_a_registry_entry() -> None:
    # Given the registry / Then each budget of the issue is there with its limit
    from bench.__main__ import REGISTRY

    budgets = {row: (b.on, b.op, b.limit) for entry in REGISTRY for row, b in entry.budgets}
    assert budgets == {
        "etl": ("ratio", ">=", 0.25),
        # issue 19: the Glue script on local Spark, 10M rows against 1M in one run
        "etl_scale_throughput": ("ratio", ">=", 0.75),
        "etl_scale_driver_rss": ("ratio", "<", 1.5),
        "inference_100_rows": ("ratio", "<=", 2.0),
        "inference_1_row_p99": ("figure", "<", 5.0),
        # issue 18: the other built-in estimators and a dataset's own script, handler within 2x its bare predict
        "inference_100_rows_random_forest": ("ratio", "<=", 2.0),
        "inference_100_rows_linear": ("ratio", "<=", 2.0),
        "inference_100_rows_entry_point": ("ratio", "<=", 2.0),
        "inference_100_rows_entry_point_uncompiled": ("ratio", "<=", 2.0),
        "drift": ("ratio", "<=", 3.0),
        "cold_start": ("ratio", "<=", 2.5),
        "lambda_asset": ("figure", "<", 1_000_000),
        "lifecycle": ("ratio", "<=", 1.5),
        "synth_warm": ("figure", "<=", 15.0),
        "synth_datasets": ("ratio", "<=", 2.0),  # issue 16: warm synth of 20 datasets within 2x that of 1
        "test_suite": ("figure", "<=", 600.0),
        "timeline_dev_update": ("figure", "<=", 15.0),  # issue 25: dev update, upload -> 100% (model, typical)
    }
    assert {entry.name for entry in REGISTRY if entry.full_only} == {"synth", "synth_datasets", "test_suite"}
