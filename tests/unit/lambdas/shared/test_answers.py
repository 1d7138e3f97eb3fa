"""The endpoint's answers per task, read from JSON and CSV bodies as the inference handler writes them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lambdas.shared.answers import FIELDS, Answer, decode_answers, typed_label
from pipelines.inference.inference import Prediction, encode_prediction
from pipelines.schema import TASKS

CLASSES = ("billing", "technical", "account")


def prediction(task: str) -> Prediction:
    """Two rows of each task's answer, as the inference handler builds them."""
    if task == "regression":
        return Prediction(None, None, "m-1", "regression", values=np.array([12.5, -3.25]))
    if task == "multiclass":
        probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
        return Prediction(probabilities, np.array(["billing", "account"], dtype=object), "m-1", task, CLASSES)
    return Prediction(np.array([0.8, 0.1]), np.array([1, 0]), "m-1", "binary", (0, 1))


EXPECTED = {
    "binary": [Answer(label=1, probability=0.8), Answer(label=0, probability=0.1)],
    "multiclass": [
        Answer(label="billing", probabilities={"billing": 0.7, "technical": 0.2, "account": 0.1}),
        Answer(label="account", probabilities={"billing": 0.1, "technical": 0.3, "account": 0.6}),
    ],
    "regression": [Answer(value=12.5), Answer(value=-3.25)],
}
LABELS = {"binary": (0, 1), "multiclass": CLASSES, "regression": ()}


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("accept", ["application/json", "text/csv"])
def test_the_handlers_json_and_csv_answers_decode_to_the_same_rows(task: str, accept: str) -> None:
    # Given the inference handler's own response body of a task, in JSON or CSV
    body, content_type = encode_prediction(prediction(task), accept)
    # When it is decoded with the dataset's labels
    answers = decode_answers(body, content_type, task, LABELS[task])
    # Then both formats give the same typed rows; only JSON names the model version
    assert answers.rows == EXPECTED[task]
    assert answers.model_version == ("m-1" if accept == "application/json" else None)


def test_csv_labels_stay_text_without_the_declared_labels() -> None:
    # Given a binary CSV answer read without knowing the dataset's labels
    answers = decode_answers("0.8,1\n0.1,0\n", "text/csv", "binary")
    # Then its labels are the text of the line, and a multiclass line's probabilities are named by position
    assert [a.label for a in answers.rows] == ["1", "0"]
    multiclass = decode_answers('"a, b",0.5,0.3,0.2\n', "text/csv; charset=utf-8", "multiclass")
    assert multiclass.rows == [Answer(label="a, b", probabilities={"0": 0.5, "1": 0.3, "2": 0.2})]


@pytest.mark.parametrize(
    ("body", "content_type", "task", "message"),
    [
        ('{"predictions": [{"probability": 0.8, "label": 1}]}', "application/json", "regression", "lacks value"),
        ('{"predictions": [{"value": true}]}', "application/json", "regression", "row 1: value: expected a number"),
        ('{"predictions": [{"value": NaN}]}', "application/json", "regression", "expected a finite number"),
        ("0.8,1\n", "text/csv", "regression", "row 1: a regression answer is one value, got 2 fields"),
        ("12.5\n", "text/csv", "binary", "row 1: a binary answer is probability,label; got 1 fields"),
        ("a,0.5,0.5\n", "text/csv", "multiclass", "3 or more probabilities, got 2"),
        ('{"model_version": "x"}', "application/json", "binary", "not a prediction response"),
        ("Internal Server Error", "text/html", "binary", "Expecting value"),
    ],
)
def test_an_answer_of_another_shape_is_refused_with_its_row(
    body: str, content_type: str, task: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        decode_answers(body, content_type, task)


def test_labels_are_typed_as_the_dataset_declares_them() -> None:
    assert typed_label("1", (0, 1)) == 1
    assert typed_label(1.0, (0, 1)) == 1
    assert typed_label(" billing ", CLASSES) == "billing"
    assert typed_label(3, ()) == 3
    with pytest.raises(ValueError, match=r"label '1\.5' is not an integer"):
        typed_label("1.5", (0, 1))
    with pytest.raises(ValueError, match="is a boolean"):
        typed_label(True, (0, 1))
    assert json.dumps(typed_label("sales", ())) == '"sales"'


def test_every_task_has_its_answer_fields() -> None:
    # the Lambdas do not load the schema module to read answers: its tasks and theirs stay the same
    assert tuple(FIELDS) == TASKS
