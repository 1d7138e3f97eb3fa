"""The Lambda ETL of small uploads (stacks/constructs/lambda_etl.py) and the Choice that picks it over Glue."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stacks.config import LAMBDA_MAX_TIMEOUT_SECONDS, EtlSettings, StageConfig
from stacks.constructs.data_lake import DRIVER_CATALOG_ACTIONS
from tests.infrastructure.helpers import definition, of_type, policy_statements

ROLE = "PipelineLambdaEtlRunEtlInLambdaRole"


@pytest.fixture(scope="module")
def states(resources: dict[str, Any], config: StageConfig) -> dict[str, Any]:
    (machine,) = [
        v
        for v in of_type(resources, "AWS::StepFunctions::StateMachine").values()
        if v["Properties"]["StateMachineName"] == config.state_machine_name
    ]
    return dict(definition(machine)["States"])


@pytest.fixture(scope="module")
def function(resources: dict[str, Any]) -> dict[str, Any]:
    (fn,) = [
        v["Properties"]
        for k, v in of_type(resources, "AWS::Lambda::Function").items()
        if k.startswith("PipelineLambdaEtlRunEtlInLambda")
    ]
    return dict(fn)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_an_upload_of_at_most_the_threshold_runs_in_the_lambda_a_larger_one_in_glue(
    states: dict[str, Any], config: StageConfig
) -> None:
    # Given: an execution without curated data (an upload) passes NeedsEtl to the engine's Choice
    assert states["NeedsEtl"]["Default"] == "EtlEngine"
    engine = states["EtlEngine"]
    # Then: the S3 event's object.size (the start Lambda's $.upload.size) at or under the stage's threshold
    (choice,) = engine["Choices"]
    assert choice["Next"] == "RunEtlInLambda"
    assert choice["And"] == [
        {"Variable": "$.upload.size", "IsPresent": True},
        {"Variable": "$.upload.size", "NumericLessThanEquals": config.etl.lambda_max_bytes},
    ]
    assert engine["Default"] == "RunEtl"  # larger, or no size: Glue


def test_both_engines_leave_the_same_state_for_the_next_states(states: dict[str, Any]) -> None:
    glue, lambda_etl = states["RunEtl"], states["RunEtlInLambda"]
    assert glue["Next"] == lambda_etl["Next"] == "PrepareTraining"
    assert glue["ResultPath"] == lambda_etl["ResultPath"] == "$.etl"
    assert set(glue["ResultSelector"]) == set(lambda_etl["ResultSelector"]) == {"job_run_id.$", "state.$"}
    assert lambda_etl["Parameters"] == {  # payload_response_only: the Parameters are the payload
        "execution.$": "$$.Execution.Name",
        "dataset.$": "$.dataset",
        "upload.$": "$.upload",
    }
    # the task waits for the function's own timeout and a cold start, not for Glue's
    assert lambda_etl["TimeoutSeconds"] <= LAMBDA_MAX_TIMEOUT_SECONDS + 60


def test_the_function_fits_lambdas_limits_and_has_pandas(function: dict[str, Any], config: StageConfig) -> None:
    assert function["MemorySize"] == config.etl.lambda_memory_mb
    assert function["Timeout"] == config.etl.lambda_timeout_seconds <= LAMBDA_MAX_TIMEOUT_SECONDS
    assert len(function["Layers"]) == 2  # Powertools + AWS SDK for pandas (numpy, pandas, pyarrow)
    variables = function["Environment"]["Variables"]
    assert variables["ETL_MAX_BYTES"] == str(config.etl.lambda_max_bytes)
    assert variables["GLUE_DATABASE"] == config.glue_database_name
    assert "CURATED_BUCKET" in variables
    assert "EphemeralStorage" not in function  # nothing on /tmp: the default 512 MB


def test_the_role_reads_uploads_writes_its_outputs_and_nothing_else(resources: dict[str, Any]) -> None:
    statements = policy_statements(resources, ROLE)

    def resources_of(prefix: str) -> list[str]:
        found = [
            json.dumps(r)
            for s in statements
            if any(a.startswith(prefix) for a in _list(s["Action"]))
            for r in _list(s["Resource"])
        ]
        return sorted(found)

    writes = resources_of("s3:Put")
    assert [w.split('"')[-2] for w in writes] == ["/curated/*", "/manifests/*", "/quarantine/*"]
    assert all("DataLakeCurated" in w for w in writes)
    deletes = resources_of("s3:Delete")
    assert len(deletes) == 1 and deletes[0].endswith('"/curated/*"]]}')
    reads = [r for r in resources_of("s3:GetObject") if "/" in r]
    assert reads and all("DataLakeRaw" in r and '"/datasets/' in r for r in reads)
    glue = {a for s in statements for a in _list(s["Action"]) if a.startswith("glue:")}
    assert glue == set(DRIVER_CATALOG_ACTIONS)
    assert not [a for s in statements for a in _list(s["Action"]) if a.startswith(("sagemaker:", "states:", "iam:"))]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"lambda_timeout_seconds": 901}, "Lambda allows 1 to 900 s"),
        ({"lambda_memory_mb": 10_241}, "Lambda allows 128 to 10240 MB"),
        ({"lambda_max_bytes": -1}, r"0 \(every upload to Glue\) or more"),
        ({"lambda_max_bytes": 512 * 2**20}, "raise the memory or lower the threshold"),
    ],
)
def test_settings_outside_lambdas_limits_fail_at_synth(settings: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EtlSettings(**settings)
