"""The golden path on one local cloud: ``mlops demo``'s whole loop (the automatic retrain on the labelled drifted
traffic and its canary, no upload), then the stack's teardown on the cloud the loop left behind (issue 5).

The demo runs once, in the module's fixture; the first test reads only its summary and output, so the
teardown (which deletes the stack) can run before or after it."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape as html_escape
from pathlib import Path
from typing import Any

import pytest

from localcloud.cloud import DEMO_TIME_SCALE, LocalCloud
from localcloud.demo import DemoOptions, run
from localcloud.lifecycle import Lifecycle
from stacks.config import StageConfig


@dataclass
class Demo:
    cloud: LocalCloud
    summary: dict[str, Any]
    output: str
    summary_path: Path
    report_path: Path


@pytest.fixture(scope="module")
def demo(assembly: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo, run on a cloud that stays up afterwards (stopped after the module)."""
    workdir = tmp_path_factory.mktemp("demo")
    out = io.StringIO()
    summary_path, report_path = workdir / "summary.json", workdir / "report.html"
    cloud = LocalCloud(workdir=workdir / "cloud", time_scale=DEMO_TIME_SCALE).start()
    try:
        summary = run(DemoOptions(assembly=assembly, summary=summary_path, report=report_path), out=out, cloud=cloud)
        yield Demo(cloud, summary, out.getvalue(), summary_path, report_path)
    finally:
        cloud.stop()


def test_the_demo_shows_the_full_loop_with_the_automatic_retrain(demo: Demo) -> None:
    summary, text = demo.summary, demo.output
    # Given the demo's run on the synthesized app
    # Then every stage of the loop is shown and checked
    failed = [name for name, ok in summary["checks"].items() if not ok]
    assert not failed, text
    assert json.loads(demo.summary_path.read_text())["checks"] == summary["checks"]
    # And the summary tells the story: two training runs (the upload, the retrain the drift alarm started), no
    # second upload; the alarm's challenger learned from the labelled drifted traffic, was tested on the newest
    # labelled rows and won
    triggers = [e["trigger"] for e in summary["executions"] if e["machine"].endswith("training-pipeline")]
    assert [t.split()[0] for t in triggers] == ["upload", "alarm"], triggers
    statuses = [p["status"] for p in summary["model_packages"]]
    assert statuses == ["Approved", "Approved"], summary["model_packages"]
    retrained = summary["model_packages"][1]
    assert retrained["trigger"].startswith("alarm ") and retrained["production_train_rows"] >= 1000, retrained
    assert retrained["test_data"] == "production: the 500 most recent labelled rows", retrained
    # And the clients saw the canary: a slice of the answers came from the challenger while the champion answered
    # the rest, then the challenger answered all of them
    champion, challenger = (p["model_version"] for p in summary["model_packages"] if p["status"] == "Approved")
    shares = [s["shares"] for s in summary["traffic"]["shares_over_time"]]
    assert any(0 < s.get(challenger, 0) < 1 and 0 < s.get(champion, 0) < 1 for s in shares), shares
    assert shares[-1] == {challenger: 1.0}, shares
    # And the progress output and the HTML report are there
    assert "[ 1] Synthesize the CDK app" in text and "=== Summary ===" in text and "PASS  challenger_promoted" in text
    html = demo.report_path.read_text()
    assert "<svg" in html and "Retrain decisions" in html and "mlops-dev-churn-drift" in html
    assert f"<td>{html_escape(retrained['training_data'])}</td>" in html
    # And the drift monitor's own report (plots of baseline vs current) sits next to it, linked
    drift_html = demo.report_path.with_suffix(".drift.html")
    assert drift_html.name in html and "<svg" in drift_html.read_text()


def test_destroying_the_stack_after_the_loop_removes_what_the_pipeline_created_and_keeps_the_data(
    demo: Demo, config: StageConfig
) -> None:
    cloud = demo.cloud
    lc = Lifecycle(cloud, cloud.deployments[config.stack_name], config.dataset)
    sm, s3 = cloud.clients.sagemaker, cloud.clients.s3
    # Given the stack after the whole loop: two deployments created endpoints, endpoint configs and models
    assert sm.list_endpoints()["Endpoints"] and len(sm.list_models()["Models"]) >= 2
    raw = [(key, version) for key, version in lc.raw_versions() if not version.startswith("DELETE-MARKER")]
    assert len(raw) >= 2  # the samples and the label files
    # When the stack is destroyed
    cloud.destroy(lc.deployment.stack_name)
    # Then the custom resource removed the pipeline's endpoints, endpoint configs and models
    prefix = lc.endpoint_name.rsplit("-", 1)[0]
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"] if e["EndpointName"].startswith(prefix)] == []
    assert [
        c for c in sm.list_endpoint_configs()["EndpointConfigs"] if c["EndpointConfigName"].startswith(prefix)
    ] == []
    assert [m for m in sm.list_models()["Models"] if m["ModelName"].startswith(prefix)] == []
    # And the retained data buckets and their objects are still there (every raw object version included)
    for bucket in (lc.raw_bucket, lc.curated_bucket, lc.artifacts_bucket):
        s3.head_bucket(Bucket=bucket)
    for key, version in raw:
        assert s3.head_object(Bucket=lc.raw_bucket, Key=key, VersionId=version)["VersionId"] == version
    # And the stack itself is gone
    stacks = cloud.clients.cloudformation.list_stacks()["StackSummaries"]
    assert [s["StackStatus"] for s in stacks if s["StackName"] == lc.deployment.stack_name] == ["DELETE_COMPLETE"]
