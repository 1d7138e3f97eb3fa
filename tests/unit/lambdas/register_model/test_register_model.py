"""RegisterModel: every challenger is recorded once, with its metrics, gate decision and lineage."""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.prepare_training.logic import find_champion
from lambdas.register_model import handler as register_handler
from lambdas.register_model import logic
from pipelines.evaluation import evaluate as ev
from pipelines.evaluation.smoke import SmokeResult
from pipelines.platform import platform
from pipelines.schema import ModelSpec
from stacks.config import EvaluationGate
from tests.samples import platform_for, use_platform
from tests.unit.lambdas.support import FakeContext

ARTIFACTS, GROUP = "artifacts-bucket", "mlops-dev-churn"  # churn's group in the dev platform document
EXECUTION = "day1-csv-0123456789abcdef"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
HYPERPARAMETERS = {"max_iter": 200, "learning_rate": 0.1, "max_leaf_nodes": 31, "l2_regularization": 0.0, "seed": 42}
GATE = EvaluationGate(primary_metric="auc", min_improvement=0.005, absolute_floor=0.70)
CONTRACT_KEYS = {
    "execution_id",
    "dataset_version",
    "raw_source",
    "report_uri",
    "evaluation_uri",
    "code_version",
    "model",
    "hyperparameters",
    "training_job",
    "primary_metric",
    "challenger_value",
    "champion_value",
    "champion_package_arn",
    "gate_reason",
    "model_version",
}
METADATA_VALUE = re.compile(r"^[\w\s.:/=+\-@]{1,256}$")  # the API's character class, in Python terms


def report(challenger_auc: float, champion_auc: float | None) -> dict[str, Any]:
    """An evaluation.json as the evaluation job builds it."""
    matrix = {"0": {"0": 500, "1": 50}, "1": {"0": 60, "1": 140}}
    challenger = ev.ModelEvaluation("churn-new", {"auc": challenger_auc, "accuracy": 0.81, "f1": 0.62}, matrix, 750)
    champion = (
        None
        if champion_auc is None
        else ev.ModelEvaluation("churn-old", {"auc": champion_auc, "accuracy": 0.80, "f1": 0.60}, {}, 750)
    )
    decision = ev.decide(challenger.metrics, None if champion is None else champion.metrics, GATE)
    return ev.build_report(challenger, champion, decision, GATE, SERVED)


SERVED = SmokeResult(True, "answered as the handler does", 2, 8, 0.0, 1e-6, 1.5, "serve")


def state(execution: str = EXECUTION, champion_arn: str | None = None) -> dict[str, Any]:
    prefix = "s3://curated-bucket/curated/dataset=churn/version=" + execution
    return {
        "dataset": "churn",
        "upload": {"bucket": "raw", "key": "datasets/churn/day1.csv", "version_id": "v1", "size": 9, "etag": "e"},
        "trigger": {"source": "s3-upload", "reason": "upload of s3://raw/datasets/churn/day1.csv"},
        "etl": {"job_run_id": "jr_1", "state": "SUCCEEDED"},
        "prepared": {
            "model_version": "churn-new",
            "training_job_name": f"mlops-test-train-{execution}",
            "evaluation_job_name": f"mlops-test-eval-{execution}",
            "curated": {
                "version": execution,
                "train_uri": f"{prefix}/split=train/",
                "validation_uri": f"{prefix}/split=validation/",
                "test_uri": f"{prefix}/split=test/",
                "report_uri": f"{prefix}/_quality_report.json",
                "rows": {"input": 5000, "valid": 4990, "rejected": 10},
                "source": {"bucket": "raw", "key": "datasets/churn/day1.csv", "version_id": "v1", "etag": "e"},
            },
            "champion": None
            if champion_arn is None
            else {"model_package_arn": champion_arn, "model_version": "churn-old", "model_data": "s3://x/m.tar.gz"},
            "champion_model_data": "s3://artifacts-bucket/evaluations/x/no-champion/",
            "evaluation_uri": f"s3://{ARTIFACTS}/evaluations/{execution}",
        },
        "training": {
            "job_name": f"mlops-test-train-{execution}",
            "model_data": f"s3://{ARTIFACTS}/models/mlops-test-train-{execution}/output/model.tar.gz",
        },
        "evaluation_job": {"job_name": f"mlops-test-eval-{execution}"},
    }


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=ARTIFACTS)
        sagemaker = boto3.client("sagemaker")
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        for name, value in {"INFERENCE_IMAGE": IMAGE, "CODE_VERSION": "abc123def456", "STAGE": "test"}.items():
            monkeypatch.setenv(name, value)
        _clear()
        yield {"s3": s3, "sagemaker": sagemaker}
    _clear()


def _clear() -> None:
    register_handler.settings.cache_clear()


def put_report(s3: Any, document: dict[str, Any], execution: str = EXECUTION) -> None:
    s3.put_object(Bucket=ARTIFACTS, Key=f"evaluations/{execution}/evaluation.json", Body=json.dumps(document))


def invoke(payload_state: dict[str, Any], execution: str = EXECUTION) -> dict[str, Any]:
    return dict(register_handler.handler({"execution": execution, "state": payload_state}, FakeContext()))


def packages(sagemaker: Any) -> list[dict[str, Any]]:
    summaries = sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    return [sagemaker.describe_model_package(ModelPackageName=s["ModelPackageArn"]) for s in summaries]


def emitted_metrics(stdout: str) -> list[tuple[str, float, list[str]]]:
    found = []
    for line in stdout.splitlines():
        if '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                found.append((metric["Name"], blob[metric["Name"]], directive["Dimensions"][0]))
    return found


def test_a_passing_challenger_is_approved_with_metrics_and_lineage(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an evaluation where the challenger beats the champion (auto approval)
    document = report(0.86, 0.84)
    put_report(aws["s3"], document)
    champion_arn = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{GROUP}/1"

    # When the step runs
    registration = invoke(state(champion_arn=champion_arn))

    # Then one package is Approved, described by the gate's reason
    (package,) = packages(aws["sagemaker"])
    reason = document["decision"]["reason"]
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["ApprovalDescription"] == reason
    # and it serves the trained archive with the inference code, in both content types
    (container,) = package["InferenceSpecification"]["Containers"]
    assert container["Image"] == IMAGE
    assert container["ModelDataUrl"] == state()["training"]["model_data"]
    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    assert package["InferenceSpecification"]["SupportedContentTypes"] == ["text/csv", "application/json"]
    # and its metrics are the evaluation report; code version and execution are recorded
    evaluation_json = f"s3://{ARTIFACTS}/evaluations/{EXECUTION}/evaluation.json"
    assert package["ModelMetrics"]["ModelQuality"]["Statistics"] == {
        "ContentType": "application/json",
        "S3Uri": evaluation_json,
    }
    assert package["MetadataProperties"] == {"CommitId": "abc123def456", "GeneratedBy": EXECUTION}
    # and the lineage keys are exactly the contract's, each a valid registry value
    lineage = package["CustomerMetadataProperties"]
    assert set(lineage) == CONTRACT_KEYS
    assert all(METADATA_VALUE.match(value) for value in lineage.values()), lineage
    assert lineage["execution_id"] == EXECUTION
    assert lineage["dataset_version"] == EXECUTION
    assert lineage["raw_source"] == "s3://raw/datasets/churn/day1.csv version v1"
    assert lineage["evaluation_uri"] == evaluation_json
    assert lineage["training_job"] == f"mlops-test-train-{EXECUTION}"
    assert lineage["hyperparameters"] == (
        "max_iter=200 learning_rate=0.1 max_leaf_nodes=31 l2_regularization=0.0 seed=42"
    )
    assert lineage["model"] == "estimator=hist_gradient_boosting"
    assert (lineage["primary_metric"], lineage["challenger_value"]) == ("auc", "0.86")
    assert lineage["champion_value"] == "0.84"
    assert lineage["champion_package_arn"] == champion_arn
    assert lineage["model_version"] == "churn-new"
    assert lineage["gate_reason"] == "challenger auc 0.8600 beats the champions 0.8400 by 0.0200 -required 0.0050-"
    # and $.registration is the contract's shape, for people too
    assert registration == {
        "passed": True,
        "model_package_arn": package["ModelPackageArn"],
        "model_version": "churn-new",
        "approval_status": "Approved",
        "subject": "MLOps test: churn model churn-new approved",
        "message": registration["message"],
        "decision": document["decision"],
    }
    message = registration["message"]
    assert f"Gate: {reason}" in message
    assert re.search(r"auc \*\s+0\.8600\s+0\.8400\s+\+0\.0200", message)
    assert re.search(r"accuracy\s+0\.8100\s+0\.8000\s+\+0\.0100", message)
    assert f"Dataset version: {EXECUTION} - 4990 valid rows of 5000 (10 rejected)" in message
    assert f"Champion: churn-old ({champion_arn})" in message
    console = "https://s3.console.aws.amazon.com/s3/object/artifacts-bucket?region=us-east-1&prefix=evaluations/"
    assert console in message
    # and one ModelRegistered count is emitted (Powertools adds the service dimension from the environment)
    assert [(n, v) for n, v, _ in emitted_metrics(capsys.readouterr().out)] == [("ModelRegistered", [1.0])]


def test_manual_approval_leaves_a_passing_model_pending(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given the prod approval mode (the stage's, in the platform document) and a first model that clears the floor
    use_platform(monkeypatch, tmp_path, replace(platform_for(), approval="manual"))
    put_report(aws["s3"], report(0.80, None))

    # When the step runs
    registration = invoke(state())

    # Then the package waits for a person, and the message says how to approve it
    (package,) = packages(aws["sagemaker"])
    assert package["ModelApprovalStatus"] == registration["approval_status"] == "PendingManualApproval"
    assert registration["passed"] is True
    assert registration["subject"] == "MLOps test: churn model churn-new registered, awaiting manual approval"
    assert "--model-approval-status Approved" in registration["message"]
    assert "Champion: none (first model" in registration["message"]
    assert package["CustomerMetadataProperties"]["champion_value"] == "none"


def test_a_failing_challenger_is_recorded_as_rejected_with_the_reason(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an evaluation where the champion wins
    document = report(0.80, 0.84)
    put_report(aws["s3"], document)

    # When the step runs
    registration = invoke(state())

    # Then the run is in the registry as Rejected, the reason as its approval description
    (package,) = packages(aws["sagemaker"])
    assert package["ModelApprovalStatus"] == registration["approval_status"] == "Rejected"
    assert package["ApprovalDescription"] == document["decision"]["reason"]
    assert package["ApprovalDescription"].startswith("champion wins: challenger auc 0.8000")
    assert registration["passed"] is False
    assert registration["subject"] == "MLOps test: churn model churn-new rejected"
    assert [(n, v) for n, v, _ in emitted_metrics(capsys.readouterr().out)] == [("ModelRejected", [1.0])]


def test_a_retried_step_registers_once_and_counts_once(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    # Given a step that already registered this execution
    put_report(aws["s3"], report(0.86, None))
    first = invoke(state())
    capsys.readouterr()

    # When Step Functions retries it
    second = invoke(state())

    # Then the registry holds one package and the retry returns the same registration, counting nothing
    assert len(packages(aws["sagemaker"])) == 1
    assert second == first
    assert emitted_metrics(capsys.readouterr().out) == []


@pytest.mark.parametrize(
    ("model", "lineage_model", "lineage_hyperparameters"),
    [
        (ModelSpec("random_forest", {"n_estimators": 300}), "estimator=random_forest", "seed=42 n_estimators=300"),
        (ModelSpec("hist_gradient_boosting", {"max_iter": 80}), "estimator=hist_gradient_boosting", None),
        (ModelSpec(entry_point="models/churn", hyperparameters={"depth": 3}), "entry_point=models/churn", "depth=3"),
    ],
)
def test_the_lineage_records_the_declared_estimator_and_its_hyperparameters(
    aws: dict[str, Any], model: ModelSpec, lineage_model: str, lineage_hyperparameters: str | None
) -> None:
    # Given the churn dataset declaring a model (a built-in estimator with hyperparameters, or a script)
    dataset = platform().dataset("churn")
    dataset = replace(dataset, schema=replace(dataset.schema, model=model))

    # When the Lambda's settings and the package's lineage are built for it
    settings = register_handler.settings().logic(dataset)
    lineage = logic.customer_metadata(
        execution=EXECUTION, state=state(), report=report(0.86, None), evaluation_uri="s3://a/b", settings=settings
    )

    # Then the registry says which model and with which hyperparameters (declared over the stage's that apply)
    assert lineage["model"] == lineage_model
    expected = (
        lineage_hyperparameters or "max_iter=80 learning_rate=0.1 max_leaf_nodes=31 l2_regularization=0.0 seed=42"
    )
    assert lineage["hyperparameters"] == expected


def test_a_retry_after_a_crash_completes_the_half_made_package(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a package created for this execution whose final update never happened (the Lambda died)
    document = report(0.86, None)
    put_report(aws["s3"], document)
    settings = register_handler.settings().logic(platform().dataset("churn"))
    request = logic.create_request(
        execution=EXECUTION,
        state=state(),
        report=document,
        evaluation_uri=f"s3://{ARTIFACTS}/evaluations/{EXECUTION}/evaluation.json",
        initial_status="PendingManualApproval",
        settings=settings,
    )
    arn = aws["sagemaker"].create_model_package(**request)["ModelPackageArn"]

    # When the retry runs
    registration = invoke(state())

    # Then it finishes that package instead of creating another
    (package,) = packages(aws["sagemaker"])
    assert registration["model_package_arn"] == arn
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["ApprovalDescription"] == document["decision"]["reason"]
    assert set(package["CustomerMetadataProperties"]) == CONTRACT_KEYS
    # and the registration is counted now, since the crashed attempt never got to
    assert [(n, v) for n, v, _ in emitted_metrics(capsys.readouterr().out)] == [("ModelRegistered", [1.0])]


def test_another_execution_with_a_similar_name_is_not_mistaken_for_this_one(aws: dict[str, Any]) -> None:
    # Given a package registered by execution "run-10"
    put_report(aws["s3"], report(0.86, None), execution="run-10")
    invoke(state("run-10"), execution="run-10")

    # When execution "run-1" registers
    put_report(aws["s3"], report(0.86, None), execution="run-1")
    registration = invoke(state("run-1"), execution="run-1")

    # Then it gets its own package
    assert len(packages(aws["sagemaker"])) == 2
    assert registration["model_package_arn"].endswith("/2")


def test_an_auto_approved_package_sends_one_approved_transition_only() -> None:
    # Given a recording registry
    calls: list[tuple[str, str | None]] = []

    class Recorder:
        def list_model_packages(self, **kwargs: Any) -> dict[str, Any]:
            return {"ModelPackageSummaryList": []}

        def describe_model_package(self, **kwargs: Any) -> dict[str, Any]:
            raise AssertionError("nothing to describe")

        def create_model_package(self, **kwargs: Any) -> dict[str, Any]:
            calls.append(("create", kwargs["ModelApprovalStatus"]))
            return {"ModelPackageArn": f"arn:aws:sagemaker:eu-west-1:1:model-package/{GROUP}/1"}

        def update_model_package(self, **kwargs: Any) -> dict[str, Any]:
            calls.append(("update", kwargs["ModelApprovalStatus"]))
            return {"ModelPackageArn": kwargs["ModelPackageArn"]}

    class Reports:
        def get_object(self, **kwargs: Any) -> dict[str, Any]:
            import io

            return {"Body": io.BytesIO(json.dumps(report(0.86, None)).encode())}

    settings = logic.RegisterSettings(GROUP, "auto", IMAGE, "abc", HYPERPARAMETERS, "churn", "dev")

    # When a passing model registers
    result = logic.register(execution=EXECUTION, state=state(), s3=Reports(), sagemaker=Recorder(), settings=settings)

    # Then it is created pending and approved once (the deployment rule reacts to Approved only)
    assert calls == [("create", "PendingManualApproval"), ("update", "Approved")]
    assert result.recorded and "region=eu-west-1" in result.message


def test_the_registered_champion_is_what_the_next_run_finds(aws: dict[str, Any]) -> None:
    # Given an auto-approved registration
    put_report(aws["s3"], report(0.86, None))
    registration = invoke(state())

    # When the next run's prepare step looks for the champion
    champion = find_champion(aws["sagemaker"], GROUP)

    # Then it is this package, with its archive and version
    assert champion == {
        "model_package_arn": registration["model_package_arn"],
        "model_version": "churn-new",
        "model_data": state()["training"]["model_data"],
    }


def test_a_missing_evaluation_report_names_the_object(aws: dict[str, Any]) -> None:
    # Given no evaluation.json / When the step runs / Then the error names it and the registry is unchanged
    uri = f"s3://{ARTIFACTS}/evaluations/{EXECUTION}/evaluation.json"
    with pytest.raises(logic.EvaluationNotFound, match=rf"no evaluation report at {uri} \(NoSuchKey\)"):
        invoke(state())
    assert packages(aws["sagemaker"]) == []


def in_job_state(execution: str = EXECUTION) -> dict[str, Any]:
    """An untuned run's state: the training job evaluated (its output archive in ``$.training``), no evaluation job."""
    run = state(execution)
    del run["evaluation_job"]
    job = run["training"]["job_name"]
    run["training"]["evaluation_archive"] = f"s3://{ARTIFACTS}/models/{job}/output/output.tar.gz"
    return run


def put_output_archive(s3: Any, files: dict[str, Any], execution: str = EXECUTION) -> None:
    """The training job's output.tar.gz (SageMaker packs /opt/ml/output/data with paths relative to it)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, document in files.items():
            body = json.dumps(document).encode()
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    key = in_job_state(execution)["training"]["evaluation_archive"].removeprefix(f"s3://{ARTIFACTS}/")
    s3.put_object(Bucket=ARTIFACTS, Key=key, Body=buffer.getvalue())


def test_an_evaluation_made_inside_the_training_job_is_published_with_the_package(aws: dict[str, Any]) -> None:
    # Given the training job's output archive with its evaluation, golden payloads and metrics, no evaluation job
    golden = {"model_version": "churn-new", "body": {"instances": [{"tenure": 1.0}]}}
    put_output_archive(aws["s3"], {"metrics.json": {}, "evaluation.json": report(0.86, None), "golden.json": golden})
    # When the step runs
    result = invoke(in_job_state())
    # Then the two files are where an evaluation job writes them, and the package points at the report
    folder = f"evaluations/{EXECUTION}/"
    listed = aws["s3"].list_objects_v2(Bucket=ARTIFACTS, Prefix=folder)["Contents"]
    assert sorted(o["Key"] for o in listed) == [f"{folder}evaluation.json", f"{folder}golden.json"]
    published = aws["s3"].get_object(Bucket=ARTIFACTS, Key=f"{folder}golden.json")["Body"].read()
    assert json.loads(published) == golden
    assert result["passed"] is True
    (package,) = packages(aws["sagemaker"])
    statistics = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    assert statistics == f"s3://{ARTIFACTS}/{folder}evaluation.json"


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        (
            None,
            r"no evaluation output at s3://\S+/output/output.tar.gz \(NoSuchKey\): the training job did not evaluate",
        ),
        ({"metrics.json": {}}, r"output.tar.gz holds no evaluation.json: the training job did not evaluate"),
        ({"evaluation.json": {}}, r"output.tar.gz holds no golden.json: the training job did not evaluate"),
    ],
)
def test_a_training_job_output_without_the_evaluation_registers_nothing(
    aws: dict[str, Any], files: dict[str, Any] | None, reason: str
) -> None:
    # Given no output archive, or one without the evaluation's files / When the step runs
    if files is not None:
        put_output_archive(aws["s3"], files)
    # Then it names what is missing and registers nothing
    with pytest.raises(logic.EvaluationNotFound, match=reason):
        invoke(in_job_state())
    assert packages(aws["sagemaker"]) == []


def test_a_candidate_whose_smoke_test_failed_is_not_registered_and_the_reason_says_why(
    aws: dict[str, Any],
) -> None:
    # Given an evaluation whose metrics pass the gate but whose archive the serving stack answered with a 500
    failed = SmokeResult(
        False, "POST /invocations (text/csv, 8 golden rows) answered 500: boom", 0, 8, None, 1e-6, 2.0, "serve"
    )
    decision = ev.refuse_unserved(ev.decide({"auc": 0.86}, None, GATE), failed)
    challenger = ev.ModelEvaluation("churn-new", {"auc": 0.86}, None, 750)
    put_report(aws["s3"], ev.build_report(challenger, None, decision, GATE, failed))
    # When the step runs
    # Then it refuses with the smoke test's reason (status code and body excerpt), and registers nothing
    with pytest.raises(logic.SmokeTestFailed) as error:
        invoke(state())
    assert str(error.value) == (
        "smoke test failed: POST /invocations (text/csv, 8 golden rows) answered 500: boom; nothing is registered"
    )
    assert packages(aws["sagemaker"]) == []


def test_a_report_without_a_smoke_test_is_not_registered(aws: dict[str, Any]) -> None:
    # Given an evaluation.json that records no smoke test (written by an evaluation job that did not serve the model)
    document = report(0.86, None)
    del document["smoke"]
    put_report(aws["s3"], document)
    # When the step runs / Then nothing is registered, and the error says the serving stack never answered
    with pytest.raises(logic.SmokeTestFailed, match="records no smoke test: the golden payloads were not answered"):
        invoke(state())
    assert packages(aws["sagemaker"]) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "none"),
        ("", "none"),
        (0.5, "0.5"),
        (
            "tie: challenger auc 0.8300 equals the champion's; an improvement",
            "tie: challenger auc 0.8300 equals the champions- an improvement",
        ),
        ("s3://b/k?versionId=1&x=(2)", "s3://b/k-versionId=1-x=-2-"),
        ("x" * 300, "x" * 256),
    ],
)
def test_metadata_values_use_the_registry_character_set(value: Any, expected: str) -> None:
    cleaned = logic.metadata_value(value)
    assert cleaned == expected
    assert METADATA_VALUE.match(cleaned)


def test_client_tokens_are_per_execution_and_valid() -> None:
    token = logic.client_token(EXECUTION)
    assert token == logic.client_token(EXECUTION) != logic.client_token("other")
    assert re.fullmatch(r"[a-zA-Z0-9-]{1,36}", token)


def test_a_tuned_model_records_its_tuning_job_trials_and_chosen_values(aws: dict[str, Any]) -> None:
    # Given a run whose challenger is the best trial of a tuning job (TuneModel's selection of its description)
    tuned = state()
    best = "mlops-test-churn-0123456789-003-a1b2c3d4"
    tuned["training"] = {
        "job_name": best,
        "model_data": f"s3://{ARTIFACTS}/models/{best}/output/model.tar.gz",
        "tuning": {
            "job_name": "mlops-test-churn-0123456789",
            "trials": {"Completed": 3, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 1, "Stopped": 0},
            "hyperparameters": {"max_iter": "150", "learning_rate": "0.0712"},
            "objective": {"Type": "Maximize", "MetricName": "validation:auc", "Value": 0.8731},
        },
    }
    settings = logic.RegisterSettings(GROUP, "auto", IMAGE, "abc", HYPERPARAMETERS, "churn", "dev")

    # When its lineage and notification are built
    lineage = logic.customer_metadata(
        execution=EXECUTION, state=tuned, report=report(0.86, None), evaluation_uri="s3://a/b", settings=settings
    )
    _, message = logic.notification(
        execution=EXECUTION,
        state=tuned,
        report=report(0.86, None),
        evaluation_uri="s3://a/b",
        settings=settings,
        package_arn=f"arn:aws:sagemaker:eu-west-1:123456789012:model-package/{GROUP}/1",
        status="Approved",
        model_version="churn-new",
    )

    # Then the registry says which tuning job, how many trials ran (completed of all), the chosen values and the
    # objective; the model's hyperparameters are the chosen values over the stage's; the model is the best trial's
    assert lineage["training_job"] == best
    assert lineage["tuning_job"] == "mlops-test-churn-0123456789"
    assert lineage["tuning_trials"] == "3/4 completed"
    assert lineage["tuned_hyperparameters"] == "learning_rate=0.0712 max_iter=150"
    assert lineage["tuning_objective"] == "validation:auc=0.8731 Maximize"
    recorded = dict(pair.split("=", 1) for pair in lineage["hyperparameters"].split())
    assert (recorded["max_iter"], recorded["learning_rate"], recorded["seed"]) == ("150", "0.0712", "42")
    assert (
        "Tuning job: mlops-test-churn-0123456789 (3/4 completed trials); best trial validation:auc=0.8731 "
        "Maximize with learning_rate=0.0712 max_iter=150" in message.splitlines()
    )
    # and an untuned run records none of it
    assert "tuning_job" not in logic.customer_metadata(
        execution=EXECUTION, state=state(), report=report(0.86, None), evaluation_uri="s3://a/b", settings=settings
    )


def test_a_retrains_package_names_the_upload_and_the_production_window_it_trained_and_tested_on(
    aws: dict[str, Any],
) -> None:
    # Given a retrain whose prepare step composed upload + production rows, the newest rows testing
    retrain = state()
    retrain["prepared"]["curated"]["data"] = {
        "mode": "with_production",
        "upload": {"version": "v1", "train_rows": 700, "test_rows": 0},
        "production": {
            "window_start": "2026-11-24T12:00:00Z",
            "window_end": "2026-12-01T12:00:00Z",
            "train_rows": 250,
            "test_rows": 50,
        },
        "test_from": "production",
    }
    settings = register_handler.settings().logic(platform().dataset("churn"))
    # When its lineage is built
    lineage = logic.customer_metadata(
        execution=EXECUTION, state=retrain, report=report(0.86, 0.84), evaluation_uri="s3://a/b", settings=settings
    )
    # Then the registry shows both parts of the training data and where the test set came from
    assert set(lineage) == CONTRACT_KEYS | {"training_data", "test_data"}
    assert lineage["training_data"] == (
        "upload v1 700 rows + production 250 labelled rows inferred 2026-11-24T12:00:00Z..2026-12-01T12:00:00Z"
    )
    assert lineage["test_data"] == "production: the 50 most recent labelled rows"
    assert all(METADATA_VALUE.match(value) for value in lineage.values()), lineage
    # And a retrain that fell back says why
    retrain["prepared"]["curated"]["data"] = {
        "mode": "upload_only",
        "reason": "0 labelled production rows in the last 7 days < min_labelled_rows 60: the latest upload only",
        "upload": {"version": "v1", "train_rows": None, "test_rows": 150},
        "test_from": "upload",
        "production": None,
    }
    fallback = logic.customer_metadata(
        execution=EXECUTION, state=retrain, report=report(0.86, 0.84), evaluation_uri="s3://a/b", settings=settings
    )
    assert fallback["training_data"].startswith("upload v1 only: 0 labelled production rows in the last 7 days")
    assert fallback["test_data"] == "upload v1 test split"
