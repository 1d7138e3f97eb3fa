"""The strict request validator: each rule accepts a valid request and names the path and the rule of an invalid
one. Shapes are botocore's real service models (SageMaker CreateTrainingJob unless a rule needs another)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import botocore.session
import pytest

from localcloud import shapes

ROLE = "arn:aws:iam::123456789012:role/training"
TOPIC = "arn:aws:sns:us-east-1:123456789012:topic"


def training_job(**changes: Any) -> dict[str, Any]:
    """A CreateTrainingJob request SageMaker accepts, with ``changes`` applied (None removes a member)."""
    request: dict[str, Any] = {
        "TrainingJobName": "churn-train-1",
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": "img:1", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/models/"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "HyperParameters": {"seed": "42"},
    }
    request.update(changes)
    return {k: v for k, v in request.items() if v is not None}


def violations(request: dict[str, Any], service: str = "sagemaker", operation: str = "CreateTrainingJob") -> set[str]:
    return {str(v) for v in shapes.request_violations(service, operation, request, path="Parameters")}


def only(found: set[str]) -> str:
    assert len(found) == 1, found
    return next(iter(found))


def shape(service: str, name: str) -> Any:
    return botocore.session.get_session().get_service_model(service).shape_for(name)


def test_a_valid_request_has_no_violation() -> None:
    assert violations(training_job()) == set()


def test_unknown_member_is_named_with_a_suggestion() -> None:
    # Given a misspelt member in a nested structure
    request = training_job(ResourceConfig={"InstanceCount": 1, "InstanceTyp": "ml.m5.large", "VolumeSizeInGB": 10})
    # When / Then: its path, the rule, and the member it probably means
    assert only(violations(request)) == (
        "Parameters.ResourceConfig.InstanceTyp: unknown-member: 'InstanceTyp' is not a member of ResourceConfig "
        "(did you mean InstanceType, InstanceGroups, SelectedInstanceType?)"
    )


def test_required_member() -> None:
    # Given a request without the required RoleArn / Then the missing member is named
    assert only(violations(training_job(RoleArn=None))) == (
        "Parameters.RoleArn: required: CreateTrainingJobRequest requires RoleArn"
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"TrainingJobName": 7}, "Parameters.TrainingJobName: type: expected a string (TrainingJobName), got int 7"),
        (
            {"ResourceConfig": {"InstanceCount": True, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}},
            "Parameters.ResourceConfig.InstanceCount: type: expected an integer (TrainingInstanceCount), got bool True",
        ),
        (
            {"StoppingCondition": {"MaxRuntimeInSeconds": "3600"}},
            "Parameters.StoppingCondition.MaxRuntimeInSeconds: type: expected an integer (MaxRuntimeInSeconds), "
            "got str '3600'",
        ),
        ({"HyperParameters": [("seed", "42")]}, "Parameters.HyperParameters: type: expected an object"),
        ({"EnableNetworkIsolation": "true"}, "Parameters.EnableNetworkIsolation: type: expected a boolean"),
        ({"HyperParameters": {"seed": 42}}, 'Parameters.HyperParameters["seed"]: type: expected a string'),
    ],
)
def test_types(changes: dict[str, Any], expected: str) -> None:
    # Given a member of the wrong type (an int is no boolean, a bool no integer) / Then its path and the rule
    assert only(violations(training_job(**changes))).startswith(expected)


def test_number_blob_and_timestamp_types() -> None:
    # Given shapes of each remaining scalar type
    double, blob, stamp = (
        shape("cloudwatch", "DatapointValue"),
        shape("lambda", "Blob"),
        shape("cloudwatch", "Timestamp"),
    )
    # When valid values are checked / Then none is reported
    for value_shape, good in [(double, 1), (double, 2.5), (blob, b"x"), (blob, "{}"), (blob, io.BytesIO(b"x"))]:
        assert shapes.shape_violations(value_shape, good, path="V") == []
    for good in [dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "2026-01-01T00:00:00Z", 1767225600]:
        assert shapes.shape_violations(stamp, good, path="V") == []
    # And invalid ones are, by rule
    assert str(shapes.shape_violations(double, False, path="V")[0]).startswith("V: type: expected a number")
    assert str(shapes.shape_violations(blob, 3, path="V")[0]).startswith("V: type: expected bytes")
    assert str(shapes.shape_violations(stamp, "yesterday", path="V")[0]).startswith("V: type: expected a datetime")


def test_enum_suggests_the_closest_values() -> None:
    request = training_job(ResourceConfig={"InstanceCount": 1, "InstanceType": "ml.m5.huge", "VolumeSizeInGB": 10})
    found = only(violations(request))
    assert found.startswith("Parameters.ResourceConfig.InstanceType: enum: 'ml.m5.huge' is not one of ")
    assert "did you mean ml.m5.large" in found
    short = training_job(AlgorithmSpecification={"TrainingImage": "img:1", "TrainingInputMode": "Files"})
    assert only(violations(short)) == (
        "Parameters.AlgorithmSpecification.TrainingInputMode: enum: 'Files' is not one of TrainingInputMode: "
        "Pipe, File, FastFile"
    )


def test_pattern_must_match_the_whole_value() -> None:
    # Given a job name whose prefix matches the pattern but whose underscore does not: SageMaker refuses it
    # (https://github.com/aws/sagemaker-python-sdk/issues/384)
    found = only(violations(training_job(TrainingJobName="churn_train-1")))
    # Then the pattern rule is reported with the pattern
    assert found == (
        "Parameters.TrainingJobName: pattern: 'churn_train-1' does not match TrainingJobName's pattern "
        "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    )
    assert violations(training_job(TrainingJobName="churn-train-1")) == set()


def test_a_newline_fails_dot_star_as_in_java() -> None:
    # java.util.regex: "." matches no line terminator, and the service matches the whole value
    assert "pattern" in only(violations(training_job(HyperParameters={"seed": "4\n2"})))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"TrainingJobName": "a" * 64},
            "Parameters.TrainingJobName: length: 64 characters is above TrainingJobName's maximum 63",
        ),
        (
            {"TrainingJobName": ""},
            "Parameters.TrainingJobName: length: 0 characters is below TrainingJobName's minimum 1",
        ),
        (
            {"HyperParameters": {f"k{i}": "v" for i in range(101)}},
            "Parameters.HyperParameters: length: 101 entries is above HyperParameters's maximum 100",
        ),
        (
            {"InputDataConfig": []},
            "Parameters.InputDataConfig: length: 0 items is below InputDataConfig's minimum 1",
        ),
    ],
)
def test_lengths_of_strings_maps_and_lists(changes: dict[str, Any], expected: str) -> None:
    assert expected in violations(training_job(**changes))


def test_range_of_numbers() -> None:
    # Given a warm pool kept alive longer than SageMaker's maximum (6 hours)
    config = {
        "InstanceCount": 1,
        "InstanceType": "ml.m5.large",
        "VolumeSizeInGB": 10,
        "KeepAlivePeriodInSeconds": 21601,
    }
    # Then the range rule names the maximum; the maximum itself is valid
    assert only(violations(training_job(ResourceConfig=config))) == (
        "Parameters.ResourceConfig.KeepAlivePeriodInSeconds: range: 21601 is above KeepAlivePeriodInSeconds's "
        "maximum 21600"
    )
    assert violations(training_job(ResourceConfig={**config, "KeepAlivePeriodInSeconds": 21600})) == set()


def test_map_keys_are_checked_against_the_key_shape() -> None:
    # Given an environment variable name the key pattern refuses
    found = only(violations(training_job(Environment={"MODEL-VERSION": "1"})))
    assert found.startswith('Parameters.Environment["MODEL-VERSION"] (key): pattern: ')


def test_tagged_union_takes_exactly_one_member() -> None:
    union = shape("sagemaker", "AutoMLProblemTypeConfig")
    tabular = {"TargetAttributeName": "label"}
    assert shapes.shape_violations(union, {"TabularJobConfig": tabular}, path="P") == []
    both = {
        "TabularJobConfig": tabular,
        "TextClassificationJobConfig": {"ContentColumn": "c", "TargetLabelColumn": "l"},
    }
    assert [str(v) for v in shapes.shape_violations(union, both, path="P")] == [
        "P: union: AutoMLProblemTypeConfig takes exactly one of ImageClassificationJobConfig, "
        "TextClassificationJobConfig, TimeSeriesForecastingJobConfig, TabularJobConfig, TextGenerationJobConfig; got 2"
    ]


def test_a_required_idempotency_token_may_be_left_to_the_sdk() -> None:
    # StartPipelineExecution requires ClientRequestToken, which botocore generates when it is absent
    assert violations({"PipelineName": "p"}, operation="StartPipelineExecution") == set()


def test_check_request_raises_with_every_violation() -> None:
    with pytest.raises(shapes.ShapeError) as raised:
        shapes.check_request("sns", "Publish", {"TopicArn": TOPIC, "Mesage": "hi", "Subject": 3})
    assert str(raised.value).splitlines() == [
        "sns.Publish: 3 shape violation(s):",
        "Mesage: unknown-member: 'Mesage' is not a member of PublishInput (did you mean Message, MessageGroupId?)",
        "Subject: type: expected a string (subject), got int 3",
        "Message: required: PublishInput requires Message",
    ]


# --- Java patterns --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("java", "good", "bad"),
    [
        (r"arn:[\p{Alnum}\-]+:lambda:.*", "arn:aws-cn:lambda:x", "arn:aws_é:lambda:x"),  # POSIX = ASCII
        (r"\p{Print}+", "printable ~", "tab\there"),
        (r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]*", "emoji 🚀 ok", "bell \x07"),  # surrogates
        (r"\A\S[\p{Print}]*\z", "text/csv", " text/csv"),
        (r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*", "Über 1", "semi;colon"),  # Unicode categories
    ],
)
def test_java_patterns_translate(java: str, good: str, bad: str) -> None:
    compiled = shapes.compiled_pattern(java)
    assert compiled.fullmatch(good) and not compiled.fullmatch(bad)


def test_every_pattern_of_the_services_this_project_calls_compiles() -> None:
    # Given every pattern of the models the stacks and the Lambdas call
    loader = botocore.session.get_session().get_component("data_loader")
    services = ["sagemaker", "sagemaker-runtime", "s3", "cloudwatch", "application-autoscaling", "stepfunctions"]
    services += ["dynamodb", "sns", "sqs", "lambda", "glue"]
    patterns = {
        s["pattern"]
        for service in services
        for s in loader.load_service_model(service, "service-2")["shapes"].values()
        if "pattern" in s
    }
    # When each is translated / Then it compiles (a value is never let through for want of a pattern)
    assert len(patterns) > 300
    for pattern in patterns:
        shapes.compiled_pattern(pattern)


# --- Step Functions ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "$",
        "$.a.b",
        "$$.Execution.Name",
        "$.items[0].name",
        "$.items[*]",
        "$..name",
        "$['key with space']",
        "$.items[1:3]",
        "$.items[?(@.price < 10)]",
        "States.Format('run {} of {}', $.name, $$.Execution.Id)",
        "States.ArrayGetItem(States.Array(1, 2), 0)",
        "States.UUID()",
    ],
)
def test_valid_json_paths(path: str) -> None:
    assert shapes.json_path_problem(path) is None


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("a.b", "a path starts with $"),
        ("$.a.", "a name after ."),
        ("$.a..", "a name after .."),
        ("$.a b", "the end"),
        ("$.items[", "an index, slice, * or quoted name"),
        ("$.items[0", "]"),
        ("$['open]", "a closing quote"),
        ("States.Formats('x')", "an intrinsic function ('States.Formats' is none)"),
        ("States.Format('x', $.a", ", or )"),
    ],
)
def test_invalid_json_paths(path: str, why: str) -> None:
    problem = shapes.json_path_problem(path)
    assert problem is not None and f"expected {why}" in problem


def task(resource: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"Type": "Task", "Resource": resource, "Parameters": parameters}


def task_violations(resource: str, parameters: dict[str, Any]) -> set[str]:
    return {str(v) for v in shapes.task_violations(task(resource, parameters), path="Train")}


SYNC_TRAINING = "arn:aws:states:::sagemaker:createTrainingJob.sync"


def test_a_run_time_key_is_checked_by_name_and_path_syntax() -> None:
    # Given run-time values: a valid one, a misspelt member, a broken path, one in a map
    params = training_job(TrainingJobName=None, Environment={"MODEL_VERSION.$": "$.prepared.model_version"})
    params["TrainingJobName.$"] = "$.prepared.training_job_name"
    assert task_violations(SYNC_TRAINING, params) == set()
    params["RoleArn.$"] = "$.role."
    params["TraningJobName.$"] = "$.x"
    params["Environment"]["BAD-KEY.$"] = "$.x"
    # Then each is named: the misspelt member, the path (with its .$), the map key against the key shape
    found = task_violations(SYNC_TRAINING, params)
    assert "Train.Parameters.RoleArn.$: duplicate-member: 'RoleArn' and 'RoleArn.$' both set RoleArn" in found
    assert any(v.startswith("Train.Parameters.TraningJobName.$: unknown-member: 'TraningJobName'") for v in found)
    assert any(v.startswith('Train.Parameters.Environment["BAD-KEY"] (key): pattern:') for v in found)
    params.pop("RoleArn")
    assert any(v.startswith("Train.Parameters.RoleArn.$: jsonpath: ") for v in task_violations(SYNC_TRAINING, params))


def test_step_functions_writes_members_in_pascal_case() -> None:
    # StartExecution's members are stateMachineArn/name/input; Step Functions writes StateMachineArn/Name/Input
    resource = "arn:aws:states:::states:startExecution.sync:2"
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:child"
    assert task_violations(resource, {"StateMachineArn": arn, "Input": {"run.$": "$$.Execution.Id"}}) == set()
    assert task_violations(resource, {"stateMachineArn": arn}) == {
        "Train.Parameters.stateMachineArn: unknown-member: 'stateMachineArn' is not a member of StartExecutionInput "
        "(did you mean StateMachineArn?)",
        "Train.Parameters.StateMachineArn: required: StartExecutionInput requires StateMachineArn",
    }


def test_lambda_invoke_accepts_its_documented_parameters_and_any_json_payload() -> None:
    resource = "arn:aws:states:::lambda:invoke"
    payload = {"execution.$": "$$.Execution.Name", "nested": [{"x": 1}]}
    assert task_violations(resource, {"FunctionName": "fn", "Payload": payload}) == set()
    # LogType is an Invoke member, but not one the integration accepts
    assert task_violations(resource, {"FunctionName": "fn", "LogType": "Tail"}) == {
        "Train.Parameters.LogType: unsupported-by-integration: the integration accepts only ClientContext, "
        "FunctionName, InvocationType, Payload, Qualifier"
    }


def test_a_lambda_function_arn_takes_free_parameters_with_valid_paths() -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:mlops-dev-Deploy-1A2B3C"
    assert task_violations(arn, {"action": "prepare", "state.$": "$"}) == set()
    assert task_violations(arn, {"state.$": "state"}) == {
        "Train.Parameters.state.$: jsonpath: not a valid JsonPath or intrinsic function: expected a path starts "
        "with $ at offset 0 of 'state'"
    }


def test_result_selector_paths_are_checked() -> None:
    state = {**task(SYNC_TRAINING, training_job()), "ResultSelector": {"name.$": "$.TrainingJobName."}}
    assert [v.rule for v in shapes.task_violations(state, path="Train")] == ["jsonpath"]


@pytest.mark.parametrize(
    ("resource", "api"),
    [
        ("arn:aws:states:::glue:startJobRun.sync", ("glue", "StartJobRun")),
        ("arn:aws-cn:states:::sns:publish.waitForTaskToken", ("sns", "Publish")),
        ("arn:aws:states:::aws-sdk:sfn:listExecutions", ("stepfunctions", "ListExecutions")),
        (
            "arn:aws:states:::aws-sdk:applicationautoscaling:putScalingPolicy",
            ("application-autoscaling", "PutScalingPolicy"),
        ),
    ],
)
def test_resources_map_to_their_api(resource: str, api: tuple[str, str]) -> None:
    found = shapes.integration(resource)
    assert found is not None and (found.service, found.operation) == api


@pytest.mark.parametrize(
    ("resource", "why"),
    [
        ("arn:aws:states:::sagemaker:createModel.sync", "does not support the '.sync' integration pattern"),
        ("arn:aws:states:::aws-sdk:s3:listBuckets.sync", "does not support the '.sync' integration pattern"),
        ("arn:aws:states:::ecs:runTask.sync", "'ecs:runTask' is not an optimized integration this validator knows"),
        ("arn:aws:states:::aws-sdk:nosuch:thing", "no AWS SDK service 'nosuch'"),
        ("arn:aws:states:::aws-sdk:s3:listBucket", "s3 has no operation ListBucket"),
        ("arn:aws:sqs:us-east-1:123456789012:queue", "is neither a service integration nor a Lambda or activity ARN"),
    ],
)
def test_an_unknown_resource_is_a_violation(resource: str, why: str) -> None:
    found = shapes.task_violations(task(resource, {}), path="S")
    assert [v.rule for v in found] == ["unknown-integration"] and why in found[0].detail


def test_jsonata_states_are_reported_not_skipped() -> None:
    state = {"Type": "Task", "Resource": SYNC_TRAINING, "Arguments": {"TrainingJobName": "{% $x %}"}}
    assert [str(v) for v in shapes.task_violations(state, path="S")] == [
        "S.Arguments: unsupported: JSONata states are not validated"
    ]


def test_task_states_are_found_in_parallel_branches_and_map_iterators() -> None:
    inner = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "r"}}}
    definition = {
        "States": {
            "P": {"Type": "Parallel", "Branches": [inner]},
            "M": {"Type": "Map", "ItemProcessor": inner},
            "W": {"Type": "Wait", "Seconds": 1},
        }
    }
    assert [path for path, _ in shapes.task_states(definition)] == ["P.Branches[0].T", "M.ItemProcessor.T"]


def test_a_quirk_entry_silences_only_its_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a documented quirk for TrainingJobName's pattern
    monkeypatch.setitem(shapes.QUIRKS, ("sagemaker", "TrainingJobName", "pattern"), "reason")
    # Then its pattern is no longer reported, its length still is
    assert violations(training_job(TrainingJobName="a_b")) == set()
    assert {v.split(": ")[1] for v in violations(training_job(TrainingJobName="a_" * 40))} == {"length"}
