"""A warm Glue driver: one Python process that keeps a local Spark session and runs Glue job scripts in turn.

Started by ``localcloud.runtime.jobs.GlueDriver`` as ``python -u glue_driver.py`` (the image interpreter of
``localcloud.runtime.image``: libraries, not this checkout) with the job's code bundle (the ``--extra-py-files``)
on ``PYTHONPATH``, so the driver and Spark's Python workers import the same code. The driver's own folder is
taken off ``sys.path`` and each run sees its script's folder first, as ``python script.py`` would. It
creates the session the way the job's own local fallback does (``local[2]``, no UI: on Glue the runtime owns the
session too, and the script's ``getOrCreate`` gets it), runs a tiny Spark job so the JVM and the Python workers
are up, prints ``{"ready": true}`` and then reads one JSON request per line on stdin:
``{"script", "argv", "env", "log"}``. Each request runs the script as ``__main__`` (``runpy.run_path``) with
``sys.argv`` and ``os.environ`` set to the run's, file descriptors 1 and 2 (the script's and the JVM's output)
sent to ``log``, and answers ``{"code": <exit code>}`` on the protocol stream (a duplicate of the original
stdout). An uncaught exception prints its traceback and exits the run with 1, ``SystemExit`` with its code.
Only the session outlives a run; a script that stops it gets a new one next time.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import traceback
from typing import Any

APP_NAME = "glue-local"


def session() -> Any:
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master("local[2]")
        .appName(APP_NAME)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )


RUNTIME_MODULES = ("numpy", "pandas", "pyarrow", "pyarrow.parquet", "boto3")
"""Libraries of the Glue 5.0 runtime (not the job's code): imported ahead in the driver and in the workers."""


def _import_runtime(value: int) -> int:
    import importlib

    for name in RUNTIME_MODULES:
        importlib.import_module(name)
    return value


def warm_up() -> None:
    """Start the JVM and the Python workers (the first Spark job of a process pays for both), with the runtime's
    libraries imported in both, as a warm Glue worker would have them."""
    _import_runtime(0)
    spark = session()
    spark.sparkContext.parallelize(range(2), 2).map(_import_runtime).collect()


def _exit_code(error: SystemExit) -> int:
    if error.code is None:
        return 0
    return error.code if isinstance(error.code, int) else 1


def run(request: dict[str, Any]) -> int:
    """One job run; returns its exit code (the output went to ``request["log"]``)."""
    from pyspark import SparkContext

    if SparkContext._active_spark_context is None:  # the previous script stopped the session
        session()
    saved_env, saved_argv = dict(os.environ), list(sys.argv)
    saved_fds = (os.dup(1), os.dup(2))
    sys.stdout.flush()
    sys.stderr.flush()
    with open(request["log"], "ab", buffering=0) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [request["script"], *request["argv"]]
    saved_path = list(sys.path)
    sys.path.insert(0, os.path.dirname(os.path.abspath(request["script"])))
    code = 0
    try:
        runpy.run_path(request["script"], run_name="__main__")
    except SystemExit as error:
        code = _exit_code(error)
    except BaseException:  # the run fails; the driver goes on
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_fds[0], 1)
        os.dup2(saved_fds[1], 2)
        for fd in saved_fds:
            os.close(fd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv = saved_argv
        sys.path[:] = saved_path
    return code


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]  # not the job's code
    protocol_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
    protocol_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    warm_up()
    protocol_out.write(json.dumps({"ready": True}) + "\n")
    protocol_out.flush()
    for line in protocol_in:
        if not line.strip():
            continue
        code = run(json.loads(line))
        protocol_out.write(json.dumps({"code": code}) + "\n")
        protocol_out.flush()


if __name__ == "__main__":
    main()
