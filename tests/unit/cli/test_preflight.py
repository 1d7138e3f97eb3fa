"""The deploy-time concurrency check (cli/preflight.py) against stubbed Lambda and CloudFormation answers (moto
implements neither GetAccountSettings nor Lambda's quota arithmetic)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from cli.errors import FAILED, NO_ACCESS, OK, CliError
from cli.preflight import check_concurrency, lookup_session, main
from stacks.config import load_config

PROD = load_config("prod")
WANTED = PROD.concurrency.total


@dataclass
class Clients:
    lambda_: Any
    cloudformation: Any
    lambda_stub: Stubber
    cloudformation_stub: Stubber

    def account(self, quota: int, unreserved: int) -> None:
        self.lambda_stub.add_response(
            "get_account_settings",
            {"AccountLimit": {"ConcurrentExecutions": quota, "UnreservedConcurrentExecutions": unreserved}},
        )

    def stack(self, reservations: dict[str, int | None] | None) -> None:
        """The deployed stack's functions and their reservations; None: the stack does not exist."""
        if reservations is None:
            self.cloudformation_stub.add_client_error(
                "list_stack_resources", "ValidationError", f"Stack with id {PROD.stack_name} does not exist"
            )
            return
        summaries = [
            {
                "LogicalResourceId": f"Fn{i}",
                "PhysicalResourceId": name,
                "ResourceType": "AWS::Lambda::Function",
                "LastUpdatedTimestamp": "2026-01-01T00:00:00Z",
                "ResourceStatus": "UPDATE_COMPLETE",
            }
            for i, name in enumerate(reservations)
        ]
        self.cloudformation_stub.add_response("list_stack_resources", {"StackResourceSummaries": summaries})
        for name, reserved in reservations.items():
            answer = {} if reserved is None else {"ReservedConcurrentExecutions": reserved}
            self.lambda_stub.add_response("get_function_concurrency", answer, {"FunctionName": name})


@pytest.fixture
def clients() -> Iterator[Clients]:
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    lambda_, cloudformation = session.client("lambda"), session.client("cloudformation")
    with Stubber(lambda_) as lambda_stub, Stubber(cloudformation) as cloudformation_stub:
        yield Clients(lambda_, cloudformation, lambda_stub, cloudformation_stub)
        lambda_stub.assert_no_pending_responses()
        cloudformation_stub.assert_no_pending_responses()


def test_prod_reserves_what_its_functions_declare() -> None:
    assert WANTED == sum(r.limit or 0 for r in PROD.concurrency.functions.values()) > 0


def test_a_stage_without_reservations_fits_any_account_without_a_call(clients: Clients) -> None:
    message = check_concurrency(load_config("dev"), clients.lambda_, clients.cloudformation)
    assert "reserves no Lambda concurrency" in message


def test_reservations_fit_a_default_account(clients: Clients) -> None:
    clients.account(1000, 1000)
    clients.stack(None)
    message = check_concurrency(PROD, clients.lambda_, clients.cloudformation)
    assert f"reserves {WANTED} concurrent executions: fits" in message and "quota is 1000" in message


def test_reservations_do_not_fit_a_new_account_of_quota_10(clients: Clients) -> None:
    clients.account(10, 10)
    clients.stack(None)
    with pytest.raises(CliError) as raised:
        check_concurrency(PROD, clients.lambda_, clients.cloudformation)
    assert raised.value.code == FAILED
    text = str(raised.value)
    assert f"prod reserves {WANTED} concurrent executions" in text
    assert "quota is 10, 10 unreserved" in text and "room for 0" in text
    assert f"(at least {WANTED + 100})" in text and "reserve=False" in text


def test_a_redeploy_counts_the_reservations_its_functions_hold(clients: Clients) -> None:
    """Exactly at the limit: 100 unreserved plus what the stack's own functions hold is room for all of them."""
    held = {"retrain": 1, "start": WANTED - 1, "deploy": None}
    clients.account(100 + WANTED, 100)
    clients.stack(held)
    assert "fits" in check_concurrency(PROD, clients.lambda_, clients.cloudformation)


def test_one_short_is_refused(clients: Clients) -> None:
    clients.account(100 + WANTED - 1, 99 + WANTED)
    clients.stack({"deploy": None})
    with pytest.raises(CliError, match=f"room for {WANTED - 1}"):
        check_concurrency(PROD, clients.lambda_, clients.cloudformation)


class _Session:
    def __init__(self, clients: Clients) -> None:
        self._clients = {"lambda": clients.lambda_, "cloudformation": clients.cloudformation}

    def client(self, name: str) -> Any:
        return self._clients[name]


def test_main_refuses_with_the_reason(clients: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    clients.account(10, 10)
    clients.stack(None)
    assert main(["--stage", "prod"], session=_Session(clients)) == FAILED
    assert "preflight: prod reserves" in capsys.readouterr().err


def test_main_reports_an_api_error_as_no_access(clients: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    clients.lambda_stub.add_client_error("get_account_settings", "ServiceException", "Lambda is down")
    assert main(["--stage", "prod"], session=_Session(clients)) == NO_ACCESS
    err = capsys.readouterr().err
    assert "cannot read the account's Lambda concurrency settings" in err and "ServiceException" in err


def test_main_refuses_when_neither_the_credentials_nor_the_lookup_role_may_read(
    clients: Clients, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clients.lambda_stub.add_client_error("get_account_settings", "AccessDeniedException", "not authorized")

    def lookup(session: Any, region: str) -> Any:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no lookup role"}}, "AssumeRole")

    monkeypatch.setattr("cli.preflight.lookup_session", lookup)
    assert main(["--stage", "prod"], session=_Session(clients)) == NO_ACCESS
    assert "no lookup role" in capsys.readouterr().err


def test_main_passes_a_fitting_stage(clients: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    clients.account(1000, 1000)
    clients.stack(None)
    assert main(["--stage", "prod"], session=_Session(clients)) == OK
    assert "fits" in capsys.readouterr().out


def test_credentials_that_may_not_read_fall_back_to_the_cdk_lookup_role(
    clients: Clients, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The delivery deploy role may only assume the bootstrap roles: the check reads through the lookup role."""
    clients.lambda_stub.add_client_error("get_account_settings", "AccessDeniedException", "not authorized")
    clients.account(1000, 1000)
    clients.stack(None)
    assumed: list[str] = []

    def lookup(session: Any, region: str) -> _Session:
        assumed.append(region)
        return _Session(clients)

    monkeypatch.setattr("cli.preflight.lookup_session", lookup)
    assert main(["--stage", "prod"], session=_Session(clients)) == OK
    assert assumed == [PROD.region] and "fits" in capsys.readouterr().out


def test_the_lookup_role_is_the_cdk_bootstrap_one() -> None:
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    sts = session.client("sts")
    with Stubber(sts) as stub:
        stub.add_response(
            "get_caller_identity",
            {"Account": "123456789012", "Arn": "arn:aws:sts::123456789012:assumed-role/deploy/gh", "UserId": "A:gh"},
        )
        role = "arn:aws:iam::123456789012:role/cdk-hnb659fds-lookup-role-123456789012-eu-west-1"
        stub.add_response(
            "assume_role",
            {
                "Credentials": {
                    "AccessKeyId": "AKIAXXXXXXXXXXXXXXXX",
                    "SecretAccessKey": "s",
                    "SessionToken": "t",
                    "Expiration": "2026-01-01T00:00:00Z",
                }
            },
            {"RoleArn": role, "RoleSessionName": "mlops-preflight"},
        )

        class _Sts:
            def client(self, name: str) -> Any:
                assert name == "sts"
                return sts

        lookup = lookup_session(_Sts(), "eu-west-1")
    assert lookup.region_name == "eu-west-1"
    assert lookup.get_credentials().token == "t"
