"""A moto account holding what ``mlops`` operates: the stack ``mlops-dev`` (outputs, a retrain function and its log
group in CloudFormation), both state machines, the churn model package group with its artifacts, and an endpoint."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud.cli import main

REGION, ACCOUNT = "us-east-1", "123456789012"
STACK, GROUP, ENDPOINT = "mlops-dev", "mlops-dev-churn", "mlops-dev-churn"
RAW, ARTIFACTS, CURATED = "raw-bucket", "artifacts-bucket", "curated-bucket"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
PASS = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sfn"


def model_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = b"model"
        info = tarfile.TarInfo("model.joblib")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@dataclass
class Account:
    training: str
    deployment: str
    retrain_function: str

    @property
    def sm(self) -> Any:
        return boto3.client("sagemaker")

    def register(self, version: int, status: str = "Approved", group: str = GROUP, **metadata: str) -> str:
        """Package ``version`` of ``group`` (created in order: the registry numbers them) with its artifacts."""
        s3 = boto3.client("s3")
        execution = f"exec-{version}"
        model_key = f"models/train-{version}/output/model.tar.gz"
        s3.put_object(Bucket=ARTIFACTS, Key=model_key, Body=model_archive())
        for name in ("evaluation.json", "golden.json"):
            s3.put_object(Bucket=ARTIFACTS, Key=f"evaluations/{execution}/{name}", Body=json.dumps({"v": version}))
        evaluation = f"s3://{ARTIFACTS}/evaluations/{execution}/evaluation.json"
        values = {
            "execution_id": execution,
            "model_version": f"churn-{version:04d}",
            "evaluation_uri": evaluation,
            "primary_metric": "auc",
            "challenger_value": f"0.8{version}",
            "dataset_version": f"data-{version}",
            "code_version": "abc123",
            **metadata,
        }
        arn = self.sm.create_model_package(
            ModelPackageGroupName=group,
            ModelPackageDescription=f"churn model v{version}",
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": IMAGE,
                        "ModelDataUrl": f"s3://{ARTIFACTS}/{model_key}",
                        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
                    }
                ],
                "SupportedContentTypes": ["text/csv", "application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelMetrics={"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": evaluation}}},
            MetadataProperties={"CommitId": "abc123", "GeneratedBy": execution},
            CustomerMetadataProperties=values,
            ModelApprovalStatus=status,
        )["ModelPackageArn"]
        return str(arn)

    def serve(self, version: int, endpoint: str = ENDPOINT) -> None:
        """The endpoint runs ``<endpoint>-v<version>`` (the deploy Lambda's names), two instances."""
        name = f"{endpoint}-v{version}"
        self.sm.create_model(
            ModelName=name,
            ExecutionRoleArn=ROLE,
            PrimaryContainer={
                "Image": IMAGE,
                "ModelDataUrl": f"s3://{ARTIFACTS}/models/train-{version}/output/model.tar.gz",
            },
        )
        variant = {
            "VariantName": "AllTraffic",
            "ModelName": name,
            "InitialInstanceCount": 2,
            "InstanceType": "ml.m5.large",
        }
        self.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])
        if self.sm.list_endpoints(NameContains=endpoint)["Endpoints"]:
            self.sm.delete_endpoint(EndpointName=endpoint)  # moto has no UpdateEndpoint: the new config replaces it
        self.sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=name)


def outputs(training: str, deployment: str, **extra: str) -> dict[str, str]:
    return {
        "RawBucket": RAW,
        "CuratedBucket": CURATED,
        "ArtifactsBucket": ARTIFACTS,
        "TrainingStateMachine": training,
        "DeploymentStateMachine": deployment,
        "EndpointName": ENDPOINT,
        "ModelPackageGroup": GROUP,
        "NotificationsTopic": f"arn:aws:sns:{REGION}:{ACCOUNT}:notifications",
        "UploadPrefix": f"s3://{RAW}/datasets/churn/",
        **extra,
    }


def deploy_stack(name: str, values: dict[str, str], with_function: bool = True) -> None:
    resources: dict[str, Any] = {"Topic": {"Type": "AWS::SNS::Topic"}}
    if with_function:
        resources.update(
            {
                "MonitoringRetrainRole0A1B2C3D": {
                    "Type": "AWS::IAM::Role",
                    "Properties": {
                        "AssumeRolePolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Principal": {"Service": "lambda.amazonaws.com"},
                                    "Action": "sts:AssumeRole",
                                }
                            ],
                        }
                    },
                },
                "MonitoringRetrainLogs5E6F7A8B": {
                    "Type": "AWS::Logs::LogGroup",
                    "Properties": {"LogGroupName": f"/{name}/retrain"},
                },
                "MonitoringRetrain9C8D7E6F": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "Handler": "lambdas.retrain.handler.handler",
                        "Runtime": "python3.13",
                        "Role": {"Fn::GetAtt": ["MonitoringRetrainRole0A1B2C3D", "Arn"]},
                        "Code": {"ZipFile": "def handler(event, context):\n    return {}\n"},
                    },
                },
            }
        )
    template = {
        "Resources": resources,
        "Outputs": {key: {"Value": value} for key, value in values.items()},
    }
    boto3.client("cloudformation").create_stack(
        StackName=name, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"]
    )


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[Account]:
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        s3 = boto3.client("s3")
        for bucket in (RAW, ARTIFACTS, CURATED):
            s3.create_bucket(Bucket=bucket)
        boto3.client("sagemaker").create_model_package_group(ModelPackageGroupName=GROUP)
        sfn = boto3.client("stepfunctions")
        training = sfn.create_state_machine(name="mlops-dev-training-pipeline", definition=PASS, roleArn=ROLE)
        deployment = sfn.create_state_machine(name="mlops-dev-deployment", definition=PASS, roleArn=ROLE)
        deploy_stack(STACK, outputs(training["stateMachineArn"], deployment["stateMachineArn"]))
        resources = boto3.client("cloudformation").list_stack_resources(StackName=STACK)["StackResourceSummaries"]
        function = next(r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::Lambda::Function")
        yield Account(training["stateMachineArn"], deployment["stateMachineArn"], function)


def mlops(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    """(exit code, stdout as JSON when --json was given, stderr) of ``mlops ARGV``."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if "--json" in argv and out else out), err
