"""On-demand prices of the endpoint instance types the configuration allows: the one price table of the stack.

SageMaker real-time inference (hosting), on-demand, US East (N. Virginia) ``us-east-1``, USD per instance-hour,
as listed on https://aws.amazon.com/sagemaker/pricing/ ("Real-Time Inference") as of 2026-11 (the prices
docs/performance.md uses). Other regions cost more or less; the AWS Pricing Calculator is the reference before
relying on a figure. ``ServingSettings`` refuses an instance type that has no price here, so every dataset's idle
cost can be printed at synth (``idle_cost_per_day``); to use another type, add its price with the same source.
"""

from __future__ import annotations

PRICE_REGION = "us-east-1"
PRICE_DATE = "2026-11"
PRICE_SOURCE = "https://aws.amazon.com/sagemaker/pricing/ (Real-Time Inference, on-demand)"

ENDPOINT_HOURLY_USD: dict[str, float] = {
    "ml.t2.medium": 0.056,
    "ml.c5.large": 0.102,
    "ml.c5.xlarge": 0.204,
    "ml.m5.large": 0.115,
    "ml.m5.xlarge": 0.23,
    "ml.m5.2xlarge": 0.461,
}
TRAINING_HOURLY_USD: dict[str, float] = {
    "ml.m5.large": 0.115,
    "ml.m5.xlarge": 0.23,
}
"""SageMaker training, on-demand, us-east-1, USD per instance-hour (https://aws.amazon.com/sagemaker/pricing/,
"Training", as of 2026-11). A managed warm pool bills its retained instances at this rate
(``ResourceRetainedBillableTimeInSeconds`` x ``InstanceCount``, API_WarmPoolStatus)."""
HOURS_PER_DAY = 24
INTERFACE_ENDPOINT_HOURLY_USD = 0.01
"""An interface VPC endpoint, per Availability Zone it has a network interface in, per hour (AWS PrivateLink,
https://aws.amazon.com/privatelink/pricing/, us-east-1, 2026-11; plus $0.01 per GB processed, nothing when idle).
Gateway endpoints (S3, DynamoDB) cost nothing."""


def idle_cost_per_day(instance_type: str, instances: int) -> float:
    """USD per day of ``instances`` endpoint instances of ``instance_type`` running idle (billed per hour up)."""
    return ENDPOINT_HOURLY_USD[instance_type] * instances * HOURS_PER_DAY


def interface_endpoints_cost_per_day(endpoints: int, zones: int) -> float:
    """USD per day of ``endpoints`` interface endpoints, each in ``zones`` Availability Zones, idle."""
    return INTERFACE_ENDPOINT_HOURLY_USD * endpoints * zones * HOURS_PER_DAY


def warm_pool_cost(instance_type: str, instances: int, seconds: float) -> float:
    """USD of a warm pool of ``instances`` training instances retained for ``seconds``."""
    return TRAINING_HOURLY_USD[instance_type] * instances * seconds / 3600
