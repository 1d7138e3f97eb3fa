"""A/B experiments (``serving.strategy: AB``): the evaluator Lambda shared by every dataset served with AB.

The deploy Lambda puts an approved challenger next to the champion as a second production variant and records the
experiment; every dataset served with AB has a schedule (``stacks/constructs/dataset.py``) on which this function
looks at its experiment, and on a final decision updates the endpoint to one variant, records the decision on the
challenger's model package and notifies (``lambdas/experiment``). Built only when a declared dataset is served
with AB; each such dataset has a schedule that invokes it.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from pipelines.platform import EXPERIMENTS_PREFIX
from stacks.config import StageConfig
from stacks.constructs.data_lake import QUALITY_PREFIX, DataLake
from stacks.constructs.lambda_factory import LambdaFactory
from stacks.constructs.monitoring import Monitoring
from stacks.constructs.training_pipeline import registry_arns


class Experiments(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        lake: DataLake,
        lambdas: LambdaFactory,
        topic: sns.ITopic,
        monitoring: Monitoring,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.function = lambdas.function(
            self,
            "ExperimentEvaluator",
            asynchronous=True,  # the experiment schedules (EventBridge)
            handler="experiment.handler.handler",
            description="Looks at a dataset's A/B experiment (sequential test on labelled outcomes per variant) "
            "and promotes or removes the challenger",
            memory_mb=512,
            timeout=cdk.Duration.minutes(5),
            environment={"ARTIFACTS_BUCKET": lake.artifacts.bucket_name, "TOPIC_ARN": topic.topic_arn},
        )
        fn = self.function
        # the endpoint: which config runs, and the update to the winner's single-variant config
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpoint"],
                resources=[
                    stack.format_arn(service="sagemaker", resource=kind, resource_name=f"{config.prefix}-*")
                    for kind in ("endpoint", "endpoint-config")
                ],
            )
        )
        # the endpoint configs name the data key (storage volume, data capture): the caller of UpdateEndpoint
        # needs grants on it, as the deploy Lambda does
        lake.key.grant(fn, "kms:CreateGrant", "kms:DescribeKey")
        # the decision on the challenger's package (ApprovalDescription, metadata; Rejected when stopped)
        _, packages = registry_arns(stack, config)
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage"], resources=packages
            )
        )
        # the challenger variant's own guardrail metrics (AWS/SageMaker; no resource-level permission)
        fn.add_to_role_policy(iam.PolicyStatement(actions=["cloudwatch:GetMetricStatistics"], resources=["*"]))
        lake.artifacts.grant_read(fn, f"{QUALITY_PREFIX}*")  # the ground-truth Lambda's joined rows
        lake.artifacts.grant_read(fn, f"{EXPERIMENTS_PREFIX}*")
        lake.artifacts.grant_put(fn, f"{EXPERIMENTS_PREFIX}*")  # the record and the report
        topic.grant_publish(fn)
        monitoring.allow_schedules(fn, "experiment")
