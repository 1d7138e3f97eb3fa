"""Docker-free packaging of this repository's own Python packages as CDK assets.

The Lambda functions, the Glue job's ``--extra-py-files`` and the SageMaker ``sagemaker_submit_directory``
all ship code from this repository. A local bundler copies the named packages (only ``*.py`` files, no
caches, no tests) into the asset, so imports like ``from lambdas.shared import ...`` work unchanged in the
cloud, in tests and in the local cloud. Third-party dependencies come from layers or the managed container.

``generated`` files (path in the asset -> content; the platform document ``pipelines/datasets.json``) are
written into the asset next to the packages and are part of its hash: changing a declaration redeploys the code
that reads it.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import aws_cdk as cdk
import jsii

ROOT = Path(__file__).resolve().parents[2]

_SKIP_DIRS = {"__pycache__", "tests", "sample"}


def _python_files(package: str) -> list[Path]:
    base = ROOT / package
    if base.is_file() and base.suffix == ".py":
        return [base]
    if not base.is_dir():
        raise FileNotFoundError(f"package {package!r} not found under {ROOT}")
    return sorted(p for p in base.rglob("*.py") if not (_SKIP_DIRS & set(p.relative_to(ROOT).parts)))


Generated = Mapping[str, bytes]
"""Files written into an asset besides the packages: path in the asset -> content."""


def source_fingerprint(packages: tuple[str, ...], generated: Generated | None = None) -> str:
    """A content hash of the packaged files (and the generated ones): the asset hash and the code version of a
    model."""
    digest = hashlib.sha256()
    for package in packages:
        for path in _python_files(package):
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    for name, content in sorted((generated or {}).items()):
        digest.update(name.encode())
        digest.update(content)
    return digest.hexdigest()


def _members(packages: tuple[str, ...], generated: Generated | None) -> list[tuple[str, bytes]]:
    """(path in the asset, content) of every file, sorted by path; a generated file may not shadow a package's."""
    members = {str(p.relative_to(ROOT)): p.read_bytes() for package in packages for p in _python_files(package)}
    for name, content in (generated or {}).items():
        if name in members:
            raise ValueError(f"generated file {name!r} would replace a file of the packages {packages}")
        members[name] = content
    return sorted(members.items())


def copy_packages(packages: tuple[str, ...], output_dir: Path, generated: Generated | None = None) -> None:
    for name, content in _members(packages, generated):
        target = output_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def write_archive(packages: tuple[str, ...], archive: Path, generated: Generated | None = None) -> None:
    """Deterministic .zip or .tar.gz of the packages and the generated files (fixed mtimes, sorted names)."""
    members = _members(packages, generated)
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, content in members:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                zf.writestr(info, content, zipfile.ZIP_DEFLATED)
        return
    with tarfile.open(archive, "w:gz") as tf:
        for name, content in members:
            tar_info = tarfile.TarInfo(name)
            tar_info.size, tar_info.mode = len(content), 0o644
            tar_info.mtime, tar_info.uid, tar_info.gid, tar_info.uname, tar_info.gname = 0, 0, 0, "", ""
            tf.addfile(tar_info, io.BytesIO(content))


@jsii.implements(cdk.ILocalBundling)
class _LocalPackageBundler:
    def __init__(self, packages: tuple[str, ...], archive_name: str | None, generated: Generated | None) -> None:
        self._packages = packages
        self._archive_name = archive_name
        self._generated = dict(generated or {})

    def try_bundle(self, output_dir: str, *, image: cdk.DockerImage, **_: object) -> bool:
        out = Path(output_dir)
        if self._archive_name:
            write_archive(self._packages, out / self._archive_name, self._generated)
        else:
            copy_packages(self._packages, out, self._generated)
        return True


def bundling_options(
    packages: tuple[str, ...], archive_name: str | None = None, generated: Generated | None = None
) -> cdk.BundlingOptions:
    """Bundling that always succeeds locally (the Docker image is never used)."""
    return cdk.BundlingOptions(
        image=cdk.DockerImage.from_registry("local-bundling-only"),
        local=_LocalPackageBundler(packages, archive_name, generated),
        output_type=cdk.BundlingOutput.ARCHIVED if archive_name else cdk.BundlingOutput.NOT_ARCHIVED,
    )


def asset_hash(packages: tuple[str, ...], generated: Generated | None = None) -> str:
    return source_fingerprint(packages, generated)
