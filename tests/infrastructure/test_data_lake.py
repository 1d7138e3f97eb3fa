"""Data lake: encrypted, versioned, private, TLS-only, logged, retained zones; Glue catalog and ETL job."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from localcloud.runtime.glue_modules import glue_installs
from stacks.config import NONCURRENT_DAYS_AFTER_RETENTION, RetentionSettings, load_config
from stacks.datasets import load_declarations
from stacks.glue_wheels import locked_wheels
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


def _text(value: Any) -> str:
    """A module URL of the template: its Fn::Sub string (the assets bucket is named per account)."""
    return str(value["Fn::Sub"]) if isinstance(value, dict) else str(value)


def _modules(job: dict[str, Any]) -> list[str]:
    joined = job["Properties"]["DefaultArguments"]["--additional-python-modules"]["Fn::Join"]
    assert joined[0] == ""
    return [_text(part) for part in joined[1] if part != ","]


def test_glue_job_installs_the_locked_wheels_from_s3_without_an_index(resources: dict[str, Any]) -> None:
    # Given the versions the tests ran with (pyproject.toml pins) and the lock of the job's wheels
    with (Path(__file__).resolve().parents[2] / "pyproject.toml").open("rb") as handle:
        pins = {
            dep.split("==")[0]: dep.split("==")[1]
            for dep in tomllib.load(handle)["project"]["dependencies"]
            if "==" in dep
        }
    wheels = locked_wheels()
    # When the job's modules are read
    (job,) = of_type(resources, "AWS::Glue::Job").values()
    modules = _modules(job)
    # Then each is one locked wheel in the assets bucket under its own file name, installed without an index
    assert [m.rsplit("/", 1)[1] for m in modules] == [w.path.name for w in wheels]
    assert all(m.startswith("s3://cdk-hnb659fds-assets-${AWS::AccountId}-") for m in modules), modules
    assert job["Properties"]["DefaultArguments"]["--python-modules-installer-option"] == "--no-index"
    # and pandas, pyarrow and numpy are the tested versions, with their dependencies beside them
    shipped = {w.name: w.version for w in wheels}
    assert {name: shipped[name] for name in ("pandas", "pyarrow", "numpy")} == {
        name: pins[name] for name in ("pandas", "pyarrow", "numpy")
    }
    assert {"python-dateutil", "pytz", "tzdata", "six"} <= set(shipped)
    # and every wheel is one Glue 5.0 installs (CPython 3.11, glibc 2.34, x86_64)
    assert all(glue_installs(w.path.name) for w in wheels), [w.path.name for w in wheels]


def test_glue_role_reads_exactly_the_wheels(resources: dict[str, Any]) -> None:
    # Given the ETL role's policy
    (policy,) = [p for name, p in of_type(resources, "AWS::IAM::Policy").items() if name.startswith("DataLakeEtlRole")]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    # When the statement that reads the wheels is found
    (wheels,) = [s for s in statements if s["Action"] == "s3:GetObject"]
    objects = sorted(str(resource["Fn::Join"][1][-1]).lstrip("/") for resource in wheels["Resource"])
    # Then it names each wheel's object and nothing else
    assert objects == sorted(w.path.name for w in locked_wheels())
    assert all("*" not in name for name in objects)


def test_the_wheels_are_staged_in_the_cloud_assembly(stack: Any) -> None:
    # Given the synthesized dev assembly and its asset manifest
    outdir = Path(cdk.Stage.of(stack).outdir)
    manifest = json.loads((outdir / f"{stack.stack_name}.assets.json").read_text())
    # When the wheels' file assets are read
    sources = {a["source"]["path"]: a for a in manifest["files"].values() if a["source"]["path"].endswith(".whl")}
    # Then each names a file inside the assembly (relative, so `cdk deploy --app cdk.out` works from any machine),
    # with the locked wheel's content, published under the wheel's own file name
    wheels = {f"asset.{w.path.name}": w for w in locked_wheels()}
    assert set(sources) == set(wheels)
    for path, asset in sources.items():
        assert not Path(path).is_absolute()
        assert (outdir / path).read_bytes() == wheels[path].path.read_bytes()
        (destination,) = asset["destinations"].values()
        assert destination["objectKey"] == wheels[path].path.name


def _lifecycle(template: dict[str, Any], zone: str) -> list[dict[str, Any]]:
    (bucket,) = [
        v for k, v in of_type(template["Resources"], "AWS::S3::Bucket").items() if k.startswith(f"DataLake{zone}")
    ]
    return list(bucket["Properties"]["LifecycleConfiguration"]["Rules"])


def _effective_days(rules: list[dict[str, Any]], key: str) -> int | None:
    """The days after which S3 expires an object ``key``: of every rule whose filter covers it, the shortest
    (S3 User Guide, "How Amazon S3 handles conflicts in lifecycle configurations")."""
    days = [r["ExpirationInDays"] for r in rules if "ExpirationInDays" in r and key.startswith(r.get("Prefix", ""))]
    return min(days) if days else None


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_retention_rules_cover_exactly_each_datasets_prefixes_with_its_days(
    stage: str, stage_templates: dict[str, dict[str, Any]]
) -> None:
    from stacks.constructs.data_lake import RETENTION_KINDS, retention_prefixes

    template = stage_templates[stage]
    config = load_config(stage)
    datasets = [config.for_dataset(d.schema) for d in load_declarations().values()]
    zones = {"artifacts": _lifecycle(template, "Artifacts"), "curated": _lifecycle(template, "Curated")}
    expected: dict[str, set[tuple[str, int]]] = {"artifacts": set(), "curated": set()}
    for dataset in datasets:
        for kind, prefix, days in retention_prefixes(dataset):
            zone = RETENTION_KINDS[kind][0]
            expected[zone].add((prefix, days))
            # Then an object of the dataset's kind expires after the dataset's days, whatever other rules say
            assert _effective_days(zones[zone], f"{prefix}2026/11/27/10/x.jsonl") == days, (stage, kind, prefix)
            # And its expired version is deleted a day later (the zones are versioned)
            (own,) = [r for r in zones[zone] if r.get("Prefix") == prefix]
            assert own["NoncurrentVersionExpiration"] == {"NoncurrentDays": NONCURRENT_DAYS_AFTER_RETENTION}
            assert own["Status"] == "Enabled"
    # And the per-dataset rules are exactly those prefixes with those days: no rule for anything else
    for zone, rules in zones.items():
        got = {(r["Prefix"], r["ExpirationInDays"]) for r in rules if r["Id"].startswith("retain-")}
        assert got == expected[zone], (stage, zone)
    # And the settings come from the stage unless a declaration overrides them (tickets keeps its own)
    by_name = {d.dataset.name: d.retention for d in datasets}
    assert by_name["churn"] == config.retention
    assert by_name["tickets"] == RetentionSettings(capture_days=60, labels_days=60, production_days=120)
    # And data of no declared dataset (a removed declaration) still expires, never before a declared dataset's
    longest = max(d.retention.capture_days for d in [config, *datasets])
    assert _effective_days(zones["artifacts"], "data-capture/mlops-x-gone/AllTraffic/a.jsonl") == longest
    assert _effective_days(zones["curated"], "production/gone/prod_date=2026-11-27/a.parquet") == max(
        d.retention.production_days for d in [config, *datasets]
    )
    # And nothing else in the zones expires (curated splits, manifests, models stay)
    assert _effective_days(zones["curated"], "curated/churn/v1/split=train/part.parquet") is None
    assert _effective_days(zones["artifacts"], "models/churn/model.tar.gz") is None
