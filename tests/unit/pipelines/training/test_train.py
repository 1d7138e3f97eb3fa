"""The SageMaker training entry point, run as the training toolkit would run it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
from sagemaker_training import environment as toolkit_environment
from sagemaker_training import mapping
from sklearn.metrics import roc_auc_score

from pipelines.evaluation import BINARY_METRICS
from pipelines.evaluation.evaluate import unpack_model
from pipelines.features import engineer_features, model_frame, model_input_columns
from pipelines.schema import DatasetSchema, ModelSpec, Tuning, TuningRange
from pipelines.training import estimators, train
from pipelines.training.metric_definitions import METRIC_DEFINITIONS
from stacks.config import TrainingSettings
from tests.samples import CHURN_SCHEMA, platform_for, use_platform


def _captured_metrics(stdout: str) -> dict[str, float]:
    """What CloudWatch would record: every MetricDefinition's first match in the job log."""
    captured = {}
    for definition in METRIC_DEFINITIONS:
        match = re.search(definition["Regex"], stdout)
        if match:
            captured[definition["Name"]] = float(match.group(1))
    return captured


# ---- main() under the SageMaker layout -------------------------------------------------------------


def test_main_writes_a_model_that_loads_and_predicts(trained: Any, churn_splits: dict[str, pd.DataFrame]) -> None:
    # Given the session's training run (train.main under a local /opt/ml layout)
    # When the model file is loaded and scores the held-out test rows
    model = joblib.load(trained.model_dir / train.MODEL_FILE)
    test = churn_splits["test"]
    probabilities = model.predict_proba(engineer_features(test[CHURN_SCHEMA.feature_names], CHURN_SCHEMA))[:, 1]

    # Then the job succeeded and the model learned the signal
    assert trained.exit_code == 0
    assert list(model.feature_names_in_) == model_input_columns(CHURN_SCHEMA)
    assert roc_auc_score(test["churned"], probabilities) > 0.75


def test_metadata_records_schema_features_hyperparameters_metrics_and_version(trained: Any) -> None:
    # Given the session's training run
    metadata = trained.metadata

    # Then the metadata is the contract the evaluation job and the endpoint read
    assert DatasetSchema.from_dict(metadata["schema"]) == CHURN_SCHEMA
    assert metadata["features"] == CHURN_SCHEMA.feature_names
    assert metadata["model_input_columns"] == model_input_columns(CHURN_SCHEMA)
    assert metadata["hyperparameters"] == {
        "max_iter": 60,
        "learning_rate": 0.1,
        "max_leaf_nodes": 15,
        "l2_regularization": 0.0,
        "seed": 42,
    }
    assert set(metadata["metrics"]) == {"train", "validation"}
    assert set(metadata["metrics"]["validation"]) == set(BINARY_METRICS)
    assert 0.75 < metadata["metrics"]["validation"]["auc"] < 1.0
    assert metadata["rows"] == {"train": 3000, "validation": 1000}
    assert metadata["sklearn_version"] == sklearn.__version__
    assert metadata["decision_threshold"] == 0.5
    model_hash = train._file_digest(trained.model_dir / train.MODEL_FILE)
    assert metadata["model_version"] == f"sha256-{model_hash[:16]}"


def test_metrics_are_also_written_to_the_output_data_dir(trained: Any) -> None:
    # Given the session's training run
    # When the job's output data (output.tar.gz content) is read
    metrics = json.loads((trained.output_data_dir / train.METRICS_FILE).read_text())

    # Then it holds the same metrics as the model metadata
    assert metrics == trained.metadata["metrics"]


def test_printed_metrics_are_captured_by_the_metric_definitions(trained: Any) -> None:
    # Given the job log of the session's run
    # When every MetricDefinition regex is applied to it, as SageMaker does
    captured = _captured_metrics(trained.stdout)

    # Then each binary metric of both splits is captured, with the value the metadata records
    assert set(captured) == {f"{split}:{name}" for split in ("train", "validation") for name in BINARY_METRICS}
    for split, values in trained.metadata["metrics"].items():
        for name, value in values.items():
            assert captured[f"{split}:{name}"] == pytest.approx(value, abs=1e-6)
    assert "validation:auc=" in trained.stdout
    assert re.search(r"^validation:auc=0\.\d{6};$", trained.stdout, re.MULTILINE)


def test_metric_definitions_fit_the_sagemaker_limits() -> None:
    # Given the definitions the CDK puts into AlgorithmSpecification.MetricDefinitions
    names = [d["Name"] for d in METRIC_DEFINITIONS]

    # Then they are unique, at most 40, and each regex has exactly one group and fits 500 characters
    assert len(names) == len(set(names)) <= 40
    assert all(len(d["Regex"]) <= 500 and re.compile(d["Regex"]).groups == 1 for d in METRIC_DEFINITIONS)


def test_model_version_comes_from_the_environment_when_given(
    tmp_path: Path,
    curated_dir: Path,
    job_hyperparameters: dict[str, str],
    training_runner: Callable[..., Any],
) -> None:
    # Given MODEL_VERSION set on the training job
    hps = {**job_hyperparameters, "max_iter": "5"}

    # When the job runs
    run = training_runner(tmp_path, curated_dir, hps, extra_env={"MODEL_VERSION": "churn-2026-11-26-1"})

    # Then that is the version of the model
    assert run.metadata["model_version"] == "churn-2026-11-26-1"
    assert "model_version=churn-2026-11-26-1" in run.stdout


def test_training_is_deterministic_given_the_seed(
    tmp_path: Path,
    churn_splits: dict[str, pd.DataFrame],
    write_curated: Callable[..., Path],
    job_hyperparameters: dict[str, str],
    training_runner: Callable[..., Any],
) -> None:
    # Given a small curated dataset and the same hyperparameters, twice, and once more with another seed
    curated = write_curated(
        tmp_path / "curated",
        {"train": churn_splits["train"].head(1200), "validation": churn_splits["validation"].head(400)},
    )
    hps = {**job_hyperparameters, "max_iter": "15"}

    # When the job runs three times
    first = training_runner(tmp_path / "a", curated, hps)
    second = training_runner(tmp_path / "b", curated, hps)
    other_seed = training_runner(tmp_path / "c", curated, {**hps, "seed": "7"})

    # Then the same seed gives a byte-identical model (same content-hash version) and the same metrics
    assert first.metadata["model_version"] == second.metadata["model_version"]
    assert first.metadata["metrics"] == second.metadata["metrics"]
    model_bytes = (first.model_dir / train.MODEL_FILE).read_bytes()
    assert model_bytes == (second.model_dir / train.MODEL_FILE).read_bytes()
    # and the seed reaches the estimator
    assert other_seed.metadata["hyperparameters"]["seed"] == 7
    assert joblib.load(other_seed.model_dir / train.MODEL_FILE)[-1].random_state == 7


# ---- the inference code in the model archive ------------------------------------------------------


def test_model_dir_carries_self_contained_inference_code(trained: Any) -> None:
    # Given the code/ directory the job writes next to the model
    code = trained.model_dir / "code"

    # Then it holds inference.py and exactly the pipelines modules it imports, identical to the repo's
    shipped = sorted(p.relative_to(code).as_posix() for p in code.rglob("*.py"))
    assert shipped == [
        "inference.py",
        "pipelines/__init__.py",
        "pipelines/features.py",
        "pipelines/schema.py",
    ]
    assert (code / "inference.py").read_bytes() == train.INFERENCE_SCRIPT.read_bytes()


def test_inference_code_imports_and_serves_with_only_code_dir_on_the_path(trained: Any, tmp_path: Path) -> None:
    # Given a fresh interpreter that sees only code/ first on sys.path, like the serving container
    script = f"""
import sys
sys.path.insert(0, {str(trained.model_dir / "code")!r})
import inference, pipelines
assert inference.__file__.startswith({str(trained.model_dir)!r}), inference.__file__
assert pipelines.__file__.startswith({str(trained.model_dir)!r}), pipelines.__file__
model = inference.model_fn({str(trained.model_dir)!r})
row = "12,70.5,846.0,2,40.0,45,month-to-month,electronic-check,fiber"
body, content_type = inference.transform_fn(model, row, "text/csv", "application/json")
print(content_type)
print(body)
"""

    # When it imports inference.py and serves a CSV row
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )

    # Then the archive's own modules answer with the model's version
    assert result.returncode == 0, result.stderr
    content_type, body = result.stdout.strip().split("\n", 1)
    response = json.loads(body)
    assert content_type == "application/json"
    assert response["model_version"] == trained.metadata["model_version"]
    assert 0.0 <= response["predictions"][0]["probability"] <= 1.0


def test_package_model_creates_a_reproducible_sagemaker_style_archive(trained: Any, tmp_path: Path) -> None:
    # Given the session's model directory
    # When it is packed twice
    first = train.package_model(trained.model_dir, tmp_path / "one" / "model.tar.gz")
    second = train.package_model(trained.model_dir, tmp_path / "two" / "model.tar.gz")

    # Then the archive lists the model files at its root plus code/, and is byte-for-byte reproducible
    with tarfile.open(first, "r:gz") as archive:
        names = set(archive.getnames())
    assert {"model.joblib", "model_metadata.json", "code/inference.py", "code/pipelines/features.py"} <= names
    assert not any("__pycache__" in name or name.startswith("/") for name in names)
    assert first.read_bytes() == second.read_bytes()

    # and it unpacks to the same files
    unpacked = unpack_model(first, tmp_path / "unpacked")
    assert (unpacked / "model.joblib").read_bytes() == (trained.model_dir / "model.joblib").read_bytes()


def test_package_model_skips_the_archive_itself_when_written_inside_the_model_dir(tmp_path: Path) -> None:
    # Given a model dir with one file
    (tmp_path / "model.joblib").write_bytes(b"model")

    # When the archive is written into that same directory, twice
    train.package_model(tmp_path, tmp_path / "model.tar.gz")
    archive_path = train.package_model(tmp_path, tmp_path / "model.tar.gz")

    # Then it does not contain itself
    with tarfile.open(archive_path, "r:gz") as archive:
        assert archive.getnames() == ["model.joblib"]


# ---- hyperparameters and environment ---------------------------------------------------------------


def test_hyperparameter_defaults_match_the_stage_configuration() -> None:
    # Given the stage's training hyperparameters
    configured = TrainingSettings().hyperparameters

    # When the script parses a command line with only the dataset
    hyperparameters, schema = train.parse_args(["--dataset", "churn"])

    # Then its defaults are the configured values (one definition)
    assert hyperparameters == configured
    assert train.Hyperparameters is type(configured)
    assert schema == CHURN_SCHEMA


def test_a_run_without_a_dataset_fails_with_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    # Given neither a --dataset argument nor a dataset hyperparameter (no dataset is built in)
    # When the script parses its command line
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args([])

    # Then it exits with a usage error that says what is missing
    assert exit_info.value.code == 2
    assert "the declared dataset to train is required: --dataset or the dataset hyperparameter" in (
        capsys.readouterr().err
    )


def test_configured_hyperparameters_reach_the_script_through_the_toolkit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stage that overrides some hyperparameters, as the job's HyperParameters
    configured = train.Hyperparameters(max_iter=300, learning_rate=0.05, l2_regularization=0.5, seed=9)
    path = tmp_path / "hyperparameters.json"
    path.write_text(json.dumps(train.job_hyperparameters(configured.items(), CHURN_SCHEMA.name)))
    monkeypatch.setattr(toolkit_environment, "hyperparameters_file_dir", str(path))

    # When the toolkit decodes them into the script's command line
    argv = mapping.to_cmd_args(toolkit_environment.read_hyperparameters())

    # Then the script parses exactly the configured values
    assert train.parse_args(argv) == (configured, CHURN_SCHEMA)


def test_job_hyperparameters_survive_the_toolkit_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, job_hyperparameters: dict[str, str]
) -> None:
    # Given the HyperParameters of the CreateTrainingJob request, as SageMaker writes them to disk
    path = tmp_path / "hyperparameters.json"
    path.write_text(json.dumps(job_hyperparameters))
    monkeypatch.setattr(toolkit_environment, "hyperparameters_file_dir", str(path))

    # When the toolkit reads them and builds the script's command line and SM_HPS
    decoded = toolkit_environment.read_hyperparameters()
    argv = mapping.to_cmd_args(decoded)
    sm_hps = json.loads(mapping.to_env_vars({"hps": decoded})["SM_HPS"])

    # Then the script sees the dataset's schema and the values from both sources
    from_cli = train.parse_args(argv)
    from_env = train.parse_args([], sm_hps)
    assert from_cli == from_env
    assert from_cli[1] == CHURN_SCHEMA
    assert from_cli[0] == train.Hyperparameters(max_iter=60, max_leaf_nodes=15)
    assert all(len(value) <= 2500 for value in job_hyperparameters.values())


def test_command_line_overrides_sm_hps() -> None:
    # Given SM_HPS and a command line that disagree
    # When the arguments are parsed
    sm_hps = {"max_iter": 300, "learning_rate": 0.2, "dataset": "churn"}
    hyperparameters, _ = train.parse_args(["--max_iter", "7"], sm_hps)

    # Then the command line wins, SM_HPS fills the rest
    assert hyperparameters.max_iter == 7
    assert hyperparameters.learning_rate == 0.2


def test_a_dataset_the_document_does_not_declare_fails_naming_the_declared_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a training job for a dataset the shipped platform document does not declare
    # When the script parses its arguments
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(["--dataset", "weather"])

    # Then it stops with a usage error that lists the declared datasets
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "dataset 'weather' is not declared in this stage (declared datasets: churn, energy, tickets)" in error


def test_a_dataset_name_that_json_would_decode_stays_a_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a dataset named "null" (declarable: lowercase letters), sent as the toolkit expects: a JSON string
    path = tmp_path / "hyperparameters.json"
    path.write_text(json.dumps(train.job_hyperparameters(train.Hyperparameters().items(), "null")))
    monkeypatch.setattr(toolkit_environment, "hyperparameters_file_dir", str(path))

    # When the toolkit decodes the hyperparameters
    decoded = toolkit_environment.read_hyperparameters()

    # Then the script receives the name, not JSON null
    assert decoded["dataset"] == "null"
    argv = mapping.to_cmd_args(decoded)
    assert argv[argv.index("--dataset") + 1] == "null"


def test_unknown_hyperparameter_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a hyperparameter the script does not know (a typo in the stage config)
    # When the script parses it
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(["--max_iters", "10"])

    # Then the job fails naming it
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --max_iters 10" in capsys.readouterr().err


def test_environment_defaults_are_the_opt_ml_layout() -> None:
    # Given no SageMaker variables
    # When the environment is read
    env = train.TrainingEnv.from_environ({})

    # Then the paths are SageMaker's
    assert env.model_dir == Path("/opt/ml/model")
    assert env.train_dir == Path("/opt/ml/input/data/train")
    assert env.validation_dir == Path("/opt/ml/input/data/validation")
    assert env.output_data_dir == Path("/opt/ml/output/data")
    assert env.hyperparameters == {}
    assert env.model_version is None


def test_job_hyperparameters_refuse_a_value_over_the_api_limit() -> None:
    # Given a hyperparameter value longer than CreateTrainingJob accepts
    # When the job's hyperparameters are built / Then the error names it
    with pytest.raises(ValueError, match=r"hyperparameter 'note' is 2600 characters; the limit is 2500"):
        train.job_hyperparameters([("note", "x" * 2600)], CHURN_SCHEMA.name)


# ---- load_split -----------------------------------------------------------------------------------


def test_load_split_reads_nested_files_and_recomputes_absent_engineered_columns(
    tmp_path: Path, churn_splits: dict[str, pd.DataFrame], write_curated: Callable[..., Path]
) -> None:
    # Given a channel with the split's rows spread over nested part files, without engineered columns
    write_curated(tmp_path / "nested" / "run=1", {"train": churn_splits["train"]}, files_per_split=3)

    # When the split is loaded
    loaded = train.load_split(tmp_path, CHURN_SCHEMA)

    # Then all rows come back with normalised types, and model frames get the engineered columns
    assert len(loaded) == len(churn_splits["train"])
    assert loaded["tenure_months"].dtype == np.float64
    assert loaded["churned"].dtype == np.int64
    assert loaded["contract"].map(type).eq(str).all()
    assert loaded["total_charges"].isna().sum() == churn_splits["train"]["total_charges"].isna().sum()
    frame = model_frame(loaded, CHURN_SCHEMA)
    assert list(frame.columns) == model_input_columns(CHURN_SCHEMA)
    assert frame["support_calls_per_year"].notna().all()


def test_load_split_keeps_engineered_columns_written_by_the_etl(
    tmp_path: Path, churn_splits: dict[str, pd.DataFrame], write_curated: Callable[..., Path]
) -> None:
    # Given curated rows that carry engineered columns (marked, to see whether they are recomputed)
    rows = engineer_features(churn_splits["validation"], CHURN_SCHEMA).assign(support_calls_per_year=-1.0)
    write_curated(tmp_path, {"validation": rows})

    # When the split is loaded and turned into a model frame
    frame = model_frame(train.load_split(tmp_path, CHURN_SCHEMA), CHURN_SCHEMA)

    # Then the ETL's values are used as they are
    assert (frame["support_calls_per_year"] == -1.0).all()


def test_load_split_picks_the_requested_partition_from_the_curated_prefix(curated_dir: Path) -> None:
    # Given the whole curated prefix (split=train/validation/test)
    # When each split is loaded from it
    sizes = {split: len(train.load_split(curated_dir, CHURN_SCHEMA, split)) for split in ("train", "test")}

    # Then each gets only its partition
    assert sizes == {"train": 3000, "test": 1000}


def test_load_split_ignores_hidden_and_underscore_files(
    tmp_path: Path, churn_splits: dict[str, pd.DataFrame], write_curated: Callable[..., Path]
) -> None:
    # Given Spark-style marker files next to the data
    write_curated(tmp_path, {"test": churn_splits["test"]})
    (tmp_path / "split=test" / "_SUCCESS").write_text("")
    (tmp_path / "split=test" / "_temporary").mkdir()
    (tmp_path / "split=test" / "_temporary" / "part-9.parquet").write_text("not parquet")

    # When the split is loaded / Then only the real part files are read
    assert len(train.load_split(tmp_path, CHURN_SCHEMA)) == 1000


def test_load_split_without_files_names_the_directory(tmp_path: Path) -> None:
    # Given an empty channel
    # When it is loaded / Then the error names the directory and the split
    with pytest.raises(
        FileNotFoundError, match=rf"no \*\.parquet files under {re.escape(str(tmp_path))} \(split=train\)"
    ):
        train.load_split(tmp_path, CHURN_SCHEMA, "train")


def test_load_split_names_missing_columns(
    tmp_path: Path, churn_splits: dict[str, pd.DataFrame], write_curated: Callable[..., Path]
) -> None:
    # Given curated files without the age column
    write_curated(tmp_path, {"train": churn_splits["train"].drop(columns=["age"])})

    # When they are loaded / Then the error names the column
    with pytest.raises(ValueError, match=r"missing column\(s\) \['age'\]"):
        train.load_split(tmp_path, CHURN_SCHEMA)


def test_load_split_rejects_a_target_that_is_not_binary(
    tmp_path: Path, churn_splits: dict[str, pd.DataFrame], write_curated: Callable[..., Path]
) -> None:
    # Given a target with a value 2
    rows = churn_splits["train"].head(50).copy()
    rows.loc[3, "churned"] = 2
    write_curated(tmp_path, {"train": rows}, files_per_split=1)

    # When it is loaded / Then the error shows the bad value
    with pytest.raises(ValueError, match=r"target 'churned' must be one of \[0, 1\], found \['2'\]"):
        train.load_split(tmp_path, CHURN_SCHEMA)


# ---- build_pipeline / train -----------------------------------------------------------------------


def test_pipeline_ignores_unknown_and_missing_categories(churn_splits: dict[str, pd.DataFrame]) -> None:
    # Given a pipeline trained on a small sample
    sample = churn_splits["train"].head(600)
    result = train.train(sample, sample, CHURN_SCHEMA, train.Hyperparameters(max_iter=10))

    # When it scores rows with a category it never saw and a missing category
    rows = churn_splits["test"].head(2).copy()
    rows["contract"] = ["lifetime", None]
    probabilities = result.pipeline.predict_proba(model_frame(rows, CHURN_SCHEMA))

    # Then it still answers with probabilities
    assert probabilities.shape == (2, 2)
    assert np.isfinite(probabilities).all()


def test_a_single_class_split_fails_with_a_clear_reason(churn_splits: dict[str, pd.DataFrame]) -> None:
    # Given a train split where nobody churned
    train_df = churn_splits["train"].assign(churned=0)
    # When training runs
    with pytest.raises(train.TrainingDataError) as error:
        train.train(train_df, churn_splits["validation"], CHURN_SCHEMA, train.Hyperparameters(max_iter=5))
    # Then the reason names the split, the target and the class
    assert str(error.value).startswith("the train split has a single class (churned=0 for all 3000 rows)")


def test_an_empty_split_fails_with_a_clear_reason(churn_splits: dict[str, pd.DataFrame]) -> None:
    with pytest.raises(train.TrainingDataError, match="the validation split is empty"):
        train.train(churn_splits["train"], churn_splits["validation"].iloc[:0], CHURN_SCHEMA, train.Hyperparameters())


def test_a_tuning_trial_trains_with_its_values_over_the_declared_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given churn declaring a tuned random forest (max_depth fixed, n_estimators and max_features tuned)
    tuning = Tuning(
        "Random",
        {
            "n_estimators": TuningRange("integer", 5, 50),
            "max_features": TuningRange("categorical", values=("sqrt", None)),
        },
        max_jobs=2,
    )
    tuned = replace(CHURN_SCHEMA, model=ModelSpec("random_forest", {"max_depth": 4}, tuning=tuning))
    use_platform(monkeypatch, tmp_path, platform_for([tuned]))

    # When a trial's job parses what the toolkit gives it (the static values and the trial's, sent as strings and
    # JSON-decoded: "null" is None in SM_HPS, an empty argument on the command line)
    sm_hps = {"dataset": "churn", "seed": 42, "n_estimators": 17, "max_features": None}
    hyperparameters, schema = train.parse_args(mapping.to_cmd_args(sm_hps), sm_hps)

    # Then the estimator is built with the trial's values and the declared ones
    assert hyperparameters.seed == 42
    assert schema.model_spec.hyperparameters == {"max_depth": 4, "n_estimators": 17, "max_features": None}
    built = estimators.build_estimator(schema, hyperparameters)
    assert (built.n_estimators, built.max_depth, built.max_features) == (17, 4, None)
    # and a value outside the estimator's catalog fails the trial, naming it
    with pytest.raises(SystemExit):
        train.parse_args(mapping.to_cmd_args({"dataset": "churn", "n_estimators": 0}))
    assert "tuned hyperparameter hyperparameters.n_estimators: 0 is outside [1, 5000]" in capsys.readouterr().err
