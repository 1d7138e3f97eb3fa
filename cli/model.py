"""``mlops model init --dataset <name>``: scaffold a dataset's own training script (``models/<name>/train.py``).

The script is a working starting point under SageMaker's script-mode contract (``pipelines/training/byo.py``
documents it): it reads the curated splits, fits a scikit-learn pipeline for the dataset's task and saves it
with ``byo.save_model``. Point the declaration at it with ``model: {entry_point: models/<name>}``; the command
prints the lines to add (it does not rewrite the declaration, whose comments are the team's).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipelines.schema import ENTRY_POINT_SCRIPT
from stacks.datasets import DATASETS_DIR, ROOT, SUFFIX, DeclarationError, read_schema

MODELS_DIR = ROOT / "models"

ESTIMATORS = {
    "binary": ("RandomForestClassifier", "classifier"),
    "multiclass": ("RandomForestClassifier", "classifier"),
    "regression": ("RandomForestRegressor", "regressor"),
}

TEMPLATE = '''"""The {name} dataset's own training script (SageMaker script mode; scaffolded by `mlops model init`).

The declaration datasets/{name}.yaml points here with `model: {{entry_point: {entry_point}}}`; its
`model.hyperparameters` arrive as --name value arguments (byo.arguments reads the ones declared below).
Fit anything scikit-learn compatible on data.train.X (the features in schema order, then the engineered
columns) and save it with byo.save_model: the platform scores it, gates it and serves it like a built-in.
Keep the model to objects the serving container can unpickle (no class defined in this file).
"""

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import {estimator}
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from pipelines.training import byo


def build(schema, args):
    """Impute and scale the numeric columns, one-hot the categorical ones, then a random forest {kind}."""
    numeric = [*schema.numeric_features, *schema.engineered_names]
    categorical = schema.categorical_features
    preprocess = ColumnTransformer(
        [
            ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric),
            (
                "categorical",
                OneHotEncoder(
                    categories=[list(schema.feature(name).categories) for name in categorical],
                    handle_unknown="ignore",
                ),
                categorical,
            ),
        ]
    )
    model = {estimator}(
        n_estimators=args.n_estimators,
        min_samples_leaf=args.min_samples_leaf,
        random_state=args.seed,
        n_jobs=1,
    )
    return Pipeline([("preprocess", preprocess), ("model", model)])


def main():
    args = byo.arguments(n_estimators=200, min_samples_leaf=2, seed=42)
    data = byo.training_data(args.dataset)
    model = build(data.schema, args)
    model.fit(data.train.X, data.train.y)
    score = model.score(data.validation.X, data.validation.y)
    print(f"validation score ({{type(model[-1]).__name__}}.score): {{score:.4f}}")
    byo.save_model(model)


if __name__ == "__main__":
    main()
'''


class ModelCommandError(ValueError):
    """The scaffold cannot be written; the message says why."""


def render_script(name: str, task: str, entry_point: str) -> str:
    estimator, kind = ESTIMATORS[task]
    return TEMPLATE.format(name=name, entry_point=entry_point, estimator=estimator, kind=kind)


def init(dataset: str, datasets: Path, models: Path, force: bool) -> tuple[Path, str]:
    """Write ``<models>/<dataset>/train.py`` for the declared dataset; (its path, the ``model:`` lines)."""
    declaration = datasets / f"{dataset}{SUFFIX}"
    if not declaration.is_file():
        raise ModelCommandError(f"{declaration}: no such declaration (mlops dataset init drafts one)")
    schema = read_schema(declaration)
    directory = models / dataset
    script = directory / ENTRY_POINT_SCRIPT
    if script.exists() and not force:
        raise ModelCommandError(f"{script} already exists; pass --force to replace it")
    try:
        entry_point = directory.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        entry_point = directory.as_posix()
    directory.mkdir(parents=True, exist_ok=True)
    script.write_text(render_script(schema.name, schema.task, entry_point), encoding="utf-8")
    snippet = f"model:\n  entry_point: {entry_point}\n  hyperparameters: {{n_estimators: 200, min_samples_leaf: 2}}\n"
    return script, snippet


def _init_command(args: argparse.Namespace) -> int:
    try:
        script, snippet = init(args.dataset, args.datasets, args.models, args.force)
    except (ModelCommandError, DeclarationError) as error:
        print(f"mlops model init: {error}", file=sys.stderr)
        return 2
    print(f"wrote {script}")
    print(f"add to {args.datasets / (args.dataset + SUFFIX)}:")
    sys.stdout.write("".join(f"  {line}\n" for line in snippet.splitlines()))
    return 0


def add_commands(commands: Any) -> None:
    """Add ``model init`` to an ``argparse`` sub-parser collection (``mlops``'s)."""
    model = commands.add_parser("model", help="bring your own training script (init scaffolds one)")
    sub = model.add_subparsers(dest="model_command", required=True)
    init_parser = sub.add_parser("init", help="scaffold models/<dataset>/train.py (SageMaker script mode)")
    init_parser.add_argument("--dataset", required=True, help="the declared dataset")
    init_parser.add_argument("--datasets", type=Path, default=DATASETS_DIR, help="the declarations folder")
    init_parser.add_argument("--models", type=Path, default=MODELS_DIR, help="where entry points live")
    init_parser.add_argument("--force", action="store_true", help="replace an existing script")
    init_parser.set_defaults(func=_init_command)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))
