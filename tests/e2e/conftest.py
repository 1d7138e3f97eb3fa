"""End-to-end fixtures: the CDK app synthesized once per test process, deployed into fresh local clouds.

moto's state is global to a process, so one local cloud runs at a time: a module's ``champion`` is torn down
before the next module's clouds start (``make test`` distributes whole files: ``--dist loadfile``).

A ``champion`` cloud has run the whole first loop (sample upload -> pipeline -> registry -> deployment), so
the fault cases start from a system that serves a model, as production would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from localcloud import provision
from localcloud.cloud import LocalCloud
from localcloud.lifecycle import Execution, Lifecycle
from localcloud.runtime.journal import journal
from stacks.config import StageConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "pipelines" / "data" / "sample" / "churn.csv"


@pytest.fixture(scope="session")
def config() -> StageConfig:
    return load_config("dev")


@pytest.fixture(scope="session")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``cdk synth`` of the dev stage (cdk-nag included), once per test process."""
    return provision.synth("dev", tmp_path_factory.mktemp("assembly"))


@dataclass
class Cloud:
    cloud: LocalCloud
    lc: Lifecycle
    first_run: Execution | None = None
    first_deployment: Execution | None = None


def _start(assembly: Path, workdir: Path, config: StageConfig) -> Cloud:
    journal.clear()
    cloud = LocalCloud(workdir=workdir).start()
    deployment = cloud.deploy("dev", assembly=assembly)
    lc = Lifecycle(cloud, deployment, config.dataset)
    lc.subscribe()
    return Cloud(cloud, lc)


@pytest.fixture
def fresh(assembly: Path, tmp_path: Path, config: StageConfig) -> Iterator[Cloud]:
    """A deployed stack with nothing run yet."""
    env = _start(assembly, tmp_path / "cloud", config)
    try:
        yield env
    finally:
        env.cloud.stop()


@pytest.fixture(scope="module")
def champion(assembly: Path, tmp_path_factory: pytest.TempPathFactory, config: StageConfig) -> Iterator[Cloud]:
    """A deployed stack whose first model (from the shipped sample) is approved and serving."""
    env = _start(assembly, tmp_path_factory.mktemp("cloud"), config)
    try:
        env.lc.upload(pd.read_csv(SAMPLE), "customers-2026-11.csv")
        env.first_run = env.lc.wait_for_new_execution(env.lc.training_machine, [])
        assert env.first_run.status == "SUCCEEDED", env.first_run.cause
        env.first_deployment = env.lc.wait_for_new_execution(env.lc.deployment_machine, [])
        assert env.first_deployment.status == "SUCCEEDED", env.first_deployment.cause
        env.cloud.settle()
        yield env
    finally:
        env.cloud.stop()


def state_of(lc: Lifecycle) -> dict[str, Any]:
    """What must not change behind a fault: raw objects, registry, endpoint config and the served model."""
    endpoint = lc.endpoint() or {}
    return {
        "raw": set(lc.raw_versions()),
        "packages": [(p["ModelPackageVersion"], p["ModelApprovalStatus"]) for p in lc.packages()],
        "endpoint_config": endpoint.get("EndpointConfigName"),
        "serving": lc.served_model_version(),
    }
