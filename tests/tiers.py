"""Test tiers: ``make test-fast`` (lint, types, unit, infrastructure) leaves out every test marked ``slow``, and
a test is ``slow`` without anyone marking it by hand when it

- lives under ``tests/e2e/`` or ``tests/integration/`` (a local cloud, local Spark), or
- uses a fixture declared with ``@heavy_fixture`` (it starts a local cloud, a Glue driver or Spark).

A test that starts a local cloud or a Spark session some other way is caught at run time: it fails, naming
what it started and how to declare it (``refuse_unmarked``), so ``make test-fast`` stays free of them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

SLOW_FOLDERS = ("e2e", "integration")
_HEAVY = "_starts_local_cloud_or_spark"
F = TypeVar("F", bound=Callable[..., Any])


def heavy_fixture(function: F | None = None, *, scope: str = "module") -> Any:
    """``@pytest.fixture(scope=...)`` for a fixture that starts a local cloud, a Glue driver or Spark: every test
    that uses it (directly or through another fixture) is marked ``slow``."""

    def declare(fixture_function: F) -> Any:
        setattr(fixture_function, _HEAVY, True)
        return pytest.fixture(scope=scope)(fixture_function)  # type: ignore[call-overload]

    return declare(function) if function is not None else declare


def uses_heavy_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(getattr(d.func, _HEAVY, False) for defs in info.name2fixturedefs.values() for d in defs)


def is_slow_by_place_or_fixture(item: pytest.Item, tests_root: Path) -> bool:
    in_slow_folder = item.path.is_relative_to(tests_root) and item.path.relative_to(tests_root).parts[0] in SLOW_FOLDERS
    return in_slow_folder or uses_heavy_fixture(item)


def running_heavy() -> str | None:
    """What heavy thing runs in this process now: a LocalCloud or a Spark session (None: neither)."""
    cloud = sys.modules.get("localcloud.cloud")
    if cloud is not None and getattr(cloud, "_running", None) is not None:
        return "a local cloud (LocalCloud)"
    context = sys.modules.get("pyspark.context")
    if context is not None and getattr(context.SparkContext, "_active_spark_context", None) is not None:
        return "a Spark session"
    return None


def refuse_unmarked(item: pytest.Item, before: str | None, phase: str) -> None:
    """Fail a test that is not ``slow`` but started a local cloud or Spark during ``phase``."""
    started = running_heavy()
    if started and not before and item.get_closest_marker("slow") is None:
        pytest.fail(
            f"{item.nodeid} started {started} during its {phase} but is not marked slow: declare the fixture "
            "that starts it with tests.tiers.heavy_fixture (or move the test under tests/e2e or "
            "tests/integration), so `make test-fast` leaves it out",
            pytrace=False,
        )


def group_in_node_id(item: pytest.Item) -> None:
    """Put the item's ``xdist_group`` into its node id as ``<id>@<group>``, which ``--dist loadgroup`` schedules
    by. pytest-xdist 3.8 writes it into ``item._nodeid``, which pytest 9.2 no longer reads (node ids are
    structured, ``item._id``): every group is silently ignored and its tests spread over the workers
    (pytest-dev/pytest-xdist#1386, fix proposed in #1388). Same names, order and separator as xdist; does nothing
    when the id already carries them (a fixed xdist)."""
    from _pytest.nodeid import NodeId

    marks = item.iter_markers("xdist_group")
    names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in marks})
    if not names or not hasattr(item, "_id"):
        return
    suffix = "@" + "_".join(names)
    if not item.nodeid.endswith(suffix):
        item._id = NodeId.parse(item.nodeid + suffix)
