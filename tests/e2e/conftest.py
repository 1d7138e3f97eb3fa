"""End-to-end fixtures: the CDK app synthesized once per test process, deployed into local clouds.

moto's state is global to a process, so one local cloud runs at a time per test process.

Clouds are shared where cases can share them without depending on each other:
- ``champion``: a deployed stack whose first model (the shipped sample) is approved and serving, as production
  would be. Every case that starts from it (the fault cases, batch scoring, client errors, in any module) runs
  on ONE such cloud: the root conftest puts them in one xdist group (one worker, one after the other) and next
  to each other in a serial run; the cloud is stopped after the last of them. Each case leaves the champion
  serving and asserts relative to the state it found (``state_of``), so their order does not matter.
- ``test_demo.py``'s golden path: the demo's whole loop, then the stack's teardown on that same cloud.
- ``fresh``: a deployed stack with nothing run yet, one per test (for a case that needs a blank account).
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
CHAMPION = "champion"  # the fixture's name; the root conftest groups the tests that use it


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
    try:
        deployment = cloud.deploy("dev", assembly=assembly)
        lc = Lifecycle(cloud, deployment, config.dataset)
        lc.subscribe()
    except BaseException:
        cloud.stop()
        raise
    return Cloud(cloud, lc)


@pytest.fixture
def fresh(assembly: Path, tmp_path: Path, config: StageConfig) -> Iterator[Cloud]:
    """A deployed stack with nothing run yet."""
    env = _start(assembly, tmp_path / "cloud", config)
    try:
        yield env
    finally:
        env.cloud.stop()


class _Shared:
    """The champion cloud of this test process, kept from its first user to its last (see the module doc)."""

    env: Cloud | None = None
    error: BaseException | None = None

    @classmethod
    def get(cls, assembly: Path, workdir: Path, config: StageConfig) -> Cloud:
        if cls.error is not None:
            raise RuntimeError(f"the champion cloud could not be set up: {cls.error!r}") from cls.error
        if cls.env is None:
            try:
                cls.env = _serving_champion(_start(assembly, workdir, config))
            except BaseException as error:
                cls.error = error
                raise
        return cls.env

    @classmethod
    def stop(cls) -> None:
        env, cls.env, cls.error = cls.env, None, None
        if env is not None:
            env.cloud.stop()


def _serving_champion(env: Cloud) -> Cloud:
    try:
        env.lc.upload(pd.read_csv(SAMPLE), "customers-2026-11.csv")
        env.first_run = env.lc.wait_for_new_execution(env.lc.training_machine, [])
        assert env.first_run.status == "SUCCEEDED", env.first_run.cause
        env.first_deployment = env.lc.wait_for_new_execution(env.lc.deployment_machine, [])
        assert env.first_deployment.status == "SUCCEEDED", env.first_deployment.cause
        env.cloud.settle()
    except BaseException:
        env.cloud.stop()
        raise
    return env


@pytest.fixture
def champion(assembly: Path, tmp_path_factory: pytest.TempPathFactory, config: StageConfig) -> Cloud:
    """A deployed stack whose first model (from the shipped sample) is approved and serving (shared)."""
    return _Shared.get(assembly, tmp_path_factory.mktemp("champion"), config)


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the champion cloud after its last consecutive user (the next test may start its own cloud)."""
    if _Shared.env is not None and (nextitem is None or CHAMPION not in getattr(nextitem, "fixturenames", ())):
        _Shared.stop()


def state_of(lc: Lifecycle) -> dict[str, Any]:
    """What must not change behind a fault: raw objects, registry, endpoint config and the served model."""
    endpoint = lc.endpoint() or {}
    return {
        "raw": set(lc.raw_versions()),
        "packages": [(p["ModelPackageVersion"], p["ModelApprovalStatus"]) for p in lc.packages()],
        "endpoint_config": endpoint.get("EndpointConfigName"),
        "serving": lc.served_model_version(),
    }
