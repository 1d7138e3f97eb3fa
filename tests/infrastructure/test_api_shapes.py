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
from typing import Any

import pytest

from localcloud import shapes
from stacks.config import load_config

ACCOUNT = "123456789012"
STAGES = ("dev", "prod")
SUFFIX = "1A2B3C4D5E6F7"  # CloudFormation appends 12-13 random characters to the names it generates
# The name property of a resource type and its length limit: the placeholder uses a literal name when given
NAMES = {
    "AWS::Lambda::Function": ("FunctionName", 64),
    "AWS::IAM::Role": ("RoleName", 64),
    "AWS::S3::Bucket": ("BucketName", 63),
    "AWS::SNS::Topic": ("TopicName", 256),
    "AWS::DynamoDB::Table": ("TableName", 255),
    "AWS::StepFunctions::StateMachine": ("StateMachineName", 80),
}
# What Ref / Fn::GetAtt return for each resource type (the CloudFormation resource reference pages)
FORMS = {
    ("AWS::Lambda::Function", "Ref"): "{name}",
    ("AWS::Lambda::Function", "Arn"): "arn:aws:lambda:{region}:{account}:function:{name}",
    ("AWS::IAM::Role", "Ref"): "{name}",
    ("AWS::IAM::Role", "Arn"): "arn:aws:iam::{account}:role/{name}",
    ("AWS::KMS::Key", "Ref"): "{key_id}",
    ("AWS::KMS::Key", "Arn"): "arn:aws:kms:{region}:{account}:key/{key_id}",
    ("AWS::S3::Bucket", "Ref"): "{name}",
    ("AWS::S3::Bucket", "Arn"): "arn:aws:s3:::{name}",
    ("AWS::SNS::Topic", "Ref"): "arn:aws:sns:{region}:{account}:{name}",
    ("AWS::SNS::Topic", "TopicArn"): "arn:aws:sns:{region}:{account}:{name}",
    ("AWS::DynamoDB::Table", "Ref"): "{name}",
    ("AWS::DynamoDB::Table", "Arn"): "arn:aws:dynamodb:{region}:{account}:table/{name}",
    ("AWS::StepFunctions::StateMachine", "Ref"): "arn:aws:states:{region}:{account}:stateMachine:{name}",
    ("AWS::StepFunctions::StateMachine", "Arn"): "arn:aws:states:{region}:{account}:stateMachine:{name}",
    ("AWS::EC2::Subnet", "Ref"): "subnet-0123456789abcdef0",
    ("AWS::EC2::SecurityGroup", "GroupId"): "sg-0123456789abcdef0",
}


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
            return self.pseudo[argument] if argument in self.pseudo else self.attribute(argument, "Ref")
        if function == "Fn::GetAtt":
            return self.attribute(*argument)
        if function == "Fn::Sub" and isinstance(argument, str):
            for name, replacement in self.pseudo.items():
                argument = argument.replace(f"${{{name}}}", replacement)
            if "${" in argument:
                raise TypeError(f"cannot resolve {value!r}")
            return argument
        raise TypeError(f"cannot resolve {value!r}")

    def attribute(self, logical_id: str, attribute: str) -> str:
        kind = self.resources[logical_id]["Type"]
        form = FORMS.get((kind, attribute))
        if form is None:
            raise TypeError(f"no placeholder for {attribute} of {logical_id} ({kind}): add its form to FORMS")
        prop, limit = NAMES.get(kind, ("", 64))
        given = self.resources[logical_id].get("Properties", {}).get(prop)
        name = (
            given if isinstance(given, str) else f"{self.stack}-{logical_id}"[: limit - len(SUFFIX) - 1] + f"-{SUFFIX}"
        )
        return form.format(
            name=name.lower() if kind == "AWS::S3::Bucket" else name,
            region=self.region,
            account=ACCOUNT,
            key_id=uuid.uuid5(uuid.NAMESPACE_URL, logical_id),
        )


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
        ("sagemaker", "CreateHyperParameterTuningJob"),  # a dataset with model.tuning
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
    with pytest.raises(TypeError, match=r"no placeholder for QueueUrl of Queue \(AWS::SQS::Queue\): add its form"):
        resolve({"Fn::GetAtt": ["Queue", "QueueUrl"]})
