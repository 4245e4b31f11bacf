"""Consuming events: parse, deduplicate, apply in one transaction, commit the offset after it.

A consumer is a map from event type to a handler ``(uow, envelope) -> None``. For each record:
an unreadable one (whatever its bytes, headers, size or nesting: every decode failure is the
record's fault) goes straight to the group's dead-letter topic; a known one runs its handler in
a unit of work guarded by the inbox (a duplicate has no second effect) — a chunk of a batch shares
one transaction; a handler that keeps failing after bounded retries sends the record to the
dead-letter topic and the partition moves on. Infrastructure failures (database or broker down)
are not the record's fault: the batch is rewound and retried, nothing is dead-lettered and no
offset is committed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from prometheus_client import Counter
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from rhythm_shared.contracts.base import EVENT_TYPES, Event
from rhythm_shared.contracts.envelope import MAX_RECORD_BYTES, Envelope, EnvelopeError, from_record
from rhythm_shared.kit.kafka import send_to_dlq
from rhythm_shared.kit.uow import UnitOfWorkFactory

log = logging.getLogger("rhythm.consumer")
tracer = trace.get_tracer("rhythm.consumer")

CONSUMED = Counter("rhythm_events_consumed_total", "Events consumed", ["group", "type", "outcome"])

#: ``handler(uow, envelope)``: typed by the service (its unit of work, the event it handles).
Handler = Callable[[Any, Any], Awaitable[None]]


class InfrastructureError(Exception):
    """The database or broker is unavailable: retry the batch later, blame no record."""


@dataclass(frozen=True)
class ConsumerSpec:
    """One consumer group: which topics it reads and what it does with each event type."""

    group: str
    topics: Sequence[str]
    handlers: Mapping[type[Event], Handler]
    extra: Mapping[str, Any] = field(default_factory=dict)


def is_infrastructure(exc: BaseException) -> bool:
    """Whether ``exc`` means the database or the broker is unavailable (not the record's fault)."""
    if isinstance(exc, IntegrityError):
        return False
    if isinstance(
        exc, OperationalError | InfrastructureError | KafkaError | OSError | TimeoutError
    ):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def header_text(record: ConsumerRecord[bytes, bytes]) -> dict[str, str]:
    """A record's headers as text for logs, metrics and trace context, whatever their bytes."""
    return {
        str(k): v.decode(errors="replace") if isinstance(v, bytes) else ""
        for k, v in (record.headers or ())
    }


async def dead_letter(
    producer: AIOKafkaProducer,
    record: ConsumerRecord[bytes, bytes],
    *,
    group: str,
    reason: str,
    prefix: str = "",
) -> None:
    """Park ``record`` on the group's dead-letter topic; if the broker refuses it as too large,
    park its headers and reason without the body, so the partition still moves on."""
    try:
        await send_to_dlq(producer, record, group=group, reason=reason, prefix=prefix)
    except MessageSizeTooLargeError:
        size = len(record.value or b"")
        await send_to_dlq(
            producer,
            dataclasses.replace(record, value=None),
            group=group,
            reason=f"{reason} (body of {size} bytes dropped: too large for the dead-letter topic)",
            prefix=prefix,
        )


class EventConsumer:
    def __init__(
        self,
        spec: ConsumerSpec,
        uow_factory: UnitOfWorkFactory[Any],
        producer: AIOKafkaProducer,
        *,
        max_attempts: int = 3,
        topic_prefix: str = "",
        retry_base_s: float = 0.05,
        chunk_size: int = 200,
        max_record_bytes: int = MAX_RECORD_BYTES,
    ) -> None:
        self.spec = spec
        self.group = spec.group
        self.uow_factory = uow_factory
        self.producer = producer
        self.max_attempts = max_attempts
        self.topic_prefix = topic_prefix
        self.retry_base_s = retry_base_s
        self.chunk_size = chunk_size
        self.max_record_bytes = max_record_bytes

    async def handle_batch(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Apply a batch in as few transactions as possible, one event at a time if one fails.

        The happy path is one transaction per chunk (inbox rows and effects together), which is
        what makes ingest fast on SQLite and PostgreSQL alike. If any handler in the chunk fails,
        the chunk rolls back as a whole and is redone event by event, so the failing event gets
        its bounded retries and its dead letter without holding up the others.
        """
        for start in range(0, len(records), self.chunk_size):
            chunk = records[start : start + self.chunk_size]
            ready: list[tuple[ConsumerRecord[bytes, bytes], Envelope, Handler]] = []
            for record in chunk:
                item = await self._triage(record)
                if item is not None:
                    ready.append(item)
            if not ready:
                continue
            try:
                await self._apply_together(ready)
            except Exception as exc:
                if is_infrastructure(exc):
                    raise
                log.info(
                    "event_batch_split",
                    extra={"group": self.group, "size": len(ready), "error": repr(exc)},
                )
                for record, envelope, handler in ready:
                    await self._apply(record, envelope, handler)

    async def handle_record(self, record: ConsumerRecord[bytes, bytes]) -> None:
        item = await self._triage(record)
        if item is not None:
            await self._apply(*item)

    async def _triage(
        self, record: ConsumerRecord[bytes, bytes]
    ) -> tuple[ConsumerRecord[bytes, bytes], Envelope, Handler] | None:
        """Parse a record: dead-letter it if unreadable, skip it if no handler wants it."""
        try:
            envelope = from_record(
                record.headers or (), record.value, max_bytes=self.max_record_bytes
            )
        except EnvelopeError as exc:
            # The type label comes from the record: only a known type, or the label set grows.
            claimed = header_text(record).get("ce_type", "?")
            label = claimed if claimed in EVENT_TYPES else "?"
            CONSUMED.labels(self.group, label, "dead_lettered").inc()
            with self._span(record):
                await self._dead_letter(record, f"unreadable: {exc}")
            return None
        handler = self.spec.handlers.get(type(envelope.event))
        if handler is None:
            CONSUMED.labels(self.group, envelope.type, "ignored").inc()
            return None
        return record, envelope, handler

    def _span(self, record: ConsumerRecord[bytes, bytes], envelope: Envelope | None = None) -> Any:
        headers = header_text(record)
        # OpenTelemetry messaging conventions: a CONSUMER span "<destination> process" whose
        # parent is the producer's context from the record's W3C traceparent header.
        attributes: dict[str, Any] = {
            "messaging.system": "kafka",
            "messaging.destination.name": record.topic,
            "messaging.consumer.group.name": self.group,
            "messaging.kafka.message.offset": record.offset,
            "messaging.destination.partition.id": str(record.partition),
            "messaging.operation.type": "process",
        }
        if envelope is not None:
            attributes["messaging.message.id"] = envelope.id
        return tracer.start_as_current_span(
            f"{record.topic} process",
            context=propagate.extract(headers),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        )

    async def _apply_together(
        self, items: Sequence[tuple[ConsumerRecord[bytes, bytes], Envelope, Handler]]
    ) -> None:
        outcomes: list[tuple[str, str]] = []
        async with self.uow_factory() as uow:
            for record, envelope, handler in items:
                with self._span(record, envelope):
                    if not await uow.first_time(self.group, envelope.id):
                        outcomes.append((envelope.type, "duplicate"))
                        continue
                    await handler(uow, envelope)
                    outcomes.append((envelope.type, "applied"))
        for event_type, outcome in outcomes:
            CONSUMED.labels(self.group, event_type, outcome).inc()

    async def _apply(
        self, record: ConsumerRecord[bytes, bytes], envelope: Envelope, handler: Handler
    ) -> None:
        with self._span(record, envelope):
            await self._apply_alone(record, envelope, handler)

    async def _apply_alone(
        self, record: ConsumerRecord[bytes, bytes], envelope: Envelope, handler: Handler
    ) -> None:
        last_error: BaseException | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with self.uow_factory() as uow:
                    if not await uow.first_time(self.group, envelope.id):
                        CONSUMED.labels(self.group, envelope.type, "duplicate").inc()
                        return
                    await handler(uow, envelope)
                CONSUMED.labels(self.group, envelope.type, "applied").inc()
                return
            except Exception as exc:
                if is_infrastructure(exc):
                    raise
                last_error = exc
                log.warning(
                    "event_handler_failed",
                    extra={
                        "group": self.group,
                        "event_id": envelope.id,
                        "type": envelope.type,
                        "attempt": attempt,
                        "error": repr(exc),
                    },
                )
                if attempt < self.max_attempts:
                    await asyncio.sleep(self.retry_base_s * 2**attempt * random.uniform(0.5, 1.5))
        CONSUMED.labels(self.group, envelope.type, "dead_lettered").inc()
        await self._dead_letter(
            record,
            f"handler failed {self.max_attempts} times: {type(last_error).__name__}: {last_error}",
        )

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        await dead_letter(
            self.producer, record, group=self.group, reason=reason, prefix=self.topic_prefix
        )
