"""Lambda cold start: the import time of every handler module in a fresh interpreter, against boto3 alone.

Each handler (``lambdas/*/handler.py``, discovered) is imported from a copy of the Lambda asset
(``copy_packages(LAMBDA_PACKAGES)``, the factory's packages) in a new ``python -S`` process whose path is
only that asset plus the venv's site-packages: like Lambda, where ``/var/task`` holds the asset and
layers provide Powertools and pydantic. So a handler that imports a ``pipelines`` module outside the asset
fails here as it would in the cloud. No ``.pyc`` is written (``/var/task`` is read-only). The process
times its own ``import`` (interpreter start-up excluded) and reports which third-party packages it loaded.

The environment is what every function gets from the Lambda runtime and the factory (region, function
name, Powertools service and namespace, stage) and nothing function-specific: a handler that needs its
own variables at import time fails (configuration is read at first use).

Budget: the median import time of each handler <= 2.5x the median import time of ``boto3`` measured
alternately in the same run. ``python -m bench cold_start`` runs it (``--quick``: one round).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import ROOT, Budget, Result

BUDGET = Budget(on="ratio", op="<=", limit=2.5)
FULL_ROUNDS, QUICK_ROUNDS = 7, 1
REFERENCE_MODULE = "boto3"

# Set for every function by the Lambda runtime or by stacks/constructs/lambda_factory.py.
LAMBDA_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_LAMBDA_FUNCTION_NAME": "bench-cold-start",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "POWERTOOLS_SERVICE_NAME": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "MLOps/bench",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "STAGE": "dev",
}
# Neither in the Lambda runtime nor in its layers (Powertools, AWS SDK for pandas).
FORBIDDEN = frozenset(
    {"sklearn", "scipy", "pyspark", "moto", "aws_cdk", "jsii", "constructs", "cdk_nag", "stacks", "localcloud"}
)
PANDAS_LAYER = frozenset({"numpy", "pandas", "pyarrow", "awswrangler"})

_PROBE = """
import importlib, json, sys, time
before = set(sys.modules)
started = time.perf_counter()
importlib.import_module(sys.argv[1])
seconds = time.perf_counter() - started
loaded = sorted({m.split(".")[0] for m in set(sys.modules) - before})
print(json.dumps({"seconds": seconds, "packages": loaded}))
"""


class ImportFailed(RuntimeError):
    pass


def discover_handlers(root: Path = ROOT) -> list[str]:
    """``lambdas.<name>.handler`` for every ``lambdas/<name>/handler.py``."""
    return sorted(f"lambdas.{path.parent.name}.handler" for path in (root / "lambdas").glob("*/handler.py"))


def build_asset(target: Path) -> Path:
    """The Lambda asset directory exactly as the factory bundles it."""
    from stacks.constructs.assets import copy_packages
    from stacks.constructs.lambda_factory import LAMBDA_PACKAGES

    copy_packages(LAMBDA_PACKAGES, target)
    return target


def probe_env(asset: Path) -> dict[str, str]:
    from stacks.constructs.lambda_factory import PANDAS_LAYER_ENVIRONMENT

    site = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join([str(asset), *site]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        **LAMBDA_ENV,
        # the runtime always sets these: the X-Ray SDK (Powertools Tracer) picks its Lambda sampler from
        # LAMBDA_TASK_ROOT; without it the SDK builds a sampling client for a daemon that Lambda never uses
        "LAMBDA_TASK_ROOT": str(asset),
        "LAMBDA_RUNTIME_DIR": str(asset),
        # what the factory gives functions on the AWS SDK for pandas layer; only numpy reads these variables,
        # and only those functions load numpy
        **PANDAS_LAYER_ENVIRONMENT,
    }


def import_once(module: str, asset: Path, python: str = sys.executable) -> dict[str, Any]:
    """Import ``module`` in a fresh interpreter; seconds and the top-level packages it loaded."""
    done = subprocess.run(
        [python, "-S", "-c", _PROBE, module],
        cwd=asset,
        env=probe_env(asset),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit code {done.returncode}"]
        raise ImportFailed(lines[-1])
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def measure(modules: list[str], rounds: int, asset: Path, warmup: bool = True) -> dict[str, Any]:
    """Median import milliseconds of boto3 and of each module, interleaved round by round."""
    samples: dict[str, list[float]] = {name: [] for name in [REFERENCE_MODULE, *modules]}
    packages: dict[str, list[str]] = {}
    failures: dict[str, str] = {}
    for round_index in range(rounds + (1 if warmup else 0)):
        for name in samples:
            if name in failures:
                continue
            try:
                probe = import_once(name, asset)
            except ImportFailed as error:
                failures[name] = str(error)
                continue
            packages[name] = probe["packages"]
            if warmup and round_index == 0:
                continue  # the first round warms the file cache
            samples[name].append(probe["seconds"] * 1000)
    if REFERENCE_MODULE in failures:
        raise ImportFailed(f"the reference import of {REFERENCE_MODULE} failed: {failures[REFERENCE_MODULE]}")
    return {
        "median_ms": {name: statistics.median(values) for name, values in samples.items() if values},
        "samples_ms": {name: [round(v, 2) for v in values] for name, values in samples.items()},
        "packages": packages,
        "failures": failures,
    }


def row_for(module: str, measured: dict[str, Any], reference_ms: float) -> Result:
    service = module.split(".")[1]
    name = f"cold_start:{service}"
    if module in measured["failures"]:
        return Result(
            name=name,
            status="fail",
            budget=BUDGET,
            reference=reference_ms,
            unit="ms",
            reference_label=f"import {REFERENCE_MODULE}",
            note=(
                "import failed in a fresh interpreter holding only the Lambda asset, its layers' packages and the "
                f"runtime/factory environment (a handler must not need its own variables at import): "
                f"{measured['failures'][module]}"
            ),
        )
    loaded = set(measured["packages"][module])
    problems = [f"imports {p} (not in the Lambda runtime or its layers)" for p in sorted(loaded & FORBIDDEN)]
    pandas = sorted(loaded & PANDAS_LAYER)
    note = f"needs the AWS SDK for pandas layer (with_pandas=True): {', '.join(pandas)}" if pandas else ""
    return Result.measured(
        name,
        figure=measured["median_ms"][module],
        unit="ms",
        reference=reference_ms,
        reference_label=f"import {REFERENCE_MODULE}",
        budget=BUDGET,
        problems=problems,
        note=note,
        details={
            "module": module,
            "samples_ms": measured["samples_ms"][module],
            "reference_samples_ms": measured["samples_ms"][REFERENCE_MODULE],
            # the minimum is the least load-sensitive estimate; the budget uses the medians
            "min_ratio": round(min(measured["samples_ms"][module]) / min(measured["samples_ms"][REFERENCE_MODULE]), 3),
            "third_party_packages": sorted(
                p for p in loaded - {"lambdas", "pipelines"} - set(sys.stdlib_module_names) if not p.startswith("_")
            ),
        },
    )


def run(quick: bool = False) -> list[Result]:
    """One row per handler: median import ms, as a ratio to importing boto3 the same way."""
    modules = discover_handlers()
    if not modules:
        raise RuntimeError("no lambdas/*/handler.py found")
    with tempfile.TemporaryDirectory(prefix="bench-coldstart-") as directory:
        asset = build_asset(Path(directory))
        measured = measure(modules, QUICK_ROUNDS if quick else FULL_ROUNDS, asset, warmup=not quick)
    reference_ms = measured["median_ms"][REFERENCE_MODULE]
    return [row_for(module, measured, reference_ms) for module in modules]
