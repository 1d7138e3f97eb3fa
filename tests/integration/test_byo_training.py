"""A declaration's model (a built-in estimator, or the dataset's own script) through the local cloud's SageMaker
training runner (``localcloud/runtime/jobs.py``: the real training toolkit in the image's interpreter), with the
source archive the stack builds (``pipelines/``, the platform document and the declared entry point directories)."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import joblib
import pytest
from moto import mock_aws

from localcloud.runtime import jobs
from pipelines.data.generator import generate, write_parquet
from pipelines.schema import ModelSpec
from pipelines.training.metric_definitions import METRIC_DEFINITIONS
from stacks.constructs.assets import copy_packages
from stacks.constructs.lambda_factory import DOCUMENT_PATH
from stacks.constructs.training_pipeline import SOURCE_PACKAGES, sagemaker_hyperparameters
from stacks.datasets import dataset_schema, entry_point_files
from tests.samples import platform_for

REGION = "us-east-1"
CRASHING_SCRIPT = """\
raise RuntimeError("feature store unreachable: check the VPC endpoint")
"""


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[Any]:
    """moto S3 with curated churn splits under ``curated/split=<name>/`` (the ETL's layout)."""
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket="jobs")
        frame = generate(1200, seed=3)
        for split, rows in (("train", frame.iloc[:900]), ("validation", frame.iloc[900:])):
            path = tmp_path / f"{split}.parquet"
            write_parquet(rows.reset_index(drop=True), path)
            client.upload_file(str(path), "jobs", f"curated/split={split}/part-00000.parquet")
        yield client


def _source_dir(root: Path, models: dict[str, ModelSpec]) -> Path:
    """The training source directory as the stack bundles it, for churn-shaped datasets declaring ``models``."""
    churn = dataset_schema("churn")
    schemas = [replace(churn, name=name, model=model) for name, model in models.items()]
    code = root / "code"
    generated = {DOCUMENT_PATH: platform_for(schemas).to_json().encode(), **entry_point_files(schemas, root=root)}
    copy_packages(SOURCE_PACKAGES, code, generated=generated)
    return code


def _request(code: Path, dataset: str, name: str) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingInputMode": "File", "MetricDefinitions": METRIC_DEFINITIONS},
        "HyperParameters": {
            **sagemaker_hyperparameters(str(code), REGION),  # the toolkit also takes a local directory
            "dataset": json.dumps(dataset),
            "max_iter": "40",
        },
        "InputDataConfig": [
            {"ChannelName": split, "DataSource": {"S3DataSource": {"S3Uri": f"s3://jobs/curated/split={split}/"}}}
            for split in ("train", "validation")
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://jobs/models"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def test_a_declared_random_forest_trains_in_the_training_job(s3: Any, tmp_path: Path) -> None:
    # Given a dataset declaring a random forest with two hyperparameters, bundled as the stack bundles it
    model = ModelSpec("random_forest", {"n_estimators": 25, "min_samples_leaf": 4})
    code = _source_dir(tmp_path, {"churn-forest": model})

    # When the local cloud runs its training job
    result = jobs.run_training(s3, _request(code, "churn-forest", "train-forest"), tmp_path, "https://unused", REGION)

    # Then the job succeeds, its metrics are captured, and the archive holds that forest with its metadata
    assert result.ok, result.log[-2000:]
    assert 0.5 < result.outputs["metrics"]["validation:auc"] <= 1.0
    body = s3.get_object(Bucket="jobs", Key="models/train-forest/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        metadata = json.load(archive.extractfile("model_metadata.json"))  # type: ignore[arg-type]
        fitted = joblib.load(archive.extractfile("model.joblib"))  # type: ignore[arg-type]
        assert "code/inference.py" in archive.getnames()
    assert metadata["estimator"]["class"] == "RandomForestClassifier"
    assert metadata["estimator"]["parameters"]["n_estimators"] == 25
    assert type(fitted.named_steps["model"]).__name__ == "RandomForestClassifier"
    assert fitted.named_steps["model"].min_samples_leaf == 4


def test_a_crashing_script_fails_the_job_with_its_error(s3: Any, tmp_path: Path) -> None:
    # Given a dataset whose own training script raises, shipped in the source archive
    (tmp_path / "models" / "broken").mkdir(parents=True)
    (tmp_path / "models" / "broken" / "train.py").write_text(CRASHING_SCRIPT)
    code = _source_dir(tmp_path, {"churn-broken": ModelSpec(entry_point="models/broken")})
    assert (code / "models" / "broken" / "train.py").is_file()

    # When the local cloud runs its training job
    result = jobs.run_training(s3, _request(code, "churn-broken", "train-broken"), tmp_path, "https://unused", REGION)

    # Then the job fails; its reason names the script and carries the script's own error
    assert not result.ok
    assert result.reason.startswith("AlgorithmError: EntryPointError: models/broken/train.py failed: "), result.reason
    assert result.reason.endswith("RuntimeError: feature store unreachable: check the VPC endpoint")
