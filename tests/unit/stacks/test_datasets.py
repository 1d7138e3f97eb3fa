"""Dataset declarations: every file in datasets/ loads and fits every stage; a broken one names file and field."""

from __future__ import annotations

import re
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from lambdas.batch_inference import logic as batch
from lambdas.deploy import logic as deploy
from lambdas.prepare_training import logic as prepare
from pipelines.experiments.outcomes import DEFAULT_OUTCOMES as AB_DEFAULTS
from pipelines.schema import DatasetSchema, ModelSpec
from stacks import datasets
from stacks.config import STAGES, EvaluationGate, load_config, stricter_floor
from stacks.datasets import DATASETS_DIR, DeclarationError, load_declaration, load_declarations

BAD = Path(__file__).parent / "declarations"
DECLARED = sorted(DATASETS_DIR.glob("*.yaml"))


def _expectation(path: Path) -> tuple[str, str]:
    """(field, message fragment) from a bad fixture's first line: ``# expect: <field> | <message>``."""
    match = re.match(r"^# expect: (.*?) \| (.*)$", path.read_text().splitlines()[0])
    assert match, f"{path} starts without '# expect: <field> | <message>'"
    return match.group(1).strip(), match.group(2).strip()


# ---- every declaration of the repository ------------------------------------------------------------


@pytest.mark.parametrize("path", DECLARED, ids=[p.stem for p in DECLARED])
def test_every_declaration_loads_and_fits_every_stage(path: Path) -> None:
    # Given a declaration file of the repository / When it is loaded as the stack loads it at synth
    declaration = load_declaration(path)
    schema = declaration.schema

    # Then it is named after its file, survives its JSON trip to the jobs, and every stage can serve it
    assert declaration.name == path.stem
    assert DatasetSchema.from_json(schema.to_json()) == schema
    for stage in STAGES.values():
        settings = stage.for_dataset(schema)
        assert settings.dataset == schema
        # the declared gate, with the stage's own minimum when that is stricter (prod: AUC >= 0.75)
        declared = EvaluationGate.from_gate(schema.evaluation_gate)
        assert settings.evaluation == replace(
            declared,
            absolute_floor=stricter_floor(
                declared.primary_metric, declared.absolute_floor, stage.gate_floors.get(declared.primary_metric)
            ),
        )
        for kind, name in datasets.sagemaker_names(stage.prefix, schema.name).items():
            assert len(name) <= 63 and re.match(datasets.SAGEMAKER_NAME_PATTERN, name), (kind, name)


def test_the_repository_declares_the_three_samples() -> None:
    # Given the datasets folder / When every declaration is loaded
    declared = load_declarations()

    # Then the binary, multiclass and regression samples are there, by name
    assert {name: d.schema.task for name, d in declared.items()} == {
        "churn": "binary",
        "energy": "regression",
        "tickets": "multiclass",
    }
    assert declared["tickets"].schema.key is None  # no key column: row ids come from content


def test_the_stage_configuration_serves_the_churn_declaration() -> None:
    # Given the stage configurations / Then their dataset is datasets/churn.yaml and dev's gate is churn's
    churn = load_declaration(DATASETS_DIR / "churn.yaml").schema
    assert load_config("dev").dataset == churn == load_config("prod").dataset
    assert load_config("dev").evaluation == EvaluationGate.from_gate(churn.evaluation_gate)


def test_overrides_reach_the_stage_settings_of_the_dataset() -> None:
    # Given a declaration overriding one setting of each section
    schema = replace(
        load_declaration(DATASETS_DIR / "churn.yaml").schema,
        serving={"strategy": "ALL_AT_ONCE", "initial_instance_count": 1, "min_capacity": 1},
        alarms={"drift_psi": 0.3},
        retrain={"max_per_day": 5, "schedule": "cron(0 3 ? * MON *)"},
        retention={"production_days": 30},
    )

    # When a stage's settings are derived for it
    settings = load_config("prod").for_dataset(schema)

    # Then the overrides replace the stage's values and everything else stays the stage's
    assert (settings.serving.strategy, settings.serving.initial_instance_count) == ("ALL_AT_ONCE", 1)
    assert settings.serving.instance_type == load_config("prod").serving.instance_type
    assert settings.alarms.drift_psi == 0.3 and settings.retrain.max_per_day == 5
    assert settings.retrain.schedule == "cron(0 3 ? * MON *)" and load_config("prod").retrain.schedule == ""
    assert settings.retention.production_days == 30
    assert settings.retention.capture_days == load_config("prod").retention.capture_days == 365


def test_an_ab_experiment_reaches_the_stage_and_the_lambdas_settings_key_by_key(tmp_path: Path) -> None:
    # Given a declaration with strategy AB and two of the experiment's settings
    path = tmp_path / "sales.yaml"
    path.write_text(
        "task: regression\ntarget: y\nfeatures:\n  - {name: x, kind: numeric}\n"
        "serving:\n  strategy: AB\n  ab: {outcome: squared_error, minimum_detectable_effect: 2.5}\n"
    )

    # When it is loaded and a stage's settings are derived for it
    schema = load_declaration(path).schema
    settings = load_config("prod").for_dataset(schema)

    # Then the declared keys replace the stage's, the others stay the stage's, and the Lambdas' model reads it
    ab = settings.serving.ab
    assert (settings.serving.strategy, ab.outcome, ab.minimum_detectable_effect) == ("AB", "squared_error", 2.5)
    assert ab.challenger_share == load_config("prod").serving.ab.challenger_share == 0.2
    served = deploy.ServingConfig.model_validate(asdict(settings.serving))
    assert served.ab is not None and served.ab.outcome == "squared_error"


def test_a_task_without_a_declared_outcome_tests_its_default_outcome() -> None:
    assert AB_DEFAULTS["regression"] == "absolute_error" and AB_DEFAULTS["binary"] == "correct"
    ab = replace(load_config("dev").serving.ab, minimum_detectable_effect=0.02)
    assert ab.problems("multiclass") == []
    assert [key for key, _ in replace(ab, outcome="log_loss").problems("multiclass")] == ["outcome"]


# ---- broken declarations -------------------------------------------------------------------------


BAD_FILES = sorted(BAD.glob("*.yaml"))


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_a_broken_declaration_names_the_file_and_the_field(path: Path) -> None:
    # Given a declaration that breaks one rule (its first line says which field and why)
    field, message = _expectation(path)

    # When it is loaded / Then the error names the file and the field, and says why
    with pytest.raises(DeclarationError) as error:
        load_declaration(path)
    assert error.value.path == path
    assert error.value.field == field
    assert message in error.value.message
    assert str(error.value).startswith(f"{path}: {field}: " if field else f"{path}: ")


def test_a_folder_with_a_broken_declaration_fails_on_that_file(tmp_path: Path) -> None:
    # Given a folder with the churn declaration and a broken one
    (tmp_path / "churn.yaml").write_text((DATASETS_DIR / "churn.yaml").read_text())
    (tmp_path / "empty-categories.yaml").write_text((BAD / "empty-categories.yaml").read_text())

    # When the folder is loaded / Then the broken file is named
    with pytest.raises(DeclarationError, match=r"empty-categories\.yaml: features\[1\]\.categories: "):
        load_declarations(tmp_path)


def test_a_yml_file_or_an_empty_folder_is_refused_not_skipped(tmp_path: Path) -> None:
    # Given a declaration with the wrong suffix / an empty folder
    (tmp_path / "churn.yml").write_text((DATASETS_DIR / "churn.yaml").read_text())
    empty = tmp_path / "empty"
    empty.mkdir()

    # When loaded / Then each says what to do
    with pytest.raises(DeclarationError, match=r"churn\.yml: rename it to churn\.yaml"):
        load_declarations(tmp_path)
    with pytest.raises(DeclarationError, match=r"no dataset declarations \(\*\.yaml\)"):
        load_declarations(empty)


def test_the_longest_dataset_name_fits_and_one_more_character_does_not() -> None:
    # Given the stages' longest prefix; the batch transform job name binds first (<prefix>-<dataset>-batch-
    # <at least one character of the file stem>-<12 hex>)
    prefixes = [config.prefix for config in STAGES.values()]
    longest, kind = datasets.max_name_length("mlops-prod")
    assert (longest, kind) == (63 - len("mlops-prod--batch-x-") - 12, "TransformJobName") == (31, "TransformJobName")

    # When names of that length and one more are checked / Then the boundary is exact
    schema = load_declaration(DATASETS_DIR / "churn.yaml").schema
    assert datasets.name_problems(replace(schema, name="d" * longest), prefixes) == []
    problems = datasets.name_problems(replace(schema, name="d" * (longest + 1)), prefixes)
    assert len(problems) == 1 and "TransformJobName" in problems[0] and "64 characters long" in problems[0]


def test_the_name_suffixes_are_the_lambdas_own() -> None:
    # Given the suffixes the Lambdas append to a dataset's names / Then the name check uses the same
    assert datasets.SAGEMAKER_NAME_LIMIT == deploy.NAME_LIMIT == prepare.MAX_JOB_NAME == batch.NAME_LIMIT
    assert datasets.JOB_DIGEST_CHARS == prepare.DIGEST_CHARS
    obj = batch.S3Object(bucket="raw", key="batch-input/x.csv", version_id="v1", size=1)
    assert len(batch.job_name("p", obj).rsplit("-", 1)[1]) == datasets.BATCH_DIGEST_CHARS
    # and the longest training job name the check assumes is one prepare_training would build
    head = "mlops-prod-d-train"
    assert len(prepare.job_name("mlops-prod-d", "train", "x" * 80)) == 63
    assert prepare.job_name("mlops-prod-d", "train", "exec").startswith(head)


@pytest.mark.parametrize(
    ("metric", "declared", "stage_minimum", "applied"),
    [
        ("auc", 0.70, 0.75, 0.75),  # the stage is stricter: its floor
        ("auc", 0.80, 0.75, 0.80),  # the declaration is stricter: its floor
        ("rmse", 3.0, 2.5, 2.5),  # an error metric's floor is a ceiling: the lower one is stricter
        ("rmse", 2.0, 2.5, 2.0),
        ("accuracy", 0.6, None, 0.6),  # no stage minimum for the metric: the declared floor
    ],
)
def test_a_stage_applies_the_stricter_floor_in_the_metrics_direction(
    metric: str, declared: float, stage_minimum: float | None, applied: float
) -> None:
    # Given a declared floor and a stage's minimum / When the stage resolves the gate / Then the stricter one holds
    assert stricter_floor(metric, declared, stage_minimum) == applied


def test_prod_holds_a_binary_dataset_to_its_auc_minimum() -> None:
    # Given churn declared with an AUC floor of 0.70 / When dev and prod resolve it
    churn = datasets.dataset_schema("churn")
    assert churn.evaluation_gate.floor == 0.70

    # Then dev keeps the declared floor and prod applies its own 0.75
    assert load_config("dev").for_dataset(churn).evaluation.absolute_floor == 0.70
    assert load_config("prod").for_dataset(churn).evaluation.absolute_floor == 0.75


# ---- model.entry_point ---------------------------------------------------------------------------------


def test_an_entry_point_directory_ships_its_files_for_the_training_archive(tmp_path: Path) -> None:
    # Given a dataset whose model is a script directory (with a helper module and a stale bytecode cache)
    folder = tmp_path / "models" / "churn"
    (folder / "__pycache__").mkdir(parents=True)
    (folder / "train.py").write_text("print('fit')\n")
    (folder / "features.py").write_text("X = 1\n")
    (folder / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\0")
    churn = load_declaration(DATASETS_DIR / "churn.yaml").schema
    schema = replace(churn, model=ModelSpec(entry_point="models/churn"))

    # When the files to ship are gathered (with a dataset on a built-in estimator beside it)
    files = datasets.entry_point_files([schema, churn], root=tmp_path)

    # Then the directory's files travel under their repository paths, without the cache; the built-in ships none
    assert files == {"models/churn/features.py": b"X = 1\n", "models/churn/train.py": b"print('fit')\n"}
    assert datasets.entry_point_problems(schema, root=tmp_path) == []
    (folder / "train.py").unlink()
    assert datasets.entry_point_problems(schema, root=tmp_path) == [
        ("model.entry_point", "models/churn/train.py: no such file (the script SageMaker runs)")
    ]
