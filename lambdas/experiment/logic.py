"""The A/B experiment evaluator: one look at a dataset's running experiment, and the action its decision asks for.

A look (on the dataset's schedule, every ``serving.ab.evaluation_minutes``):

1. The endpoint must run an experiment: a production variant named ``Challenger`` (the deploy Lambda put it there
   with the experiment's record, ``monitoring/experiments/<dataset>/<experiment config>/experiment.json``). A
   record that already holds a final decision is not decided again.
2. The labelled outcomes per variant: the ground-truth Lambda's ``joined.jsonl`` lines (one per labelled request
   row, with the variant that answered) written since the experiment started, for requests captured between the
   start and ``max_duration - label_delay`` (later requests may not get their labels in time), each row once, scored
   with the experiment's outcome (``pipelines.experiments.outcomes``). Only rows whose label has arrived exist.
3. The challenger's guardrails: its own variant's 5XX errors and model-error rate over the last look's window,
   against the dataset's rollback thresholds (the endpoint's rollback alarms watch the champion's variant).
4. The sequential test (``pipelines.experiments.sequential.decide``), with the sample the maximum duration will
   reach at the current rate of labelled traffic (futility) and whether it has passed.
5. PROMOTE: UpdateEndpoint to the challenger's single-variant config (its package stays Approved: the champion
   now); STOP_WORSE / STOP_FUTILE: UpdateEndpoint back to the champion's config and the challenger's package is set
   to Rejected (the next challenger is measured against the model that serves). Both without a DeploymentConfig:
   the variant set changes, which SageMaker's blue/green guardrails do not allow. The decision and its numbers go
   to the package (ApprovalDescription and ``ab_*`` CustomerMetadataProperties) and to the topic.

The record keeps every look; ``report.html`` beside it draws them (``lambdas.experiment.report``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from lambdas.experiment.models import RECORD_FILE, REPORT_FILE, ExperimentRecord, Look
from lambdas.experiment.report import render
from lambdas.register_model.logic import metadata_value
from pipelines.experiments.outcomes import OUTCOMES, score
from pipelines.experiments.sequential import Arm, Decision, Design, decide, half_width
from pipelines.platform import experiment_prefix
from pipelines.schema import DatasetSchema

logger = logging.getLogger(__name__)

JOINED_FILE = "joined.jsonl"
FINAL_ACTIONS = frozenset({"registry", "notification", "endpoint"})
CHALLENGER_GUARDRAIL_METRICS = (("Invocation5XXErrors", "Sum"), ("InvocationModelErrors", "Average"))


@dataclass(frozen=True)
class EvaluatorSettings:
    dataset: str
    endpoint_name: str
    artifacts_bucket: str
    quality_prefix: str  # monitoring/quality/<dataset>/: the ground-truth Lambda's joined rows
    topic_arn: str
    schema: DatasetSchema
    error_5xx_count: int  # the dataset's rollback thresholds (stacks.config.AlarmThresholds)
    model_error_rate: float


@dataclass
class Clients:
    sagemaker: Any
    s3: Any
    cloudwatch: Any
    sns: Any
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


class Evaluator:
    def __init__(self, settings: EvaluatorSettings, clients: Clients) -> None:
        self.settings = settings
        self.clients = clients

    # ---- the look ------------------------------------------------------------------------------------------

    def evaluate(self) -> dict[str, Any]:
        s = self.settings
        try:
            live = self.clients.sagemaker.describe_endpoint(EndpointName=s.endpoint_name)
        except Exception as error:
            if "Could not find" in str(error) or "does not exist" in str(error):
                return {"status": "no_endpoint", "endpoint": s.endpoint_name}
            raise
        variants = [v.get("VariantName") for v in live.get("ProductionVariants", [])]
        config = live["EndpointConfigName"]
        key = f"{experiment_prefix(s.dataset, config)}{RECORD_FILE}"
        record = self._load(key) if len(variants) > 1 else None
        if record is None:
            return {"status": "no_experiment", "endpoint": s.endpoint_name, "endpoint_config": config}
        if record.final is not None and set(record.done) >= FINAL_ACTIONS:
            return {"status": "ended", "decision": record.final.decision, "target": record.target_config_name}
        if live.get("EndpointStatus") != "InService":
            return {"status": "waiting", "endpoint_status": live.get("EndpointStatus")}
        if record.final is None:
            look = self.look(record, self.clients.now())
            record.looks.append(look)
            if look.decision["verdict"] != "CONTINUE":
                winner = record.challenger if look.decision["verdict"] == "PROMOTE" else record.champion
                record.final, record.target_config_name = look, winner.endpoint_config_name
            self._save(key, record)  # the decision is kept before anything acts on it
            self._write_report(record)
        else:  # a look whose actions did not all finish (an error): finish them, never decide again
            look = record.final
        verdict = look.decision["verdict"]
        if record.final is not None:
            self._act(record, key)
        return {
            "status": "decided" if verdict != "CONTINUE" else "running",
            "verdict": verdict,
            "reason": look.decision["reason"],
            "record": f"s3://{s.artifacts_bucket}/{key}",
        }

    def design(self, record: ExperimentRecord) -> Design:
        ab = record.design
        return Design(
            minimum_detectable_effect=ab.minimum_detectable_effect,
            confidence=ab.confidence,
            higher_is_better=OUTCOMES[record.outcome].higher_is_better,
            power=ab.power,
        )

    def look(self, record: ExperimentRecord, now: datetime) -> Look:
        """The decision on the labelled outcomes so far (and the guardrails), without acting on it."""
        ab, design = record.design, self.design(record)
        started = _time(record.started_at)
        enrolment_end = started + timedelta(hours=ab.max_duration_hours - ab.label_delay_hours)
        arms = self.arms(record, started, enrolment_end)
        champion, challenger = arms[record.champion.variant], arms[record.challenger.variant]
        matured = (min(now - timedelta(hours=ab.label_delay_hours), enrolment_end) - started).total_seconds()
        window = (enrolment_end - started).total_seconds()
        projected = None
        if matured > 0:  # labelled traffic so far covers [start, now - label delay]: scale it to the window
            projected = (math.ceil(champion.n * window / matured), math.ceil(challenger.n * window / matured))
        ended = now >= started + timedelta(hours=ab.max_duration_hours)
        decision = decide(design, champion, challenger, projected=projected, ended=ended)
        guardrail = self.guardrail(record, now)
        if guardrail:
            decision = replace(decision, verdict="STOP_WORSE", reason=f"guardrail: {guardrail}; {decision.reason}")
        return Look(
            at=_iso(now),
            decision=_json_safe(decision),
            variants={variant: self._band(arm, design) for variant, arm in arms.items()},
            guardrail=guardrail,
        )

    def arms(self, record: ExperimentRecord, started: datetime, enrolment_end: datetime) -> dict[str, Arm]:
        """Each variant's outcomes: joined rows of requests captured in [start, enrolment end], each row once."""
        wanted = (record.champion.variant, record.challenger.variant)
        arms = {variant: Arm() for variant in wanted}
        seen: set[tuple[str, int]] = set()
        positive = self.settings.schema.positive if self.settings.schema.task == "binary" else None
        for row in self._joined_rows(started):
            variant, when = row.get("variant"), row.get("inference_time")
            if variant not in arms or not when:
                continue
            if not started <= _time(str(when)) <= enrolment_end:
                continue
            identity = (str(row.get("event_id") or row.get("id")), int(row.get("row") or 0))
            if identity in seen:  # a label file uploaded twice joins the same rows twice
                continue
            value = score(record.outcome, row, positive)
            if value is None:
                continue
            seen.add(identity)
            arms[str(variant)] = arms[str(variant)].add(value)
        return arms

    def _joined_rows(self, since: datetime) -> Iterator[dict[str, Any]]:
        """The ground-truth Lambda's joined rows of label files uploaded since ``since``: its output folders are
        ``<quality prefix><upload time %Y-%m-%dT%H-%M>/...``, so the listing starts after the experiment's start."""
        s = self.settings
        paginator = self.clients.s3.get_paginator("list_objects_v2")
        start_after = f"{s.quality_prefix}{since.astimezone(UTC):%Y-%m-%dT%H-%M}"
        for page in paginator.paginate(Bucket=s.artifacts_bucket, Prefix=s.quality_prefix, StartAfter=start_after):
            for obj in page.get("Contents", []):
                if not obj["Key"].endswith(f"/{JOINED_FILE}"):
                    continue
                body = self.clients.s3.get_object(Bucket=s.artifacts_bucket, Key=obj["Key"])["Body"].read()
                for line in body.decode("utf-8").splitlines():
                    if line.strip():
                        yield json.loads(line)

    def guardrail(self, record: ExperimentRecord, now: datetime) -> str:
        """Why the challenger's own variant breaks the dataset's rollback thresholds over the last look's window
        (empty: it does not)."""
        s = self.settings
        minutes = record.design.evaluation_minutes
        limits = {"Invocation5XXErrors": float(s.error_5xx_count), "InvocationModelErrors": s.model_error_rate}
        for metric, statistic in CHALLENGER_GUARDRAIL_METRICS:
            points = self.clients.cloudwatch.get_metric_statistics(
                Namespace="AWS/SageMaker",
                MetricName=metric,
                Dimensions=[
                    {"Name": "EndpointName", "Value": s.endpoint_name},
                    {"Name": "VariantName", "Value": record.challenger.variant},
                ],
                StartTime=now - timedelta(minutes=minutes),
                EndTime=now + timedelta(minutes=1),  # the minute in progress is a period of its own
                Period=60,
                Statistics=[statistic],
            ).get("Datapoints", [])
            worst = max((float(p[statistic]) for p in points), default=0.0)
            if worst >= limits[metric]:
                return (
                    f"the challenger's {metric} ({statistic} per minute) reached {worst:g}, the rollback threshold is "
                    f"{limits[metric]:g}"
                )
        return ""

    @staticmethod
    def _band(arm: Arm, design: Design) -> dict[str, float]:
        """A variant's mean with its own always-valid interval (the same mixture, on one sample)."""
        if arm.n < 2 or arm.variance <= 0:
            return {"n": arm.n, "mean": arm.mean}
        h = half_width(arm.variance / arm.n, design)
        return {"n": arm.n, "mean": arm.mean, "low": arm.mean - h, "high": arm.mean + h}

    # ---- acting on a final decision ------------------------------------------------------------------------

    def _act(self, record: ExperimentRecord, key: str) -> None:
        """The final decision's actions, each once and recorded as done: the registry, the notification, then the
        endpoint update (last: the endpoint leaves the two-variant config, whose record the next look reads, so a
        failed action before it is retried by the next look)."""
        assert record.final is not None and record.target_config_name is not None
        decision = record.final.decision
        steps: tuple[tuple[str, Callable[[], None]], ...] = (
            ("registry", lambda: setattr(record, "registry_note", self._record_in_registry(record, decision))),
            ("notification", lambda: self._notify(record, decision)),
            (
                "endpoint",
                lambda: self.clients.sagemaker.update_endpoint(
                    EndpointName=self.settings.endpoint_name,
                    EndpointConfigName=record.target_config_name,
                    RetainAllVariantProperties=False,
                ),
            ),
        )
        for name, action in steps:
            if name in record.done:
                continue
            action()
            record.done.append(name)
            self._save(key, record)

    def _record_in_registry(self, record: ExperimentRecord, decision: dict[str, Any]) -> str:
        arn = record.challenger.model_package_arn
        if not arn:
            return "no package to record the decision in"
        promote = decision["verdict"] == "PROMOTE"
        package = self.clients.sagemaker.describe_model_package(ModelPackageName=arn)
        metadata = dict(package.get("CustomerMetadataProperties") or {})
        low, high = decision["interval"]
        metadata.update(
            {
                key: metadata_value(value)
                for key, value in {
                    "ab_decision": decision["verdict"],
                    "ab_outcome": record.outcome,
                    "ab_improvement": f"{decision['improvement']:.6g}",
                    "ab_interval": f"{low:.6g} to {high:.6g}" if low is not None else "none",
                    "ab_confidence": decision["confidence"],
                    "ab_n_champion": decision["n_champion"],
                    "ab_n_challenger": decision["n_challenger"],
                    "ab_mean_champion": f"{decision['mean_champion']:.6g}",
                    "ab_mean_challenger": f"{decision['mean_challenger']:.6g}",
                    "ab_experiment": f"s3://{self.settings.artifacts_bucket}/"
                    f"{experiment_prefix(record.dataset, record.experiment_config_name)}",
                }.items()
            }
        )
        description = " ".join(f"A/B experiment {decision['verdict']}: {decision['reason']}".split())[:1000]
        request: dict[str, Any] = {
            "ModelPackageArn": arn,
            "ApprovalDescription": description,
            "CustomerMetadataProperties": metadata,
        }
        if not promote and package.get("ModelApprovalStatus") == "Approved":
            request["ModelApprovalStatus"] = "Rejected"  # never the champion the next challenger is measured against
        self.clients.sagemaker.update_model_package(**request)
        return "Rejected" if "ModelApprovalStatus" in request else str(package.get("ModelApprovalStatus"))

    def _notify(self, record: ExperimentRecord, decision: dict[str, Any]) -> None:
        s = self.settings
        verdict = decision["verdict"]
        what = "promoted" if verdict == "PROMOTE" else "stopped"
        subject = f"{s.dataset}: A/B experiment {verdict}: model {record.challenger.model_version} {what}"
        lines = [
            f"A/B experiment on endpoint {s.endpoint_name} ({record.experiment_config_name}) ended: {verdict}.",
            f"Why: {decision['reason']}",
            f"Endpoint now updating to {record.target_config_name} (one variant: the "
            f"{'challenger' if verdict == 'PROMOTE' else 'champion'}).",
            f"Package {record.challenger.model_package_arn}: {record.registry_note}.",
            f"Report: s3://{s.artifacts_bucket}/{experiment_prefix(s.dataset, record.experiment_config_name)}"
            f"{REPORT_FILE}",
        ]
        self.clients.sns.publish(
            TopicArn=s.topic_arn,
            Subject=subject[:100],
            Message="\n".join(lines),
            MessageAttributes={"outcome": {"DataType": "String", "StringValue": f"experiment-{verdict.lower()}"}},
        )

    # ---- storage -------------------------------------------------------------------------------------------

    def _load(self, key: str) -> ExperimentRecord | None:
        try:
            body = self.clients.s3.get_object(Bucket=self.settings.artifacts_bucket, Key=key)["Body"].read()
        except Exception as error:
            if "NoSuchKey" in str(error) or "Not Found" in str(error):
                logger.warning("the endpoint runs two variants but has no experiment record at %s", key)
                return None
            raise
        return ExperimentRecord.model_validate_json(body)

    def _save(self, key: str, record: ExperimentRecord) -> None:
        self.clients.s3.put_object(
            Bucket=self.settings.artifacts_bucket,
            Key=key,
            Body=record.model_dump_json(indent=1).encode(),
            ContentType="application/json",
        )

    def _write_report(self, record: ExperimentRecord) -> None:
        self.clients.s3.put_object(
            Bucket=self.settings.artifacts_bucket,
            Key=f"{experiment_prefix(record.dataset, record.experiment_config_name)}{REPORT_FILE}",
            Body=render(record).encode(),
            ContentType="text/html",
        )


def _json_safe(decision: Decision) -> dict[str, Any]:
    """The decision's numbers with an unbounded interval end as None (JSON has no infinity)."""
    data = decision.as_dict()
    data["interval"] = [_finite(v) for v in decision.interval]
    return data
