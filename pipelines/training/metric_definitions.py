"""Metric lines the training script prints and the regexes SageMaker uses to capture them.

Kept free of heavy imports: the CDK app reads METRIC_DEFINITIONS at synth time.
"""

METRIC_SPLITS = ("train", "validation")
METRIC_NAMES = ("auc", "accuracy", "f1", "log_loss")

# The training script prints e.g. "validation:auc=0.871234;"
METRIC_DEFINITIONS: list[dict[str, str]] = [
    {"Name": f"{split}:{name}", "Regex": rf"{split}:{name}=([0-9.eE+-]+);"}
    for split in METRIC_SPLITS
    for name in METRIC_NAMES
]


def format_metric(split: str, name: str, value: float) -> str:
    return f"{split}:{name}={value:.6f};"
