"""Every module of ``pipelines`` that Lambda code imports is in the Lambda code asset (``LAMBDA_PACKAGES``).

The asset takes ``lambdas`` and an explicit list of ``pipelines`` files (the job code's heavy modules stay out);
an import the list misses passes every unit test (they run from the checkout) and fails the deployed function at
its first import (the A/B merge's ``pipelines.experiments`` did: the deploy Lambda failed in the demo)."""

from __future__ import annotations

import ast
from pathlib import Path

from stacks.constructs.lambda_factory import LAMBDA_PACKAGES

ROOT = Path(__file__).resolve().parents[3]


def _packaged(relative: str) -> bool:
    return any(relative == entry or relative.startswith(entry.rstrip("/") + "/") for entry in LAMBDA_PACKAGES)


def _pipelines_imports(source: Path) -> set[str]:
    """The ``pipelines.*`` modules ``source`` imports, as files relative to the repository."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            if name == "pipelines" or name.startswith("pipelines."):
                parts = name.split(".")
                module = ROOT.joinpath(*parts).with_suffix(".py")
                package = ROOT.joinpath(*parts, "__init__.py")
                target = module if module.exists() else package
                found.add(str(target.relative_to(ROOT)))
                for depth in range(2, len(parts)):  # the packages on the way are imported too
                    found.add(str(ROOT.joinpath(*parts[:depth], "__init__.py").relative_to(ROOT)))
    return found


def test_every_pipelines_module_lambda_code_imports_is_packaged() -> None:
    # Given every Lambda source file, and (transitively) every packaged pipelines module they import
    pending = sorted(ROOT.glob("lambdas/**/*.py"))
    seen: set[str] = set()
    missing: dict[str, str] = {}
    while pending:
        source = pending.pop()
        for relative in sorted(_pipelines_imports(source) - seen):
            seen.add(relative)
            if not _packaged(relative):
                missing[relative] = str(source.relative_to(ROOT))
                continue
            pending.append(ROOT / relative)
    # Then each is in the asset (the generated platform document aside, it is written into the asset)
    assert not missing, f"add to LAMBDA_PACKAGES (stacks/constructs/lambda_factory.py): {missing}"
