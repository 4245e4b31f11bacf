"""The explicit map is whole: every command has its handler, every consumed event type too."""

from __future__ import annotations

from rhythm_notifications.commands import Command
from rhythm_notifications.domain.routing import WEBHOOK_TOPICS, webhook_event_types
from rhythm_notifications.handlers import COMMAND_HANDLERS, EVENT_HANDLERS
from rhythm_shared.contracts import topics


def test_every_command_has_exactly_one_handler() -> None:
    assert set(COMMAND_HANDLERS) == set(Command.__subclasses__())


def test_every_event_of_the_consumed_topics_has_a_handler() -> None:
    handled = {event_type.type for event_type in EVENT_HANDLERS}
    assert set(webhook_event_types()) <= handled
    assert {e.topic for e in EVENT_HANDLERS} == {topics.PEOPLE, topics.KEYS, *WEBHOOK_TOPICS}
