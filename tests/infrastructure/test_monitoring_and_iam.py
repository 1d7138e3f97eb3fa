"""Retrain alarms, dashboard and least-privilege IAM across the stack."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.cloudwatch.models import cloudwatch_backends

from lambdas.retrain import logic as retrain
from lambdas.retrain.models import AlarmEvent
from localcloud.runtime import alarms as local_alarms
from stacks.config import AlarmThresholds, StageConfig, alarm_window_problem, load_config
from tests.infrastructure.helpers import of_type

DAY = 86_400
MOTO_ACCOUNT = "123456789012"  # moto's default account


def test_retrain_alarms_invoke_the_retrain_lambda_after_n_breaching_periods(
    resources: dict[str, Any], config: StageConfig
) -> None:
    names = {f"{config.prefix}-{s}" for s in ("drift", "quality", "5xx", "latency")}
    alarms = [
        v["Properties"]
        for v in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if v["Properties"]["AlarmName"] in names
    ]
    assert len(alarms) == 4
    for props in alarms:
        (action,) = props["AlarmActions"]
        assert action["Fn::GetAtt"][0].startswith("MonitoringRetrain")
        assert props["EvaluationPeriods"] == props["DatapointsToAlarm"] == config.alarms.monitor_evaluation_periods
    perms = [
        p["Properties"]
        for p in of_type(resources, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "lambda.alarms.cloudwatch.amazonaws.com"
    ]
    assert len(perms) == 4 and perms[0]["FunctionName"]["Fn::GetAtt"][0].startswith("MonitoringRetrain")


def test_every_alarm_window_is_one_cloudwatch_accepts(resources: dict[str, Any]) -> None:
    # Given every alarm of the stack / Then PutMetricAlarm would take its period and evaluation range
    for name, alarm in of_type(resources, "AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        assert alarm_window_problem(int(props["Period"]), int(props["EvaluationPeriods"])) is None, name
    # And the stage config refuses a window CloudWatch would not (3 periods of 3 days > 7 days)
    with pytest.raises(ValueError, match="quality alarm: 3 periods of 259200 s exceed"):
        replace(load_config("dev"), alarms=AlarmThresholds(quality_period_hours=72))
    assert alarm_window_problem(90, 1) == "a period of 90 s is not 10, 20, 30 or a multiple of 60"
    assert alarm_window_problem(300, 300) is not None and alarm_window_problem(3600, 168) is None


def _quality_alarm(resources: dict[str, Any], config: StageConfig) -> dict[str, Any]:
    (props,) = [
        v["Properties"]
        for v in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if v["Properties"]["AlarmName"] == f"{config.prefix}-quality"
    ]
    return dict(props)


def test_daily_ground_truth_can_trip_the_quality_alarm_and_pass_the_retrain_guard(
    resources: dict[str, Any], config: StageConfig
) -> None:
    # Given the synthesized quality alarm, created as CloudWatch would hold it
    props = _quality_alarm(resources, config)
    assert props["Period"] == config.alarms.quality_period_hours * 3600 == DAY
    now = 1_800_000_000 - 1_800_000_000 % DAY + DAY  # midnight UTC, the end of the third day below
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name=config.region)
        cloudwatch.put_metric_alarm(
            **{k: props[k] for k in ("AlarmName", "Namespace", "MetricName", "Dimensions", "Statistic", "Period")},
            **{k: props[k] for k in ("EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator")},
            TreatMissingData=props["TreatMissingData"],
        )
        alarm = cloudwatch_backends[MOTO_ACCOUNT][config.region].alarms[props["AlarmName"]]
        # When three daily label uploads (10:00 UTC) each measure an AUC under the floor
        points = [local_alarms.Datapoint(now - day * DAY - 14 * 3600, 0.61) for day in range(3)]
        result = local_alarms.evaluate(alarm, points, now)
        # Then the alarm fires on the three daily periods (with hourly periods it could never have)
        assert result.state == "ALARM", result.reason
        previous = {"value": "OK", "reason": "", "reasonData": "{}", "timestamp": local_alarms.iso(now - DAY)}
        alarm.update_state(result.reason, json.dumps(result.reason_data), result.state)
        event = local_alarms.alarm_event(alarm, previous, MOTO_ACCOUNT, config.region, now)
    # And the retrain guard counts three consecutive breaching periods: enough to retrain
    transition = retrain.Transition.from_event(AlarmEvent.model_validate(event))
    breaching, _, newest, period = retrain._evaluated(transition, "LessThanThreshold")
    assert period == DAY and len(breaching) == 3
    assert retrain._run_length(breaching, newest, period) >= config.retrain.consecutive_breaches
    assert transition.timestamp == datetime.fromtimestamp(now, UTC)


def test_retrain_lambda_is_serialised(resources: dict[str, Any]) -> None:
    (fn,) = [
        v
        for k, v in of_type(resources, "AWS::Lambda::Function").items()
        if k.startswith("MonitoringRetrain") and "Role" not in k
    ]
    assert fn["Properties"]["ReservedConcurrentExecutions"] == 1


def test_dashboard_exists(resources: dict[str, Any], config: StageConfig) -> None:
    (board,) = of_type(resources, "AWS::CloudWatch::Dashboard").values()
    assert board["Properties"]["DashboardName"] == f"{config.prefix}-mlops"


def test_functions_trace_log_json_and_use_the_powertools_layer(resources: dict[str, Any]) -> None:
    ours = {
        k: v
        for k, v in of_type(resources, "AWS::Lambda::Function").items()
        if v["Properties"].get("Handler", "").startswith("lambdas.")
    }
    assert len(ours) == 10
    for name, fn in ours.items():
        props = fn["Properties"]
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        assert props["LoggingConfig"]["LogFormat"] == "JSON", name
        assert props["Runtime"] == "python3.13", name
        assert len(props["Layers"]) >= 1, name


def test_no_policy_grants_service_wide_wildcards_or_deletes_raw_data(resources: dict[str, Any]) -> None:
    raw = next(k for k in of_type(resources, "AWS::S3::Bucket") if k.startswith("DataLakeRaw"))
    for name, policy in of_type(resources, "AWS::IAM::Policy").items():
        for stmt in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
            assert "*" not in actions, name
            assert not any(a.endswith(":*") for a in actions), (name, actions)
            resources_ = stmt["Resource"] if isinstance(stmt["Resource"], list) else [stmt["Resource"]]
            on_raw = any(raw in str(r) for r in resources_)
            if on_raw:  # the raw zone is read-only for everything the stack runs
                writes = [a for a in actions if a.startswith(("s3:Delete", "s3:PutObject", "s3:Abort"))]
                assert not writes, (name, writes)


def test_prod_stage_requires_manual_approval_and_bigger_fleet() -> None:
    prod = load_config("prod")
    assert prod.approval == "manual" and load_config("dev").approval == "auto"
    assert prod.serving.min_capacity >= 2
    assert prod.stack_name != load_config("dev").stack_name


def _function(resources: dict[str, Any], prefix: str) -> dict[str, Any]:
    (fn,) = [
        v["Properties"]
        for k, v in of_type(resources, "AWS::Lambda::Function").items()
        if k.startswith(prefix) and v["Properties"].get("Handler", "").startswith("lambdas.")
    ]
    return dict(fn)


def test_retrain_alarms_also_report_ok_so_the_guard_can_clear_breach_records(
    resources: dict[str, Any], config: StageConfig
) -> None:
    comparisons = {
        f"{config.prefix}-drift": "GreaterThanThreshold",
        f"{config.prefix}-quality": "LessThanThreshold",
        f"{config.prefix}-5xx": "GreaterThanOrEqualToThreshold",
        f"{config.prefix}-latency": "GreaterThanThreshold",
    }
    for props in of_type(resources, "AWS::CloudWatch::Alarm").values():
        name = props["Properties"]["AlarmName"]
        if name in comparisons:
            assert props["Properties"]["OKActions"] == props["Properties"]["AlarmActions"], name
            assert props["Properties"]["ComparisonOperator"] == comparisons[name]
    env = _function(resources, "MonitoringRetrain")["Environment"]["Variables"]
    assert json.loads(env["ALARMS"]) == comparisons
    assert env["MANIFEST_KEY"] == f"manifests/{config.dataset.name}/latest.json"
    assert json.loads(env["GUARD"]) == {"cooldown_minutes": 360, "max_per_day": 2, "consecutive_breaches": 3}


def test_drift_monitor_is_scheduled_with_its_thresholds(resources: dict[str, Any], config: StageConfig) -> None:
    fn = _function(resources, "MonitoringDriftMonitor")
    env = fn["Environment"]["Variables"]
    assert fn["Layers"] and len(fn["Layers"]) == 2  # Powertools + AWS SDK for pandas (numpy)
    assert env["PSI_THRESHOLD"] == str(config.alarms.drift_psi)
    assert env["DATA_CAPTURE_PREFIX"] == f"data-capture/{config.endpoint_name}/"
    assert env["REPORT_PREFIX"] == "monitoring/drift/"
    assert int(env["MIN_ROWS"]) > 0
    (rule,) = [
        r["Properties"]
        for k, r in of_type(resources, "AWS::Events::Rule").items()
        if k.startswith("MonitoringDriftSchedule")
    ]
    minutes = config.drift_schedule_minutes
    assert rule["ScheduleExpression"] == ("rate(1 hour)" if minutes == 60 else f"rate({minutes} minutes)")
    assert len(_function(resources, "MonitoringGroundTruth")["Layers"]) == 1  # Powertools only: no numpy
    gt = _function(resources, "MonitoringGroundTruth")["Environment"]["Variables"]
    assert gt["IDEMPOTENCY_TABLE"]["Ref"].startswith("PipelineIdempotencyTable")
    assert gt["QUALITY_PREFIX"] == "monitoring/quality/"


def test_monitors_write_only_their_own_prefixes_and_never_delete(resources: dict[str, Any]) -> None:
    for role_prefix, own in (
        ("MonitoringDriftMonitorRole", "monitoring/drift/*"),
        ("MonitoringGroundTruthRole", "monitoring/quality/*"),
    ):
        policies = [v for k, v in of_type(resources, "AWS::IAM::Policy").items() if k.startswith(role_prefix)]
        statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
        for stmt in statements:
            actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
            assert not any(a.startswith("s3:Delete") for a in actions), (role_prefix, actions)
            if any(a.startswith("s3:PutObject") for a in actions):
                targets = json.dumps(stmt["Resource"])
                assert own in targets and "data-capture" not in targets, (role_prefix, targets)


def test_dashboard_shows_runs_versions_traffic_drift_quality_and_decisions(resources: dict[str, Any]) -> None:
    (board,) = of_type(resources, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(board["Properties"]["DashboardBody"])
    for title in (
        "Pipeline runs",
        "Model versions registered / rejected",
        "Endpoint traffic per variant",
        "Drift: overall PSI (alarm) and PSI per feature",
        "Drift: KS per numeric feature",
        "Quality on ground truth: AUC (alarm) and accuracy",
        "AUC per model version",
        "Retrain decisions",
    ):
        assert title in body, title
    for metric in (
        "OverallDriftPSI",
        "FeatureDriftPSI",
        "FeatureDriftKS",
        "ModelAUC",
        "ModelAccuracy",
        "RetrainDecision",
    ):
        assert metric in body, metric
