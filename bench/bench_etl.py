"""ETL throughput against a pyarrow baseline.

``run_transform`` (CSV parse, validation, features, split, report, gate) plus the per-split Parquet
write is what the Glue job applies to each partition. The reference reads the same CSV bytes with
pyarrow and writes them back as one Parquet file. The ETL must keep at least ``BUDGET`` of the
reference throughput; each side takes the best of ``repeats`` runs, interleaved so that machine
noise hits both. ``python -m bench etl`` runs it (``--quick``: 20,000 rows, one repeat).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from bench.harness import Budget, Result
from pipelines.data.generator import generate, to_csv_bytes
from pipelines.etl.transforms import run_transform, split_parquet
from stacks.config import QualityGate
from stacks.datasets import dataset_schema

BUDGET = 0.25  # etl rows/s divided by pyarrow rows/s
RATIO_BUDGET = Budget(on="ratio", op=">=", limit=BUDGET)
FULL_ROWS, QUICK_ROWS = 1_000_000, 20_000


def _seconds(step: Callable[[], Any]) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def measure(rows: int = FULL_ROWS, repeats: int = 3, seed: int = 11) -> dict[str, Any]:
    """Measure both paths on ``rows`` generated rows; returns rates, ratio and the verdict."""
    raw = to_csv_bytes(generate(rows, seed=seed))
    gate = QualityGate()

    def etl() -> None:
        result = run_transform(raw, "csv", dataset_schema("churn"), gate, source={"bench": True})
        if not result.gate_passed or len(result.curated) != rows:
            raise RuntimeError(f"bench data did not pass the ETL cleanly: {result.gate_reasons}")
        split_parquet(result.curated, dataset_schema("churn"))

    def reference() -> None:
        table = pacsv.read_csv(io.BytesIO(raw))
        pq.write_table(table, io.BytesIO())

    etl_times, reference_times = [], []
    for _ in range(repeats):
        etl_times.append(_seconds(etl))
        reference_times.append(_seconds(reference))
    etl_rate = rows / min(etl_times)
    reference_rate = rows / min(reference_times)
    ratio = etl_rate / reference_rate
    return {
        "rows": rows,
        "csv_mb": round(len(raw) / 1e6, 1),
        "etl_seconds": round(min(etl_times), 3),
        "etl_rows_per_s": round(etl_rate),
        "pyarrow_seconds": round(min(reference_times), 3),
        "pyarrow_rows_per_s": round(reference_rate),
        "ratio": round(ratio, 3),
        "budget": BUDGET,
        "passed": ratio >= BUDGET,
    }


def run(quick: bool = False) -> list[Result]:
    """The harness entry point: one row, ETL rows/s against pyarrow rows/s on the same CSV."""
    measured = measure(QUICK_ROWS if quick else FULL_ROWS, repeats=1 if quick else 3)
    return [
        Result.measured(
            "etl",
            figure=measured["etl_rows_per_s"],
            unit="rows/s",
            reference=measured["pyarrow_rows_per_s"],
            reference_label="pyarrow CSV->Parquet",
            budget=RATIO_BUDGET,
            note=f"{measured['rows']:,} rows, {measured['csv_mb']} MB CSV",
            details=measured,
        )
    ]
