"""A per-dataset schedule's event (``stacks.constructs.dataset.scheduled_event_for``): EventBridge's "Scheduled
Event" with the dataset as its ``detail``, read through Powertools' ``EventBridgeEvent`` data class."""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent


def scheduled_dataset(event: EventBridgeEvent) -> str:
    """The dataset a scheduled event is for; ``ValueError`` for any other event or one that names no dataset."""
    if event.detail_type != "Scheduled Event":
        raise ValueError(f"expected a Scheduled Event, got {event.detail_type!r} from {event.source!r}")
    name = (event.detail or {}).get("dataset")
    if not isinstance(name, str) or not name:
        raise ValueError(f"the scheduled event names no dataset (detail: {event.detail!r}): its rule must send one")
    return name
