"""The demo's summary: collected from the local cloud's public APIs and its journal, printed as text, written as
JSON and as one self-contained HTML report (inline SVG charts, no external resources)."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from localcloud.clock import clock
from localcloud.runtime.journal import journal

# ---- collect -----------------------------------------------------------------------------------------------


def _trigger(execution: Any) -> str:
    trigger = execution.input.get("trigger")
    if isinstance(trigger, dict):
        if trigger.get("source") == "alarm":
            return f"alarm {trigger.get('alarm')}"
        return str(trigger.get("reason") or trigger.get("source"))
    return str(trigger or "-")


def _short(text: str | None, limit: int = 400) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


PRODUCTION_PART = re.compile(r"\+ production (\d+) labelled rows inferred (\S+)\.\.(\S+)$")
"""The production part of a retrain's ``training_data`` lineage (``lambdas/register_model/logic.py``
``data_lineage``): ``+ production <rows> labelled rows inferred <start>..<end>``."""


def training_data(meta: dict[str, Any], upload_train_rows: int | None = None) -> dict[str, Any]:
    """What trained and tested a registered model, from its registry lineage: a retrain records ``training_data``
    and ``test_data`` (the upload version and rows, the production window and rows); an upload's own run records
    neither, so its training data is the upload's train split (``upload_train_rows``, from the ETL's report)."""
    text = meta.get("training_data")
    if not text:
        rows = "?" if upload_train_rows is None else upload_train_rows
        return {
            "training_data": f"upload {meta.get('dataset_version')} {rows} rows",
            "test_data": f"upload {meta.get('dataset_version')} test split",
            "production_train_rows": 0,
            "production_window": None,
        }
    match = PRODUCTION_PART.search(str(text))
    return {
        "training_data": str(text),
        "test_data": str(meta.get("test_data") or "-"),
        "production_train_rows": int(match.group(1)) if match else 0,
        "production_window": f"{match.group(2)}..{match.group(3)}" if match else None,
    }


def _upload_train_rows(lc: Any, report_uri: Any) -> int | None:
    """The train split's rows of the ETL report at ``report_uri`` (an upload's dataset version), None if unread."""
    if not isinstance(report_uri, str) or not report_uri.startswith("s3://"):
        return None
    bucket, _, key = report_uri[len("s3://") :].partition("/")
    try:
        return int(lc.read_json(bucket, key)["splits"]["train"]["rows"])
    except Exception:  # a report that is gone or has no train split: the summary says "?"
        return None


RESPONSE_FIELDS: dict[str, set[str]] = {
    "binary": {"probability", "label"},
    "multiclass": {"label", "probabilities"},
    "regression": {"value"},
}
"""The fields of one prediction in the JSON answer of an endpoint, per task (``pipelines.inference``)."""


def answers_as_its_task(task: str, labels: list[Any], answer: dict[str, Any] | None) -> bool:
    """Whether ``answer`` (an endpoint's JSON to one row) has ``task``'s response shape: one prediction with
    exactly the task's fields; a multiclass one with a probability per declared class summing to 1 and one of them
    as its label; a binary one a probability in [0, 1]; a regression one a number."""
    predictions = (answer or {}).get("predictions")
    if not isinstance(predictions, list) or len(predictions) != 1 or not isinstance(predictions[0], dict):
        return False
    prediction = predictions[0]
    if set(prediction) != RESPONSE_FIELDS.get(task):
        return False
    if task == "regression":
        return isinstance(prediction["value"], int | float)
    if task == "binary":
        return 0.0 <= float(prediction["probability"]) <= 1.0
    probabilities = prediction["probabilities"]
    names = [str(label) for label in labels]
    return (
        isinstance(probabilities, dict)
        and sorted(probabilities) == sorted(names)
        and abs(sum(probabilities.values()) - 1.0) < 1e-6
        and str(prediction["label"]) in names
    )


def dataset_summary(lc: Any) -> dict[str, Any]:
    """One declared dataset as its user sees it: its task, its runs, its registry group, its endpoint and the
    answer the endpoint gives to a row of the dataset's sample."""
    endpoint = lc.endpoint() or {}
    packages = lc.packages()
    answer = lc.probe() if endpoint.get("EndpointStatus") == "InService" else None
    task, labels = lc.schema.task, [str(label) for label in lc.schema.labels]
    return {
        "name": lc.schema.name,
        "task": task,
        "labels": labels,
        "gate_metric": lc.schema.evaluation_gate.metric,
        "training_runs": [e.status for e in lc.executions(lc.training_machine)],
        "deployments": [e.status for e in lc.executions(lc.deployment_machine)],
        "model_packages": [p.get("ModelApprovalStatus") for p in packages],
        "endpoint": lc.endpoint_name,
        "status": endpoint.get("EndpointStatus"),
        "serving_model_version": None if answer is None else answer.get("model_version"),
        "answer": answer,
        "answer_fits_task": answers_as_its_task(task, labels, answer),
    }


def collect(
    cloud: Any, lc: Any, canary_answers: list[dict[str, Any]], options: Any, others: tuple[Any, ...] = ()
) -> dict[str, Any]:
    """The summary: executions, registry and endpoint (public APIs), drift and quality reports (S3), alarms and
    retrain decisions (the journal), notifications (the subscribed queue) and the answers the clients got
    while the canary ran, for ``lc``'s dataset (the demo's loop); and every dataset (``lc`` and ``others``) as
    ``dataset_summary`` sees it."""
    executions = [
        {
            "machine": e.machine,
            "name": e.name,
            "trigger": _trigger(e),
            "status": e.status,
            "seconds": None if e.seconds is None else round(e.seconds, 1),
            "error": e.error,
            "cause": _short(e.cause),
        }
        for e in lc.executions()
    ]
    triggers = {e["name"]: e["trigger"] for e in executions}
    packages = []
    for p in lc.packages():
        meta = p.get("CustomerMetadataProperties") or {}
        packages.append(
            {
                "version": p.get("ModelPackageVersion"),
                "status": p.get("ModelApprovalStatus"),
                "description": p.get("ApprovalDescription"),
                "model_version": meta.get("model_version"),
                "primary_metric": meta.get("primary_metric"),
                "challenger_value": meta.get("challenger_value"),
                "champion_value": meta.get("champion_value"),
                "dataset_version": meta.get("dataset_version"),
                "execution_id": meta.get("execution_id"),
                "trigger": triggers.get(str(meta.get("execution_id")), "-"),
                "code_version": meta.get("code_version"),
                **training_data(meta, _upload_train_rows(lc, meta.get("report_uri"))),
            }
        )
    endpoint = lc.endpoint() or {}
    from localcloud.shims import sagemaker_endpoints

    history = sagemaker_endpoints.history(cloud.account_id, cloud.region, lc.endpoint_name) if endpoint else []
    invocations = [
        {"endpoint": e, "variant": v, "model": m, **counts}
        for (e, v, m), counts in sorted(cloud.endpoints.counts.items())
    ]
    drift = []
    drift_prefix = f"monitoring/drift/{lc.schema.name}/"
    for key in sorted(k for k in lc.keys(lc.artifacts_bucket, drift_prefix) if k.endswith("report.json")):
        document = lc.read_json(lc.artifacts_bucket, key)
        drift.append(
            {
                "window_end": (document.get("window") or {}).get("end"),
                "verdict": document.get("verdict"),
                "overall_psi": document.get("overall_psi"),
                "rows": document.get("rows"),
                "drifted_features": document.get("drifted_features"),
                "report_html": f"s3://{lc.artifacts_bucket}/{key.replace('report.json', 'report.html')}",
            }
        )
    quality = []
    quality_prefix = f"monitoring/quality/{lc.schema.name}/"
    for key in sorted(k for k in lc.keys(lc.artifacts_bucket, quality_prefix) if k.endswith("summary.json")):
        document = lc.read_json(lc.artifacts_bucket, key)
        quality.append({"overall": document.get("overall"), "by_model_version": document.get("by_model_version")})
    alarms = [
        {"at": _iso(e.at), **{k: e.detail.get(k) for k in ("alarm", "previous", "state", "reason")}}
        for e in journal.of("alarm")
    ]
    decisions = []
    for entry in journal.of("invoke-async"):
        if "Retrain" not in str(entry.detail.get("target")) or entry.detail.get("outcome") != "ok":
            continue
        try:
            result = json.loads(entry.detail.get("result") or "{}")
        except json.JSONDecodeError:
            continue
        if isinstance(result, dict) and "decision" in result:
            decisions.append({k: result.get(k) for k in ("decision", "guard", "reason", "alarm", "execution_name")})
    notifications = [
        {"subject": n["subject"], "outcome": n["attributes"].get("outcome"), "at": n["at"]}
        for n in lc.read_notifications()
    ]
    summary: dict[str, Any] = {
        "stage": options.stage,
        "time_scale": options.time_scale,
        "finished_at": clock.now().isoformat(timespec="seconds"),
        "executions": executions,
        "model_packages": packages,
        "endpoint": {
            "name": lc.endpoint_name,
            "status": endpoint.get("EndpointStatus"),
            "config": endpoint.get("EndpointConfigName"),
            "variants": [
                {k: v.get(k) for k in ("VariantName", "CurrentWeight", "CurrentInstanceCount")}
                for v in endpoint.get("ProductionVariants", [])
            ],
            "serving_model_version": lc.served_model_version() if endpoint else None,
            "deployment_history": history,
        },
        "traffic": {"canary_answers": canary_answers, "shares_over_time": traffic_shares(canary_answers)},
        "invocations": invocations,
        "drift": drift,
        "quality": quality,
        "alarms": alarms,
        "retrain_decisions": decisions,
        "notifications": notifications,
        "raw_objects": len(lc.raw_versions()),
        "datasets": [dataset_summary(each) for each in (lc, *others)],
    }
    summary["checks"] = checks(summary)
    return summary


def keep_drift_report(lc: Any, summary: dict[str, Any], target: Path) -> None:
    """Copy the drift monitor's HTML report of the first drifted window next to the demo's report."""
    drifted = [d for d in summary["drift"] if d["verdict"] == "drift"]
    if not drifted:
        return
    key = drifted[0]["report_html"].split("/", 3)[3]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(lc.clients.s3.get_object(Bucket=lc.artifacts_bucket, Key=key)["Body"].read())
    summary["drift_report"] = str(target)


def _iso(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


# ---- checks: pure functions of the recorded observations -----------------------------------------------


def _training(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in summary["executions"] if e["machine"].endswith("training-pipeline")]


def _deployments(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in summary["executions"] if e["machine"].endswith("deployment")]


def _approved(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in summary["model_packages"] if p["status"] == "Approved"]


def canary_shift(answers: list[dict[str, Any]], old: str | None, new: str | None) -> bool:
    """A canary as the clients saw it: ``new`` answered part of the traffic while ``old`` still answered the
    rest (a slice before all of it), then ``new`` answered everything. A switch at once (no overlap), a rollback
    (``old`` answers last) or a deployment nobody sent traffic through shows no canary."""
    if not old or not new or old == new:
        return False
    models = [a["model"] for a in sorted(answers, key=lambda a: a["at"])]
    if new not in models or old not in models:
        return False
    first_new = models.index(new)
    last_old = len(models) - 1 - models[::-1].index(old)
    after = models[last_old + 1 :]
    return first_new < last_old and bool(after) and all(m == new for m in after)


def _canary_traffic_shift_observed(summary: dict[str, Any]) -> bool:
    approved = _approved(summary)
    if len(approved) < 2:
        return False
    answers = summary["traffic"]["canary_answers"]
    return canary_shift(answers, approved[-2]["model_version"], approved[-1]["model_version"])


def _automatic_retrain_started(summary: dict[str, Any]) -> bool:
    started = any(d["decision"] == "started" for d in summary["retrain_decisions"])
    return started and any(e["trigger"].startswith("alarm") for e in _training(summary))


def _promoted(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The newest approved package when it is a challenger (an earlier one was approved before it)."""
    approved = _approved(summary)
    return approved[-1] if len(approved) >= 2 else None


def _alarm_retrain_promoted(summary: dict[str, Any]) -> bool:
    """The promoted challenger was trained by the run the drift alarm started (no upload made it)."""
    promoted = _promoted(summary)
    return promoted is not None and str(promoted.get("trigger")).startswith("alarm")


def _challenger_learned_from_labelled_production(summary: dict[str, Any]) -> bool:
    """The promoted challenger's lineage names labelled production rows and their window among its training data,
    and production rows as the test set that beat the champion."""
    promoted = _promoted(summary)
    return (
        promoted is not None
        and int(promoted.get("production_train_rows") or 0) > 0
        and bool(promoted.get("production_window"))
        and str(promoted.get("test_data")).startswith("production:")
    )


def _new_champion_serving(summary: dict[str, Any]) -> bool:
    approved = _approved(summary)
    return bool(approved) and summary["endpoint"]["serving_model_version"] == approved[-1]["model_version"]


CHECKS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "first_run_succeeded": lambda s: bool(_training(s)) and _training(s)[0]["status"] == "SUCCEEDED",
    "endpoint_in_service": lambda s: s["endpoint"]["status"] == "InService",
    "drift_detected": lambda s: any(d["verdict"] == "drift" for d in s["drift"]),
    "no_drift_on_training_distribution": lambda s: any(d["verdict"] == "no_drift" for d in s["drift"]),
    "drift_alarm_fired": lambda s: any(a["state"] == "ALARM" and "drift" in str(a["alarm"]) for a in s["alarms"]),
    "automatic_retrain_started": _automatic_retrain_started,
    "challenger_promoted": lambda s: len(_approved(s)) >= 2,
    "alarm_retrain_promoted": _alarm_retrain_promoted,
    "challenger_learned_from_labelled_production": _challenger_learned_from_labelled_production,
    "canary_traffic_shift_observed": _canary_traffic_shift_observed,
    "all_deployments_succeeded": lambda s: (
        bool(_deployments(s)) and all(d["status"] == "SUCCEEDED" for d in _deployments(s))
    ),
    "new_champion_serving": _new_champion_serving,
    "quality_measured": lambda s: any((q.get("overall") or {}).get("auc") is not None for q in s["quality"]),
    "every_dataset_serving_its_task": lambda s: (
        len(s["datasets"]) >= 3 and all(d["status"] == "InService" and d["answer_fits_task"] for d in s["datasets"])
    ),
}
"""What the demo must show. Each is a pure function of the summary (what the APIs, the journal and the clients
recorded), so a test can feed it a summary in which its property does not hold. A challenger that ties and is
rejected is no longer part of the demo (its retrain learns from labelled production rows and wins):
``tests/e2e/test_feedback_loop.py`` shows that case (a retrain without labelled rows ties and is rejected)."""


def checks(summary: dict[str, Any]) -> dict[str, bool]:
    """Every check on ``summary`` (the end-to-end test asserts all of them)."""
    return {name: check(summary) for name, check in CHECKS.items()}


def traffic_shares(answers: list[dict[str, Any]], buckets: int = 24) -> list[dict[str, Any]]:
    """Each model's share of the answered requests in ``buckets`` equal slices of the answers' cloud time (the
    chart of the rollout as the clients saw it); empty slices are left out."""
    if not answers:
        return []
    times = [a["at"] for a in answers]
    start, span = min(times), max(max(times) - min(times), 1e-9)
    slices: list[dict[str, int]] = [{} for _ in range(buckets)]
    for answer in answers:
        index = min(buckets - 1, int((answer["at"] - start) / span * buckets))
        slices[index][answer["model"]] = slices[index].get(answer["model"], 0) + 1
    out = []
    for index, counts in enumerate(slices):
        total = sum(counts.values())
        if total:
            out.append(
                {
                    "at": _iso(start + span * index / buckets),
                    "requests": total,
                    "shares": {model: round(n / total, 4) for model, n in sorted(counts.items())},
                }
            )
    return out


# ---- output ------------------------------------------------------------------------------------------------


def _prediction(answer: dict[str, Any] | None) -> str:
    predictions = (answer or {}).get("predictions") or []
    return json.dumps(predictions[0], sort_keys=True)[:120] if predictions else "-"


def print_summary(summary: dict[str, Any], out: TextIO) -> None:
    w = out.write
    w("\n=== Summary ===\n")
    w(f"duration {summary.get('duration_seconds')} s (cloud time x{summary['time_scale']:g})\n\n")
    w("Datasets:\n")
    for d in summary.get("datasets", []):
        w(
            f"  {d['name']:<10} {d['task']:<10} runs {','.join(d['training_runs']) or '-'}; endpoint {d['endpoint']} "
            f"{d['status']}, serving {d['serving_model_version']}; answer {_prediction(d['answer'])}\n"
        )
    w("Executions:\n")
    for e in summary["executions"]:
        w(f"  {e['machine']:<28} {e['status']:<10} {str(e['seconds']) + ' s':>8}  {e['trigger']}\n")
        if e["status"] != "SUCCEEDED" and e["cause"]:
            w(f"      cause: {e['cause'][:160]}\n")
    w("Model packages:\n")
    for p in summary["model_packages"]:
        w(f"  v{p['version']} {p['status']:<22} {p['model_version']} ({p.get('trigger', '-')}): {p['description']}\n")
        w(f"      trained on {p.get('training_data', '-')}; tested on {p.get('test_data', '-')}\n")
    ep = summary["endpoint"]
    w(f"Endpoint {ep['name']}: {ep['status']} on {ep['config']}, serving {ep['serving_model_version']}\n")
    for event in ep.get("deployment_history") or []:
        if event.get("event") == "rolling-back":  # why SageMaker rolled an update back (the endpoint API says not)
            w(f"  {event.get('time')}  rolled back from {event.get('abandoned')}: {event.get('reason')}\n")
    w("Traffic while the canary ran (share of answers per model):\n")
    for s in summary["traffic"]["shares_over_time"]:
        shares = ", ".join(f"{model} {share:.0%}" for model, share in s["shares"].items())
        w(f"  {s['at']}  {s['requests']:>4} requests: {shares}\n")
    w("Invocations:\n")
    for i in summary["invocations"]:
        w(
            f"  {i['endpoint']:<22} {i['variant']:<11} {i['model']:<22} {i['invocations']:>6} calls, "
            f"{i['4xx']} 4xx, {i['5xx']} 5xx\n"
        )
    w("Drift (PSI):\n")
    for d in summary["drift"]:
        psi = "-" if d["overall_psi"] is None else f"{d['overall_psi']:.3f}"
        w(f"  {d['window_end']}  {d['verdict']:<18} overall {psi}  {', '.join(d['drifted_features'] or [])}\n")
    w("Alarms:\n")
    for a in summary["alarms"]:
        w(f"  {a['at']}  {a['alarm']}: {a['previous']} -> {a['state']}\n")
    w("Retrain decisions:\n")
    for d in summary["retrain_decisions"]:
        w(f"  {d['decision']:<10} {d['guard']:<10} {d['alarm']}: {d['reason']}\n")
    w(f"Notifications: {len(summary['notifications'])}\n")
    for n in summary["notifications"]:
        w(f"  [{n['outcome']}] {n['subject']}\n")
    w("Checks:\n")
    for name, ok in summary["checks"].items():
        w(f"  {'PASS' if ok else 'FAIL'}  {name}\n")
    if summary.get("report"):
        w(f"\nHTML report: {summary['report']}\n")
    if summary.get("drift_report"):
        w(f"Drift report of the first drifted window: {summary['drift_report']}\n")
    out.flush()


def write(summary: dict[str, Any], summary_path: Path | None, report_path: Path) -> None:
    """The HTML report, and the summary as JSON when ``summary_path`` is given (it names the report)."""
    summary["report"] = str(report_path)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(render_html(summary))
    if summary_path is not None:
        summary_path.parent.mkdir(parents=True, exist_ok=True)
        summary_path.write_text(json.dumps(summary, indent=2, default=str))


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _shares_svg(samples: list[dict[str, Any]]) -> str:
    """A line chart of each model's share of the answered requests over the canary's time slices."""
    if len(samples) < 1:
        return "<p>no traffic observed</p>"
    models = sorted({model for s in samples for model in s["shares"]})
    width, height, pad = 720, 220, 40
    n = max(1, len(samples) - 1)
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    paths = []
    for index, model in enumerate(models):
        points = []
        for i, sample in enumerate(samples):
            weight = sample["shares"].get(model, 0.0)
            x = pad + (width - 2 * pad) * i / n
            y = height - pad - (height - 2 * pad) * weight
            points.append(f"{x:.1f},{y:.1f}")
        color = colors[index % len(colors)]
        paths.append(f'<polyline fill="none" stroke="{color}" stroke-width="2.5" points="{" ".join(points)}"/>')
        paths.append(
            f'<text x="{width - pad + 4}" y="{pad + 14 * index}" fill="{color}" font-size="11">'
            f"{html.escape(model)}</text>"
        )
    axes = (
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#888"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#888"/>'
        f'<text x="4" y="{pad + 4}" font-size="11">100%</text><text x="10" y="{height - pad}" font-size="11">0%</text>'
        f'<text x="{pad}" y="{height - 8}" font-size="11">{html.escape(samples[0]["at"])}</text>'
        f'<text x="{width - pad - 150}" y="{height - 8}" font-size="11">{html.escape(samples[-1]["at"])}</text>'
    )
    return f'<svg width="{width + 160}" height="{height}" role="img">{axes}{"".join(paths)}</svg>'


def _drift_link(summary: dict[str, Any]) -> str:
    path = summary.get("drift_report")
    if not path:
        return ""
    name = html.escape(Path(path).name)
    return f'<p>The drift monitor\'s own report of the first drifted window: <a href="{name}">{name}</a></p>'


def _drift_svg(drift: list[dict[str, Any]], threshold: float = 0.2) -> str:
    values = [(d["window_end"], d["overall_psi"]) for d in drift if d["overall_psi"] is not None]
    if not values:
        return "<p>no drift measurement</p>"
    width, height, pad = 720, 200, 40
    top = max(threshold * 1.5, max(v for _, v in values) * 1.1)
    bar = (width - 2 * pad) / len(values)
    parts = []
    for i, (label, value) in enumerate(values):
        h = (height - 2 * pad) * value / top
        x = pad + i * bar + 4
        color = "#d62728" if value > threshold else "#2ca02c"
        parts.append(
            f'<rect x="{x:.1f}" y="{height - pad - h:.1f}" width="{bar - 8:.1f}" height="{h:.1f}" fill="{color}"/>'
        )
        parts.append(f'<text x="{x:.1f}" y="{height - pad - h - 4:.1f}" font-size="11">{value:.3f}</text>')
        parts.append(f'<text x="{x:.1f}" y="{height - 8}" font-size="10">{html.escape(str(label)[11:16])}</text>')
    y = height - pad - (height - 2 * pad) * threshold / top
    parts.append(f'<line x1="{pad}" y1="{y:.1f}" x2="{width - pad}" y2="{y:.1f}" stroke="#555" stroke-dasharray="4"/>')
    parts.append(f'<text x="{width - pad - 80}" y="{y - 4:.1f}" font-size="11">alarm {threshold}</text>')
    return f'<svg width="{width}" height="{height}" role="img">{"".join(parts)}</svg>'


def render_html(summary: dict[str, Any]) -> str:
    checks = summary.get("checks", {})
    check_rows = "".join(
        f'<li class="{"ok" if ok else "bad"}">{"✔" if ok else "✘"} {html.escape(name)}</li>'
        for name, ok in checks.items()
    )
    stages = _table(summary.get("stages", []), ["name", "seconds", "detail"])
    sections = [
        ("Checks", f"<ul>{check_rows}</ul>"),
        ("Stages", stages),
        (
            "Datasets (each declared dataset's runs, registry, endpoint and its answer to a row of its sample)",
            _table(
                [{**d, "answer": _prediction(d["answer"])} for d in summary.get("datasets", [])],
                [
                    "name",
                    "task",
                    "gate_metric",
                    "training_runs",
                    "deployments",
                    "model_packages",
                    "endpoint",
                    "status",
                    "serving_model_version",
                    "answer",
                    "answer_fits_task",
                ],
            ),
        ),
        ("Executions", _table(summary["executions"], ["machine", "name", "trigger", "status", "seconds", "cause"])),
        (
            "Model registry (what started each model's run, what it trained and was tested on: upload or labelled "
            "production rows, their window and row counts)",
            _table(
                summary["model_packages"],
                [
                    "version",
                    "status",
                    "model_version",
                    "primary_metric",
                    "challenger_value",
                    "champion_value",
                    "trigger",
                    "training_data",
                    "test_data",
                    "description",
                ],
            ),
        ),
        (
            "Traffic per model while the canary ran (share of the answers the clients got, over cloud time)",
            _shares_svg(summary["traffic"]["shares_over_time"]),
        ),
        (
            "Deployment history",
            _table(
                summary["endpoint"]["deployment_history"],
                sorted({k for e in summary["endpoint"]["deployment_history"] for k in e}),
            ),
        ),
        ("Invocations", _table(summary["invocations"], ["endpoint", "variant", "model", "invocations", "4xx", "5xx"])),
        (
            "Drift (overall PSI per hourly window)",
            _drift_link(summary)
            + _drift_svg(summary["drift"])
            + _table(
                summary["drift"], ["window_end", "verdict", "overall_psi", "rows", "drifted_features", "report_html"]
            ),
        ),
        ("Quality on ground truth", _table(summary["quality"], ["overall", "by_model_version"])),
        ("Alarms", _table(summary["alarms"], ["at", "alarm", "previous", "state", "reason"])),
        ("Retrain decisions", _table(summary["retrain_decisions"], ["decision", "guard", "alarm", "reason"])),
        ("Notifications", _table(summary["notifications"], ["at", "outcome", "subject"])),
    ]
    body = "".join(f"<h2>{html.escape(title)}</h2>{content}" for title, content in sections)
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px;vertical-align:top}th{background:#f3f3f3}"
        ".ok{color:#1a7f37}.bad{color:#c62828}li{list-style:none}"
    )
    title = f"MLOps local cloud demo ({summary['stage']}), {summary.get('duration_seconds', '?')} s"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
