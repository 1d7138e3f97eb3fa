"""Every handler reads its settings at first use, and a missing environment variable fails with its name
(pydantic's ValidationError, or SettingsError for the drift monitor's pydantic-free settings)."""

from __future__ import annotations

import importlib

import pytest
from pydantic import ValidationError

from lambdas.shared.settings import SettingsError

REQUIRED = {
    "batch_inference": "IDEMPOTENCY_TABLE",
    "cleanup": "RESOURCE_PREFIX",
    "deploy": "ENDPOINT_ROLE_ARN",
    "drift_monitor": "CURATED_BUCKET",
    "ground_truth": "ARTIFACTS_BUCKET",
    "pipeline_failure": "STAGE",
    "prepare_training": "CURATED_BUCKET",
    "register_model": "INFERENCE_IMAGE",
    "retrain": "GUARD_TABLE",
    "start_pipeline": "TOPIC_ARN",
}


@pytest.mark.parametrize(("function", "variable"), sorted(REQUIRED.items()))
def test_a_missing_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch, function: str, variable: str) -> None:
    # Given a handler whose environment lacks one of its required variables
    handler = importlib.import_module(f"lambdas.{function}.handler")
    monkeypatch.delenv(variable, raising=False)
    handler.settings.cache_clear()
    # When its settings are first read, then the error names the variable
    with pytest.raises((ValidationError, SettingsError), match=variable):
        handler.settings()
    handler.settings.cache_clear()
