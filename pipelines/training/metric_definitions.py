"""The metrics the training script prints and the regexes SageMaker uses to capture them.

The one definition for both sides: ``train.py`` prints these lines and the CDK app puts
``METRIC_DEFINITIONS`` into the training job's AlgorithmSpecification. Kept free of heavy imports,
because the CDK app reads it at synth time.
"""

from pipelines.schema import METRICS

METRIC_NAMES: tuple[str, ...] = tuple(METRICS)
"""Every metric of every task (``pipelines.schema.METRICS``; a job prints its task's, ``task_metrics``), in
report order. One training job definition serves every dataset, so it captures them all: 2 splits x 13 metrics
stay within the 40 ``MetricDefinitions`` a training job may have (CreateTrainingJob, AlgorithmSpecification)."""

REPORTED_SPLITS: tuple[str, ...] = ("train", "validation")

_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
METRIC_DEFINITIONS: list[dict[str, str]] = [
    {"Name": f"{split}:{name}", "Regex": f"{split}:{name}={_NUMBER};"}
    for split in REPORTED_SPLITS
    for name in METRIC_NAMES
]
"""``AlgorithmSpecification.MetricDefinitions`` of the training job: one per printed metric."""


def format_metric(split: str, name: str, value: float) -> str:
    """One ``<split>:<metric>=<value>;`` log line, the form ``METRIC_DEFINITIONS`` capture."""
    return f"{split}:{name}={value:.6f};"
