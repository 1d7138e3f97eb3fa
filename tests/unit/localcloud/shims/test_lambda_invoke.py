"""Contract and behaviour of the Lambda invoke shim (the real handler runs, from the function's package)."""

from __future__ import annotations

import base64
import inspect
import json
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.awslambda import models as lambda_models
from moto.awslambda.utils import get_backend

from localcloud.runtime.lambdas import LambdaRuntime
from localcloud.shims import lambda_invoke as shim
from tests.unit.localcloud import support
from tests.unit.localcloud.support import ACCOUNT, REGION, ROLE, assert_pinned_moto, revisit, unique, zip_package

SHIM = "lambda_invoke"
APP = {
    "app.py": """
        import os

        def handler(event, context):
            print(f"handling {event}")
            if event.get("fail"):
                raise RuntimeError("the handler failed")
            return {"echo": event, "stage": os.environ.get("STAGE"), "function": context.function_name}
    """
}


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[LambdaRuntime]:
    shim.install()
    paths = sysconfig.get_paths()
    lambdas = LambdaRuntime(tmp_path, "https://127.0.0.1:1", REGION, [paths["purelib"], paths["platlib"]])
    shim.set_runtime(lambdas)
    yield lambdas
    shim.set_runtime(None)
    lambdas.stop()


@pytest.fixture
def aws() -> Iterator[Any]:
    shim.install()
    with mock_aws():
        boto3.client("iam", region_name=REGION).create_role(
            RoleName=ROLE.rsplit("/", 1)[1], AssumeRolePolicyDocument=json.dumps({"Statement": []})
        )
        yield boto3.client("lambda", region_name=REGION)


def create_function(client: Any, runtime: str = "python3.12", **extra: Any) -> str:
    name = unique("fn")
    client.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_package(APP)},
        Environment={"Variables": {"STAGE": "dev"}},
        Timeout=20,
        MemorySize=256,
        **extra,
    )
    return name


# ---- contract with the pinned moto ---------------------------------------------------------------------


def test_patch_points_still_exist_with_the_signatures_the_shim_implements() -> None:
    assert_pinned_moto(SHIM)
    assert list(inspect.signature(shim._original_invoke).parameters) == ["self", "event"], revisit(SHIM)
    assert list(inspect.signature(shim._original_create).parameters) == [
        "resource_name",
        "cloudformation_json",
        "account_id",
        "region_name",
        "kwargs",
    ], revisit(SHIM)  # a classmethod, bound: cls is implicit
    # the attributes spec_of reads
    for attribute in ("function_name", "function_arn", "handler", "code_bytes", "environment_vars", "timeout"):
        assert attribute in inspect.getsource(lambda_models.LambdaFunction.__init__), revisit(SHIM)


def test_pinned_moto_never_runs_the_handler_without_docker(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given moto's own invocation
    monkeypatch.setattr(lambda_models.LambdaFunction, "_invoke_lambda", shim._original_invoke)
    name = create_function(aws)
    # When the function is invoked
    response = aws.invoke(FunctionName=name, Payload=b'{"a": 1}')
    # Then moto tries Docker and answers with that error instead of the handler's result
    assert response["FunctionError"] == "Handled", revisit(SHIM)
    assert "docker" in response["Payload"].read().decode().lower(), revisit(SHIM)


def test_pinned_moto_drops_the_logging_config_of_a_cloudformation_function(aws: Any) -> None:
    # Given a function resource with a custom log group, created by moto's own CloudFormation model
    name = unique("cfn-fn")
    properties = {
        "FunctionName": name,
        "Code": {"ZipFile": "def handler(event, context):\n    return 1\n"},
        "Handler": "index.handler",
        "Role": ROLE,
        "Runtime": "python3.12",
        "LoggingConfig": {"LogGroup": "/mlops/dev/functions", "LogFormat": "JSON"},
    }
    function = shim._original_create(name, {"Properties": properties}, ACCOUNT, REGION)
    # Then the function logs to the default group: the LoggingConfig is gone
    assert function.logs_group_name == f"/aws/lambda/{name}", revisit(SHIM)
    assert "logging" not in " ".join(vars(function)).lower(), revisit(SHIM)


# ---- behaviour -----------------------------------------------------------------------------------------


def test_invoke_runs_the_real_handler(aws: Any, runtime: LambdaRuntime) -> None:
    # Given a Python function
    name = create_function(aws)
    # When it is invoked through the Lambda API
    response = aws.invoke(FunctionName=name, Payload=json.dumps({"order": 7}).encode(), LogType="Tail")
    # Then the handler's own answer comes back, with its output as the log result
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {"echo": {"order": 7}, "stage": "dev", "function": name}
    assert "handling {'order': 7}" in base64.b64decode(response["LogResult"]).decode()
    assert [i.function for i in runtime.invocations] == [name]


def test_a_handler_error_is_a_function_error_with_lambdas_payload(aws: Any, runtime: LambdaRuntime) -> None:
    name = create_function(aws)
    response = aws.invoke(FunctionName=name, Payload=b'{"fail": true}')
    assert response["FunctionError"] == "Handled"  # moto's header value (AWS says "Unhandled")
    error = json.loads(response["Payload"].read())
    assert (error["errorType"], error["errorMessage"]) == ("RuntimeError", "the handler failed")


def test_a_non_python_runtime_is_refused_with_an_error_payload(aws: Any, runtime: LambdaRuntime) -> None:
    name = create_function(aws, runtime="nodejs20.x")
    response = aws.invoke(FunctionName=name, Payload=b"{}")
    assert response["FunctionError"] == "Handled"
    assert json.loads(response["Payload"].read()) == {
        "errorMessage": "runtime nodejs20.x is not run by the local cloud",
        "errorType": "Runtime",
    }
    assert runtime.invocations == []


def test_without_a_runtime_invocation_fails_loudly(aws: Any) -> None:
    shim.set_runtime(None)
    name = create_function(aws)
    function = get_backend(ACCOUNT, REGION).get_function(name)
    with pytest.raises(RuntimeError, match=r"no local Lambda runtime is running \(start a LocalCloud\)"):
        function._invoke_lambda({})


def test_spec_of_reads_the_function_as_deployed(aws: Any) -> None:
    name = create_function(aws)
    aws.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    spec = shim.spec_of(get_backend(ACCOUNT, REGION).get_function(name))
    assert (spec.name, spec.arn, spec.handler) == (
        name,
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        "app.handler",
    )
    assert (spec.timeout, spec.memory, spec.reserved_concurrency) == (20, 256, 1)
    assert spec.environment == {"STAGE": "dev"}
    assert spec.code == zip_package(APP)
    assert spec.log_group == f"/aws/lambda/{name}"


def test_cloudformation_functions_keep_their_log_group(aws: Any) -> None:
    # Given a stack with a function that logs to its own group (as every function of the stack does)
    name = unique("cfn-fn")
    template = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "FunctionName": name,
                    "Code": {"ZipFile": "def handler(event, context):\n    return 1\n"},
                    "Handler": "index.handler",
                    "Role": ROLE,
                    "Runtime": "python3.12",
                    "LoggingConfig": {"LogGroup": "/mlops/dev/functions"},
                },
            }
        }
    }
    # When it is deployed through CloudFormation
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=unique("stack"), TemplateBody=json.dumps(template)
    )
    # Then the local runtime writes its logs to that group
    assert shim.spec_of(get_backend(ACCOUNT, REGION).get_function(name)).log_group == "/mlops/dev/functions"


class _Runtime:
    """A stand-in Lambda runtime: answers every invocation and counts them."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def invoke(self, spec: Any, event: Any) -> Any:
        from types import SimpleNamespace

        self.calls.append(spec.name)
        return SimpleNamespace(payload=json.dumps({"event": event}), ok=True, logs="")


def test_installed_again_one_invoke_runs_the_handler_once(aws: Any) -> None:
    # Given a function, a runtime and the shim installed again
    name = create_function(aws)
    runtime = _Runtime()
    support.install_again(shim)
    shim.set_runtime(runtime)
    try:
        # When it is invoked once
        response = aws.invoke(FunctionName=name, Payload=json.dumps({"n": 1}).encode())
    finally:
        shim.set_runtime(None)
    # Then the local runtime ran it once and its answer came back (moto would have tried Docker)
    assert runtime.calls == [name]
    assert json.loads(response["Payload"].read()) == {"event": {"n": 1}}
