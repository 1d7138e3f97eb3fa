"""The warm Glue driver: Glue scripts run in turn in one process that keeps its Spark session."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.runtime import jobs
from localcloud.runtime.image import image_python
from tests.tiers import heavy_fixture

pytestmark = pytest.mark.slow

SCRIPT = """
import json, os, sys
from pyspark.sql import SparkSession

spark = SparkSession.builder.master("local[2]").getOrCreate()
count = spark.sparkContext.parallelize(range(100), 2).map(lambda v: v * 2).sum()
print(json.dumps({"argv": sys.argv[1:], "sum": count, "seen": os.environ.get("LEFT_BY_FIRST_RUN"),
                  "app": spark.sparkContext.appName, "pid": os.getpid()}))
os.environ["LEFT_BY_FIRST_RUN"] = "yes"
mode = sys.argv[sys.argv.index("--mode") + 1]
if mode == "raise":
    raise ValueError("bad input row 7")
if mode == "exit":
    sys.exit(3)
"""


@heavy_fixture
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[jobs.GlueDriver, Path]]:
    root = tmp_path_factory.mktemp("glue")
    script = root / "job.py"
    script.write_text(SCRIPT)
    env = jobs.glue_environment("https://127.0.0.1:1", "us-east-1", [], root)
    started = jobs.GlueDriver("test", [], env, root / "driver")
    yield started, script
    started.stop()


def _run(driver: jobs.GlueDriver, script: Path, root: Path, mode: str) -> tuple[int, str, dict[str, object]]:
    root.mkdir(parents=True, exist_ok=True)
    env = {**jobs.glue_environment("https://127.0.0.1:1", "us-east-1", [], root), "RUN": mode}
    code, log = driver.run(str(script), ["--JOB_NAME", "etl", "--mode", mode], env, root, timeout=300)
    lines = [line for line in log.splitlines() if line.startswith('{"argv"')]
    return code, log, json.loads(lines[0]) if lines else {}


def test_runs_share_the_session_not_the_environment(driver: tuple[jobs.GlueDriver, Path], tmp_path: Path) -> None:
    glue, script = driver
    # Given a ready driver
    assert glue.alive()
    # When the same script runs twice
    first = _run(glue, script, tmp_path / "1", "ok")
    second = _run(glue, script, tmp_path / "2", "ok")
    # Then both succeed with their own arguments, in the driver's process and Spark application
    assert (first[0], second[0]) == (0, 0)
    assert first[2]["argv"] == ["--JOB_NAME", "etl", "--mode", "ok"]
    assert first[2]["sum"] == second[2]["sum"] == 9900
    assert first[2]["pid"] == second[2]["pid"] == glue.process.pid
    assert first[2]["app"] == "glue-local"
    # And what a run leaves in os.environ does not reach the next run
    assert first[2]["seen"] is None and second[2]["seen"] is None


def test_a_failing_run_reports_like_a_process_and_the_driver_goes_on(
    driver: tuple[jobs.GlueDriver, Path], tmp_path: Path
) -> None:
    glue, script = driver
    # When a run raises, another exits with 3, and a third succeeds
    raised = _run(glue, script, tmp_path / "raise", "raise")
    exited = _run(glue, script, tmp_path / "exit", "exit")
    after = _run(glue, script, tmp_path / "after", "ok")
    # Then the exception is exit code 1 with its traceback in the log (Glue's ErrorMessage comes from it)
    assert raised[0] == 1
    assert "ValueError: bad input row 7" in raised[1]
    assert jobs._python_error(raised[1]) == "ValueError: bad input row 7"
    # And SystemExit keeps its code, and the driver still serves the next run
    assert exited[0] == 3
    assert after[0] == 0 and glue.alive()


def test_the_bundle_digest_follows_the_code(tmp_path: Path) -> None:
    # Given a script and an extra file
    script, extra = tmp_path / "s.py", tmp_path / "lib.zip"
    script.write_text("print(1)")
    extra.write_bytes(b"zip-1")
    before = jobs._bundle_digest(script, [extra])
    # When the extra file changes / Then the bundle is another one (a driver never runs stale code)
    extra.write_bytes(b"zip-2")
    assert jobs._bundle_digest(script, [extra]) != before
    assert jobs._bundle_digest(script, []) != before


def test_job_processes_leave_a_core_to_the_local_cloud(tmp_path: Path) -> None:
    # Given this machine / When a job's environment is built / Then OpenMP gets all cores but one (at least one)
    env = jobs.base_environment("https://127.0.0.1:1", "us-east-1", tmp_path)
    assert int(env["OMP_NUM_THREADS"]) == jobs.job_threads() >= 1
    assert env["PYTHONUNBUFFERED"] == "1" and Path(env["PATH"].split(":")[0]) == image_python(tmp_path).parent


def test_a_run_in_the_warm_driver_sees_neither_the_checkout_nor_the_drivers_folder(
    driver: tuple[jobs.GlueDriver, Path], tmp_path: Path
) -> None:
    glue, _ = driver
    script = tmp_path / "leaky.py"
    # Given scripts importing this repository's code (not shipped) and a module beside glue_driver.py
    for module in ("stacks.config", "protocol"):
        script.write_text(f"import {module}\n")
        # When each runs in the warm driver
        code, log = glue.run(
            str(script),
            [],
            jobs.glue_environment("https://127.0.0.1:1", "us-east-1", [], tmp_path),
            tmp_path,
            timeout=300,
        )
        # Then it fails as in Glue, and the driver goes on
        assert code == 1
        assert jobs._python_error(log) == f"ModuleNotFoundError: No module named '{module.split('.')[0]}'"
    assert glue.alive()
