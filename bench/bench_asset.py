"""Size of the zipped Lambda asset: the factory's packages archived by ``stacks/constructs/assets.py``.

Every function of the stack shares one code asset (``LambdaFactory``: the ``lambdas`` package and
``pipelines/schema.py``); heavy libraries come from layers. ``write_archive`` zips exactly the files the
bundler copies (``*.py`` only, no caches, no tests), deflated, which is what CDK uploads. The reference is
the uncompressed size of the same files, so the ratio is the compression ratio (information only).

Budget: the zip < 1 MB (1,000,000 bytes). ``python -m bench lambda_asset`` runs it (no size to shrink
in ``--quick``: the same measurement).
"""

from __future__ import annotations

import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.harness import Budget, Result

LIMIT_BYTES = 1_000_000
BUDGET = Budget(on="figure", op="<", limit=LIMIT_BYTES, unit="bytes")


@dataclass(frozen=True)
class AssetSize:
    packages: list[str]
    zip_bytes: int
    uncompressed_bytes: int
    files: int
    largest_files: dict[str, int]  # compressed bytes
    non_python_files: list[str]


def measure(packages: tuple[str, ...] | None = None) -> AssetSize:
    from stacks.constructs.assets import write_archive
    from stacks.constructs.lambda_factory import LAMBDA_PACKAGES

    chosen = packages or LAMBDA_PACKAGES
    with tempfile.TemporaryDirectory(prefix="bench-asset-") as directory:
        archive = Path(directory) / "lambda.zip"
        write_archive(chosen, archive)
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            names = [info.filename for info in infos]
            uncompressed = sum(info.file_size for info in infos)
        size = archive.stat().st_size
    largest = sorted(infos, key=lambda info: info.compress_size, reverse=True)[:5]
    return AssetSize(
        packages=list(chosen),
        zip_bytes=size,
        uncompressed_bytes=uncompressed,
        files=len(names),
        largest_files={info.filename: info.compress_size for info in largest},
        non_python_files=[n for n in names if not n.endswith(".py")],
    )


def run(quick: bool = False) -> list[Result]:
    """One row: the zipped asset's bytes against the same files uncompressed."""
    measured = measure()
    problems = []
    if measured.non_python_files:
        problems.append(f"non-Python files in the asset: {measured.non_python_files}")
    return [
        Result.measured(
            "lambda_asset",
            figure=float(measured.zip_bytes),
            unit="bytes",
            reference=float(measured.uncompressed_bytes),
            reference_label="same files uncompressed",
            budget=BUDGET,
            problems=problems,
            note=f"{measured.files} files from {', '.join(measured.packages)}",
            details=asdict(measured),
        )
    ]
