"""DatasetSchema: the one model of a declaration and of the document the jobs receive; errors name the field."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from pipelines.schema import (
    DEFAULT_GATES,
    FUNCTIONS,
    LEGACY_ENGINEERED,
    METRICS,
    ROW_ID,
    DatasetSchema,
    Engineered,
    Feature,
    Gate,
    SchemaError,
    expression_columns,
    parse_expression,
    task_metrics,
)
from tests.samples import CHURN_SCHEMA


def _declaration(**changes: Any) -> dict[str, Any]:
    """A small valid multiclass declaration as plain data, with ``changes`` applied (None removes a key)."""
    data: dict[str, Any] = {
        "name": "iris",
        "task": "multiclass",
        "target": "species",
        "labels": ["setosa", "versicolor", "virginica"],
        "features": [
            {"name": "petal_length", "kind": "numeric", "minimum": 0, "maximum": 10},
            {"name": "petal_width", "kind": "numeric", "nullable": True},
            {"name": "garden", "kind": "categorical", "categories": ["north", "south"]},
        ],
        "engineered": [{"name": "petal_area", "expression": "petal_length * coalesce(petal_width, 0)"}],
        "gate": {"metric": "macro_f1", "floor": 0.6, "min_improvement": 0.01},
    }
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def _error(data: dict[str, Any]) -> SchemaError:
    with pytest.raises(SchemaError) as error:
        DatasetSchema.from_dict(data)
    return error.value


# ---- a valid declaration ---------------------------------------------------------------------------


def test_a_declaration_round_trips_through_json() -> None:
    # Given a valid declaration
    schema = DatasetSchema.from_dict(_declaration())

    # When it is shipped as JSON and read back (Glue arguments, model archive, Lambda environment)
    again = DatasetSchema.from_json(schema.to_json())

    # Then it is the same schema, and its derived views follow the declaration
    assert again == schema
    assert schema.class_labels == ("setosa", "versicolor", "virginica")
    assert schema.key is None and schema.key_column == ROW_ID
    assert schema.input_columns == ["petal_length", "petal_width", "garden", "species"]
    assert schema.engineered_names == ["petal_area"]
    assert schema.stratified and not schema.numeric_labels
    assert schema.evaluation_gate == Gate("macro_f1", 0.6, 0.01)


def test_the_churn_schema_ships_compactly() -> None:
    # Given the churn declaration / When serialised
    text = CHURN_SCHEMA.to_json()

    # Then it holds no empty defaults and stays well inside the 2,500 characters of a SageMaker hyperparameter
    # once JSON-encoded a second time, should a job ever carry it (today the jobs get the dataset's name:
    # pipelines.training.hyperparameters.job_hyperparameters); its data_policy adds about 120 of them
    assert len(json.dumps(text)) < 1650
    assert "serving" not in json.loads(text) and "labels" not in json.loads(text)


def test_binary_labels_default_to_0_and_1_with_1_positive() -> None:
    # Given the churn declaration, which names no labels / Then 0/1 with 1 positive, per-row splits (not stratified)
    assert CHURN_SCHEMA.class_labels == (0, 1)
    assert CHURN_SCHEMA.positive == 1
    assert CHURN_SCHEMA.numeric_labels
    assert not CHURN_SCHEMA.stratified


def test_binary_string_labels_name_their_positive_label() -> None:
    # Given a binary target with string labels
    data = _declaration(task="binary", labels=["no", "yes"], positive_label="yes", gate=None)

    # When read / Then the positive label is the declared one and the default gate is the binary one
    schema = DatasetSchema.from_dict(data)
    assert schema.positive == "yes"
    assert schema.evaluation_gate == DEFAULT_GATES["binary"]


def test_every_task_reports_metrics_and_every_metric_has_a_direction() -> None:
    # Given the metric table / Then each task has its users' metrics, errors are lower-is-better
    assert {"auc", "accuracy", "f1"} <= set(task_metrics("binary"))
    assert {"accuracy", "macro_f1", "log_loss"} <= set(task_metrics("multiclass"))
    assert set(task_metrics("regression")) == {"rmse", "mae", "r2"}
    assert [name for name, metric in METRICS.items() if not metric.higher_is_better] == [
        "log_loss",
        "brier_score",
        "expected_calibration_error",
        "rmse",
        "mae",
    ]
    assert METRICS["rmse"].better(2.0, 3.0) == 1.0 and METRICS["auc"].better(0.8, 0.9) == pytest.approx(-0.1)


def test_a_legacy_schema_of_a_model_trained_before_declarations_still_loads() -> None:
    # Given the schema a model archive stored before datasets were declared (engineered columns by name)
    legacy = {**CHURN_SCHEMA.to_dict(), "positive_label": 1, "engineered": list(LEGACY_ENGINEERED)}
    del legacy["task"], legacy["gate"], legacy["description"]

    # When the evaluation job reads it / Then it is the churn schema (binary, the same expressions)
    schema = DatasetSchema.from_dict(legacy)
    assert schema.task == "binary" and schema.positive == 1
    assert schema.engineered == CHURN_SCHEMA.engineered
    assert replace(schema, gate=CHURN_SCHEMA.gate, description=CHURN_SCHEMA.description) == CHURN_SCHEMA


# ---- errors that name the field --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"colour": "blue"}, "colour", "unknown key (allowed: name, description, task"),
        ({"task": "ranking"}, "task", "'ranking' is not one of binary, multiclass, regression"),
        ({"target": None}, "target", "is required"),
        ({"name": "Iris_Flowers"}, "name", "must be lowercase letters and digits in hyphen-separated words"),
        ({"labels": ["setosa", "versicolor"]}, "labels", "a multiclass target needs at least 3 labels, got 2"),
        ({"labels": ["a", "b", "a"]}, "labels[2]", "'a' is listed twice"),
        ({"labels": ["a", 1, "b"]}, "labels", "labels must be all integers or all strings"),
        ({"labels": [True, False, "x"]}, "labels[0]", "a boolean: YAML reads yes/no/on/off/true/false unquoted"),
        ({"key": "species"}, "key", "'species' is also the target"),
        ({"gate": {"metric": "rmse", "floor": 10}}, "gate.metric", "rmse does not fit a multiclass task"),
        ({"gate": {"metric": "auc", "floor": 0.9}}, "gate.metric", "auc does not fit a multiclass task"),
        ({"gate": {"metric": "accuracy", "floor": 1.5}}, "gate.floor", "accuracy lies in [0, 1]"),
        ({"gate": {"metric": "accuracy"}}, "gate.floor", "is required"),
        ({"gate": {"metric": "accuracy", "floor": 0.5, "min_improvement": -1}}, "gate.min_improvement", "negative"),
        ({"serving": {"canary_percent": [1, 2]}}, "serving.canary_percent", "expected a number, string or boolean"),
        ({"stratify": "yes"}, "stratify", "expected true or false, got a string"),
        ({"features": []}, "features", "a dataset needs at least one feature"),
    ],
)
def test_a_broken_rule_names_its_field(changes: dict[str, Any], field: str, message: str) -> None:
    # Given a declaration that breaks one rule / When it is read
    error = _error(_declaration(**changes))

    # Then the error names the offending field and says what is wrong
    assert error.field == field
    assert message in error.message
    assert str(error) == f"{field}: {error.message}"


@pytest.mark.parametrize(
    ("feature", "field", "message"),
    [
        ({"name": "garden", "kind": "categorical", "categories": []}, "categories", "needs at least one category"),
        ({"name": "garden", "kind": "categorical"}, "categories", "needs at least one category"),
        ({"name": "x", "kind": "numeric", "categories": ["a"]}, "categories", "cannot have categories"),
        ({"name": "x", "kind": "numeric", "minimum": 5, "maximum": 1}, "maximum", "minimum 5.0 > maximum 1.0"),
        ({"name": "x", "kind": "numeric", "minimum": "low"}, "minimum", "expected a finite number, got a string"),
        ({"name": "x", "kind": "date"}, "kind", "'date' is not one of numeric, categorical"),
        ({"name": "x", "kind": "numeric", "nullable": "no"}, "nullable", "expected true or false"),
        ({"name": "x", "kind": "numeric", "unit": "cm"}, "unit", "unknown key"),
        ({"name": "x,y", "kind": "numeric"}, "name", "cannot hold surrounding spaces, tabs, newlines, commas"),
        ({"name": "g", "kind": "categorical", "categories": ["a", "a"]}, "categories[1]", "'a' is listed twice"),
        ({"name": "g", "kind": "categorical", "categories": ["a", False]}, "categories[1]", "quote the value"),
    ],
)
def test_a_broken_feature_names_its_index_and_field(feature: dict[str, Any], field: str, message: str) -> None:
    # Given a declaration whose second feature breaks a rule
    features = _declaration()["features"]
    features[1] = feature

    # When it is read / Then the path points into features[1]
    error = _error(_declaration(features=features))
    assert error.field == f"features[1].{field}"
    assert message in error.message


def test_duplicate_feature_names_and_the_target_as_a_feature_are_refused() -> None:
    # Given a feature listed twice, and the target listed as a feature
    twice = [*_declaration()["features"], {"name": "petal_length", "kind": "numeric"}]
    target = [*_declaration()["features"], {"name": "species", "kind": "numeric"}]

    # When read / Then each names the offending entry
    duplicate = _error(_declaration(features=twice))
    assert (duplicate.field, duplicate.message) == (
        "features[3].name",
        "duplicate feature name 'petal_length' (also features[0])",
    )
    as_feature = _error(_declaration(features=target))
    assert (as_feature.field, as_feature.message) == (
        "features[3].name",
        "'species' is the target; the target cannot also be a feature",
    )


def test_the_key_cannot_be_a_feature_and_platform_columns_are_reserved() -> None:
    # Given a key that is also a feature / a feature named like the platform's derived row id
    keyed = _error(_declaration(key="garden"))
    reserved = _error(_declaration(features=[{"name": ROW_ID, "kind": "numeric"}]))

    # Then both are refused with their field
    assert (keyed.field, keyed.message) == ("features[2].name", "'garden' is the key; the key cannot also be a feature")
    assert reserved.field == "features[0].name"
    assert "'row_id' is reserved by the platform" in reserved.message


def test_binary_labels_other_than_0_1_need_a_positive_label_among_them() -> None:
    # Given binary string labels without, then with a wrong, positive label
    missing = _error(_declaration(task="binary", labels=["no", "yes"], gate=None))
    wrong = _error(_declaration(task="binary", labels=["no", "yes"], positive_label="maybe", gate=None))

    # Then each names positive_label
    assert (missing.field, missing.message) == (
        "positive_label",
        "required when the labels are not 0/1 (one of ['no', 'yes'])",
    )
    assert (wrong.field, wrong.message) == ("positive_label", "'maybe' is not one of the labels ['no', 'yes']")


def test_regression_has_no_labels() -> None:
    # Given a regression declaration that lists labels
    error = _error(_declaration(task="regression", gate={"metric": "rmse", "floor": 3}))

    # Then labels are refused
    assert (error.field, error.message) == ("labels", "a regression target has no class labels")


# ---- engineered-feature expressions ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("petal_length * sepal_width", "unknown name 'sepal_width' in 'petal_length * sepal_width'"),
        ("garden * 2", "'garden' is categorical in 'garden * 2': expressions compute with numeric features"),
        ("median(petal_length, 1)", "unknown function 'median' in 'median(petal_length, 1)' (allowed: abs, clip"),
        ("abs(petal_length, 1)", "abs() takes 1 argument(s), got 2"),
        ("max(petal_length)", "max() takes at least 2 argument(s), got 1"),
        ("petal_length ** 2", "unsupported syntax (Pow)"),
        ("petal_length.real", "unsupported syntax (Attribute)"),
        ("__import__('os')", "unknown function '__import__'"),
        ("petal_length + 'os'", "'os' is not a number"),
        ("petal_length if petal_width else 0", "unsupported syntax (IfExp)"),
        ("0 < petal_length < 5", "one comparison at a time"),
        ("petal_length * (2", "syntax error at column"),
        ("max(x=petal_length)", "max() takes positional arguments only"),
        ("3 * 4", "'3 * 4' reads no column"),
        ("petal_area * 2", "unknown name 'petal_area'"),  # an engineered column may only read earlier ones
    ],
)
def test_an_expression_outside_the_language_is_refused_at_load(expression: str, message: str) -> None:
    # Given an engineered column with the expression
    engineered = [{"name": "derived", "expression": expression}, *_declaration()["engineered"]]

    # When the declaration is read / Then engineered[0].expression is named with the reason
    error = _error(_declaration(engineered=engineered))
    assert error.field == "engineered[0].expression"
    assert message in error.message


def test_an_expression_is_parsed_never_executed() -> None:
    # Given expressions that would do something if evaluated by Python
    for text in ("exec('1')", "(lambda: 1)()", "[x for x in y]", "open('f')"):
        # When parsed / Then they are refused before anything runs
        with pytest.raises(SchemaError):
            parse_expression(text)


def test_an_expression_lists_the_columns_it_reads() -> None:
    # Given an expression with functions and repeated names / Then each column once, functions excluded
    assert expression_columns("coalesce(total, monthly * tenure) / max(tenure, 1)") == ["total", "monthly", "tenure"]
    assert set(FUNCTIONS) >= {"coalesce", "min", "max", "abs", "log1p", "where"}


def test_a_later_engineered_column_may_read_an_earlier_one() -> None:
    # Given two engineered columns, the second reading the first
    schema = replace(
        DatasetSchema.from_dict(_declaration()),
        engineered=(Engineered("area", "petal_length * 2"), Engineered("log_area", "log1p(area)")),
    )

    # Then the schema is valid, in declared order
    assert schema.engineered_names == ["area", "log_area"]


def test_feature_rules_hold_when_the_model_is_built_in_code() -> None:
    # Given a feature built directly (not from a file) / Then the same rule and field apply
    with pytest.raises(SchemaError, match=r"^categories: categorical feature 'g' needs at least one category$"):
        Feature("g", "categorical")


# ---- model.tuning ------------------------------------------------------------------------------------------

TUNED_FOREST = {
    "estimator": "random_forest",
    "hyperparameters": {"max_depth": 8},
    "tuning": {
        "strategy": "Random",
        "max_jobs": 6,
        "max_parallel_jobs": 2,
        "seed": 3,
        "ranges": {
            "n_estimators": {"type": "integer", "min": 10, "max": 200, "scaling": "Logarithmic"},
            "min_samples_leaf": {"type": "integer", "min": 1, "max": 20},
            "max_features": {"type": "categorical", "values": ["sqrt", "log2", None]},
        },
    },
}


def test_a_tuning_declaration_round_trips_and_builds_the_tuning_job_config() -> None:
    # Given a multiclass declaration whose random forest is tuned
    schema = DatasetSchema.from_dict(_declaration(model=TUNED_FOREST))
    assert DatasetSchema.from_json(schema.to_json()) == schema
    tuning = schema.model_spec.tuning
    assert tuning is not None and tuning.trial_count == 6

    # When the tuning job's config is built for its objective
    config = tuning.job_config(schema.tuning_objective)

    # Then the objective is the gate's metric on the validation split, in the gate's direction, and every range is
    # SageMaker's (strings; a null choice as JSON)
    assert config == {
        "Strategy": "Random",
        "HyperParameterTuningJobObjective": {"MetricName": "validation:macro_f1", "Type": "Maximize"},
        "ResourceLimits": {"MaxParallelTrainingJobs": 2, "MaxNumberOfTrainingJobs": 6},
        "ParameterRanges": {
            "IntegerParameterRanges": [
                {"Name": "n_estimators", "MinValue": "10", "MaxValue": "200", "ScalingType": "Logarithmic"},
                {"Name": "min_samples_leaf", "MinValue": "1", "MaxValue": "20", "ScalingType": "Auto"},
            ],
            "ContinuousParameterRanges": [],
            "CategoricalParameterRanges": [{"Name": "max_features", "Values": ["sqrt", "log2", "null"]}],
        },
        "RandomSeed": 3,
    }


def test_the_tuning_objective_follows_the_gates_direction_on_the_validation_split() -> None:
    schema = DatasetSchema.from_dict(_declaration(gate={"metric": "log_loss", "floor": 1.0}))
    assert schema.tuning_objective == ("validation:log_loss", "Minimize")


def test_grid_takes_no_max_jobs_and_counts_its_combinations() -> None:
    model = {
        "estimator": "random_forest",
        "tuning": {
            "strategy": "Grid",
            "max_parallel_jobs": 3,
            "ranges": {
                "max_features": {"type": "categorical", "values": ["sqrt", "log2"]},
                "class_weight": {"type": "categorical", "values": ["balanced", None]},
            },
        },
    }
    tuning = DatasetSchema.from_dict(_declaration(model=model)).model_spec.tuning
    assert tuning is not None and tuning.trial_count == 4
    assert "MaxNumberOfTrainingJobs" not in tuning.job_config(("validation:accuracy", "Maximize"))["ResourceLimits"]
    model["tuning"]["max_parallel_jobs"] = 5  # type: ignore[index]
    error = _error(_declaration(model=model))
    assert (error.field, error.message) == (
        "model.tuning.max_parallel_jobs",
        "5 is more than the 4 combinations Grid runs",
    )


def test_hyperband_sends_its_max_resource_and_a_script_tunes_any_argument() -> None:
    model = {
        "entry_point": "models/iris",
        "tuning": {
            "strategy": "Hyperband",
            "max_jobs": 10,
            "max_resource": 30,
            "ranges": {"depth": {"type": "integer", "min": 2, "max": 9}},
        },
    }
    tuning = DatasetSchema.from_dict(_declaration(model=model)).model_spec.tuning
    assert tuning is not None
    config = tuning.job_config(("validation:macro_f1", "Maximize"))
    assert config["StrategyConfig"] == {"HyperbandStrategyConfig": {"MaxResource": 30}}


@pytest.mark.parametrize(
    ("ranges", "field", "message"),
    [
        ({"n_estimators": {"type": "integer", "min": 50, "max": 10}}, "ranges.n_estimators.max", "10 must be greater"),
        ({"n_estimators": {"type": "integer", "min": 1.5, "max": 10}}, "ranges.n_estimators.min", "takes integers"),
        ({"n_estimators": {"type": "integer", "min": 1, "max": 10, "values": [1]}}, "ranges.n_estimators.values", ""),
        ({"max_features": {"type": "categorical", "values": []}}, "ranges.max_features.values", "give 1 to 30"),
        ({"max_features": {"type": "categorical", "values": ["sqrt", "sqrt"]}}, "ranges.max_features.values[1]", ""),
        ({"max_features": {"type": "range", "values": ["sqrt"]}}, "ranges.max_features.type", "not one of"),
        (
            {"n_estimators": {"type": "integer", "min": 1, "max": 9, "scaling": "ReverseLogarithmic"}},
            "ranges.n_estimators.scaling",
            "continuous ranges only",
        ),
    ],
)
def test_a_broken_range_names_its_field(ranges: dict[str, Any], field: str, message: str) -> None:
    model = {"estimator": "random_forest", "tuning": {"strategy": "Random", "max_jobs": 2, "ranges": ranges}}
    error = _error(_declaration(model=model))
    assert error.field == f"model.tuning.{field}"
    assert message in error.message
