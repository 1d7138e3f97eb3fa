"""Fixtures of the job-code tests: curated churn splits on disk and a model trained once per session.

The model is trained by ``train.main`` itself inside a local ``/opt/ml`` layout whose environment variables
and command line are produced by the SageMaker training toolkit (``sagemaker_training.mapping``), so the
training, evaluation and inference tests all work on a real artifact of the training job.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sagemaker_training import mapping
from threadpoolctl import threadpool_limits

from localcloud.runtime import image
from pipelines.data.generator import generate, write_parquet
from pipelines.etl.transforms import run_transform, split_parquet
from pipelines.schema import DatasetSchema
from pipelines.training import train
from stacks.config import QualityGate
from stacks.datasets import dataset_schema
from tests.samples import CHURN_SCHEMA

SAMPLE_DIR = Path(__file__).resolve().parents[3] / "pipelines" / "data" / "sample"

SPLIT_ROWS = {"train": 3000, "validation": 1000, "test": 1000}
TEST_HYPERPARAMETERS = {
    "max_iter": "60",
    "learning_rate": "0.1",
    "max_leaf_nodes": "15",
    "l2_regularization": "0.0",
}


@pytest.fixture(scope="session")
def churn_splits() -> dict[str, pd.DataFrame]:
    """Generated churn rows (learnable signal, AUC ~0.85) cut into train / validation / test."""
    frame = generate(sum(SPLIT_ROWS.values()), seed=7)
    splits, start = {}, 0
    for split, rows in SPLIT_ROWS.items():
        splits[split] = frame.iloc[start : start + rows].reset_index(drop=True)
        start += rows
    return splits


def _write_curated(root: Path, frames: dict[str, pd.DataFrame], files_per_split: int = 2) -> Path:
    """The ETL output layout: ``root/split=<name>/part-<n>.parquet`` (Hive-partitioned by split)."""
    for split, frame in frames.items():
        directory = root / f"split={split}"
        directory.mkdir(parents=True, exist_ok=True)
        size = -(-len(frame) // files_per_split)
        for part in range(files_per_split):
            write_parquet(frame.iloc[part * size : (part + 1) * size], directory / f"part-{part:05d}.parquet")
    return root


@pytest.fixture(scope="session")
def write_curated() -> Callable[..., Path]:
    return _write_curated


@pytest.fixture(scope="session")
def curated_dir(tmp_path_factory: pytest.TempPathFactory, churn_splits: dict[str, pd.DataFrame]) -> Path:
    return _write_curated(tmp_path_factory.mktemp("curated"), churn_splits)


@dataclass(frozen=True)
class TrainingRun:
    """One ``train.main`` run inside a local SageMaker layout."""

    base: Path  # the /opt/ml stand-in
    model_dir: Path
    output_data_dir: Path
    environ: dict[str, str]
    argv: list[str]
    stdout: str
    exit_code: int

    @property
    def metadata(self) -> dict[str, Any]:
        return json.loads((self.model_dir / train.METADATA_FILE).read_text())


def sagemaker_layout(base: Path, curated: Path, hyperparameters: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Environment and argv the training toolkit would give ``train.py`` for this local layout.

    The channels point into the curated prefix as S3 channels would (``.../split=<name>/``); the
    hyperparameters are JSON-decoded like the toolkit's ``read_hyperparameters`` does.
    """
    (base / "input" / "config").mkdir(parents=True, exist_ok=True)
    (base / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    decoded = {}
    for name, value in hyperparameters.items():
        try:
            decoded[name] = json.loads(value)
        except ValueError:
            decoded[name] = value
    environ = mapping.to_env_vars(
        {
            "model_dir": str(base / "model"),
            "output_data_dir": str(base / "output" / "data"),
            "channel_train": str(curated / "split=train"),
            "channel_validation": str(curated / "split=validation"),
            "hps": decoded,
        }
    )
    return environ, [str(arg) for arg in mapping.to_cmd_args(decoded)]


def run_training(
    base: Path, curated: Path, hyperparameters: dict[str, str], extra_env: dict[str, str] | None = None
) -> TrainingRun:
    """Run ``train.main`` with the toolkit's environment and argv for ``base``; stdout is captured."""
    environ, argv = sagemaker_layout(base, curated, hyperparameters)
    environ.update(extra_env or {})
    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout):
        for name, value in environ.items():
            patch.setenv(name, value)
        if "MODEL_VERSION" not in environ:
            patch.delenv("MODEL_VERSION", raising=False)
        exit_code = train.main(argv)
    return TrainingRun(
        base=base,
        model_dir=base / "model",
        output_data_dir=base / "output" / "data",
        environ=environ,
        argv=argv,
        stdout=stdout.getvalue(),
        exit_code=exit_code,
    )


@pytest.fixture(scope="session")
def training_runner() -> Callable[..., TrainingRun]:
    return run_training


@pytest.fixture(scope="session")
def job_hyperparameters() -> dict[str, str]:
    """The job's HyperParameters as the state machine sends them for an execution of churn (whose schema the job
    reads from the platform document)."""
    return train.job_hyperparameters(TEST_HYPERPARAMETERS.items(), CHURN_SCHEMA.name)


@pytest.fixture(scope="session")
def trained(
    tmp_path_factory: pytest.TempPathFactory, curated_dir: Path, job_hyperparameters: dict[str, str]
) -> TrainingRun:
    """The session's model, trained once by ``train.main``."""
    return run_training(tmp_path_factory.mktemp("opt_ml"), curated_dir, job_hyperparameters)


@pytest.fixture(scope="session")
def model_dir(trained: TrainingRun) -> Path:
    return trained.model_dir


@dataclass(frozen=True)
class SampleRun:
    """A committed sample dataset taken through the real ETL and ``train.main``."""

    schema: DatasetSchema
    curated: Path  # split=<name>/part-00000.parquet, as the Glue job writes them
    training: TrainingRun


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], SampleRun]:
    """``sample_run(name)``: ``pipelines/data/sample/<name>.csv`` through the ETL and a training job (once each)."""
    runs: dict[str, SampleRun] = {}

    def run(name: str) -> SampleRun:
        if name not in runs:
            schema = dataset_schema(name)
            result = run_transform((SAMPLE_DIR / f"{name}.csv").read_bytes(), "csv", schema, QualityGate())
            assert result.gate_passed, result.gate_reasons
            curated = tmp_path_factory.mktemp(f"{name}-curated")
            for split, body in split_parquet(result.curated, schema).items():
                (curated / f"split={split}").mkdir()
                (curated / f"split={split}" / "part-00000.parquet").write_bytes(body)
            hyperparameters = train.job_hyperparameters(TEST_HYPERPARAMETERS.items(), schema.name)
            # one OpenMP thread: on a shared, loaded 2-core host a thread team makes this fit 20x slower
            with threadpool_limits(limits=1, user_api="openmp"):
                training = run_training(tmp_path_factory.mktemp(f"{name}-opt-ml"), curated, hyperparameters)
            runs[name] = SampleRun(schema, curated, training)
        return runs[name]

    return run


@pytest.fixture(scope="session")
def image_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the image's ``serve`` command as the local cloud's images provide it (the local model
    server on the scikit-learn container's serving contract)."""
    directory = tmp_path_factory.mktemp("image-bin")
    image.write_serve(directory / image.SERVE_COMMAND)
    return directory


@pytest.fixture
def serve_on_path(image_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve`` first on ``PATH``, as in the evaluation job's image (its smoke test runs it)."""
    monkeypatch.setenv("PATH", f"{image_bin}{os.pathsep}{os.environ.get('PATH', '')}")
