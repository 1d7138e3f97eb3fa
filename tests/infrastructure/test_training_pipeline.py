"""Training pipeline: the state machine's shape, retries, catches, logging/tracing, and its trigger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from sagemaker_training import mapping

from lambdas.prepare_training.logic import job_name
from pipelines.evaluation import evaluate
from pipelines.training import held_out, train
from stacks.config import StageConfig, load_config
from stacks.constructs.training_pipeline import GLUE_QUEUE_SECONDS, TRAINING_PROGRAM, TRANSIENT_ERRORS
from stacks.mlops_stack import MlopsStack
from tests.infrastructure.helpers import definition, of_type, render
from tests.samples import use_platform


@pytest.fixture(scope="module")
def machine(resources: dict[str, Any], config: StageConfig) -> dict[str, Any]:
    (sm,) = [
        v
        for v in of_type(resources, "AWS::StepFunctions::StateMachine").values()
        if v["Properties"]["StateMachineName"] == config.state_machine_name
    ]
    return sm


def test_order_etl_train_evaluate_gate_register_notify(machine: dict[str, Any]) -> None:
    states = definition(machine)["States"]
    assert definition(machine)["StartAt"] == "NeedsEtl"
    assert states["RunEtl"]["Resource"].endswith(":states:::glue:startJobRun.sync")
    assert states["RunEtl"]["Next"] == "PrepareTraining"
    assert states["PrepareTraining"]["Next"] == "TuneOrTrain"
    assert states["TuneOrTrain"]["Default"] == "TrainModel"  # a dataset without model.tuning
    assert states["TrainModel"]["Resource"].endswith(":states:::sagemaker:createTrainingJob.sync")
    # the training job evaluates the model it saved (pipelines/training/held_out.py): no evaluation job on this path
    assert states["TrainModel"]["Next"] == "RegisterModel"
    assert states["EvaluateModels"]["Resource"].endswith(":states:::sagemaker:createProcessingJob.sync")
    assert states["EvaluateModels"]["Next"] == "RegisterModel"  # the tuned path's evaluation job
    assert states["RegisterModel"]["Next"] == "GatePassed"
    gate = states["GatePassed"]
    assert gate["Choices"][0]["Variable"] == "$.registration.passed"
    assert gate["Choices"][0]["Next"] == "NotifyRegistered"
    assert gate["Default"] == "NotifyRejected"
    # a retrain on existing curated data skips the ETL
    assert states["NeedsEtl"]["Choices"][0] == {
        "Variable": "$.curated",
        "IsPresent": True,
        "Next": "PrepareTraining",
    }


def test_a_dataset_that_declares_tuning_runs_a_tuning_job_of_the_same_training_job(
    machine: dict[str, Any], resources: dict[str, Any], config: StageConfig
) -> None:
    states = definition(machine)["States"]
    # Given prepare's $.prepared.tuning (present only for a dataset with model.tuning)
    assert states["TuneOrTrain"]["Choices"] == [
        {"Variable": "$.prepared.tuning", "IsPresent": True, "Next": "TuneModel"}
    ]
    tune, train_state = states["TuneModel"], states["TrainModel"]
    # Then a tuning job runs through the .sync integration, then the evaluation job, the same retries and failure path
    assert tune["Resource"].endswith(":states:::sagemaker:createHyperParameterTuningJob.sync")
    assert tune["Next"] == "EvaluateModels"
    assert (tune["Retry"], tune["Catch"]) == (train_state["Retry"], train_state["Catch"])
    # of the training job's definition (image, channels, output, instance, metric definitions, role, network), but
    # the held-out channels (a trial never sees the test split: it trains only, the evaluation job evaluates the
    # best one), its static hyperparameters from prepare (the tuned ones left out, SageMaker passes them per trial)
    parameters = tune["Parameters"]
    assert parameters["HyperParameterTuningJobName.$"] == "$.prepared.tuning.job_name"
    assert parameters["HyperParameterTuningJobConfig.$"] == "$.prepared.tuning.config"
    trained = {k: v for k, v in train_state["Parameters"].items() if k not in ("TrainingJobName.$", "HyperParameters")}
    # (a trial keeps no warm pool: the stage's keep-alive is TrainModel's only)
    trained["ResourceConfig"] = {k: v for k, v in trained["ResourceConfig"].items() if k != "KeepAlivePeriodInSeconds"}
    trained["InputDataConfig"] = [
        c for c in trained["InputDataConfig"] if c["ChannelName"] in ("train", "validation", "code")
    ]
    static = {"StaticHyperParameters.$": "$.prepared.tuning.static_hyperparameters"}
    assert parameters["TrainingJobDefinition"] == {**trained, **static}
    trial_channels = {c["ChannelName"] for c in parameters["TrainingJobDefinition"]["InputDataConfig"]}
    assert not trial_channels & {"test", "champion"}
    # and prepare holds the training job's hyperparameters but the execution's dataset, which it adds
    prepare_env = _function(resources, "PrepareTraining")["Properties"]["Environment"]["Variables"]
    hps = {k: v for k, v in train_state["Parameters"]["HyperParameters"].items() if k != "dataset.$"}
    assert set(json.loads(render(prepare_env["TRAINING_HYPERPARAMETERS"]))) == set(hps)
    # and the best trial goes on as the challenger: its archive where SageMaker writes it, and what the registry records
    output = train_state["Parameters"]["OutputDataConfig"]["S3OutputPath"]
    assert tune["ResultPath"] == "$.training"
    assert tune["ResultSelector"] == {
        "job_name.$": "$.BestTrainingJob.TrainingJobName",
        "model_data.$": f"States.Format('{{}}{{}}/output/model.tar.gz', '{output}', $.BestTrainingJob.TrainingJobName)",
        "tuning": {
            "job_name.$": "$.HyperParameterTuningJobName",
            "trials.$": "$.TrainingJobStatusCounters",
            "hyperparameters.$": "$.BestTrainingJob.TunedHyperParameters",
            "objective.$": "$.BestTrainingJob.FinalHyperParameterTuningJobObjectiveMetric",
        },
    }
    assert output.endswith("/models/")


def test_the_tuning_task_is_granted_what_its_sync_integration_needs_on_this_stages_tuning_jobs(
    resources: dict[str, Any], config: StageConfig
) -> None:
    (policy,) = [
        v for k, v in of_type(resources, "AWS::IAM::Policy").items() if k.startswith("PipelineStateMachineRole")
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (tuning,) = [s for s in statements if "sagemaker:CreateHyperParameterTuningJob" in _actions(s)]
    assert sorted(_actions(tuning)) == [
        "sagemaker:AddTags",
        "sagemaker:CreateHyperParameterTuningJob",
        "sagemaker:DescribeHyperParameterTuningJob",
        "sagemaker:ListTags",
        "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
        "sagemaker:StopHyperParameterTuningJob",
    ]
    (resource,) = tuning["Resource"] if isinstance(tuning["Resource"], list) else [tuning["Resource"]]
    assert render(resource).endswith(f":${{AWS::AccountId}}:hyper-parameter-tuning-job/{config.prefix}-*"), resource
    rules = [render(r) for s in statements if "events:PutRule" in _actions(s) for r in s["Resource"]]
    assert any(r.endswith(":rule/StepFunctionsGetEventsForSageMakerTuningJobsRule") for r in rules), rules
    # the tuning job names prepare makes (at most 32 characters) fall under it, for the longest dataset prefix
    from lambdas.prepare_training.logic import MAX_TUNING_JOB_NAME, tuning_job_name

    name = tuning_job_name(f"{config.prefix}-{'d' * 40}", "x" * 80)
    assert len(name) <= MAX_TUNING_JOB_NAME and name.startswith(f"{config.prefix}-")


def test_the_executions_dataset_reaches_every_step(machine: dict[str, Any]) -> None:
    """One state machine for every dataset: the execution's ``$.dataset`` is the Glue job's ``--dataset``, the
    training job's ``dataset`` hyperparameter and the evaluation job's ``--dataset``; the Lambdas get all of ``$``
    (prepare, register) or the execution input (the failure explainer)."""
    states = definition(machine)["States"]
    etl = states["RunEtl"]["Parameters"]["Arguments"]
    assert etl["--dataset.$"] == "$.dataset"
    assert {k: v for k, v in etl.items() if k.startswith("--raw_")} == {
        "--raw_bucket.$": "$.upload.bucket",
        "--raw_key.$": "$.upload.key",
        "--raw_version_id.$": "$.upload.version_id",
    }
    assert states["TrainModel"]["Parameters"]["HyperParameters"]["dataset.$"] == "States.JsonToString($.dataset)"
    arguments = states["EvaluateModels"]["Parameters"]["AppSpecification"]["ContainerArguments.$"]
    assert arguments.startswith("States.Array('--dataset', $.dataset, ")
    for step in ("PrepareTraining", "RegisterModel"):
        assert states[step]["Parameters"]["state.$"] == "$", step
    assert states["ExplainFailure"]["Parameters"]["input.$"] == "$$.Execution.Input"


def test_every_task_retries_transient_errors_and_catches_into_one_failure_path(
    machine: dict[str, Any],
) -> None:
    states = definition(machine)["States"]
    tasks = {
        name: s for name, s in states.items() if s["Type"] == "Task" and name not in ("ExplainFailure", "NotifyFailure")
    }
    assert set(tasks) == {
        "RunEtl",
        "RunEtlInLambda",
        "PrepareTraining",
        "TrainModel",
        "TuneModel",
        "EvaluateModels",
        "RegisterModel",
        "NotifyRegistered",
        "NotifyRejected",
    }
    for name, state in tasks.items():
        retry = state["Retry"][1 if name == "RunEtl" else 0]  # RunEtl's first retrier queues for a free run
        assert retry["ErrorEquals"] == TRANSIENT_ERRORS, name
        assert "States.TaskFailed" not in retry["ErrorEquals"], name  # a failed job is never re-run
        assert retry["BackoffRate"] == 2 and retry["MaxAttempts"] == 4, name
        (catch,) = state["Catch"]
        assert catch == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "ExplainFailure"}
    assert states["ExplainFailure"]["Next"] == "NotifyFailure"
    assert states["NotifyFailure"]["Next"] == "PipelineFailed"
    assert states["PipelineFailed"] == {
        "Type": "Fail",
        "Error": "PipelineFailed",
        "CausePath": "$.failure.reason",
    }


def test_training_job_runs_the_sklearn_container_in_script_mode(machine: dict[str, Any], config: StageConfig) -> None:
    params = definition(machine)["States"]["TrainModel"]["Parameters"]
    image = params["AlgorithmSpecification"]["TrainingImage"]
    assert "sagemaker-scikit-learn:1.9-0-cpu-py3" in image
    assert image.startswith("683313688378.dkr.ecr.us-east-1.amazonaws.com/")  # from the SDK lookup
    hps = params["HyperParameters"]
    assert json.loads(hps["sagemaker_program"]) == "pipelines/training/train.py"
    assert json.loads(hps["sagemaker_submit_directory"]).startswith("s3://")
    assert json.loads(hps["max_iter"]) == config.training.hyperparameters.max_iter
    names = {m["Name"] for m in params["AlgorithmSpecification"]["MetricDefinitions"]}
    assert {"validation:auc", "validation:f1"} <= names
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in params["InputDataConfig"]}
    assert set(channels) == {"train", "validation", *held_out.HELD_OUT_CHANNELS}
    # the held-out channels of the in-job evaluation: the test split and the champion's archive (or prepare's
    # no-champion placeholder prefix), which train.main seals away from the fit
    assert channels["test"]["S3Uri.$"] == "$.prepared.curated.test_uri"
    assert channels["champion"]["S3Uri.$"] == "$.prepared.champion_model_data"
    # and the evaluation leaves in /opt/ml/output/data, which SageMaker uploads beside model.tar.gz
    output = params["OutputDataConfig"]["S3OutputPath"]
    selector = definition(machine)["States"]["TrainModel"]["ResultSelector"]
    assert selector["evaluation_archive.$"] == (
        f"States.Format('{{}}{{}}/output/output.tar.gz', '{output}', $.TrainingJobName)"
    )
    assert selector["model_data.$"] == "$.ModelArtifacts.S3ModelArtifacts"
    assert params["ResourceConfig"]["InstanceType"] == config.training.instance_type
    assert "VolumeKmsKeyId" in params["ResourceConfig"]
    assert "KmsKeyId" in params["OutputDataConfig"]


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_training_job_keeps_a_warm_pool_only_where_the_stage_configures_one(
    stage: str, stage_templates: dict[str, dict[str, Any]]
) -> None:
    # Given each stage's synthesized training machine
    config = load_config(stage)
    (sm,) = [
        v
        for v in of_type(stage_templates[stage]["Resources"], "AWS::StepFunctions::StateMachine").values()
        if v["Properties"]["StateMachineName"] == config.state_machine_name
    ]
    states = definition(sm)["States"]
    resource_config = states["TrainModel"]["Parameters"]["ResourceConfig"]
    # Then dev's TrainModel asks SageMaker to keep its instance for the iteration loop's next upload (one hour), and
    # prod's ResourceConfig is what it was before warm pools (no key at all)
    assert {"dev": 3600, "prod": 0}[stage] == config.training.keep_alive_seconds
    if config.training.keep_alive_seconds:
        assert resource_config["KeepAlivePeriodInSeconds"] == config.training.keep_alive_seconds
    else:
        assert "KeepAlivePeriodInSeconds" not in resource_config
    assert set(resource_config) - {"KeepAlivePeriodInSeconds"} == {
        "InstanceCount",
        "InstanceType",
        "VolumeSizeInGB",
        "VolumeKmsKeyId",
    }
    # and a tuning job's trials never keep one
    tuned = states["TuneModel"]["Parameters"]["TrainingJobDefinition"]["ResourceConfig"]
    assert "KeepAlivePeriodInSeconds" not in tuned


def test_logging_all_and_tracing(machine: dict[str, Any]) -> None:
    props = machine["Properties"]
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is True
    assert props["TracingConfiguration"] == {"Enabled": True}


def test_notifications_topic_is_encrypted_and_tls_only(resources: dict[str, Any]) -> None:
    (topic,) = of_type(resources, "AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in topic["Properties"]
    (policy,) = of_type(resources, "AWS::SNS::TopicPolicy").values()
    stmts = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in stmts)


def test_a_raw_upload_under_any_dataset_folder_invokes_the_start_lambda(resources: dict[str, Any]) -> None:
    """One rule for every dataset: the start Lambda starts a declared dataset's pipeline and refuses (notifying the
    declared names) an upload under any other folder, so the refusal needs the event too."""
    rules = [
        r
        for r in of_type(resources, "AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("detail", {}).get("object", {}).get("key")
        == [{"prefix": "datasets/"}]
    ]
    (rule,) = rules
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    target = rule["Properties"]["Targets"][0]
    assert target["Arn"]["Fn::GetAtt"][0].startswith("PipelineStartPipeline")
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 4


def test_idempotency_table_is_encrypted_with_ttl(resources: dict[str, Any]) -> None:
    tables = [v for k, v in of_type(resources, "AWS::DynamoDB::Table").items() if k.startswith("PipelineIdempotency")]
    (table,) = tables
    props = table["Properties"]
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["SSESpecification"]["SSEType"] == "KMS"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


def _function(resources: dict[str, Any], name: str) -> dict[str, Any]:
    (fn,) = [
        v
        for k, v in of_type(resources, "AWS::Lambda::Function").items()
        if k.startswith(f"Pipeline{name}") and not k.startswith(f"Pipeline{name}Role")
    ]
    return fn


def _statements(resources: dict[str, Any], name: str) -> list[dict[str, Any]]:
    (policy,) = [v for k, v in of_type(resources, "AWS::IAM::Policy").items() if k.startswith(f"Pipeline{name}Role")]
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def _resources(statement: dict[str, Any]) -> list[str]:
    resource = statement["Resource"]
    return [json.dumps(r) for r in (resource if isinstance(resource, list) else [resource])]


def _object_arn(resources: dict[str, Any], zone: str, suffix: str) -> str:
    """The rendered ``<bucket ARN><suffix>`` of a data lake zone, as a policy resource."""
    bucket = next(k for k in of_type(resources, "AWS::S3::Bucket") if k.startswith(f"DataLake{zone}"))
    return json.dumps({"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, suffix]]})


def test_failure_path_sees_the_error_the_input_and_how_far_the_run_got(machine: dict[str, Any]) -> None:
    explain = definition(machine)["States"]["ExplainFailure"]
    assert explain["Parameters"] == {
        "execution.$": "$$.Execution.Name",
        "error.$": "$.error",
        "input.$": "$$.Execution.Input",
        "state.$": "$",
    }
    assert explain["ResultPath"] == "$.failure"


def test_training_hyperparameters_reach_train_py_as_configured(
    machine: dict[str, Any], config: StageConfig, stack: MlopsStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given the job's HyperParameters for an execution of tickets: States.JsonToString($.dataset) as Step Functions
    # renders it, and every value decoded as the training toolkit does (json.loads)
    hps = dict(definition(machine)["States"]["TrainModel"]["Parameters"]["HyperParameters"])
    assert hps.pop("dataset.$") == "States.JsonToString($.dataset)"
    hps["dataset"] = json.dumps("tickets")
    assert not any("schema" in name for name in hps)  # the schema is no hyperparameter: the document has it
    decoded = {name: json.loads(value) for name, value in hps.items()}

    # Then the toolkit finds the program in the source archive
    assert decoded["sagemaker_program"] == TRAINING_PROGRAM == "pipelines/training/train.py"
    assert decoded["sagemaker_submit_directory"].endswith(".gz")  # a tar.gz, as the toolkit extracts it
    assert decoded["sagemaker_region"] == config.region
    # and the script parses exactly the stage's hyperparameters and the dataset's schema (from the document shipped
    # in that archive) from its command line
    use_platform(monkeypatch, tmp_path, stack.platform)
    script_hps = {name: value for name, value in decoded.items() if not name.startswith("sagemaker_")}
    expected = (config.training.hyperparameters, stack.dataset_configs["tickets"].dataset)
    assert train.parse_args(mapping.to_cmd_args(script_hps)) == expected


def container_arguments(params: dict[str, Any], dataset: str) -> list[str]:
    """The evaluation job's ``ContainerArguments`` for an execution of ``dataset``: the synthesized
    ``States.Array('--dataset', $.dataset, '<argument>', ...)`` evaluated as Step Functions does."""
    expression = params["AppSpecification"]["ContainerArguments.$"]
    assert expression.startswith("States.Array(") and expression.endswith(")"), expression
    items = [item.strip() for item in expression[len("States.Array(") : -1].split(",")]
    return [dataset if item == "$.dataset" else item.strip("'") for item in items]


def test_evaluation_job_gets_the_dataset_and_both_models(machine: dict[str, Any]) -> None:
    params = definition(machine)["States"]["EvaluateModels"]["Parameters"]
    # the dataset comes from the execution (its gate from the platform document), as arguments the job parses
    arguments = container_arguments(params, "energy")
    assert arguments == ["--dataset", "energy", *evaluate.processing_arguments()]
    assert "Environment" not in params  # evaluate.py reads no environment variables
    # the inputs land where the job looks for them by default
    defaults = evaluate.parse_args(arguments)
    assert defaults.dataset == "energy"
    inputs = {i["InputName"]: i["S3Input"] for i in params["ProcessingInputs"]}
    assert set(inputs) == {"code", "test", "challenger", "champion"}
    for name, default, path in (
        ("test", defaults.test_dir, "$.prepared.curated.test_uri"),
        ("challenger", defaults.challenger_dir, "$.training.model_data"),
        ("champion", defaults.champion_dir, "$.prepared.champion_model_data"),
    ):
        assert inputs[name]["LocalPath"] == str(default), name
        assert inputs[name]["S3Uri.$"] == path, name
        assert inputs[name]["S3DataType"] == "S3Prefix", name
    (output,) = params["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"]["LocalPath"] == str(defaults.output_dir)
    assert output["S3Output"]["S3Uri.$"] == "$.prepared.evaluation_uri"
    assert params["ProcessingJobName.$"] == "$.prepared.evaluation_job_name"


def test_evaluation_entrypoint_unpacks_the_source_and_passes_the_arguments(
    machine: dict[str, Any], stack: MlopsStack, tmp_path: Path
) -> None:
    # Given the code input as the job would download it: the synthesized source archive under its object name
    params = definition(machine)["States"]["EvaluateModels"]["Parameters"]
    app = params["AppSpecification"]
    code_uri = next(i["S3Input"]["S3Uri"] for i in params["ProcessingInputs"] if i["InputName"] == "code")
    object_name = code_uri.rsplit("/", 1)[1]
    archive = Path(stack.node.root.outdir) / f"asset.{object_name.split('.')[0]}.tar.gz"  # type: ignore[attr-defined]
    code = tmp_path / "code"
    code.mkdir()
    (code / object_name).write_bytes(archive.read_bytes())
    python = tmp_path / "bin" / "python3"
    python.parent.mkdir()
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)

    # When the container runs its entrypoint with the job's arguments for an execution of churn (paths moved under
    # tmp_path)
    command = [part.replace("/opt/ml/processing/code", str(code)) for part in app["ContainerEntrypoint"]]
    result = subprocess.run(
        [*command, *container_arguments(params, "churn")],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{python.parent}:{os.environ['PATH']}"},
        timeout=300,
        check=False,
    )

    # Then the archive was unpacked with the platform document, and the module found churn's gate there and went
    # looking for its inputs (absent here), so no argument was lost to the shell
    assert (code / "pipelines" / "evaluation" / "evaluate.py").is_file()
    assert (code / "pipelines" / "datasets.json").read_text() == stack.platform.to_json()
    assert "arguments are required" not in result.stderr
    assert "no challenger model under /opt/ml/processing/challenger" in result.stderr
    assert result.returncode == 1


def test_pipeline_lambdas_get_their_configuration(
    resources: dict[str, Any], config: StageConfig, stack: MlopsStack
) -> None:
    prepare = _function(resources, "PrepareTraining")["Properties"]["Environment"]["Variables"]
    assert not {"JOB_PREFIX", "DATASET_SCHEMA", "MODEL_PACKAGE_GROUP"} & set(prepare), sorted(prepare)
    # the job names prepare makes from a dataset's resource prefix fall under the state machine's job permission
    for name in stack.dataset_configs:
        prefix = stack.platform.dataset(name).names.resource_prefix
        assert job_name(prefix, "eval", "x" * 80).startswith(f"{config.prefix}-{name}-eval-")
    register = _function(resources, "RegisterModel")["Properties"]["Environment"]["Variables"]
    assert not {"HYPERPARAMETERS", "APPROVAL_MODE", "DATASET_SCHEMA", "MODEL_PACKAGE_GROUP"} & set(register)
    assert stack.platform.hyperparameters == asdict(config.training.hyperparameters)
    assert stack.platform.approval == config.approval
    assert "sagemaker-scikit-learn:1.9-0-cpu-py3" in register["INFERENCE_IMAGE"]
    assert len(register["CODE_VERSION"]) == 12
    assert "GATE" not in register


def test_pipeline_lambdas_touch_only_their_own_data(resources: dict[str, Any]) -> None:
    # prepare writes two object kinds: the no-champion placeholder and a retrain's composed channels; it reads the
    # curated prefix (reports, the upload's splits) and the labelled production rows (a retrain's data plan)
    prepare = _statements(resources, "PrepareTraining")
    writes = [r for s in prepare if any(a.startswith("s3:Put") for a in _actions(s)) for r in _resources(s)]
    assert sorted(writes) == sorted(
        [
            _object_arn(resources, "Artifacts", "/evaluations/*/no-champion/NO_CHAMPION"),
            _object_arn(resources, "Curated", "/curated/composed/*"),
        ]
    )
    reads = [s for s in prepare if "s3:GetObject*" in _actions(s)]
    assert sorted(r for s in reads for r in _resources(s) if "/" in r) == sorted(
        [_object_arn(resources, "Curated", "/curated/*"), _object_arn(resources, "Curated", "/production/*")]
    )
    # register reads evaluation reports and the training jobs' output archives (not their models), and writes the
    # in-job evaluation's two files under evaluations/; it deletes nothing, and may create and update packages
    register = _statements(resources, "RegisterModel")
    assert not [a for s in register for a in _actions(s) if a.startswith("s3:Delete")]
    register_writes = [r for s in register if any(a.startswith("s3:Put") for a in _actions(s)) for r in _resources(s)]
    assert register_writes == [_object_arn(resources, "Artifacts", "/evaluations/*")]
    register_reads = [r for s in register if "s3:GetObject*" in _actions(s) for r in _resources(s) if "/" in r]
    assert sorted(register_reads) == sorted(
        [
            _object_arn(resources, "Artifacts", "/evaluations/*"),
            _object_arn(resources, "Artifacts", "/models/*/output/output.tar.gz"),
        ]
    )
    actions = {a for s in register for a in _actions(s)}
    assert {"sagemaker:CreateModelPackage", "sagemaker:UpdateModelPackage"} <= actions
    # the failure explainer needs no data at all
    failure = _statements(resources, "ExplainFailure")
    assert not [a for s in failure for a in _actions(s) if a.startswith(("s3:", "sagemaker:", "kms:"))]


def test_uploads_beyond_the_etl_jobs_concurrency_wait_for_a_free_run(
    machine: dict[str, Any], resources: dict[str, Any], config: StageConfig
) -> None:
    # Given the ETL job's concurrency and a dataset count that exceeds it in one batch of uploads
    (job,) = of_type(resources, "AWS::Glue::Job").values()
    concurrent = job["Properties"]["ExecutionProperty"]["MaxConcurrentRuns"]
    # When the ETL task's retriers are read
    first, transient = definition(machine)["States"]["RunEtl"]["Retry"]
    # Then Glue's ConcurrentRunsExceededException is matched first (Step Functions takes the first matching
    # retrier) by one that waits long enough for queued runs to finish: minutes, not the transient retrier's 75 s
    assert first == {
        "ErrorEquals": ["Glue.ConcurrentRunsExceededException"],
        "IntervalSeconds": 60,
        "BackoffRate": 1.5,
        "MaxAttempts": 12,
        "MaxDelaySeconds": 300,
        "JitterStrategy": "FULL",
    }
    assert "Glue.ConcurrentRunsExceededException" not in transient["ErrorEquals"]
    # and the longest wait covers the runs queued ahead of the last of 20 datasets uploaded at once (each ETL run
    # within the job's timeout; the upload that waits longest has ceil(20 / concurrent) - 1 rounds ahead of it)
    rounds_ahead = -(-20 // concurrent) - 1
    assert rounds_ahead * 10 * 60 <= GLUE_QUEUE_SECONDS, (GLUE_QUEUE_SECONDS, concurrent)
