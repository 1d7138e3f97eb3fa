"""The evaluation inside the training job (``pipelines/training/held_out.py`` through ``train.main``): the held-out
channels are kept from the fit, then the evaluation module runs on the saved model."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from pipelines import platform as platform_module
from pipelines.schema import ModelSpec
from pipelines.training import entry_point, held_out, train
from tests.samples import platform_for, use_platform
from tests.unit.pipelines.conftest import TEST_HYPERPARAMETERS, SampleRun, TrainingRun

REPOSITORY = Path(__file__).resolve().parents[4]
FAST = {"n_estimators": 12, "min_samples_leaf": 3}


def _channel_copy(source: Path, destination: Path) -> Path:
    """A job's channel directory (the job deletes the held-out files from it: never point it at a fixture)."""
    shutil.copytree(source, destination)
    return destination


def _code_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: SampleRun, model: ModelSpec | None) -> Path:
    """The job's source directory: the ``pipelines`` package with the platform document declaring the sample
    (``model`` as its model section), as the stack ships it; the evaluation's ``PYTHONPATH``."""
    schema = run.schema if model is None else replace(run.schema, model=model)
    root = tmp_path / "code"
    shutil.copytree(REPOSITORY / "pipelines", root / "pipelines", ignore=shutil.ignore_patterns("__pycache__"))
    document = use_platform(monkeypatch, tmp_path, platform_for([schema]))
    (root / "pipelines" / platform_module.DOCUMENT_NAME).write_text(document.to_json())
    monkeypatch.setattr(held_out, "CODE_ROOT", root)
    monkeypatch.setattr(entry_point, "CODE_ROOT", root)
    return root


@pytest.fixture
def churn(sample_run: Callable[[str], SampleRun]) -> SampleRun:
    return sample_run("churn")


@pytest.fixture
def start_job(
    churn: SampleRun,
    training_runner: Callable[..., TrainingRun],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    serve_on_path: None,  # the smoke test runs the image's serve
) -> Callable[..., TrainingRun]:
    """``start_job(model=None, champion=None)``: ``train.main`` of an upload's job for churn (``model`` its model
    section): the train and validation channels, the held-out test split and the champion channel (prepare's
    NO_CHAMPION placeholder unless ``champion`` is a folder holding an archive)."""

    def start(model: ModelSpec | None = None, champion: Path | None = None) -> TrainingRun:
        _code_root(tmp_path, monkeypatch, churn, model)
        test = _channel_copy(churn.curated / "split=test", tmp_path / "channels" / "test")
        if champion is None:
            champion = tmp_path / "channels" / "champion"
            champion.mkdir(parents=True)
            (champion / "NO_CHAMPION").write_text("no Approved model package\n")
        hyperparameters = train.job_hyperparameters(TEST_HYPERPARAMETERS.items(), churn.schema.name)
        extra = {"SM_CHANNEL_TEST": str(test), "SM_CHANNEL_CHAMPION": str(champion)}
        return training_runner(tmp_path / "opt_ml", churn.curated, hyperparameters, extra)

    return start


def test_a_job_with_the_held_out_channels_evaluates_the_reloaded_archive_and_smoke_tests_it(
    churn: SampleRun, start_job: Callable[..., TrainingRun], tmp_path: Path
) -> None:
    # Given churn's curated splits and a first run (no champion: prepare's placeholder in the champion channel)
    # When the training job runs with the held-out channels
    job = start_job()
    # Then it trained, and its output data (SageMaker's output.tar.gz) holds the evaluation of the saved model
    assert job.exit_code == 0
    report = json.loads((job.output_data_dir / "evaluation.json").read_text())
    golden = json.loads((job.output_data_dir / "golden.json").read_text())
    assert report["model_version"] == job.metadata["model_version"] == golden["model_version"]
    assert report["test_rows"] == len(train.load_split(churn.curated, churn.schema, "test"))
    assert report["champion"] is None
    assert report["decision"]["reason"].startswith("no champion; challenger")
    # and the image's serve answered the golden payloads on that archive
    assert (report["smoke"]["passed"], report["smoke"]["requests"], report["smoke"]["command"]) == (True, 2, "serve")
    assert "gate " in job.stdout and "smoke test PASSED" in job.stdout
    # and the held-out files were taken out of their channel before the fit
    assert [p for p in (tmp_path / "channels").rglob("*") if p.is_file()] == []


def test_the_champion_channel_is_evaluated_on_the_same_test_split(
    churn: SampleRun, start_job: Callable[..., TrainingRun], tmp_path: Path
) -> None:
    # Given a champion: the archive of the sample's own earlier training run (the registered ModelDataUrl's object)
    champion = tmp_path / "channels" / "champion"
    train.package_model(churn.training.model_dir, champion / "model.tar.gz")
    # When a training job with the same data and seed runs against it
    job = start_job(champion=champion)
    # Then the report compares both on the test split: the same model ties, and a tie fails the gate
    assert job.exit_code == 0
    report = json.loads((job.output_data_dir / "evaluation.json").read_text())
    assert report["champion"]["model_version"] == churn.training.metadata["model_version"]
    assert report["decision"]["passed"] is False
    assert report["decision"]["reason"].startswith("tie: challenger")


def test_a_users_script_trains_without_the_test_split_or_the_champion(
    churn: SampleRun, start_job: Callable[..., TrainingRun], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a dataset's own script that records what it can see of the held-out channels, then trains
    directory = tmp_path / "code" / "models" / "peek"
    body = """\
        import json, os
        from pathlib import Path
        from sklearn.compose import ColumnTransformer
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from pipelines.training import byo

        args = byo.arguments(n_estimators=10, min_samples_leaf=1)
        data = byo.training_data()
        seen = {
            "variables": sorted(k for k in os.environ if k.startswith("SM_CHANNEL_")),
            "channels": json.loads(os.environ.get("SM_CHANNELS", "[]")),
            "test_files": sorted(str(p) for p in Path(os.environ["HELD_OUT_TEST"]).rglob("*") if p.is_file()),
            "champion_files": sorted(str(p) for p in Path(os.environ["HELD_OUT_CHAMPION"]).rglob("*") if p.is_file()),
        }
        Path(os.environ["PEEK_FILE"]).write_text(json.dumps(seen))
        numeric = list(data.train.X.select_dtypes("number").columns)
        model = make_pipeline(
            ColumnTransformer([("numeric", SimpleImputer(), numeric)]),
            RandomForestClassifier(n_estimators=args.n_estimators, min_samples_leaf=args.min_samples_leaf),
        )
        model.fit(data.train.X, data.train.y)
        byo.save_model(model)
        """
    directory.mkdir(parents=True)
    (directory / "train.py").write_text(textwrap.dedent(body))
    peek = tmp_path / "peek.json"
    monkeypatch.setenv("PEEK_FILE", str(peek))
    monkeypatch.setenv("HELD_OUT_TEST", str(tmp_path / "channels" / "test"))
    monkeypatch.setenv("HELD_OUT_CHAMPION", str(tmp_path / "channels" / "champion"))
    monkeypatch.setenv("SM_CHANNELS", json.dumps(["champion", "test", "train", "validation"]))
    # When the job runs it with the held-out channels
    job = start_job(ModelSpec(entry_point="models/peek", hyperparameters=FAST))
    # Then the script saw the train and validation channels only: no variable names the others, no file is there
    seen = json.loads(peek.read_text())
    assert seen == {
        "variables": ["SM_CHANNEL_TRAIN", "SM_CHANNEL_VALIDATION"],
        "channels": ["train", "validation"],
        "test_files": [],
        "champion_files": [],
    }
    # and the platform evaluated its model after the fit, on the test split
    assert job.exit_code == 0, job.stdout
    report = json.loads((job.output_data_dir / "evaluation.json").read_text())
    assert report["test_rows"] == len(train.load_split(churn.curated, churn.schema, "test"))


def test_seal_takes_the_files_out_and_restore_puts_them_back(tmp_path: Path) -> None:
    # Given a test channel with nested files, a champion channel, and no other held-out channel variable
    test = tmp_path / "test"
    (test / "split=test").mkdir(parents=True)
    (test / "split=test" / "part-0.parquet").write_bytes(b"rows")
    (tmp_path / "champion").mkdir()
    (tmp_path / "champion" / "model.tar.gz").write_bytes(b"archive")
    environ = {"SM_CHANNEL_TEST": str(test), "SM_CHANNEL_CHAMPION": str(tmp_path / "champion")}
    # When they are sealed
    sealed = held_out.seal({**environ, "SM_CHANNEL_TRAIN": str(tmp_path / "train")})
    # Then no file is left on disk, and restoring writes the same tree elsewhere
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert sealed.channels == ("test", "champion")
    restored = sealed.restore(tmp_path / "scratch")
    assert (restored["test"] / "split=test" / "part-0.parquet").read_bytes() == b"rows"
    assert (restored["champion"] / "model.tar.gz").read_bytes() == b"archive"
    # and a job without the held-out channels (a tuning trial) seals nothing
    assert held_out.seal({"SM_CHANNEL_TRAIN": str(tmp_path)}).channels == ()


def test_the_fit_environment_names_no_held_out_channel() -> None:
    # Given the toolkit's variables of a job with four channels
    config = {name: {"TrainingInputMode": "File"} for name in ("train", "validation", "test", "champion")}
    environ = {
        "SM_CHANNEL_TRAIN": "/opt/ml/input/data/train",
        "SM_CHANNEL_TEST": "/opt/ml/input/data/test",
        "SM_CHANNEL_CHAMPION": "/opt/ml/input/data/champion",
        "SM_CHANNELS": json.dumps(list(config)),
        "SM_INPUT_DATA_CONFIG": json.dumps(config),
        "SM_TRAINING_ENV": json.dumps(
            {"channel_input_dirs": {name: f"/opt/ml/input/data/{name}" for name in config}, "input_data_config": config}
        ),
        "SM_MODEL_DIR": "/opt/ml/model",
    }
    # When the script's environment is made
    env = held_out.fit_environment(environ)
    # Then only train and validation are named anywhere
    assert "test" not in json.dumps(env) and "champion" not in json.dumps(env)
    assert json.loads(env["SM_CHANNELS"]) == ["train", "validation"]
    assert sorted(json.loads(env["SM_TRAINING_ENV"])["channel_input_dirs"]) == ["train", "validation"]
    assert env["SM_MODEL_DIR"] == "/opt/ml/model" and env["SM_CHANNEL_TRAIN"] == "/opt/ml/input/data/train"


def test_a_job_without_a_test_split_to_evaluate_on_fails(tmp_path: Path) -> None:
    # Given a job whose only held-out channel is the champion / Then the evaluation refuses to run without test rows
    with pytest.raises(held_out.EvaluationFailed, match="the training job has no test channel"):
        held_out.evaluate(held_out.Sealed({"champion": {}}), tmp_path, tmp_path / "out", "churn")
    with pytest.raises(held_out.EvaluationFailed, match="the test channel is empty"):
        held_out.evaluate(held_out.Sealed({"test": {}}), tmp_path, tmp_path / "out", "churn")
