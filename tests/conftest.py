"""Shared test setup: no test ever reaches AWS (fake credentials, fixed region); the tiers (``slow`` is applied by
folder and fixture, see tests/tiers.py) and the grouping that lets end-to-end cases share a cloud."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest

from tests.tiers import group_in_node_id, is_slow_by_place_or_fixture, refuse_unmarked, running_heavy

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SECURITY_TOKEN", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "MLOps/test")


# ---- tiers (see tests/tiers.py) and sharing of end-to-end clouds (see tests/e2e/conftest.py) ----------------
TESTS = Path(__file__).resolve().parent
CHAMPION_GROUP = "e2e-champion"


def _uses_champion(item: pytest.Item) -> bool:
    return "champion" in getattr(item, "fixturenames", ()) and item.path.is_relative_to(TESTS / "e2e")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (--dist loadgroup)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if is_slow_by_place_or_fixture(item, TESTS):
            item.add_marker(pytest.mark.slow)
        # one xdist group per file (what --dist loadfile does: a file's module-scoped cloud starts once), except
        # the cases that start from a serving champion: one group, so they share one cloud on one worker
        if item.get_closest_marker("xdist_group") is None:
            group = CHAMPION_GROUP if _uses_champion(item) else item.nodeid.split("::", 1)[0]
            item.add_marker(pytest.mark.xdist_group(group))
        if config.getoption("loadgroup", default=False):
            group_in_node_id(item)
    champions = [item for item in items if _uses_champion(item)]
    if champions:  # next to each other in a serial run too, so the shared champion starts once
        first = items.index(champions[0])
        others = [item for item in items if not _uses_champion(item)]
        items[:] = others[:first] + champions + others[first:]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    before = running_heavy()
    yield
    refuse_unmarked(item, before, "setup")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    before = running_heavy()
    yield
    refuse_unmarked(item, before, "call")


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
