"""Consuming events: parse, deduplicate, apply in one transaction, commit the offset after it.

A consumer is a map from event type to a handler ``(uow, envelope) -> None``. For each record:
an unreadable one (whatever its bytes, headers, size or nesting: every decode failure is the
record's fault) goes straight to the group's dead-letter topic; a known one runs its handler in
a unit of work guarded by the inbox (a duplicate has no second effect) — a chunk of a batch shares
one transaction; a handler that keeps failing after bounded retries sends the record to the
dead-letter topic and the partition moves on. Infrastructure failures (database or broker down)
are not the record's fault: the batch is rewound and retried, nothing is dead-lettered and no
offset is committed.

A consumer whose service sees everything (reporting) uses the positions mode instead: one
``batch_handler(uow, envelopes)`` for a whole batch, in ONE transaction that also stores, per
partition, the next offset to apply (the unit of work is a :class:`PositionStore`). Records below
the stored position are skipped, so a replay or a restart mid-batch neither loses nor double
counts, and no inbox row is written per event. On every partition assignment the consumer seeks
to the stored positions (the beginning where none is stored): the database, not the group's
committed offsets, says where to resume; the offsets are committed for lag monitoring.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections import Counter as Tally
from collections.abc import (
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind
from prometheus_client import Counter, Histogram
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from rhythm_shared.contracts.base import EVENT_TYPES, Event
from rhythm_shared.contracts.envelope import MAX_RECORD_BYTES, Envelope, EnvelopeError, from_record
from rhythm_shared.kit.commits import OffsetCommitter
from rhythm_shared.kit.kafka import send_to_dlq
from rhythm_shared.kit.lag import record_success
from rhythm_shared.kit.telemetry import spans_recorded

log = logging.getLogger("rhythm.consumer")
tracer = trace.get_tracer("rhythm.consumer")

CONSUMED = Counter("rhythm_events_consumed_total", "Events consumed", ["group", "type", "outcome"])
BATCH_SECONDS = Histogram(
    "rhythm_consumer_batch_seconds", "Time to apply one batch of records", ["group"]
)

#: ``handler(uow, envelope)``: typed by the service (its unit of work, the event it handles).
Handler = Callable[[Any, Any], Awaitable[None]]
#: ``batch_handler(uow, envelopes)``: every readable event of a batch, in order, at once.
BatchHandler = Callable[[Any, Sequence[Envelope]], Awaitable[None]]
Record: TypeAlias = "ConsumerRecord[bytes, bytes]"
#: (topic, partition) -> the next offset to apply.
Positions = dict[tuple[str, int], int]


class InfrastructureError(Exception):
    """The database or broker is unavailable: retry the batch later, blame no record."""


class ConflictLost(InfrastructureError):
    """Another writer won a race for the same rows (a replica that took over a partition, a
    deadlock): the batch is retried at once, and no record is blamed."""


#: PostgreSQL's "try again" (serialization_failure, deadlock_detected): writers that wait on each
#: other in a circle lose one transaction, which is no fault of its records.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def lost_a_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is a lost race rather than an outage: retried at once, not after a pause."""
    if isinstance(exc, ConflictLost):
        return True
    return isinstance(exc, DBAPIError) and (
        getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES
    )


@dataclass(frozen=True)
class ConsumerSpec:
    """One consumer group: which topics it reads and what it does with each event type.

    ``batch_handler`` instead of ``handlers`` selects the positions mode (module docstring)."""

    group: str
    topics: Sequence[str]
    handlers: Mapping[type[Event], Handler] = dataclasses.field(default_factory=dict)
    batch_handler: BatchHandler | None = None

    def __post_init__(self) -> None:
        if bool(self.handlers) == (self.batch_handler is not None):
            raise ValueError(f"consumer {self.group!r}: give handlers or a batch_handler")


class PositionStore(Protocol):
    """What a positions-mode consumer needs of its unit of work: the positions stored so far and
    storing new ones, in the unit of work's transaction."""

    async def stored_positions(self, topics: Collection[str]) -> Positions: ...

    async def store_positions(self, positions: Mapping[tuple[str, int], int]) -> None: ...


@dataclass
class Decoded:
    """A record and the event it carries, or why it is unreadable."""

    record: Record
    envelope: Envelope | None
    error: str | None = None

    @property
    def type_label(self) -> str:
        """The event type for metrics: only a known type, so hostile headers add no labels."""
        if self.envelope is not None:
            return self.envelope.type
        claimed = header_text(self.record).get("ce_type", "?")
        return claimed if claimed in EVENT_TYPES else "?"


def decode(record: Record, *, max_bytes: int = MAX_RECORD_BYTES) -> Decoded:
    """A record as an event, or as unreadable with the reason; never raises."""
    try:
        return Decoded(record, from_record(record.headers or (), record.value, max_bytes=max_bytes))
    except EnvelopeError as exc:
        return Decoded(record, None, f"unreadable: {exc}")


class _Refused(Exception):
    """The batch handler refused readable events (not an infrastructure failure)."""


def is_infrastructure(exc: BaseException) -> bool:
    """Whether ``exc`` means the database or the broker is unavailable (not the record's fault)."""
    if isinstance(exc, IntegrityError):
        return False
    if lost_a_conflict(exc) or isinstance(
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


@contextlib.contextmanager
def _within(context: Context) -> Iterator[None]:
    token = otel_context.attach(context)
    try:
        yield
    finally:
        otel_context.detach(token)


class EventConsumer:
    def __init__(
        self,
        spec: ConsumerSpec,
        uow_factory: Callable[[], Any],
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
        #: Opens one unit of work (a transaction); a positions-mode one is a PositionStore.
        self.uow_factory = uow_factory
        self.producer = producer
        self.max_attempts = max_attempts
        self.topic_prefix = topic_prefix
        self.retry_base_s = retry_base_s
        self.chunk_size = chunk_size
        self.max_record_bytes = max_record_bytes
        #: Commits the offsets of the batches applied, behind them (:mod:`.commits`).
        self.commits = OffsetCommitter(
            spec.group, on_committed=lambda tps: record_success(spec.group, tps, topic_prefix)
        )

    async def handle_batch(self, records: Sequence[Record]) -> None:
        """Apply a batch in as few transactions as possible, one event at a time if one fails.

        The happy path is one transaction per chunk (inbox rows and effects together; in the
        positions mode, the whole batch and its positions), which is what makes ingest fast on
        SQLite and PostgreSQL alike. If any handler fails, the transaction rolls back as a whole
        and is redone event by event, so the failing event gets its bounded retries and its dead
        letter without holding up the others.
        """
        with BATCH_SECONDS.labels(self.group).time():
            if self.spec.batch_handler is not None:
                await self._handle_positioned(records)
                return
            for start in range(0, len(records), self.chunk_size):
                chunk = records[start : start + self.chunk_size]
                ready: list[tuple[Record, Envelope, Handler]] = []
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

    async def _triage(self, record: Record) -> tuple[Record, Envelope, Handler] | None:
        """Parse a record: dead-letter it if unreadable, skip it if no handler wants it."""
        item = decode(record, max_bytes=self.max_record_bytes)
        if item.envelope is None:
            CONSUMED.labels(self.group, item.type_label, "dead_lettered").inc()
            with self._span(record):
                await self._dead_letter(record, item.error or "unreadable")
            return None
        envelope = item.envelope
        handler = self.spec.handlers.get(type(envelope.event))
        if handler is None:
            CONSUMED.labels(self.group, envelope.type, "ignored").inc()
            return None
        return record, envelope, handler

    def _span(self, record: Record, envelope: Envelope | None = None) -> Any:
        # A decoded record's trace headers were read with it; only an unreadable one is read again.
        headers = header_text(record) if envelope is None else envelope.trace_headers
        if not spans_recorded():
            # Nothing records spans: the record's own trace context is enough for the logs and
            # the records its handler publishes, at a third of a non-recording span's cost.
            return _within(propagate.extract(headers))
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

    def _batch_span(self, records: Sequence[Record]) -> Any:
        # A batch has many producers: each record's trace context becomes a link of the span
        # (the messaging conventions' batch processing), so every trace still reaches its batch.
        links = []
        for record in records:
            context = trace.get_current_span(propagate.extract(header_text(record)))
            if context.get_span_context().is_valid:
                links.append(Link(context.get_span_context()))
        return tracer.start_as_current_span(
            f"{self.group} process",
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={
                "messaging.system": "kafka",
                "messaging.consumer.group.name": self.group,
                "messaging.batch.message_count": len(records),
                "messaging.operation.type": "process",
            },
        )

    async def _apply_together(self, items: Sequence[tuple[Record, Envelope, Handler]]) -> None:
        outcomes: Tally[tuple[str, str]] = Tally()
        async with self.uow_factory() as uow:
            # The chunk's inbox rows in one statement; each event still gets its own span.
            fresh = await uow.first_times(self.group, [envelope.id for _, envelope, _ in items])
            await uow.prepare([envelope for _, envelope, _ in items if envelope.id in fresh])
            for record, envelope, handler in items:
                with self._span(record, envelope):
                    if envelope.id not in fresh:
                        outcomes[(envelope.type, "duplicate")] += 1
                        continue
                    fresh.discard(envelope.id)  # the same id again in this chunk: a duplicate
                    await handler(uow, envelope)
                    outcomes[(envelope.type, "applied")] += 1
        for (event_type, outcome), count in outcomes.items():
            CONSUMED.labels(self.group, event_type, outcome).inc(count)

    async def _apply(self, record: Record, envelope: Envelope, handler: Handler) -> None:
        with self._span(record, envelope):
            await self._apply_alone(record, envelope, handler)

    async def _apply_alone(self, record: Record, envelope: Envelope, handler: Handler) -> None:
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
                self._failed(envelope, attempt, exc)
                if attempt < self.max_attempts:
                    await self._back_off(attempt)
        CONSUMED.labels(self.group, envelope.type, "dead_lettered").inc()
        await self._dead_letter(record, self._gave_up(last_error))

    # ------------------------------------------------------------------------ positions mode

    async def stored_positions(self, topics: Collection[str]) -> Positions:
        async with self.uow_factory() as uow:
            positions: Positions = await uow.stored_positions(topics)
            return positions

    async def resume_from_stored(
        self, consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition]
    ) -> None:
        """Seek ``partitions`` to the stored positions (the beginning where none is stored) and
        commit those positions to the group: a batch stored just before a crash was never
        committed, and its partition would show that lag until another record arrived on it."""
        partitions = list(partitions)
        stored = await self.stored_positions({tp.topic for tp in partitions})
        known = {
            tp: stored[(tp.topic, tp.partition)]
            for tp in partitions
            if (tp.topic, tp.partition) in stored
        }
        for tp, offset in known.items():
            consumer.seek(tp, offset)
        unknown = [tp for tp in partitions if tp not in known]
        if unknown:
            await consumer.seek_to_beginning(*unknown)
        if known:
            try:
                await consumer.commit(known)
            except KafkaError as exc:  # lag shows until the next batch commits; nothing is lost
                log.warning(
                    "positions_commit_failed", extra={"group": self.group, "error": repr(exc)}
                )

    async def _handle_positioned(self, records: Sequence[Record]) -> None:
        decoded: list[Decoded] = []
        for start in range(0, len(records), 250):
            decoded += [
                decode(r, max_bytes=self.max_record_bytes) for r in records[start : start + 250]
            ]
            await asyncio.sleep(0)  # decoding is CPU work: let heartbeats and requests in
        try:
            await self._apply_positioned(decoded)
            return
        except _Refused as exc:
            log.info(
                "event_batch_split",
                extra={"group": self.group, "size": len(decoded), "error": repr(exc.__cause__)},
            )
        for item in decoded:
            await self._apply_positioned_alone(item)

    async def _apply_positioned_alone(self, item: Decoded) -> None:
        if item.envelope is None:
            await self._apply_positioned([item])
            return
        last_error: BaseException | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self._apply_positioned([item])
                return
            except _Refused as exc:
                last_error = exc.__cause__
                self._failed(item.envelope, attempt, last_error)
                if attempt < self.max_attempts:
                    await self._back_off(attempt)
        reason = self._gave_up(last_error)
        await self._apply_positioned([dataclasses.replace(item, envelope=None, error=reason)])

    async def _apply_positioned(self, decoded: Sequence[Decoded]) -> None:
        assert self.spec.batch_handler is not None
        records = [d.record for d in decoded]
        with self._batch_span(records):
            async with self.uow_factory() as uow:
                stored = await uow.stored_positions({r.topic for r in records})
                fresh = [d for d in decoded if d.record.offset >= stored.get(_tp(d.record), 0)]
                envelopes = [d.envelope for d in fresh if d.envelope]
                try:
                    await uow.prepare(envelopes)
                    await self.spec.batch_handler(uow, envelopes)
                except Exception as exc:
                    if is_infrastructure(exc):
                        raise
                    raise _Refused(str(exc)) from exc
                # Dead letters go out only once the handler has succeeded, so a batch that is
                # redone record by record does not park the same record twice.
                for item in fresh:
                    if item.envelope is None:
                        await self._dead_letter(item.record, item.error or "unreadable")
                advanced: Positions = {}
                for d in fresh:
                    advanced[_tp(d.record)] = d.record.offset + 1  # offsets rise in a partition
                await uow.store_positions(advanced)
        fresh_ids = {id(d) for d in fresh}
        outcomes = Tally(
            (d.type_label, "applied" if d.envelope else "dead_lettered") for d in fresh
        )
        outcomes.update((d.type_label, "duplicate") for d in decoded if id(d) not in fresh_ids)
        for (event_type, outcome), count in outcomes.items():
            CONSUMED.labels(self.group, event_type, outcome).inc(count)

    # --------------------------------------------------------------------------- both modes

    def _failed(self, envelope: Envelope, attempt: int, exc: BaseException | None) -> None:
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

    async def _back_off(self, attempt: int) -> None:
        await asyncio.sleep(self.retry_base_s * 2**attempt * random.uniform(0.5, 1.5))

    def _gave_up(self, last_error: BaseException | None) -> str:
        return (
            f"handler failed {self.max_attempts} times: {type(last_error).__name__}: {last_error}"
        )

    async def _dead_letter(self, record: Record, reason: str) -> None:
        await dead_letter(
            self.producer, record, group=self.group, reason=reason, prefix=self.topic_prefix
        )


def _tp(record: Record) -> tuple[str, int]:
    return (record.topic, record.partition)
