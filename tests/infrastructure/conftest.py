"""One synth per test session (the jsii kernel costs seconds); every test asserts on that template."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import assertions

from stacks.app import build_app
from stacks.config import StageConfig, load_config
from stacks.mlops_stack import MlopsStack


@pytest.fixture(scope="session")
def config() -> StageConfig:
    return load_config("dev")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, config: StageConfig) -> MlopsStack:
    app = build_app(stage="dev", outdir=str(tmp_path_factory.mktemp("cdk.out")))
    node = app.node.find_child(config.stack_name)
    assert isinstance(node, MlopsStack)
    return node


@pytest.fixture(scope="session")
def template(stack: MlopsStack) -> assertions.Template:
    # Template.from_stack synthesizes the app: cdk-nag runs here and fails the session on any finding.
    return assertions.Template.from_stack(stack)


@pytest.fixture(scope="session")
def resources(template: assertions.Template) -> dict[str, Any]:
    return dict(template.to_json()["Resources"])


@pytest.fixture(scope="session")
def prod_template(tmp_path_factory: pytest.TempPathFactory) -> assertions.Template:
    """The prod stage, synthesized once, only for the tests that ask for it (cdk-nag runs here too)."""
    config = load_config("prod")
    app = build_app(stage="prod", outdir=str(tmp_path_factory.mktemp("cdk.out.prod")))
    node = app.node.find_child(config.stack_name)
    assert isinstance(node, MlopsStack)
    return assertions.Template.from_stack(node)


@pytest.fixture(scope="session")
def stage_templates(template: assertions.Template, prod_template: assertions.Template) -> dict[str, dict[str, Any]]:
    """The synthesized template of every stage (dev reuses the session's synth; prod is synthesized once)."""
    return {"dev": dict(template.to_json()), "prod": dict(prod_template.to_json())}


@pytest.fixture(scope="session")
def template_json(template: assertions.Template) -> dict[str, Any]:
    return dict(template.to_json())
