"""An asynchronous event whose function keeps failing is kept, not lost, and a redrive after the fix processes it
exactly once (issue 21).

On the deployed dev stack: the upload event reaches ``StartPipeline`` the way EventBridge delivers it (an
asynchronous invocation: two retries, then the function's ``DeadLetterConfig`` queue, AWS Lambda Developer Guide,
"Asynchronous invocation"), while the function's role lacks ``states:StartExecution``. The event then waits in
``mlops-dev-StartPipeline-dlq`` with the error. With the grant back, the redrive of docs/operations.md (invoke with
the message body, delete on success) starts one execution; redriving the same event again starts none (the
function is idempotent per object version).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud.cloud import LocalCloud
from localcloud.iam.grants import remove_grant
from localcloud.shims import events_targets
from tests.unit.lambdas.support import object_created

pytestmark = pytest.mark.slow

QUEUE = "mlops-dev-StartPipeline-dlq"


@pytest.fixture(scope="module")
def cloud(assembly: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    started = LocalCloud(workdir=tmp_path_factory.mktemp("dead-letters"), prewarm=False).start()
    try:
        started.deploy("dev", assembly=assembly)
        yield started
    finally:
        started.stop()


def _physical(cloud: LocalCloud, prefix: str, kind: str) -> str:
    deployment = next(iter(cloud.deployments.values()))
    return str(
        next(
            v for k, v in deployment.resources.items() if k.startswith(prefix) and deployment.resource_types[k] == kind
        )
    )


def _executions(cloud: LocalCloud) -> list[dict[str, Any]]:
    sfn = cloud.clients.stepfunctions
    machine = next(
        m["stateMachineArn"]
        for m in sfn.list_state_machines()["stateMachines"]
        if m["name"] == "mlops-dev-training-pipeline"
    )
    return list(sfn.list_executions(stateMachineArn=machine)["executions"])


def _redrive(cloud: LocalCloud, queue_url: str, function: str) -> int:
    """docs/operations.md, "Redriving a dead-letter queue": invoke with each body, delete on success."""
    redriven = 0
    while messages := cloud.clients.sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=300).get("Messages"):
        (message,) = messages
        response = cloud.clients.lambda_.invoke(FunctionName=function, Payload=message["Body"].encode())
        assert "FunctionError" not in response, response["Payload"].read()
        cloud.clients.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        redriven += 1
    return redriven


def test_a_failing_event_waits_in_the_dead_letter_queue_and_a_redrive_processes_it_once(cloud: LocalCloud) -> None:
    function = _physical(cloud, "PipelineStartPipeline", "AWS::Lambda::Function")
    function_arn = cloud.clients.lambda_.get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    raw = next(iter(cloud.deployments.values())).outputs["RawBucket"]
    queue_url = cloud.clients.sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    event = object_created("datasets/churn/redrive.csv", bucket=raw, version="redrive-v1")
    event["account"], event["region"] = cloud.account_id, cloud.region
    before = len(_executions(cloud))
    role = _physical(cloud, "PipelineStartPipelineRole", "AWS::IAM::Role")
    saved = {
        name: cloud.clients.iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        for name in cloud.clients.iam.list_role_policies(RoleName=role)["PolicyNames"]
    }
    try:
        # Given StartPipeline may not start the state machine
        remove_grant(cloud, "PipelineStartPipelineRole", "states:StartExecution")
        # When EventBridge delivers the upload event (asynchronously: three attempts)
        delivered = events_targets.invoke_async(function_arn, event, source="rule test")
        # Then every attempt failed and the event waits in the dead-letter queue with the error
        assert delivered is False
        (message,) = cloud.clients.sqs.receive_message(
            QueueUrl=queue_url, MessageAttributeNames=["All"], VisibilityTimeout=0
        )["Messages"]
        assert json.loads(message["Body"]) == event
        attributes = message["MessageAttributes"]
        assert attributes["ErrorCode"]["StringValue"] == "200"
        assert "states:StartExecution" in attributes["ErrorMessage"]["StringValue"], attributes
        assert attributes["RequestID"]["StringValue"]
        assert len(_executions(cloud)) == before
    finally:
        # (the fix: the grant is back)
        for name, document in saved.items():
            policy = document if isinstance(document, str) else json.dumps(document)
            cloud.clients.iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=policy)
    # When the operator redrives the queue
    assert _redrive(cloud, queue_url, function) == 1
    # Then one execution started for the upload, and the queue is empty
    assert len(_executions(cloud)) == before + 1
    assert "Messages" not in cloud.clients.sqs.receive_message(QueueUrl=queue_url)
    # And redriving the same event again (a message redriven twice) starts nothing more
    response = cloud.clients.lambda_.invoke(FunctionName=function, Payload=json.dumps(event).encode())
    assert "FunctionError" not in response
    assert len(_executions(cloud)) == before + 1
