"""Contract of the local cloud's SageMaker automatic model tuning (CreateHyperParameterTuningJob,
DescribeHyperParameterTuningJob, ListTrainingJobsForHyperParameterTuningJob, StopHyperParameterTuningJob) against
the documented behaviour: the trials are real training jobs named ``<tuning job>-<NNN>-<id>``, the objective is
parsed from each trial's log with the job's MetricDefinitions, the best trial follows the objective's type."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.sagemaker import responses as sm_responses

from localcloud.runtime.journal import journal
from localcloud.shims import sagemaker_jobs as shim
from pipelines.training.metric_definitions import METRIC_DEFINITIONS
from tests.tiers import heavy_fixture
from tests.unit.localcloud import support
from tests.unit.localcloud.support import ROLE, assert_pinned_moto, revisit, unique

SHIM = "sagemaker_jobs"
BUCKET = "sagemaker-tuning-test"
OBJECTIVE = "validation:auc"
# the objective peaks at x = 0.3; kind "b" adds 0.5; fail=yes raises
TRAIN = """
import json, os
hps = json.loads(os.environ["SM_HPS"])
if hps.get("fail"):
    raise ValueError("the validation split is empty")
score = 1 - abs(float(hps.get("x", 0)) - 0.3) + {"b": 0.5}.get(str(hps.get("kind")), 0.0)
print("validation:auc=0.1;")  # an earlier value: SageMaker takes the last one
print(f"validation:auc={score:.6f};")
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w") as handle:
    json.dump({"x": hps.get("x"), "kind": hps.get("kind")}, handle)
"""


def definition(**static: str) -> dict[str, Any]:
    return {
        "AlgorithmSpecification": {
            "TrainingImage": "sklearn:1.9-0",
            "TrainingInputMode": "File",
            "MetricDefinitions": [m for m in METRIC_DEFINITIONS if m["Name"] == OBJECTIVE],
        },
        "RoleArn": ROLE,
        "StaticHyperParameters": {
            "sagemaker_program": json.dumps("train.py"),
            "sagemaker_submit_directory": json.dumps(f"s3://{BUCKET}/code/sourcedir.tar.gz"),
            **static,
        },
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/train/"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def tuning_config(strategy: str, ranges: dict[str, Any], jobs: int | None, objective_type: str = "Maximize") -> dict:
    limits = {"MaxParallelTrainingJobs": 2, **({"MaxNumberOfTrainingJobs": jobs} if jobs else {})}
    return {
        "Strategy": strategy,
        "HyperParameterTuningJobObjective": {"MetricName": OBJECTIVE, "Type": objective_type},
        "ResourceLimits": limits,
        "ParameterRanges": ranges,
        "RandomSeed": 3,
    }


X_RANGE = {"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0.0", "MaxValue": "1.0", "ScalingType": "Linear"}]}
KIND_GRID = {
    "CategoricalParameterRanges": [{"Name": "kind", "Values": ["a", "b"]}, {"Name": "x", "Values": ["0.1", "0.3"]}]
}


def test_patch_points_still_exist() -> None:
    assert_pinned_moto(SHIM)
    responses = sm_responses.SageMakerResponse
    assert hasattr(responses, "create_hyper_parameter_tuning_job"), revisit(SHIM)
    assert hasattr(responses, "describe_hyper_parameter_tuning_job"), revisit(SHIM)
    # moto 5.2.5 has neither: the shim adds them (an upgrade that brings its own must be looked at)
    assert shim.list_training_jobs_for_hyper_parameter_tuning_job.__module__ == shim.__name__
    assert shim._original_create_tuning.__module__ == sm_responses.__name__


@heavy_fixture
def cloud() -> Iterator[Any]:
    with support.training_cloud(BUCKET, TRAIN) as local:
        yield local


def tune(cloud: Any, name: str, config: dict[str, Any], **static: str) -> dict[str, Any]:
    sm = cloud.clients.sagemaker
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig=config,
        TrainingJobDefinition=definition(**static),
    )
    cloud.settle()
    return dict(sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name))


def test_a_random_tuning_job_runs_its_trials_as_training_jobs_and_picks_the_best(cloud: Any) -> None:
    # Given a Random tuning job of 4 trials over x (the objective peaks at x = 0.3)
    sm = cloud.clients.sagemaker
    name = unique("tune")
    described = tune(cloud, name, tuning_config("Random", X_RANGE, jobs=4))
    # Then it Completed with 4 completed trials, all with an objective
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    assert described["TrainingJobStatusCounters"] == {
        "Completed": 4,
        "InProgress": 0,
        "RetryableError": 0,
        "NonRetryableError": 0,
        "Stopped": 0,
    }
    assert described["ObjectiveStatusCounters"] == {"Succeeded": 4, "Pending": 0, "Failed": 0}
    # And every trial is a real training job named <tuning job>-<NNN>-<id>, with the static and its tuned values
    listed = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, SortBy="FinalObjectiveMetricValue", SortOrder="Descending"
    )["TrainingJobSummaries"]
    assert len(listed) == 4
    for summary in listed:
        job = sm.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        assert summary["TrainingJobName"].startswith(f"{name}-00")
        assert job["TrainingJobStatus"] == "Completed"
        assert job["HyperParameters"]["x"] == summary["TunedHyperParameters"]["x"]
        assert 0.0 <= float(summary["TunedHyperParameters"]["x"]) <= 1.0
        # the objective is the last value the trial's log printed, parsed with the MetricDefinitions regex
        expected = round(1 - abs(float(summary["TunedHyperParameters"]["x"]) - 0.3), 6)
        assert summary["FinalHyperParameterTuningJobObjectiveMetric"] == {
            "Type": "Maximize",
            "MetricName": OBJECTIVE,
            "Value": pytest.approx(expected, abs=1e-6),
        }
    # And the best is the trial with the highest objective, as DescribeHyperParameterTuningJob says
    best = described["BestTrainingJob"]
    assert best["TrainingJobName"] == listed[0]["TrainingJobName"]
    assert best["TunedHyperParameters"] == listed[0]["TunedHyperParameters"]
    assert best["ObjectiveStatus"] == "Succeeded" and best["TrainingJobStatus"] == "Completed"
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == max(
        s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in listed
    )
    assert "FailureReason" not in described and described["HyperParameterTuningEndTime"]
    # And its model archive is where SageMaker writes a training job's: <S3OutputPath>/<job>/output/model.tar.gz
    archive = sm.describe_training_job(TrainingJobName=best["TrainingJobName"])["ModelArtifacts"]["S3ModelArtifacts"]
    assert archive == f"s3://{BUCKET}/models/{best['TrainingJobName']}/output/model.tar.gz"
    assert [e.detail["status"] for e in journal.of("tuning-job") if e.detail["job"] == name] == [
        "InProgress",
        "Completed",
    ]


def test_a_grid_tuning_job_runs_every_combination_and_minimizes(cloud: Any) -> None:
    # Given a Grid over kind x x (2 x 2 combinations) whose objective is to be minimized
    name = unique("grid")
    described = tune(cloud, name, tuning_config("Grid", KIND_GRID, jobs=None, objective_type="Minimize"))
    # Then the 4 combinations ran and the lowest objective (kind a, x 0.1: 0.8) is the best
    listed = cloud.clients.sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert sorted(
        (s["TunedHyperParameters"]["kind"], s["TunedHyperParameters"]["x"]) for s in listed["TrainingJobSummaries"]
    ) == [
        ("a", "0.1"),
        ("a", "0.3"),
        ("b", "0.1"),
        ("b", "0.3"),
    ]
    assert described["BestTrainingJob"]["TunedHyperParameters"] == {"kind": "a", "x": "0.1"}
    assert described["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(0.8)


def test_the_listing_pages_and_filters_by_status(cloud: Any) -> None:
    name = unique("pages")
    tune(cloud, name, tuning_config("Grid", KIND_GRID, jobs=None))
    sm = cloud.clients.sagemaker
    first = sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=name, MaxResults=3)
    rest = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, MaxResults=3, NextToken=first["NextToken"]
    )
    names = [s["TrainingJobName"] for s in first["TrainingJobSummaries"] + rest["TrainingJobSummaries"]]
    assert names == sorted(names) and len(set(names)) == 4 and "NextToken" not in rest
    failed = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, StatusEquals="Failed"
    )
    assert failed["TrainingJobSummaries"] == []


def test_a_tuning_job_whose_trials_all_fail_fails_with_their_reason(cloud: Any) -> None:
    name = unique("tune-fail")
    described = tune(cloud, name, tuning_config("Random", X_RANGE, jobs=2), fail="yes")
    assert described["HyperParameterTuningJobStatus"] == "Failed"
    assert described["TrainingJobStatusCounters"]["NonRetryableError"] == 2
    assert described["FailureReason"] == (
        f"All 2 training jobs failed or logged no {OBJECTIVE}: "
        "AlgorithmError: ValueError: the validation split is empty"
    )
    assert "BestTrainingJob" not in described


@pytest.mark.parametrize("strategy", ["Bayesian", "Hyperband"])
def test_bayesian_and_hyperband_are_refused_with_the_reason(cloud: Any, strategy: str) -> None:
    sm = cloud.clients.sagemaker
    with pytest.raises(ClientError) as error:
        sm.create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=unique(strategy.lower()),
            HyperParameterTuningJobConfig=tuning_config(strategy, X_RANGE, jobs=4),
            TrainingJobDefinition=definition(),
        )
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert error.value.response["Error"]["Message"].startswith(
        "the local cloud runs the Random and Grid strategies only"
    )


def test_grid_over_a_continuous_range_is_rejected(cloud: Any) -> None:
    with pytest.raises(ClientError) as error:
        cloud.clients.sagemaker.create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=unique("grid-bad"),
            HyperParameterTuningJobConfig=tuning_config("Grid", X_RANGE, jobs=None),
            TrainingJobDefinition=definition(),
        )
    assert (
        error.value.response["Error"]["Message"] == "the Grid strategy takes categorical parameter ranges only, got x"
    )


def test_an_objective_the_training_job_does_not_define_is_rejected(cloud: Any) -> None:
    config = tuning_config("Random", X_RANGE, jobs=1)
    config["HyperParameterTuningJobObjective"]["MetricName"] = "validation:r2"
    with pytest.raises(ClientError) as error:
        cloud.clients.sagemaker.create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=unique("objective"),
            HyperParameterTuningJobConfig=config,
            TrainingJobDefinition=definition(),
        )
    assert "'validation:r2' is not one of the job's MetricDefinitions" in error.value.response["Error"]["Message"]


def test_a_stopped_tuning_job_starts_no_further_trial(cloud: Any) -> None:
    # Given a tuning job of 3 trials stopped as soon as it was created
    sm = cloud.clients.sagemaker
    name = unique("stop")
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig=tuning_config("Random", X_RANGE, jobs=3),
        TrainingJobDefinition=definition(),
    )
    sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)[
        "HyperParameterTuningJobStatus"
    ] in (
        "Stopping",
        "Stopped",
    )
    cloud.settle()
    # Then it is Stopped, with at most the trial that was already running
    described = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert described["HyperParameterTuningJobStatus"] == "Stopped"
    assert sum(described["TrainingJobStatusCounters"].values()) <= 1
    # And a job that is no longer running cannot be stopped
    with pytest.raises(ClientError) as error:
        sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert error.value.response["Error"]["Code"] == "ValidationException"
