"""Contract and behaviour of the public SSM parameters shim (the layer ARNs the template resolves at deploy time)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.ssm.models import Parameter, ssm_backends

from localcloud.shims import ssm_public as shim
from tests.unit.localcloud.support import ACCOUNT, REGION, assert_pinned_moto, revisit, unique

SHIM = "ssm_public"
POWERTOOLS = "/aws/service/powertools/python/x86_64/python3.13/3.37.0"
PANDAS = "/aws/service/aws-sdk-pandas/3.17.1/py3.13/x86_64/layer-arn"
BOOTSTRAP = "/cdk-bootstrap/hnb659fds/version"


@pytest.fixture
def ssm() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ssm", region_name=REGION)


# ---- contract with the pinned moto ---------------------------------------------------------------------


def test_the_backend_internals_the_shim_writes_are_still_there(ssm: Any) -> None:
    assert_pinned_moto(SHIM)
    parameters = set(inspect.signature(Parameter.__init__).parameters)
    assert {
        "account_id",
        "name",
        "value",
        "parameter_type",
        "description",
        "allowed_pattern",
        "keyid",
        "last_modified_date",
        "version",
        "data_type",
    } <= parameters, revisit(SHIM)
    store = ssm_backends[ACCOUNT][REGION]._parameters
    assert callable(store.get) and store.get("/nothing/here") in (None, []), revisit(SHIM)


def test_pinned_moto_refuses_writes_under_aws_and_does_not_know_the_layer_parameters(ssm: Any) -> None:
    # When the public layer parameter is written, then read
    with pytest.raises(ClientError) as refused:
        ssm.put_parameter(Name=POWERTOOLS, Value="x", Type="String")
    with pytest.raises(ClientError) as missing:
        ssm.get_parameter(Name=POWERTOOLS)
    # Then moto refuses the reserved name, and does not know the parameter
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException", revisit(SHIM)
    assert "reserved parameter name" in refused.value.response["Error"]["Message"], revisit(SHIM)
    assert missing.value.response["Error"]["Code"] == "ParameterNotFound", revisit(SHIM)


# ---- behaviour -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (POWERTOOLS, "arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-x86_64:18"),
        (
            "/aws/service/powertools/python/arm64/python3.12/latest",
            "arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-arm64:18",
        ),
        (PANDAS, "arn:aws:lambda:eu-west-1:336392948345:layer:AWSSDKPandas-Python313:5"),
        (
            "/aws/service/aws-sdk-pandas/3.17.1/py3.12/arm64/layer-arn",
            "arn:aws:lambda:eu-west-1:336392948345:layer:AWSSDKPandas-Python312-Arm64:5",
        ),
        (BOOTSTRAP, shim.BOOTSTRAP_VERSION),
        ("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64", None),
        ("/mlops/dev/anything", None),
    ],
)
def test_public_values_have_the_real_layers_arn_form(name: str, value: str | None) -> None:
    assert shim.public_value(name, "eu-west-1") == value


def test_seed_puts_the_known_public_parameters_into_moto(ssm: Any) -> None:
    # When the template's public parameters are seeded (one unknown)
    unknown = f"/aws/service/{unique('unknown')}"
    seeded = shim.seed(ACCOUNT, REGION, [POWERTOOLS, PANDAS, BOOTSTRAP, unknown])
    # Then the known ones are readable through the API, as public parameters are
    assert set(seeded) == {POWERTOOLS, PANDAS, BOOTSTRAP}
    for name, value in seeded.items():
        parameter = ssm.get_parameter(Name=name)["Parameter"]
        assert (parameter["Value"], parameter["Type"], parameter["Version"]) == (value, "String", 1)
    with pytest.raises(ClientError, match="ParameterNotFound"):
        ssm.get_parameter(Name=unknown)
    # And seeding again changes nothing
    assert shim.seed(ACCOUNT, REGION, [POWERTOOLS]) == {}
    assert ssm.get_parameter(Name=POWERTOOLS)["Parameter"]["Version"] == 1


def test_a_template_resolves_a_seeded_ssm_parameter_type(ssm: Any) -> None:
    # Given a template parameter of an SSM type whose default is the public layer parameter (as CDK synthesizes)
    shim.seed(ACCOUNT, REGION, [POWERTOOLS])
    template = {
        "Parameters": {
            "PowertoolsLayer": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": POWERTOOLS},
        },
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"Layer": {"Value": {"Ref": "PowertoolsLayer"}}},
    }
    # When the stack is created
    stack = unique("ssm-stack")
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps(template))
    # Then CloudFormation resolved it to the layer ARN
    [output] = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
    assert output["OutputValue"] == shim.public_value(POWERTOOLS, REGION)
