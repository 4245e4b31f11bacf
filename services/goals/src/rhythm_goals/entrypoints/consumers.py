"""Consumers: the people directory from ``rhythm.people.v1`` and the people's data keys from
``rhythm.keys.v1`` (group ``goals``).

The kit parses each record, deduplicates it through the inbox (a replayed ce_id has no second
effect), runs the event's handler (:data:`rhythm_goals.handlers.EVENT_HANDLERS`) in one
transaction and commits the offset after it. An ``EmployeeErased`` erases what the service holds
of the person (:func:`rhythm_goals.use_cases.people.erase_person`).
"""

from __future__ import annotations

from collections.abc import Sequence

from rhythm_goals.adapters.unit_of_work import GoalsRuntime
from rhythm_goals.handlers import EVENT_HANDLERS
from rhythm_shared.contracts import topics
from rhythm_shared.kit.consumer import ConsumerSpec

GROUP = "goals"


def consumers(runtime: GoalsRuntime) -> Sequence[ConsumerSpec]:
    return [ConsumerSpec(group=GROUP, topics=[topics.PEOPLE, topics.KEYS], handlers=EVENT_HANDLERS)]
