"""The one table of cloud delays: every figure has a source, and the documentation shows every row."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from localcloud import durations

DOC = Path(__file__).resolve().parents[3] / "docs" / "local-cloud.md"


@pytest.mark.parametrize("row", durations.TABLE, ids=lambda r: r.key)
def test_every_figure_has_a_basis_a_source_and_typical_within_upper(row: durations.Delay) -> None:
    assert row.basis in ("doc", "measured", "assumption")
    assert row.source.strip() and row.what.strip()
    assert 0 <= row.typical <= row.upper


@pytest.mark.parametrize("row", durations.TABLE, ids=lambda r: r.key)
def test_the_local_cloud_documentation_lists_every_row(row: durations.Delay) -> None:
    assert f"| `{row.key}` |" in DOC.read_text()


def test_a_figure_without_its_source_or_with_typical_over_upper_is_refused() -> None:
    with pytest.raises(ValueError, match="every figure needs its source"):
        durations.Delay("x", 1, 2, "assumption", " ", "what")
    with pytest.raises(ValueError, match=r"need 0 <= typical \(3\) <= upper \(2\)"):
        durations.Delay("x", 3, 2, "assumption", "a source", "what")


def test_an_unknown_key_names_what_exists() -> None:
    with pytest.raises(KeyError, match=re.escape("no delay 'sagemaker.endpoint.nope' in localcloud.durations")):
        durations.typical("sagemaker.endpoint.nope")
    assert durations.upper(durations.ENDPOINT_CREATE) >= durations.typical(durations.ENDPOINT_CREATE)
