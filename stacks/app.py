"""Builds the CDK app the same way for the CLI, plain ``python app.py``, tests and the local cloud.

The CLI passes cdk.json's context through CDK_CONTEXT_JSON; everything else does not, so the feature
flags are loaded from cdk.json here: every entry point produces the same template. The declarations come from
``datasets/`` (or the folder in context ``datasets_dir``, or ``build_app(datasets_dir=...)``); each is validated
before anything is built; ``app.py`` prints every dataset's resources and idle cost (``stacks/footprint.py``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from pipelines.schema import DatasetSchema
from stacks.config import StageConfig, load_config
from stacks.datasets import DATASETS_DIR, load_declarations
from stacks.delivery_stack import build_delivery_stack
from stacks.mlops_stack import MlopsStack

ROOT = Path(__file__).resolve().parents[1]


def cdk_json_context() -> dict[str, Any]:
    return dict(json.loads((ROOT / "cdk.json").read_text())["context"])


def build_app(stage: str | None = None, outdir: str | None = None, datasets_dir: str | Path | None = None) -> cdk.App:
    """The app for ``stage`` (else context ``stage``, else dev) and the declarations in ``datasets_dir`` (else
    context ``datasets_dir``, else the repository's ``datasets/``), with cdk-nag AwsSolutions attached."""
    context = cdk_json_context()
    # What the CLI adds from cdk.json's versionReporting/pathMetadata/assetMetadata settings:
    context.update(
        {
            "aws:cdk:version-reporting": False,
            "aws:cdk:enable-path-metadata": True,
            "aws:cdk:enable-asset-metadata": True,
        }
    )
    from_cli = json.loads(os.environ.get("CDK_CONTEXT_JSON", "{}"))
    context.update(from_cli)
    if stage is not None:
        context["stage"] = stage
    app = cdk.App(context=context, outdir=outdir) if outdir else cdk.App(context=context)
    config = load_config(app.node.try_get_context("stage"))
    folder = datasets_dir or app.node.try_get_context("datasets_dir") or DATASETS_DIR
    schemas = [declaration.schema for declaration in load_declarations(folder).values()]
    build_stack(app, config, schemas)
    build_delivery_stack(app)  # only with context github_repository (stacks/delivery_stack.py)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app


def build_stack(app: cdk.App, config: StageConfig, schemas: list[DatasetSchema]) -> MlopsStack:
    return MlopsStack(
        app,
        config.stack_name,
        config=config,
        schemas=schemas,
        env=cdk.Environment(account=config.account, region=config.region),
        description=f"Serverless MLOps ({config.stage}): data lake, training pipeline, registry, "
        "canary serving and the retraining loop",
    )
