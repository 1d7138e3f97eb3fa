"""The experiment evaluator runs against the deployment tests' moto account (the deploy Lambda starts the
experiment it evaluates), with the registry shim: UpdateModelPackage keeps what a request does not carry, as
SageMaker does (moto erases it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localcloud.shims import sagemaker_registry
from tests.unit.lambdas.deploy import conftest as deploy
from tests.unit.lambdas.deploy.support import Cloud


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    sagemaker_registry.install()
    yield from deploy.cloud.__wrapped__()  # type: ignore[attr-defined]
