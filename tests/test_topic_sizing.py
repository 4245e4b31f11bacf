"""bench/topic_sizing.py: the sizing table in docs/operations.md is what the script prints, and
the script counts what the services really put on the topics."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.topic_sizing import RATES, RECORD_OVERHEAD_BYTES, record_bytes, size_topics, table
from rhythm_shared.contracts import EVENT_TYPES, to_record
from rhythm_shared.contracts.topics import GOALS, NOTIFICATIONS, TOPICS
from rhythm_shared.contracts.v1 import GoalProgressRecorded
from tests.contracts.test_catalog import example_of

OPERATIONS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


def test_every_event_type_has_a_rate() -> None:
    assert set(RATES) == set(EVENT_TYPES)


def test_a_record_is_counted_as_the_services_encode_it() -> None:
    event = GoalProgressRecorded.model_validate(example_of(GoalProgressRecorded))
    record = to_record(event, source="/rhythm/sizing", trace_headers={"traceparent": "0" * 55})
    encoded = len(record.key) + len(record.value) + sum(len(k) + len(v) for k, v in record.headers)
    assert record_bytes(GoalProgressRecorded.type) == encoded + RECORD_OVERHEAD_BYTES


def test_yearly_bytes_are_rate_times_size_times_people() -> None:
    sizes = {size.topic: size for size in size_topics(1000, {GoalProgressRecorded.type: 2.0})}
    assert sizes[GOALS].bytes_per_year == 2.0 * record_bytes(GoalProgressRecorded.type) * 1000 * 12
    assert sizes[GOALS].retained_bytes is None  # kept forever: it keeps growing
    assert sizes[NOTIFICATIONS].bytes_per_year == 0
    assert set(sizes) == set(TOPICS)


def test_a_rate_for_something_that_is_not_an_event_type_is_refused() -> None:
    with pytest.raises(ValueError, match=r"not event types: rhythm\.goal\.exploded\.v1"):
        size_topics(10, {"rhythm.goal.exploded.v1": 1.0})


def test_the_operations_guide_shows_what_the_script_prints() -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    assert table(200_000) in text
    total = re.search(r"\| all topics \| \| \| ([\d.,]+) \|", text)
    assert total is not None
    assert f"About {round(float(total.group(1)))} GB a year for 200,000 people" in text
