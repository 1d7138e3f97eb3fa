"""Docker-free packaging of this repository's own Python packages as CDK assets.

The Lambda functions, the Glue job's ``--extra-py-files`` and the SageMaker ``sagemaker_submit_directory``
all ship code from this repository. A local bundler copies the named packages (only ``*.py`` files, no
caches, no tests) into the asset, so imports like ``from lambdas.shared import ...`` work unchanged in the
cloud, in tests and in the local cloud. Third-party dependencies come from layers or the managed container.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import zipfile
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


def source_fingerprint(packages: tuple[str, ...]) -> str:
    """A content hash of the packaged files: the asset hash and the code version of a model."""
    digest = hashlib.sha256()
    for package in packages:
        for path in _python_files(package):
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def copy_packages(packages: tuple[str, ...], output_dir: Path) -> None:
    for package in packages:
        for path in _python_files(package):
            target = output_dir / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def write_archive(packages: tuple[str, ...], archive: Path) -> None:
    """Deterministic .zip or .tar.gz of the packages (fixed mtimes, sorted names)."""
    files = [p for package in packages for p in _python_files(package)]
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in files:
                info = zipfile.ZipInfo(str(path.relative_to(ROOT)), date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                zf.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
        return
    with tarfile.open(archive, "w:gz") as tf:
        for path in files:
            tar_info = tf.gettarinfo(str(path), arcname=str(path.relative_to(ROOT)))
            tar_info.mtime, tar_info.uid, tar_info.gid, tar_info.uname, tar_info.gname = 0, 0, 0, "", ""
            with path.open("rb") as fh:
                tf.addfile(tar_info, fh)


@jsii.implements(cdk.ILocalBundling)
class _LocalPackageBundler:
    def __init__(self, packages: tuple[str, ...], archive_name: str | None) -> None:
        self._packages = packages
        self._archive_name = archive_name

    def try_bundle(self, output_dir: str, *, image: cdk.DockerImage, **_: object) -> bool:
        out = Path(output_dir)
        if self._archive_name:
            write_archive(self._packages, out / self._archive_name)
        else:
            copy_packages(self._packages, out)
        return True


def bundling_options(packages: tuple[str, ...], archive_name: str | None = None) -> cdk.BundlingOptions:
    """Bundling that always succeeds locally (the Docker image is never used)."""
    return cdk.BundlingOptions(
        image=cdk.DockerImage.from_registry("local-bundling-only"),
        local=_LocalPackageBundler(packages, archive_name),
        output_type=cdk.BundlingOutput.ARCHIVED if archive_name else cdk.BundlingOutput.NOT_ARCHIVED,
    )


def asset_hash(packages: tuple[str, ...]) -> str:
    return source_fingerprint(packages)
