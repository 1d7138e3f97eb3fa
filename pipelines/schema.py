"""The dataset contract shared by the ETL job, the training script, evaluation, inference and drift.

It is deliberately free of CDK and AWS imports: the same module ships to Glue (via --extra-py-files),
into the SageMaker model archive and into the Lambda asset. The stage configuration
(stacks/config.py) holds one instance; the infrastructure passes it to the jobs as JSON
(``DatasetSchema.to_json`` / ``DatasetSchema.from_json``), so there is a single source of truth.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

FeatureKind = Literal["numeric", "categorical"]

SPLITS: tuple[str, ...] = ("train", "validation", "test")


@dataclass(frozen=True)
class Feature:
    """One model input column."""

    name: str
    kind: FeatureKind
    # numeric: inclusive valid range (None = unbounded)
    minimum: float | None = None
    maximum: float | None = None
    # categorical: the allowed values
    categories: tuple[str, ...] = ()
    nullable: bool = False

    def __post_init__(self) -> None:
        if self.kind == "categorical" and not self.categories:
            raise ValueError(f"categorical feature {self.name!r} needs categories")
        if self.kind == "numeric" and self.categories:
            raise ValueError(f"numeric feature {self.name!r} cannot have categories")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"feature {self.name!r}: minimum > maximum")


@dataclass(frozen=True)
class DatasetSchema:
    """Columns of one dataset: a row key, the features and a binary target."""

    name: str
    key: str
    target: str
    features: tuple[Feature, ...]
    positive_label: int = 1
    # Columns that feature engineering adds (computed from the inputs, also served at inference)
    engineered: tuple[str, ...] = field(default_factory=tuple)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def numeric_features(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "numeric"]

    @property
    def categorical_features(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "categorical"]

    @property
    def input_columns(self) -> list[str]:
        """Columns a raw upload must carry, in order."""
        return [self.key, *self.feature_names, self.target]

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetSchema:
        features = tuple(Feature(**{**f, "categories": tuple(f.get("categories", ()))}) for f in data["features"])
        return cls(
            name=data["name"],
            key=data["key"],
            target=data["target"],
            features=features,
            positive_label=int(data.get("positive_label", 1)),
            engineered=tuple(data.get("engineered", ())),
        )

    @classmethod
    def from_json(cls, text: str) -> DatasetSchema:
        return cls.from_dict(json.loads(text))


# The sample dataset shipped with the project: telecom customer churn (binary target `churned`).
CHURN_SCHEMA = DatasetSchema(
    name="churn",
    key="customer_id",
    target="churned",
    features=(
        Feature("tenure_months", "numeric", minimum=0, maximum=120),
        Feature("monthly_charges", "numeric", minimum=0, maximum=500),
        Feature("total_charges", "numeric", minimum=0, maximum=60000, nullable=True),
        Feature("support_calls", "numeric", minimum=0, maximum=50),
        Feature("data_usage_gb", "numeric", minimum=0, maximum=2000),
        Feature("age", "numeric", minimum=18, maximum=100),
        Feature("contract", "categorical", categories=("month-to-month", "one-year", "two-year")),
        Feature(
            "payment_method",
            "categorical",
            categories=("electronic-check", "mailed-check", "bank-transfer", "credit-card"),
        ),
        Feature("internet_service", "categorical", categories=("dsl", "fiber", "none")),
    ),
    engineered=("charges_per_tenure_month", "support_calls_per_year"),
)
