"""``evaluation.json``'s ``output_baseline``: the distribution of the challenger's answers on the test split, per
task, in the quality report's statistics layout (the drift monitor's baseline of the model's output)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from lambdas.drift_monitor.drift_math import CategoricalBaseline, NumericBaseline
from pipelines.evaluation.evaluate import evaluate_model
from pipelines.features import model_frame
from pipelines.inference import inference
from pipelines.training import train
from tests.unit.pipelines.conftest import SampleRun


@pytest.mark.parametrize(("name", "output"), [("churn", "probability"), ("tickets", "label"), ("energy", "value")])
def test_the_output_baseline_is_the_models_answers_on_the_test_split(
    name: str, output: str, sample_run: Callable[[str], SampleRun]
) -> None:
    # Given a sample model of each task and its test split
    run = sample_run(name)
    model = inference.load_model(run.training.model_dir)
    test = train.load_split(run.curated, run.schema, "test")
    answers = model.predict_proba(model_frame(test, run.schema))
    # When it is evaluated
    baseline = evaluate_model(model, run.curated).output_baseline
    # Then the baseline describes the answers the drift monitor will compare: the positive probability, the
    # predicted labels' shares or the values, over every test row
    assert baseline is not None
    assert (baseline["task"], baseline["output"], baseline["model_version"]) == (run.schema.task, output, model.version)
    statistics = baseline["statistics"]
    assert statistics["count"] == len(test) and statistics["nulls"] == 0
    if output == "label":
        predicted = np.asarray([str(c) for c in run.schema.class_labels])[answers.argmax(axis=1)]
        assert statistics["counts"] == {str(c): int((predicted == str(c)).sum()) for c in run.schema.class_labels}
        assert CategoricalBaseline.from_report(statistics) is not None
    else:
        assert statistics["kind"] == "numeric"
        assert statistics["mean"] == pytest.approx(float(np.mean(answers)))
        assert statistics["histogram"]["edges"][0] == pytest.approx(float(np.min(answers)))
        readable = NumericBaseline.from_report(statistics)
        assert readable is not None and readable.sketch.size == 100
