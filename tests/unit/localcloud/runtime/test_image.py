"""Jobs run isolated from the checkout: each sees its shipped code and its image's libraries, never a module of
this repository it did not ship (the editable install puts the checkout on every ``.venv`` interpreter's path)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud.runtime import image, jobs
from localcloud.runtime.lambdas import FunctionSpec, LambdaRuntime
from pipelines.evaluation import smoke
from tests.unit.localcloud.support import ACCOUNT, REGION, source, unique, zip_package

NOT_SHIPPED = "ModuleNotFoundError: No module named 'stacks'"


def test_the_checkout_is_on_the_path_of_the_environments_own_interpreter(tmp_path: Path) -> None:
    # Given the pinned environment's interpreter, outside the checkout / Then the editable install leaks it
    # (why jobs must not run on it)
    leaked = subprocess.run(
        [sys.executable, "-c", "import stacks; print(stacks.__file__)"], cwd=tmp_path, capture_output=True, text=True
    )
    assert leaked.returncode == 0, leaked.stderr


def test_the_image_interpreter_has_the_libraries_not_the_checkout_and_so_do_its_children(tmp_path: Path) -> None:
    python = image.image_python(tmp_path)
    probe = source(
        """
        import importlib, subprocess, sys
        import numpy, pandas, pyarrow, sklearn, scipy, joblib, boto3, pyspark, sagemaker_training
        for name in ("stacks", "lambdas", "pipelines", "localcloud"):
            try:
                importlib.import_module(name)
                print("LEAK", name)
            except ModuleNotFoundError as error:
                print(error)
        child = subprocess.run([sys.executable, "-c", "import localcloud"], capture_output=True, text=True)
        print("child:", child.stderr.strip().splitlines()[-1])
        """
    )
    run = subprocess.run([str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "No module named 'stacks'",
        "No module named 'lambdas'",
        "No module named 'pipelines'",
        "No module named 'localcloud'",
        "child: ModuleNotFoundError: No module named 'localcloud'",
    ]
    # And it is created once per work directory, the libraries named by one .pth file
    assert image.image_python(tmp_path) == python
    pth = next(python.parent.parent.glob(f"lib/python*/site-packages/{image.PTH_FILE}"))
    assert pth.read_text().split() == image.site_packages()


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket="jobs")
        yield client


def test_a_glue_job_importing_a_module_it_did_not_ship_fails(s3: Any, tmp_path: Path) -> None:
    # Given a Glue script that ships a helper but also imports this repository's stage config (not shipped)
    s3.put_object(Bucket="jobs", Key="code/etl.py", Body=b"import helpers\nfrom stacks.config import load_config\n")
    s3.put_object(Bucket="jobs", Key="code/lib/helpers.py", Body=b"VALUE = 1\n")
    job = {
        "Command": {"ScriptLocation": "s3://jobs/code/etl.py"},
        "DefaultArguments": {"--extra-py-files": "s3://jobs/code/lib/helpers.py"},
    }
    # When it runs / Then it fails as in Glue: the shipped helper imported, the unshipped module not found
    result = jobs.run_glue(s3, job, {}, "etl", "jr_1", tmp_path, "https://unused", REGION)
    assert not result.ok
    assert result.reason == NOT_SHIPPED


def test_a_training_job_importing_a_module_it_did_not_ship_fails(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket="jobs", Key="curated/train/part-0.csv", Body=b"x\n1\n")
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text("from stacks.config import load_config\n")
    request = {
        "TrainingJobName": unique("train"),
        "AlgorithmSpecification": {"TrainingInputMode": "File"},
        "HyperParameters": {
            "sagemaker_program": json.dumps("train.py"),
            "sagemaker_submit_directory": json.dumps(str(code)),
        },
        "InputDataConfig": [
            {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "s3://jobs/curated/train/"}}}
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://jobs/models"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
    }
    # When the toolkit runs the script (a process it starts itself) / Then the import fails there
    result = jobs.run_training(s3, request, tmp_path, "https://unused", REGION)
    assert not result.ok
    assert result.reason == f"AlgorithmError: {NOT_SHIPPED}"


def test_a_processing_job_importing_a_module_it_did_not_ship_fails(s3: Any, tmp_path: Path) -> None:
    request = {
        "ProcessingJobName": unique("evaluate"),
        "AppSpecification": {"ContainerEntrypoint": ["python3", "-c", "import stacks.config"]},
    }
    result = jobs.run_processing(s3, request, tmp_path, "https://unused", REGION)
    assert not result.ok
    assert result.reason.startswith(f"AlgorithmError: {NOT_SHIPPED} (exit code 1; python3 -c ")


def test_a_lambda_importing_a_module_it_did_not_ship_fails(tmp_path: Path) -> None:
    # Given a function whose package lacks the module it imports (the Lambda runtime: python -S + layer paths)
    runtime = LambdaRuntime(tmp_path, "https://unused", REGION, layer_paths=image.site_packages())
    name = unique("fn")
    spec = FunctionSpec(
        name=name,
        arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        handler="app.handler",
        code=zip_package(
            {"app.py": "from stacks.config import load_config\n\ndef handler(event, context):\n    return 1\n"}
        ),
        environment={},
        timeout=30,
        memory=128,
        log_group=f"/aws/lambda/{name}",
    )
    try:
        invocation = runtime.invoke(spec, {})
    finally:
        runtime.stop()
    # Then the invocation fails with the import error, as Lambda reports an init error
    assert not invocation.ok
    error = json.loads(invocation.payload)
    assert (error["errorType"], error["errorMessage"]) == ("ModuleNotFoundError", "No module named 'stacks'")


def test_the_images_serve_command_serves_a_model_on_the_containers_environment(tmp_path: Path) -> None:
    # Given a model directory laid out as the evaluation job lays it out (<base>/model with code/<program>)
    code = tmp_path / "base" / "model" / "code"
    code.mkdir(parents=True)
    (tmp_path / "base" / "model" / "weights.txt").write_text("42")
    (code / "handler.py").write_text(
        source(
            """
            import os

            def model_fn(model_dir):
                return open(os.path.join(model_dir, "weights.txt")).read()

            def transform_fn(model, body, content_type, accept):
                try:
                    import stacks  # noqa: F401
                    seen = "checkout"
                except ModuleNotFoundError:
                    seen = "no checkout"
                return f"{model} {content_type} {body} {seen}", "text/plain"
            """
        )
    )
    port = smoke.free_port()
    env = {
        "PATH": f"{image.bin_dir(tmp_path)}:/usr/bin:/bin",
        "SAGEMAKER_BASE_DIR": str(tmp_path / "base"),
        "SAGEMAKER_PROGRAM": "handler.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": str(code),
        "SAGEMAKER_BIND_TO_PORT": str(port),
    }
    # When the job runs the image's `serve` (found on its PATH, as in the scikit-learn image)
    server = subprocess.Popen(["serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout is not None and json.loads(server.stdout.readline()) == {"ready": True, "port": port}
        url = f"http://127.0.0.1:{port}"
        # Then /ping answers 200 and /invocations runs the module on the model from $SAGEMAKER_BASE_DIR/model,
        # with the image's libraries only
        assert smoke.call("GET", f"{url}/ping")[0] == 200
        status, body = smoke.call("POST", f"{url}/invocations", b"1,2", {"Content-Type": "text/csv"})
        assert (status, body) == (200, b"42 text/csv 1,2 no checkout")
    finally:
        server.terminate()
        server.wait(timeout=10)
