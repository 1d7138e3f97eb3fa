"""The demo's own housekeeping (the scenario itself runs in tests/e2e/test_demo.py)."""

from __future__ import annotations

import time
from pathlib import Path

from localcloud.demo import remove_in_background


def test_the_scratch_directory_is_removed_by_a_detached_process(tmp_path: Path) -> None:
    # Given a scratch directory with nested files, as the cloud leaves them
    scratch = tmp_path / "cloud"
    for i in range(50):
        (scratch / f"worker-{i % 5}" / "layer").mkdir(parents=True, exist_ok=True)
        (scratch / f"worker-{i % 5}" / "layer" / f"f{i}.py").write_text("x = 1\n")
    # When the demo hands it over at its end
    remove_in_background(scratch)
    # Then the directory goes away, deleted by another process
    deadline = time.monotonic() + 30
    while scratch.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not scratch.exists()
