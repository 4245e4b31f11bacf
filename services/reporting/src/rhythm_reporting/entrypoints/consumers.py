"""Batch ingest of every topic: one transaction per batch, positions stored with the effect.

Reporting sees everything an organisation does, so it does not use the kit's per-event consumer
(an inbox row and a transaction per event). Instead, per batch of records:

1. decode every record with the contract (``from_record``): whatever its bytes, headers, size
   or nesting, a record is an event or unreadable, never an error;
2. in ONE transaction: read the stored position of each partition, skip records below it
   (a replay or a restart mid-batch neither loses nor double counts), project the events with
   bulk upserts, dead-letter unreadable records to ``rhythm.dlq.reporting`` and store the new
   positions (``consumer_positions``);
3. commit the Kafka offsets afterwards, for lag monitoring only: the stored positions are the
   truth, and on every partition assignment the consumer seeks to them.

If the projection of a batch fails for a reason other than the database or broker being away,
the batch is redone one record at a time; a record that still fails after
``CONSUMER_MAX_ATTEMPTS`` attempts is dead-lettered and the partition moves on. An infrastructure
failure rewinds to the stored positions and blames no record.

Facts are keyed by their own ids, so even a duplicate record at a new offset changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rhythm_reporting.adapters.db import kit
from rhythm_reporting.adapters.unit_of_work import SqlReportingUnitOfWork, checkpoint_wal
from rhythm_reporting.commands import ProjectEvents
from rhythm_reporting.domain.erasure import SERVICE
from rhythm_reporting.handlers import project_events
from rhythm_shared.contracts.base import EVENT_TYPES
from rhythm_shared.contracts.envelope import MAX_RECORD_BYTES, Envelope, EnvelopeError, from_record
from rhythm_shared.contracts.topics import TOPICS
from rhythm_shared.kit.clock import Clock
from rhythm_shared.kit.consumer import CONSUMED, dead_letter, header_text, is_infrastructure
from rhythm_shared.kit.kafka import client_security
from rhythm_shared.kit.lag import record_success

log = logging.getLogger("rhythm.reporting.ingest")
tracer = trace.get_tracer("rhythm.reporting.ingest")

GROUP = "reporting"
INGESTED = Counter(
    "rhythm_reporting_records_total", "Records seen by reporting's ingest", ["outcome"]
)
BATCH_SECONDS = Histogram("rhythm_reporting_batch_seconds", "Time to apply one batch")

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"
Positions = dict[tuple[str, int], int]


def every_topic(prefix: str) -> list[str]:
    return [f"{prefix}{name}" for name in TOPICS]


@dataclass
class Decoded:
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


class ProjectionFailed(Exception):
    """The projection refused readable events (not an infrastructure failure): a record's fault."""


def decode(records: Iterable[Record], *, max_bytes: int = MAX_RECORD_BYTES) -> list[Decoded]:
    """Each record as an event, or as unreadable with the reason; never raises."""
    out = []
    for record in records:
        try:
            envelope = from_record(record.headers or (), record.value, max_bytes=max_bytes)
            out.append(Decoded(record, envelope))
        except EnvelopeError as exc:
            out.append(Decoded(record, None, f"unreadable: {exc}"))
    return out


class BatchApplier:
    """Applies batches of records to one read-model generation (or to whichever is active)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        producer: AIOKafkaProducer,
        clock: Clock,
        *,
        topic_prefix: str,
        generation: int | None = None,
        max_attempts: int = 3,
        max_record_bytes: int = MAX_RECORD_BYTES,
        retry_base_s: float = 0.05,
        kek: bytes | None = None,
    ) -> None:
        self.sessions = sessions
        #: Opens the names upserts v2 carry sealed (the key-encryption key).
        self.kek = kek
        self.producer = producer
        self.clock = clock
        self.topic_prefix = topic_prefix
        self.max_attempts = max_attempts
        self.max_record_bytes = max_record_bytes
        self.retry_base_s = retry_base_s
        #: None: the live model, i.e. the active generation, looked up in each transaction.
        self.generation = generation

    def _uow(self) -> SqlReportingUnitOfWork:
        return SqlReportingUnitOfWork(
            self.sessions, kit, self.clock, SERVICE, generation=self.generation, kek=self.kek
        )

    async def positions(self) -> Positions:
        async with self._uow() as uow:
            return await uow.read_model.positions()

    async def apply(self, records: Sequence[Record]) -> Positions:
        """Apply one batch in one transaction; returns the stored positions after it.

        If the projection refuses the batch, it is redone record by record, so the record at
        fault gets its bounded attempts and its dead letter without holding up the others.
        """
        decoded: list[Decoded] = []
        for start in range(0, len(records), 250):
            decoded += decode(records[start : start + 250], max_bytes=self.max_record_bytes)
            await asyncio.sleep(0)  # decoding is CPU work: let heartbeats and requests in
        try:
            return await self._apply_decoded(decoded)
        except ProjectionFailed as exc:
            log.info(
                "reporting_batch_split",
                extra={"records": len(records), "error": repr(exc.__cause__)},
            )
        positions: Positions = {}
        for item in decoded:
            positions.update(await self._apply_alone(item))
        return positions

    async def _apply_alone(self, item: Decoded) -> Positions:
        if item.envelope is None:
            return await self._apply_decoded([item])
        last_error: BaseException | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                return await self._apply_decoded([item])
            except ProjectionFailed as exc:
                last_error = exc.__cause__
                log.warning(
                    "event_handler_failed",
                    extra={
                        "group": GROUP,
                        "event_id": item.envelope.id,
                        "type": item.envelope.type,
                        "attempt": attempt,
                        "error": repr(last_error),
                    },
                )
                if attempt < self.max_attempts:
                    await asyncio.sleep(self.retry_base_s * 2**attempt * random.uniform(0.5, 1.5))
        reason = (
            f"handler failed {self.max_attempts} times: {type(last_error).__name__}: {last_error}"
        )
        return await self._apply_decoded([replace(item, envelope=None, error=reason)])

    async def _apply_decoded(self, decoded: Sequence[Decoded]) -> Positions:
        records = [d.record for d in decoded]
        with (
            tracer.start_as_current_span(
                "reporting ingest",
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.consumer.group.name": GROUP,
                    "messaging.batch.message_count": len(records),
                    "messaging.operation.type": "process",
                },
            ),
            BATCH_SECONDS.time(),
        ):
            async with self._uow() as uow:
                store = uow.read_model
                stored = await store.positions({r.topic for r in records})
                fresh = [d for d in decoded if d.record.offset >= stored.get(_tp(d.record), 0)]
                try:
                    await project_events(
                        uow, ProjectEvents(events=tuple(d.envelope for d in fresh if d.envelope))
                    )
                except Exception as exc:
                    if is_infrastructure(exc):
                        raise
                    raise ProjectionFailed(str(exc)) from exc
                # Dead letters go out only once the projection has succeeded, so a batch that is
                # redone record by record does not park the same record twice.
                for item in fresh:
                    if item.envelope is None:
                        await dead_letter(
                            self.producer,
                            item.record,
                            group=GROUP,
                            reason=item.error or "unreadable",
                            prefix=self.topic_prefix,
                        )
                advanced = dict(stored)
                for d in fresh:
                    tp = _tp(d.record)
                    advanced[tp] = max(advanced.get(tp, 0), d.record.offset + 1)
                await store.save_positions(
                    {tp: o for tp, o in advanced.items() if stored.get(tp) != o}, self.clock.now()
                )
        if uow.compact:
            await checkpoint_wal(self.sessions)
        INGESTED.labels("applied").inc(sum(1 for d in fresh if d.envelope))
        INGESTED.labels("dead_lettered").inc(sum(1 for d in fresh if d.envelope is None))
        INGESTED.labels("skipped").inc(len(records) - len(fresh))
        # The kit's consumer metric too, so one dashboard covers every consumer group.
        outcomes = Tally(
            (d.type_label, "applied" if d.envelope else "dead_lettered") for d in fresh
        )
        fresh_ids = {id(d) for d in fresh}
        outcomes.update((d.type_label, "duplicate") for d in decoded if id(d) not in fresh_ids)
        for (event_type, outcome), count in outcomes.items():
            CONSUMED.labels(GROUP, event_type, outcome).inc(count)
        return advanced


def _tp(record: Record) -> tuple[str, int]:
    return (record.topic, record.partition)


class _SeekToStoredPositions(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, ingest: LiveIngest) -> None:
        self.ingest = ingest

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.ingest.seek_to_stored(assigned)


class LiveIngest:
    """The service's consumer group ``reporting`` on every topic, applying batches live."""

    def __init__(
        self,
        applier: BatchApplier,
        *,
        bootstrap: str,
        topics: Sequence[str],
        group_id: str,
        batch_size: int,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        retry_delay_s: float = 1.0,
        security: dict[str, Any] | None = None,
    ) -> None:
        self.applier = applier
        self.topics = list(topics)
        self.batch_size = batch_size
        self.retry_delay_s = retry_delay_s
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=batch_size,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **(client_security() if security is None else security),
        )
        self._stop = asyncio.Event()
        self.batches = 0
        #: Stored positions the group's committed offsets have yet to catch up with.
        self._uncommitted: dict[TopicPartition, int] = {}

    async def seek_to_stored(self, partitions: Iterable[TopicPartition]) -> None:
        stored = await self.applier.positions()
        unknown = []
        for tp in partitions:
            offset = stored.get((tp.topic, tp.partition))
            if offset is None:
                unknown.append(tp)
            else:
                self.consumer.seek(tp, offset)
                # A batch stored just before a crash was never committed to the group: without
                # this, its partition shows that lag until another record arrives on it.
                self._uncommitted[tp] = offset
        if unknown:
            await self.consumer.seek_to_beginning(*unknown)

    async def _commit_stored(self) -> None:
        pending = {
            tp: o for tp, o in self._uncommitted.items() if tp in self.consumer.assignment()
        }
        self._uncommitted = {}
        if pending:
            with contextlib.suppress(KafkaError):
                await self.consumer.commit(pending)

    async def start(self) -> None:
        await self.consumer.start()
        self.consumer.subscribe(self.topics, listener=_SeekToStoredPositions(self))

    async def run(self) -> None:
        rewind = False
        while not self._stop.is_set():
            if rewind:
                # Fetching on before the rewind succeeds would apply later records first and
                # store positions past the failed batch: it would be lost.
                try:
                    await self.seek_to_stored(self.consumer.assignment())
                except Exception:
                    log.warning("reporting_rewind_failed", exc_info=True)
                    await asyncio.sleep(self.retry_delay_s)
                    continue
                rewind = False
            await self._commit_stored()
            batch = await self.consumer.getmany(timeout_ms=200, max_records=self.batch_size)
            records = [r for rs in batch.values() for r in rs]
            if not records:
                continue
            try:
                await self.applier.apply(records)
            except Exception:
                # Only infrastructure gets here (a record's fault is dead-lettered in apply):
                # nothing was committed, so go back to the stored positions and try again.
                log.exception("reporting_batch_failed", extra={"records": len(records)})
                await asyncio.sleep(self.retry_delay_s)
                rewind = True
                continue
            self.batches += 1
            done = {TopicPartition(t, p): r.offset + 1 for (t, p), r in _last(records).items()}
            for tp in done:
                self._uncommitted.pop(tp, None)
            with contextlib.suppress(KafkaError):
                # For lag monitoring only; the stored positions decide where to resume.
                await self.consumer.commit(done)
            record_success(GROUP, records, self.applier.topic_prefix)

    async def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    async def close(self) -> None:
        await self.consumer.stop()


def _last(records: Sequence[Record]) -> dict[tuple[str, int], Record]:
    out: dict[tuple[str, int], Record] = {}
    for r in records:
        out[(r.topic, r.partition)] = r
    return out


async def run_live_ingest(ingest: LiveIngest) -> None:
    """Run until stopped; an unexpected crash of the loop is logged and the loop restarted."""
    while not ingest.stopped:
        try:
            await ingest.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reporting_ingest_crashed")
            await asyncio.sleep(ingest.retry_delay_s)
