"""Typed shapes of the deploy Lambda: its settings, its event, and what each step writes into the state.

The deployment state machine (stacks/constructs/serving.py) calls the Lambda with
``{"action": ..., "execution": <execution name>, "state": $}``; each step's result lands at the state path
named below (docs/contracts.md, "Deployment state machine").
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Strategy = Literal["CANARY", "LINEAR", "ALL_AT_ONCE", "SHADOW", "AB"]
Action = Literal["prepare", "rollout", "check", "compare_shadow", "verify", "explain_failure"]


class ExperimentConfig(BaseModel):
    """``stacks.config.ABSettings`` as the Lambdas receive it (``serving.ab``); checked at synth."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    challenger_share: float = Field(gt=0, lt=1)
    outcome: str
    minimum_detectable_effect: float = Field(ge=0)
    confidence: float = Field(ge=0.5, lt=1)
    power: float = Field(ge=0.5, lt=1)
    max_duration_hours: int = Field(gt=0)
    label_delay_hours: int = Field(ge=0)
    challenger_instance_count: int = Field(ge=1)
    evaluation_minutes: int = Field(ge=1, le=1440)


class ServingConfig(BaseModel):
    """``stacks.config.ServingSettings`` as the Lambda receives it (the dataset's ``serving`` in the platform
    document); extra keys are refused, so the two definitions cannot drift apart unnoticed (an infrastructure test
    parses every dataset's section of the synthesized document)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instance_type: str
    initial_instance_count: int = Field(ge=1)
    min_capacity: int = Field(ge=1)
    max_capacity: int = Field(ge=1)
    target_invocations_per_instance: int = Field(gt=0)
    strategy: Strategy
    canary_percent: int = Field(gt=0, le=50)
    linear_step_percent: int = Field(ge=10, le=50)
    bake_time_seconds: int = Field(ge=0, le=3600)
    termination_wait_seconds: int = Field(ge=0, le=3600)
    max_execution_timeout_seconds: int = Field(ge=600, le=28800)
    data_capture_percent: int = Field(ge=0, le=100)
    variant_name: str
    smoke_tolerance: float = Field(gt=0)
    shadow_bake_seconds: int = Field(ge=0)
    shadow_min_invocations: int = Field(ge=0)
    shadow_max_error_rate_increase: float = Field(ge=0)
    shadow_max_latency_ratio: float = Field(gt=0)
    shadow_min_agreement: float = Field(ge=0, le=1)
    # regression: relative error |shadow - production| / |production| of paired captured values. A retrained model
    # legitimately moves its answers a little (new data, new trees): the median bounds the typical request (5%),
    # the 90th percentile the tail, where sparse segments move most when new data arrives (20%). Defaults until
    # ``stacks.config.ServingSettings`` carries them (the platform engineer's file; then they are set per stage)
    shadow_max_median_relative_error: float = Field(default=0.05, ge=0)
    shadow_max_p90_relative_error: float = Field(default=0.2, ge=0)
    ab: ExperimentConfig | None = None

    @model_validator(mode="after")
    def _fleet_fits_the_strategy(self) -> ServingConfig:
        if self.strategy in ("CANARY", "LINEAR") and self.min_capacity < 2:
            raise ValueError(f"{self.strategy} needs at least 2 instances at every size (min_capacity)")
        return self


class Champion(BaseModel):
    """What the endpoint served when the deployment was prepared."""

    endpoint_config_name: str
    model_name: str


class Prepared(BaseModel):
    """``$.deploy``: the resources prepared for the approved package."""

    model_package_arn: str
    package_version: int
    model_version: str
    model_name: str
    endpoint_name: str
    endpoint_config_name: str  # production config: the new model takes all traffic
    shadow_config_name: str | None = None  # SHADOW with a live champion: champion + the new model as shadow
    shadow_variant_name: str | None = None
    # AB with a live champion: the champion's variant (weight 1 - share) and the new model as a second production
    # variant (weight share); the evaluator (lambdas/experiment) later updates the endpoint to one of the two
    experiment_config_name: str | None = None
    challenger_variant_name: str | None = None
    strategy: Strategy
    golden_uri: str
    champion: Champion | None = None


class Comparison(BaseModel):
    """Shadow vs production over the bake window: CloudWatch per variant, and the captured answers to the same
    requests (classification: label agreement; regression: relative error of the values)."""

    window_start: str
    window_end: str
    production: dict[str, Any]
    shadow: dict[str, Any]
    task: Literal["binary", "multiclass", "regression"] = "binary"
    paired_rows: int
    agreement: float | None
    mean_abs_probability_diff: float | None
    median_relative_error: float | None = None
    p90_relative_error: float | None = None
    promote: bool
    reasons: list[str]


class Rollout(BaseModel):
    """``$.rollout``: one phase of the rollout (``create``, ``update``, ``shadow`` then ``promote``, or
    ``experiment``: the A/B experiment's two-variant config).

    ``status``: ``InProgress`` (wait ``poll_seconds``, then ``check``), ``ShadowBaking`` (wait ``bake_seconds``,
    then ``compare_shadow``) or ``Done`` (``verify``)."""

    status: Literal["InProgress", "ShadowBaking", "Done"]
    phase: Literal["create", "update", "shadow", "promote", "experiment"]
    endpoint_name: str
    endpoint_config_name: str  # what this phase asked the endpoint to run
    previous_config_name: str | None = None  # what it ran before (a silent rollback lands back here)
    endpoint_status: str
    poll_seconds: int
    bake_seconds: int = 0
    shadow_since: str | None = None
    progress: str = ""
    deployment_config: dict[str, Any] | None = None
    traffic_plan: str = ""  # the new model's traffic share per step, in whole instances (update phases)
    comparison: Comparison | None = None


class DeploymentState(BaseModel):
    """The execution state (``$``) as far as the deploy steps read it."""

    model_config = ConfigDict(extra="allow")

    @property
    def group(self) -> str:
        """The package's model package group: the approval event's, else the one its ARN names
        (``arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>``)."""
        if self.model_package_group:
            return self.model_package_group
        _, _, path = self.model_package_arn.partition(":model-package/")
        return path.rsplit("/", 1)[0] if "/" in path else path

    model_package_arn: str
    model_package_group: str | None = None  # from the approval event; else the group in the package ARN
    trigger: str | dict[str, Any] | None = None
    deploy: Prepared | None = None
    rollout: Rollout | None = None
    error: dict[str, Any] | None = None


class DeployEvent(BaseModel):
    action: Action
    execution: str
    state: DeploymentState
