"""Model registry wiring: an approved package of any declared dataset's group starts the one deployment state machine.

The groups themselves are per dataset (``stacks/constructs/dataset.py``). One rule serves them all: it lists the
declared groups by name, so a retired dataset's retained group deploys nothing, and the execution input carries
the group, from which the deploy Lambda finds the dataset in the platform document.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct


class ModelRegistry(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, group_names: Sequence[str], deployment: sfn.IStateMachine
    ) -> None:
        super().__init__(scope, construct_id)
        self.group_names = sorted(group_names)
        self.approved_rule = events.Rule(
            self,
            "ApprovedRule",
            description="An Approved model package version of a declared dataset starts the canary deployment",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Package State Change"],
                detail={
                    "ModelPackageGroupName": self.group_names,
                    "ModelApprovalStatus": ["Approved"],
                },
            ),
            targets=[
                targets.SfnStateMachine(
                    deployment,
                    input=events.RuleTargetInput.from_object(
                        {
                            "model_package_arn": events.EventField.from_path("$.detail.ModelPackageArn"),
                            "model_package_group": events.EventField.from_path("$.detail.ModelPackageGroupName"),
                            "trigger": "approval",
                        }
                    ),
                    retry_attempts=4,
                )
            ],
        )
