"""Private networking of a ``network: private`` stage: a VPC without a route to the internet, its endpoints and the
security groups of what runs in it.

Two isolated subnets (``PRIVATE_ISOLATED``: a route table with the local route and the gateway endpoints only; no
internet gateway, no NAT), one per Availability Zone. The AWS APIs the functions, the Glue job and the SageMaker
jobs call are reached through VPC endpoints: S3 and DynamoDB through gateway endpoints (no hourly charge), the rest
through interface endpoints (``INTERFACE_ENDPOINTS``, billed per endpoint and AZ-hour: ``stacks/pricing.py``) with
private DNS, so the SDKs' default regional names resolve to them. Flow logs of every interface go to a log group
encrypted with the data key.

Security groups, least privilege: the workloads' group (functions and SageMaker containers) may only open HTTPS
(443), which in these subnets reaches the interface endpoints and the S3 and DynamoDB gateway endpoints and nothing
else; the endpoints' group accepts HTTPS from the workloads' and the Glue job's groups only. The Glue group allows
all TCP between its own members, which Glue requires of a connection's group (driver and executors talk to each
other), and the same HTTPS out.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from stacks.config import StageConfig
from stacks.constructs.lambda_factory import retention_days

AVAILABILITY_ZONES = 2
HTTPS = 443
INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    # what the functions call (lambdas/*: sagemaker, sagemaker-runtime, stepfunctions, sns, cloudwatch,
    # application-autoscaling) and their X-Ray segments (active tracing sends them from inside the function)
    "SageMakerApi": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
    "SageMakerRuntime": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME,
    "StepFunctions": ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
    "Sns": ec2.InterfaceVpcEndpointAwsService.SNS,
    "CloudWatch": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "ApplicationAutoScaling": ec2.InterfaceVpcEndpointAwsService.APPLICATION_AUTOSCALING,
    "XRay": ec2.InterfaceVpcEndpointAwsService.XRAY,
    # what the Glue job calls: the Data Catalog, its continuous logs (encrypted with the data key), STS and KMS
    "Glue": ec2.InterfaceVpcEndpointAwsService.GLUE,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
}
"""Interface endpoints, each in every subnet. EventBridge needs none: no function or job calls PutEvents (the S3
events and the alarms reach EventBridge inside AWS)."""
GATEWAY_ENDPOINTS: dict[str, ec2.GatewayVpcEndpointAwsService] = {
    "S3": ec2.GatewayVpcEndpointAwsService.S3,
    "DynamoDb": ec2.GatewayVpcEndpointAwsService.DYNAMODB,
}
# What a Lambda function's role needs to attach it to the VPC (the actions of AWSLambdaVPCAccessExecutionRole,
# AWS Lambda Developer Guide, "Giving Lambda functions access to resources in an Amazon VPC"), and what a
# SageMaker execution role needs for a job or model with VpcConfig (Amazon SageMaker AI Developer Guide, "Give
# SageMaker AI access to resources in your Amazon VPC": CreateTrainingJob / CreateModel permissions)
LAMBDA_DESCRIBE = ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets")
LAMBDA_INTERFACES = (
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)
SAGEMAKER_DESCRIBE = (
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
)
SAGEMAKER_INTERFACES = (
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
)

# What Glue reads of the VPC for a NETWORK connection (the Describe actions of AWSGlueServiceRole without a
# resource type; ec2:DescribeVpcAttribute, which has one, is granted on the VPC)
GLUE_DESCRIBE = (
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcEndpoints",
)


class Network(Construct):
    """The VPC, its endpoints and security groups (built only for a ``network: private`` stage)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.40.0.0/16"),
            max_azs=AVAILABILITY_ZONES,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=20)
            ],
            # True would strip the default group's rules with a custom-resource function outside the VPC; nothing is
            # ever placed in the default group (stacks/checkov_skips.py DEFAULT_GROUP_UNUSED)
            restrict_default_security_group=False,
        )
        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            retention=retention_days(config.log_retention_days),
            encryption_key=key,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))
        self.granted: dict[iam.IRole, tuple[str, ...]] = {}
        """Roles granted network-interface actions here, with the describe actions they hold on ``*``."""
        self.subnets = ec2.SubnetSelection(subnets=self.vpc.isolated_subnets)
        self.subnet_ids = [s.subnet_id for s in self.vpc.isolated_subnets]

        self.endpoint_group = self._group(
            "Endpoints", "Interface VPC endpoints: HTTPS from the functions, SageMaker containers and Glue workers"
        )
        self.workload_group = self._group(
            "Workloads", "Lambda functions and SageMaker containers: HTTPS to the VPC endpoints only"
        )
        self.glue_group = self._group(
            "Glue", "Glue ETL job: all TCP between its own workers (Glue requires it), HTTPS to the endpoints"
        )
        self.glue_group.add_ingress_rule(self.glue_group, ec2.Port.all_tcp(), "Glue driver and executors")
        self.glue_group.add_egress_rule(self.glue_group, ec2.Port.all_tcp(), "Glue driver and executors")
        for group in (self.workload_group, self.glue_group):
            self.endpoint_group.add_ingress_rule(group, ec2.Port.tcp(HTTPS), "HTTPS to the AWS APIs")

        # The gateway endpoints' destinations are the services' public addresses, named by AWS-managed prefix lists
        # whose ids differ per region and are no attribute of AWS::EC2::VPCEndpoint: the groups allow HTTPS to any
        # IPv4 address, which in these subnets reaches only the local route (the interface endpoints) and the
        # gateway endpoints, the only routes their route tables hold
        for name, service in GATEWAY_ENDPOINTS.items():
            self.vpc.add_gateway_endpoint(name, service=service, subnets=[self.subnets])
        for group in (self.workload_group, self.glue_group):
            group.add_egress_rule(
                ec2.Peer.any_ipv4(), ec2.Port.tcp(HTTPS), "HTTPS to S3 and DynamoDB gateway endpoints"
            )
        self.interface_endpoints = {
            name: self.vpc.add_interface_endpoint(
                name,
                service=service,
                subnets=self.subnets,
                security_groups=[self.endpoint_group],
                private_dns_enabled=True,
                open=False,
            )
            for name, service in INTERFACE_ENDPOINTS.items()
        }

    def _group(self, construct_id: str, description: str) -> ec2.SecurityGroup:
        return ec2.SecurityGroup(self, construct_id, vpc=self.vpc, description=description, allow_all_outbound=False)

    def attach(self, handler: IConstruct) -> None:
        """Puts a function aws-cdk-lib builds without a VPC option (the BucketNotificationsHandler) in the VPC:
        its ``VpcConfig`` set on the resource, its role given the AWS managed AWSLambdaVPCAccessExecutionRole, as
        aws-cdk-lib gives its own roles of functions in a VPC (the custom-resource Provider's)."""
        function = handler.node.default_child
        assert isinstance(function, cdk.CfnResource), f"{handler.node.path}: no function resource"
        function.add_property_override("VpcConfig.SubnetIds", self.subnet_ids)
        function.add_property_override("VpcConfig.SecurityGroupIds", [self.workload_group.security_group_id])
        role = handler.node.find_child("Role")
        assert isinstance(role, iam.Role), f"{handler.node.path}: no role"
        role.add_managed_policy(
            iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaVPCAccessExecutionRole")
        )
        function.node.add_dependency(role)

    def grant_function(self, role: iam.Role) -> None:
        """What a function's role needs to run in the VPC: the interface actions on this VPC's subnets, the
        workloads' group and the account's network interfaces; the describe actions (no resource type) on ``*``."""
        self._grant(role, LAMBDA_DESCRIBE, LAMBDA_INTERFACES)

    def grant_sagemaker(self, role: iam.Role) -> None:
        """What a SageMaker execution role needs for a job or model with ``VpcConfig`` in this VPC."""
        self._grant(role, SAGEMAKER_DESCRIBE, SAGEMAKER_INTERFACES)

    def grant_glue(self, role: iam.IRole, subnet_id: str) -> None:
        """What the Glue job's role needs for its NETWORK connection on ``subnet_id`` with the Glue group (the ec2
        actions of the AWS managed AWSGlueServiceRole): create the workers' interfaces there, tag and delete them,
        and read the VPC's endpoints and route tables to check S3 is reachable."""
        self._grant(role, GLUE_DESCRIBE, ("ec2:CreateNetworkInterface",), [subnet_id], self.glue_group)
        stack = cdk.Stack.of(self)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ec2:DescribeVpcAttribute"],
                resources=[stack.format_arn(service="ec2", resource="vpc", resource_name=self.vpc.vpc_id)],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ec2:DeleteNetworkInterface", "ec2:CreateTags", "ec2:DeleteTags"],
                resources=[self._network_interfaces()],
            )
        )

    def _grant(
        self,
        role: iam.IRole,
        describe: tuple[str, ...],
        interfaces: tuple[str, ...],
        subnet_ids: list[str] | None = None,
        group: ec2.ISecurityGroup | None = None,
    ) -> None:
        """``describe`` on ``*`` (no resource type), ``interfaces`` on the account's network interfaces, the
        subnets (default: every isolated one) and the security group (default: the workloads')."""
        stack = cdk.Stack.of(self)
        resources = [
            self._network_interfaces(),
            *(
                stack.format_arn(service="ec2", resource="subnet", resource_name=s)
                for s in subnet_ids or self.subnet_ids
            ),
            stack.format_arn(
                service="ec2", resource="security-group", resource_name=(group or self.workload_group).security_group_id
            ),
        ]
        role.add_to_principal_policy(iam.PolicyStatement(actions=list(describe), resources=["*"]))
        role.add_to_principal_policy(iam.PolicyStatement(actions=list(interfaces), resources=resources))
        self.granted[role] = describe

    def _network_interfaces(self) -> str:
        return cdk.Stack.of(self).format_arn(service="ec2", resource="network-interface", resource_name="*")

    def function_placement(self) -> dict[str, Any]:
        """A Lambda function's ``vpc``, ``vpc_subnets`` and ``security_groups``: the isolated subnets, the
        workloads' group (for ``lambda_.Function`` and the custom-resource ``Provider`` alike)."""
        return {"vpc": self.vpc, "vpc_subnets": self.subnets, "security_groups": [self.workload_group]}

    def vpc_config(self) -> dict[str, list[str]]:
        """SageMaker's ``VpcConfig`` (jobs and models): the isolated subnets, the workloads' group."""
        return {"Subnets": self.subnet_ids, "SecurityGroupIds": [self.workload_group.security_group_id]}

    def environment(self) -> dict[str, str]:
        """The ``VpcConfig`` the deploy and batch functions put on the models they create, as environment
        variables (comma-separated ids; tokens resolved at deploy, so not in the platform document)."""
        return {
            "MODEL_SUBNETS": cdk.Fn.join(",", self.subnet_ids),
            "MODEL_SECURITY_GROUPS": self.workload_group.security_group_id,
        }
