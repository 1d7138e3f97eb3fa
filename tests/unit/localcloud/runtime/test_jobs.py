"""Managed-job runners: S3 layout helpers, Glue arguments, metric capture, error summaries, real runs."""

from __future__ import annotations

import json
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud.runtime import jobs
from localcloud.runtime.image import image_python
from pipelines.training import train
from pipelines.training.metric_definitions import METRIC_DEFINITIONS, METRIC_NAMES, REPORTED_SPLITS
from tests.unit.localcloud.support import REGION, source, unique

# ---- S3 URIs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket/models/v1/model.tar.gz", ("bucket", "models/v1/model.tar.gz")),
        ("s3://bucket/prefix/", ("bucket", "prefix/")),
        ("s3://bucket", ("bucket", "")),
        # SageMaker's S3Uri pattern (https|s3)://([^/]+)/?(.*): the host of an https URL is taken as the bucket
        ("https://s3.eu-west-1.amazonaws.com/bucket/key", ("s3.eu-west-1.amazonaws.com", "bucket/key")),
        ("https://bucket.s3.amazonaws.com/key/a.csv", ("bucket.s3.amazonaws.com", "key/a.csv")),
    ],
)
def test_split_s3_reads_uris_as_sagemakers_s3uri_pattern(uri: str, expected: tuple[str, str]) -> None:
    assert jobs.split_s3(uri) == expected


@pytest.mark.parametrize("uri", ["/opt/ml/model", "http://bucket.s3.amazonaws.com/k", "bucket/key", "s3://"])
def test_split_s3_refuses_what_the_s3uri_pattern_refuses(uri: str) -> None:
    with pytest.raises(jobs.S3UriError) as refused:
        jobs.split_s3(uri)
    assert str(refused.value).startswith(f"ValidationException: Value '{uri}' failed to satisfy constraint")
    assert "(https|s3)://([^/]+)/?(.*)" in str(refused.value)


def test_the_s3uri_pattern_is_botocores() -> None:
    """The local pattern is the one in botocore's SageMaker service model (shape S3Uri)."""
    import botocore.session

    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("S3Uri")
    assert shape.metadata["pattern"] == jobs.S3_URI.pattern
    assert shape.metadata["max"] == jobs.S3_URI_MAX


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket="jobs")
        yield client


def put(s3: Any, *keys: str) -> None:
    for key in keys:
        s3.put_object(Bucket="jobs", Key=key, Body=key.encode())


def relative_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_download_of_a_prefix_keeps_the_layout_below_it(s3: Any, tmp_path: Path) -> None:
    # Given a channel prefix with nested objects, a folder marker and neighbours outside it
    put(
        s3,
        "data/train/part-0.parquet",
        "data/train/dt=1/part-1.parquet",
        "data/train/",
        "data/validation/part-0.parquet",
    )
    # When the prefix is downloaded
    written = jobs.download(s3, "s3://jobs/data/train/", tmp_path / "train")
    # Then everything below the prefix is there, relative to it, and nothing else
    assert relative_files(tmp_path / "train") == ["dt=1/part-1.parquet", "part-0.parquet"]
    assert sorted(written) == sorted((tmp_path / "train").rglob("*.parquet"))
    assert (tmp_path / "train" / "dt=1" / "part-1.parquet").read_text() == "data/train/dt=1/part-1.parquet"


def test_download_of_an_exact_object_takes_only_that_object(s3: Any, tmp_path: Path) -> None:
    # Given an object and another whose key merely starts with the same text
    put(s3, "code/glue_job.py", "code/glue_job.py.bak", "code/glue_job.pyc")
    # When the exact key is downloaded
    [path] = jobs.download(s3, "s3://jobs/code/glue_job.py", tmp_path / "script")
    # Then only it arrives, under its own name
    assert relative_files(tmp_path / "script") == ["glue_job.py"]
    assert path.read_text() == "code/glue_job.py"


def test_download_of_nothing_writes_nothing(s3: Any, tmp_path: Path) -> None:
    assert jobs.download(s3, "s3://jobs/absent/", tmp_path / "none") == []
    assert (tmp_path / "none").is_dir()


def test_upload_directory_writes_keys_below_the_uri_with_kms(s3: Any, tmp_path: Path) -> None:
    # Given a processing output directory
    (tmp_path / "out" / "nested").mkdir(parents=True)
    (tmp_path / "out" / "report.json").write_text("{}")
    (tmp_path / "out" / "nested" / "a.csv").write_text("1")
    key_id = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["KeyId"]
    # When it is uploaded
    uploaded = jobs.upload_directory(s3, tmp_path / "out", "s3://jobs/evaluation/run-1/", key_id)
    # Then each file is an object below the prefix, encrypted with the key
    assert uploaded == ["s3://jobs/evaluation/run-1/nested/a.csv", "s3://jobs/evaluation/run-1/report.json"]
    head = s3.head_object(Bucket="jobs", Key="evaluation/run-1/report.json")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert key_id in head["SSEKMSKeyId"]


# ---- Glue ----------------------------------------------------------------------------------------------


def test_glue_arguments_override_defaults_and_add_what_glue_adds() -> None:
    # Given a job's default arguments and a run that overrides one of them
    job = {"DefaultArguments": {"--input": "s3://raw/a.csv", "--enable-metrics": "true", "--rows": 10}}
    run = {"--input": "s3://raw/b.csv"}
    # When the script's command line is built
    argv = jobs.glue_arguments(job, run, "mlops-dev-etl", "jr_0123abcd")
    # Then the run's value wins, values are strings, and Glue's own arguments come last
    assert argv == [
        "--input",
        "s3://raw/b.csv",
        "--enable-metrics",
        "true",
        "--rows",
        "10",
        "--JOB_NAME",
        "mlops-dev-etl",
        "--JOB_ID",
        "j_0123abcd",
        "--JOB_RUN_ID",
        "jr_0123abcd",
    ]


def test_glue_arguments_without_defaults() -> None:
    assert jobs.glue_arguments({}, {}, "j", "jr_1") == ["--JOB_NAME", "j", "--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_1"]


@pytest.mark.parametrize(
    ("log", "summary"),
    [
        (
            'Traceback (most recent call last):\n  File "etl.py", line 3, in <module>\n'
            "    raise ValueError('3 rows fail the schema')\nValueError: 3 rows fail the schema\n",
            "ValueError: 3 rows fail the schema",
        ),
        (
            "pyspark.errors.exceptions.captured.AnalysisException: [PATH_NOT_FOUND] Path does not exist: s3://x.\n",
            "AnalysisException: [PATH_NOT_FOUND] Path does not exist: s3://x.",
        ),
        (
            "KeyError: 'a'\n\nDuring handling of the above exception, another exception occurred:\n\n"
            "Traceback (most recent call last):\nRuntimeError: schema check failed\n",
            "RuntimeError: schema check failed",
        ),
        ("java.lang.IllegalStateException: boom\n", "IllegalStateException: boom"),
        ("SystemExit: 2\n", "SystemExit: 2"),
        ("Traceback (most recent call last):\nMemoryError\n", "MemoryError"),
        ("24/11/27 04:00:00 ERROR Executor: task failed\nall good otherwise\n", ""),
        ("", ""),
    ],
)
def test_python_error_is_the_last_exception_line(log: str, summary: str) -> None:
    assert jobs._python_error(log) == summary


def test_run_glue_runs_the_script_with_its_arguments_and_extra_py_files(s3: Any, tmp_path: Path) -> None:
    # Given a job whose script imports a helper shipped as --extra-py-files (plain Python: no Spark needed)
    s3.put_object(
        Bucket="jobs",
        Key="code/etl.py",
        Body=source(
            """
            import sys
            import helpers
            args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
            print(helpers.greet(args["--dataset"]), args["--JOB_NAME"], args["--JOB_RUN_ID"])
            """
        ).encode(),
    )
    s3.put_object(Bucket="jobs", Key="code/lib/helpers.py", Body=b"def greet(name):\n    return f'etl of {name}'\n")
    job = {
        "Command": {"Name": "glueetl", "ScriptLocation": "s3://jobs/code/etl.py"},
        "DefaultArguments": {"--extra-py-files": "s3://jobs/code/lib/helpers.py", "--dataset": "default"},
        "Timeout": 10,
    }
    # When a run is started with its own dataset
    result = jobs.run_glue(s3, job, {"--dataset": "churn"}, "etl", "jr_42", tmp_path, "https://unused", REGION)
    # Then the script ran with the merged arguments and the helper on its path
    assert result.ok, result.log
    assert "etl of churn etl jr_42" in result.log
    assert result.seconds > 0


def test_run_glue_failure_carries_the_python_error(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket="jobs", Key="code/bad.py", Body=b"raise ValueError('3 rows fail the schema')\n")
    job = {"Command": {"ScriptLocation": "s3://jobs/code/bad.py"}}
    result = jobs.run_glue(s3, job, {}, "etl", "jr_43", tmp_path, "https://unused", REGION)
    assert not result.ok
    assert result.reason == "ValueError: 3 rows fail the schema"
    assert "Traceback" in result.log


# ---- SageMaker -----------------------------------------------------------------------------------------


def real_metrics() -> dict[str, dict[str, float]]:
    return {
        split: {name: round(0.5 + 0.01 * i + 0.1 * j, 6) for i, name in enumerate(METRIC_NAMES)}
        for j, split in enumerate(REPORTED_SPLITS)
    }


def test_metric_values_capture_what_train_py_prints_with_the_stacks_definitions() -> None:
    # Given the training script's real metric lines among other log output
    metrics = real_metrics()
    log = "\n".join(
        ["2026-11-27 sagemaker-training-toolkit INFO Invoking script", *train.metric_lines(metrics), "model_version=3"]
    )
    # When the job's MetricDefinitions (the ones the CDK app puts in the training job) are applied
    values = jobs.metric_values(log, METRIC_DEFINITIONS)
    # Then every printed metric is captured under its definition's name
    assert values == {f"{split}:{name}": value for split, named in metrics.items() for name, value in named.items()}
    assert len(values) == len(METRIC_NAMES) * len(REPORTED_SPLITS)


def test_metric_values_keep_the_last_match_and_skip_unusable_definitions() -> None:
    log = "validation:auc=0.610000;\nepoch 2\nvalidation:auc=0.874000;\nloss=nan;\n"
    definitions = [
        {"Name": "validation:auc", "Regex": r"validation:auc=([0-9.]+);"},
        {"Name": "no-group", "Regex": r"validation:auc"},
        {"Name": "not-a-number", "Regex": r"loss=(\w+);"},
    ]
    # nan parses as a float: CloudWatch would reject it, SageMaker keeps it
    values = jobs.metric_values(log, definitions)
    assert values["validation:auc"] == 0.874
    assert "no-group" not in values
    assert str(values["not-a-number"]) == "nan"


def test_relocate_moves_container_paths_into_the_job_directory(tmp_path: Path) -> None:
    root = tmp_path / "job"
    assert jobs.relocate("/opt/ml/processing/input/data", root) == f"{root}/opt/ml/processing/input/data"
    assert jobs.relocate("python3 /opt/ml/processing/code/x.py --out /opt/ml/processing/output", root) == (
        f"python3 {root}/opt/ml/processing/code/x.py --out {root}/opt/ml/processing/output"
    )
    assert jobs.relocate("s3://bucket/opt/ml-not-a-path", root) == "s3://bucket/opt/ml-not-a-path"


def test_base_environment_points_jobs_at_the_local_cloud(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SOME_DEVELOPER_SECRET", "x")
    monkeypatch.setenv("PYTHONPATH", "/somewhere/of/the/developer")
    env = jobs.base_environment("https://127.0.0.1:4566", "eu-west-1", tmp_path)
    assert env["AWS_ENDPOINT_URL"] == "https://127.0.0.1:4566"
    assert (env["AWS_REGION"], env["AWS_DEFAULT_REGION"]) == ("eu-west-1", "eu-west-1")
    assert env["PATH"].split(":")[0] == str(image_python(tmp_path).parent)  # python3 is the image's
    assert "SOME_DEVELOPER_SECRET" not in env and "PYTHONPATH" not in env


def training_request(tmp_path: Path, script: str, name: str, **extra: Any) -> dict[str, Any]:
    code = tmp_path / f"{name}-code"
    code.mkdir()
    (code / "train.py").write_text(source(script))
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingInputMode": "File", "MetricDefinitions": METRIC_DEFINITIONS},
        "HyperParameters": {
            "sagemaker_program": json.dumps("train.py"),
            "sagemaker_submit_directory": json.dumps(str(code)),  # the toolkit also takes a local directory
            "max_depth": "3",
        },
        "InputDataConfig": [
            {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "s3://jobs/curated/train/"}}}
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://jobs/models"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        "Environment": {"MODEL_VERSION": "7"},
    }
    request.update(extra)
    return request


def test_run_training_runs_the_script_under_the_toolkit(s3: Any, tmp_path: Path) -> None:
    # Given a training channel and a script that reads its channel, hyperparameters and environment
    put(s3, "curated/train/part-0.csv")
    script = """
        import json, os, sys
        print(sys.argv[1:], os.environ["MODEL_VERSION"], sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"])))
        print("validation:auc=0.812345;")
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w") as handle:
            json.dump({"version": os.environ["MODEL_VERSION"]}, handle)
        with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "metrics.json"), "w") as handle:
            handle.write("{}")
        """
    name = unique("train")
    # When the job runs
    result = jobs.run_training(s3, training_request(tmp_path, script, name), tmp_path, "https://unused", REGION)
    # Then the script ran with the job's inputs, its metric was captured and the model archive uploaded
    assert result.ok, result.log
    assert "['--max_depth', '3'] 7 ['part-0.csv']" in result.log
    assert result.outputs == {
        "model_uri": f"s3://jobs/models/{name}/output/model.tar.gz",
        "metrics": {"validation:auc": 0.812345},
    }
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="jobs", Prefix=f"models/{name}/")["Contents"]}
    assert keys == {f"models/{name}/output/model.tar.gz", f"models/{name}/output/output.tar.gz"}


def test_run_training_failure_reason_is_the_scripts_python_error(s3: Any, tmp_path: Path) -> None:
    put(s3, "curated/train/part-0.csv")
    script = """
        print("train:auc=0.5;")
        raise ValueError("label column 'churn' is missing")
        """
    result = jobs.run_training(
        s3, training_request(tmp_path, script, unique("fail")), tmp_path, "https://unused", REGION
    )
    assert not result.ok
    assert result.reason.startswith("AlgorithmError: ")
    assert "ValueError: label column 'churn' is missing" in result.reason
    assert result.outputs == {"metrics": {"train:auc": 0.5}}  # metrics logged before the failure are kept


def test_run_training_to_an_https_output_url_fails_as_on_sagemaker(s3: Any, tmp_path: Path) -> None:
    """An S3 HTTPS URL as S3OutputPath (what tasks.S3Location.from_bucket renders) is not converted: SageMaker takes
    its host for the bucket and the artifact upload fails (aws/amazon-sagemaker-examples#3881 shows the real
    "Artifact upload failed:Unable to upload file to s3://s3-us-west-2.amazonaws.com/<bucket>/..." failure)."""
    # Given a job whose output path is the https URL of the bucket
    put(s3, "curated/train/part-0.csv")
    script = """
        import os
        open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w").write("m")
        """
    name = unique("https")
    request = training_request(
        tmp_path, script, name, OutputDataConfig={"S3OutputPath": f"https://s3.{REGION}.amazonaws.com/jobs/models/"}
    )
    # When it runs
    result = jobs.run_training(s3, request, tmp_path, "https://unused", REGION)
    # Then it fails uploading to the "bucket" named by the host, and nothing lands in the real bucket
    assert not result.ok
    assert result.reason.startswith(
        f"ClientError: Artifact upload failed:Unable to upload file to s3://s3.{REGION}.amazonaws.com/jobs/models/"
    ), result.reason
    assert "NoSuchBucket" in result.reason
    assert "Contents" not in s3.list_objects_v2(Bucket="jobs", Prefix="models/")


def test_run_training_refuses_an_output_path_that_is_no_s3uri_before_running(s3: Any, tmp_path: Path) -> None:
    # Given an output path SageMaker's request validation refuses
    request = training_request(
        tmp_path, "raise SystemExit(1)", unique("bad"), OutputDataConfig={"S3OutputPath": "jobs/m"}
    )
    # When the job is run / Then it fails at once with SageMaker's validation message, nothing ran
    result = jobs.run_training(s3, request, tmp_path, "https://unused", REGION)
    assert not result.ok and result.log == ""
    assert result.reason.startswith("ValidationException: Value 'jobs/m' failed to satisfy constraint")


def test_run_processing_relocates_paths_and_uploads_outputs(s3: Any, tmp_path: Path) -> None:
    # Given an evaluation-like job: code and data inputs, an output, container paths everywhere
    put(s3, "eval/data/test.csv")
    s3.put_object(
        Bucket="jobs",
        Key="eval/code/evaluate.py",
        Body=source(
            """
            import os, sys
            data = open("/opt/ml/processing/input/data/test.csv".replace("/opt/ml/", os.environ["ROOT"])).read()
            out = sys.argv[sys.argv.index("--out") + 1]
            open(os.path.join(out, "report.json"), "w").write('{"rows": "%s"}' % data)
            """
        ).encode(),
    )
    request = {
        "ProcessingJobName": unique("evaluate"),
        "ProcessingInputs": [
            {
                "InputName": "code",
                "S3Input": {"S3Uri": "s3://jobs/eval/code/", "LocalPath": "/opt/ml/processing/input/code"},
            },
            {
                "InputName": "data",
                "S3Input": {"S3Uri": "s3://jobs/eval/data/", "LocalPath": "/opt/ml/processing/input/data"},
            },
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "report",
                    "S3Output": {"S3Uri": "s3://jobs/eval/out/", "LocalPath": "/opt/ml/processing/output"},
                }
            ]
        },
        "AppSpecification": {
            "ImageUri": "sklearn",
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/evaluate.py"],
            "ContainerArguments": ["--out", "/opt/ml/processing/output"],
        },
        "Environment": {"ROOT": "/opt/ml/"},
    }
    # When it runs
    result = jobs.run_processing(s3, request, tmp_path, "https://unused", REGION)
    # Then the container paths resolved inside the job's directory and the output was uploaded
    assert result.ok, result.log
    assert result.outputs == {"uploaded": ["s3://jobs/eval/out/report.json"]}
    body = s3.get_object(Bucket="jobs", Key="eval/out/report.json")["Body"].read()
    assert json.loads(body) == {"rows": "eval/data/test.csv"}


def test_run_processing_failure_names_the_error_and_the_command(s3: Any, tmp_path: Path) -> None:
    request = {
        "ProcessingJobName": unique("broken"),
        "AppSpecification": {"ContainerEntrypoint": ["python3", "-c", "raise KeyError('challenger')"]},
    }
    result = jobs.run_processing(s3, request, tmp_path, "https://unused", REGION)
    assert not result.ok
    assert result.reason.startswith("AlgorithmError: KeyError: 'challenger' (exit code 1; python3 -c ")


def test_run_training_of_an_isolated_job_takes_its_code_from_the_code_channel(s3: Any, tmp_path: Path) -> None:
    """A network-isolated job (a private stage's) gets its source archive as the ``code`` channel and names its
    container path as ``sagemaker_submit_directory``: the runner relocates that path under the job's tree."""
    # Given the source archive in S3 and a job that names it by its container path
    put(s3, "curated/train/part-0.csv")
    code = tmp_path / "isolated-code"
    code.mkdir()
    (code / "train.py").write_text(source('print("from the code channel"); print("validation:auc=0.5;")'))
    archive = tmp_path / "abc123.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(code / "train.py", arcname="train.py")
    s3.upload_file(str(archive), "jobs", "assets/abc123.gz")
    name = unique("isolated")
    request = training_request(tmp_path, "", name)
    request["HyperParameters"]["sagemaker_submit_directory"] = json.dumps("/opt/ml/input/data/code/abc123.gz")
    request["InputDataConfig"].append(
        {"ChannelName": "code", "DataSource": {"S3DataSource": {"S3Uri": "s3://jobs/assets/abc123.gz"}}}
    )
    # When the job runs
    result = jobs.run_training(s3, request, tmp_path, "https://unused", REGION)
    # Then the toolkit extracted the archive from the channel and ran its script
    assert result.ok, result.log
    assert "from the code channel" in result.log


# ---- warm Glue drivers: a run queues on its bundle's busy driver ---------------------------------------


class _Driver:
    """Stands for a started ``GlueDriver`` (its run lock and liveness are all ``GlueDrivers.get`` reads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.up = True

    def alive(self) -> bool:
        return self.up


def _pool(driver: _Driver) -> jobs.GlueDrivers:
    pool = jobs.GlueDrivers()
    pool._drivers["bundle"] = driver  # type: ignore[assignment]
    return pool


def test_a_run_waits_for_its_bundles_busy_warm_driver() -> None:
    # Given the bundle's warm driver busy with a run that ends 0.3 s later
    driver = _Driver()
    pool = _pool(driver)
    first = pool.get("bundle")
    assert first is not None
    threading.Timer(0.3, driver._lock.release).start()
    # When a second run of the bundle asks for it
    began = time.monotonic()
    second = pool.get("bundle", busy_wait=10)
    # Then it gets the same driver once the first run ends, not a cold process of its own
    assert second is not None and second.driver is driver
    assert 0.2 < time.monotonic() - began < 5
    assert pool.get("bundle", busy_wait=0) is None  # held by the second run now


def test_a_run_starts_cold_when_the_driver_stays_busy_or_is_gone() -> None:
    driver = _Driver()
    pool = _pool(driver)
    assert pool.get("bundle") is not None
    # a run that would wait longer than busy_wait starts its own process
    began = time.monotonic()
    assert pool.get("bundle", busy_wait=0.2) is None
    assert time.monotonic() - began < 2
    # a driver stopped while a run waited for it (its run timed out and killed it) is not handed out

    def stopped() -> None:
        driver.up = False
        driver._lock.release()

    threading.Timer(0.1, stopped).start()
    assert pool.get("bundle", busy_wait=5) is None
    assert not driver._lock.locked()  # released again: the next run does not wait for a dead driver
    # another bundle has no driver
    assert pool.get("other", busy_wait=5) is None
