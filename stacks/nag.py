"""cdk-nag AwsSolutions acknowledgments, each with the specific reason it is acceptable here.

cdk-nag 3 needs one acknowledgment per granular finding (e.g. ``AwsSolutions-IAM5[Action::s3:List*]``);
findings that name a resource carry its logical id, so the ids are computed from the constructs.
Everything not listed here fails the synth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk
from constructs import IConstruct

if TYPE_CHECKING:
    from stacks.mlops_stack import MlopsStack


def _ack(scope: IConstruct, finding: str, reason: str) -> None:
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=finding, reason=reason))


def _ref(stack: cdk.Stack, construct: IConstruct, attribute: str = "Arn") -> str:
    child = construct.node.default_child
    assert isinstance(child, cdk.CfnElement)
    return f"<{stack.resolve(stack.get_logical_id(child))}.{attribute}>"


GRANT_ACTIONS = {
    "Action::s3:GetBucket*": "aws-cdk-lib grant_read: bucket-level read actions on one zone bucket only",
    "Action::s3:GetObject*": "aws-cdk-lib grant_read: object reads (incl. versions) within one zone bucket/prefix",
    "Action::s3:List*": "aws-cdk-lib grant_read: listing one zone bucket (the jobs read prefixes of files)",
    "Action::s3:Abort*": "aws-cdk-lib grant_write: aborting its own multipart uploads in one zone bucket",
    "Action::s3:DeleteObject*": "aws-cdk-lib grant_read_write on curated/artifacts only (ETL/jobs overwrite "
    "their own outputs); the raw zone is never granted delete",
    "Action::kms:GenerateDataKey*": "aws-cdk-lib key grants: data keys of the one customer-managed data key",
    "Action::kms:ReEncrypt*": "aws-cdk-lib key grants: re-encryption under the one customer-managed data key",
}


def acknowledge_findings(stack: MlopsStack) -> None:
    config = stack.config
    region = config.region
    for finding, reason in GRANT_ACTIONS.items():
        _ack(stack, f"AwsSolutions-IAM5[{finding}]", reason)

    lake = stack.lake
    for bucket, zone in ((lake.raw, "raw"), (lake.curated, "curated"), (lake.artifacts, "artifacts")):
        _ack(
            stack,
            f"AwsSolutions-IAM5[Resource::{_ref(stack, bucket)}/*]",
            f"object-level access inside the {zone} zone bucket: object keys are per upload/run",
        )
    for bucket, prefix, why in (
        (lake.raw, "batch-input", "batch inputs are read by the transform job"),
        (lake.raw, "ground-truth", "labels uploaded by users are read by the ground-truth Lambda"),
        (lake.curated, "batch-output", "transform results are written under this prefix only"),
        (lake.curated, "manifests", "the retrain Lambda and the drift monitor read dataset manifests only"),
        (lake.artifacts, "models", "the endpoint reads model.tar.gz files under models/ only"),
        (
            lake.artifacts,
            "data-capture",
            "the endpoint writes captured requests under this prefix only; the deploy Lambda (shadow vs production "
            "comparison), the drift monitor and the ground-truth Lambda read them here",
        ),
        (
            lake.artifacts,
            "evaluations",
            "the deploy and register Lambdas read evaluation reports (evaluation.json, golden payloads) only",
        ),
        (lake.curated, "curated", "the prepare Lambda and the drift monitor read the ETL's quality reports only"),
        (
            lake.artifacts,
            "monitoring/drift",
            "the drift monitor reads and writes its reports and capture watermark under this prefix only",
        ),
        (
            lake.artifacts,
            "monitoring/quality",
            "the ground-truth Lambda writes joined labels and quality summaries under this prefix only",
        ),
    ):
        _ack(stack, f"AwsSolutions-IAM5[Resource::{_ref(stack, bucket)}/{prefix}/*]", why)
    _ack(
        stack,
        f"AwsSolutions-IAM5[Resource::{_ref(stack, lake.artifacts)}/evaluations/*/no-champion/NO_CHAMPION]",
        "the prepare Lambda writes only the no-champion placeholder object of its execution (one key per run)",
    )

    _ack(
        stack,
        f"AwsSolutions-IAM5[Resource::arn:aws:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-{region}/*]",
        "CDK bootstrap asset bucket: code assets (Glue script, sourcedir.tar.gz) are content-addressed, "
        "their keys are only known at publish time",
    )
    account = "<AWS::AccountId>"
    for resource, reason in (
        (
            f"arn:aws:glue:{region}:{account}:table/{config.glue_database_name}/*",
            "tables of this stage's Glue database only (one table per dataset)",
        ),
        (
            f"arn:aws:logs:{region}:{account}:log-group:/aws-glue/*",
            "Glue writes job logs to service-named log groups under /aws-glue/",
        ),
        (
            f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/*",
            "SageMaker writes job/endpoint logs to service-named log groups under /aws/sagemaker/",
        ),
        (
            f"arn:aws:sagemaker:{region}:{account}:model-package/{config.model_package_group_name}/*",
            "versions of this stage's model package group only",
        ),
        (
            f"arn:aws:sagemaker:{region}:{account}:training-job/*",
            "SageMakerCreateTrainingJob task (aws-cdk-lib): training job names are generated per execution",
        ),
        (
            f"arn:aws:sagemaker:{region}:{account}:processing-job/{config.prefix}-*",
            "evaluation job names are generated per execution under this stage's prefix",
        ),
        (
            f"arn:aws:sagemaker:{region}:{account}:endpoint/{config.prefix}*",
            "endpoints (incl. smoke-test candidates) created by the deployment under this stage's prefix",
        ),
        (
            f"arn:aws:sagemaker:{region}:{account}:endpoint-config/{config.prefix}*",
            "endpoint configs are created per deployment under this stage's prefix",
        ),
        (
            f"arn:aws:sagemaker:{region}:{account}:model/{config.prefix}*",
            "models are created per deployment/batch job under this stage's prefix",
        ),
        (
            f"arn:aws:sagemaker:{region}:{account}:transform-job/{config.prefix}*",
            "batch transform jobs are named per upload under this stage's prefix",
        ),
        (
            f"arn:aws:application-autoscaling:{region}:{account}:scalable-target/*",
            "scalable target ids are assigned by the service; a condition limits it to the sagemaker namespace",
        ),
    ):
        _ack(stack, f"AwsSolutions-IAM5[Resource::{resource}]", reason)

    _ack(
        stack,
        "AwsSolutions-IAM5[Resource::*]",
        "actions without resource-level permissions only: ecr:GetAuthorizationToken, X-Ray "
        "PutTraceSegments/PutTelemetryRecords, cloudwatch:PutMetricData (limited by a namespace "
        "condition), sagemaker:List* (cleanup enumerates what the pipeline created; ListModelPackages, which "
        "the prepare/register Lambdas call, has no resource-level permission), cloudwatch:GetMetricStatistics "
        "(the deploy Lambda compares shadow and production variant metrics)",
    )
    functions = [
        stack.pipeline.prepare_fn,
        stack.pipeline.register_fn,
        stack.pipeline.failure_fn,
        stack.serving.deploy_fn,
        stack.serving.cleanup_fn,
    ]
    for fn in functions:
        _ack(
            stack,
            f"AwsSolutions-IAM5[Resource::{_ref(stack, fn)}:*]",
            "Step Functions / custom-resource invoke of this one function's versions (aws-cdk-lib grant)",
        )
    machine = stack.pipeline.state_machine
    machine_id = stack.resolve(stack.get_logical_id(machine.node.default_child))  # type: ignore[arg-type]
    _ack(
        stack,
        "AwsSolutions-IAM5[Resource::arn:aws:states:"
        f'{region}:{account}:execution:{{"Fn::Select":[6,{{"Fn::Split":[":",{{"Ref":"{machine_id}"}}]}}]}}:*]',
        "the retrain guard reads executions of the training state machine only (is one running?)",
    )
    _ack(
        stack,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "only on aws-cdk-lib's own framework functions (custom-resource Provider onEvent and the "
        "BucketNotificationsHandler that turns on EventBridge delivery); it grants log writes only. "
        "Our functions use roles scoped to their own log group (stacks/constructs/lambda_factory.py)",
    )
    _ack(
        stack,
        "AwsSolutions-L1",
        "python3.13 on purpose: the newest runtime for which both public layers this stack uses "
        "(Powertools 3.37.0 and AWS SDK for pandas 3.17.1) are published",
    )
