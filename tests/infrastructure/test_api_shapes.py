"""Every Task state of every synthesized state machine (dev and prod) calls its API with a request the API
accepts: ``Parameters`` checked against botocore's service model by ``localcloud.shapes`` (unknown and required
members, types, enums, patterns, lengths, ranges; ``Foo.$`` keys by name, their JsonPath by syntax).

The definition is a ``Fn::Join`` of strings and tokens; each token becomes a placeholder of the shape the
deployed value has (an ARN for ``Fn::GetAtt [..., Arn]``, a bucket name for a bucket's ``Ref``), so the
patterns of literal values built around tokens are still checked. A token this file cannot place fails.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from localcloud import shapes
from stacks.config import load_config

ACCOUNT = "123456789012"
STAGES = ("dev", "prod")
SUFFIX = "1A2B3C4D5E6F7"  # CloudFormation appends 12-13 random characters to the names it generates


class Placeholders:
    """CloudFormation intrinsic functions of one template resolved to values of the deployed shape."""

    def __init__(self, template: dict[str, Any], *, stack: str, region: str) -> None:
        self.resources: dict[str, Any] = template["Resources"]
        self.stack, self.region = stack, region
        self.pseudo = {
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": region,
            "AWS::StackName": stack,
        }

    def __call__(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if not isinstance(value, dict) or len(value) != 1:
            raise TypeError(f"cannot resolve {value!r}")
        (function, argument), *_ = value.items()
        if function == "Fn::Join":
            separator, parts = argument
            return str(separator).join(self(p) for p in parts)
        if function == "Ref":
            return self.pseudo[argument] if argument in self.pseudo else self.ref(argument)
        if function == "Fn::GetAtt":
            return self.attribute(*argument)
        if function == "Fn::Sub" and isinstance(argument, str):
            for name, replacement in self.pseudo.items():
                argument = argument.replace(f"${{{name}}}", replacement)
            if "${" in argument:
                raise TypeError(f"cannot resolve {value!r}")
            return argument
        raise TypeError(f"cannot resolve {value!r}")

    def _name(self, logical_id: str, prop: str, *, limit: int = 64, lower: bool = False) -> str:
        given = self.resources[logical_id].get("Properties", {}).get(prop)
        if isinstance(given, str):
            return given
        name = f"{self.stack}-{logical_id}"[: limit - len(SUFFIX) - 1] + f"-{SUFFIX}"
        return name.lower() if lower else name

    def _arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if regional else ''}:{ACCOUNT}:{resource}"

    def _forms(self, logical_id: str) -> dict[str, Callable[[], str]]:
        """Ref and attributes of a resource, by its type (the CloudFormation resource reference pages)."""
        kind = self.resources[logical_id]["Type"]
        key_id = str(uuid.uuid5(uuid.NAMESPACE_URL, logical_id))
        function = lambda: self._name(logical_id, "FunctionName")  # noqa: E731
        role = lambda: self._name(logical_id, "RoleName")  # noqa: E731
        bucket = lambda: self._name(logical_id, "BucketName", limit=63, lower=True)  # noqa: E731
        topic = lambda: self._arn("sns", self._name(logical_id, "TopicName", limit=256))  # noqa: E731
        table = lambda: self._name(logical_id, "TableName", limit=255)  # noqa: E731
        machine = lambda: self._arn("states", "stateMachine:" + self._name(logical_id, "StateMachineName", limit=80))  # noqa: E731
        return {
            "AWS::Lambda::Function": {"Ref": function, "Arn": lambda: self._arn("lambda", f"function:{function()}")},
            "AWS::IAM::Role": {"Ref": role, "Arn": lambda: self._arn("iam", f"role/{role()}", regional=False)},
            "AWS::KMS::Key": {"Ref": lambda: key_id, "Arn": lambda: self._arn("kms", f"key/{key_id}")},
            "AWS::S3::Bucket": {"Ref": bucket, "Arn": lambda: f"arn:aws:s3:::{bucket()}"},
            "AWS::SNS::Topic": {"Ref": topic, "TopicArn": topic},
            "AWS::DynamoDB::Table": {"Ref": table, "Arn": lambda: self._arn("dynamodb", f"table/{table()}")},
            "AWS::StepFunctions::StateMachine": {"Ref": machine, "Arn": machine},
        }.get(kind, {})

    def ref(self, logical_id: str) -> str:
        return self.attribute(logical_id, "Ref")

    def attribute(self, logical_id: str, attribute: str) -> str:
        form = self._forms(logical_id).get(attribute)
        if form is None:
            kind = self.resources[logical_id]["Type"]
            raise TypeError(f"no placeholder for {attribute} of {logical_id} ({kind}): add its shape to _forms")
        return form()


@pytest.fixture(scope="session")
def stage_templates(template: Any, prod_template: Any) -> dict[str, dict[str, Any]]:
    return {"dev": template.to_json(), "prod": prod_template.to_json()}


def definitions(stage: str, template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state machine's definition, tokens resolved to placeholders, by logical id."""
    config = load_config(stage)
    resolve = Placeholders(template, stack=config.stack_name, region=config.region)
    found = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::StepFunctions::StateMachine":
            props = resource["Properties"]
            text = resolve(props["DefinitionString"])
            for name, value in props.get("DefinitionSubstitutions", {}).items():
                text = text.replace(f"${{{name}}}", resolve(value))
            found[logical_id] = json.loads(text)
    return found


def tasks(stage: str, template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{machine}.{where}": state
        for machine, definition in definitions(stage, template).items()
        for where, state in shapes.task_states(definition)
    }


@pytest.mark.parametrize("stage", STAGES)
def test_every_task_state_calls_its_api_with_a_valid_request(
    stage: str, stage_templates: dict[str, dict[str, Any]]
) -> None:
    # Given every Task state of every state machine of the stage
    states = tasks(stage, stage_templates[stage])
    assert states, "no Task state found: the walk over the definitions is broken"
    # When each is checked against the API its Resource calls
    found = [v for where, state in states.items() for v in shapes.task_violations(state, path=where)]
    # Then none breaks a rule of the API's model
    assert not found, f"{stage}: {len(found)} violation(s):\n" + "\n".join(map(str, found))


@pytest.mark.parametrize("stage", STAGES)
def test_the_check_covers_the_integrations_the_pipeline_uses(
    stage: str, stage_templates: dict[str, dict[str, Any]]
) -> None:
    # Given the Task states of the stage
    states = tasks(stage, stage_templates[stage]).values()
    # When each Resource is mapped to its API
    apis = {
        (api.service, api.operation) if (api := shapes.integration(s["Resource"])) else ("lambda", "function ARN")
        for s in states
    }
    # Then the check saw every API the pipeline and the deployment call (a vacuous walk cannot pass)
    assert apis == {
        ("glue", "StartJobRun"),
        ("sagemaker", "CreateTrainingJob"),
        ("sagemaker", "CreateProcessingJob"),
        ("sns", "Publish"),
        ("lambda", "function ARN"),
    }


def test_a_bad_parameter_in_a_synthesized_definition_is_reported(stage_templates: dict[str, dict[str, Any]]) -> None:
    # Given the dev training job's Task state with an instance type SageMaker does not know, a misspelt member,
    # and a run-time value whose JsonPath is broken
    states = tasks("dev", stage_templates["dev"])
    where, train = next((w, s) for w, s in states.items() if s["Resource"].endswith("createTrainingJob.sync"))
    params = json.loads(json.dumps(train["Parameters"]))
    params["ResourceConfig"]["InstanceType"] = "ml.m5.huge"
    params["StoppingCondition"]["MaxRuntimeInSecs"] = 60
    params["TrainingJobName.$"] = "$.prepared..training_job_name."
    # When it is checked
    found = {str(v) for v in shapes.task_violations({**train, "Parameters": params}, path=where)}
    # Then each is named with its path and rule
    assert any(v.startswith(f"{where}.Parameters.ResourceConfig.InstanceType: enum: 'ml.m5.huge'") for v in found)
    assert f"{where}.Parameters.StoppingCondition.MaxRuntimeInSecs: unknown-member: " in "\n".join(found)
    assert any(v.startswith(f"{where}.Parameters.TrainingJobName.$: jsonpath: ") for v in found), found


def test_an_unplaceable_token_fails_loudly() -> None:
    # Given a template whose definition refers to an attribute this file has no placeholder for
    template = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {}}}}
    resolve = Placeholders(template, stack="s", region="us-east-1")
    # When it is resolved / Then it fails, naming the resource and its type
    with pytest.raises(TypeError, match=r"no placeholder for QueueUrl of Queue \(AWS::SQS::Queue\)"):
        resolve({"Fn::GetAtt": ["Queue", "QueueUrl"]})
