"""The stack only wires constructs; cross-cutting concerns (tags, cdk-nag acknowledgments) live here."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.config import PROJECT, StageConfig
from stacks.constructs.data_lake import DataLake
from stacks.constructs.lambda_factory import LambdaFactory
from stacks.constructs.model_registry import ModelRegistry
from stacks.constructs.monitoring import Monitoring
from stacks.constructs.serving import Serving
from stacks.constructs.training_pipeline import TrainingPipeline
from stacks.nag import acknowledge_findings


class MlopsStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config = config
        cdk.Tags.of(self).add("project", PROJECT)
        cdk.Tags.of(self).add("stage", config.stage)

        self.lake = DataLake(self, "DataLake", config=config)
        self.topic = sns.Topic(
            self,
            "Notifications",
            topic_name=f"{config.prefix}-notifications",
            display_name=f"MLOps {config.stage}: pipeline, deployment, rollback and retrain outcomes",
            master_key=self.lake.key,
            enforce_ssl=True,
        )
        self.lambdas = LambdaFactory(self, "Lambdas", config=config)
        self.registry = ModelRegistry(self, "Registry", config=config)
        self.pipeline = TrainingPipeline(
            self,
            "Pipeline",
            config=config,
            lake=self.lake,
            lambdas=self.lambdas,
            model_package_group_name=self.registry.group_name,
            topic=self.topic,
        )
        self.serving = Serving(
            self,
            "Serving",
            config=config,
            lake=self.lake,
            lambdas=self.lambdas,
            model_package_group_name=self.registry.group_name,
            topic=self.topic,
        )
        self.registry.on_approval(self.serving.deployment)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            lake=self.lake,
            lambdas=self.lambdas,
            pipeline=self.pipeline,
            serving=self.serving,
            topic=self.topic,
        )
        self._outputs()
        acknowledge_findings(self)

    def _outputs(self) -> None:
        for name, value in {
            "RawBucket": self.lake.raw.bucket_name,
            "CuratedBucket": self.lake.curated.bucket_name,
            "ArtifactsBucket": self.lake.artifacts.bucket_name,
            "TrainingStateMachine": self.pipeline.state_machine.state_machine_arn,
            "DeploymentStateMachine": self.serving.deployment.state_machine_arn,
            "EndpointName": self.config.endpoint_name,
            "ModelPackageGroup": self.registry.group_name,
            "NotificationsTopic": self.topic.topic_arn,
            "UploadPrefix": f"s3://{self.lake.raw.bucket_name}/{self.config.raw_dataset_prefix}",
        }.items():
            cdk.CfnOutput(self, name, value=value)
