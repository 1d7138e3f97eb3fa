"""cdk-nag AwsSolutions acknowledgments: per construct and per finding, each with the reason it is acceptable there.

cdk-nag 3 reports one granular finding per wildcard (``AwsSolutions-IAM5[Action::s3:GetObject*]``,
``AwsSolutions-IAM5[Resource::<Bucket.Arn>/models/*]``) on the policy that holds it. Each is acknowledged with
``cdk.Validations.of(<the role that needs it>)``, never on the stack: a new wildcard grant on any other role fails
the synth until someone writes down why it is fine there. ``Resource::*`` reasons name the exact actions, which
``wildcard_resource_actions`` also returns so that tests/infrastructure/test_least_privilege.py can check them
against the synthesized template and AWS's Service Authorization Reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import IConstruct

if TYPE_CHECKING:
    from stacks.mlops_stack import MlopsStack

LAMBDA_TRACING = ("xray:PutTelemetryRecords", "xray:PutTraceSegments")
PUT_METRICS = "cloudwatch:PutMetricData"
# What aws-cdk-lib grants a state machine with logging (vended log delivery) and X-Ray tracing.
STATE_MACHINE_LOGGING_AND_TRACING = (
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    *LAMBDA_TRACING,
)
SAGEMAKER_EXECUTION = (PUT_METRICS, "ecr:GetAuthorizationToken")
BUCKET_NOTIFICATIONS_HANDLER = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"


def _ack(scope: IConstruct, findings: Mapping[str, str]) -> None:
    for finding, reason in findings.items():
        cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=finding, reason=reason))


def _ref(stack: cdk.Stack, construct: IConstruct, attribute: str = "Arn") -> str:
    child = construct.node.default_child
    assert isinstance(child, cdk.CfnElement)
    return f"<{stack.resolve(stack.get_logical_id(child))}.{attribute}>"


def _role(fn: cdk.aws_lambda.IFunction) -> iam.IRole:
    """The function's own role (a sibling construct from LambdaFactory): its policy holds the findings."""
    assert fn.role is not None
    return fn.role


def _iam5(finding: str) -> str:
    return f"AwsSolutions-IAM5[{finding}]"


def wildcard_resource_actions(stack: MlopsStack) -> dict[iam.IRole, tuple[str, ...]]:
    """Per role, the actions it is granted on ``"*"``: each one AWS documents with no resource-level permission."""
    pipeline, serving, monitoring = stack.pipeline, stack.serving, stack.monitoring
    metrics = (*LAMBDA_TRACING, PUT_METRICS)
    roles: dict[iam.IRole, tuple[str, ...]] = {
        stack.lake.etl_role: (PUT_METRICS,),
        pipeline.sagemaker_role: SAGEMAKER_EXECUTION,
        serving.endpoint_role: SAGEMAKER_EXECUTION,
        pipeline.state_machine.role: STATE_MACHINE_LOGGING_AND_TRACING,
        serving.deployment.role: STATE_MACHINE_LOGGING_AND_TRACING,
    }
    for fn, actions in (
        (pipeline.prepare_fn, LAMBDA_TRACING),
        (pipeline.failure_fn, LAMBDA_TRACING),
        (pipeline.lambda_etl.function, LAMBDA_TRACING),
        (pipeline.register_fn, metrics),
        (pipeline.start_fn, metrics),
        (serving.batch_fn, metrics),
        (serving.deploy_fn, (*metrics, "cloudwatch:GetMetricStatistics")),
        (
            serving.cleanup_fn,
            (*LAMBDA_TRACING, "sagemaker:ListEndpointConfigs", "sagemaker:ListEndpoints", "sagemaker:ListModels"),
        ),
        (monitoring.drift_fn, metrics),
        (monitoring.ground_truth_fn, metrics),
        (monitoring.retrain_fn, metrics),
    ):
        roles[_role(fn)] = actions
    if stack.experiments is not None:
        roles[_role(stack.experiments.function)] = (*LAMBDA_TRACING, "cloudwatch:GetMetricStatistics")
    if stack.network is not None:  # the VPC's describe actions (stacks/constructs/network.py)
        for role, describe in stack.network.granted.items():
            roles[role] = (*roles.get(role, ()), *describe)
    return roles


def _resource_star_reason(actions: tuple[str, ...]) -> str:
    conditioned = " (scoped by a cloudwatch:namespace condition)" if PUT_METRICS in actions else ""
    return (
        "only actions AWS documents without resource-level permissions (Service Authorization Reference, checked by "
        f"test_least_privilege.py): {', '.join(sorted(actions))}{conditioned}"
    )


def acknowledge_findings(stack: MlopsStack) -> None:
    for role, actions in wildcard_resource_actions(stack).items():
        _ack(role, {_iam5("Resource::*"): _resource_star_reason(actions)})
    _data_lake(stack)
    _pipeline(stack)
    _serving(stack)
    _monitoring(stack)
    _experiments(stack)
    _framework(stack)
    _network(stack)
    _promotion(stack)


# ---- reasons shared by several roles (each acknowledged only on the roles it is true of) ---------------------


def _key(what: str, *, re_encrypt: bool = True) -> dict[str, str]:
    found = {
        _iam5("Action::kms:GenerateDataKey*"): f"aws-cdk-lib key grant on the one data key only: data keys to {what}"
    }
    if re_encrypt:
        found[_iam5("Action::kms:ReEncrypt*")] = (
            "aws-cdk-lib grant_encrypt_decrypt on the one data key only (ReEncryptFrom/To under that same key)"
        )
    return found


def _reads(where: str) -> dict[str, str]:
    return {
        _iam5("Action::s3:GetObject*"): f"aws-cdk-lib grant_read: object reads (incl. versions and tags) of {where}",
        _iam5("Action::s3:GetBucket*"): f"aws-cdk-lib grant_read: bucket-level reads of the buckets of {where}",
        _iam5("Action::s3:List*"): f"aws-cdk-lib grant_read: listing the buckets of {where}",
    }


def _aborts(where: str) -> dict[str, str]:
    return {_iam5("Action::s3:Abort*"): f"aws-cdk-lib grant_put: aborting its own multipart uploads under {where}"}


def _objects(stack: cdk.Stack, bucket: IConstruct, prefix: str, reason: str) -> dict[str, str]:
    return {_iam5(f"Resource::{_ref(stack, bucket)}/{prefix}"): reason}


def _arns(stack: MlopsStack, reasons: Mapping[str, str]) -> dict[str, str]:
    # a configured account is concrete in the synthesized ARNs; an environment-agnostic stack has the pseudo parameter
    account = stack.config.account or "<AWS::AccountId>"
    region = stack.config.region
    return {_iam5(f"Resource::arn:aws:{k.format(region=region, account=account)}"): v for k, v in reasons.items()}


def _account_arn(service: str, resource: str) -> str:
    return f"{service}:{{region}}:{{account}}:{resource}"


def _invoke_versions(stack: cdk.Stack, *functions: IConstruct) -> dict[str, str]:
    return {
        _iam5(f"Resource::{_ref(stack, fn)}:*"): "invoking this one function's versions/aliases (aws-cdk-lib grant)"
        for fn in functions
    }


# ---- per construct -------------------------------------------------------------------------------------------


def _registry(stack: MlopsStack, *, groups: bool = False) -> dict[str, str]:
    """The stage's model package groups (``<prefix>-<dataset>``, one per declared dataset) and their versions: one
    pattern each, because two ARNs per dataset would outgrow a role's 10,240 characters of inline policies at about
    15 datasets (tests/infrastructure/test_scale.py). A retired dataset's retained group matches as well."""
    prefix = stack.config.prefix
    found = {
        _account_arn("sagemaker", f"model-package/{prefix}-*/*"): "versions of this stage's model package groups "
        f"({prefix}-<dataset>, one per declared dataset) only; one pattern keeps the role under IAM's policy quota"
    }
    if groups:
        found[_account_arn("sagemaker", f"model-package-group/{prefix}-*")] = (
            f"this stage's model package groups ({prefix}-<dataset>, one per declared dataset) only"
        )
    return found


def _uploads(stack: MlopsStack, whose: str) -> dict[str, str]:
    """The raw zone's uploads of each declared dataset (``datasets/<name>/*``): an ETL's input."""
    return {
        finding: reason
        for name, c in stack.dataset_configs.items()
        for finding, reason in _objects(
            stack, stack.lake.raw, f"{c.raw_dataset_prefix}*", f"{whose} input: uploads of the declared dataset {name}"
        ).items()
    }


def _catalog_tables(stack: MlopsStack) -> dict[str, str]:
    database = stack.config.glue_database_name
    return {_account_arn("glue", f"table/{database}/*"): "tables of this stage's database"}


def _data_lake(stack: MlopsStack) -> None:
    lake = stack.lake
    uploads = _uploads(stack, "the job's")
    _ack(
        lake.etl_role,
        {
            **_key("read SSE-KMS raw uploads and write SSE-KMS curated objects"),
            **_reads(
                "the raw zone's uploads of each declared dataset (datasets/<name>/), the curated zone and the job's "
                "two code assets"
            ),
            **_aborts("the curated zone"),
            _iam5("Action::s3:DeleteObject*"): "aws-cdk-lib grant_read_write on the curated zone only: the ETL "
            "replaces its own outputs (splits, quarantine, reports, manifests); the raw zone is never granted delete",
            **uploads,
            **_objects(stack, lake.curated, "*", "the ETL writes curated splits, quarantine, reports and manifests"),
            **_arns(
                stack,
                {
                    **_catalog_tables(stack),
                    _account_arn("logs", "log-group:/aws-glue/*"): "Glue writes job logs to service-named log groups "
                    "under /aws-glue/",
                },
            ),
        },
    )


def _pipeline(stack: MlopsStack) -> None:
    lake, pipeline, config = stack.lake, stack.pipeline, stack.config
    packages = _arns(stack, _registry(stack, groups=True))
    _ack(
        pipeline.sagemaker_role,
        {
            **_key("write SSE-KMS model archives and evaluation reports, and encrypt the job volumes"),
            **_reads("curated splits, models/ and evaluations/ of the artifacts zone, and the source archive"),
            **_aborts("models/ and evaluations/"),
            **_objects(stack, lake.curated, "curated/*", "training and evaluation read the ETL's splits"),
            **_objects(
                stack,
                lake.artifacts,
                "models/*",
                "training writes models/<job>/output/ and reads the champion's archive (its in-job evaluation); the "
                "tuned path's evaluation job reads the challenger and champion archives",
            ),
            **_objects(
                stack,
                lake.artifacts,
                "evaluations/*",
                "evaluation reads prepare's no-champion placeholder "
                "and writes its report under evaluations/<execution>/",
            ),
            **_arns(
                stack,
                {
                    _account_arn("logs", "log-group:/aws/sagemaker/*"): "SageMaker writes job logs to service-named "
                    "log groups under /aws/sagemaker/"
                },
            ),
        },
    )
    _ack(
        _role(pipeline.prepare_fn),
        {
            **_key("write the SSE-KMS no-champion placeholder and a retrain's composed channels"),
            **_reads("the ETL's quality reports and splits under curated/ and the labelled production rows"),
            **_aborts("the no-champion placeholder key and curated/composed/"),
            **_objects(
                stack,
                lake.curated,
                "curated/*",
                "the ETL's quality reports (lineage) and the upload's splits a retrain composes its channels from",
            ),
            **_objects(stack, lake.curated, "production/*", "the labelled production rows a retrain's data plan names"),
            **_objects(
                stack, lake.curated, "curated/composed/*", "a retrain's composed channels (upload + production rows)"
            ),
            **_objects(
                stack,
                lake.artifacts,
                "evaluations/*/no-champion/NO_CHAMPION",
                "only the no-champion placeholder object of its execution (one key per run)",
            ),
            **packages,
        },
    )
    _ack(
        _role(pipeline.register_fn),
        {
            **_key("publish an in-job evaluation's SSE-KMS report and golden payloads under evaluations/"),
            **_reads("evaluation reports under evaluations/ and training jobs' output.tar.gz under models/"),
            **_aborts("evaluations/"),
            **_objects(
                stack,
                lake.artifacts,
                "evaluations/*",
                "evaluation reports (evaluation.json, golden payloads): read, and published from an untuned run's "
                "training job output under evaluations/<execution>/",
            ),
            **_objects(
                stack,
                lake.artifacts,
                "models/*/output/output.tar.gz",
                "only the training jobs' output archives (/opt/ml/output/data: the in-job evaluation's report), "
                "not the model archives beside them",
            ),
            **packages,
        },
    )
    _ack(
        _role(pipeline.start_fn),
        _key(
            "read and write its SSE-KMS idempotency table items and publish the refusal of an undeclared dataset's "
            "upload to the SSE-KMS topic"
        ),
    )
    _ack(
        _role(pipeline.lambda_etl.function),
        {
            **_key("read SSE-KMS raw uploads and write SSE-KMS curated splits, quarantine, reports and manifests"),
            **_reads("the raw zone's uploads of each declared dataset (datasets/<name>/)"),
            **_aborts("curated/, quarantine/ and manifests/ of the curated zone"),
            _iam5("Action::s3:DeleteObject*"): "aws-cdk-lib grant_delete on curated/ of the curated zone only: a rerun "
            "of a version deletes that version's leftover split files; the raw zone is never granted delete",
            **_uploads(stack, "the Lambda ETL's"),
            **_objects(stack, lake.curated, "curated/*", "the ETL writes the version's splits and quality report"),
            **_objects(stack, lake.curated, "quarantine/*", "the ETL quarantines a malformed file or rejected rows"),
            **_objects(stack, lake.curated, "manifests/*", "the ETL publishes manifests/<dataset>/latest.json"),
            **_arns(stack, _catalog_tables(stack)),
        },
    )
    machine = pipeline.state_machine
    _ack(
        machine.role,
        {
            **_key("publish to the SSE-KMS notifications topic", re_encrypt=False),
            **_invoke_versions(
                stack, pipeline.failure_fn, pipeline.prepare_fn, pipeline.register_fn, pipeline.lambda_etl.function
            ),
            **_arns(
                stack,
                {
                    **{
                        _account_arn("sagemaker", f"{kind}-job/{config.prefix}-*"): f"{kind} jobs are named per "
                        "execution under this stage's prefix"
                        for kind in ("training", "processing")
                    },
                    _account_arn("sagemaker", f"hyper-parameter-tuning-job/{config.prefix}-*"): "tuning jobs (a "
                    "dataset with model.tuning) are named per execution under this stage's prefix",
                },
            ),
        },
    )


def _serving(stack: MlopsStack) -> None:
    lake, serving, config = stack.lake, stack.serving, stack.config
    prefixed = {
        kind: _account_arn("sagemaker", f"{kind}/{config.prefix}*")
        for kind in ("endpoint", "endpoint-config", "model", "transform-job")
    }
    packages = _arns(stack, _registry(stack, groups=True))
    rollback_alarms = {
        _account_arn("cloudwatch", f"alarm:{config.prefix}-*-rollback-*"): "the deployment guardrails of every "
        "declared dataset (<prefix>-<dataset>-rollback-<kind>); DescribeAlarms only"
    }
    scalable_target = _account_arn("application-autoscaling", "scalable-target/*")
    target_ids = "scalable target ids are assigned by the service; a condition limits it to the sagemaker namespace"
    _ack(
        serving.endpoint_role,
        {
            **_key("write SSE-KMS captures and transform results, and encrypt the instance volumes"),
            **_reads("model archives under models/ and batch inputs under batch-input/"),
            **_aborts("data-capture/ and batch-output/"),
            **_objects(stack, lake.artifacts, "models/*", "the endpoint reads model.tar.gz files under models/ only"),
            **_objects(stack, lake.artifacts, "data-capture/*", "the endpoint writes captured requests here only"),
            **_objects(stack, lake.raw, "batch-input/*", "the transform job reads batch inputs only"),
            **_objects(stack, lake.curated, "batch-output/*", "the transform job writes results under this prefix"),
            **_arns(
                stack,
                {
                    _account_arn("logs", "log-group:/aws/sagemaker/*"): "SageMaker writes endpoint/transform logs to "
                    "service-named log groups under /aws/sagemaker/",
                    **rollback_alarms,
                },
            ),
        },
    )
    _ack(
        _role(serving.deploy_fn),
        {
            **_reads(
                "captured traffic (shadow comparison), evaluation reports (golden payloads) and A/B experiment records"
            ),
            **_key("write the SSE-KMS record of an A/B experiment it starts"),
            **_aborts("monitoring/experiments/"),
            **_objects(stack, lake.artifacts, "data-capture/*", "captured requests of the shadow comparison"),
            **_objects(stack, lake.artifacts, "evaluations/*", "golden payloads: the task of the shadow comparison"),
            **_objects(
                stack, lake.artifacts, "monitoring/experiments/*", "A/B experiment records (one per experiment config)"
            ),
            **_arns(
                stack,
                {
                    prefixed["endpoint"]: "the datasets' endpoints, named under this stage's prefix",
                    prefixed["endpoint-config"]: "endpoint configs are created per deployment under the prefix",
                    prefixed["model"]: "models are created per deployment under this stage's prefix",
                    scalable_target: target_ids,
                    _account_arn("cloudwatch", f"alarm:TargetTracking-endpoint/{config.prefix}-*/variant/*"): (
                        "the target tracking alarms Application Auto Scaling creates for the variants of the "
                        "stage's endpoints (<prefix>-<dataset>)"
                    ),
                    **rollback_alarms,
                },
            ),
            **packages,
        },
    )
    _ack(
        serving.deployment.role,
        {
            **_key("publish to the SSE-KMS notifications topic", re_encrypt=False),
            **_invoke_versions(stack, serving.deploy_fn),
        },
    )
    _ack(
        _role(serving.cleanup_fn),
        _arns(
            stack,
            {
                prefixed["endpoint"]: "deletes the endpoints the pipeline created under this stage's prefix",
                prefixed["endpoint-config"]: "deletes the endpoint configs the pipeline created under the prefix",
                prefixed["model"]: "deletes the models the pipeline created under this stage's prefix",
                scalable_target: target_ids,
            },
        ),
    )
    _ack(
        _role(serving.batch_fn),
        {
            **_key("read and write its SSE-KMS idempotency table items"),
            **_arns(
                stack,
                {
                    prefixed["transform-job"]: "batch transform jobs are named per upload under this stage's prefix",
                    prefixed["model"]: "the batch model is created per job under this stage's prefix",
                },
            ),
            **packages,
        },
    )
    cleanup_provider = serving.node.find_child("CleanupProvider")
    _ack(cleanup_provider, _invoke_versions(stack, serving.cleanup_fn))


def _experiments(stack: MlopsStack) -> None:
    """The A/B experiment evaluator (built when a declared dataset is served with AB)."""
    if stack.experiments is None:
        return
    lake, config = stack.lake, stack.config
    _ack(
        _role(stack.experiments.function),
        {
            **_key("write SSE-KMS experiment records and reports and publish to the SSE-KMS topic"),
            **_reads("the ground-truth Lambda's joined labels and the A/B experiment records"),
            **_aborts("monitoring/experiments/"),
            **_objects(stack, lake.artifacts, "monitoring/quality/*", "joined labels: the outcomes per variant"),
            **_objects(stack, lake.artifacts, "monitoring/experiments/*", "experiment records and reports"),
            **_arns(
                stack,
                {
                    _account_arn("sagemaker", f"endpoint/{config.prefix}-*"): "the datasets' endpoints "
                    "(<prefix>-<dataset>): which config runs, and the update to the winner's config",
                    _account_arn("sagemaker", f"endpoint-config/{config.prefix}-*"): "the winner's single-variant "
                    "config, created by the deploy Lambda under this stage's prefix",
                    **_registry(stack),
                },
            ),
        },
    )


def _monitoring(stack: MlopsStack) -> None:
    lake, monitoring, config = stack.lake, stack.monitoring, stack.config
    _ack(
        _role(monitoring.drift_fn),
        {
            **_key("write its SSE-KMS reports and watermark"),
            **_reads(
                "captured traffic, its own reports, dataset manifests, the ETL's quality reports and the evaluation "
                "reports (the model's output baseline)"
            ),
            **_aborts("monitoring/drift/"),
            **_objects(stack, lake.artifacts, "data-capture/*", "the captured requests it measures"),
            **_objects(stack, lake.artifacts, "monitoring/drift/*", "its reports and capture watermark"),
            **_objects(stack, lake.artifacts, "evaluations/*", "the answering model's output baseline"),
            **_objects(stack, lake.curated, "manifests/*", "dataset manifests (the baseline's version)"),
            **_objects(stack, lake.curated, "curated/*", "the ETL's quality reports (the baseline histograms)"),
            **_arns(stack, _registry(stack, groups=True)),
        },
    )
    _ack(
        _role(monitoring.ground_truth_fn),
        {
            **_key("write SSE-KMS joined labels and labelled production rows, read/write its idempotency records"),
            **_reads("uploaded labels and captured predictions"),
            **_aborts("monitoring/quality/, production/ and the production quarantine"),
            **_objects(stack, lake.raw, "ground-truth/*", "labels uploaded by users"),
            **_objects(stack, lake.artifacts, "data-capture/*", "captured predictions to join with the labels"),
            **_objects(stack, lake.artifacts, "monitoring/quality/*", "joined labels and quality summaries"),
            **_objects(stack, lake.curated, "production/*", "labelled production rows, one object per batch and hour"),
            **_objects(
                stack,
                lake.curated,
                "quarantine/dataset=*/production/*",
                "labelled production rows that failed their dataset's rules, one object per label file version "
                "(any declared dataset: one statement instead of one per dataset)",
            ),
        },
    )
    _ack(
        _role(monitoring.retrain_fn),
        {
            **_key("read and write its SSE-KMS guard table items and publish to the SSE-KMS topic"),
            **_reads("the dataset manifests and the labelled production rows"),
            **_objects(stack, lake.curated, "manifests/*", "the latest dataset manifest (which data to retrain on)"),
            **_objects(
                stack, lake.curated, "production/*", "the labelled production rows its data policy counts (the plan)"
            ),
            **_arns(
                stack,
                {
                    _account_arn("states", f"execution:{config.state_machine_name}:*"): "DescribeExecution of the "
                    "training state machine's running executions: which dataset each one trains (the guard's "
                    "running check is per dataset)"
                },
            ),
        },
    )


def _framework(stack: MlopsStack) -> None:
    """aws-cdk-lib's own framework functions."""
    basic_execution = (
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]"
    )
    why = (
        "aws-cdk-lib's {what}: the managed policy grants log writes only; our own functions use roles scoped to "
        "their own log group (stacks/constructs/lambda_factory.py)"
    )
    _ack_framework(stack, basic_execution, why)
    for fn in stack.node.find_all():
        if isinstance(fn, cdk.aws_lambda.Function) and fn.runtime.name.startswith("python3.13"):
            _ack(
                fn,
                {
                    "AwsSolutions-L1": "python3.13 on purpose: the newest runtime for which both public layers this "
                    "stack uses (Powertools 3.37.0 and AWS SDK for pandas 3.17.1) are published"
                },
            )


def _network(stack: MlopsStack) -> None:
    """A private stage: the roles that create network interfaces in the VPC (stacks/constructs/network.py)."""
    if stack.network is None:
        return
    reason = (
        "the network interfaces this role's service creates in the VPC get their ids only when created: "
        "ec2:CreateNetworkInterface (also scoped to the VPC's subnets and security group) and the actions on the "
        "interface it created need network-interface/* (EC2's resource type for an interface has no name to match)"
    )
    for role in stack.network.granted:
        _ack(role, _arns(stack, {_account_arn("ec2", "network-interface/*"): reason}))
    vpc_access = (
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]"
    )
    why = (
        "aws-cdk-lib's {what} in the VPC: the managed policy grants the network-interface actions Lambda needs to "
        "attach a function to it (AWS Lambda Developer Guide, 'Giving Lambda functions access to resources in an "
        "Amazon VPC'); our own functions' roles hold the same actions scoped (stacks/constructs/network.py)"
    )
    _ack_framework(stack, vpc_access, why)


def _ack_framework(stack: MlopsStack, finding: str, why: str) -> None:
    """``finding`` on both aws-cdk-lib framework functions' constructs, ``why`` formatted with what each is."""
    _ack(
        stack.node.find_child(BUCKET_NOTIFICATIONS_HANDLER),
        {finding: why.format(what="BucketNotificationsHandler (turns on EventBridge delivery of the buckets)")},
    )
    _ack(
        stack.serving.node.find_child("CleanupProvider"),
        {finding: why.format(what="custom-resource Provider onEvent function")},
    )


def _promotion(stack: MlopsStack) -> None:
    """The role ``mlops promote`` assumes from the source stage's account (only when the accounts differ; both are
    configured, so the partition, region and account are concrete in the ARNs cdk-nag reports)."""
    if stack.promotion is None:
        return
    account, region = stack.config.account, stack.config.region
    packages = [
        f"arn:{stack.partition}:sagemaker:{region}:{account}:model-package/{c.model_package_group_name}/*"
        for c in stack.dataset_configs.values()
    ]
    _ack(stack.promotion.role, stack.promotion.acknowledgments(_ref(stack, stack.lake.artifacts), packages))
