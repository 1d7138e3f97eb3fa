"""A dataset's own training script (``model.entry_point``): the helper it uses (``pipelines/training/byo.py``),
the job running it (``pipelines/training/entry_point.py`` through ``train.main``) and the reasons it fails with."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from cli import model as model_cli
from localcloud import cli as mlops
from pipelines.inference import inference
from pipelines.schema import DatasetSchema, ModelSpec
from pipelines.training import byo, entry_point, train
from pipelines.training.hyperparameters import Hyperparameters
from stacks.datasets import DATASETS_DIR
from tests.samples import platform_for, use_platform
from tests.unit.pipelines.conftest import TEST_HYPERPARAMETERS, SampleRun, TrainingRun

FAST = {"n_estimators": 12, "min_samples_leaf": 3}


def _script(root: Path, name: str, body: str) -> ModelSpec:
    """``<root>/models/<name>/train.py`` with ``body``; the model section pointing at it."""
    directory = root / "models" / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "train.py").write_text(textwrap.dedent(body))
    return ModelSpec(entry_point=f"models/{name}", hyperparameters=FAST)


def _train(
    run: SampleRun,
    model: ModelSpec,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    training_runner: Callable[..., TrainingRun],
) -> tuple[DatasetSchema, TrainingRun]:
    """``train.main`` for the sample declaring ``model``, its scripts under ``tmp_path`` (the code root)."""
    schema = replace(run.schema, model=model)
    use_platform(monkeypatch, tmp_path, platform_for([schema]))
    monkeypatch.setattr(entry_point, "CODE_ROOT", tmp_path)
    hyperparameters = train.job_hyperparameters(TEST_HYPERPARAMETERS.items(), schema.name)
    return schema, training_runner(tmp_path / "opt_ml", run.curated, hyperparameters)


@pytest.mark.parametrize("name", ["churn", "tickets", "energy"])
def test_the_scaffolded_script_trains_and_its_model_serves(
    name: str,
    sample_run: Callable[[str], SampleRun],
    training_runner: Callable[..., TrainingRun],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the script `mlops model init --dataset <name>` writes, declared as the dataset's entry point
    code = model_cli.main(["model", "init", "--dataset", name, "--models", str(tmp_path / "models")])
    assert code == 0
    script = tmp_path / "models" / name / "train.py"
    assert "byo.save_model(model)" in script.read_text()
    run = sample_run(name)

    # When the training job runs it on the sample's curated splits
    schema, result = _train(
        run, ModelSpec(entry_point=f"models/{name}", hyperparameters=FAST), tmp_path, monkeypatch, training_runner
    )

    # Then the job succeeds with the task's metrics logged and the script recorded in the archive's metadata
    assert result.exit_code == 0
    metadata = result.metadata
    assert metadata["estimator"]["entry_point"] == f"models/{name}"
    assert metadata["estimator"]["class"] == "Pipeline"
    assert metadata["estimator"]["parameters"] == FAST
    assert len(metadata["estimator"]["script_sha256"]) == 64
    assert metadata["schema"]["model"] == {"entry_point": f"models/{name}", "hyperparameters": FAST}
    primary = schema.evaluation_gate.metric
    assert f"validation:{primary}=" in result.stdout
    # and the declared hyperparameters reached the script as arguments
    loaded = inference.model_fn(str(result.model_dir))
    assert loaded.pipeline.named_steps["model"].get_params()["n_estimators"] == FAST["n_estimators"]
    # and the archive serves through the handler with the task's response contract
    test_rows = train.load_split(run.curated, schema, "test").head(3)
    body = {"instances": [{f: _plain(row[f]) for f in schema.feature_names} for _, row in test_rows.iterrows()]}
    served = inference.transform_fn(loaded, json.dumps(body), "application/json", None)
    assert isinstance(served, tuple), served
    predictions = json.loads(served[0])["predictions"]
    keys = {"binary": ["probability", "label"], "multiclass": ["label", "probabilities"], "regression": ["value"]}
    assert [list(p) for p in predictions] == [keys[schema.task]] * 3


def _plain(value: object) -> object:
    return None if value is None or value != value else value.item() if hasattr(value, "item") else value


def test_a_script_that_raises_fails_the_job_with_its_tracebacks_last_lines(
    sample_run: Callable[[str], SampleRun],
    training_runner: Callable[..., TrainingRun],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a script that raises
    model = _script(
        tmp_path,
        "crash",
        """
        def fit():
            raise ValueError("the learning rate must be positive, got -1")
        fit()
        """,
    )

    # When the job runs it / Then it fails with the script's path and the traceback's last lines
    with pytest.raises(entry_point.EntryPointError) as error:
        _train(sample_run("churn"), model, tmp_path, monkeypatch, training_runner)
    message = str(error.value)
    assert message.startswith("models/crash/train.py failed: ")
    assert 'raise ValueError("the learning rate must be positive, got -1") | ' in message
    assert message.endswith("ValueError: the learning rate must be positive, got -1")
    assert "\n" not in message  # one line: the job's FailureReason


def test_a_script_that_saves_no_model_fails_with_that_reason(
    sample_run: Callable[[str], SampleRun],
    training_runner: Callable[..., TrainingRun],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a script that exits cleanly without saving
    model = _script(tmp_path, "silent", "print('fitted, but forgot to save')\n")

    # When the job runs it / Then it fails saying no model was written and how to save one
    with pytest.raises(entry_point.EntryPointError, match=r"^models/silent/train\.py wrote no model: save it with "):
        _train(sample_run("churn"), model, tmp_path, monkeypatch, training_runner)
    assert not (tmp_path / "opt_ml" / "model" / train.METADATA_FILE).exists()


def test_a_model_of_a_class_defined_in_the_script_is_refused_before_registration(
    sample_run: Callable[[str], SampleRun],
    training_runner: Callable[..., TrainingRun],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a script saving an instance of its own class (the endpoint could never unpickle it)
    model = _script(
        tmp_path,
        "local-class",
        """
        from pipelines.training import byo

        class Constant:
            classes_ = [0, 1]
            def predict_proba(self, frame):
                return [[0.5, 0.5]] * len(frame)

        byo.save_model(Constant())
        """,
    )

    # When the job runs it / Then it fails saying the model cannot be loaded outside the script
    with pytest.raises(entry_point.EntryPointError, match=r"^the saved model cannot be loaded outside the script: "):
        _train(sample_run("churn"), model, tmp_path, monkeypatch, training_runner)


def test_a_model_that_cannot_predict_the_curated_rows_fails_with_that_reason(
    sample_run: Callable[[str], SampleRun],
    training_runner: Callable[..., TrainingRun],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a script whose model scores the curated splits but breaks on a request's missing value: it was
    # fitted without an imputer, on rows where total_charges is never missing
    model = _script(
        tmp_path,
        "no-imputer",
        """
        from sklearn.compose import ColumnTransformer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from pipelines.training import byo

        data = byo.training_data()
        numeric = [*data.schema.numeric_features, *data.schema.engineered_names]
        keep = data.train.X[numeric].notna().all(axis=1)
        model = make_pipeline(ColumnTransformer([("n", "passthrough", numeric)]), LogisticRegression(max_iter=200))
        model.fit(data.train.X[keep], data.train.y[keep.to_numpy()])
        byo.save_model(model)
        """,
    )
    run = sample_run("churn")
    validation = train.load_split(run.curated, run.schema, "validation")
    assert validation["total_charges"].isna().any()  # the sample has missing values to serve

    # When the job runs it / Then it fails naming the split it cannot predict, before any metadata is written
    with pytest.raises(entry_point.EntryPointError, match=r"^the model cannot predict the train split: ValueError: "):
        _train(run, model, tmp_path, monkeypatch, training_runner)
    assert not (tmp_path / "opt_ml" / "model" / train.METADATA_FILE).exists()


class SmallRequestsFail:
    """Scores whole splits but fails on a request-sized batch (importable, so it unpickles)."""

    classes_ = [0, 1]

    def predict_proba(self, frame: object) -> list[list[float]]:
        if len(frame) < 50:  # type: ignore[arg-type]
            raise RuntimeError("batch too small")
        return [[0.5, 0.5]] * len(frame)  # type: ignore[arg-type]


def test_an_archive_that_cannot_answer_the_golden_payloads_fails_with_that_reason(
    sample_run: Callable[[str], SampleRun], tmp_path: Path
) -> None:
    # Given an archive whose model scores the splits but fails on the endpoint's requests
    run = sample_run("churn")
    validation = train.load_split(run.curated, run.schema, "validation")
    result = train.TrainingResult(SmallRequestsFail(), {"train": {}, "validation": {}}, {"train": 1, "validation": 1})
    train.write_model_artifacts(tmp_path, result, run.schema, Hyperparameters(), estimator={"class": "x"})

    # When the job checks it through the inference handler / Then it fails saying so, with the model's error
    with pytest.raises(entry_point.EntryPointError) as error:
        entry_point.check_serves(tmp_path, validation)
    assert str(error.value) == (
        "the model cannot predict the golden payloads (the endpoint's requests): RuntimeError: batch too small"
    )


def test_the_helper_parses_declared_arguments_and_ignores_the_platforms() -> None:
    # Given the command line a job gives a script (the dataset, the stage's hyperparameters, the declared ones)
    argv = ["--dataset", "churn", "--max_iter", "200", "--depth", "7", "--rate", "0.5", "--balanced", "true"]

    # When the script reads its arguments by their defaults
    args = byo.arguments(argv, depth=3, rate=0.1, balanced=False, note="x")

    # Then each is typed by its default; the others are ignored
    assert (args.dataset, args.depth, args.rate, args.balanced, args.note) == ("churn", 7, 0.5, True, "x")
    assert not hasattr(args, "max_iter")


def test_the_job_passes_script_mode_arguments_declared_last(sample_run: Callable[[str], SampleRun]) -> None:
    # Given a declaration with a script and its hyperparameters
    schema = replace(
        sample_run("churn").schema, model=ModelSpec(entry_point="models/x", hyperparameters={"seed": 7, "flag": True})
    )

    # When the job builds the script's command line
    argv = entry_point.script_arguments(schema, Hyperparameters())

    # Then it is --name value pairs: the dataset, the stage's values, the declared ones winning
    pairs = dict(zip(argv[::2], argv[1::2], strict=True))
    assert pairs["--dataset"] == "churn"
    assert pairs["--max_iter"] == "200"
    assert (pairs["--seed"], pairs["--flag"]) == ("7", "true")


def test_save_model_refuses_what_cannot_predict(tmp_path: Path) -> None:
    # Given something that is not a model / When it is saved / Then the helper refuses, naming its type
    with pytest.raises(TypeError, match=r"^a dict cannot predict"):
        byo.save_model({"weights": [1, 2]}, tmp_path)
    # and a model is saved where serving loads it
    from sklearn.dummy import DummyClassifier

    path = byo.save_model(DummyClassifier().fit([[0], [1]], [0, 1]), tmp_path)
    assert path == tmp_path / inference.MODEL_FILE


def test_model_init_refuses_to_overwrite_and_an_undeclared_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a script scaffolded by the `mlops` command
    models = str(tmp_path / "models")
    assert mlops.main(["model", "init", "--dataset", "energy", "--models", models]) == 0
    out = capsys.readouterr().out
    assert "entry_point:" in out

    # When init runs again, or for a dataset nobody declared / Then it refuses with the reason (exit 2)
    assert model_cli.main(["model", "init", "--dataset", "energy", "--models", models]) == 2
    assert "already exists; pass --force to replace it" in capsys.readouterr().err
    assert model_cli.main(["model", "init", "--dataset", "nope", "--models", models]) == 2
    assert f"{DATASETS_DIR / 'nope.yaml'}: no such declaration" in capsys.readouterr().err
