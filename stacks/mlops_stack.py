"""The stack only wires constructs; cross-cutting concerns (tags, cdk-nag acknowledgments, checkov skips) live here.

Shared machinery serves every declared dataset (data lake and the one ETL job, the training and deployment state
machines, the Lambdas, monitoring); each dataset adds only its ``DatasetResources`` (model package group, alarms,
drift schedule). The platform document (``stacks/platform_document.py``) is built once and shipped in every code
asset.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from constructs import Construct

from pipelines.platform import Platform
from pipelines.schema import DatasetSchema
from stacks.checkov_skips import apply_skips
from stacks.config import PROJECT, SAMPLE_DATASET, STAGES, StageConfig
from stacks.constructs.data_lake import DataLake
from stacks.constructs.dataset import DatasetResources
from stacks.constructs.dead_letters import DeadLetters
from stacks.constructs.experiments import Experiments
from stacks.constructs.lambda_factory import DOCUMENT_PATH, LambdaFactory
from stacks.constructs.model_registry import ModelRegistry
from stacks.constructs.monitoring import Monitoring
from stacks.constructs.network import Network
from stacks.constructs.promotion import PromotionAccess
from stacks.constructs.serving import Serving
from stacks.constructs.training_pipeline import TrainingPipeline
from stacks.datasets import entry_point_files
from stacks.nag import BUCKET_NOTIFICATIONS_HANDLER, acknowledge_findings
from stacks.platform_document import build_platform


class MlopsStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        schemas: Sequence[DatasetSchema],
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        if not schemas:
            raise ValueError("a stack needs at least one declared dataset (datasets/<name>.yaml)")
        self.config = config
        self.dataset_configs = {s.name: config.for_dataset(s) for s in sorted(schemas, key=lambda s: s.name)}
        self.platform: Platform = build_platform(config, [c.dataset for c in self.dataset_configs.values()])
        generated = {DOCUMENT_PATH: self.platform.to_json().encode()}
        configs = list(self.dataset_configs.values())
        cdk.Tags.of(self).add("project", PROJECT)
        cdk.Tags.of(self).add("stage", config.stage)

        self.lake = DataLake(self, "DataLake", config=config, datasets=configs, generated=generated)
        self.topic = sns.Topic(
            self,
            "Notifications",
            topic_name=f"{config.prefix}-notifications",
            display_name=f"MLOps {config.stage}: pipeline, deployment, rollback and retrain outcomes",
            master_key=self.lake.key,
            enforce_ssl=True,
        )
        self.network = (
            Network(self, "Network", config=config, key=self.lake.key) if config.network == "private" else None
        )
        if self.network is not None and not self.lake.installs_from_pypi:
            # The ETL job joins the isolated subnets: it installs its modules from the stack's own wheels in S3
            # (--no-index, through the S3 gateway endpoint). A job that needed the package index would fail every
            # run there (no route out), so such a job would stay on Glue's own network, as in dev.
            self.lake.run_in(self.network)
        self.dead_letters = DeadLetters(self, "DeadLetters", config=config, key=self.lake.key, topic=self.topic)
        self.lambdas = LambdaFactory(
            self,
            "Lambdas",
            config=config,
            document=generated[DOCUMENT_PATH],
            key=self.lake.key,
            dead_letters=self.dead_letters,
            network=self.network,
        )
        self.pipeline = TrainingPipeline(
            self,
            "Pipeline",
            config=config,
            datasets=configs,
            lake=self.lake,
            lambdas=self.lambdas,
            generated={**generated, **entry_point_files(schemas)},  # datasets' own training scripts
            topic=self.topic,
            network=self.network,
        )
        self.serving = Serving(
            self,
            "Serving",
            config=config,
            datasets=configs,
            lake=self.lake,
            lambdas=self.lambdas,
            topic=self.topic,
            network=self.network,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            lake=self.lake,
            lambdas=self.lambdas,
            pipeline=self.pipeline,
            topic=self.topic,
        )
        # the A/B experiment evaluator, when a declared dataset is served with AB (no idle function, and no warm
        # worker in every local cloud, otherwise)
        self.experiments = (
            Experiments(
                self,
                "Experiments",
                config=config,
                lake=self.lake,
                lambdas=self.lambdas,
                topic=self.topic,
                monitoring=self.monitoring,
            )
            if any(c.serving.strategy == "AB" for c in configs)
            else None
        )
        self.datasets = {
            name: DatasetResources(
                self,
                f"Dataset-{name}",
                config=dataset_config,
                drift_function=self.monitoring.drift_fn,
                retrain_function=self.monitoring.retrain_fn,
                experiment_function=self.experiments.function if self.experiments else None,
            )
            for name, dataset_config in self.dataset_configs.items()
        }
        self.registry = ModelRegistry(
            self,
            "Registry",
            group_names=[c.model_package_group_name for c in configs],
            deployment=self.serving.deployment,
        )
        self.monitoring.add_dataset_sections(list(self.datasets.values()))
        self.promotion = self._promotion_access(configs)
        self._outputs()
        if self.network is not None:  # aws-cdk-lib's singleton, created by the buckets' EventBridge notifications
            self.network.attach(self.node.find_child(BUCKET_NOTIFICATIONS_HANDLER))
        acknowledge_findings(self)
        apply_skips(self)

    def _promotion_access(self, configs: list[StageConfig]) -> PromotionAccess | None:
        """The role ``mlops promote`` assumes from the source stage's account, when the two stages live in different
        configured accounts (in one account the operator's own session copies: no role is needed)."""
        source = self.config.promotion_source
        source_account = STAGES[source].account if source else None
        if not (self.config.account and source_account and source_account != self.config.account):
            return None
        return PromotionAccess(
            self,
            "Promotion",
            prefix=self.config.prefix,
            source_account=source_account,
            artifacts=self.lake.artifacts,
            key=self.lake.key,
            model_package_groups=[c.model_package_group_name for c in configs],
        )

    @property
    def primary(self) -> StageConfig:
        """The dataset the single-dataset outputs name: the sample (churn) when declared, else the first by name."""
        name = SAMPLE_DATASET if SAMPLE_DATASET in self.dataset_configs else next(iter(self.dataset_configs))
        return self.dataset_configs[name]

    def _outputs(self) -> None:
        primary = self.primary
        resources = {
            name: {
                "endpoint": c.endpoint_name,
                "model_package_group": c.model_package_group_name,
                "raw_upload_prefix": c.raw_dataset_prefix,
            }
            for name, c in self.dataset_configs.items()
        }
        for name, value in {
            "RawBucket": self.lake.raw.bucket_name,
            "CuratedBucket": self.lake.curated.bucket_name,
            "ArtifactsBucket": self.lake.artifacts.bucket_name,
            "TrainingStateMachine": self.pipeline.state_machine.state_machine_arn,
            "DeploymentStateMachine": self.serving.deployment.state_machine_arn,
            "EndpointName": primary.endpoint_name,
            "ModelPackageGroup": primary.model_package_group_name,
            "NotificationsTopic": self.topic.topic_arn,
            "UploadPrefix": f"s3://{self.lake.raw.bucket_name}/{primary.raw_dataset_prefix}",
            "Datasets": json.dumps(sorted(self.dataset_configs)),
            # name -> endpoint, model package group and upload prefix (a key prefix of RawBucket)
            "DatasetResources": json.dumps(resources, sort_keys=True, separators=(",", ":")),
        }.items():
            cdk.CfnOutput(self, name, value=value)
