"""Cold-start probe: imports in a fresh interpreter holding only an asset; env-at-import and heavy imports fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.bench_coldstart import ImportFailed, discover_handlers, import_once, measure, row_for


@pytest.fixture
def asset(tmp_path: Path) -> Path:
    """A fake Lambda asset: a good handler, one that needs its own env at import, one importing 'sklearn'."""
    files = {
        "lambdas/__init__.py": "",
        "lambdas/good/__init__.py": "",
        "lambdas/good/handler.py": "import json\n",
        "lambdas/needs_env/__init__.py": "",
        "lambdas/needs_env/handler.py": "import os\nTABLE = os.environ['TABLE_NAME']\n",
        "lambdas/heavy/__init__.py": "",
        "lambdas/heavy/handler.py": "import sklearn\n",
        "sklearn/__init__.py": "",  # stands in for the real package: only its name matters
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_discover_handlers_finds_every_lambda_handler_module(asset: Path) -> None:
    # Given an asset with three handler packages / When discovered / Then each handler module is listed, sorted
    assert discover_handlers(asset) == ["lambdas.good.handler", "lambdas.heavy.handler", "lambdas.needs_env.handler"]


def test_the_probe_reports_the_packages_an_import_loaded(asset: Path) -> None:
    # Given the good handler / When imported in a fresh interpreter
    probe = import_once("lambdas.good.handler", asset)
    # Then it reports a duration and the top-level packages it loaded (only its own here)
    assert probe["seconds"] > 0
    assert "lambdas" in probe["packages"]
    assert "boto3" not in probe["packages"]


def test_the_probe_sees_no_repository_code_outside_the_asset(asset: Path) -> None:
    # Given an asset without the pipelines package / When a pipelines module is imported there
    # Then it fails as it would in Lambda, although the repository has that module
    with pytest.raises(ImportFailed, match="No module named 'pipelines'"):
        import_once("pipelines.features", asset)


def test_rows_fail_a_handler_that_needs_env_at_import_or_imports_a_forbidden_package(asset: Path) -> None:
    # Given the three handlers measured against boto3 in one round
    modules = ["lambdas.good.handler", "lambdas.needs_env.handler", "lambdas.heavy.handler"]
    measured = measure(modules, rounds=1, asset=asset, warmup=False)
    reference = measured["median_ms"]["boto3"]
    good, needs_env, heavy = (row_for(m, measured, reference) for m in modules)
    # Then importing json is far below 2.5x boto3 and passes
    assert (good.name, good.status, good.reference_label) == ("cold_start:good", "pass", "import boto3")
    assert good.ratio is not None and good.ratio < 1
    # and the handler reading its own variable at import fails with the missing name
    assert needs_env.status == "fail"
    assert "KeyError: 'TABLE_NAME'" in needs_env.note
    # and the handler importing scikit-learn fails even though it is fast
    assert heavy.status == "fail"
    assert "imports sklearn (not in the Lambda runtime or its layers)" in heavy.note
