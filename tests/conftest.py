"""Shared test setup: no test ever reaches AWS (fake credentials, fixed region)."""

from __future__ import annotations

import os

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SECURITY_TOKEN", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "MLOps/test")


import pytest  # noqa: E402 - after the environment above, before anything builds a client


@pytest.fixture(scope="session", autouse=True)
def sample_platform_document(tmp_path_factory: pytest.TempPathFactory) -> object:
    """Code that reads the platform document (``pipelines.platform.platform()``: the jobs, the Lambdas) finds the one
    the stack would ship for the three samples in dev, as it finds it next to its code in a deployed asset. A test
    that needs other datasets installs its own with ``tests.samples.use_platform``."""
    from tests.samples import use_platform

    patch = pytest.MonkeyPatch()
    document = use_platform(patch, tmp_path_factory.mktemp("platform-document"))
    yield document
    patch.undo()
