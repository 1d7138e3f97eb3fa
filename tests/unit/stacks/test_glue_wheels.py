"""The Glue job's lock and its downloaded wheels (stacks/glue_wheels.py)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from stacks.glue_wheels import LOCK, WheelsMissing, locked_wheels, read_lock

SIX = "six-1.17.0-py2.py3-none-any.whl"
DATEUTIL = "python_dateutil-2.9.0.post0-py2.py3-none-any.whl"


def _lock(tmp_path: Path, wheels: dict[str, bytes], pins: dict[str, str]) -> Path:
    lines = []
    for name, version in pins.items():
        content = next(body for file, body in wheels.items() if file.split("-")[1] == version)
        lines.append(f"{name}=={version} \\\n    --hash=sha256:{hashlib.sha256(content).hexdigest()}")
    lock = tmp_path / "requirements-glue.lock"
    lock.write_text("# a comment\n" + "\n".join(lines) + "\n")
    return lock


def _wheels(tmp_path: Path, wheels: dict[str, bytes]) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    for name, body in wheels.items():
        (folder / name).write_bytes(body)
    return folder


def test_the_projects_lock_pins_every_wheel_with_a_hash() -> None:
    pins = read_lock(LOCK.read_text())
    assert {"pandas", "numpy", "pyarrow", "python-dateutil", "pytz", "six", "tzdata"} == set(pins)
    assert all(version and len(digests) == 1 for version, digests in pins.values())


def test_a_pin_without_a_hash_is_refused() -> None:
    with pytest.raises(ValueError, match=re.escape("not an exact pin with a sha256 hash: 'six==1.17.0'")):
        read_lock("six==1.17.0\n")
    with pytest.raises(ValueError, match="not an exact pin"):
        read_lock(f"six>=1.0 --hash=sha256:{'0' * 64}\n")


def test_each_pin_finds_its_wheel_by_normalised_name_and_version(tmp_path: Path) -> None:
    bodies = {SIX: b"six wheel", DATEUTIL: b"dateutil wheel", "six-1.16.0-py2.py3-none-any.whl": b"old six"}
    lock = _lock(tmp_path, bodies, {"six": "1.17.0", "python-dateutil": "2.9.0.post0"})
    wheels = locked_wheels(lock, _wheels(tmp_path, bodies))
    assert [(w.name, w.version, w.path.name, w.stem) for w in wheels] == [
        ("python-dateutil", "2.9.0.post0", DATEUTIL, DATEUTIL.removesuffix(".whl")),
        ("six", "1.17.0", SIX, SIX.removesuffix(".whl")),
    ]
    assert wheels[1].sha256 == hashlib.sha256(b"six wheel").hexdigest()


def test_a_wheel_not_downloaded_asks_for_make_install(tmp_path: Path) -> None:
    bodies = {SIX: b"six wheel", DATEUTIL: b"dateutil wheel"}
    lock = _lock(tmp_path, bodies, {"six": "1.17.0", "python-dateutil": "2.9.0.post0"})
    folder = _wheels(tmp_path, {SIX: b"six wheel"})
    with pytest.raises(WheelsMissing, match=r"wheels \['python-dateutil'\] are not in .*: run `make install`"):
        locked_wheels(lock, folder)


def test_a_wheel_whose_content_is_not_the_locked_one_is_refused(tmp_path: Path) -> None:
    lock = _lock(tmp_path, {SIX: b"six wheel"}, {"six": "1.17.0"})
    folder = _wheels(tmp_path, {SIX: b"something else"})
    with pytest.raises(ValueError, match=f"{SIX}: sha256 [0-9a-f]{{64}} is not the one requirements-glue.lock pins"):
        locked_wheels(lock, folder)
