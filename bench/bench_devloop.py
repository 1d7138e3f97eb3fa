"""Developer loop: warm ``cdk synth`` time and full test-suite time (full runs only: minutes, not seconds).

- ``synth``: ``node_modules/.bin/cdk synth --quiet --no-notices`` twice into a temporary output directory
  (the shared ``cdk.out`` is left alone); the figure is the second (warm) run, the reference the first run
  of the same benchmark. Budget: 15 s (2 cores). cdk-nag runs inside the synth; cfn-lint is not timed.
- ``synth_datasets``: the same warm ``cdk synth`` of a stack declaring 20 datasets (``-c datasets_dir=``, copies of
  the three samples, ``stacks.datasets.synthetic_declarations``) against one declaring 1, in the same run: each is
  synthesized once to warm up, then timed. Budget: the 20-dataset synth within 2x the 1-dataset one (the shared
  machinery is built once; each dataset adds only its group, alarms, schedule and dashboard section).
- ``test_suite``: ``.venv/bin/pytest -n 2 --dist loadgroup -q -p no:cacheprovider`` on the whole suite (the pytest
  command of ``make test``: whole files per worker, and the end-to-end cases that share a champion cloud on one
  worker, see tests/conftest.py). Budget: 10 min.
  A suite that does not pass fails the row, naming the tests that failed: its time would not describe the real
  suite, and a failure seen once (a flaky test) must be findable afterwards.

``python -m bench synth synth_datasets test_suite`` (functions ``synth``, ``synth_datasets`` and ``suite``);
``--skip-suite`` leaves the suite out; ``--quick`` skips all three.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import ROOT, Budget, Result

SYNTH_BUDGET = Budget(on="figure", op="<=", limit=15.0, unit="s")
SUITE_BUDGET = Budget(on="figure", op="<=", limit=600.0, unit="s")
DATASETS_SYNTH_BUDGET = Budget(on="ratio", op="<=", limit=2.0)
SCALE_DATASETS = 20
CDK = ROOT / "node_modules" / ".bin" / "cdk"
_SUMMARY = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)")
_FAILED = re.compile(r"^(FAILED|ERROR) (\S+)")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    env.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as `make`: compiled .pyc files halve a warm synth
    return env


def _timed(command: list[str], timeout: float) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout, check=False)
    return time.perf_counter() - started, done


def _tail(text: str, lines: int = 2) -> str:
    """The last meaningful lines of a tool's output (no blank or caret-only lines)."""
    kept = [line.strip() for line in text.strip().splitlines() if line.strip().strip("^~ ")]
    return " / ".join(kept[-lines:])


def synth(quick: bool = False) -> list[Result]:
    """Two synths in a row; the second is the warm figure."""
    if not CDK.exists():
        raise FileNotFoundError(f"{CDK} is missing: run `make install`")
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as out:
        for _ in range(2):
            seconds, done = _timed([str(CDK), "synth", "--quiet", "--no-notices", "-o", out], timeout=900)
            if done.returncode != 0:
                raise RuntimeError(f"cdk synth failed (exit {done.returncode}): {_tail(done.stderr or done.stdout)}")
            times.append(seconds)
        templates = sorted(p.name for p in Path(out).glob("*.template.json"))
    return [
        Result.measured(
            "synth_warm",
            figure=times[1],
            unit="s",
            reference=times[0],
            reference_label="first synth of this run",
            budget=SYNTH_BUDGET,
            note=f"cdk synth (cdk-nag included) of {', '.join(templates)}",
            details={"seconds": [round(t, 2) for t in times], "templates": templates, "cpus": os.cpu_count()},
        )
    ]


def _synth_of(folder: Path, out: Path) -> float:
    command = [str(CDK), "synth", "--quiet", "--no-notices", "-c", f"datasets_dir={folder}", "-o", str(out)]
    seconds, done = _timed(command, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"cdk synth failed (exit {done.returncode}): {_tail(done.stderr or done.stdout)}")
    return seconds


def synth_datasets(quick: bool = False) -> list[Result]:
    """Warm synth of 20 declared datasets vs warm synth of 1, in the same run (each warmed up once first)."""
    from stacks.datasets import synthetic_declarations

    if not CDK.exists():
        raise FileNotFoundError(f"{CDK} is missing: run `make install`")
    with tempfile.TemporaryDirectory(prefix="bench-datasets-") as scratch:
        root = Path(scratch)
        folders = {count: root / f"declared-{count}" for count in (1, SCALE_DATASETS)}
        for count, folder in folders.items():
            synthetic_declarations(folder, count)
        for count, folder in folders.items():  # warm-up: node, jsii and the bytecode caches
            _synth_of(folder, root / f"out-{count}")
        warm = {count: _synth_of(folder, root / f"out-{count}") for count, folder in folders.items()}
        resources = {
            count: len(json.loads(next((root / f"out-{count}").glob("*.template.json")).read_text())["Resources"])
            for count in folders
        }
    one, many = warm[1], warm[SCALE_DATASETS]
    return [
        Result.measured(
            "synth_datasets",
            figure=many,
            unit="s",
            reference=one,
            reference_label="warm synth of 1 dataset, same run",
            ratio=many / one,
            budget=DATASETS_SYNTH_BUDGET,
            note=f"warm cdk synth of {SCALE_DATASETS} declared datasets ({resources[SCALE_DATASETS]} resources) vs 1 "
            f"({resources[1]} resources)",
            details={"seconds": {str(k): round(v, 2) for k, v in warm.items()}, "resources": resources},
        )
    ]


def parse_summary(output: str) -> dict[str, int]:
    """Counts from pytest's last summary line, e.g. ``3 failed, 120 passed, 2 skipped in 80.1s``."""
    for line in reversed(output.strip().splitlines()):
        counts = {word if word != "error" else "errors": int(n) for n, word in _SUMMARY.findall(line)}
        if counts and " in " in line:
            return counts
    return {}


def failed_tests(output: str) -> list[str]:
    """The node ids of pytest's short summary ``FAILED``/``ERROR`` lines (``-ra``), in order, without repeats."""
    found = [m.group(2) for line in output.splitlines() if (m := _FAILED.match(line.strip()))]
    return list(dict.fromkeys(found))


def suite(quick: bool = False) -> list[Result]:
    """The whole suite on 2 workers; fails when it takes longer than the budget or does not pass."""
    pytest = Path(sys.executable).parent / "pytest"
    command = [str(pytest), "-n", "2", "--dist", "loadgroup", "-q", "-ra", "-p", "no:cacheprovider"]
    seconds, done = _timed(command, timeout=3600)
    counts = parse_summary(done.stdout)
    failed = failed_tests(done.stdout)
    problems = []
    if done.returncode != 0:
        problems.append(f"the suite did not pass (pytest exit {done.returncode}: {counts or _tail(done.stdout)})")
    if failed:
        problems.append(f"failed: {', '.join(failed)}")
    return [
        Result.measured(
            "test_suite",
            figure=seconds,
            unit="s",
            budget=SUITE_BUDGET,
            problems=problems,
            note=", ".join(f"{n} {word}" for word, n in counts.items()),
            details={"counts": counts, "failed": failed, "exit_code": done.returncode, "cpus": os.cpu_count()},
        )
    ]
