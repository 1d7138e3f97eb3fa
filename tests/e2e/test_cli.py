"""The operations CLI end to end on one local cloud holding both stages (dev and prod stacks side by side), driven
through ``mlops`` only, as an operator would after ``mlops local up`` (the cloud's AWS_ENDPOINT_URL is set):

v1 by upload -> v2 by upload (a challenger that wins, rolled out by canary) -> ``mlops rollback --to 1`` serves v1
again through the canary path and retires v2 -> ``mlops retrain`` starts a guarded run whose gate measures against
the serving v1 (a tie against v2 would reject it), a second ``mlops retrain`` inside the cooldown is refused with the
reason -> ``mlops promote`` copies an approved dev model into prod pending manual approval -> ``mlops approve
--stage prod --wait`` deploys it. Every ``--json`` output parses; exit codes are checked at each step."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from localcloud import provision
from localcloud.cli import main
from localcloud.cloud import LocalCloud
from localcloud.lifecycle import Lifecycle
from pipelines.data.generator import generate
from stacks.config import load_config
from tests.e2e.conftest import SAMPLE


@dataclass
class Env:
    cloud: LocalCloud
    dev: Lifecycle
    prod: Lifecycle


@pytest.fixture(scope="module")
def env(assembly: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """dev and prod deployed into one local cloud; v1 of churn trained and serving in dev."""
    workdir = tmp_path_factory.mktemp("cli")
    prod_assembly = provision.synth("prod", workdir / "prod.out")
    cloud = LocalCloud(workdir=workdir / "cloud").start()
    try:
        dev = Lifecycle(cloud, cloud.deploy("dev", assembly=assembly), load_config("dev").dataset)
        cloud.prewarm = False  # prod's functions start on first use: two cores
        prod = Lifecycle(cloud, cloud.deploy("prod", assembly=prod_assembly), load_config("prod").dataset)
        dev.subscribe()
        dev.upload(pd.read_csv(SAMPLE), "customers-2026-11.csv")
        assert dev.wait_for_new_execution(dev.training_machine, []).status == "SUCCEEDED"
        assert dev.wait_for_new_execution(dev.deployment_machine, []).status == "SUCCEEDED"
        cloud.settle()
        yield Env(cloud, dev, prod)
    finally:
        cloud.stop()


def mlops(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    """Run ``mlops ARGV`` in this process (the local cloud's endpoint is in the environment): (exit code, stdout
    parsed as JSON when --json was given, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if "--json" in argv else out), err


def serving(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    """churn's entry of ``mlops status --json``."""
    code, status, err = mlops(capsys, "status", "--dataset", "churn", "--json", *argv)
    assert code == 0, err
    (churn,) = status["datasets"]
    return dict(churn)


def by_version(models: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {m["version"]: m for m in models}


def test_status_and_models_show_the_first_model_serving(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    # Given v1 trained from the upload and deployed
    # When the operator asks for the status and the registry
    code, status, _ = mlops(capsys, "status", "--json")
    # Then churn's last run succeeded, v1 is the champion and serves on two instances with all the traffic
    assert code == 0
    datasets = {d["dataset"]: d for d in status["datasets"]}
    assert set(datasets) == {"churn", "energy", "tickets"}  # the stack declares three; only churn got data
    churn = datasets["churn"]
    assert churn["last_run"]["status"] == "SUCCEEDED"
    assert churn["last_run"]["trigger"] == "s3-upload"
    assert churn["champion"]["version"] == 1 and churn["champion"]["metric"] == "auc"
    assert churn["endpoint"]["version"] == 1 and churn["endpoint"]["status"] == "InService"
    (variant,) = churn["endpoint"]["variants"]
    assert (variant["weight"], variant["instances"]) == (1.0, 2)
    assert churn["alarms"] == []
    code, models, _ = mlops(capsys, "models", "--dataset", "churn", "--json")
    assert code == 0 and by_version(models)[1]["role"] == "champion, serving"
    assert by_version(models)[1]["dataset_version"] and by_version(models)[1]["code_version"]
    # And the human form is a table
    code, text, _ = mlops(capsys, "models")
    assert text.splitlines()[0].split()[:4] == ["DATASET", "VERSION", "STATUS", "ROLE"]


def test_v2_by_upload_then_rollback_to_v1_through_the_canary(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    # Given v2, trained on new data by an upload, approved and rolled out
    dev = env.dev
    known = {e.name for e in dev.executions(dev.training_machine)}
    deployed = {e.name for e in dev.executions(dev.deployment_machine)}
    dev.upload(generate(8000, seed=2, drift=1.0), "customers-2026-12.csv")
    assert dev.wait_for_new_execution(dev.training_machine, known).status == "SUCCEEDED"
    assert dev.wait_for_new_execution(dev.deployment_machine, deployed).status == "SUCCEEDED"
    env.cloud.settle()
    assert serving(capsys)["endpoint"]["version"] == 2
    # When the operator rolls back to v1 and waits
    code, rolled, err = mlops(
        capsys, "rollback", "--dataset", "churn", "--to", "1", "--reason", "e2e", "--wait", "--json"
    )
    # Then the rollback deployment succeeded and v1 serves again
    assert code == 0, (rolled, err)
    assert (rolled["from_version"], rolled["to_version"], rolled["status"]) == (2, 1, "SUCCEEDED")
    assert "StartRollout" in err and "VerifyDeployment" in err  # the progress lines name every step
    status = serving(capsys)
    assert status["endpoint"]["version"] == 1 and status["champion"]["version"] == 1
    # And it went through the guarded path: an update rollout with the canary's traffic steps (v1's golden payloads
    # were answered by the serving stack in its evaluation job, before it was registered)
    code, run, _ = mlops(capsys, "runs", "show", rolled["execution_name"], "--json")
    steps = [s["step"] for s in run["steps"]]
    assert code == 0 and run["trigger"].startswith("rollback")
    for step in ("PrepareDeployment", "StartRollout", "WaitForRollout", "VerifyDeployment"):
        assert step in steps, steps
    notes = [n for n in dev.read_notifications() if "Rolled back endpoint" in (n["subject"] or "")]
    assert notes and "Strategy: CANARY" in notes[-1]["message"] and "Traffic shifting:" in notes[-1]["message"]
    # And v2 is retired (Rejected, marked), so v1 is the champion of the next gate
    models = by_version(mlops(capsys, "models", "--dataset", "churn", "--json")[1])
    assert models[2]["status"] == "Rejected" and models[2]["note"].startswith("rolled back: v1 serves again")
    assert models[1]["role"] == "champion, serving"


def test_retrain_runs_guarded_and_a_second_one_in_the_cooldown_is_refused(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given v1 serving after the rollback
    # When the operator retrains and waits for the run
    code, started, err = mlops(capsys, "retrain", "--dataset", "churn", "--reason", "e2e retrain", "--wait", "--json")
    # Then the guard started it, recorded as manual
    assert code == 0, (started, err)
    assert (started["decision"], started["trigger"], started["forced"], started["status"]) == (
        "started",
        "manual",
        False,
        "SUCCEEDED",
    )
    code, run, _ = mlops(capsys, "runs", "show", started["execution_name"], "--json")
    assert code == 0 and run["trigger"].startswith("manual")
    # And its challenger was measured against the serving v1, not the retired v2
    env.cloud.settle()
    models = by_version(mlops(capsys, "models", "--dataset", "churn", "--json")[1])
    newest = models[max(models)]
    arn_v1 = models[1]["arn"]
    described = env.dev.package_of(started["execution_name"])
    assert described is not None
    assert described["CustomerMetadataProperties"]["champion_package_arn"] == arn_v1, newest
    # When a second retrain is asked inside the cooldown
    code, refused, _ = mlops(capsys, "retrain", "--dataset", "churn", "--json")
    # Then it is refused with the guard's reason, exit code 1
    assert code == 1
    assert (refused["decision"], refused["guard"]) == ("suppressed", "cooldown")
    assert refused["reason"].startswith("cooldown: the last retrain started at ")
    assert refused["reason"].endswith("(--force bypasses it)")
    code, text, _ = mlops(capsys, "retrain", "--dataset", "churn")
    assert code == 1 and text.startswith("churn: retrain refused (cooldown): cooldown: the last retrain")


def test_promote_to_prod_then_approve_deploys_it(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    # Given an Approved dev version (v1)
    # When it is promoted to prod
    code, promoted, err = mlops(capsys, "promote", "1", "--to", "prod", "--dataset", "churn", "--json")
    # Then prod's registry holds the same model, pending manual approval, its artifact and evaluation copied
    assert code == 0, (promoted, err)
    target = promoted["target"]
    assert (target["stack"], target["status"], target["version"]) == ("mlops-prod", "PendingManualApproval", 1)
    prod_bucket = env.prod.deployment.outputs["ArtifactsBucket"]
    assert target["model_data"] == f"s3://{prod_bucket}/models/promoted/dev/mlops-dev-churn-v1/model.tar.gz"
    assert target["evaluation_uri"].startswith(f"s3://{prod_bucket}/evaluations/promoted-dev-mlops-dev-churn-v1/")
    package = env.prod.packages()[0]
    metadata = package["CustomerMetadataProperties"]
    assert metadata["promoted_from"] == promoted["source"]["model_package_arn"]
    assert metadata["promoted_from_stage"] == "dev" and metadata["dataset_version"]
    # And promoting again changes nothing
    again = mlops(capsys, "promote", "1", "--to", "prod", "--dataset", "churn", "--json")[1]
    assert again["copied"] is False and again["target"]["version"] == 1
    # When the prod approver approves it and waits
    code, approved, err = mlops(
        capsys, "approve", "1", "--stage", "prod", "--dataset", "churn", "--reason", "e2e", "--wait", "--json"
    )
    # Then prod's deployment state machine deployed it
    assert code == 0, (approved, err)
    assert approved["status"] == "Approved" and approved["deployment"]["status"] == "SUCCEEDED"
    prod = serving(capsys, "--stage", "prod")
    assert prod["endpoint"]["version"] == 1 and prod["champion"]["version"] == 1


def test_invoke_logs_and_error_paths(env: Env, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Given a CSV row of the declared features
    rows = pd.read_csv(SAMPLE)[env.dev.schema.feature_names].head(2)
    path = tmp_path / "rows.csv"
    rows.to_csv(path, index=False, header=False)
    # When it is sent to the endpoint
    code, answer, _ = mlops(capsys, "invoke", "--dataset", "churn", str(path), "--json")
    # Then the model answers per row
    assert code == 0 and len(answer["answer"]["predictions"]) == 2
    # And the retrain function's logs hold the decisions
    code, logs, _ = mlops(capsys, "logs", "retrain", "--json")
    assert code == 0 and any("retrain started" in e["message"] for e in logs["events"])
    # And unknown datasets, versions and runs are refused with exit code 2
    code, _, err = mlops(capsys, "models", "--dataset", "nope")
    assert code == 2 and "unknown dataset 'nope': stack mlops-dev declares churn" in err
    code, _, err = mlops(capsys, "approve", "99")
    assert code == 2 and "serves several datasets: pass --dataset (one of churn, energy, tickets)" in err
    code, _, err = mlops(capsys, "approve", "99", "--dataset", "churn")
    assert code == 2 and "dataset churn has no model version 99" in err
    code, _, err = mlops(capsys, "runs", "show", "no-such-run")
    assert code == 2 and "no run 'no-such-run'" in err
    code, _, err = mlops(capsys, "status", "--stage", "qa")
    assert code == 3 and "stack mlops-qa is not deployed" in err
