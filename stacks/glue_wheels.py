"""The Glue ETL job's packaged Python environment: the wheels of ``requirements-glue.lock``.

``make install`` downloads them into ``build/glue-wheels`` (pip download --require-hashes, Glue 5.0's platform:
Makefile, ``GLUE_WHEELS``); the stack publishes each as a file asset and the job installs them from S3 with pip
``--no-index`` (``stacks/constructs/data_lake.py``). This module reads the lock and finds each pinned wheel in the
download folder, checking its sha256 against the lock: a synth never publishes a wheel the lock does not name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from stacks.constructs.assets import ROOT

LOCK = ROOT / "requirements-glue.lock"
WHEELS = ROOT / "build" / "glue-wheels"

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s\\;]+)")
_HASH = re.compile(r"--hash=sha256:(?P<digest>[0-9a-f]{64})")


class WheelsMissing(FileNotFoundError):
    """The lock's wheels are not downloaded (``make install`` downloads them)."""


@dataclass(frozen=True)
class LockedWheel:
    name: str
    version: str
    sha256: str
    path: Path

    @property
    def stem(self) -> str:
        """The file name without ``.whl``: the asset's source hash, so its S3 key is the wheel's own file name."""
        return self.path.name.removesuffix(".whl")


def canonical(name: str) -> str:
    """PEP 503 normalised name (``python_dateutil`` and ``python-dateutil`` are one project)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(text: str) -> dict[str, tuple[str, frozenset[str]]]:
    """canonical name -> (version, sha256 digests) of a ``--require-hashes`` requirements file."""
    pins: dict[str, tuple[str, frozenset[str]]] = {}
    for entry in re.sub(r"\\\n", " ", text).splitlines():
        entry = entry.split("#", 1)[0].strip()
        if not entry:
            continue
        match = _PIN.match(entry)
        digests = frozenset(m["digest"] for m in _HASH.finditer(entry))
        if match is None or not digests:
            raise ValueError(f"not an exact pin with a sha256 hash: {entry!r}")
        pins[canonical(match["name"])] = (match["version"], digests)
    return pins


@cache
def _sha256(path: Path, size: int, mtime: float) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def locked_wheels(lock: Path = LOCK, directory: Path = WHEELS) -> tuple[LockedWheel, ...]:
    """Every pin of ``lock`` with its downloaded wheel, sorted by name; ``WheelsMissing`` when one is absent,
    ``ValueError`` when a wheel's content is not the one the lock hashes."""
    pins = read_lock(lock.read_text())
    found: dict[str, Path] = {}
    for path in sorted(directory.glob("*.whl")) if directory.is_dir() else []:
        name, version = path.name.split("-")[:2]
        if pins.get(canonical(name), ("",))[0] == version:
            found[canonical(name)] = path
    missing = sorted(set(pins) - set(found))
    if missing:
        raise WheelsMissing(
            f"the Glue job's wheels {missing} are not in {directory} (requirements-glue.lock): run `make install`"
        )
    wheels = []
    for name, (version, digests) in sorted(pins.items()):
        path = found[name]
        stat = path.stat()
        actual = _sha256(path, stat.st_size, stat.st_mtime)
        if actual not in digests:
            raise ValueError(f"{path.name}: sha256 {actual} is not the one requirements-glue.lock pins")
        wheels.append(LockedWheel(name, version, actual, path))
    return tuple(wheels)
