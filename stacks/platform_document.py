"""The platform document of a stage (``pipelines/datasets.json``): every declared dataset resolved against the stage.

``build_platform(config, schemas)`` gives the typed ``pipelines.platform.Platform``; the stack writes its
``to_json()`` into the Lambda asset, the Glue job's library zip and the training/evaluation source archive
(``stacks/constructs/assets.py``). The names and settings come from ``StageConfig.for_dataset`` only, so the
CloudFormation resources (alarms, groups, prefixes) and what the code reads at run time cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict

from pipelines.platform import Dataset, DatasetNames, Platform
from pipelines.schema import DatasetSchema
from stacks.config import StageConfig


def dataset_names(config: StageConfig) -> DatasetNames:
    """The names of ``config.dataset`` in ``config``'s stage (``config`` is a ``for_dataset`` result)."""
    return DatasetNames(
        endpoint=config.endpoint_name,
        model_package_group=config.model_package_group_name,
        resource_prefix=config.resource_prefix,
        rollback_alarms=config.rollback_alarm_names,
        retrain_alarms=config.retrain_alarm_comparisons,
        quality_metric=config.quality_metric,
        raw_prefix=config.raw_dataset_prefix,
        ground_truth_prefix=config.ground_truth_prefix,
        batch_input_prefix=config.batch_input_prefix,
        data_capture_prefix=config.data_capture_prefix,
        drift_report_prefix=config.drift_report_prefix,
        quality_prefix=config.quality_prefix,
        manifest_key=config.manifest_key,
        glue_table=config.glue_table_name,
    )


def dataset_entry(config: StageConfig) -> Dataset:
    """The document entry of ``config.dataset`` (``config`` is a ``for_dataset`` result)."""
    return Dataset(
        name=config.dataset.name,
        schema=config.dataset,
        evaluation=asdict(config.evaluation),
        quality=asdict(config.quality),
        serving=asdict(config.serving),
        alarms=asdict(config.alarms),
        retrain=asdict(config.retrain),
        names=dataset_names(config),
    )


def build_platform(config: StageConfig, schemas: Iterable[DatasetSchema]) -> Platform:
    """The document of ``config``'s stage for the declared ``schemas``."""
    return Platform(
        stage=config.stage,
        prefix=config.prefix,
        approval=config.approval,
        hyperparameters=asdict(config.training.hyperparameters),
        monitoring=asdict(config.monitor),
        datasets={schema.name: dataset_entry(config.for_dataset(schema)) for schema in schemas},
    )
