"""The Lambda asset benchmark archives exactly the factory's packages; pytest summaries are parsed."""

from __future__ import annotations

import subprocess

import pytest

from bench import bench_devloop
from bench.bench_asset import measure, run
from bench.bench_devloop import failed_tests, parse_summary


def test_the_asset_holds_only_python_files_of_the_factory_packages() -> None:
    # Given the factory's packages (lambdas, the schema, the platform document's reader, the data policy, the ETL's
    # row rules for labelled production rows and its driver for the Lambda ETL, the A/B experiments' statistics) /
    # When archived as CDK bundles them
    size = measure()
    # Then the zip is smaller than its files, holds no non-Python file, and the handler and schema are in it
    assert size.packages == [
        "lambdas",
        "pipelines/schema.py",
        "pipelines/platform.py",
        "pipelines/data_policy.py",
        "pipelines/features.py",
        "pipelines/etl/__init__.py",
        "pipelines/etl/transforms.py",
        "pipelines/etl/driver.py",
        "pipelines/experiments",
    ]
    assert 0 < size.zip_bytes < size.uncompressed_bytes
    assert size.non_python_files == []
    assert size.files >= 4


def test_the_asset_row_checks_the_zip_size_against_1_mb() -> None:
    # Given the real asset / When the benchmark runs / Then the budget applies to the zipped bytes themselves
    (row,) = run(quick=True)
    assert row.name == "lambda_asset"
    assert row.budget is not None and (row.budget.on, row.budget.op, row.budget.limit) == ("figure", "<", 1_000_000)
    assert row.status == ("pass" if row.figure is not None and row.figure < 1_000_000 else "fail")


def test_parse_summary_reads_the_last_pytest_summary_line() -> None:
    # Given pytest -q output with failures / When parsed / Then every count is read, "error" normalised
    output = "....F\nFAILED tests/x.py::t - assert 1\n1 failed, 120 passed, 2 skipped, 1 error in 81.20s (0:01:21)\n"
    assert parse_summary(output) == {"failed": 1, "passed": 120, "skipped": 2, "errors": 1}
    assert parse_summary("no summary here") == {}


def test_failed_tests_reads_the_node_ids_of_the_short_summary() -> None:
    # Given pytest -ra output with a failure, an error and a repeat
    output = (
        "..F.E\n=========================== short test summary info ============================\n"
        "FAILED tests/e2e/test_faults.py::test_x[a-b] - AssertionError: assert 1 == 2\n"
        "ERROR tests/unit/test_y.py::test_z - RuntimeError: boom\n"
        "FAILED tests/e2e/test_faults.py::test_x[a-b] - AssertionError: assert 1 == 2\n"
        "1 failed, 3 passed, 1 error in 9.00s\n"
    )
    # When read / Then each test is named once, in order
    assert failed_tests(output) == ["tests/e2e/test_faults.py::test_x[a-b]", "tests/unit/test_y.py::test_z"]
    assert failed_tests("5 passed in 1.0s") == []


def test_the_suite_row_names_the_tests_that_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a suite run in which one test failed
    output = "F.\nFAILED tests/unit/test_a.py::test_flaky - assert 0\n1 failed, 918 passed in 200.00s\n"
    done = subprocess.CompletedProcess(args=[], returncode=1, stdout=output, stderr="")
    monkeypatch.setattr(bench_devloop, "_timed", lambda command, timeout: (200.0, done))
    # When the row is measured
    (row,) = bench_devloop.suite()
    # Then it fails and its note names the failed test (findable after the run)
    assert row.status == "fail"
    assert "failed: tests/unit/test_a.py::test_flaky" in row.note
    assert row.details["failed"] == ["tests/unit/test_a.py::test_flaky"]
