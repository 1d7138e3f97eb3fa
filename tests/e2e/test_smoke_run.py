"""``make smoke`` (``mlops smoke``) against ``mlops local up``: the pipeline's smoke run, in another process, configured
only by the environment the banner prints, as GitHub Actions runs it against the deployed dev stack."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.e2e.served import ROOT, Served
from tests.e2e.test_local_up import served  # noqa: F401 (the fixture that starts `local up`)


def test_make_smoke_passes_against_the_local_cloud(served: Served, tmp_path: Path) -> None:  # noqa: F811
    # Given a freshly deployed stack served by `mlops local up`, and a shell with only the variables its banner prints
    summary = tmp_path / "smoke.json"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ENDPOINT_URL": served.endpoint_url,
        "AWS_CA_BUNDLE": served.verify,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    # When the workflow's smoke step runs: `make smoke STAGE=dev`
    done = subprocess.run(
        ["make", "-s", "smoke", "STAGE=dev", f"SMOKE_ARGS=--timeout 600 --poll 1 --summary {summary}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    # Then it passes, step by step
    assert done.returncode == 0, done.stdout + done.stderr
    assert "smoke run against mlops-dev (churn)" in done.stdout
    assert "smoke run passed in" in done.stdout
    result = json.loads(summary.read_text())
    assert list(result["steps"]) == [
        "stack outputs",
        "upload",
        "training run",
        "deployment",
        "endpoint in service",
        "invoke",
    ]
    # And the sample it uploaded is in the raw zone, under the dataset's prefix
    raw = served.outputs["RawBucket"]
    assert result["upload"].startswith("datasets/churn/smoke-")
    served.client("s3").head_object(Bucket=raw, Key=result["upload"])
    # And the first model was approved, deployed and is the one that answered the sample rows
    registration = result["registration"]
    assert registration["approval_status"] == "Approved"
    assert result["answer"]["model_version"] == registration["model_version"]
    assert len(result["answer"]["predictions"]) == 5
