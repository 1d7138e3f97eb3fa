"""Contract and behaviour of the InvokeEndpoint shim (requests reach the served model, errors keep the API's shapes)."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.sagemakerruntime import responses as runtime_responses
from moto.sagemakerruntime.models import sagemakerruntime_backends

from localcloud.shims import sagemaker_endpoints
from localcloud.shims import sagemaker_runtime as shim
from tests.tiers import heavy_fixture
from tests.unit.localcloud import support
from tests.unit.localcloud.support import (
    ACCOUNT,
    REGION,
    ROLE,
    assert_pinned_moto,
    revisit,
    running_cloud,
    tar_gz,
    unique,
    wait_for_endpoint,
)

SHIM = "sagemaker_runtime"
BUCKET = "runtime-test-models"

INFERENCE = """
    import json, os, time

    def model_fn(model_dir):
        with open(os.path.join(model_dir, "model.json")) as handle:
            return json.load(handle)

    def refuse(status, message):
        def answer(environ, start_response):
            start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
            return [message.encode()]
        return answer

    def transform_fn(model, body, content_type, accept):
        if content_type != "text/csv":
            return refuse("415 Unsupported Media Type", f"{content_type} is not supported")
        if body.startswith("sleep"):
            time.sleep(float(body.split()[1]))
        if body.startswith("crash"):
            raise RuntimeError("the model crashed")
        try:
            rows = [[float(x) for x in line.split(",")] for line in body.strip().splitlines()]
        except ValueError:
            return refuse("400 Bad Request", "features must be numbers")
        return "\\n".join(f"{model['bias'] + sum(row):g}" for row in rows), "text/csv"
"""


# ---- contract with the pinned moto ---------------------------------------------------------------------


def test_patch_point_still_exists() -> None:
    assert_pinned_moto(SHIM)
    assert list(inspect.signature(shim._original_invoke).parameters) == ["self"], revisit(SHIM)
    assert "def invoke_endpoint" in inspect.getsource(runtime_responses.SageMakerRuntimeResponse), revisit(SHIM)


def test_pinned_moto_takes_a_handlers_status_from_its_status_header_only() -> None:
    from moto.core.responses import BaseResponse

    # Given a handler answer (status, headers, body), as the shim returns its errors
    # Then moto ignores the tuple's status: the shim must also put it in the "status" header
    assert BaseResponse._transform_response({}, (424, {}, "x"))[0] == 200, revisit(SHIM)
    assert BaseResponse._transform_response({}, (424, {"status": 424}, "x"))[0] == 424, revisit(SHIM)


def test_pinned_moto_answers_any_endpoint_with_a_fake_body_and_reads_no_name(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given moto's own InvokeEndpoint
    shim.install()
    monkeypatch.setattr(runtime_responses.SageMakerRuntimeResponse, "invoke_endpoint", shim._original_invoke)
    with mock_aws():
        # When an endpoint that does not exist is invoked
        response = boto3.client("sagemaker-runtime", region_name=REGION).invoke_endpoint(
            EndpointName="does-not-exist", Body=b"1,2", ContentType="text/csv"
        )
        results = sagemakerruntime_backends[ACCOUNT][REGION].results
    # Then moto answers with its fixed fake body, and it saw no endpoint name at all
    assert response["Body"].read() == b"body", revisit(SHIM)
    assert list(results) == [None], revisit(SHIM)


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/endpoints/mlops-dev-churn/invocations", "mlops-dev-churn"),
        ("/endpoints/a%2Fb/invocations?x=1", "a/b"),
        ("endpoints/e/invocations/", "e"),
    ],
)
def test_the_endpoint_name_comes_from_the_request_path(path: str, name: str) -> None:
    assert shim.endpoint_name_from_path(path) == name


@pytest.mark.parametrize("path", ["/endpoints/e/async-invocations", "/models/e/invocations", "/"])
def test_other_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="not an InvokeEndpoint path"):
        shim.endpoint_name_from_path(path)


def test_without_a_runtime_invocation_fails_loudly() -> None:
    shim.install()
    shim.set_runtime(None)
    with pytest.raises(RuntimeError, match=r"no local endpoint runtime is running \(start a LocalCloud\)"):
        shim.invoke_endpoint(object())


# ---- behaviour in a running local cloud ----------------------------------------------------------------


@heavy_fixture
def cloud() -> Iterator[Any]:
    # these tests are about requests: endpoints are provisioned without the table's delays (their containers
    # still start and answer their ping before InService)
    with (
        sagemaker_endpoints.provisioning_times(sagemaker_endpoints.ProvisioningTimes.instant()),
        running_cloud() as local,
    ):
        s3, sm = local.clients.s3, local.clients.sagemaker
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(
            Bucket=BUCKET,
            Key="models/v1/model.tar.gz",
            Body=tar_gz({"model.json": json.dumps({"bias": 0.5}), "code/inference.py": INFERENCE}),
        )
        sm.create_model(
            ModelName="runtime-model",
            ExecutionRoleArn=ROLE,
            PrimaryContainer={
                "Image": "sklearn:1.9-0",
                "ModelDataUrl": f"s3://{BUCKET}/models/v1/model.tar.gz",
                "Environment": {
                    "SAGEMAKER_PROGRAM": "inference.py",
                    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                },
            },
        )
        sm.create_endpoint_config(
            EndpointConfigName="runtime-config",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "runtime-model",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        sm.create_endpoint(EndpointName="runtime-endpoint", EndpointConfigName="runtime-config")
        assert wait_for_endpoint(sm, "runtime-endpoint")["EndpointStatus"] == "InService"
        yield local


def invoke(cloud: Any, body: bytes, **extra: Any) -> dict[str, Any]:
    return dict(
        cloud.clients.sagemaker_runtime.invoke_endpoint(
            EndpointName=extra.pop("EndpointName", "runtime-endpoint"),
            Body=body,
            **{"ContentType": "text/csv", **extra},
        )
    )


def test_invoke_endpoint_returns_the_models_prediction(cloud: Any) -> None:
    # When the endpoint is invoked over HTTPS with two CSV rows
    response = invoke(cloud, b"1,2\n3,4\n", Accept="text/csv", CustomAttributes="trace=abc")
    # Then the served model answered, and the response names the variant and echoes the custom attributes
    assert response["Body"].read() == b"3.5\n7.5"
    assert response["ContentType"] == "text/csv; charset=utf-8"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    assert response["CustomAttributes"] == "trace=abc"


def test_an_unknown_endpoint_is_a_validation_error(cloud: Any) -> None:
    with pytest.raises(ClientError) as error:
        invoke(cloud, b"1,2", EndpointName="nope")
    assert error.value.response["Error"]["Code"] == "ValidationError"
    assert error.value.response["Error"]["Message"] == f"Endpoint nope of account {ACCOUNT} not found."
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_an_unknown_target_variant_is_a_validation_error(cloud: Any) -> None:
    with pytest.raises(ClientError) as error:
        invoke(cloud, b"1,2", TargetVariant="Canary")
    assert error.value.response["Error"]["Code"] == "ValidationError"
    assert "Target variant Canary is not in endpoint runtime-endpoint" in error.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"1,abc", "text/csv", 400, "features must be numbers"),
        (b"{}", "application/json", 415, "application/json is not supported"),
    ],
)
def test_a_model_error_is_a_424_with_the_containers_status(
    cloud: Any, body: bytes, content_type: str, status: int, message: str
) -> None:
    # When the container refuses the payload
    with pytest.raises(ClientError) as error:
        invoke(cloud, body, ContentType=content_type)
    # Then InvokeEndpoint answers ModelError (424) carrying the container's status and message
    response = error.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert (response["OriginalStatusCode"], response["OriginalMessage"]) == (status, message)
    assert f'Received client error ({status}) from primary with message "{message}"' in response["Error"]["Message"]
    assert response["LogStreamArn"].endswith("log-group:/aws/sagemaker/Endpoints/runtime-endpoint")


def test_a_model_failure_is_a_424_with_the_containers_500_page(cloud: Any) -> None:
    # When the model crashes on a request
    with pytest.raises(ClientError) as error:
        invoke(cloud, b"crash")
    # Then InvokeEndpoint answers ModelError carrying the container's 500 and its whole response body
    response = error.value.response
    assert (response["Error"]["Code"], response["OriginalStatusCode"]) == ("ModelError", 500)
    assert response["OriginalMessage"].startswith("<!doctype html>")
    assert "<title>500 Internal Server Error</title>" in response["OriginalMessage"]
    assert 'Received server error (500) from primary with message "<!doctype html>' in response["Error"]["Message"]


def test_a_container_that_does_not_answer_in_time_is_a_424_with_sagemakers_timeout(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from localcloud.runtime import endpoints

    # Given InvokeEndpoint's 60 s timeout shortened to half a second
    monkeypatch.setattr(endpoints, "INVOCATION_TIMEOUT_SECONDS", 0.5)
    # When the model takes two seconds
    with pytest.raises(ClientError) as error:
        invoke(cloud, b"sleep 2")
    # Then InvokeEndpoint answers ModelError with status 0 and SageMaker's timeout message
    response = error.value.response
    assert (response["Error"]["Code"], response["OriginalStatusCode"]) == ("ModelError", 0)
    assert response["OriginalMessage"] == endpoints.TIMED_OUT
    assert response["Error"]["Message"].startswith(
        f'Received server error (0) from primary with message "{endpoints.TIMED_OUT}"'
    )


def _totals(endpoint: str) -> dict[str, list[float]]:
    from moto.cloudwatch.models import cloudwatch_backends

    values: dict[str, list[float]] = {}
    for datum in cloudwatch_backends[ACCOUNT][REGION].metric_data:
        dimensions = {x.name: x.value for x in datum.dimensions}
        if datum.namespace == "AWS/SageMaker" and dimensions.get("EndpointName") == endpoint:
            assert dimensions == {"EndpointName": endpoint, "VariantName": "AllTraffic"}
            values.setdefault(datum.name, []).append(float(datum.value))
    return values


def test_invocations_are_counted_in_aws_sagemaker_metrics_as_sagemaker_defines_them(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from localcloud.runtime import endpoints

    # Given a fresh endpoint on the same model
    endpoint = unique("metrics-endpoint")
    cloud.clients.sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName="runtime-config")
    wait_for_endpoint(cloud.clients.sagemaker, endpoint)
    # When it answers twice, refuses a bad request, fails on a crash and does not answer one in time
    invoke(cloud, b"1,2", EndpointName=endpoint)
    invoke(cloud, b"1,2", EndpointName=endpoint)
    for body in (b"x", b"crash", b"sleep 2"):
        monkeypatch.setattr(endpoints, "INVOCATION_TIMEOUT_SECONDS", 0.5 if body.startswith(b"sleep") else 60)
        with pytest.raises(ClientError):
            invoke(cloud, body, EndpointName=endpoint)
    # Then each request sends 1 or 0 per error metric: 4xx and 5xx are the model's answers, InvocationModelErrors
    # is every request without a 2XX answer (timeouts included); latencies come with every answer, none without
    totals = _totals(endpoint)
    assert totals["Invocations"] == [1.0] * 5
    assert totals["Invocation4XXErrors"] == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert totals["Invocation5XXErrors"] == [0.0, 0.0, 0.0, 1.0, 0.0]
    assert totals["InvocationModelErrors"] == [0.0, 0.0, 1.0, 1.0, 1.0]
    assert len(totals["ModelLatency"]) == len(totals["OverheadLatency"]) == 4
    assert all(value > 0 for value in totals["ModelLatency"])


def test_captured_requests_are_written_as_sagemaker_capture_files(cloud: Any) -> None:
    # Given an endpoint whose config captures every request and response
    endpoint, config = unique("captured"), unique("capture-config")
    cloud.clients.sagemaker.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "runtime-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
        DataCaptureConfig={
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": f"s3://{BUCKET}/data-capture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
        },
    )
    cloud.clients.sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    wait_for_endpoint(cloud.clients.sagemaker, endpoint)
    # When it is invoked twice (one with an inference id) and the capture buffer is flushed
    invoke(cloud, b"1,2", EndpointName=endpoint, InferenceId="request-1")
    invoke(cloud, b"3,4", EndpointName=endpoint)
    cloud.endpoints.flush_capture((endpoint, "AllTraffic"))  # (the heartbeat may have flushed some already)
    # Then JSON-lines files under <destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/ hold both records, in order
    prefix = f"data-capture/{endpoint}/AllTraffic/"
    keys = sorted(o["Key"] for o in cloud.clients.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"])
    assert all(re.fullmatch(rf"{prefix}\d{{4}}/\d\d/\d\d/\d\d/[\w-]+\.jsonl", key) for key in keys), keys
    records = [
        json.loads(line)
        for key in keys
        for line in cloud.clients.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines()
    ]
    assert [r["captureData"]["endpointInput"]["data"] for r in records] == ["1,2", "3,4"]
    assert [r["captureData"]["endpointOutput"]["data"] for r in records] == ["3.5", "7.5"]
    assert records[0]["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv",
        "mode": "INPUT",
        "data": "1,2",
        "encoding": "CSV",
    }
    assert records[0]["eventMetadata"]["inferenceId"] == "request-1"
    assert "inferenceId" not in records[1]["eventMetadata"]
    assert records[0]["eventVersion"] == "0"


class _Runtime:
    """A stand-in endpoint runtime: answers every invocation with the same body and counts them."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def invoke(self, endpoint_name: str, body: bytes, *args: Any, **kwargs: Any) -> Any:
        from types import SimpleNamespace

        self.calls.append(endpoint_name)
        return SimpleNamespace(body=b'{"ok": 1}', content_type="application/json", variant="AllTraffic")


def test_installed_again_one_request_is_one_invocation_of_the_runtime() -> None:
    # Given the shim installed again and an endpoint runtime
    runtime = _Runtime()
    support.install_again(shim)
    shim.set_runtime(runtime)
    try:
        with mock_aws():
            client = boto3.client("sagemaker-runtime", region_name=REGION)
            # When one request is sent
            answer = client.invoke_endpoint(EndpointName="e1", ContentType="text/csv", Body=b"1,2")
    finally:
        shim.set_runtime(None)
    # Then the runtime answered it, once, for that endpoint (not moto's fixed fake body)
    assert runtime.calls == ["e1"]
    assert json.loads(answer["Body"].read()) == {"ok": 1}
    assert answer["InvokedProductionVariant"] == "AllTraffic"
