"""Model registry: the model package group, and the deployment path that an approval triggers."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.config import StageConfig


class ModelRegistry(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self.group_name = config.model_package_group_name
        self.group = sagemaker.CfnModelPackageGroup(
            self,
            "Group",
            model_package_group_name=self.group_name,
            model_package_group_description=(
                f"{config.dataset.name} ({config.stage}): every challenger, approved or rejected, with lineage"
            ),
        )

    def on_approval(self, deployment: sfn.IStateMachine) -> events.Rule:
        """Approved package versions of this group start the deployment state machine."""
        return events.Rule(
            self,
            "ApprovedRule",
            description="An Approved model package version starts the canary deployment",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Package State Change"],
                detail={
                    "ModelPackageGroupName": [self.group_name],
                    "ModelApprovalStatus": ["Approved"],
                },
            ),
            targets=[
                targets.SfnStateMachine(
                    deployment,
                    input=events.RuleTargetInput.from_object(
                        {
                            "model_package_arn": events.EventField.from_path("$.detail.ModelPackageArn"),
                            "trigger": "approval",
                        }
                    ),
                    retry_attempts=4,
                )
            ],
        )
