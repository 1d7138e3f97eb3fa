"""The Glue entry point's pure parts: arguments, version labels, partitioning and the executor function."""

from __future__ import annotations

import dataclasses
import json
import sys
import types
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines.etl import glue_job
from pipelines.etl import transforms as tf
from stacks.config import load_config
from tests.samples import CHURN_SCHEMA

REQUIRED = {
    "JOB_NAME": "mlops-dev-etl",
    "raw_bucket": "raw",
    "raw_key": "datasets/churn/file.csv",
    "curated_bucket": "curated",
    "database": "mlops_dev",
    "dataset": "churn",
    "execution_id": "arn:aws:states:us-east-1:123456789012:execution:mlops-dev-training-pipeline:run-42",
}


def command_line(values: dict[str, str], *extra: str) -> list[str]:
    return [
        "glue_job.py",
        *(token for name, value in values.items() for token in (f"--{name}", value)),
        *extra,
    ]


def test_arguments_resolve_with_defaults_and_ignore_glue_extras() -> None:
    # Given: the required arguments plus what Glue adds on its own
    argv = command_line(REQUIRED, "--job-bookmark-option", "job-bookmark-disable", "--TempDir", "s3://tmp/")

    # When
    args = glue_job.parse_job_args(argv)

    # Then: defaults fill the optional arguments and the inputs are decoded
    assert args.raw_version_id is None
    assert args.quarantine_bucket == args.report_bucket == "curated"
    assert args.quarantine_prefix == "quarantine"
    assert args.curated_prefix == "curated"
    assert args.file_format == "csv"
    assert args.partitions == 0
    # the dataset's schema, rules and table come from the platform document shipped with the job
    assert args.schema == CHURN_SCHEMA
    assert args.gate == glue_job.GateParams(**dataclasses.asdict(load_config("dev").for_dataset(CHURN_SCHEMA).quality))
    assert args.table == "churn"
    assert args.execution_id == "run-42"
    assert args.version_prefix == "curated/dataset=churn/version=run-42/"
    assert args.report_key == "curated/dataset=churn/version=run-42/_quality_report.json"
    assert args.quarantine_version_prefix == "quarantine/dataset=churn/version=run-42/"


def test_optional_arguments_override_the_defaults() -> None:
    # Given: every optional argument, one in --name=value form
    optional = {
        "raw_version_id": "v1",
        "curated_prefix": "/lake/",
        "quarantine_bucket": "q",
        "quarantine_prefix": "bad",
        "report_bucket": "r",
        "file_format": "parquet",
    }
    argv = [*command_line({**REQUIRED, **optional}), "--partitions=8"]

    # When
    args = glue_job.parse_job_args(argv)

    # Then
    assert (args.raw_version_id, args.quarantine_bucket, args.report_bucket) == ("v1", "q", "r")
    assert args.curated_prefix == "lake"
    assert args.quarantine_prefix == "bad"
    assert args.file_format == "parquet"
    assert args.partitions == 8


def test_an_undeclared_dataset_fails_the_run_naming_the_declared_ones() -> None:
    # Given: a run for a dataset the shipped platform document does not declare
    argv = command_line({**REQUIRED, "dataset": "weather"})

    # When / Then: the run fails with the reason Glue reports as its ErrorMessage
    with pytest.raises(glue_job.EtlJobError) as raised:
        glue_job.parse_job_args(argv)
    assert str(raised.value).startswith("UnknownDataset: ")
    assert "dataset 'weather' is not declared in this stage (declared datasets: churn, energy, tickets)" in str(
        raised.value
    )


def test_a_missing_required_argument_stops_with_its_name(capsys: pytest.CaptureFixture[str]) -> None:
    argv = command_line({k: v for k, v in REQUIRED.items() if k != "raw_key"})
    with pytest.raises(SystemExit):
        glue_job.parse_job_args(argv)
    assert "--raw_key" in capsys.readouterr().err


def test_on_glue_get_resolved_options_receives_required_and_present_optional_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given: a stand-in for awsglue.utils
    calls: list[tuple[list[str], list[str]]] = []

    def get_resolved_options(argv: list[str], names: list[str]) -> dict[str, str]:
        calls.append((argv, names))
        return {name: f"value-of-{name}" for name in names}

    utils = types.ModuleType("awsglue.utils")
    utils.getResolvedOptions = get_resolved_options  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "awsglue", types.ModuleType("awsglue"))
    monkeypatch.setitem(sys.modules, "awsglue.utils", utils)
    argv = command_line({**REQUIRED, "raw_version_id": "v7"})

    # When
    resolved = glue_job.resolve_args(argv)

    # Then: only options present on the command line are asked for; the rest get defaults
    assert calls == [(argv, [*glue_job.REQUIRED_ARGS, "raw_version_id"])]
    assert resolved["raw_version_id"] == "value-of-raw_version_id"
    assert resolved["quarantine_prefix"] == "quarantine"


@pytest.mark.parametrize(
    ("execution_id", "label"),
    [
        ("arn:aws:states:us-east-1:1:execution:sm:abc-123", "abc-123"),
        ("manual run/2024 01 01", "manual-run-2024-01-01"),
        ("v1.2_x", "v1.2_x"),
    ],
)
def test_version_labels_are_partition_safe(execution_id: str, label: str) -> None:
    assert glue_job.version_label(execution_id) == label


def test_an_empty_version_label_is_refused() -> None:
    with pytest.raises(ValueError, match="empty version label"):
        glue_job.version_label("arn:aws:states:::")


def test_gate_params_need_every_field() -> None:
    with pytest.raises(KeyError, match="split_seed"):
        glue_job.GateParams.from_json(
            json.dumps({"max_bad_row_share": 0.1, "min_rows": 1, "validation_share": 0.1, "test_share": 0.1})
        )


@pytest.mark.parametrize(
    ("dtype", "glue_type"),
    [
        (pd.StringDtype("pyarrow"), "string"),
        (pd.CategoricalDtype(["a"]), "string"),
        (np.dtype("float64"), "double"),
        (np.dtype("int64"), "bigint"),
        (np.dtype("bool"), "boolean"),
    ],
)
def test_glue_types(dtype: Any, glue_type: str) -> None:
    assert tf.glue_type(dtype) == glue_type


def test_an_unmapped_dtype_is_an_error() -> None:
    with pytest.raises(TypeError, match="no Glue type"):
        tf.glue_type(np.dtype("datetime64[ns]"))
