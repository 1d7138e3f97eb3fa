"""The Lambda ETL of small uploads: the Glue job's driver and transforms (``pipelines/etl/driver.py``) in one
function, for uploads of at most ``etl.lambda_max_bytes`` (``stacks/config.py``); the training state machine's
``EtlEngine`` Choice sends larger ones to the Glue job (``DataLake``).

Packaging: the shared Lambda code asset (``LAMBDA_PACKAGES``: the driver and transforms are pure Python) on the
Powertools layer and the AWS SDK for pandas layer (numpy, pandas, pyarrow), as the other pandas functions. A
function's code and layers together must stay within 250 MB unzipped ("Lambda quotas"): the SDK for pandas layer
is built to fit that quota on its own with room for a function's code, the Powertools layer is a few MB and our
asset well under 1 MB; CDK does not check it, Lambda refuses a larger function at create.

Its role may read the declared datasets' uploads (every version: ``s3:GetObjectVersion``), write what a run writes
in the curated bucket (``curated/`` splits, whose leftovers of an earlier run of the same version it deletes,
``quarantine/``, ``manifests/``), list that bucket (the leftovers), use the data key those objects are encrypted
with, and make the driver's catalog calls (``DataLake.grant_catalog_write``). Nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from pipelines.platform import MANIFESTS_PREFIX, QUARANTINE_PREFIX
from stacks.config import StageConfig
from stacks.constructs.data_lake import CURATED_PREFIX, DataLake
from stacks.constructs.lambda_factory import LambdaFactory

FUNCTION_ID = "RunEtlInLambda"


class LambdaEtl(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        datasets: Sequence[StageConfig],
        lake: DataLake,
        lambdas: LambdaFactory,
    ) -> None:
        super().__init__(scope, construct_id)
        settings = config.etl
        self.max_bytes = settings.lambda_max_bytes
        self.function: lambda_.Function = lambdas.function(
            self,
            FUNCTION_ID,
            handler="etl.handler.handler",
            description="ETL of a small upload (the Glue job's driver and transforms in one process)",
            environment={
                "CURATED_BUCKET": lake.curated.bucket_name,
                "GLUE_DATABASE": config.glue_database_name,
                "ETL_MAX_BYTES": str(settings.lambda_max_bytes),
            },
            with_pandas=True,
            memory_mb=settings.lambda_memory_mb,
            timeout=cdk.Duration.seconds(settings.lambda_timeout_seconds),
        )
        fn = self.function
        for dataset in datasets:  # its input: the uploads of each declared dataset, not the whole raw zone
            lake.raw.grant_read(fn, f"{dataset.raw_dataset_prefix}*")
        for prefix in (CURATED_PREFIX, QUARANTINE_PREFIX, MANIFESTS_PREFIX):
            lake.curated.grant_put(fn, f"{prefix}*")
        lake.curated.grant_delete(fn, f"{CURATED_PREFIX}*")  # a rerun's leftover split files of its version
        fn.add_to_role_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[lake.curated.bucket_arn]))
        lake.key.grant_encrypt_decrypt(fn)
        lake.grant_catalog_write(fn)
