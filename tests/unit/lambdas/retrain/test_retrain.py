"""Retrain guard under moto: each guard (transition, N breaching periods, flapping, running execution, cooldown,
daily budget, duplicate delivery) with the decision's reason, the started execution's input and the notification."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.retrain import handler as retrain_handler
from lambdas.retrain import logic
from lambdas.retrain.models import AlarmEvent
from pipelines.data.generator import generate
from pipelines.schema import DataPolicy
from tests.samples import CHURN_SCHEMA
from tests.unit.lambdas.ground_truth.test_production import put_production
from tests.unit.lambdas.support import FakeContext, create_table

ALARM = "mlops-dev-churn-drift"  # churn's drift alarm in the dev platform document
QUALITY_ALARM = "mlops-dev-churn-quality"
ALARM_ARN = f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{ALARM}"
CURATED = "curated-bucket"
MANIFEST_KEY = "manifests/churn/latest.json"
MANIFEST = {"dataset": "churn", "version": "v1", "status": "SUCCEEDED", "report_uri": "s3://c/r.json"}
T0 = datetime(2026, 11, 27, 10, 5, 12, tzinfo=UTC)
PERIOD = 3600


def cw_time(moment: datetime) -> str:
    """CloudWatch's timestamp format in alarm events."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def alarm_event(
    state: str = "ALARM",
    previous: str = "OK",
    at: datetime = T0,
    values: list[float | None] | None = None,
    name: str = ALARM,
) -> dict[str, Any]:
    """An alarm Lambda-action event; ``values`` are the evaluated hourly datapoints, newest first."""
    values = [0.35, 0.31, 0.28] if values is None else values
    newest = at.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    points = []
    for i, value in enumerate(values):
        point: dict[str, Any] = {"timestamp": cw_time(newest - timedelta(hours=i))}
        if value is not None:
            point.update(sampleCount=1.0, value=value)
        points.append(point)
    reason_data = {
        "version": "1.0",
        "queryDate": cw_time(at),
        "statistic": "Maximum",
        "period": PERIOD,
        "recentDatapoints": [v for v in values if v is not None],
        "threshold": 0.2,
        "evaluatedDatapoints": points,
    }
    breaching = sum(1 for v in values if v is not None and v > 0.2)
    return {
        "source": "aws.cloudwatch",
        "alarmArn": ALARM_ARN.replace(ALARM, name),
        "accountId": "123456789012",
        "time": cw_time(at),
        "region": "us-east-1",
        "alarmData": {
            "alarmName": name,
            "state": {
                "value": state,
                "reason": f"Threshold Crossed: {breaching} out of the last {len(values)} datapoints were greater "
                "than the threshold (0.2) (minimum 3 datapoints for OK -> ALARM transition).",
                "reasonData": json.dumps(reason_data),
                "timestamp": cw_time(at),
            },
            "previousState": {"value": previous, "reason": "earlier", "timestamp": cw_time(at - timedelta(hours=5))},
            "configuration": {
                "description": "Feature drift (max PSI over features) above threshold; action: guarded retrain",
                "metrics": [
                    {
                        "id": "m1",
                        "metricStat": {
                            "metric": {
                                "namespace": "MLOps/test",
                                "name": "OverallDriftPSI",
                                "dimensions": {"EndpointName": "mlops-dev-churn"},
                            },
                            "period": PERIOD,
                            "stat": "Maximum",
                        },
                        "returnData": True,
                    }
                ],
            },
        },
    }


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        create_table("guard", "pk", "sk")
        state_machine = boto3.client("stepfunctions").create_state_machine(
            name="pipeline",
            definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )["stateMachineArn"]
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=CURATED)
        s3.put_object(Bucket=CURATED, Key=MANIFEST_KEY, Body=json.dumps(MANIFEST).encode())
        topic = boto3.client("sns").create_topic(Name="notifications")["TopicArn"]
        sqs = boto3.client("sqs")
        queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        yield {"state_machine": state_machine, "topic": topic, "queue": queue}


@pytest.fixture
def settings(aws: dict[str, Any]) -> logic.Settings:
    return logic.Settings(
        guard_table="guard",
        state_machine_arn=aws["state_machine"],
        topic_arn=aws["topic"],
        curated_bucket=CURATED,
        manifest_key=MANIFEST_KEY,
        alarms={ALARM: "GreaterThanThreshold", QUALITY_ALARM: "LessThanThreshold"},
        guard=logic.Guard(cooldown_minutes=360, max_per_day=2, consecutive_breaches=3),
        dataset="churn",
    )


def clients() -> logic.Clients:
    return logic.Clients(
        dynamodb=boto3.client("dynamodb"),
        sfn=boto3.client("stepfunctions"),
        s3=boto3.client("s3"),
        sns=boto3.client("sns"),
    )


def decide(settings: logic.Settings, event: dict[str, Any]) -> logic.Decision:
    return logic.decide(clients(), settings, logic.Transition.from_event(AlarmEvent.model_validate(event)))


def executions(settings: logic.Settings, status: str | None = None) -> list[dict[str, Any]]:
    kwargs = {"statusFilter": status} if status else {}
    sfn = boto3.client("stepfunctions")
    return list(sfn.list_executions(stateMachineArn=settings.state_machine_arn, **kwargs)["executions"])


def finish_all(settings: logic.Settings) -> None:
    """The running executions end (moto keeps them RUNNING until stopped)."""
    for execution in executions(settings, "RUNNING"):
        boto3.client("stepfunctions").stop_execution(executionArn=execution["executionArn"])


def test_a_transition_into_alarm_after_n_breaching_periods_starts_the_pipeline(settings: logic.Settings) -> None:
    # Given a drift alarm that went OK -> ALARM with 3 of 3 hourly periods above the threshold
    event = alarm_event()
    # When the guard decides
    decision = decide(settings, event)
    # Then the pipeline starts on the latest curated data with the alarm as the recorded reason
    assert decision.decision == "started" and decision.consecutive_breaches == 3
    (execution,) = executions(settings)
    assert execution["name"] == decision.execution_name and execution["name"].startswith(f"retrain-{ALARM}-")
    assert decision.execution_arn == execution["executionArn"]
    described = boto3.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == {
        "dataset": "churn",
        "curated": MANIFEST,
        "trigger": {"source": "alarm", "alarm": ALARM, "reason": event["alarmData"]["state"]["reason"]},
    }


def started_input(settings: logic.Settings) -> dict[str, Any]:
    (execution,) = executions(settings)
    described = boto3.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    return dict(json.loads(described["input"]))


POLICY = DataPolicy(
    production_window_days=7, min_labelled_rows=60, max_production_share=0.5, test_from_production_rows=40
)


def test_the_alarm_retrain_plans_with_the_labelled_production_rows_of_its_policy(settings: logic.Settings) -> None:
    # Given a dataset whose declaration has a data policy, and 120 rows labelled in the hours before the alarm
    boto3.client("glue").create_database(DatabaseInput={"Name": "mlops_dev"})
    put_production(boto3.client("s3"), boto3.client("glue"), generate(120, seed=40), T0 - timedelta(hours=5), T0)
    # And an upload of 700 training rows (the cap allows as many production rows at a 0.5 share)
    manifest = {**MANIFEST, "splits": {"train": 700, "validation": 150, "test": 150}}
    boto3.client("s3").put_object(Bucket=CURATED, Key=MANIFEST_KEY, Body=json.dumps(manifest).encode())
    with_policy = replace(settings, schema=replace(CHURN_SCHEMA, data_policy=POLICY))
    # When the drift alarm passes the guard
    assert decide(with_policy, alarm_event()).decision == "started"
    # Then the execution input carries the plan: the newest 40 rows test, the 80 others train, as of the alarm
    plan = started_input(with_policy)["data_plan"]
    assert plan["mode"] == "with_production" and plan["decided_at"] == "2026-11-27T10:05:12Z"
    assert (plan["production"]["test_rows"], plan["production"]["train_rows"]) == (40, 80)
    assert plan["policy"] == POLICY.to_dict() and plan["upload"]["version"] == MANIFEST["version"]


def test_labels_that_never_arrived_retrain_on_the_upload_with_the_reason(settings: logic.Settings) -> None:
    with_policy = replace(settings, schema=replace(CHURN_SCHEMA, data_policy=POLICY))
    assert decide(with_policy, alarm_event()).decision == "started"
    plan = started_input(with_policy)["data_plan"]
    assert plan["mode"] == "upload_only" and plan["test_from"] == "upload"
    assert (
        plan["reason"] == "0 labelled production rows in the last 7 days < min_labelled_rows 60: the latest upload only"
    )


def test_leaving_alarm_or_staying_in_it_never_starts(settings: logic.Settings) -> None:
    # Given transitions that are not into ALARM
    back_to_ok = decide(settings, alarm_event(state="OK", previous="ALARM", values=[0.1, 0.1, 0.1]))
    still = decide(settings, alarm_event(state="ALARM", previous="ALARM", at=T0 + timedelta(hours=1)))
    # Then nothing starts, and each decision says why
    assert (back_to_ok.decision, back_to_ok.guard) == ("suppressed", "not_alarm")
    assert back_to_ok.reason == f"{ALARM} moved to OK: breach record cleared"
    assert (still.guard, still.reason) == ("not_alarm", f"{ALARM} was already in ALARM: not a transition into ALARM")
    assert executions(settings) == []


def test_fewer_than_n_consecutive_breaching_periods_do_not_act(settings: logic.Settings) -> None:
    # Given an ALARM whose newest period breached but the one before did not (2 of 3, not consecutive)
    decision = decide(settings, alarm_event(values=[0.4, 0.1, 0.5]))
    # Then
    assert (decision.decision, decision.guard) == ("suppressed", "breaches")
    assert decision.reason == "1 of 3 consecutive breaching periods (2 of 3 evaluated periods breaching)"
    # And an ALARM without evaluated datapoints cannot be verified
    bare = alarm_event(at=T0 + timedelta(hours=1))
    bare["alarmData"]["state"].pop("reasonData")
    bare["alarmData"]["configuration"] = {}
    unverified = decide(settings, bare)
    assert unverified.guard == "breaches"
    assert "no evaluated datapoints (reasonData)" in unverified.reason
    assert executions(settings) == []


def test_a_flapping_alarm_does_not_act(settings: logic.Settings) -> None:
    # Given an alarm that flips ALARM / OK every hour, each time on a single breaching period
    decisions = []
    for hour in range(6):
        at = T0 + timedelta(hours=hour)
        if hour % 2 == 0:
            decisions.append(decide(settings, alarm_event(at=at, values=[0.5, None, None])))
        else:
            decisions.append(decide(settings, alarm_event(state="OK", previous="ALARM", at=at, values=[0.1])))
    # Then the breach record is cleared by every OK, never reaches 3, and no retrain starts
    assert [d.guard for d in decisions] == ["breaches", "not_alarm"] * 3
    assert {d.consecutive_breaches for d in decisions[::2]} == {1}
    assert executions(settings) == []


def test_breaching_periods_accumulate_across_alarm_deliveries_until_the_alarm_clears(
    settings: logic.Settings,
) -> None:
    # Given an alarm (M-of-N style) that reported one breaching period, then the next two a period later,
    # without going back to OK in between
    first = decide(settings, alarm_event(values=[0.5]))
    second = decide(settings, alarm_event(previous="INSUFFICIENT_DATA", at=T0 + timedelta(hours=2), values=[0.6, 0.7]))
    # Then the guard joins them into 3 consecutive periods and acts
    assert first.guard == "breaches" and first.consecutive_breaches == 1
    assert second.decision == "started" and second.consecutive_breaches == 3


def test_no_start_while_an_execution_of_the_same_dataset_is_running(settings: logic.Settings) -> None:
    # Given pipeline executions started by uploads and still running: one of energy, one of churn
    sfn = boto3.client("stepfunctions")
    for name, dataset in (("upload-energy", "energy"), ("upload-1", "churn")):
        sfn.start_execution(
            stateMachineArn=settings.state_machine_arn, name=name, input=json.dumps({"dataset": dataset})
        )
    # When churn's alarm fires
    decision = decide(settings, alarm_event())
    # Then churn's run blocks it (energy's would not: the state machine is shared, the guard is per dataset)
    assert (decision.decision, decision.guard) == ("suppressed", "running")
    assert decision.reason == "execution upload-1 of the pipeline is RUNNING for churn"
    assert len(executions(settings)) == 2


def test_another_datasets_run_cooldown_and_budget_do_not_block_a_dataset(settings: logic.Settings) -> None:
    # Given energy's pipeline running and energy's retrain started a minute ago (its cooldown and budget)
    sfn = boto3.client("stepfunctions")
    sfn.start_execution(stateMachineArn=settings.state_machine_arn, name="upload-e", input='{"dataset": "energy"}')
    energy = replace(settings, dataset="energy", alarms={"mlops-dev-energy-drift": "GreaterThanThreshold"})
    boto3.client("s3").put_object(Bucket=CURATED, Key="manifests/energy/latest.json", Body=b'{"dataset": "energy"}')
    energy = replace(energy, manifest_key="manifests/energy/latest.json")
    finish_all(settings)
    assert decide(energy, alarm_event(name="mlops-dev-energy-drift", at=T0 - timedelta(minutes=1))).guard == "started"
    # When churn's alarm fires
    decision = decide(settings, alarm_event())
    # Then churn's retrain starts, on churn's data, with its own guard items
    assert decision.decision == "started" and decision.dataset == "churn"
    items = boto3.client("dynamodb").scan(TableName="guard")["Items"]
    assert {i["pk"]["S"] for i in items if i["pk"]["S"].startswith("retrain")} == {"retrain#churn", "retrain#energy"}


def test_cooldown_since_the_last_started_retrain(settings: logic.Settings) -> None:
    # Given a retrain started at T0 that has finished
    assert decide(settings, alarm_event()).decision == "started"
    finish_all(settings)
    # When the alarm fires again 2 hours later (cooldown 6 h, measured from the alarm state timestamps)
    decide(settings, alarm_event(state="OK", previous="ALARM", at=T0 + timedelta(hours=1), values=[0.1]))
    early = decide(settings, alarm_event(at=T0 + timedelta(hours=2)))
    # Then it is suppressed with the time the next start is allowed
    assert (early.decision, early.guard) == ("suppressed", "cooldown")
    assert early.reason == (
        f"cooldown: the last retrain started at 2026-11-27T10:05:12Z ({ALARM}), less than 360 min before "
        "2026-11-27T12:05:12Z; next start allowed from 2026-11-27T16:05:12Z"
    )
    # When it fires again 7 hours after the first start
    decide(settings, alarm_event(state="OK", previous="ALARM", at=T0 + timedelta(hours=3), values=[0.1]))
    late = decide(settings, alarm_event(at=T0 + timedelta(hours=7)))
    # Then it starts
    assert late.decision == "started" and len(executions(settings)) == 2


def test_at_most_max_per_day_starts_per_utc_day(settings: logic.Settings) -> None:
    # Given no cooldown and a budget of 2 a day
    settings = replace(settings, guard=logic.Guard(cooldown_minutes=0, max_per_day=2, consecutive_breaches=3))
    day = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
    outcomes = []
    for hour in (0, 4, 8):
        decide(
            settings,
            alarm_event(state="OK", previous="ALARM", at=day + timedelta(hours=hour, minutes=-30), values=[0.1]),
        )
        outcomes.append(decide(settings, alarm_event(at=day + timedelta(hours=hour))))
        finish_all(settings)
    # Then the third start of the day is refused with the budget as the reason
    assert [o.decision for o in outcomes] == ["started", "started", "suppressed"]
    assert outcomes[2].guard == "budget"
    assert outcomes[2].reason == "daily budget: 2 of 2 retrains already started on 2026-11-27 (UTC)"
    # And on the next UTC day the budget is fresh
    next_day = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)
    decide(settings, alarm_event(state="OK", previous="ALARM", at=next_day - timedelta(minutes=10), values=[0.1]))
    assert decide(settings, alarm_event(at=next_day)).decision == "started"


def test_duplicate_delivery_starts_one_execution_and_counts_once(settings: logic.Settings) -> None:
    # Given the same alarm transition delivered twice (even without the idempotency layer)
    event = alarm_event()
    first = decide(settings, event)
    finish_all(settings)  # whether or not the first execution still runs
    second = decide(settings, event)
    # Then one execution exists, and the repeat is recognised as the same decision
    assert first.decision == second.decision == "started"
    assert second.execution_name == first.execution_name and second.reason == "already started for this transition"
    assert len(executions(settings)) == 1
    # and the budget counted the transition once
    day = boto3.client("dynamodb").get_item(
        TableName="guard", Key={"pk": {"S": "retrain#churn"}, "sk": {"S": "day#2026-11-27"}}
    )
    assert len(day["Item"]["transitions"]["SS"]) == 1


def test_a_start_claimed_by_a_crashed_attempt_is_completed_by_its_retry(settings: logic.Settings) -> None:
    # Given an attempt that claimed the start slot and then died before StartExecution
    transition = logic.Transition.from_event(AlarmEvent.model_validate(alarm_event()))
    name = logic.execution_name(transition)
    assert logic.claim_start(boto3.client("dynamodb"), "guard", settings.guard, transition, name, "churn")[0] is True
    logic.update_breaches(boto3.client("dynamodb"), "guard", transition, "GreaterThanThreshold")
    # When the retry comes
    decision = logic.decide(clients(), settings, transition)
    # Then its own claim does not block it, and the execution starts
    assert decision.decision == "started" and len(executions(settings)) == 1
    # while another transition at the same moment is refused (cooldown): the claim is race-free
    other = replace(transition, alarm_arn=transition.alarm_arn + "-other")
    claimed, guard, _ = logic.claim_start(boto3.client("dynamodb"), "guard", settings.guard, other, "x", "churn")
    assert (claimed, guard) == (False, "cooldown")


def test_stale_unknown_and_no_data_transitions(settings: logic.Settings, aws: dict[str, Any]) -> None:
    # Given a recorded transition at T0 + 2 h, an older one delivered late is ignored
    decide(settings, alarm_event(state="OK", previous="ALARM", at=T0 + timedelta(hours=2), values=[0.1]))
    stale = decide(settings, alarm_event(at=T0))
    assert stale.guard == "stale" and "2026-11-27T12:05:12Z" in stale.reason
    # An alarm this stack does not wire is ignored
    unknown = decide(settings, alarm_event(name="someone-elses-alarm"))
    assert unknown.guard == "unknown_alarm" and "'someone-elses-alarm' is not one of" in unknown.reason
    # Without a curated dataset there is nothing to retrain on
    boto3.client("s3").delete_object(Bucket=CURATED, Key=MANIFEST_KEY)
    no_data = decide(settings, alarm_event(at=T0 + timedelta(hours=3)))
    assert no_data.guard == "no_data" and MANIFEST_KEY in no_data.reason
    assert executions(settings) == []


def test_quality_alarms_breach_below_their_threshold(settings: logic.Settings) -> None:
    # Given the AUC alarm (LessThanThreshold 0.7) with 3 periods below the floor
    event = alarm_event(name=QUALITY_ALARM, values=[0.61, 0.65, 0.69])
    data = json.loads(event["alarmData"]["state"]["reasonData"])
    event["alarmData"]["state"]["reasonData"] = json.dumps({**data, "threshold": 0.7})
    # Then
    assert decide(settings, event).decision == "started"


# ---- the handler ----------------------------------------------------------------------------------------


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, settings: logic.Settings) -> Iterator[None]:
    for name, value in {
        "STATE_MACHINE_ARN": settings.state_machine_arn,
        "GUARD_TABLE": settings.guard_table,
        "TOPIC_ARN": settings.topic_arn,
        "CURATED_BUCKET": CURATED,
    }.items():
        monkeypatch.setenv(name, value)
    cached = (
        retrain_handler.settings,
        retrain_handler._clients,
        retrain_handler.decide_once,
        retrain_handler.request_once,
        retrain_handler.schedule_once,
    )
    for function in cached:
        function.cache_clear()
    yield
    for function in cached:
        function.cache_clear()


def inbox(aws: dict[str, Any]) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


@pytest.mark.filterwarnings("ignore:No application metrics to publish")  # the duplicate publishes nothing
def test_the_handler_decides_once_per_transition_and_notifies_the_reason(
    aws: dict[str, Any], environment: None, settings: logic.Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an alarm event delivered twice
    event = alarm_event()
    # When the handler sees it twice
    first = retrain_handler.handler(event, FakeContext())
    second = retrain_handler.handler(event, FakeContext())
    # Then one decision was made (the second returns it from the idempotency record), one execution runs
    assert first == second and first["decision"] == "started"
    assert len(executions(settings)) == 1
    # and one notification carries the decision and its reason
    (message,) = inbox(aws)
    assert message["Subject"] == f"Retrain started: {ALARM}"
    assert message["Message"].startswith(f"Retrain started of dataset churn on alarm {ALARM} at ")
    assert "Reason: 3 consecutive breaching periods: Threshold Crossed" in message["Message"]
    # and one RetrainDecision metric with the decision and service dimensions was emitted (EMF)
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    decisions = [m for m in emf if "RetrainDecision" in m]
    assert len(decisions) == 1
    assert (decisions[0]["decision"], decisions[0]["service"]) == ("started", "retrain")
    assert decisions[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["decision", "service"]]


def test_a_suppressed_decision_is_notified_with_its_guard(aws: dict[str, Any], environment: None) -> None:
    retrain_handler.handler(alarm_event(values=[0.5, 0.1, 0.1]), FakeContext())
    (message,) = inbox(aws)
    assert message["Subject"] == f"Retrain suppressed (breaches): {ALARM}"
    assert json.loads(message["Message"].split("\n\n", 1)[1])["reason"].startswith("1 of 3 consecutive")


def test_routine_decisions_are_logged_and_counted_but_not_notified(
    aws: dict[str, Any], environment: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the alarm going back to OK, then a delivery older than that one
    back_to_ok = retrain_handler.handler(alarm_event(state="OK", previous="ALARM"), FakeContext())
    stale = retrain_handler.handler(alarm_event(at=T0 - timedelta(hours=2)), FakeContext())
    # Then both were decided with their guard, counted in the metric, and nobody was messaged
    assert (back_to_ok["guard"], stale["guard"]) == ("not_alarm", "stale")
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m["decision"] for m in emf if "RetrainDecision" in m] == ["suppressed", "suppressed"]
    assert inbox(aws) == []


def test_the_handler_finds_the_alarms_dataset_and_its_settings_in_the_document(environment: None) -> None:
    # Given the alarms of the declared datasets / When the handler resolves each
    settings = retrain_handler.settings()
    energy = settings.logic_settings("mlops-dev-energy-quality")
    # Then a dataset's alarm gets that dataset's manifest, guard and alarms (RMSE quality: rising is worse)
    assert (energy.dataset, energy.manifest_key) == ("energy", "manifests/energy/latest.json")
    assert energy.alarms["mlops-dev-energy-quality"] == "GreaterThanThreshold"
    assert energy.guard == logic.Guard(cooldown_minutes=360, max_per_day=2, consecutive_breaches=3)
    # And an alarm of no declared dataset is refused by the first guard, listing every known alarm
    unknown = settings.logic_settings("someone-elses-alarm")
    assert unknown.dataset == "" and len(unknown.alarms) == 12
    decision = logic.decide(clients(), unknown, logic.Transition.from_event(AlarmEvent.model_validate(alarm_event())))
    assert decision.guard == "unknown_alarm"


def test_the_lambdas_guard_is_the_stage_configurations_retrain_guard() -> None:
    # Given the stage configuration's RetrainGuard, as the platform document carries it
    from dataclasses import asdict, fields

    from stacks.config import RetrainGuard

    configured = asdict(RetrainGuard())
    # When the Lambda reads it
    guard = logic.Guard(**configured)
    # Then every field is known to the Lambda and the defaults agree (the copy cannot drift from the config)
    assert [f.name for f in fields(logic.Guard)] == list(configured)
    assert asdict(guard) == configured == asdict(logic.Guard())
