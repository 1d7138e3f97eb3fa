"""Every Lambda test builds its own AWS clients, inside its own moto mock, and every request those clients send
is checked against the service model by the strict validator (``localcloud.shapes``): a request the real service
would refuse (an enum, a pattern, a length moto does not check) fails the test that made it, even when the code
under test catches the error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore.model import OperationModel

from lambdas.shared.aws import client
from localcloud import shapes
from pipelines.platform import Platform
from tests.samples import use_platform


@pytest.fixture(autouse=True)
def platform_document(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Platform:
    """The platform document the Lambda asset would carry: the three sample datasets in dev (``mlops-dev-churn``,
    ``mlops-dev-energy``, ``mlops-dev-tickets``)."""
    return use_platform(monkeypatch, tmp_path_factory.mktemp("document"))


@pytest.fixture(autouse=True)
def fresh_clients() -> Iterator[None]:
    client.cache_clear()
    yield
    client.cache_clear()


@pytest.fixture(autouse=True)
def strict_requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every client created during the test checks its requests before botocore serializes them; the test fails
    on any violation (also one the code under test swallowed)."""
    refused: list[str] = []

    def check(params: dict[str, Any], model: OperationModel, **_: Any) -> None:
        if model.input_shape is None:
            return
        found = shapes.shape_violations(
            model.input_shape, params, options=shapes.Options(service=model.service_model.service_name)
        )
        if found:
            error = shapes.ShapeError(f"{model.service_model.service_name}.{model.name}", found)
            refused.append(str(error))
            raise error

    create_client = botocore.session.Session.create_client

    def create_checked_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        created = create_client(self, *args, **kwargs)
        created.meta.events.register("before-parameter-build", check)
        return created

    monkeypatch.setattr(botocore.session.Session, "create_client", create_checked_client)
    yield refused
    if refused:
        pytest.fail("requests the service would refuse:\n" + "\n".join(refused), pytrace=False)
