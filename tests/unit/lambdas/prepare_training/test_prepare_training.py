"""PrepareTraining: the dataset version to train on, the champion, and the run's job names."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.prepare_training import handler as prepare_handler
from lambdas.prepare_training import logic
from lambdas.shared.datasets import DatasetNotNamed
from pipelines.etl import driver
from pipelines.etl.driver import version_label as etl_version_label
from pipelines.evaluation.evaluate import find_model
from pipelines.platform import UnknownDataset
from pipelines.schema import Tuning, TuningRange
from tests.unit.lambdas.support import FakeContext

CURATED, ARTIFACTS = "curated-bucket", "artifacts-bucket"
GROUP = PREFIX = "mlops-dev-churn"  # churn's group and resource prefix in the dev platform document
EXECUTION = "day1-csv-0123456789abcdef"
JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # SageMaker's job name pattern
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"


def lineage(version: str, status: str = "SUCCEEDED") -> dict[str, Any]:
    prefix = f"s3://{CURATED}/curated/dataset=churn/version={version}/"
    return {
        "dataset": "churn",
        "version": version,
        "status": status,
        "source": {"bucket": "raw", "key": "datasets/churn/day1.csv", "version_id": "v1", "etag": "e", "size": 9},
        "rows": {"input": 5000, "valid": 4990, "rejected": 10},
        "rejected_share": 0.002,
        "splits": {"train": 3500, "validation": 745, "test": 745},
        "report_uri": f"{prefix}_quality_report.json",
        "quarantine_uri": None,
        "curated_prefix": prefix,
        "files": {s: f"{prefix}split={s}/part-00000.parquet" for s in ("train", "validation", "test")},
        "database": "mlops_test",
        "table": "churn",
        "partitions": [{"version": version, "split": s} for s in ("train", "validation", "test")],
    }


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3")
        for bucket in (CURATED, ARTIFACTS):
            s3.create_bucket(Bucket=bucket)
        sagemaker = boto3.client("sagemaker")
        for group in (GROUP, "mlops-dev-energy"):
            sagemaker.create_model_package_group(ModelPackageGroupName=group)
        environment = {"CURATED_BUCKET": CURATED, "ARTIFACTS_BUCKET": ARTIFACTS, "TRAINING_HYPERPARAMETERS": "{}"}
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        prepare_handler.settings.cache_clear()
        yield {"s3": s3, "sagemaker": sagemaker}
    prepare_handler.settings.cache_clear()


def write_report(s3: Any, execution: str, record: dict[str, Any]) -> None:
    key = f"curated/dataset=churn/version={etl_version_label(execution)}/_quality_report.json"
    s3.put_object(Bucket=CURATED, Key=key, Body=json.dumps({"gate": {"passed": True}, "output": record}))


def register(sagemaker: Any, status: str, version: str) -> str:
    return str(
        sagemaker.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus=status,
            InferenceSpecification={
                "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{ARTIFACTS}/models/{version}/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            CustomerMetadataProperties={"model_version": version},
        )["ModelPackageArn"]
    )


def invoke(execution: str, state: dict[str, Any]) -> dict[str, Any]:
    """The step of an execution of churn (unless ``state`` names another dataset)."""
    return dict(
        prepare_handler.handler({"execution": execution, "state": {"dataset": "churn", **state}}, FakeContext())
    )


def test_first_upload_without_a_champion_prepares_a_floor_only_run(aws: dict[str, Any], tmp_path: Path) -> None:
    # Given this execution's ETL report and an empty model package group
    write_report(aws["s3"], EXECUTION, lineage(EXECUTION))

    # When the step runs on an upload's state
    prepared = invoke(EXECUTION, {"upload": {"bucket": "raw", "key": "datasets/churn/day1.csv"}, "etl": {}})

    # Then $.prepared has exactly the contract's keys, the split prefixes and the lineage
    assert set(prepared) == {
        "model_version",
        "training_job_name",
        "evaluation_job_name",
        "curated",
        "champion",
        "champion_model_data",
        "evaluation_uri",
    }
    version_prefix = f"s3://{CURATED}/curated/dataset=churn/version={EXECUTION}/"
    assert prepared["curated"] == {
        "version": EXECUTION,
        "train_uri": f"{version_prefix}split=train/",
        "validation_uri": f"{version_prefix}split=validation/",
        "test_uri": f"{version_prefix}split=test/",
        "report_uri": f"{version_prefix}_quality_report.json",
        "rows": {"input": 5000, "valid": 4990, "rejected": 10},
        "source": lineage(EXECUTION)["source"],
    }
    assert prepared["evaluation_uri"] == f"s3://{ARTIFACTS}/evaluations/{EXECUTION}"
    # and the jobs are named under the dataset's resource prefix
    assert prepared["training_job_name"].startswith(f"{PREFIX}-train-")
    assert prepared["evaluation_job_name"].startswith(f"{PREFIX}-eval-")
    assert prepared["model_version"].startswith("churn-")
    # and no champion: a placeholder the evaluation job reads as "no model"
    assert prepared["champion"] is None
    assert prepared["champion_model_data"] == f"s3://{ARTIFACTS}/evaluations/{EXECUTION}/no-champion/"
    key = f"evaluations/{EXECUTION}/no-champion/NO_CHAMPION"
    body = aws["s3"].get_object(Bucket=ARTIFACTS, Key=key)["Body"].read()
    (tmp_path / "champion").mkdir()
    (tmp_path / "champion" / "NO_CHAMPION").write_bytes(body)
    assert find_model(tmp_path / "champion") is None


def test_the_newest_approved_package_is_the_champion(aws: dict[str, Any]) -> None:
    # Given approved, rejected and pending packages, the newest approved one being "v2"
    sagemaker = aws["sagemaker"]
    register(sagemaker, "Approved", "v1")
    newest_approved = register(sagemaker, "Approved", "v2")
    register(sagemaker, "Rejected", "v3")
    register(sagemaker, "PendingManualApproval", "v4")
    write_report(aws["s3"], EXECUTION, lineage(EXECUTION))

    # When the step runs
    prepared = invoke(EXECUTION, {})

    # Then the champion is v2, and its archive is the evaluation's champion input
    assert prepared["champion"] == {
        "model_package_arn": newest_approved,
        "model_version": "v2",
        "model_data": f"s3://{ARTIFACTS}/models/v2/model.tar.gz",
    }
    assert prepared["champion_model_data"] == f"s3://{ARTIFACTS}/models/v2/model.tar.gz"
    # and no placeholder is written
    assert "Contents" not in aws["s3"].list_objects_v2(Bucket=ARTIFACTS, Prefix="evaluations/")


def test_each_dataset_finds_its_own_champion_and_names(aws: dict[str, Any]) -> None:
    # Given an approved churn model and an execution of energy (the shared state machine runs both)
    register(aws["sagemaker"], "Approved", "v1")
    record = {**lineage("e1"), "dataset": "energy"}
    # When the step runs for energy
    prepared = invoke("energy-run", {"dataset": "energy", "curated": record})
    # Then it looks in energy's group (no champion there) and names energy's jobs
    assert prepared["champion"] is None
    assert prepared["training_job_name"].startswith("mlops-dev-energy-train-")
    assert prepared["model_version"].startswith("energy-")


def test_an_execution_of_an_undeclared_or_unnamed_dataset_fails_with_the_reason(aws: dict[str, Any]) -> None:
    # Given executions whose input names a dataset that is no longer declared, or none
    # When / Then the step fails naming the declared datasets, or the missing input
    with pytest.raises(
        UnknownDataset,
        match=r"dataset 'sales' is not declared in this stage \(declared datasets: "
        r"churn, energy, tickets\)",
    ):
        invoke(EXECUTION, {"dataset": "sales"})
    with pytest.raises(DatasetNotNamed, match="the execution's input names no dataset"):
        invoke(EXECUTION, {"dataset": None})


def test_a_retrain_uses_the_lineage_record_it_was_given(aws: dict[str, Any]) -> None:
    # Given a retrain's state with the manifest of an older dataset version (and no report for this execution)
    record = lineage("older-run")

    # When the step runs
    prepared = invoke("retrain-20261127-1000", {"curated": record, "trigger": {"source": "alarm"}})

    # Then it trains on that version
    assert prepared["curated"]["version"] == "older-run"
    assert prepared["curated"]["train_uri"] == f"s3://{CURATED}/curated/dataset=churn/version=older-run/split=train/"
    assert prepared["curated"]["report_uri"] == record["report_uri"]


def test_split_prefixes_come_from_the_curated_prefix_when_files_are_absent() -> None:
    # Given a lineage record without the per-split files
    record = {**lineage("v9"), "files": {}}

    # When / Then the split prefixes follow the Hive layout under curated_prefix
    assert logic.curated_view(record)["test_uri"] == f"s3://{CURATED}/curated/dataset=churn/version=v9/split=test/"


def test_a_failed_dataset_version_is_refused(aws: dict[str, Any]) -> None:
    # Given a report whose lineage failed the quality gate
    write_report(aws["s3"], EXECUTION, lineage(EXECUTION, status="FAILED"))

    # When / Then the step fails, naming the version and status
    with pytest.raises(logic.LineageNotUsable, match=rf"dataset version '{EXECUTION}' has status 'FAILED'"):
        invoke(EXECUTION, {})


def test_a_missing_quality_report_names_its_location(aws: dict[str, Any]) -> None:
    # Given no ETL output for this execution
    # When / Then the error names the object and the S3 error code
    key = f"curated/dataset=churn/version={EXECUTION}/_quality_report.json"
    with pytest.raises(logic.LineageNotFound, match=rf"no quality report at s3://{CURATED}/{key} \(NoSuchKey\)"):
        invoke(EXECUTION, {})


def test_a_report_without_lineage_is_refused(aws: dict[str, Any]) -> None:
    key = f"curated/dataset=churn/version={EXECUTION}/_quality_report.json"
    aws["s3"].put_object(Bucket=CURATED, Key=key, Body=b'{"malformed": {"reason_code": "delimiter"}}')
    with pytest.raises(logic.LineageNotUsable, match="has no 'output' lineage record"):
        invoke(EXECUTION, {})


def test_the_step_is_repeatable(aws: dict[str, Any]) -> None:
    # Given a report, the step ran once (a Step Functions retry runs it again)
    write_report(aws["s3"], EXECUTION, lineage(EXECUTION))
    first = invoke(EXECUTION, {})

    # When it runs again / Then it returns the same names and inputs
    assert invoke(EXECUTION, {}) == first


@pytest.mark.parametrize(
    "execution",
    [
        EXECUTION,
        "a",
        "x" * 80,
        "churn_2026-11-27_upload (1)-csv-0123456789abcdef"[:80],
        "___",
        "retrain-drift-20261127T100000Z-7f3a",
    ],
)
def test_job_names_are_valid_deterministic_and_prefixed(execution: str) -> None:
    # Given an execution name / When the job names are derived
    train = logic.job_name("mlops-prod", "train", execution)
    evaluate = logic.job_name("mlops-prod", "eval", execution)

    # Then they fit SageMaker's rules, repeat exactly, differ by kind and start with the stage prefix
    for name in (train, evaluate):
        assert len(name) <= 63 and JOB_NAME.match(name), name
        assert name.startswith("mlops-prod-")
    assert train == logic.job_name("mlops-prod", "train", execution)
    assert train != evaluate


def test_long_executions_that_share_a_start_get_distinct_names() -> None:
    # Given 200 long execution names that differ only at the end
    names = {logic.job_name("mlops-prod", "train", f"{'same-start-' * 6}{i:03d}") for i in range(200)}

    # When / Then every one gets its own job name
    assert len(names) == 200


def test_model_version_is_per_execution() -> None:
    assert logic.model_version("churn", "a") == logic.model_version("churn", "a")
    assert logic.model_version("churn", "a") != logic.model_version("churn", "b")
    assert logic.model_version("churn", "a").startswith("churn-")


@pytest.mark.parametrize(
    "execution_id",
    [
        "run-42",
        "arn:aws:states:us-east-1:123456789012:execution:mlops-dev-training-pipeline:run-42",
        "day1.csv-0123456789abcdef",
        "weird name/with:colons?and#hashes",
        "--edge--",
        "..dots..",
        "über-ünïcode",
        "a_b.c-d",
    ],
)
def test_prepare_reads_the_report_where_the_etl_writes_it(execution_id: str) -> None:
    # Given an execution id / When the ETL's driver names its run's report and prepare looks for it / Then they agree
    arguments = {
        "JOB_NAME": "etl",
        "dataset": "churn",
        "raw_bucket": "raw",
        "raw_key": "datasets/churn/day1.csv",
        "curated_bucket": CURATED,
        "database": "mlops_test",
        "execution_id": execution_id,
    }
    assert logic.report_key("churn", execution_id) == driver.job_args(arguments).report_key


def test_version_label_refuses_an_execution_id_without_a_usable_name() -> None:
    for bad in ("arn:aws:states:::", "---", ":"):
        with pytest.raises(ValueError, match="gives an empty version label"):
            logic.version_label(bad)


def test_a_dataset_with_tuning_gets_its_tuning_job_name_config_and_static_hyperparameters(
    aws: dict[str, Any],
) -> None:
    # Given churn declaring a Random tuning job over max_iter and learning_rate (two of the stage's hyperparameters)
    tuning = Tuning(
        "Random",
        {
            "max_iter": TuningRange("integer", 50, 400),
            "learning_rate": TuningRange("continuous", 0.01, 0.3, "Logarithmic"),
        },
        max_jobs=4,
        max_parallel_jobs=2,
    )
    static = {"max_iter": "200", "learning_rate": "0.1", "seed": "42", "sagemaker_program": '"train.py"'}
    settings = logic.PrepareSettings(
        GROUP, CURATED, ARTIFACTS, "churn", PREFIX, tuning, ("validation:auc", "Maximize"), static
    )
    write_report(aws["s3"], EXECUTION, lineage("v1"))

    # When the run is prepared
    prepared = logic.prepare(execution=EXECUTION, state={}, s3=aws["s3"], sagemaker=aws["sagemaker"], settings=settings)

    # Then $.prepared.tuning names a valid tuning job (32 characters at most, under the dataset's prefix), its config,
    # and the training job's static hyperparameters without the tuned ones, with the dataset
    view = prepared["tuning"]
    assert len(view["job_name"]) <= logic.MAX_TUNING_JOB_NAME and JOB_NAME.match(view["job_name"])
    assert view["job_name"].startswith(f"{PREFIX}-") and view["job_name"] == logic.tuning_job_name(PREFIX, EXECUTION)
    assert view["config"] == tuning.job_config(("validation:auc", "Maximize"))
    assert view["static_hyperparameters"] == {"seed": "42", "sagemaker_program": '"train.py"', "dataset": '"churn"'}
    # and a dataset without tuning has no such key (the state machine's choice tests its presence)
    untuned = logic.prepare(
        execution=EXECUTION,
        state={},
        s3=aws["s3"],
        sagemaker=aws["sagemaker"],
        settings=logic.PrepareSettings(GROUP, CURATED, ARTIFACTS, "churn", PREFIX),
    )
    assert "tuning" not in untuned


def test_tuning_job_names_fit_32_characters_and_differ_per_dataset_and_execution() -> None:
    long_prefix = "mlops-prod-a-dataset-name-of-forty-characters"
    names = {
        logic.tuning_job_name(prefix, execution)
        for prefix in ("mlops-prod-churn", long_prefix, long_prefix + "x")
        for execution in ("a", "b")
    }
    assert len(names) == 6
    assert all(len(name) <= 32 and JOB_NAME.match(name) and name.startswith("mlops-prod-") for name in names)
