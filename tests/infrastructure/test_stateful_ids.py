"""Upgrade safety: the logical id of every stateful resource, in both stages, is the one deployed stacks have.

CloudFormation replaces a resource whose logical id changes: a new KMS key (data encrypted under the old one
unreadable to the stack), new buckets and tables (the old ones retained or deleted with their data), a second model
package group under the same name (which fails). The ids below are those of main before datasets were declared
(the churn group's pinned by ``stacks/legacy.py``) plus the groups of the samples declared since, which take the
id of their path ``Dataset-<name>/Group``. A failure here means a construct moved or was renamed: move it back
or pin its old id in ``stacks/legacy.py`` with a migration note. Adding or removing a declared sample dataset
adds or removes its group here, deliberately.
"""

from __future__ import annotations

from typing import Any

import pytest

STATEFUL_TYPES = (
    "AWS::KMS::Key",
    "AWS::S3::Bucket",
    "AWS::DynamoDB::Table",
    "AWS::SageMaker::ModelPackageGroup",
)
SNAPSHOT: dict[str, str] = {
    "DataLakeDataKey3C766BA3": "AWS::KMS::Key",
    "DataLakeAccessLogs1DA51325": "AWS::S3::Bucket",
    "DataLakeRaw1F82835B": "AWS::S3::Bucket",
    "DataLakeCuratedD6D7CE2D": "AWS::S3::Bucket",
    "DataLakeArtifactsB270B651": "AWS::S3::Bucket",
    "PipelineIdempotencyTable91F2F674": "AWS::DynamoDB::Table",
    "ServingBatchIdempotencyTable9994EA8B": "AWS::DynamoDB::Table",
    "MonitoringRetrainGuardTable51F7C4B1": "AWS::DynamoDB::Table",
    "RegistryGroupF9A457C4": "AWS::SageMaker::ModelPackageGroup",  # churn's, deployed before datasets existed
    "DatasetenergyGroup25E6E077": "AWS::SageMaker::ModelPackageGroup",
    "DatasetticketsGroup6FFEB396": "AWS::SageMaker::ModelPackageGroup",
}
"""Logical id -> type of every stateful resource, the same in dev and prod."""


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_stateful_logical_ids_never_change(stage: str, stage_templates: dict[str, dict[str, Any]]) -> None:
    # Given the synthesized template of the stage
    resources = stage_templates[stage]["Resources"]
    # When its stateful resources are listed by logical id and type
    stateful = {k: v["Type"] for k, v in resources.items() if v["Type"] in STATEFUL_TYPES}
    # Then they are exactly the deployed ones
    assert stateful == SNAPSHOT, {
        "new": sorted(set(stateful) - set(SNAPSHOT)),
        "gone (replaced on update)": sorted(set(SNAPSHOT) - set(stateful)),
    }


def test_the_churn_group_keeps_its_deployed_name_under_its_pinned_id(
    stage_templates: dict[str, dict[str, Any]],
) -> None:
    for stage, template in stage_templates.items():
        group = template["Resources"]["RegistryGroupF9A457C4"]["Properties"]
        assert group["ModelPackageGroupName"] == f"mlops-{stage}-churn"
