"""Issue 25's critical path: how long a run takes in a real account, read from the synthesized state machines.

The model walks the training and deployment state machines of a synthesized template (``DefinitionString``
rendered, ``Parallel`` branches run side by side, a ``Map`` runs its processor once: one batch of items) along the
path an upload takes, from the S3 upload to the new model at 100% of the traffic and to the deployment state
machine's end, for the first deployment (no endpoint yet: ``CreateEndpoint``) and an update (blue/green with the
stage's traffic shifting). Every state costs what ``MODEL`` says, in rows of ``localcloud.durations`` (the one table
of cloud delays; typical and upper figures are walked separately) or in stage settings of ``stacks.config`` (bakes,
termination waits, poll intervals): a state without an entry stops the walk (``Uncovered``), so a state added to a
machine must be priced here first.

Polling loops (a ``Choice`` whose branch ``Wait``s, then a check task that returns to the ``Choice``) run until the
work the loop watches is done, in whole poll intervals: the work (an endpoint being created or updated) starts when
the task that asked for it ends and runs on SageMaker's schedule (``WORKS``), so a poll only delays when the state
machine notices, never the traffic itself. An update's work follows SageMaker's deployment guardrails: the green
fleet is provisioned, each traffic step is followed by a baking period of ``WaitIntervalInSeconds`` (after the last
step: the final baking period, alarms still watched), then ``TerminationWaitInSeconds`` passes before the blue
fleet is terminated and the endpoint is ``InService`` again (the same shape ``localcloud.shims.sagemaker_endpoints``
replays). The manual approval of a stage with ``approval = manual`` is human time: not in the figures, shown as a
step of zero seconds.

A stage that keeps a SageMaker managed warm pool (``training.keep_alive_seconds``) prices an update as an iteration
of the data scientist's loop: the next upload follows the previous deployment's end, and its training job starts on
the previous one's retained instance (``Rows.warm``: the warm start-up row) if the gap between the two jobs is
within the keep-alive at that figure; otherwise, and on a first deployment, it starts cold. ``report`` prints the
cold update beside the warm one.

``python -m localcloud.timeline [--assembly DIR] [--markdown]`` prints the timelines of dev and prod (synthesizing
them unless an assembly directory per stage is given); ``--markdown`` prints the section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from lambdas.deploy.logic import rollout_poll_seconds
from lambdas.deploy.logic import traffic_steps as rollout_traffic_steps
from localcloud import durations
from stacks.config import StageConfig, load_config

Figure = Literal["typical", "upper"]
Scenario = Literal["first", "update"]
FIGURES: tuple[Figure, Figure] = ("typical", "upper")
SCENARIOS: tuple[Scenario, Scenario] = ("first", "update")
SCENARIO_TITLES = {"first": "first deployment (no endpoint yet)", "update": "update (blue/green, champion live)"}
TRAINING, DEPLOYMENT = "training", "deployment"
MACHINE_SUFFIXES = {TRAINING: "-training-pipeline", DEPLOYMENT: "-deployment"}
HANDOFF = "RegisterModel"  # registers the package (Approved at once with auto approval): the approval event follows
TRAINING_JOB = "TrainModel"  # the training job a warm pool starts (the untuned path)
TRAFFIC_100 = "100% traffic"
DONE = "deployment done"
BUDGET_SECONDS = 15 * 60  # issue 25: dev, update, upload -> 100% traffic at the typical figures


class Uncovered(ValueError):
    """A state the model cannot price (no entry in ``MODEL``, or one of the wrong kind)."""


# ---- what each state costs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rows:
    """A Task, Pass, Succeed or Fail state: the sum of these rows of ``localcloud.durations`` (none: no time);
    ``starts`` names the work of ``WORKS`` the task asks SageMaker for (it runs on after the task ends)."""

    keys: tuple[str, ...] = ()
    starts: str | None = None
    warm: tuple[tuple[str, str], ...] = ()  # (cold row, warm row): replaced when the job starts on a warm pool

    def rows(self, pool: bool) -> tuple[str, ...]:
        swap = dict(self.warm) if pool else {}
        return tuple(swap.get(key, key) for key in self.keys)


@dataclass(frozen=True)
class Take:
    """A Choice: the branch a run on the path takes."""

    next: str


@dataclass(frozen=True)
class PollUntilDone:
    """A Choice at the head of a polling loop: ``wait`` while ``work`` runs, then ``done``."""

    work: str
    wait: str
    done: str


@dataclass(frozen=True)
class Setting:
    """A Wait state whose seconds come from the stage configuration (``SecondsPath`` set by a Lambda from it)."""

    name: str
    seconds: Callable[[StageConfig], float]


Cost = Rows | Take | PollUntilDone | Setting

LAMBDA = Rows(("lambda.step",))
SNS = Rows(("sns.publish",))
NO_TIME = Rows()
SYNC_DONE = "states.sync_completion"

MODEL: dict[str, dict[str, Cost]] = {
    TRAINING: {
        "NeedsEtl": Take("EtlEngine"),  # an upload carries no curated data: the ETL runs
        # an upload of the sample's size (at most etl.lambda_max_bytes) runs in the Lambda; ``GLUE_PATH`` prices the
        # other branch, a larger upload's Glue job (reported beside it)
        "EtlEngine": Take("RunEtlInLambda"),
        "RunEtlInLambda": Rows(("lambda.etl",)),
        "RunEtl": Rows(("glue.job.startup", "glue.job.additional_python_modules", "glue.job.run", SYNC_DONE)),
        "PrepareTraining": LAMBDA,
        "TuneOrTrain": Take("TrainModel"),  # the path of a dataset without model.tuning: one training job
        # the evaluation and the golden-payload smoke test (the image's serve) run in the training job, after the fit
        # on a warm pool (an iteration within the stage's keep-alive) the job starts on the retained instance
        "TrainModel": Rows(
            (
                durations.TRAINING_STARTUP,
                "sagemaker.training.run",
                "sagemaker.training.evaluation",
                "sagemaker.training.smoke",
                SYNC_DONE,
            ),
            warm=((durations.TRAINING_STARTUP, durations.TRAINING_STARTUP_WARM),),
        ),
        "TuneModel": Rows(("sagemaker.tuning.job", SYNC_DONE)),
        # the tuned path only (off the priced path): the best trial is evaluated and smoke-tested by a processing job
        "EvaluateModels": Rows(
            ("sagemaker.processing.startup", "sagemaker.processing.run", "sagemaker.processing.smoke", SYNC_DONE)
        ),
        "RegisterModel": LAMBDA,
        "GatePassed": Take("NotifyRegistered"),  # the path to traffic: the challenger passes the gate
        "NotifyRegistered": SNS,
        "NotifyRejected": SNS,
        "Done": NO_TIME,
        "ExplainFailure": LAMBDA,
        "NotifyFailure": SNS,
        "PipelineFailed": NO_TIME,
    },
    DEPLOYMENT: {
        "PrepareDeployment": LAMBDA,
        "StartRollout": Rows(("lambda.step",), starts="rollout"),
        "RolloutFinished": PollUntilDone("rollout", wait="WaitForRollout", done="VerifyDeployment"),
        "WaitForRollout": Setting(
            "rollout poll (bake_time_seconds / 5, 10-60 s)",
            lambda config: rollout_poll_seconds(config.serving.bake_time_seconds),
        ),
        "CheckRollout": LAMBDA,
        "WaitForShadowBake": Setting("serving.shadow_bake_seconds", lambda config: config.serving.shadow_bake_seconds),
        "CompareShadow": LAMBDA,
        "VerifyDeployment": LAMBDA,
        "NotifyDeployed": SNS,
        "Deployed": NO_TIME,
        "ExplainDeployFailure": LAMBDA,
        "NotifyDeployFailed": SNS,
        "DeploymentFailed": NO_TIME,
    },
}
ETL_ENGINE = "EtlEngine"
GLUE_PATH: dict[str, dict[str, Cost]] = {TRAINING: {ETL_ENGINE: Take("RunEtl")}}
"""The model's changes for an upload above ``etl.lambda_max_bytes``: the Glue job runs its ETL."""


def with_choices(changes: Mapping[str, Mapping[str, Cost]]) -> dict[str, dict[str, Cost]]:
    """``MODEL`` with the branches of ``changes`` taken instead (e.g. ``GLUE_PATH``)."""
    return {machine: {**costs, **changes.get(machine, {})} for machine, costs in MODEL.items()}


LINKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "upload": (
        "S3 upload -> EventBridge -> start Lambda -> StartExecution",
        ("s3.event_notification", "eventbridge.target", "lambda.start_pipeline"),
    ),
    "approval": (
        "registry approval -> EventBridge -> deployment StartExecution",
        ("sagemaker.registry.event", "eventbridge.target"),
    ),
}


# ---- the work SageMaker does while a state machine polls ----------------------------------------------------


@dataclass(frozen=True)
class Phase:
    what: str
    seconds: float
    source: str  # a row of localcloud.durations or a stage setting
    milestone: str | None = None  # reached when this phase ends


def _row(key: str, figure: Figure) -> float:
    return durations.typical(key) if figure == "typical" else durations.upper(key)


def traffic_steps(config: StageConfig) -> list[int]:
    """Instances serving the new model after each traffic step of an update (traffic follows instances)."""
    serving = config.serving
    if serving.strategy not in ("CANARY", "LINEAR", "ALL_AT_ONCE"):
        raise Uncovered(f"strategy {serving.strategy}: the shadow bake and comparison are not modelled")
    return rollout_traffic_steps(
        serving.strategy, serving.canary_percent, serving.linear_step_percent, serving.initial_instance_count
    )


def _rollout(config: StageConfig, scenario: Scenario, figure: Figure) -> list[Phase]:
    if scenario == "first":
        key = durations.ENDPOINT_CREATE
        what = f"CreateEndpoint ({config.serving.initial_instance_count} instances) until InService, all traffic"
        return [Phase(what, _row(key, figure), key, TRAFFIC_100)]
    serving, instances = config.serving, config.serving.initial_instance_count
    key = durations.ENDPOINT_UPDATE_PROVISION
    steps = traffic_steps(config)
    phases = [Phase(f"green fleet ({instances} instances) provisioned", _row(key, figure), key)]
    bake = "serving.bake_time_seconds (WaitIntervalInSeconds)"
    for index, on in enumerate(steps):
        share = f"{on}/{instances} instances ({100 * on // instances}%) on the new model"
        last = index == len(steps) - 1
        if index:
            phases.append(
                Phase(f"baking period, then {share}", serving.bake_time_seconds, bake, TRAFFIC_100 if last else None)
            )
        else:
            phases[-1] = Phase(f"{phases[-1].what}; {share}", phases[-1].seconds, key, TRAFFIC_100 if last else None)
    phases.append(Phase("final baking period (alarms still watched)", serving.bake_time_seconds, bake))
    phases.append(
        Phase(
            "termination wait, then the blue fleet is terminated: InService",
            serving.termination_wait_seconds,
            "serving.termination_wait_seconds (TerminationWaitInSeconds)",
        )
    )
    return phases


WORKS: dict[str, Callable[[StageConfig, Scenario, Figure], list[Phase]]] = {"rollout": _rollout}


# ---- the walk -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One line of a timeline: a state, a polling loop, a link between machines, or a milestone (no time)."""

    machine: str
    name: str
    what: str
    start: float
    end: float
    sources: tuple[str, ...]
    polls: int = 0


@dataclass(frozen=True)
class Timeline:
    stage: str
    scenario: Scenario
    figure: Figure
    steps: tuple[Step, ...]
    milestones: Mapping[str, float]
    pool: bool = False  # the training job started on the previous iteration's warm pool
    iteration_gap: float | None = None  # a pool stage's update: previous training job's end -> this one's start

    @property
    def traffic_100(self) -> float:
        return self.milestones[TRAFFIC_100]

    @property
    def done(self) -> float:
        return self.milestones[DONE]


@dataclass
class _Walk:
    config: StageConfig
    scenario: Scenario
    figure: Figure
    model: Mapping[str, Mapping[str, Cost]]
    steps: list[Step] = field(default_factory=list)
    milestones: dict[str, float] = field(default_factory=dict)
    works: dict[str, float] = field(default_factory=dict)  # work -> when it is done
    plans: Mapping[str, Callable[[StageConfig, Scenario, Figure], list[Phase]]] = field(default_factory=lambda: WORKS)
    pool: bool = False  # Rows.warm rows replace their cold ones

    def link(self, name: str, t: float) -> float:
        what, keys = LINKS[name]
        return self.record("event", name, what, t, sum(_row(k, self.figure) for k in keys), keys)

    def record(
        self, machine: str, name: str, what: str, t: float, seconds: float, sources: tuple[str, ...], polls: int = 0
    ) -> float:
        self.steps.append(Step(machine, name, what, t, t + seconds, sources, polls))
        return t + seconds

    def _cost(self, machine: str, name: str, state: Mapping[str, Any], *kinds: type) -> Any:
        cost = self.model.get(machine, {}).get(name)
        if not isinstance(cost, kinds):
            raise Uncovered(_uncovered(machine, name, state, cost))
        return cost

    def run(self, machine: str, states: Mapping[str, Any], name: str, t: float, stop_after: str | None = None) -> float:
        """Walk from state ``name`` at time ``t`` to the end of the machine (or of ``stop_after``)."""
        while True:
            state = states[name]
            kind = state["Type"]
            if kind == "Choice":
                cost = self._cost(machine, name, state, Take, PollUntilDone)
                branches = {choice["Next"] for choice in state.get("Choices", [])} | {state.get("Default")}
                targets = [cost.next] if isinstance(cost, Take) else [cost.wait, cost.done]
                lost = [target for target in targets if target not in branches]
                if lost:
                    raise Uncovered(f"{machine}.{name}: the model takes {', '.join(lost)}, not a branch of the Choice")
                if isinstance(cost, PollUntilDone):
                    t = self._poll(machine, states, name, cost, t)
                name = targets[-1]
                continue
            if kind == "Parallel":
                ends = [self.run(machine, branch["States"], branch["StartAt"], t) for branch in state["Branches"]]
                t = self.record(machine, name, "branches side by side: the longest", t, max(ends, default=t) - t, ())
            elif kind == "Map":
                processor = state.get("ItemProcessor") or state["Iterator"]
                t = self.run(machine, processor["States"], processor["StartAt"], t)
            elif kind == "Wait":
                seconds, source = self._wait(machine, name, state)
                t = self.record(machine, name, "wait", t, seconds, (source,))
            else:
                cost = self._cost(machine, name, state, Rows)
                keys = cost.rows(self.pool)
                seconds = sum(_row(key, self.figure) for key in keys)
                what = f"{kind} on the previous iteration's warm pool" if keys != cost.keys else kind
                t = self.record(machine, name, what, t, seconds, keys)
                if cost.starts:
                    self._start(cost.starts, t)
            if name == stop_after or kind in ("Succeed", "Fail") or state.get("End"):
                return t
            name = state["Next"]

    def _wait(self, machine: str, name: str, state: Mapping[str, Any]) -> tuple[float, str]:
        if "Seconds" in state:
            return float(state["Seconds"]), "the definition's Seconds"
        cost = self._cost(machine, name, state, Setting)
        return float(cost.seconds(self.config)), cost.name

    def _start(self, work: str, t: float) -> None:
        for phase in self.plans[work](self.config, self.scenario, self.figure):
            t = self.record("sagemaker", work, phase.what, t, phase.seconds, (phase.source,))
            if phase.milestone:
                self.milestones[phase.milestone] = t
        self.works[work] = t

    def _poll(self, machine: str, states: Mapping[str, Any], head: str, cost: PollUntilDone, t: float) -> float:
        if cost.work not in self.works:
            raise Uncovered(f"{machine}.{head} polls {cost.work!r}, which no state before it started")
        wait = states[cost.wait]
        check_name = wait.get("Next", "")
        check = states.get(check_name, {})
        if wait["Type"] != "Wait" or check.get("Next") != head:
            raise Uncovered(f"{machine}.{head}: {cost.wait} -> {check_name} is not a Wait and a check back to {head}")
        interval, source = self._wait(machine, cost.wait, wait)
        check_cost = self._cost(machine, check_name, check, Rows)
        check_seconds = sum(_row(key, self.figure) for key in check_cost.keys)
        if interval + check_seconds <= 0:
            raise Uncovered(f"{machine}.{cost.wait}: a polling loop that takes no time never ends")
        polls, start, done = 0, t, self.works[cost.work]
        while t < done:
            t += interval + check_seconds
            polls += 1
        what = f"{cost.wait} {interval:g} s + {check_name}, until {cost.work} is done"
        return self.record(
            machine, f"{cost.wait} + {check_name}", what, start, t - start, (source, *check_cost.keys), polls
        )


def walk(
    definition: Mapping[str, Any],
    model: Mapping[str, Mapping[str, Cost]],
    *,
    machine: str,
    stage: str = "dev",
    scenario: Scenario = "update",
    figure: Figure = "typical",
    plans: Mapping[str, Callable[[StageConfig, Scenario, Figure], list[Phase]]] = WORKS,
) -> tuple[float, list[Step], dict[str, float]]:
    """One machine walked from its ``StartAt`` at time 0: its end, its steps and the milestones reached."""
    state = _Walk(stage_config(stage), scenario, figure, model, plans=plans)
    end = state.run(machine, definition["States"], definition["StartAt"], 0.0)
    return end, state.steps, state.milestones


def _uncovered(machine: str, name: str, state: Mapping[str, Any], cost: Cost | None) -> str:
    if cost is None:
        return f"{machine}.{name} ({state.get('Type')}) has no duration in localcloud.timeline.MODEL"
    return f"{machine}.{name} ({state.get('Type')}) cannot be priced by {type(cost).__name__}"


def _all_states(states: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, state in states.items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _all_states(branch["States"])
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _all_states(processor["States"])


KINDS: dict[str, tuple[type, ...]] = {
    "Choice": (Take, PollUntilDone),
    "Wait": (Setting,),
    "Parallel": (),
    "Map": (),
}


def uncovered(
    machine: str, definition: Mapping[str, Any], model: Mapping[str, Mapping[str, Cost]] = MODEL
) -> list[str]:
    """Every state of ``definition`` the model cannot price (empty: fully covered), and unknown table rows."""
    problems = []
    for name, state in _all_states(definition["States"]):
        kind = state["Type"]
        kinds = KINDS.get(kind, (Rows,))
        if not kinds or (kind == "Wait" and "Seconds" in state):
            continue
        cost = model.get(machine, {}).get(name)
        if not isinstance(cost, kinds):
            problems.append(_uncovered(machine, name, state, cost))
        elif isinstance(cost, Rows):
            for key in (*cost.keys, *(warm for _, warm in cost.warm)):
                try:
                    durations.row(key)
                except KeyError as error:
                    problems.append(f"{machine}.{name}: {error.args[0]}")
    return problems


# ---- the synthesized template ---------------------------------------------------------------------------------


def render_intrinsics(value: Any, *, strict: bool = True) -> str:
    """Fn::Join / Ref / GetAtt rendered as readable placeholders (enough to read a state machine definition);
    any other intrinsic is ``${expr}`` (``strict``: only Fn::Select / Fn::Split, anything else is a TypeError)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return str(sep).join(render_intrinsics(p, strict=strict) for p in parts)
        if "Ref" in value:
            return f"${{{value['Ref']}}}"
        if "Fn::GetAtt" in value:
            return f"${{{'.'.join(value['Fn::GetAtt'])}}}"
        if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
            return str(value["Fn::Sub"])
        if "Fn::Select" in value or "Fn::Split" in value:
            return "${expr}"
    if strict:
        raise TypeError(f"cannot render {value!r}")
    return "${expr}"


def state_machines(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The training and deployment definitions of a synthesized template (by ``StateMachineName``)."""
    found: dict[str, dict[str, Any]] = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        props = resource["Properties"]
        name = str(props.get("StateMachineName", ""))
        for machine, suffix in MACHINE_SUFFIXES.items():
            if name.endswith(suffix):
                found[machine] = json.loads(render_intrinsics(props["DefinitionString"]))
    missing = sorted(set(MACHINE_SUFFIXES) - set(found))
    if missing:
        raise ValueError(f"the template has no {' or '.join(missing)} state machine")
    return found


def stage_config(stage: str) -> StageConfig:
    """The stage's settings for the sample dataset (its serving overrides applied, as the stack applies them)."""
    config = load_config(stage)
    return config.for_dataset(config.dataset)


def keeps_pool(config: StageConfig) -> bool:
    """The stage keeps a SageMaker managed warm pool after its training job."""
    return config.training.keep_alive_seconds > 0


def timeline(
    template: Mapping[str, Any],
    stage: str,
    scenario: Scenario,
    figure: Figure,
    model: Mapping[str, Mapping[str, Cost]] = MODEL,
    *,
    pool: bool | None = None,
) -> Timeline:
    """Upload -> 100% traffic -> deployment done on the template's machines, at one figure of the table (``model``:
    ``MODEL``, the sample upload's path; ``with_choices(GLUE_PATH)``, a large upload's).

    ``pool`` None: an update of a stage that keeps a warm pool starts its training job on the previous iteration's
    pool when the gap between the two jobs (the next upload following the previous deployment's end) is within the
    keep-alive at this figure; a first deployment, or a stage without a pool, starts cold. True / False forces it."""
    config = stage_config(stage)
    if pool is None and scenario == "update" and keeps_pool(config):
        warm = _timeline(template, config, scenario, figure, model, True)
        if warm.iteration_gap is not None and warm.iteration_gap <= config.training.keep_alive_seconds:
            return warm
        return replace(_timeline(template, config, scenario, figure, model, False), iteration_gap=warm.iteration_gap)
    return _timeline(template, config, scenario, figure, model, bool(pool))


def _timeline(
    template: Mapping[str, Any],
    config: StageConfig,
    scenario: Scenario,
    figure: Figure,
    model: Mapping[str, Mapping[str, Cost]],
    pool: bool,
) -> Timeline:
    machines = state_machines(template)
    problems = [p for machine, definition in machines.items() for p in uncovered(machine, definition, model)]
    if problems:
        raise Uncovered("; ".join(problems))
    walk = _Walk(config, scenario, figure, model, pool=pool)
    t = walk.link("upload", 0.0)
    training = machines[TRAINING]
    t = walk.run(TRAINING, training["States"], training["StartAt"], t, stop_after=HANDOFF)
    if config.approval == "manual":
        t = walk.record(
            "event",
            "manual approval",
            "a person approves the package: human time, not counted",
            t,
            0,
            ("config: approval",),
        )
    t = walk.link("approval", t)
    deployment = machines[DEPLOYMENT]
    walk.milestones[DONE] = walk.run(DEPLOYMENT, deployment["States"], deployment["StartAt"], t)
    if TRAFFIC_100 not in walk.milestones:
        raise Uncovered("the walk never reached 100% traffic: no state started the rollout")
    job = next((s for s in walk.steps if s.machine == TRAINING and s.name == TRAINING_JOB), None)
    iterates = job is not None and scenario == "update" and keeps_pool(config)
    gap = walk.milestones[DONE] - job.end + job.start if job is not None and iterates else None
    return Timeline(config.stage, scenario, figure, tuple(walk.steps), dict(walk.milestones), pool, gap)


# ---- reports --------------------------------------------------------------------------------------------------


def clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


def span(seconds: float) -> str:
    return f"{seconds:g} s" if seconds < 60 else clock(seconds)


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def pairs(template: Mapping[str, Any], stage: str) -> dict[Scenario, tuple[Timeline, Timeline]]:
    """Typical and upper timelines of both scenarios."""
    return {s: (timeline(template, stage, s, "typical"), timeline(template, stage, s, "upper")) for s in SCENARIOS}


def _rows(typical: Timeline, upper: Timeline) -> list[tuple[Step, Step]]:
    if [s.name for s in typical.steps] != [s.name for s in upper.steps]:
        raise ValueError(f"{typical.stage} {typical.scenario}: the typical and upper walks took different paths")
    return list(zip(typical.steps, upper.steps, strict=True))


def _label(step: Step, upper: Step) -> str:
    polls = f" (x{step.polls} / x{upper.polls})" if step.polls or upper.polls else ""
    where = "SageMaker" if step.machine == "sagemaker" else step.machine
    return f"{where}: {step.name}{polls}: {step.what}"


def render_text(stage: str, scenario: Scenario, typical: Timeline, upper: Timeline) -> str:
    lines = [f"{stage}, {SCENARIO_TITLES[scenario]}: step end, typical / upper (m:ss since the upload)"]
    for step, high in _rows(typical, upper):
        lines.append(
            f"  {clock(step.end):>6} / {clock(high.end):>6}  {_label(step, high)}  [{', '.join(step.sources)}]"
        )
    lines.append(f"  upload -> {TRAFFIC_100}: {minutes(typical.traffic_100)} / {minutes(upper.traffic_100)}")
    lines.append(f"  upload -> {DONE}: {minutes(typical.done)} / {minutes(upper.done)}")
    return "\n".join(lines)


def render_markdown(stage: str, scenario: Scenario, typical: Timeline, upper: Timeline) -> str:
    lines = [
        f"**{stage}, {SCENARIO_TITLES[scenario]}**",
        "",
        "| step ends (typical / upper, m:ss) | step | source |",
        "|---|---|---|",
    ]
    for step, high in _rows(typical, upper):
        sources = ", ".join(f"`{source}`" for source in step.sources) or "-"
        lines.append(f"| {clock(step.end)} / {clock(high.end)} | {_label(step, high)} | {sources} |")
    lines.append(f"| **{minutes(typical.traffic_100)} / {minutes(upper.traffic_100)}** | upload -> {TRAFFIC_100} | |")
    lines.append(f"| **{minutes(typical.done)} / {minutes(upper.done)}** | upload -> {DONE} | |")
    return "\n".join(lines)


def template_of(assembly: Path, stage: str) -> dict[str, Any]:
    return dict(json.loads((assembly / f"{load_config(stage).stack_name}.template.json").read_text()))


def synthesized(stages: tuple[str, ...] = ("dev", "prod")) -> dict[str, dict[str, Any]]:
    """Each stage synthesized once into a temporary assembly (cdk-nag included, as ``cdk synth``)."""
    from localcloud.provision import synth

    with tempfile.TemporaryDirectory(prefix="timeline-") as directory:
        return {stage: template_of(synth(stage, Path(directory) / stage), stage) for stage in stages}


def glue_path(template: Mapping[str, Any], stage: str) -> tuple[Timeline, Timeline]:
    """An update whose upload is above ``etl.lambda_max_bytes`` (the Glue job's ETL), typical and upper."""
    glue = with_choices(GLUE_PATH)
    return timeline(template, stage, "update", "typical", glue), timeline(template, stage, "update", "upper", glue)


def render_summary(
    computed: Mapping[str, Mapping[Scenario, tuple[Timeline, Timeline]]],
    colds: Mapping[str, tuple[Timeline, Timeline] | None] | None = None,
    large: Mapping[str, tuple[Timeline, Timeline]] | None = None,
) -> str:
    """Totals: one line per scenario and milestone, one column per stage (typical / upper); ``colds``: the update
    of a stage that keeps a warm pool with its training job cold; ``large``: the update of an upload above the
    Lambda ETL's threshold (Glue), beside them."""
    stages = list(computed)
    colds = colds or {}
    lines = [
        "| upload -> | " + " | ".join(f"{stage} (typical / upper)" for stage in stages) + " |",
        "|---|" + "---|" * len(stages),
    ]
    for scenario in SCENARIOS:
        for milestone in (TRAFFIC_100, DONE):
            cells = []
            for stage in stages:
                typical, upper = computed[stage][scenario]
                approval = " + approval" if load_config(stage).approval == "manual" else ""
                cells.append(
                    f"{minutes(typical.milestones[milestone])} / {minutes(upper.milestones[milestone])}{approval}"
                )
            lines.append(f"| {milestone}, {SCENARIO_TITLES[scenario]} | " + " | ".join(cells) + " |")
    for milestone in (TRAFFIC_100, DONE) if any(cold for cold in colds.values()) else ():
        cells = []
        for stage in stages:
            pair = colds.get(stage)
            approval = " + approval" if load_config(stage).approval == "manual" else ""
            cells.append(
                f"{minutes(pair[0].milestones[milestone])} / {minutes(pair[1].milestones[milestone])}{approval}"
                if pair
                else "no warm pool: as above"
            )
        lines.append(f"| {milestone}, update, training job cold (no warm pool to reuse) | " + " | ".join(cells) + " |")
    if large:
        cells = [f"{minutes(large[s][0].traffic_100)} / {minutes(large[s][1].traffic_100)}" for s in stages]
        lines.append(
            f"| {TRAFFIC_100}, {SCENARIO_TITLES['update']}, an upload above etl.lambda_max_bytes (Glue ETL) | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def cold_updates(templates: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[Timeline, Timeline] | None]:
    """The update of every stage that keeps a warm pool with its training job started cold (None: no pool)."""
    return {
        stage: tuple(timeline(template, stage, "update", figure, pool=False) for figure in FIGURES)  # type: ignore[misc]
        if keeps_pool(stage_config(stage))
        else None
        for stage, template in templates.items()
    }


def render_pools(
    computed: Mapping[str, Mapping[Scenario, tuple[Timeline, Timeline]]],
    colds: Mapping[str, tuple[Timeline, Timeline] | None],
) -> str:
    """When the warm figure of a pool stage's update holds (the gap between two iterations' training jobs), and the
    cold figure beside it."""
    lines = []
    for stage, by_scenario in computed.items():
        typical, upper = by_scenario["update"]
        if typical.iteration_gap is None or upper.iteration_gap is None:
            continue
        keep = stage_config(stage).training.keep_alive_seconds
        held = "; ".join(
            f"{figure} {minutes(t.iteration_gap or 0)}: "
            + (f"warm, {minutes(keep - (t.iteration_gap or 0))} to spare" if t.pool else "over it: cold")
            for figure, t in (("typical", typical), ("upper", upper))
        )
        lines.append(
            f"{stage}: an update's training job starts on the previous iteration's warm pool when it starts within "
            f"`training.keep_alive_seconds` ({keep} s) of the previous job's end. With the next upload at the previous "
            f"deployment's end, that gap is {held}."
        )
        cold = colds.get(stage)
        if cold:
            lines[-1] += (
                f" Cold (no pool to reuse): upload -> {TRAFFIC_100} {minutes(cold[0].traffic_100)} / "
                f"{minutes(cold[1].traffic_100)}, -> {DONE} {minutes(cold[0].done)} / {minutes(cold[1].done)}."
            )
    return "\n\n".join(lines)


def render_sources(
    *computed: Mapping[str, Mapping[Scenario, tuple[Timeline, Timeline]]],
) -> str:
    """The rows of ``localcloud.durations`` the timelines use, with their basis and source."""
    used = {
        source
        for timelines in computed
        for by_scenario in timelines.values()
        for typical, _ in by_scenario.values()
        for step in typical.steps
        for source in step.sources
    }
    lines = ["| row | typical | upper | basis | source |", "|---|---|---|---|---|"]
    for row in durations.TABLE:
        if row.key in used:
            lines.append(f"| `{row.key}` | {span(row.typical)} | {span(row.upper)} | {row.basis} | {row.source} |")
    return "\n".join(lines)


def report(templates: Mapping[str, Mapping[str, Any]], markdown: bool = False) -> str:
    computed = {stage: pairs(template, stage) for stage, template in templates.items()}
    large = {stage: glue_path(template, stage) for stage, template in templates.items()}
    render = render_markdown if markdown else render_text
    colds = cold_updates(templates)
    parts = [render_summary(computed, colds, large)] if markdown else []
    pools = render_pools(computed, colds)
    if pools:
        parts.append(pools)
    for stage, by_scenario in computed.items():
        for scenario, (typical, upper) in by_scenario.items():
            parts.append(render(stage, scenario, typical, upper))
    if not markdown:
        parts.extend(
            f"{stage}, update, an upload above etl.lambda_max_bytes (Glue ETL): upload -> {TRAFFIC_100} "
            f"{minutes(typical.traffic_100)} / {minutes(upper.traffic_100)}"
            for stage, (typical, upper) in large.items()
        )
    if markdown:
        glue: dict[str, dict[Scenario, tuple[Timeline, Timeline]]] = {
            stage: {"update": pair} for stage, pair in large.items()
        }
        parts.append("Rows of `localcloud/durations.py` on these paths:\n\n" + render_sources(computed, glue))
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud.timeline", description=__doc__.splitlines()[0])
    parser.add_argument("--assembly", action="append", default=[], metavar="STAGE=DIR", help="a synthesized cdk.out")
    parser.add_argument("--markdown", action="store_true", help="tables for docs/performance.md")
    args = parser.parse_args(argv)
    given = dict(item.split("=", 1) for item in args.assembly)
    templates = {stage: template_of(Path(folder), stage) for stage, folder in given.items()} or synthesized()
    sys.stdout.write(report(templates, markdown=args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
