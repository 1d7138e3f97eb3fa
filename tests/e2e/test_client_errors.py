"""Client errors during a canary, end to end on the synthesized stack in the local cloud (issue 13).

The inference handler answers a bad request with a 4XX itself; SageMaker counts every answer that is not 2XX in
``InvocationModelErrors`` (https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html). The
rollback guardrails therefore judge that metric as a share of the invocations: one client sending garbage during
a canary bake does not roll a good model back, while a canary that refuses the clients' requests still does.
"""

from __future__ import annotations

import io
import tarfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from botocore.exceptions import ClientError

from localcloud.clock import clock
from localcloud.demo import CANARY_TIME_SCALE
from localcloud.lifecycle import Execution, Lifecycle
from localcloud.runtime.journal import journal
from pipelines.data.generator import generate
from tests.e2e.conftest import Cloud, state_of

pytestmark = pytest.mark.slow

GARBAGE = [
    (b"12,70.5,846.0\n", "text/csv", 400, "row 1: expected 9 columns, got 3"),
    (b'{"instances": "nope"}', "application/json", 400, 'JSON body must be {"instances": [...]} or a list of records'),
    (
        b"<customer/>",
        "application/xml",
        415,
        "unsupported Content-Type 'application/xml'; use text/csv or application/json",
    ),
]
BAD_EVERY = 20  # one request in twenty comes from the client sending garbage


@dataclass
class Clients:
    good_requests: int = 0
    good_failures: list[str] = field(default_factory=list)
    bad_answers: list[tuple[int, str]] = field(default_factory=list)


def _mixed_traffic(lc: Lifecycle, stop: Callable[[], bool], clients: Clients) -> None:
    """Scoring batches of 20 rows, with every ``BAD_EVERY``-th request a garbage one from another client."""
    rows = generate(2000, seed=51)
    runtime = lc.clients.sagemaker_runtime
    sent = 0
    while not stop():
        sent += 1
        if sent % BAD_EVERY:
            batch = rows.iloc[(sent * 20) % 1980 :][:20]
            traffic = lc.send_traffic(batch)
            clients.good_requests += traffic.requests
            clients.good_failures += traffic.errors
            continue
        body, content_type, _, _ = GARBAGE[(sent // BAD_EVERY) % len(GARBAGE)]
        try:
            runtime.invoke_endpoint(EndpointName=lc.endpoint_name, ContentType=content_type, Body=body)
            clients.bad_answers.append((200, "answered"))
        except ClientError as error:
            response = error.response
            clients.bad_answers.append(
                (int(response.get("OriginalStatusCode", 0)), response.get("OriginalMessage", ""))
            )


@contextmanager
def _traffic(target: Callable[[Callable[[], bool]], None]) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=target, args=(stop.is_set,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)


def _champion_archive(lc: Lifecycle, extra_code: str = "") -> bytes:
    """The champion's model.tar.gz, with ``extra_code`` appended to its ``code/inference.py``."""
    package = lc.champion()
    assert package is not None
    bucket, key = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"][5:].split("/", 1)
    original = lc.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(original)) as source, tarfile.open(fileobj=out, mode="w:gz") as target:
        for member in source.getmembers():
            handle = source.extractfile(member) if member.isfile() else None
            data = handle.read() if handle is not None else b""
            if member.name.removeprefix("./") == "code/inference.py":
                data += extra_code.encode()
                member.size = len(data)
            target.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return out.getvalue()


def _deploy(lc: Lifecycle, archive: bytes, description: str) -> tuple[str, Execution]:
    """Register ``archive`` as a new version of the champion's package, approve it, wait for its deployment."""
    sm = lc.clients.sagemaker
    package = lc.champion()
    assert package is not None
    key = f"models/{description.replace(' ', '-')}-{package['ModelPackageVersion']}/model.tar.gz"
    lc.clients.s3.put_object(Bucket=lc.artifacts_bucket, Key=key, Body=archive)
    container = {
        **package["InferenceSpecification"]["Containers"][0],
        "ModelDataUrl": f"s3://{lc.artifacts_bucket}/{key}",
    }
    arn = sm.create_model_package(
        ModelPackageGroupName=lc.group,
        ModelPackageDescription=description,
        InferenceSpecification={**package["InferenceSpecification"], "Containers": [container]},
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties=package["CustomerMetadataProperties"],
    )["ModelPackageArn"]
    known = {e.name for e in lc.executions(lc.deployment_machine)}
    # the demo's canary speed: on a busy host the clients still send enough requests in each bake minute for the
    # guardrails to judge (at the fixture's speed, a loaded host left the model-errors alarm without data)
    with lc.cloud_speed(min(clock.scale, CANARY_TIME_SCALE)):
        sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
        return arn, lc.wait_for_new_execution(lc.deployment_machine, known)


def _good_traffic(lc: Lifecycle, stop: Callable[[], bool]) -> None:
    rows = generate(200, seed=61)
    while not stop():
        lc.send_traffic(rows, stop=stop)


def _rollback_alarms_in_alarm(since: float) -> list[str]:
    """The rollback guardrails that went to ALARM after cloud time ``since``."""
    return [
        e.detail["alarm"]
        for e in journal.of("alarm")
        if e.at >= since and "-rollback-" in e.detail["alarm"] and e.detail["state"] == "ALARM"
    ]


def _sum(lc: Lifecycle, metric: str, since: float) -> float:
    """The sum of the production variant's ``AWS/SageMaker`` ``metric`` datapoints after cloud time ``since``."""
    from moto.cloudwatch.models import cloudwatch_backends

    dimensions = {"EndpointName": lc.endpoint_name, "VariantName": "AllTraffic"}
    return sum(
        float(datum.value)
        for datum in cloudwatch_backends[lc.cloud.account_id][lc.cloud.region].metric_data
        if datum.namespace == "AWS/SageMaker"
        and datum.name == metric
        and {d.name: d.value for d in datum.dimensions} == dimensions
        and datum.timestamp.timestamp() >= since
    )


def test_one_client_sending_garbage_during_a_canary_does_not_roll_a_good_model_back(champion: Cloud) -> None:
    lc = champion.lc
    since = clock.time()
    clients = Clients()
    # Given a good new model (the champion's own build, registered again) and clients scoring while it deploys,
    # one of which sends garbage: a short CSV row, a JSON body without instances, XML
    with _traffic(lambda stop: _mixed_traffic(lc, stop, clients)):
        # When it is approved and rolled out as a canary
        arn, run = _deploy(lc, _champion_archive(lc), "good build")

    # Then the garbage got the handler's 4XX answers, with their messages, through InvokeEndpoint
    assert clients.bad_answers, "the garbage client sent nothing during the rollout"
    assert set(clients.bad_answers) <= {(status, message) for _, _, status, message in GARBAGE}
    # And SageMaker's metrics counted them as client errors and model invocation errors, with no 5XX
    client_errors = _sum(lc, "Invocation4XXErrors", since)
    assert client_errors == len(clients.bad_answers)
    assert _sum(lc, "InvocationModelErrors", since) == client_errors
    assert _sum(lc, "Invocation5XXErrors", since) == 0
    # And no guardrail tripped: the deployment succeeded and the new model is the champion, serving everyone
    assert _rollback_alarms_in_alarm(since) == [], [e.detail for e in journal.of("alarm") if e.at >= since]
    assert run.status == "SUCCEEDED", run.cause
    assert lc.champion()["ModelPackageArn"] == arn
    version = lc.champion()["ModelPackageVersion"]
    assert lc.endpoint()["EndpointConfigName"] == f"{lc.endpoint_name}-v{version}"
    assert clients.good_requests > 0 and clients.good_failures == []
    # And the new model itself answered garbage during its rollout
    assert lc.cloud.endpoints.counts[(lc.endpoint_name, "AllTraffic", f"{lc.endpoint_name}-v{version}")]["4xx"] > 0


CSV_DROPPED = """

_decode_request = decode_request


def decode_request(body, content_type, limits):
    if _media_type(content_type) == CSV:
        raise RequestError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "this build no longer reads text/csv")
    return _decode_request(body, content_type, limits)
"""


def test_a_canary_that_refuses_the_clients_requests_is_still_rolled_back(champion: Cloud) -> None:
    lc = champion.lc
    before, since = state_of(lc), clock.time()
    champion_arn = lc.champion()["ModelPackageArn"]
    # Given a build that answers the JSON golden payloads but refuses text/csv, which the clients send
    archive = _champion_archive(lc, CSV_DROPPED)
    with _traffic(lambda stop: _good_traffic(lc, stop)):
        # When it is approved and rolled out as a canary while the clients score
        arn, run = _deploy(lc, archive, "csv dropped")

    # Then the share of requests without a 2XX answer trips the model-errors guardrail, and SageMaker rolls back
    assert run.status == "FAILED"
    assert "rolled back" in (run.cause or ""), run.cause
    assert any(name.endswith("-rollback-model-errors") for name in _rollback_alarms_in_alarm(since))
    # And the champion keeps serving on its endpoint config; the refusing build is Rejected
    after = state_of(lc)
    assert (after["endpoint_config"], after["serving"]) == (before["endpoint_config"], before["serving"])
    assert lc.clients.sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Rejected"
    assert lc.champion()["ModelPackageArn"] == champion_arn
