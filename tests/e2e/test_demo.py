"""``mlops demo`` end to end: the whole loop on the synthesized stack, including the automatic retrain."""

from __future__ import annotations

import io
import json
from pathlib import Path

from localcloud.demo import DemoOptions, run


def test_the_demo_shows_the_full_loop_with_the_automatic_retrain(assembly: Path, tmp_path: Path) -> None:
    # Given the synthesized app
    out = io.StringIO()
    summary_path, report_path = tmp_path / "summary.json", tmp_path / "report.html"
    # When the demo runs
    summary = run(DemoOptions(assembly=assembly, summary=summary_path, report=report_path), out=out)
    # Then every stage of the loop is shown and checked
    failed = [name for name, ok in summary["checks"].items() if not ok]
    assert not failed, out.getvalue()
    assert json.loads(summary_path.read_text())["checks"] == summary["checks"]
    # And the summary tells the story: three training runs (upload, retrain on the drift alarm, new data)
    triggers = [e["trigger"] for e in summary["executions"] if e["machine"].endswith("training-pipeline")]
    assert [t.split()[0] for t in triggers] == ["upload", "alarm", "upload"], triggers
    statuses = [p["status"] for p in summary["model_packages"]]
    assert statuses == ["Approved", "Rejected", "Approved"], summary["model_packages"]
    # And the canary moved a slice of traffic before all of it
    shares = [sorted(r["weight"] for r in s["routes"]) for s in summary["endpoint"]["weights_over_time"]]
    assert [0.5, 0.5] in shares and shares[-1] == [1.0], shares  # a canary of one instance of the two
    # And the progress output and the HTML report are there
    text = out.getvalue()
    assert "[ 1] Synthesize the CDK app" in text and "=== Summary ===" in text and "PASS  challenger_promoted" in text
    html = report_path.read_text()
    assert "<svg" in html and "Retrain decisions" in html and "mlops-dev-drift" in html
    # And the drift monitor's own report (plots of baseline vs current) sits next to it, linked
    drift_html = report_path.with_suffix(".drift.html")
    assert drift_html.name in html and "<svg" in drift_html.read_text()
