"""The test packages are deterministic: a flaky comparison once came from two zips of the same files made across
a 2-second boundary (``test_lambda_invoke.py::test_spec_of_reads_the_function_as_deployed``)."""

from __future__ import annotations

import time

import pytest

from tests.unit.localcloud.support import tar_gz, zip_package


def test_packages_of_the_same_files_are_the_same_bytes_whenever_they_are_made(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given packages of some files
    files = {"app.py": "def handler(event, context):\n    return 1\n", "lib/util.py": "X = 1\n"}
    first = (zip_package(files), tar_gz(files))
    # When the same files are packed an hour later (any moment past the zip format's 2-second clock)
    later = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: later)
    # Then the bytes are the same
    assert (zip_package(files), tar_gz(files)) == first
