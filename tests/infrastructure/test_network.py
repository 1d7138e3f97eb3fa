"""``network: private`` (prod): every function, the Glue job, the SageMaker jobs and the models in the VPC's isolated
subnets, no route out of the VPC, network isolation on the containers; dev (``network: public``) has none of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import assertions

from stacks.app import build_app
from stacks.config import load_config
from stacks.constructs.data_lake import DataLake
from stacks.constructs.network import HTTPS, INTERFACE_ENDPOINTS
from stacks.mlops_stack import MlopsStack
from tests.infrastructure.helpers import definition, of_type, policy_statements


@pytest.fixture(scope="module")
def prod(stage_templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return dict(stage_templates["prod"]["Resources"])


@pytest.fixture(scope="module")
def dev(stage_templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return dict(stage_templates["dev"]["Resources"])


def _refs(values: list[Any]) -> set[str]:
    return {v["Ref"] if isinstance(v, dict) and "Ref" in v else v["Fn::GetAtt"][0] for v in values}


def _isolated_subnets(resources: dict[str, Any]) -> set[str]:
    return set(of_type(resources, "AWS::EC2::Subnet"))


def _workload_group(resources: dict[str, Any]) -> str:
    (name,) = [k for k in of_type(resources, "AWS::EC2::SecurityGroup") if k.startswith("NetworkWorkloads")]
    return name


def test_the_stages_network_settings() -> None:
    assert load_config("prod").network == "private"
    assert load_config("dev").network == "public"


def test_prod_has_two_isolated_subnets_and_no_way_out(prod: dict[str, Any]) -> None:
    subnets = of_type(prod, "AWS::EC2::Subnet")
    assert len(subnets) == 2
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in subnets.values())
    for kind in ("AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::EgressOnlyInternetGateway"):
        assert not of_type(prod, kind), kind
    assert not of_type(prod, "AWS::EC2::VPCGatewayAttachment")
    for route in of_type(prod, "AWS::EC2::Route").values():  # none at all: only the local and endpoint routes
        pytest.fail(f"a route in an isolated subnet: {route}")
    flow_logs = of_type(prod, "AWS::EC2::FlowLog")
    assert len(flow_logs) == 1
    (group,) = [v for v in of_type(prod, "AWS::Logs::LogGroup").values() if "KmsKeyId" in v["Properties"]][:1]
    assert group


def test_prod_has_the_endpoints_the_stack_calls(prod: dict[str, Any]) -> None:
    endpoints = of_type(prod, "AWS::EC2::VPCEndpoint")
    gateways = [e for e in endpoints.values() if e["Properties"].get("VpcEndpointType") == "Gateway"]
    interfaces = [e for e in endpoints.values() if e["Properties"].get("VpcEndpointType") == "Interface"]
    assert len(gateways) == 2  # S3, DynamoDB
    assert len(interfaces) == len(INTERFACE_ENDPOINTS)
    assert all(e["Properties"]["PrivateDnsEnabled"] is True for e in interfaces)
    assert all(len(e["Properties"]["SubnetIds"]) == 2 for e in interfaces)


def test_prod_security_groups_only_open_https(prod: dict[str, Any]) -> None:
    groups = of_type(prod, "AWS::EC2::SecurityGroup")
    for name, group in groups.items():
        for rule in group["Properties"].get("SecurityGroupEgress", []):
            assert (rule.get("IpProtocol") == "tcp" and rule["FromPort"] == rule["ToPort"] == HTTPS) or (
                rule.get("CidrIp") == "255.255.255.255/32"  # aws-cdk-lib's "no egress" placeholder
            ), (name, rule)
        assert not group["Properties"].get("SecurityGroupIngress"), name  # only ingress from groups (below)
    for rule in of_type(prod, "AWS::EC2::SecurityGroupEgress").values():  # group to group: Glue's own workers
        props = rule["Properties"]
        assert props["GroupId"] == props["DestinationSecurityGroupId"], props
    for rule in of_type(prod, "AWS::EC2::SecurityGroupIngress").values():
        props = rule["Properties"]
        assert "SourceSecurityGroupId" in props and "CidrIp" not in props, props
        glue_self = props["GroupId"] == props["SourceSecurityGroupId"]
        assert glue_self or props["FromPort"] == props["ToPort"] == HTTPS, props


def test_prod_functions_all_run_in_the_isolated_subnets(prod: dict[str, Any]) -> None:
    subnets = _isolated_subnets(prod)
    functions = of_type(prod, "AWS::Lambda::Function")
    assert len(functions) >= 12
    for name, fn in functions.items():
        vpc = fn["Properties"].get("VpcConfig")
        assert vpc, f"{name} is not in the VPC"
        assert _refs(vpc["SubnetIds"]) == subnets, name
        assert _refs(vpc["SecurityGroupIds"]) == {_workload_group(prod)}, name


def test_prod_glue_job_runs_in_an_isolated_subnet_through_its_network_connection(prod: dict[str, Any]) -> None:
    # Given prod's ETL job, which installs its modules from the stack's wheels in S3 without an index
    (job,) = of_type(prod, "AWS::Glue::Job").values()
    assert job["Properties"]["DefaultArguments"]["--python-modules-installer-option"] == "--no-index"
    # When its connection is read
    (connection_id, connection) = next(iter(of_type(prod, "AWS::Glue::Connection").items()))
    connection_input = connection["Properties"]["ConnectionInput"]
    requirements = connection_input["PhysicalConnectionRequirements"]
    # Then the job runs through a NETWORK connection on an isolated subnet, with the Glue security group
    assert job["Properties"]["Connections"] == {"Connections": [{"Ref": connection_id}]}
    assert connection_input["ConnectionType"] == "NETWORK"
    subnet = requirements["SubnetId"]["Ref"]
    assert subnet in _isolated_subnets(prod)
    (glue_group,) = [k for k in of_type(prod, "AWS::EC2::SecurityGroup") if k.startswith("NetworkGlue")]
    assert _refs(requirements["SecurityGroupIdList"]) == {glue_group}
    assert requirements["AvailabilityZone"] == prod[subnet]["Properties"]["AvailabilityZone"]
    # and its role may create the workers' network interfaces in that subnet with that group, and no other
    statements = policy_statements(prod, "DataLakeEtlRole")
    (create,) = [s for s in statements if s["Action"] == "ec2:CreateNetworkInterface"]
    named = json.dumps(create["Resource"])
    assert subnet in named and glue_group in named
    assert not [other for other in _isolated_subnets(prod) - {subnet} if other in named]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"ec2:DeleteNetworkInterface", "ec2:CreateTags", "ec2:DescribeVpcAttribute"} <= actions
    # and the group lets the workers talk to each other and reach the endpoints over HTTPS only
    ingress = [r["Properties"] for r in of_type(prod, "AWS::EC2::SecurityGroupIngress").values()]
    assert any(
        r["GroupId"]["Fn::GetAtt"][0] == glue_group and r["SourceSecurityGroupId"]["Fn::GetAtt"][0] == glue_group
        for r in ingress
        if "SourceSecurityGroupId" in r
    )


def test_a_glue_job_that_needs_the_package_index_stays_off_the_vpc(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a job that would install from PyPI at start (no route out of the isolated subnets)
    monkeypatch.setattr(DataLake, "installs_from_pypi", property(lambda self: True))
    app = build_app(stage="prod", outdir=str(tmp_path / "cdk.out"))
    stack = app.node.find_child(load_config("prod").stack_name)
    assert isinstance(stack, MlopsStack)
    prod = dict(assertions.Template.from_stack(stack).to_json()["Resources"])
    # Then it runs on Glue's own network: a connection would make every run fail at its pip install
    (job,) = of_type(prod, "AWS::Glue::Job").values()
    assert "Connections" not in job["Properties"] and not of_type(prod, "AWS::Glue::Connection")


def test_installs_from_pypi_reads_the_jobs_modules_and_installer_options(tmp_path: Path) -> None:
    app = build_app(stage="dev", outdir=str(tmp_path / "cdk.out"))
    stack = app.node.find_child(load_config("dev").stack_name)
    assert isinstance(stack, MlopsStack)
    job = stack.lake.etl_job
    arguments = dict(job.default_arguments)  # type: ignore[arg-type]
    assert not stack.lake.installs_from_pypi  # the locked wheels in S3, --no-index
    job.default_arguments = {**arguments, "--additional-python-modules": "pandas==2.3.3"}
    assert stack.lake.installs_from_pypi  # a requirement: the index
    job.default_arguments = {**arguments, "--python-modules-installer-option": ""}
    assert stack.lake.installs_from_pypi  # wheels, but their dependencies looked up in the index
    job.default_arguments = {**arguments, "--additional-python-modules": ""}
    assert not stack.lake.installs_from_pypi  # nothing to install


def _task(resources: dict[str, Any], resource: str) -> dict[str, Any]:
    for machine in of_type(resources, "AWS::StepFunctions::StateMachine").values():
        for state in definition(machine)["States"].values():
            if state.get("Resource", "").endswith(resource):
                return dict(state["Parameters"])
    raise AssertionError(f"no {resource} task")


def test_prod_training_and_evaluation_jobs_are_isolated_in_the_vpc(prod: dict[str, Any]) -> None:
    training = _task(prod, "sagemaker:createTrainingJob.sync")
    assert training["EnableNetworkIsolation"] is True
    assert training["EnableInterContainerTrafficEncryption"] is True
    assert len(training["VpcConfig"]["Subnets"]) == 2 and len(training["VpcConfig"]["SecurityGroupIds"]) == 1
    # isolated: the source archive comes in as a channel, the toolkit extracts it from the container path; the in-job
    # evaluation's inputs (test split, champion archive) are channels too, its report leaves with the job's output
    channels = {c["ChannelName"] for c in training["InputDataConfig"]}
    assert channels == {"train", "validation", "code", "test", "champion"}
    assert training["HyperParameters"]["sagemaker_submit_directory"].startswith('"/opt/ml/input/data/code/')
    network = _task(prod, "sagemaker:createProcessingJob.sync")["NetworkConfig"]
    assert network["EnableNetworkIsolation"] is True and network["EnableInterContainerTrafficEncryption"] is True
    assert len(network["VpcConfig"]["Subnets"]) == 2


def test_prod_model_creating_functions_know_the_vpc(prod: dict[str, Any]) -> None:
    functions = of_type(prod, "AWS::Lambda::Function")
    handlers = {
        fn["Properties"]["Handler"]: fn["Properties"]["Environment"]["Variables"]
        for fn in functions.values()
        if "Handler" in fn["Properties"] and "Environment" in fn["Properties"]
    }
    for handler in ("lambdas.deploy.handler.handler", "lambdas.batch_inference.handler.handler"):
        assert {"MODEL_SUBNETS", "MODEL_SECURITY_GROUPS"} <= set(handlers[handler]), handler


def test_dev_has_no_network(dev: dict[str, Any]) -> None:
    assert not any(v["Type"].startswith("AWS::EC2::") for v in dev.values())
    assert not of_type(dev, "AWS::Glue::Connection")
    assert not any("VpcConfig" in fn["Properties"] for fn in of_type(dev, "AWS::Lambda::Function").values())
    assert "VpcConfig" not in _task(dev, "sagemaker:createTrainingJob.sync")
    assert "NetworkConfig" not in _task(dev, "sagemaker:createProcessingJob.sync")
