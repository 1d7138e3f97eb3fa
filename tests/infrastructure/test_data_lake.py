"""Data lake: encrypted, versioned, private, TLS-only, logged, retained zones; Glue catalog and ETL job."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from tests.infrastructure.helpers import of_type


def _data_buckets(resources: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in of_type(resources, "AWS::S3::Bucket").items()
        if k.startswith(("DataLakeRaw", "DataLakeCurated", "DataLakeArtifacts"))
    }


def test_zones_are_kms_encrypted_versioned_private_logged_and_retained(resources: dict[str, Any]) -> None:
    # Given the synthesized data lake
    buckets = _data_buckets(resources)
    # Then there are exactly the three zones
    assert len(buckets) == 3
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms", name
        assert "KMSMasterKeyID" in sse["ServerSideEncryptionByDefault"], name
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, name
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, name
        assert props["LoggingConfiguration"]["DestinationBucketName"]["Ref"].startswith("DataLakeAccessLogs")
        assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain", name
        rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
        assert rules["expire-old-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 90


def test_every_bucket_denies_plain_http(resources: dict[str, Any]) -> None:
    policies = of_type(resources, "AWS::S3::BucketPolicy")
    buckets = of_type(resources, "AWS::S3::Bucket")
    covered = set()
    for policy in policies.values():
        for stmt in policy["Properties"]["PolicyDocument"]["Statement"]:
            if stmt.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}:
                assert stmt["Effect"] == "Deny"
                covered.add(policy["Properties"]["Bucket"]["Ref"])
    assert covered == set(buckets)


def test_access_log_bucket_uses_sse_s3(resources: dict[str, Any]) -> None:
    (logs,) = [v for k, v in of_type(resources, "AWS::S3::Bucket").items() if k.startswith("DataLakeAccessLogs")]
    sse = logs["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_raw_and_artifacts_zones_send_events_to_eventbridge(resources: dict[str, Any]) -> None:
    notifications = of_type(resources, "Custom::S3BucketNotifications")
    targets = {v["Properties"]["BucketName"]["Ref"].split("DataLake")[1][:3] for v in notifications.values()}
    assert targets == {"Raw", "Art"}
    for v in notifications.values():
        assert v["Properties"]["NotificationConfiguration"] == {"EventBridgeConfiguration": {}}


def test_kms_key_rotates_and_is_retained(resources: dict[str, Any]) -> None:
    (key,) = of_type(resources, "AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"


def test_glue_job_is_spark_5_with_kms_security_configuration(resources: dict[str, Any], config: Any) -> None:
    (job,) = of_type(resources, "AWS::Glue::Job").values()
    props = job["Properties"]
    assert props["GlueVersion"] == "5.0"
    assert props["Command"]["Name"] == "glueetl"
    assert props["Name"] == config.glue_job_name
    (sec,) = of_type(resources, "AWS::Glue::SecurityConfiguration").values()
    assert props["SecurityConfiguration"] == sec["Properties"]["Name"]
    enc = sec["Properties"]["EncryptionConfiguration"]
    assert enc["S3Encryptions"][0]["S3EncryptionMode"] == "SSE-KMS"
    assert enc["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    assert enc["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"
    # One job for every dataset: no schema, table or rules among its arguments (each run names its --dataset, and
    # the schema comes from the platform document in its library zip)
    args = props["DefaultArguments"]
    assert not {"--schema_json", "--quality_json", "--table", "--dataset"} & set(args), sorted(args)
    assert args["--database"] == config.glue_database_name
    (db,) = of_type(resources, "AWS::Glue::Database").values()
    assert db["Properties"]["DatabaseInput"]["Name"] == config.glue_database_name


def test_glue_job_installs_the_etl_modules_at_the_tested_versions(resources: dict[str, Any]) -> None:
    # Given the versions the tests ran with (pyproject.toml pins)
    with (Path(__file__).resolve().parents[2] / "pyproject.toml").open("rb") as handle:
        pins = {
            dep.split("==")[0]: dep.split("==")[1]
            for dep in tomllib.load(handle)["project"]["dependencies"]
            if "==" in dep
        }
    # When / Then the Glue job installs exactly those
    (job,) = of_type(resources, "AWS::Glue::Job").values()
    modules = job["Properties"]["DefaultArguments"]["--additional-python-modules"].split(",")
    assert modules == [f"{name}=={pins[name]}" for name in ("pandas", "pyarrow", "numpy")]
