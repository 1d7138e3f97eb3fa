"""``mlops promote VERSION --to prod`` under moto: the same model (artifact, image, lineage, evaluation) lands in
prod's registry as PendingManualApproval; again is a no-op; only Approved versions go; and with prod in another
account (moto keeps one backend per account) the copy is written through prod's promotion role."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from cli import promote
from cli.errors import BAD_INPUT, OK
from tests.unit.cli.conftest import ARTIFACTS, Account, mlops

PROD_ARTIFACTS, PROD_GROUP = "prod-artifacts", "mlops-prod-churn"
PROD_ACCOUNT = "210987654321"


def prod_outputs() -> dict[str, str]:
    sfn = "arn:aws:states:us-east-1:{}:stateMachine:mlops-prod-{}"
    return {
        "ArtifactsBucket": PROD_ARTIFACTS,
        "TrainingStateMachine": sfn.format(PROD_ACCOUNT, "training-pipeline"),
        "DeploymentStateMachine": sfn.format(PROD_ACCOUNT, "deployment"),
        "EndpointName": "mlops-prod-churn",
        "ModelPackageGroup": PROD_GROUP,
        "UploadPrefix": "s3://prod-raw/datasets/churn/",
    }


def create_prod(session: Any) -> None:
    """The prod stack's outputs, artifacts bucket and model package group, in ``session``'s account."""
    session.client("s3").create_bucket(Bucket=PROD_ARTIFACTS)
    session.client("sagemaker").create_model_package_group(ModelPackageGroupName=PROD_GROUP)
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {k: {"Value": v} for k, v in prod_outputs().items()},
    }
    session.client("cloudformation").create_stack(StackName="mlops-prod", TemplateBody=json.dumps(template))


def source_archive() -> bytes:
    key = "models/train-1/output/model.tar.gz"
    return bytes(boto3.client("s3").get_object(Bucket=ARTIFACTS, Key=key)["Body"].read())


def prod_packages(session: Any = boto3) -> list[dict[str, Any]]:
    sm = session.client("sagemaker")
    summaries = sm.list_model_packages(ModelPackageGroupName=PROD_GROUP)["ModelPackageSummaryList"]
    return [sm.describe_model_package(ModelPackageName=s["ModelPackageArn"]) for s in summaries]


def test_promote_copies_the_model_pending_manual_approval(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    # Given dev v1 approved and prod deployed in the same account
    source = account.register(1)
    create_prod(boto3)
    # When it is promoted
    code, result, _ = mlops(capsys, "promote", "1", "--to", "prod", "--json")
    # Then prod's group has v1 pending manual approval: the same image, the artifact and evaluation copied
    assert code == OK and result["copied"] is True
    (package,) = prod_packages()
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    (container,) = package["InferenceSpecification"]["Containers"]
    model = f"s3://{PROD_ARTIFACTS}/models/promoted/dev/mlops-dev-churn-v1/model.tar.gz"
    assert container["ModelDataUrl"] == model and container["Image"].endswith("sagemaker-scikit-learn:1.9-0-cpu-py3")
    assert container["Environment"] == {"SAGEMAKER_PROGRAM": "inference.py"}
    s3 = boto3.client("s3")
    copied = s3.get_object(Bucket=PROD_ARTIFACTS, Key="models/promoted/dev/mlops-dev-churn-v1/model.tar.gz")
    assert copied["Body"].read() == source_archive()
    evaluation = f"s3://{PROD_ARTIFACTS}/evaluations/promoted-dev-mlops-dev-churn-v1/evaluation.json"
    metadata = package["CustomerMetadataProperties"]
    assert metadata["evaluation_uri"] == evaluation
    assert package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == evaluation
    golden = s3.get_object(Bucket=PROD_ARTIFACTS, Key="evaluations/promoted-dev-mlops-dev-churn-v1/golden.json")
    assert json.loads(golden["Body"].read()) == {"v": 1}  # the smoke test's golden payloads travel with it
    assert (metadata["promoted_from"], metadata["promoted_from_stage"]) == (source, "dev")
    assert (metadata["dataset_version"], metadata["code_version"], metadata["model_version"]) == (
        "data-1",
        "abc123",
        "churn-0001",
    )
    assert package["MetadataProperties"] == {"CommitId": "abc123", "GeneratedBy": "exec-1"}
    # And promoting again adds nothing
    code, again, _ = mlops(capsys, "promote", "1", "--to", "prod", "--json")
    assert code == OK and again["copied"] is False and len(prod_packages()) == 1
    assert again["target"]["model_package_arn"] == package["ModelPackageArn"]


def test_promote_errors(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    account.register(1, status="PendingManualApproval")
    # only an Approved version
    code, _, err = mlops(capsys, "promote", "1", "--to", "prod")
    assert (code, err) == (
        BAD_INPUT,
        "mlops promote: churn v1 is PendingManualApproval: only an Approved version is promoted\n",
    )
    # not to its own stage
    assert "already in mlops-dev" in mlops(capsys, "promote", "1", "--to", "dev")[2]
    # the target stack must be deployed
    account.register(2)
    code, _, err = mlops(capsys, "promote", "2", "--to", "prod")
    assert code == 3 and "stack mlops-prod is not deployed" in err
    # and declare the dataset
    create_prod(boto3)
    boto3.client("cloudformation").delete_stack(StackName="mlops-prod")
    outputs = {**prod_outputs(), "DatasetResources": json.dumps({"tickets": {}})}
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(StackName="mlops-prod", TemplateBody=json.dumps(template))
    code, _, err = mlops(capsys, "promote", "2", "--to", "prod")
    assert code == BAD_INPUT and "unknown dataset 'churn': stack mlops-prod declares tickets" in err


def test_prod_in_another_account_is_written_through_its_promotion_role(
    account: Account, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given prod configured in its own account, deployed there
    role = f"arn:aws:iam::{PROD_ACCOUNT}:role/mlops-prod-promotion"
    credentials = boto3.client("sts").assume_role(RoleArn=role, RoleSessionName="setup")["Credentials"]
    prod = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name="us-east-1",
    )
    create_prod(prod)
    monkeypatch.setattr(promote, "configured_account", lambda stage: PROD_ACCOUNT if stage == "prod" else None)
    account.register(1)
    # When dev v1 is promoted
    code, result, _ = mlops(capsys, "promote", "1", "--to", "prod", "--json")
    # Then the package and its copies are in prod's account, and dev's account holds no prod group
    assert code == OK and result["target"]["model_package_arn"].startswith(
        f"arn:aws:sagemaker:us-east-1:{PROD_ACCOUNT}:"
    )
    (package,) = prod_packages(prod)
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    key = "models/promoted/dev/mlops-dev-churn-v1/model.tar.gz"
    assert prod.client("s3").get_object(Bucket=PROD_ARTIFACTS, Key=key)["Body"].read() == source_archive()
    assert [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]].count(PROD_ARTIFACTS) == 0
    assert boto3.client("s3").head_bucket(Bucket=ARTIFACTS)  # the source stayed where it was
