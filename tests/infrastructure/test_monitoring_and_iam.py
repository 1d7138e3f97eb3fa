"""Retrain alarms, dashboard and least-privilege IAM across the stack."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from aws_cdk import assertions
from moto import mock_aws
from moto.cloudwatch.models import cloudwatch_backends

from lambdas.retrain import logic as retrain
from lambdas.retrain.models import AlarmEvent
from localcloud.runtime import alarms as local_alarms
from stacks.config import AlarmThresholds, StageConfig, alarm_window_problem, load_config
from stacks.mlops_stack import MlopsStack
from tests.infrastructure.helpers import of_type, render
from tests.infrastructure.policies import literal_parts

DAY = 86_400
MOTO_ACCOUNT = "123456789012"  # moto's default account


def test_retrain_alarms_invoke_the_retrain_lambda_after_n_breaching_periods(
    resources: dict[str, Any], config: StageConfig, stack: MlopsStack
) -> None:
    # Given every declared dataset's retrain alarms (drift, quality, 5xx, latency: <prefix>-<dataset>-<kind>)
    names = {name for c in stack.dataset_configs.values() for name in c.retrain_alarm_comparisons}
    assert len(names) == 4 * len(stack.dataset_configs)
    alarms = [
        v["Properties"]
        for v in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if v["Properties"]["AlarmName"] in names
    ]
    # Then each invokes the retrain Lambda after N breaching periods
    assert len(alarms) == len(names)
    for props in alarms:
        (action,) = props["AlarmActions"]
        assert action["Fn::GetAtt"][0].startswith("MonitoringRetrain")
        assert props["EvaluationPeriods"] == props["DatapointsToAlarm"] == config.alarms.monitor_evaluation_periods
    # And CloudWatch may invoke it for the stage's alarms through one resource-policy statement (one per alarm would
    # outgrow Lambda's 20 KB resource policy at about 60 alarms)
    (permission,) = [
        p["Properties"]
        for p in of_type(resources, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "lambda.alarms.cloudwatch.amazonaws.com"
    ]
    assert permission["FunctionName"]["Fn::GetAtt"][0].startswith("MonitoringRetrain")
    assert literal_parts(permission["SourceArn"]).endswith(f":alarm:{config.prefix}-*")
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert all(fnmatch.fnmatchcase(name, f"{config.prefix}-*") for name in names)


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


def _quality_alarm(resources: dict[str, Any], config: StageConfig, dataset: str = "churn") -> dict[str, Any]:
    (props,) = [
        v["Properties"]
        for v in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if v["Properties"]["AlarmName"] == f"{config.prefix}-{dataset}-quality"
    ]
    return dict(props)


def test_the_quality_alarm_watches_the_gate_metric_in_its_direction(
    resources: dict[str, Any], stack: MlopsStack
) -> None:
    """A live model worse than what the gate lets deploy starts a retrain: the quality alarm watches the dataset's
    gate metric on ground truth (pipelines.platform QUALITY_METRIC_NAMES) against the stage's floor, falling for
    AUC (churn) or macro F1 (tickets), rising for RMSE (energy), whose worst label batch is its Maximum."""
    expected = {
        "churn": ("ModelAUC", "LessThanThreshold", "Minimum"),
        "tickets": ("ModelMacroF1", "LessThanThreshold", "Minimum"),
        "energy": ("ModelRMSE", "GreaterThanThreshold", "Maximum"),
    }
    for name, (metric, comparison, statistic) in expected.items():
        config = stack.dataset_configs[name]
        props = _quality_alarm(resources, config, name)
        assert (props["MetricName"], props["ComparisonOperator"], props["Statistic"]) == (metric, comparison, statistic)
        assert props["Threshold"] == config.evaluation.absolute_floor == config.dataset.evaluation_gate.floor
        assert props["Dimensions"] == [{"Name": "EndpointName", "Value": f"{config.prefix}-{name}"}]
        assert stack.platform.dataset(name).names.retrain_alarms[props["AlarmName"]] == comparison


def test_daily_ground_truth_can_trip_the_quality_alarm_and_pass_the_retrain_guard(
    resources: dict[str, Any], config: StageConfig
) -> None:
    # Given the synthesized quality alarm of churn, created as CloudWatch would hold it
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


def test_retrain_lambda_is_serialised_in_prod(prod_template: assertions.Template) -> None:
    """dev deploys without reservations (a new account's quota): its guard relies on the DynamoDB claim alone
    (tests/infrastructure/test_concurrency.py)."""
    (fn,) = [
        v
        for k, v in of_type(prod_template.to_json()["Resources"], "AWS::Lambda::Function").items()
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
    # the Lambda ETL of small uploads (issue 25) is the 11th; the A/B evaluator exists only with a dataset served with
    # AB (test_scale.py)
    assert len(ours) == 11
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
    resources: dict[str, Any], stack: MlopsStack
) -> None:
    # Given the retrain alarms the platform document lists, with the operators the guard compares with
    comparisons = stack.platform.retrain_alarms
    assert {n.rsplit("-", 1)[1] for n in comparisons} == {"drift", "quality", "5xx", "latency"}
    found = {}
    for props in of_type(resources, "AWS::CloudWatch::Alarm").values():
        name = props["Properties"]["AlarmName"]
        if name in comparisons:
            # Then each reports OK too, and compares as the guard will
            assert props["Properties"]["OKActions"] == props["Properties"]["AlarmActions"], name
            found[name] = props["Properties"]["ComparisonOperator"]
    assert found == comparisons
    # And the retrain Lambda's environment carries names only (the alarms, manifest and guard: the document)
    env = _function(resources, "MonitoringRetrain")["Environment"]["Variables"]
    assert not {"ALARMS", "MANIFEST_KEY", "GUARD"} & set(env), sorted(env)
    churn = stack.platform.dataset("churn")
    assert churn.names.manifest_key == "manifests/churn/latest.json"
    assert churn.retrain == {"cooldown_minutes": 360, "max_per_day": 2, "consecutive_breaches": 3, "schedule": ""}


def test_a_declared_retrain_schedule_invokes_the_guarded_retrain_lambda(
    resources: dict[str, Any], config: StageConfig, stack: MlopsStack
) -> None:
    retrain_fn = next(k for k in of_type(resources, "AWS::Lambda::Function") if k.startswith("MonitoringRetrain"))
    # Given the datasets that declare retrain.schedule (tickets: rate(7 days))
    declared = {c.resource_prefix: c for c in stack.dataset_configs.values() if c.retrain.schedule}
    assert declared and len(declared) < len(stack.dataset_configs)
    rules = {
        r["Properties"]["Name"]: r["Properties"]
        for r in of_type(resources, "AWS::Events::Rule").values()
        if r["Properties"].get("Name", "").endswith("-retrain")
    }
    # Then each has exactly one rule <prefix>-<dataset>-retrain with its expression, and the others none
    assert sorted(rules) == sorted(f"{prefix}-retrain" for prefix in declared)
    for prefix, dataset in declared.items():
        rule = rules[f"{prefix}-retrain"]
        assert rule["ScheduleExpression"] == dataset.retrain.schedule == "rate(7 days)"
        # And it invokes the retrain Lambda with the scheduled event naming the dataset, retried by EventBridge
        (target,) = rule["Targets"]
        assert target["Arn"]["Fn::GetAtt"][0] == retrain_fn
        assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2}
        transformer = target["InputTransformer"]
        assert json.loads(transformer["InputTemplate"].replace("<", '"<').replace(">", '>"'))["detail"] == {
            "dataset": dataset.dataset.name
        }
        assert transformer["InputPathsMap"]["time"] == "$.time"
    # And a failure after Lambda's own retries lands in the function's dead-letter queue
    assert "TargetArn" in _function(resources, "MonitoringRetrain")["DeadLetterConfig"]
    # And EventBridge may invoke the retrain Lambda for the retrain rules only (not the drift schedules)
    (permission,) = [
        p["Properties"]
        for p in of_type(resources, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"]["Fn::GetAtt"][0] == retrain_fn
        and p["Properties"]["Principal"] == "events.amazonaws.com"
    ]
    pattern = literal_parts(permission["SourceArn"]).rsplit(":rule/", 1)[1]
    assert pattern == f"{config.prefix}-*-retrain" and all(fnmatch.fnmatchcase(r, pattern) for r in rules)
    assert not any(fnmatch.fnmatchcase(f"{prefix}-drift", pattern) for prefix in declared)
    # And the document carries the schedule to the Lambda's guard
    for dataset in declared.values():
        assert stack.platform.dataset(dataset.dataset.name).retrain["schedule"] == dataset.retrain.schedule


def test_drift_monitor_is_scheduled_per_dataset(
    resources: dict[str, Any], config: StageConfig, stack: MlopsStack
) -> None:
    fn = _function(resources, "MonitoringDriftMonitor")
    assert fn["Layers"] and len(fn["Layers"]) == 2  # Powertools + AWS SDK for pandas (numpy)
    drift_fn = next(k for k in of_type(resources, "AWS::Lambda::Function") if k.startswith("MonitoringDriftMonitor"))
    # Given one schedule rule per declared dataset
    rules = {
        r["Properties"]["Name"]: r["Properties"]
        for r in of_type(resources, "AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"] and r["Properties"]["Name"].endswith("-drift")
    }
    assert sorted(rules) == sorted(f"{c.resource_prefix}-drift" for c in stack.dataset_configs.values())
    for name, dataset in stack.dataset_configs.items():
        rule = rules[f"{dataset.resource_prefix}-drift"]
        # Then each runs at the dataset's cadence and hands the drift monitor the scheduled event with its dataset
        minutes = dataset.alarms.drift_schedule_minutes
        assert rule["ScheduleExpression"] == ("rate(1 hour)" if minutes == 60 else f"rate({minutes} minutes)")
        (target,) = rule["Targets"]
        assert target["Arn"]["Fn::GetAtt"][0] == drift_fn
        transformer = target["InputTransformer"]
        assert json.loads(transformer["InputTemplate"].replace("<", '"<').replace(">", '>"'))["detail"] == {
            "dataset": name
        }
        assert transformer["InputPathsMap"]["time"] == "$.time"
        # And its thresholds and prefixes are the document's
        names = stack.platform.dataset(name).names
        assert names.data_capture_prefix == f"data-capture/{dataset.endpoint_name}/"
        assert names.drift_report_prefix == f"monitoring/drift/{name}/"
        assert stack.platform.dataset(name).alarms["drift_psi"] == dataset.alarms.drift_psi
    # And EventBridge may invoke the monitor for these rules only, with one resource-policy statement
    (permission,) = [
        p["Properties"]
        for p in of_type(resources, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"]["Fn::GetAtt"][0] == drift_fn
    ]
    pattern = literal_parts(permission["SourceArn"]).rsplit(":rule/", 1)[1]
    assert pattern == f"{config.prefix}-*-drift" and all(fnmatch.fnmatchcase(r, pattern) for r in rules)
    assert stack.platform.monitoring["drift_min_rows"] > 0
    # the ground truth validates labelled production rows with the ETL's rules: Powertools + AWS SDK for pandas
    assert len(_function(resources, "MonitoringGroundTruth")["Layers"]) == 2
    gt = _function(resources, "MonitoringGroundTruth")["Environment"]["Variables"]
    assert gt["IDEMPOTENCY_TABLE"]["Ref"].startswith("PipelineIdempotencyTable")
    assert gt["GLUE_DATABASE"] == config.glue_database_name and gt["CURATED_BUCKET"]["Ref"].startswith(
        "DataLakeCurated"
    )
    assert stack.platform.dataset("churn").names.quality_prefix == "monitoring/quality/churn/"


def test_monitors_write_only_their_own_prefixes_and_never_delete(resources: dict[str, Any]) -> None:
    for role_prefix, owns in (
        ("MonitoringDriftMonitorRole", ("monitoring/drift/*",)),
        ("MonitoringGroundTruthRole", ("monitoring/quality/*", "production/*", "quarantine/dataset=*/production/*")),
    ):
        policies = [v for k, v in of_type(resources, "AWS::IAM::Policy").items() if k.startswith(role_prefix)]
        statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
        for stmt in statements:
            actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
            assert not any(a.startswith("s3:Delete") for a in actions), (role_prefix, actions)
            if any(a.startswith("s3:PutObject") for a in actions):
                targets = json.dumps(stmt["Resource"])
                assert any(own in targets for own in owns) and "data-capture" not in targets, (role_prefix, targets)


def test_the_ground_truth_catalogues_only_the_production_tables_of_the_declared_datasets(
    resources: dict[str, Any], stack: MlopsStack
) -> None:
    policies = [
        v for k, v in of_type(resources, "AWS::IAM::Policy").items() if k.startswith("MonitoringGroundTruthRole")
    ]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    (glue,) = [s for s in statements if any(str(a).startswith("glue:") for a in s["Action"])]
    assert sorted(glue["Action"]) == ["glue:CreateTable", "glue:GetTable", "glue:UpdateTable"]
    tables = sorted(r.rsplit("/", 1)[1] for r in map(literal_parts, glue["Resource"]) if ":table/" in r)
    assert tables == sorted(f"{name}_production" for name in stack.dataset_configs)
    # And its rows land in the curated zone under production/, its rejected rows in the production quarantine only
    puts = [s for s in statements if "s3:PutObject" in s["Action"]]
    assert any(
        "production/*" in json.dumps(s["Resource"]) and "DataLakeCurated" in json.dumps(s["Resource"]) for s in puts
    )
    quarantine = [literal_parts(r) for s in puts for r in s["Resource"] if "quarantine/" in json.dumps(r)]
    assert quarantine and all(r.endswith("/quarantine/dataset=*/production/*") for r in quarantine), quarantine


def test_dashboard_shows_runs_and_decisions_and_a_section_per_dataset(
    resources: dict[str, Any], stack: MlopsStack
) -> None:
    (board,) = of_type(resources, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(board["Properties"]["DashboardBody"])
    for title in (
        "Pipeline runs",
        "Model versions registered / rejected",
        "Deployments by outcome",
        "Retrain decisions",
    ):
        assert title in body, title
    for metric in ("OverallDriftPSI", "FeatureDriftPSI", "RetrainDecision"):
        assert metric in body, metric
    for name, config in stack.dataset_configs.items():
        metric = config.evaluation.primary_metric
        for title in (
            "traffic per variant",
            "errors and latency",
            "drift (overall PSI",
            f"{metric} on ground",
            "alarms",
        ):
            assert f"{name}: {title}" in body, (name, title)
        rendered = render(board["Properties"]["DashboardBody"])  # the body's JSON text: quotes escaped inside
        assert config.quality_metric in body and f'EndpointName=\\"{config.endpoint_name}\\"' in rendered, name
