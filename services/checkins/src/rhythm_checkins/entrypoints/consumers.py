"""Kafka consumers: the records of the topics this service reads go to the handlers the map
names for their event type (:data:`rhythm_checkins.handlers.EVENT_HANDLERS`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rhythm_checkins.handlers import EVENT_HANDLERS
from rhythm_shared.contracts import topics
from rhythm_shared.kit.consumer import ConsumerSpec

GROUP = "checkins"


def consumers(_runtime: Any) -> Sequence[ConsumerSpec]:
    return [
        ConsumerSpec(
            group=GROUP,
            topics=[topics.PEOPLE, topics.KEYS, topics.GOALS],
            handlers=EVENT_HANDLERS,
        )
    ]
