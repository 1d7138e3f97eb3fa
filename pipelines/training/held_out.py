"""The evaluation inside the training job: the held-out channels kept from the fit, then the evaluation module.

The training job of an upload's run (``TrainModel``) gets two channels besides ``train`` and ``validation``:
``test`` (the curated held-out split) and ``champion`` (the Approved model's ``model.tar.gz``, or prepare's
``NO_CHAMPION`` placeholder). The platform's wrapper (``train.main``) runs in this order:

1. ``seal``: before any training code runs, the files of the held-out channels are read into this process's memory
   and deleted from the channel directories; ``fit_environment`` is the environment a dataset's own script
   (``model.entry_point``) is started with: ``SM_CHANNEL_TEST`` / ``SM_CHANNEL_CHAMPION`` removed, and the
   toolkit's channel lists (``SM_CHANNELS``, ``SM_INPUT_DATA_CONFIG``, ``SM_TRAINING_ENV``) naming ``train``,
   ``validation`` (and ``code``) only. A built-in estimator is fitted in this process on the train and validation
   frames only.
2. the fit, the model's artifacts in ``SM_MODEL_DIR`` (as before).
3. ``evaluate``: the sealed files are written back into a private scratch directory, the model directory is packed
   as SageMaker packs it (``train.package_model``), and ``python -m pipelines.evaluation.evaluate`` runs in a new
   interpreter on that archive (unpacked and loaded through the inference handler's ``load_model``, the
   ``model_fn`` of the endpoint), the test split and the champion: champion/challenger, the gate, the golden
   payloads and the smoke test on the image's own ``serve``. Its ``evaluation.json`` and ``golden.json`` go to
   ``SM_OUTPUT_DATA_DIR``, which SageMaker uploads as ``<S3OutputPath>/<job>/output/output.tar.gz`` at the end
   of the job; RegisterModel publishes both under the execution's ``evaluations/`` folder.

What stays visible to the user's code: it runs in the same container, as the same user. The held-out files are not
on disk while it runs and no variable names them, but the wrapper process holds their bytes in memory (a process
allowed to read another's memory could), and the job's ``input/config/inputdataconfig.json`` still lists the
channel names. This keeps the test split out of the fit by construction, against accidental use; it is not a
security boundary against a hostile script (which could also write to the model directory the platform reloads).

A tuning trial (``TuneModel``) gets no held-out channel: it trains only, and the separate evaluation job evaluates
the best trial (``EvaluateModels``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

HELD_OUT_CHANNELS: tuple[str, ...] = ("test", "champion")
"""The training job's channels the fit must not see (the stack's ``TrainModel`` names the same two)."""
EVALUATION_MODULE = "pipelines.evaluation.evaluate"
CODE_ROOT = Path(__file__).resolve().parents[2]
"""Where the ``pipelines`` package sits, with the platform document shipped in it: ``/opt/ml/code`` in the job (the
evaluation's ``PYTHONPATH``; tests point it at a copy holding their own document)."""
ERROR_LINES = 3
"""How many of the evaluation's last stderr lines the job's failure reason carries."""


class EvaluationFailed(RuntimeError):
    """The evaluation module failed (not a failed gate or smoke test: those are results in the report); the
    one-line message is the job's failure reason."""


def channel_environment(name: str) -> str:
    return f"SM_CHANNEL_{name.upper()}"


@dataclass(frozen=True)
class Sealed:
    """The held-out channels' files (relative path -> bytes), by channel; absent channels are not keys."""

    files: Mapping[str, Mapping[str, bytes]]

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self.files)

    def restore(self, scratch: Path) -> dict[str, Path]:
        """Write the files back under ``scratch/<channel>/``; the directories by channel."""
        directories = {}
        for channel, files in self.files.items():
            directory = scratch / channel
            directory.mkdir(parents=True, exist_ok=True)
            for relative, body in files.items():
                target = directory / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(body)
            directories[channel] = directory
        return directories


def seal(environ: Mapping[str, str]) -> Sealed:
    """Read every file of the held-out channels the job has (``SM_CHANNEL_TEST``, ``SM_CHANNEL_CHAMPION``) and
    delete it from the channel directory."""
    files: dict[str, dict[str, bytes]] = {}
    for channel in HELD_OUT_CHANNELS:
        location = environ.get(channel_environment(channel))
        if not location:
            continue
        root = Path(location)
        paths = sorted(path for path in root.rglob("*") if path.is_file()) if root.is_dir() else []
        files[channel] = {path.relative_to(root).as_posix(): path.read_bytes() for path in paths}
        for path in paths:
            path.unlink()
    return Sealed(files)


def fit_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` as the user's training script gets it: no variable names a held-out channel."""
    env = {key: value for key, value in environ.items() if key not in map(channel_environment, HELD_OUT_CHANNELS)}
    if "SM_CHANNELS" in env:
        env["SM_CHANNELS"] = json.dumps([c for c in json.loads(env["SM_CHANNELS"]) if c not in HELD_OUT_CHANNELS])
    if "SM_INPUT_DATA_CONFIG" in env:
        config = json.loads(env["SM_INPUT_DATA_CONFIG"])
        env["SM_INPUT_DATA_CONFIG"] = json.dumps({k: v for k, v in config.items() if k not in HELD_OUT_CHANNELS})
    if "SM_TRAINING_ENV" in env:
        training = json.loads(env["SM_TRAINING_ENV"])
        for key in ("channel_input_dirs", "input_data_config"):
            if isinstance(training.get(key), dict):
                training[key] = {k: v for k, v in training[key].items() if k not in HELD_OUT_CHANNELS}
        env["SM_TRAINING_ENV"] = json.dumps(training)
    return env


def evaluation_arguments(dataset: str, scratch: Path, output_dir: Path) -> list[str]:
    """The evaluation module's command line: the restored channels, the packed challenger, the output folder."""
    return [
        "--dataset",
        dataset,
        "--test_dir",
        str(scratch / "test"),
        "--challenger_dir",
        str(scratch / "challenger"),
        "--champion_dir",
        str(scratch / "champion"),
        "--output_dir",
        str(output_dir),
    ]


def evaluate(sealed: Sealed, model_dir: Path, output_dir: Path, dataset: str) -> str:
    """Run the evaluation module on the packed model of ``model_dir`` and the sealed channels; its log. Raises
    ``EvaluationFailed`` when the job has no test channel or the module fails."""
    from pipelines.training.train import package_model

    if "test" not in sealed.files:
        raise EvaluationFailed("the training job has no test channel: nothing to evaluate the model on")
    if not sealed.files["test"]:
        raise EvaluationFailed("the test channel is empty: nothing to evaluate the model on")
    with tempfile.TemporaryDirectory(prefix="held-out-") as directory:
        scratch = Path(directory)
        sealed.restore(scratch)
        (scratch / "champion").mkdir(exist_ok=True)  # no champion channel: the evaluation finds no champion
        package_model(model_dir, scratch / "challenger" / "model.tar.gz")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CODE_ROOT), env.get("PYTHONPATH")]))
        completed = subprocess.run(
            [sys.executable, "-m", EVALUATION_MODULE, *evaluation_arguments(dataset, scratch, output_dir)],
            env=env,
            cwd=CODE_ROOT,  # python -m puts the working directory first on sys.path
            capture_output=True,
            text=True,
            check=False,
        )
    sys.stdout.write(completed.stdout)  # the job log: the gate's and the smoke test's lines
    sys.stderr.write(completed.stderr)
    if completed.returncode != 0:
        lines = [line.strip() for line in completed.stderr.strip().splitlines() if line.strip()]
        detail = " | ".join(lines[-ERROR_LINES:]) or f"exit code {completed.returncode}"
        raise EvaluationFailed(f"the evaluation of the trained model failed: {detail}")
    return completed.stdout
