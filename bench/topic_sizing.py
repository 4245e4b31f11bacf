"""Sizing: events per employee per month → bytes per topic per year, at 200,000 people.

Each event type's record is encoded as the services encode it (``to_record`` on the catalog's
example of the type, with a W3C ``traceparent`` header as the outbox relay sends it): key, value
and header bytes, plus Kafka's per-record framing in a record batch (about 26 bytes: length,
attributes, offset and time deltas, key/value/header lengths), uncompressed (the producer does
not compress). The rates are a stated assumption, per employee per month, for the cadence the
demo runs (a monthly check-in and a quarterly review) with goals updated about weekly: change
them with ``--rate TYPE=N`` to your organisation's. Retention (the topic map, or
``TOPIC_RETENTION_DAYS``) bounds what a topic holds; a topic kept forever grows by its yearly
figure every year. Multiply by the replication factor (3 in prod) for disk.

Usage: ``.venv/bin/python bench/topic_sizing.py [--people 200000] [--rate TYPE=N ...]``,
e.g. ``--rate rhythm.goal.progress_recorded.v1=8``
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass

from rhythm_shared.contracts import EVENT_TYPES, to_record
from rhythm_shared.contracts.topics import DAY_MS, TOPICS, TopicSpec

#: Batch framing per record (RecordBatch v2, KIP-98), averaged: the record's own varints and
#: attributes, and its share of a 61-byte batch header.
RECORD_OVERHEAD_BYTES = 26
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
MONTHS_PER_YEAR = 12

#: Events per employee per month (the assumption; see the module docstring).
RATES: dict[str, float] = {
    # people: HR changes about one person in five a month; joiners and leavers ~1 % a month.
    "rhythm.employee.upserted.v2": 0.2,
    "rhythm.employee.upserted.v1": 0.0,  # no longer published (v2 only)
    "rhythm.employee.deactivated.v1": 0.01,
    "rhythm.employee.erased.v1": 0.002,
    "rhythm.org_unit.upserted.v1": 0.005,
    # keys: one per joiner, one destroyed per erasure (compacted: the topic holds one per person).
    "rhythm.person_key.issued.v1": 0.01,
    "rhythm.person_key.destroyed.v1": 0.002,
    "rhythm.person_data.erased.v1": 0.01,  # five services report each erasure
    # goals: two to three goals a quarter, progress about weekly.
    "rhythm.goal.created.v1": 0.8,
    "rhythm.goal.updated.v1": 0.5,
    "rhythm.goal.progress_recorded.v1": 4.0,
    "rhythm.goal.status_changed.v1": 0.3,
    "rhythm.goal.stale.v1": 0.3,
    "rhythm.goal.archived.v1": 0.7,
    # check-ins: monthly check-in + quarterly review, reflections, feedback twice a month.
    "rhythm.checkin.scheduled.v1": 1.33,
    "rhythm.checkin.rescheduled.v1": 0.3,  # about one check-in in four is moved
    "rhythm.checkin.cancelled.v1": 0.05,
    "rhythm.checkin.completed.v1": 1.2,
    "rhythm.reflection.submitted.v1": 1.0,
    "rhythm.feedback.given.v1": 2.0,
    "rhythm.review.completed.v1": 0.33,
    "rhythm.pulse.recorded.v1": 1.2,
    # cadence: a reminder per owed check-in, a miss for one in ten, a few escalations.
    "rhythm.checkin.due.v1": 1.33,
    "rhythm.checkin.missed.v1": 0.13,
    "rhythm.cadence.escalated.v1": 0.02,
    "rhythm.cadence_policy.changed.v1": 0.0001,
    # notifications: one outcome per message decided (reminders, misses, feedback, goals).
    "rhythm.notification.sent.v1": 4.0,
    "rhythm.notification.suppressed.v1": 1.0,
    "rhythm.notification.failed.v1": 0.05,
}


@dataclass(frozen=True)
class TopicSize:
    topic: str
    events_per_employee_month: float
    mean_record_bytes: float
    bytes_per_year: float
    #: What the topic holds once its retention is reached (one replica); None: it keeps growing.
    retained_bytes: float | None


def record_bytes(event_type: str) -> int:
    """Bytes one record of ``event_type`` takes in the log, as Rhythm encodes it."""
    model = EVENT_TYPES[event_type]
    extra = model.model_config.get("json_schema_extra")
    assert isinstance(extra, dict)
    example = extra["examples"][0]  # type: ignore[index]
    record = to_record(
        model.model_validate(example),
        source="/rhythm/sizing",
        trace_headers={"traceparent": TRACEPARENT},
    )
    headers = sum(len(name) + len(value) for name, value in record.headers)
    return len(record.key) + len(record.value) + headers + RECORD_OVERHEAD_BYTES


def size_topics(people: int, rates: Mapping[str, float] = RATES) -> list[TopicSize]:
    unknown = set(rates) - set(EVENT_TYPES)
    if unknown:
        raise ValueError(f"not event types: {', '.join(sorted(unknown))}")
    sizes = []
    for spec in TOPICS.values():
        types = [t for t, m in EVENT_TYPES.items() if m.topic == spec.name]
        per_month = sum(rates.get(t, 0.0) for t in types)
        bytes_per_month = sum(rates.get(t, 0.0) * record_bytes(t) for t in types) * people
        mean = bytes_per_month / (per_month * people) if per_month else 0.0
        per_year = bytes_per_month * MONTHS_PER_YEAR
        sizes.append(
            TopicSize(spec.name, per_month, mean, per_year, _retained(spec, per_year, people))
        )
    return sizes


def _retained(spec: TopicSpec, per_year: float, people: int) -> float | None:
    if spec.compacted:  # the latest record per person
        return people * record_bytes("rhythm.person_key.issued.v1")
    if spec.retention_ms == -1:
        return None
    return per_year * spec.retention_ms / (365 * DAY_MS)


def _gb(value: float) -> str:
    return f"{value / 1e9:,.2f}"


def table(people: int, rates: Mapping[str, float] = RATES) -> str:
    lines = [
        f"| topic | events per employee per month | mean record (bytes) | "
        f"GB per year at {people:,} people | GB held at its retention |",
        "|---|---:|---:|---:|---:|",
    ]
    total = 0.0
    for size in size_topics(people, rates):
        total += size.bytes_per_year
        held = "grows (forever)" if size.retained_bytes is None else _gb(size.retained_bytes)
        lines.append(
            f"| `{size.topic}` | {size.events_per_employee_month:.2f} | "
            f"{size.mean_record_bytes:.0f} | {_gb(size.bytes_per_year)} | {held} |"
        )
    lines.append(f"| all topics | | | {_gb(total)} | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument(
        "--rate", action="append", default=[], metavar="TYPE=N", help="events/employee/month"
    )
    args = parser.parse_args()
    rates = dict(RATES)
    for item in args.rate:
        name, _, value = item.partition("=")
        try:
            rates[name] = float(value)
        except ValueError:
            parser.error(f"--rate {item!r}: give TYPE=N, N a number")
    try:
        print(table(args.people, rates))
    except ValueError as exc:
        parser.error(str(exc))


if __name__ == "__main__":
    main()
