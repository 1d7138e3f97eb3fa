"""Several declared datasets on one stack, driven as a user would: ``mlops local up`` in another process, the AWS
CLI (the pinned ``awscli``) for uploads, endpoints and invocations, boto3 for polling. One local cloud for every
case of this module. The stack declares the three samples: churn (binary), tickets (multiclass: string labels,
missing values, no key column) and energy (regression)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from localcloud.lifecycle import SAMPLES
from localcloud.report import answers_as_its_task
from stacks.config import load_config
from stacks.datasets import dataset_schema
from tests.e2e.served import Served, aws, executions, serving, wait_until

TASKS = {"churn": "binary", "tickets": "multiclass", "energy": "regression"}
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


@pytest.fixture(scope="module")
def served(assembly: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(assembly, tmp_path_factory.mktemp("datasets")) as started:
        yield started


@dataclass
class Inbox:
    """An SQS queue subscribed to the notifications topic, as an operator subscribes an inbox."""

    served: Served
    url: str

    def messages(self) -> list[dict[str, Any]]:
        sqs, found = self.served.client("sqs"), []
        while batch := sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return found


@pytest.fixture(scope="module")
def inbox(served: Served) -> Inbox:
    sqs = served.client("sqs")
    url = sqs.create_queue(QueueName=f"inbox-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    served.client("sns").subscribe(TopicArn=served.outputs["NotificationsTopic"], Protocol="sqs", Endpoint=arn)
    return Inbox(served, url)


def _described(served: Served, execution_arn: str) -> dict[str, Any]:
    return dict(served.client("stepfunctions").describe_execution(executionArn=execution_arn))


def _dataset_of(served: Served, execution_arn: str) -> str | None:
    given = json.loads(_described(served, execution_arn).get("input") or "{}")
    groups = {r["model_package_group"]: n for n, r in json.loads(served.outputs["DatasetResources"]).items()}
    return given.get("dataset") or groups.get(given.get("model_package_group"))


@pytest.fixture(scope="module")
def uploaded(served: Served, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """Each sample copied with ``aws s3 cp`` under its dataset's upload prefix; returns, per dataset, the status of
    its first pipeline run and of its deployment, once all have finished."""
    resources = json.loads(served.outputs["DatasetResources"])
    folder = tmp_path_factory.mktemp("uploads")
    for name in TASKS:
        path = folder / f"{name}.csv"
        path.write_bytes((SAMPLES / f"{name}.csv").read_bytes())
        copied = aws(
            served,
            "s3",
            "cp",
            str(path),
            f"s3://{served.outputs['RawBucket']}/{resources[name]['raw_upload_prefix']}{name}.csv",
        )
        assert "upload: " in copied, copied
    training, deploying = served.outputs["TrainingStateMachine"], served.outputs["DeploymentStateMachine"]

    def statuses() -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {name: {} for name in TASKS}
        for kind, machine in (("run", training), ("deployment", deploying)):
            for execution in executions(served, machine):
                name = _dataset_of(served, execution["executionArn"])
                if name in found:
                    found[name][kind] = execution["status"]
                    if execution["status"] in TERMINAL - {"SUCCEEDED"}:  # why, for the assertion's message
                        found[name][f"{kind}_cause"] = str(_described(served, execution["executionArn"]).get("cause"))
        return found

    def finished() -> bool:
        found = statuses()
        return all(
            s.get("run") in TERMINAL and (s["run"] != "SUCCEEDED" or s.get("deployment") in TERMINAL)
            for s in found.values()
        )

    wait_until(finished, 1200, "every dataset's pipeline run and deployment")
    return statuses()


def _first_row(name: str, with_missing: bool) -> pd.Series:
    """A row of the dataset's sample (one with missing feature values when ``with_missing``)."""
    schema = dataset_schema(name)
    frame = pd.read_csv(SAMPLES / f"{name}.csv")[list(schema.feature_names)]
    missing = frame.isna().any(axis=1)
    return frame[missing].iloc[0] if with_missing else frame[~missing].iloc[0]


def test_an_upload_under_an_undeclared_name_is_refused_and_left_untouched(
    served: Served, inbox: Inbox, tmp_path: Path
) -> None:
    # Given a file uploaded under a folder no declaration names
    path = tmp_path / "day1.csv"
    body = (SAMPLES / "energy.csv").read_bytes()
    path.write_bytes(body)
    raw = served.outputs["RawBucket"]
    aws(served, "s3", "cp", str(path), f"s3://{raw}/datasets/weather/day1.csv")

    # When the start Lambda handles its event / Then the refusal is notified, naming the dataset and the declared ones
    notices: list[dict[str, Any]] = []
    wait_until(
        lambda: notices.extend(inbox.messages()) or any("weather" in (n.get("Subject") or "") for n in notices),
        300,
        "the refusal notification",
    )
    (notice,) = [n for n in notices if "weather" in (n.get("Subject") or "")]
    assert notice["Subject"] == "Upload refused: undeclared dataset weather"
    assert "Declared datasets: churn, energy, tickets" in notice["Message"]
    assert "The object is untouched." in notice["Message"]
    # and logged by the start Lambda, with the reason (the invocation's log reaches CloudWatch Logs after its
    # notification may have: wait for it, as a reader of the logs would)
    logs = served.client("logs")

    def logged() -> list[str]:
        return [
            event["message"]
            for group in logs.describe_log_groups()["logGroups"]
            if "StartPipeline" in group["logGroupName"]
            for event in logs.filter_log_events(logGroupName=group["logGroupName"])["events"]
            if "upload refused" in event["message"]
        ]

    wait_until(
        lambda: any(
            "'weather' is not a declared dataset" in line and "churn, energy, tickets" in line for line in logged()
        ),
        60,
        "the start Lambda's log line of the refusal",
    )
    # and the object is untouched (one version, the same bytes) and no execution works on it
    versions = json.loads(
        aws(served, "s3api", "list-object-versions", "--bucket", raw, "--prefix", "datasets/weather/")
    )
    assert [v["Key"] for v in versions["Versions"]] == ["datasets/weather/day1.csv"]
    assert "DeleteMarkers" not in versions
    aws(served, "s3", "cp", f"s3://{raw}/datasets/weather/day1.csv", str(tmp_path / "back.csv"))
    assert (tmp_path / "back.csv").read_bytes() == body
    runs = executions(served, served.outputs["TrainingStateMachine"])
    assert all(_dataset_of(served, r["executionArn"]) != "weather" for r in runs)


def test_every_declared_dataset_is_listed_with_its_resources(served: Served) -> None:
    # Given the stack's outputs / Then they name the three datasets and each one's endpoint, group and prefix
    assert json.loads(served.outputs["Datasets"]) == sorted(TASKS)
    resources = json.loads(served.outputs["DatasetResources"])
    for name in TASKS:
        assert resources[name] == {
            "endpoint": f"mlops-dev-{name}",
            "model_package_group": f"mlops-dev-{name}",
            "raw_upload_prefix": f"datasets/{name}/",
        }


@pytest.mark.parametrize("name", list(TASKS))
def test_each_uploaded_dataset_reaches_an_endpoint_answering_in_its_tasks_shape(
    served: Served, uploaded: dict[str, dict[str, str]], name: str, tmp_path: Path
) -> None:
    # Given the dataset's sample uploaded with the AWS CLI, its pipeline run and deployment finished
    assert uploaded[name] == {"run": "SUCCEEDED", "deployment": "SUCCEEDED"}, uploaded[name]
    schema = dataset_schema(name)
    endpoint = json.loads(served.outputs["DatasetResources"])[name]["endpoint"]

    # When its endpoint is described and invoked with a row of its sample, missing values included where it has some
    described = json.loads(aws(served, "sagemaker", "describe-endpoint", "--endpoint-name", endpoint))
    row = _first_row(name, with_missing=True)
    body = tmp_path / "row.csv"
    body.write_text(",".join("" if pd.isna(v) else str(v) for v in row.tolist()) + "\n")
    out = tmp_path / "answer.json"
    invoked = json.loads(
        aws(
            served,
            *("sagemaker-runtime", "invoke-endpoint", "--endpoint-name", endpoint),
            *("--content-type", "text/csv", "--accept", "application/json", "--body", f"fileb://{body}", str(out)),
        )
    )
    answer = json.loads(out.read_text())

    # Then it is InService, its production variant answered, and the answer has its task's shape
    assert described["EndpointStatus"] == "InService"
    assert invoked["InvokedProductionVariant"] == "AllTraffic"
    assert answer["model_version"].startswith(f"{name}-")
    assert answers_as_its_task(TASKS[name], [str(label) for label in schema.labels], answer), answer
    prediction = answer["predictions"][0]
    if name == "tickets":  # string labels as declared, one probability per class; the declaration has no key
        assert schema.key is None
        assert set(prediction["probabilities"]) == {"billing", "technical", "account", "sales"}
        assert prediction["label"] in prediction["probabilities"]
    elif name == "energy":  # a value in the target's unit (kWh per month), not a probability
        assert isinstance(prediction["value"], float) and prediction["value"] > 1.0
    else:
        assert 0.0 <= prediction["probability"] <= 1.0 and prediction["label"] in (0, 1)


def test_dev_training_jobs_ask_for_a_warm_pool_and_without_quota_keep_none(
    served: Served, uploaded: dict[str, dict[str, str]]
) -> None:
    # Given the three runs finished: dev's TrainModel asks SageMaker to keep its instance for the next iteration, in a
    # local cloud whose account has no warm pool quota (a new account's, the local cloud's default)
    assert all(status.get("run") == "SUCCEEDED" for status in uploaded.values()), uploaded
    sagemaker = served.client("sagemaker")
    jobs = [s["TrainingJobName"] for s in sagemaker.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]]
    assert len(jobs) >= len(TASKS)
    for job in jobs:
        described = sagemaker.describe_training_job(TrainingJobName=job)
        # Then each job carried the stage's keep-alive through Step Functions, was not refused for the missing quota,
        # and kept no pool (nothing billed): the next upload's job starts cold, as in such an account
        assert described["ResourceConfig"]["KeepAlivePeriodInSeconds"] == load_config("dev").training.keep_alive_seconds
        assert described["TrainingJobStatus"] == "Completed"
        assert described["WarmPoolStatus"] == {"Status": "Terminated", "ResourceRetainedBillableTimeInSeconds": 0}
