"""``python -m cli.preflight --stage S``: what ``make deploy`` checks in the target account before ``cdk deploy``.

Reserved concurrency: Lambda lets an account reserve only its unreserved concurrency minus
``MINIMUM_UNRESERVED_CONCURRENCY`` (100; ``stacks.config``), and CloudFormation fails (and rolls back) the deployment
of a function whose ``ReservedConcurrentExecutions`` would break that. So before deploying, this reads the account's
settings (GetAccountSettings: ``AccountLimit.ConcurrentExecutions`` and ``UnreservedConcurrentExecutions``) and the
reservations the stage's functions already hold (a redeploy of the stack takes them back before reserving again),
and refuses, with the figures and what to do, when the stage's reservations (``StageConfig.concurrency``) do not fit.
A stage that reserves nothing passes without a call. Exit codes as the operations commands' (``cli.errors``).

Credentials whose role may not read these (the delivery pipeline's deploy role may only assume the CDK bootstrap
roles: ``stacks/delivery_stack.py``) read them through the account's CDK lookup role instead, whose ReadOnlyAccess
covers GetAccountSettings, GetFunctionConcurrency and ListStackResources (what ``cdk diff`` uses as well).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from cli.errors import FAILED, NO_ACCESS, OK, CliError
from cli.session import ACCESS_CODES, error_code
from stacks.config import MINIMUM_UNRESERVED_CONCURRENCY, StageConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_QUALIFIER = "hnb659fds"  # aws-cdk-lib's default bootstrap qualifier


def held_reservations(lambda_client: Any, cloudformation: Any, stack_name: str) -> int:
    """The reserved concurrency the deployed stack's functions hold now (0 when the stack is not deployed)."""
    try:
        pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name)
        names = [
            r["PhysicalResourceId"]
            for page in pages
            for r in page["StackResourceSummaries"]
            if r["ResourceType"] == "AWS::Lambda::Function" and r.get("PhysicalResourceId")
        ]
    except ClientError as error:
        if error_code(error) == "ValidationError" and "does not exist" in str(error):
            return 0
        raise
    held = 0
    for name in names:
        try:
            held += int(
                lambda_client.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions") or 0
            )
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":  # deleted outside CloudFormation: holds nothing
                raise
    return held


def check_concurrency(config: StageConfig, lambda_client: Any, cloudformation: Any) -> str:
    """What the stage reserves and the room the account has for it; ``CliError`` (exit 1) when it does not fit."""
    wanted = config.concurrency.total
    if wanted == 0:
        return f"{config.stage}: reserves no Lambda concurrency: fits any account"
    limits = lambda_client.get_account_settings()["AccountLimit"]
    quota, unreserved = int(limits["ConcurrentExecutions"]), int(limits["UnreservedConcurrentExecutions"])
    held = held_reservations(lambda_client, cloudformation, config.stack_name)
    room = unreserved + held - MINIMUM_UNRESERVED_CONCURRENCY
    figures = (
        f"the account's concurrency quota is {quota}, {unreserved} unreserved (the stack's functions hold {held} "
        f"of the reservations); Lambda keeps {MINIMUM_UNRESERVED_CONCURRENCY} unreserved, so there is room for "
        f"{max(room, 0)}"
    )
    if wanted > room:
        raise CliError(
            f"{config.stage} reserves {wanted} concurrent executions for its functions, but {figures}: CloudFormation "
            f"would fail the deployment. Request a higher 'Concurrent executions' quota for AWS Lambda in Service "
            f"Quotas (at least {wanted + MINIMUM_UNRESERVED_CONCURRENCY + quota - unreserved - held}), or deploy the "
            "stage without reservations (ConcurrencySettings(reserve=False) in stacks/config.py)",
            FAILED,
        )
    if quota < config.concurrency.account_concurrency_quota:
        figures += f" (the stage declares a quota of {config.concurrency.account_concurrency_quota})"
    return f"{config.stage}: reserves {wanted} concurrent executions: fits, {figures}"


def qualifier() -> str:
    """The CDK bootstrap qualifier of this app (cdk.json's ``@aws-cdk/core:bootstrapQualifier``, else the default)."""
    try:
        context = json.loads((ROOT / "cdk.json").read_text()).get("context", {})
    except (OSError, ValueError):
        context = {}
    return str(context.get("@aws-cdk/core:bootstrapQualifier") or DEFAULT_QUALIFIER)


def lookup_session(session: Any, region: str) -> Any:
    """A session of the account's CDK lookup role (``cdk-<qualifier>-lookup-role-<account>-<region>``)."""
    identity = session.client("sts").get_caller_identity()
    partition, account = identity["Arn"].split(":")[1], identity["Account"]
    role = f"arn:{partition}:iam::{account}:role/cdk-{qualifier()}-lookup-role-{account}-{region}"
    credentials = session.client("sts").assume_role(RoleArn=role, RoleSessionName="mlops-preflight")["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def main(argv: Sequence[str] | None = None, session: Any = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.preflight", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    args = parser.parse_args(argv)
    config = load_config(args.stage)
    try:
        session = session or boto3.Session(region_name=config.region)
        try:
            message = check_concurrency(config, session.client("lambda"), session.client("cloudformation"))
        except ClientError as error:
            if error_code(error) not in ACCESS_CODES:
                raise
            lookup = lookup_session(session, config.region)
            message = check_concurrency(config, lookup.client("lambda"), lookup.client("cloudformation"))
    except CliError as error:
        print(f"preflight: {error}", file=sys.stderr)
        return error.code
    except (BotoCoreError, ClientError) as error:
        print(f"preflight: cannot read the account's Lambda concurrency settings: {error}", file=sys.stderr)
        return NO_ACCESS
    print(f"preflight: {message}")
    return OK


if __name__ == "__main__":
    sys.exit(main())
