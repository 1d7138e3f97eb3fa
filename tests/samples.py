"""The declared sample datasets as the tests use them (``datasets/<name>.yaml`` through the stack's loader), and
the platform document code under test reads (``pipelines/datasets.json`` in a deployed asset)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from pipelines import platform as platform_module
from pipelines.platform import Platform
from pipelines.schema import DatasetSchema
from stacks.config import load_config
from stacks.datasets import dataset_schema
from stacks.platform_document import build_platform

CHURN_SCHEMA = dataset_schema("churn")
TICKETS_SCHEMA = dataset_schema("tickets")  # multiclass, string labels, no key
ENERGY_SCHEMA = dataset_schema("energy")  # regression
SAMPLE_NAMES = ("churn", "energy", "tickets")


def platform_for(schemas: Iterable[DatasetSchema] | None = None, stage: str = "dev") -> Platform:
    """The document the stack would ship for ``schemas`` (default: the three samples) in ``stage``."""
    chosen = list(schemas) if schemas is not None else [dataset_schema(name) for name in SAMPLE_NAMES]
    return build_platform(load_config(stage), chosen)


def use_platform(monkeypatch: pytest.MonkeyPatch, folder: Path, document: Platform | None = None) -> Platform:
    """Make ``pipelines.platform.platform()`` read ``document`` (default: ``platform_for()``), written under
    ``folder`` as the stack writes it next to the code; the monkeypatch undoes it after the test."""
    document = document or platform_for()
    path = folder / platform_module.DOCUMENT_NAME
    path.write_text(document.to_json())
    monkeypatch.setattr(platform_module, "document_path", lambda: path)
    platform_module.clear_cache()
    return document
