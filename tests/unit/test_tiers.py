"""The test tiers (tests/tiers.py): `slow` comes from the folder or a heavy fixture, and a test that starts a
local cloud without being slow fails, so `make test-fast` (``-m "not slow"``) never starts one."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = """
import os
import sys
import types

# this repository's tests package, as pytest's importlib mode makes it (site-packages holds another ``tests``)
sys.modules["tests"] = types.ModuleType("tests")
sys.modules["tests"].__path__ = [os.path.join(os.environ["REPOSITORY"], "tests")]

from tests.conftest import pytest_collection_modifyitems, pytest_runtest_call, pytest_runtest_setup  # noqa: E402,F401
"""

TESTS = """
import sys
import types

import pytest

from tests.tiers import heavy_fixture


def _cloud_up(running):
    # what tests.tiers.running_heavy looks at: localcloud.cloud's running LocalCloud
    sys.modules["localcloud.cloud"] = types.SimpleNamespace(_running=object() if running else None)


@heavy_fixture
def declared():
    _cloud_up(True)
    yield
    _cloud_up(False)


@pytest.fixture
def undeclared():
    _cloud_up(True)
    yield
    _cloud_up(False)


def test_with_a_declared_cloud(declared):
    pass


def test_with_an_undeclared_cloud(undeclared):
    pass


def test_starting_one_in_its_body():
    _cloud_up(True)  # and leaves it running


def test_plain():
    pass
"""


@pytest.fixture(autouse=True)
def repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPOSITORY", str(Path(__file__).resolve().parents[2]))


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_tiers_example=TESTS)
    pytester.makeini("[pytest]\nmarkers =\n    slow: slow\n")
    return pytester


def _run(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return project.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_the_fast_tier_leaves_out_heavy_fixtures_and_fails_a_test_that_starts_a_cloud_unmarked(
    project: pytest.Pytester,
) -> None:
    # Given tests using a heavy fixture, an undeclared fixture that starts a cloud, one that starts it in its body
    # When the fast tier runs (-m "not slow")
    result = _run(project, "-m", "not slow", "-rA")
    # Then the heavy fixture's test is left out, and the two that started a cloud unmarked fail, saying why
    result.assert_outcomes(passed=1, errors=1, failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "*test_with_an_undeclared_cloud*started a local cloud (LocalCloud) during its setup*not marked slow*",
            "*test_starting_one_in_its_body*started a local cloud (LocalCloud) during its call*not marked slow*",
        ]
    )


def test_a_test_using_a_heavy_fixture_is_slow(project: pytest.Pytester) -> None:
    # When only the slow tests run / Then the one with the heavy fixture is the one selected, and it passes
    result = _run(project, "-m", "slow", "-rA")
    result.assert_outcomes(passed=1, deselected=3)
    result.stdout.fnmatch_lines(["PASSED test_tiers_example.py::test_with_a_declared_cloud"])


GROUPED = """
import time

import pytest


@pytest.mark.xdist_group("shared")
@pytest.mark.parametrize("n", range(4))
def test_shared(n):
    time.sleep(0.05)
"""

PLAIN = """
import time

import pytest


@pytest.mark.parametrize("n", range(6))
def test_plain(n):
    time.sleep(0.05)
"""


def test_loadgroup_keeps_a_group_on_one_worker_and_each_file_together(pytester: pytest.Pytester) -> None:
    # Given two files whose tests share one group (as the cases sharing a champion cloud) and two plain files
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_a=GROUPED, test_b=GROUPED, test_c=PLAIN, test_d=PLAIN)
    # When they run on two workers with --dist loadgroup (make test's distribution)
    result = _run(pytester, "-n", "2", "--dist", "loadgroup", "-v")
    # Then every test of the group ran on one worker, and each plain file on one worker (no cloud starts twice)
    workers: dict[str, set[str]] = {}
    for line in result.outlines:
        if "PASSED" in line and line.startswith("[gw"):
            worker, test = line.split("]", 1)[0][1:], line.split("PASSED", 1)[1].strip()
            group = test.rsplit("@", 1)[1] if "@" in test else "-"
            workers.setdefault(group, set()).add(worker)
    assert set(workers) == {"shared", "test_c.py", "test_d.py"}, result.outlines
    assert all(len(used) == 1 for used in workers.values()), workers
    result.assert_outcomes(passed=20)
