"""Data lake: raw / curated / artifacts zones, access logs, the Glue catalog and the ETL job."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pipelines.platform import (
    DATA_CAPTURE_PREFIX,
    MONITORING_PREFIX,
    PRODUCTION_PREFIX,
    QUARANTINE_PREFIX,
    production_prefix,
    production_quarantine_prefix,
)
from stacks.config import NONCURRENT_DAYS_AFTER_RETENTION, RetentionSettings, StageConfig
from stacks.constructs.assets import ROOT, Generated, asset_hash, bundling_options
from stacks.glue_wheels import LockedWheel, locked_wheels

if TYPE_CHECKING:
    from stacks.constructs.network import Network

# Prefixes of the zones; those a user writes to or the per-dataset code reads (datasets/, ground-truth/,
# batch-input/, data-capture/, monitoring/, manifests/) are defined in pipelines/platform.py
CURATED_PREFIX = "curated/"
REPORTS_PREFIX = "reports/"
MODELS_PREFIX = "models/"
BATCH_OUTPUT_PREFIX = "batch-output/"
EVALUATIONS_PREFIX = "evaluations/"
DRIVER_CATALOG_ACTIONS = (
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:CreateTable",
    "glue:UpdateTable",
    "glue:CreatePartition",
    "glue:UpdatePartition",
)
"""The catalog calls of an ETL run's driver (``pipelines.etl.driver.register_table``), whichever engine runs it."""
QUALITY_PREFIX = f"{MONITORING_PREFIX}quality/"  # the ground-truth Lambda's joined labels, per dataset
# The ETL's third-party modules, installed on the Glue workers at the versions the tests ran (pyproject.toml); the
# job installs them, with their dependencies, from the wheels of requirements-glue.lock (stacks/glue_wheels.py)
ETL_PYTHON_MODULES = ("pandas", "pyarrow", "numpy")


RETENTION_KINDS: dict[str, tuple[str, str | None, Callable[[RetentionSettings], int]]] = {
    "data-capture": ("artifacts", DATA_CAPTURE_PREFIX, lambda r: r.capture_days),
    "joined-labels": ("artifacts", QUALITY_PREFIX, lambda r: r.labels_days),
    "production-rows": ("curated", PRODUCTION_PREFIX, lambda r: r.production_days),
    "quarantined-production-rows": ("curated", None, lambda r: r.production_days),
}
"""The production data a dataset's ``retention`` keeps: kind -> (zone, the kind's root prefix, its days). The
quarantined production rows have no root of their own (``quarantine/`` also holds the uploads' rejected rows, kept
as the uploads are): no backstop."""


def retention_prefixes(dataset: StageConfig) -> list[tuple[str, str, int]]:
    """(kind, prefix, days) of one dataset (``StageConfig.for_dataset``'s result): its captured requests
    (``data-capture/<endpoint>/``), joined labels (``monitoring/quality/<dataset>/``), labelled production rows
    (``production/<dataset>/``) and those that failed its rules (``quarantine/dataset=<dataset>/production/``).
    Every prefix ends with ``/``, so no dataset's rule reaches another's data (``churn/`` is not a prefix of
    ``churn-2/``)."""
    retention = dataset.retention
    return [
        ("data-capture", dataset.data_capture_prefix, retention.capture_days),
        ("joined-labels", dataset.quality_prefix, retention.labels_days),
        ("production-rows", production_prefix(dataset.dataset.name), retention.production_days),
        ("quarantined-production-rows", production_quarantine_prefix(dataset.dataset.name), retention.production_days),
    ]


class DataLake(Construct):
    """S3 zones encrypted with one customer-managed key, retained on stack deletion; the catalog and the one ETL
    job every declared dataset runs (``--dataset <name>``; its schema and rules come from the platform document in
    the job's library zip)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        datasets: Sequence[StageConfig],
        generated: Generated,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.datasets = tuple(datasets)
        self._generated = dict(generated)
        self.key = kms.Key(
            self,
            "DataKey",
            alias=f"alias/{config.prefix}-data",
            description=f"{config.prefix}: data lake, model artifacts, notifications, pipeline state",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        # Server access logs cannot be delivered to a KMS-encrypted bucket: SSE-S3 here.
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=cdk.Duration.days(365),
                    noncurrent_version_expiration=cdk.Duration.days(30),
                )
            ],
        )
        self.raw = self._zone("Raw", event_bridge=True)
        self.curated = self._zone(
            "Curated",
            extra_rules=[
                s3.LifecycleRule(
                    id="quarantine-to-infrequent-access",
                    prefix=QUARANTINE_PREFIX,
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                            transition_after=cdk.Duration.days(30),
                        )
                    ],
                ),
                *self._retention("curated"),
            ],
        )
        self.artifacts = self._zone("Artifacts", event_bridge=True, extra_rules=self._retention("artifacts"))

        # ---- Glue Data Catalog and the ETL job ----
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=cdk.Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=config.glue_database_name,
                description=f"{config.prefix}: curated datasets (one table per dataset)",
            ),
        )
        self.security_configuration = glue.CfnSecurityConfiguration(
            self,
            "SecurityConfiguration",
            name=f"{config.prefix}-glue-kms",
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                s3_encryptions=[
                    glue.CfnSecurityConfiguration.S3EncryptionProperty(
                        s3_encryption_mode="SSE-KMS", kms_key_arn=self.key.key_arn
                    )
                ],
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=self.key.key_arn
                ),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=self.key.key_arn
                ),
            ),
        )
        self._allow_encrypted_logs(config)
        self._etl_job(config)

    # ------------------------------------------------------------------
    def _retention(self, zone: str) -> list[s3.LifecycleRule]:
        """The lifecycle rules of ``zone`` that keep each dataset's production data its ``retention`` days
        (``retention_prefixes``), and a backstop per kind for a prefix of no declared dataset (a removed
        declaration's data): the longest retention of the stage and its datasets, so it never cuts a dataset
        short (of two overlapping expirations S3 applies the shorter: Amazon S3 User Guide, "How Amazon S3 handles
        conflicts in lifecycle configurations"). An expired object's version is deleted
        ``NONCURRENT_DAYS_AFTER_RETENTION`` days later."""
        rules = []
        for kind, (where, root, days_of) in RETENTION_KINDS.items():
            if where != zone or root is None:
                continue
            longest = max(days_of(c.retention) for c in (self.config, *self.datasets))
            rules.append(s3.LifecycleRule(id=f"expire-{kind}", prefix=root, expiration=cdk.Duration.days(longest)))
        for dataset in self.datasets:
            for kind, prefix, days in retention_prefixes(dataset):
                if RETENTION_KINDS[kind][0] != zone:
                    continue
                rules.append(
                    s3.LifecycleRule(
                        id=f"retain-{kind}-{dataset.dataset.name}",
                        prefix=prefix,
                        expiration=cdk.Duration.days(days),
                        noncurrent_version_expiration=cdk.Duration.days(NONCURRENT_DAYS_AFTER_RETENTION),
                    )
                )
        return rules

    def _zone(
        self, name: str, *, event_bridge: bool = False, extra_rules: list[s3.LifecycleRule] | None = None
    ) -> s3.Bucket:
        return s3.Bucket(
            self,
            name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            event_bridge_enabled=event_bridge,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{name.lower()}/",
            removal_policy=cdk.RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-versions",
                    noncurrent_version_expiration=cdk.Duration.days(self.config.noncurrent_version_days),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                ),
                *(extra_rules or []),
            ],
        )

    def _allow_encrypted_logs(self, config: StageConfig) -> None:
        """Every log group of the stack is encrypted with the data key, which CloudWatch Logs uses as itself: the
        key policy must allow ``logs.<region>.amazonaws.com``, and the ``kms:EncryptionContext:aws:logs:arn``
        condition scopes it to named log groups (CloudWatch Logs User Guide, "Encrypt log data in CloudWatch Logs
        using AWS KMS", https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html).
        The groups, by name pattern (a log group's ARN in the key policy would make the key depend on the groups
        that depend on it):

        - Glue's job logs with the security configuration: "Any ETL job or crawler that writes encrypted Amazon
          CloudWatch Logs requires the following permissions in the key policy (not IAM policy)" (AWS Glue
          Developer Guide, "Setting up AWS Glue to use security configurations"); Glue writes to per-configuration
          groups, ``/aws-glue/jobs/<configuration>-role/<role>/...`` as seen in accounts,
          ``/aws-glue/jobs-<role>-<configuration>/`` as the Glue API reference (JobRun LogGroupName) words it;
          ``/aws-glue/*`` covers both and nothing outside Glue;
        - the state machines' vended log groups, ``/aws/vendedlogs/states/<prefix>-*``;
        - the log groups CloudFormation names (the Lambdas' and the cleanup provider's): a resource without a name
          gets ``<stack name>-<logical id>-<suffix>``."""
        stack = cdk.Stack.of(self)
        patterns = ("/aws-glue/*", f"/aws/vendedlogs/states/{config.prefix}-*", f"{config.stack_name}-*")
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{config.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": [
                            stack.format_arn(
                                service="logs",
                                resource="log-group",
                                resource_name=pattern,
                                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                            )
                            for pattern in patterns
                        ]
                    }
                },
            )
        )

    def _etl_job(self, config: StageConfig) -> None:
        scripts = cdk.aws_s3_assets.Asset(
            self,
            "EtlScript",
            path=str(ROOT / "pipelines" / "etl" / "glue_job.py"),
        )
        libraries = cdk.aws_s3_assets.Asset(
            self,
            "EtlLibraries",
            path=str(ROOT / "pipelines"),
            asset_hash=asset_hash(("pipelines",), self._generated),
            asset_hash_type=cdk.AssetHashType.CUSTOM,
            bundling=bundling_options(("pipelines",), archive_name="pipelines.zip", generated=self._generated),
        )
        self.etl_role = iam.Role(
            self,
            "EtlRole",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description="Glue ETL: read raw, write curated/quarantine/reports, update the catalog",
        )
        for dataset in self.datasets:  # its input: the uploads of each declared dataset, not the whole raw zone
            self.raw.grant_read(self.etl_role, f"{dataset.raw_dataset_prefix}*")
        self.curated.grant_read_write(self.etl_role)
        # the job's own script and library archive, not every object of the CDK asset bucket
        for asset in (scripts, libraries):
            asset.bucket.grant_read(self.etl_role, asset.s3_object_key)
        modules = self._python_modules()
        self.key.grant_encrypt_decrypt(self.etl_role)
        # the driver's calls, and what Spark's catalog integration may read or batch
        self.grant_catalog_write(self.etl_role, "glue:GetPartition", "glue:GetPartitions", "glue:BatchCreatePartition")
        self.etl_role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:AssociateKmsKey",
                ],
                resources=[
                    cdk.Stack.of(self).format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="/aws-glue/*",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        # --enable-metrics / --enable-observability-metrics: the job publishes its metrics in the "Glue" namespace
        # with this role (PutMetricData has no resource type; the namespace condition scopes it)
        self.etl_role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
            )
        )
        self.etl_job = glue.CfnJob(
            self,
            "EtlJob",
            name=config.glue_job_name,
            description="Validate, clean, split and catalogue one raw upload of a declared dataset (--dataset; "
            "pipelines/etl/glue_job.py)",
            role=self.etl_role.role_arn,
            glue_version="5.0",
            worker_type=config.glue.worker_type,
            number_of_workers=config.glue.workers,
            timeout=config.glue.timeout_minutes,
            max_retries=config.glue.max_retries,
            security_configuration=self.security_configuration.name,
            execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=5),
            command=glue.CfnJob.JobCommandProperty(
                name="glueetl", python_version="3", script_location=scripts.s3_object_url
            ),
            default_arguments={
                "--extra-py-files": libraries.s3_object_url,
                "--additional-python-modules": ",".join(modules),
                "--python-modules-installer-option": "--no-index",
                "--job-language": "python",
                "--enable-metrics": "true",
                "--enable-continuous-cloudwatch-log": "true",
                "--enable-observability-metrics": "true",
                "--curated_bucket": self.curated.bucket_name,
                "--database": config.glue_database_name,
            },
        )
        self.etl_job.node.add_dependency(self.security_configuration)

    def grant_catalog_write(self, grantee: iam.IGrantable, *extra_actions: str) -> None:
        """What an ETL run calls in the Glue Data Catalog (``pipelines.etl.driver.register_table``), and
        ``extra_actions``: on the stage's database and its tables (create or update the dataset's table, add or
        replace a version's partitions)."""
        stack = cdk.Stack.of(self)
        database = self.config.glue_database_name
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[*DRIVER_CATALOG_ACTIONS, *extra_actions],
                resources=[
                    stack.format_arn(service="glue", resource="catalog"),
                    stack.format_arn(service="glue", resource="database", resource_name=database),
                    stack.format_arn(service="glue", resource="table", resource_name=f"{database}/*"),
                ],
            )
        )

    def _python_modules(self) -> list[str]:
        """The job's modules: each wheel of ``requirements-glue.lock`` published as a file asset whose S3 key is
        the wheel's own file name (pip reads a wheel's name, version and tags from its file name, so a
        content-hash key would not install; a PyPI file name is never reused for other content, and the lock
        pins its sha256), in the bootstrap assets bucket beside the job's script. The role may read exactly
        those objects. Refuses a lock whose pandas / pyarrow / numpy are not the pyproject.toml pins the tests
        ran."""
        wheels = locked_wheels()
        shipped = {wheel.name: f"{wheel.name}=={wheel.version}" for wheel in wheels}
        expected = pinned_requirements(ETL_PYTHON_MODULES)
        if [shipped.get(name) for name in ETL_PYTHON_MODULES] != expected:
            raise ValueError(f"requirements-glue.lock ships {shipped}, pyproject.toml pins {expected}")
        stack = cdk.Stack.of(self)
        urls, objects = [], []
        for wheel in wheels:
            location = self._publish(stack, wheel)
            urls.append(location.s3_object_url)
            objects.append(f"arn:{cdk.Aws.PARTITION}:s3:::{location.bucket_name}/{location.object_key}")
        self.etl_role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=objects))
        return urls

    @staticmethod
    def _publish(stack: cdk.Stack, wheel: LockedWheel) -> cdk.FileAssetLocation:
        """One wheel as a file asset, staged into the cloud assembly like any CDK asset (``asset.<wheel>.whl``
        beside the template, hard-linked when the file system allows), so the assembly is self-contained: the
        asset publisher reads it from ``cdk.out``, wherever that directory was synthesized."""
        outdir = Path(cdk.Stage.of(stack).asset_outdir)  # type: ignore[union-attr]
        staged = outdir / f"asset.{wheel.path.name}"
        if not staged.exists() or staged.stat().st_size != wheel.path.stat().st_size:
            staged.unlink(missing_ok=True)
            outdir.mkdir(parents=True, exist_ok=True)
            try:
                os.link(wheel.path, staged)
            except OSError:  # another file system, or links not allowed
                shutil.copyfile(wheel.path, staged)
        return stack.synthesizer.add_file_asset(
            source_hash=wheel.stem, file_name=staged.name, packaging=cdk.FileAssetPackaging.FILE
        )

    @property
    def installs_from_pypi(self) -> bool:
        """The job installs modules from the package index at start: ``--additional-python-modules`` names a
        requirement rather than an S3 wheel, or pip may look its wheels' dependencies up (no ``--no-index``). It
        then needs a route to the internet, so it cannot run in an isolated subnet."""
        arguments = self.etl_job.default_arguments
        stack = cdk.Stack.of(self)

        def text(value: str) -> str:  # an asset's URL is a token: its resolved Fn::Sub string
            resolved = stack.resolve(value)
            return str(resolved["Fn::Sub"]) if isinstance(resolved, dict) and "Fn::Sub" in resolved else str(resolved)

        modules = [text(m) for m in str(arguments.get("--additional-python-modules", "")).split(",") if m]  # type: ignore[union-attr]
        options = str(arguments.get("--python-modules-installer-option", "")).split()  # type: ignore[union-attr]
        return bool(modules) and (any(not m.startswith("s3://") for m in modules) or "--no-index" not in options)

    def run_in(self, network: Network) -> None:
        """Runs the ETL job in the VPC: a Glue ``NETWORK`` connection on the first isolated subnet (a job runs its
        workers in one subnet) with the Glue group, named in the job's ``Connections``. The role gets what Glue
        does with it (the ec2 actions of the AWS managed AWSGlueServiceRole: it creates and tags the workers'
        network interfaces and reads the VPC's endpoints and route tables to check S3 is reachable: ``grant_glue``)."""
        subnet = network.vpc.isolated_subnets[0]
        self.etl_connection = glue.CfnConnection(
            self,
            "EtlConnection",
            catalog_id=cdk.Aws.ACCOUNT_ID,
            connection_input=glue.CfnConnection.ConnectionInputProperty(
                name=f"{self.config.prefix}-etl-network",
                description="The ETL job's workers in the stage's isolated subnet",
                connection_type="NETWORK",
                physical_connection_requirements=glue.CfnConnection.PhysicalConnectionRequirementsProperty(
                    availability_zone=subnet.availability_zone,
                    subnet_id=subnet.subnet_id,
                    security_group_id_list=[network.glue_group.security_group_id],
                ),
            ),
        )
        self.etl_job.connections = glue.CfnJob.ConnectionsListProperty(connections=[self.etl_connection.ref])
        network.grant_glue(self.etl_role, subnet.subnet_id)


def pinned_requirements(names: tuple[str, ...]) -> list[str]:
    """``name==version`` of each of ``names`` exactly as pyproject.toml pins it (one source of versions)."""
    import tomllib

    with (ROOT / "pyproject.toml").open("rb") as handle:
        dependencies = tomllib.load(handle)["project"]["dependencies"]
    pins = {}
    for requirement in dependencies:
        name, separator, version = requirement.partition("==")
        if separator:
            pins[name.split("[")[0].strip().lower()] = version.strip()
    missing = [name for name in names if name not in pins]
    if missing:
        raise ValueError(f"pyproject.toml pins no exact version of {missing}")
    return [f"{name}=={pins[name]}" for name in names]
