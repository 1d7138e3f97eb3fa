"""An A/B experiment's record (``s3://<artifacts>/monitoring/experiments/<dataset>/<experiment config>/
experiment.json``): written by the deploy Lambda when the two-variant config is in service, then by the evaluator
at every look (its decision, with the numbers), and finally with the decision that ended it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from lambdas.deploy.models import ExperimentConfig

RECORD_FILE = "experiment.json"
REPORT_FILE = "report.html"
CHALLENGER_VARIANT = "Challenger"
"""The challenger's production variant during an experiment (the champion keeps the serving variant's name, so
the endpoint's guardrail alarms, autoscaling and later blue/green updates keep working on it)."""


class Side(BaseModel):
    """One variant of the experiment: its model and the single-variant config that serves it alone."""

    model_config = ConfigDict(extra="forbid")

    variant: str
    model_name: str
    endpoint_config_name: str  # the config the evaluator updates the endpoint to when this side wins
    model_version: str = ""
    model_package_arn: str = ""


class Look(BaseModel):
    """One evaluation: when, the decision and its numbers (``pipelines.experiments.sequential.Decision``), and
    each variant's mean with its own always-valid interval (the report's bands)."""

    model_config = ConfigDict(extra="forbid")

    at: str
    decision: dict[str, Any]
    variants: dict[str, dict[str, float]]  # variant -> n, mean, low, high
    guardrail: str = ""  # a guardrail that stopped the experiment, if any


class ExperimentRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str
    endpoint_name: str
    experiment_config_name: str
    started_at: str  # ISO-8601 UTC: observations captured before it belong to no variant of this experiment
    outcome: str  # resolved (a declaration without one: the task's default)
    design: ExperimentConfig
    champion: Side
    challenger: Side
    looks: list[Look] = []
    final: Look | None = None
    target_config_name: str | None = None  # where the final decision sent the endpoint
    registry_note: str = ""
    done: list[str] = []  # the final decision's actions that finished (registry, notification, endpoint)
