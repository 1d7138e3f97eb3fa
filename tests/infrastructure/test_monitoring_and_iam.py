"""Retrain alarms, dashboard and least-privilege IAM across the stack."""

from __future__ import annotations

from typing import Any

from stacks.config import StageConfig, load_config
from tests.infrastructure.helpers import of_type


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
