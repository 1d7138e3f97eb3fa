"""An A/B experiment under moto + the endpoint shim: v1 serves, v2 enters as the challenger variant, and labelled
outcomes are written as the ground-truth Lambda writes them (``joined.jsonl`` per label file)."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from lambdas.deploy.logic import Deployer
from lambdas.experiment.logic import Clients, Evaluator, EvaluatorSettings
from localcloud.clock import clock
from stacks.config import ABSettings
from stacks.datasets import dataset_schema
from tests.unit.lambdas.deploy.support import ARTIFACTS, ENDPOINT, REGION, Cloud, deployer, run_deployment

QUALITY = "monitoring/quality/churn/"
AB = ABSettings(
    challenger_share=0.2,
    minimum_detectable_effect=0.05,
    confidence=0.95,
    max_duration_hours=48,
    label_delay_hours=6,
    evaluation_minutes=60,
)


def ab_deployer(cloud: Cloud, **ab: Any) -> Deployer:
    steps = deployer(cloud, strategy="AB", ab=replace(AB, **ab))
    steps.settings = replace(steps.settings, dataset="churn", schema=dataset_schema("churn"))
    return steps


def start_experiment(cloud: Cloud, **ab: Any) -> dict[str, Any]:
    """v1 deployed (a plain create), then v2 approved: the endpoint runs both; the deploy run's state."""
    first = run_deployment(ab_deployer(cloud, **ab), cloud.register(1))
    assert first.error is None and first.state["rollout"]["phase"] == "create"
    run = run_deployment(ab_deployer(cloud, **ab), cloud.register(2))
    assert run.error is None, run.state.get("failure")
    return run.state


def evaluator(cloud: Cloud, sns: Any, topic: str) -> Evaluator:
    settings = EvaluatorSettings(
        dataset="churn",
        endpoint_name=ENDPOINT,
        artifacts_bucket=ARTIFACTS,
        quality_prefix=QUALITY,
        topic_arn=topic,
        schema=dataset_schema("churn"),
        error_5xx_count=1,
        model_error_rate=0.2,
    )
    return Evaluator(settings, Clients(cloud.sm, cloud.s3, cloud.cloudwatch, sns, now=clock.now))


def label_batch(
    cloud: Cloud, rng: np.random.Generator, at: datetime, *, requests: int, rates: dict[str, float], share: float = 0.2
) -> None:
    """``requests`` labelled requests captured around ``at`` (one label file, uploaded at ``at``): each answered by
    the challenger with probability ``share``, correct with its variant's rate."""
    rows = []
    for i in range(requests):
        variant = "Challenger" if rng.random() < share else "AllTraffic"
        label = int(rng.random() < 0.5)
        correct = rng.random() < rates[variant]
        rows.append(
            {
                "id": f"req-{uuid.uuid4()}",
                "event_id": str(uuid.uuid4()),
                "inference_id": None,
                "variant": variant,
                "model_version": "v2" if variant == "Challenger" else "v1",
                "inference_time": (at - timedelta(minutes=30) + timedelta(seconds=i)).isoformat(),
                "row": 0,
                "probability": 0.9 if label else 0.1,
                "predicted_label": label if correct else 1 - label,
                "label": label,
                "predicted_value": None,
            }
        )
    key = f"{QUALITY}{at:%Y-%m-%dT%H-%M}/labels-{uuid.uuid4().hex[:8]}/joined.jsonl"
    cloud.s3.put_object(Bucket=ARTIFACTS, Key=key, Body="".join(json.dumps(r) + "\n" for r in rows).encode())


def topic(region: str = REGION) -> tuple[Any, str, str]:
    """An SNS topic with an SQS subscriber: (sns client, topic ARN, queue URL)."""
    import boto3

    sns, sqs = boto3.client("sns", region_name=region), boto3.client("sqs", region_name=region)
    arn = sns.create_topic(Name="notifications")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    return sns, arn, queue


def messages(queue: str, region: str = REGION) -> list[dict[str, Any]]:
    import boto3

    sqs = boto3.client("sqs", region_name=region)
    found = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in found]


def advance(hours: float) -> datetime:
    clock.advance(hours * 3600)
    return clock.now()
