"""Stack updates in the local cloud (``localcloud.shims.cloudformation._update_in_place``): what ``cdk deploy`` does
to a deployed stack when a dataset is added or removed. New resources are created, changed ones updated in place,
removed ones deleted in the cleanup phase unless their DeletionPolicy retains them, unchanged ones untouched
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-update-behaviors.html,
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from localcloud.runtime.lambdas import LambdaRuntime
from localcloud.shims import cloudformation as shim
from localcloud.shims import cloudwatch_alarms
from tests.unit.localcloud.shims.test_cloudformation import (
    FUNCTION,
    alarm_properties,
    aws,  # noqa: F401 - the fixture, used by name
    cfn_events,
    provider_stack,
    runtime,  # noqa: F401 - the fixture, used by name
)
from tests.unit.localcloud.support import REGION, unique, zip_package

CAPABILITIES = ["CAPABILITY_IAM"]


def deploy(name: str, template: dict[str, Any], update: bool = False) -> dict[str, str]:
    """Create (or update) ``name`` from ``template``; returns its resources (logical id -> physical id)."""
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    operation = cloudformation.update_stack if update else cloudformation.create_stack
    operation(StackName=name, TemplateBody=json.dumps(template), Capabilities=CAPABILITIES)
    status = cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    assert status == ("UPDATE_COMPLETE" if update else "CREATE_COMPLETE")
    listed = cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in listed}


def group(name: str) -> dict[str, Any]:
    return {
        "Type": "AWS::SageMaker::ModelPackageGroup",
        "Properties": {"ModelPackageGroupName": name},
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
    }


def alarm(name: str, **extra: Any) -> dict[str, Any]:
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": alarm_properties(name, **extra)}


@pytest.fixture
def alarms(aws: None) -> Iterator[None]:  # noqa: F811 - the imported fixture
    cloudwatch_alarms.install()  # PutMetricAlarm as CloudWatch answers it (an update keeps the alarm's state)
    yield


def test_an_update_adds_updates_and_removes_as_cloudformation_does(alarms: None) -> None:
    # Given a deployed stack: a shared topic, two datasets' groups (retained) and alarms, one alarm in ALARM
    n = {k: unique(k) for k in ("kept", "gone", "new", "changed", "stays", "leaves", "joins")}
    before = {
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic"},
            "StaysGroup": group(n["stays"]),
            "LeavesGroup": group(n["leaves"]),
            "KeptAlarm": alarm(n["kept"]),
            "GoneAlarm": alarm(n["gone"]),
            "ChangedAlarm": alarm(n["changed"]),
        }
    }
    stack = unique("stack")
    first = deploy(stack, before)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    cloudwatch.set_alarm_state(AlarmName=n["changed"], StateValue="ALARM", StateReason="breaching")

    # When the template drops a dataset (its group and alarm), adds one, and changes an alarm's threshold
    after = {
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic"},
            "StaysGroup": group(n["stays"]),
            "JoinsGroup": group(n["joins"]),
            "KeptAlarm": alarm(n["kept"]),
            "NewAlarm": alarm(n["new"]),
            "ChangedAlarm": alarm(n["changed"], Threshold="5"),
        }
    }
    second = deploy(stack, after, update=True)

    # Then the stack lists exactly the new template's resources, the unchanged ones with their physical ids
    assert set(second) == set(after["Resources"])
    assert {k: second[k] for k in ("Topic", "StaysGroup", "KeptAlarm")} == {
        k: first[k] for k in ("Topic", "StaysGroup", "KeptAlarm")
    }
    # and the added resources exist, the removed alarm is deleted, the removed group is retained (its models stay)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    groups = {g["ModelPackageGroupName"] for g in sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]}
    assert {n["stays"], n["leaves"], n["joins"]} <= groups
    names = {a["AlarmName"]: a for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert n["gone"] not in names and {n["kept"], n["new"], n["changed"]} <= set(names)
    # and the changed alarm was updated in place: the new threshold, the state it had
    assert (names[n["changed"]]["Threshold"], names[n["changed"]]["StateValue"]) == (5.0, "ALARM")


def test_a_removed_resource_that_depends_on_another_removed_one_goes_first(alarms: None) -> None:
    # Given a topic and an alarm that notifies it, both removed by the update
    name = unique("notifying")
    before = {
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic"},
            "Notifying": alarm(name, AlarmActions=[{"Ref": "Topic"}]),
            "Other": {"Type": "AWS::SNS::Topic"},
        }
    }
    stack = unique("stack")
    deploy(stack, before)

    # When the update removes them / Then both are gone, in reverse dependency order (the alarm before its topic)
    assert shim.deletion_order({k: before["Resources"][k] for k in ("Topic", "Notifying")}) == ["Notifying", "Topic"]
    remaining = deploy(stack, {"Resources": {"Other": {"Type": "AWS::SNS::Topic"}}}, update=True)
    assert set(remaining) == {"Other"}
    assert boto3.client("cloudwatch", region_name=REGION).describe_alarms(AlarmNames=[name])["MetricAlarms"] == []


def test_an_updated_rule_keeps_its_name(aws: None) -> None:  # noqa: F811 - the imported fixture
    # Given a rule without a Name (CloudFormation generates one) / When its schedule changes
    rule = {"Type": "AWS::Events::Rule", "Properties": {"ScheduleExpression": "rate(1 hour)"}}
    stack = unique("stack")
    first = deploy(stack, {"Resources": {"Drift": rule}})
    changed = {"Type": "AWS::Events::Rule", "Properties": {"ScheduleExpression": "rate(6 hours)"}}
    second = deploy(stack, {"Resources": {"Drift": changed}}, update=True)

    # Then it is updated in place: the same rule (name, so the same ARN), the new schedule
    assert second["Drift"] == first["Drift"]
    described = boto3.client("events", region_name=REGION).describe_rule(Name=first["Drift"])
    assert described["ScheduleExpression"] == "rate(6 hours)"


def test_a_custom_resource_gets_an_update_request_with_its_old_properties(runtime: LambdaRuntime) -> None:  # noqa: F811
    # Given a provider-framework custom resource whose handler keeps its physical id
    on_event = boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=unique("on-event"), Code={"ZipFile": zip_package({"index.py": HANDLER})}, **FUNCTION
    )["FunctionArn"]
    stack = unique("stack")
    template = provider_stack(on_event)
    deploy(stack, template)

    # When a property changes (a dataset removed from the cleanup's list)
    template["Resources"]["Cleanup"]["Properties"]["Datasets"] = ["churn"]
    resources = deploy(stack, template, update=True)

    # Then the handler got Update (not Delete + Create) with both property sets, and the resource kept its id
    events = cfn_events(runtime)
    assert [e["RequestType"] for e in events] == ["Create", "Update"]
    assert events[1]["PhysicalResourceId"] == "cleanup-dev"
    assert "Datasets" not in events[1]["OldResourceProperties"]
    assert events[1]["ResourceProperties"]["Datasets"] == ["churn"]
    assert resources["Cleanup"] == "cleanup-dev"


HANDLER = """
import json

def handler(event, context):
    print("CFN-EVENT " + json.dumps(event))
    if event["RequestType"] == "Create":
        return {"PhysicalResourceId": "cleanup-" + event["ResourceProperties"]["Stage"], "Data": {"Answer": "42"}}
    return {"PhysicalResourceId": event["PhysicalResourceId"]}
"""
