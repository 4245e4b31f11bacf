"""The service factory: one process runs the HTTP API, the consumers, the outbox relay and the
timed jobs, and stops them in reverse order on shutdown (uvicorn turns SIGTERM into that)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder
from pydantic import AwareDatetime, BaseModel
from sqlalchemy import MetaData, text

from rhythm_shared.contracts.topics import TOPICS, TopicSpec, dlq_spec
from rhythm_shared.kit.audit_http import audit_router
from rhythm_shared.kit.auth import Authenticator, Role
from rhythm_shared.kit.clock import Clock, ManualClock, SystemClock
from rhythm_shared.kit.consumer import ConsumerSpec, EventConsumer, lost_a_conflict
from rhythm_shared.kit.db import KitTables, create_engine, create_reader_engine, session_factory
from rhythm_shared.kit.errors import Forbidden
from rhythm_shared.kit.housekeeping import Housekeeper, Retention, kit_rules
from rhythm_shared.kit.http import PrincipalDep, install_error_handlers
from rhythm_shared.kit.jobs import JobSpec, run_periodically
from rhythm_shared.kit.kafka import (
    BrokerMonitor,
    broker_security,
    client_security,
    ensure_topics,
    make_producer,
    why_unreachable,
)
from rhythm_shared.kit.lag import LagMonitor
from rhythm_shared.kit.limits import BodySizeLimit
from rhythm_shared.kit.migrations import schema_state, upgrade_to_head
from rhythm_shared.kit.outbox import OutboxRelay
from rhythm_shared.kit.redaction import NoReferrer, redact_server_span
from rhythm_shared.kit.runtime import R, S, U
from rhythm_shared.kit.runtime import Runtime as Runtime
from rhythm_shared.kit.telemetry import setup_logging, setup_tracing
from rhythm_shared.kit.uow import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger("rhythm.app")

#: How often a service started with MIGRATE_ON_START=false looks again at a schema that is behind.
SCHEMA_POLL_S = 2.0


@dataclass
class ServiceDefinition(Generic[S, U, R]):
    name: str
    settings: S
    metadata: MetaData
    tables: KitTables
    migrations: Path
    routers: Sequence[APIRouter] = ()
    consumers: Callable[[Runtime[S, U, R]], Sequence[ConsumerSpec]] = lambda _: ()
    jobs: Callable[[Runtime[S, U, R]], Sequence[JobSpec]] = lambda _: ()
    #: The service's unit of work (a subclass that opens its repositories in ``bind``), or a
    #: callable that makes one from the same arguments (a ``functools.partial`` of it).
    unit_of_work: Callable[..., U] = UnitOfWork  # type: ignore[assignment]
    #: Called after the database is migrated and before anything consumes; what it returns is
    #: ``runtime.resources`` (the service's dispatcher, reader, …).
    on_start: Callable[[Runtime[S, U, R]], Awaitable[R]] | None = None
    on_stop: Callable[[Runtime[S, U, R]], Awaitable[None]] | None = None
    clock: Clock | None = None
    description: str = ""
    span_exporter: SpanExporter | None = None


def _topic_specs(defn: ServiceDefinition, consumers: Sequence[ConsumerSpec]) -> list[TopicSpec]:
    # Every service may create the whole catalog: creation is idempotent and the topic map is one.
    specs = [*TOPICS.values(), *(dlq_spec(c.group) for c in consumers)]
    return [defn.settings.topic_spec(spec) for spec in specs]


def create_app(defn: ServiceDefinition[S, U, R]) -> FastAPI:
    settings = defn.settings
    setup_logging(settings.log_level, settings.log_json)
    provider = setup_tracing(
        f"rhythm-{defn.name}", settings.otel_exporter_otlp_endpoint, defn.span_exporter
    )
    clock = defn.clock or SystemClock()
    engine = create_engine(settings.effective_database_url)
    reader = create_reader_engine(settings.effective_database_url, engine)
    sessions = session_factory(engine)
    runtime: Runtime[S, U, R] = Runtime(
        name=defn.name,
        settings=settings,
        clock=clock,
        engine=engine,
        reader=reader,
        sessions=sessions,
        tables=defn.tables,
        uow=UnitOfWorkFactory(
            sessions,
            defn.tables,
            clock,
            source=f"/rhythm/{defn.name}",
            unit_of_work=defn.unit_of_work,
            readers=session_factory(reader),
        ),
        authenticator=Authenticator(
            settings.jwt_keys,
            jwks_url=settings.jwt_jwks_url,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
        ),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        connector: list[asyncio.Task[None]] = []

        async def start() -> None:
            if defn.on_start:
                runtime.provide(await defn.on_start(runtime))
            else:
                runtime.provide(None)  # type: ignore[arg-type]  # no on_start: no resources
            consumers = list(defn.consumers(runtime)) if settings.run_consumers else []
            security = client_security(settings)
            monitor = BrokerMonitor(defn.name, settings.kafka_bootstrap_servers, security)
            runtime.broker_monitor = monitor
            tasks.append(asyncio.create_task(monitor.run(stop), name="broker-monitor"))
            connector.append(
                asyncio.create_task(
                    _connect_kafka(runtime, defn, consumers, provider, security, stop, tasks),
                    name="kafka-connect",
                )
            )
            if settings.run_jobs:
                retention = Retention(
                    settings.outbox_keep_days,
                    settings.inbox_keep_days,
                    settings.idempotency_keep_days,
                    settings.audit_keep_days,
                )
                housekeeper = Housekeeper(runtime.uow, kit_rules(defn.tables, retention))
                housekeeping = JobSpec(
                    "housekeeping",
                    settings.housekeeping_interval_s,
                    housekeeper.run_once,
                    full_round=housekeeper.batch,
                )
                for job in [*defn.jobs(runtime), housekeeping]:
                    tasks.append(asyncio.create_task(run_periodically(job, stop), name=job.name))
            runtime.started.set()
            log.info(
                "service_started",
                extra={
                    "service": defn.name,
                    "consumers": len(consumers),
                    "schema": runtime.schema.describe() if runtime.schema else None,
                },
            )

        async def start_when_migrated() -> None:
            # The schema is someone else's to migrate (a Job): answer HTTP, not ready, until then.
            while runtime.schema is None or not runtime.schema.ready:
                await asyncio.sleep(SCHEMA_POLL_S)
                try:
                    runtime.schema = await schema_state(engine, defn.migrations)
                except Exception as exc:
                    log.warning("schema_check_failed", extra={"error": str(exc)})
            await start()

        if settings.migrate_on_start:
            runtime.schema = await upgrade_to_head(engine, defn.migrations)
        else:
            runtime.schema = await schema_state(engine, defn.migrations)
        if runtime.schema.ready:
            await start()
        else:
            log.warning(
                "schema_behind", extra={"service": defn.name, "schema": runtime.schema.describe()}
            )
            tasks.append(asyncio.create_task(start_when_migrated(), name="wait-for-migrations"))
        try:
            yield
        finally:
            # Reverse order: stop taking work, finish what is in flight, then close resources.
            for waiting in tasks:
                if waiting.get_name() == "wait-for-migrations":
                    waiting.cancel()
            for task in connector:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if runtime.broker is not None:
                for consumer in runtime.consumers:
                    await consumer.commits.close()
                await runtime.broker.stop()
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            if runtime.relay is not None:
                with contextlib.suppress(Exception):
                    await runtime.relay.publish_pending()
            if runtime.producer is not None:
                await runtime.producer.stop()
            if defn.on_stop:
                await defn.on_stop(runtime)
            if reader is not engine:
                await reader.dispose()
            await engine.dispose()
            log.info("service_stopped", extra={"service": defn.name})

    app = FastAPI(
        title=f"Rhythm {defn.name}",
        description=defn.description,
        version="1.0.0",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    app.add_middleware(NoReferrer)
    app.add_middleware(BodySizeLimit, max_bytes=settings.http_max_body_bytes)
    app.include_router(_operations_router(runtime))
    if defn.tables.audit is not None:
        app.include_router(audit_router())
    for router in defn.routers:
        app.include_router(router)
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls="healthz,readyz,metrics",
        server_request_hook=redact_server_span,
    )
    return app


async def _connect_kafka(
    runtime: Runtime[Any, Any, Any],
    defn: ServiceDefinition[Any, Any, Any],
    consumers: Sequence[ConsumerSpec],
    provider: Any,
    security: dict[str, Any],
    stop: asyncio.Event,
    tasks: list[asyncio.Task[None]],
) -> None:
    """Topics, the producer, the outbox relay and the consumers, retried in the background while
    the broker is away: the service starts without it, and its writes wait in the outbox."""
    settings = runtime.settings
    bootstrap = settings.kafka_bootstrap_servers
    delay = 0.5
    while True:
        try:
            await ensure_topics(
                bootstrap,
                _topic_specs(defn, consumers),
                prefix=settings.kafka_topic_prefix,
                partitions=settings.topic_partitions,
                replication=settings.topic_replication_factor,
                security=security,
            )
            if runtime.producer is None:
                producer = make_producer(bootstrap, security)
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                runtime.producer = producer
            if settings.run_relay and runtime.relay is None:
                runtime.relay = OutboxRelay(
                    runtime.engine,
                    defn.tables,
                    runtime.producer,
                    topic_prefix=settings.kafka_topic_prefix,
                    batch_size=settings.relay_batch_size,
                    poll_interval_s=settings.relay_poll_interval_s,
                    wakeup=runtime.uow.events_committed,
                    reader=runtime.reader,
                )
                tasks.append(asyncio.create_task(runtime.relay.run(stop), name="outbox-relay"))
            if consumers and runtime.broker is None:
                broker = _make_broker(runtime, consumers, provider)
                try:
                    await broker.start()
                except BaseException:
                    runtime.consumers.clear()
                    await broker.stop()
                    raise
                runtime.broker = broker
        except Exception as exc:
            runtime.kafka_error = await why_unreachable(bootstrap, security, exc)
            log.warning(
                "kafka_unavailable",
                extra={"bootstrap": bootstrap, "error": runtime.kafka_error, "retry_in_s": delay},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 15.0)
            continue
        groups = {c.group: list(c.topics) for c in consumers}
        if groups:
            monitor = LagMonitor(
                bootstrap,
                groups,
                prefix=settings.kafka_topic_prefix,
                interval_s=settings.consumer_lag_interval_s,
                security=security,
            )
            tasks.append(asyncio.create_task(monitor.run(stop), name="consumer-lag"))
        runtime.kafka_error = None
        runtime.kafka_connected.set()
        log.info("kafka_connected", extra={"bootstrap": bootstrap, "consumers": len(consumers)})
        return


def _sanitize(record: ConsumerRecord[bytes, bytes]) -> ConsumerRecord[bytes, bytes]:
    headers = [
        (k, v.decode(errors="replace").encode() if isinstance(v, bytes) else b"")
        for k, v in (record.headers or ())
    ]
    return dataclasses.replace(record, headers=headers)


async def _batch_parser(msg: Any, original: Callable[[Any], Any]) -> Any:
    """The batch as FastStream's message, with the framework parsing only its first record.

    The framework's batch parser decodes every record's headers into a dict, and its tracing
    middleware then reads baggage out of each: work (4-17 % of a batch's CPU) and memory (a
    dict of strings per record, while the batch is applied) that nothing here uses, since the
    consumer decodes the records itself (rhythm_shared.contracts.envelope) and keeps each
    record's own trace context (EventConsumer). The first record's headers stand for the batch
    in the framework's middleware; its body is the batch's bodies (their size is a metric), and
    the handler gets the records as they arrived. A first record with a broken or null header
    must reach our dead-letter logic rather than fail inside the framework: the framework then
    parses a cleaned copy of it."""
    records = msg if isinstance(msg, tuple) else (msg,)
    if not records:
        return await original(msg)
    try:
        parsed = await original(records[:1])
    except (UnicodeDecodeError, AttributeError):
        parsed = await original((_sanitize(records[0]),))
    first, last = records[0], records[-1]
    parsed.body = [r.value or b"" for r in records]
    parsed.raw_message = msg
    parsed.message_id = f"{first.offset}-{last.offset}-{first.timestamp}"
    return parsed


async def _raw_decoder(msg: Any) -> Any:
    # Bodies are decoded by the contract (rhythm_shared.contracts.envelope), not the framework.
    return msg.raw_message


def _make_broker(
    runtime: Runtime[Any, Any, Any], consumers: Sequence[ConsumerSpec], provider: Any
) -> KafkaBroker:
    settings = runtime.settings
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        security=broker_security(settings),
        middlewares=[
            KafkaTelemetryMiddleware(tracer_provider=provider),
            KafkaPrometheusMiddleware(registry=REGISTRY, app_name=f"rhythm-{runtime.name}"),
        ],
        logger=logging.getLogger(f"rhythm.{runtime.name}.broker"),
    )
    assert runtime.producer is not None
    for spec in consumers:
        consumer = EventConsumer(
            spec,
            runtime.uow,
            runtime.producer,
            max_attempts=settings.consumer_max_attempts,
            topic_prefix=settings.kafka_topic_prefix,
            chunk_size=settings.consumer_chunk_size,
            max_record_bytes=settings.consumer_max_record_bytes,
        )
        runtime.consumers.append(consumer)
        listener = _ResumeFromStoredPositions(consumer) if spec.batch_handler else None
        subscriber = broker.subscriber(
            *(settings.topic(t) for t in spec.topics),
            group_id=f"{settings.kafka_topic_prefix}{spec.group}",
            batch=True,
            max_records=settings.consumer_batch_size,
            batch_timeout_ms=100,
            auto_offset_reset="earliest",
            # Offsets are committed after the effect's transaction, never before (DESIGN §3).
            ack_policy=AckPolicy.MANUAL,
            session_timeout_ms=settings.consumer_session_timeout_ms,
            heartbeat_interval_ms=settings.consumer_heartbeat_interval_ms,
            parser=_batch_parser,
            decoder=_raw_decoder,
            listener=listener,
        )
        if listener is not None:
            listener.subscriber = subscriber
        subscriber(_batch_handler(consumer, settings.consumer_batch_size))
    return broker


class _ResumeFromStoredPositions(ConsumerRebalanceListener):  # type: ignore[misc]
    """A positions-mode consumer resumes where its database says, on every assignment."""

    def __init__(self, consumer: EventConsumer) -> None:
        self.consumer = consumer
        self.subscriber: Any = None

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.consumer.resume_from_stored(self.subscriber.consumer, assigned)


def _batch_handler(consumer: EventConsumer, batch_size: int) -> Callable[..., Any]:
    async def handle(body: Any, message: KafkaMessage) -> None:
        records = message.raw_message
        batch = records if isinstance(records, tuple) else (records,)
        try:
            await consumer.handle_batch(batch)
        except Exception as exc:
            # Rewind to the batch start and try again: at once after a lost race (with a little
            # jitter, so two replicas do not collide again), shortly after an outage.
            await message.nack()
            if lost_a_conflict(exc):
                log.info(
                    "consumer_batch_conflict",
                    extra={"group": consumer.group, "error": type(exc).__name__},
                )
                await asyncio.sleep(random.uniform(0, 0.05))
            else:
                log.exception("consumer_batch_failed", extra={"group": consumer.group})
                await asyncio.sleep(1.0)
            return
        # A full batch means more are waiting: its offsets follow in the background while the
        # next batch is fetched and applied.
        await consumer.commits.applied(message.consumer, batch, behind=len(batch) >= batch_size)

    return handle


class ClockChange(BaseModel):
    now: AwareDatetime


def _operations_router(runtime: Runtime[Any, Any, Any]) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process answers; the broker's last known state")
    async def healthz() -> dict[str, Any]:
        monitor = runtime.broker_monitor
        broker = monitor.state() if monitor else {"status": "unknown", "checked_at": None}
        return {
            "status": "ok",
            "broker": broker,
            "kafka_connected": runtime.kafka_connected.is_set(),
        }

    @router.get(
        "/readyz", summary="Readiness: the service's own database answers, at a usable schema"
    )
    async def readyz() -> Response:
        # Not the broker: writes commit to the outbox while Kafka is away and are published when
        # it returns, so a broker outage must not take every replica out of its Service.
        checks: dict[str, bool] = {}
        try:
            async with runtime.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = True
        except Exception:
            checks["database"] = False
        # With MIGRATE_ON_START=false the service waits for `rhythm migrate` before it starts.
        checks["schema"] = runtime.started.is_set()
        ok = all(checks.values())
        body: dict[str, Any] = {"ready": ok, "checks": checks}
        if runtime.schema is not None:
            body["schema"] = runtime.schema.describe()
        return JSONResponse(body, status_code=200 if ok else 503)

    @router.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        # A route, not a mounted app: a mount answers /metrics with a redirect to /metrics/,
        # which scrapers behind a path prefix follow to the wrong place. The format follows the
        # Accept header (Prometheus text or OpenMetrics), as prometheus_client's own app does.
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(REGISTRY), media_type=content_type)

    @router.get("/asyncapi.json", summary="The AsyncAPI 3 document of Rhythm's events")
    async def asyncapi() -> dict[str, Any]:
        from rhythm_shared.contracts.export import asyncapi_document

        document: dict[str, Any] = asyncapi_document()
        return document

    if runtime.settings.environment == "development":

        @router.get("/v1/admin/clock", summary="The service's clock (development only)")
        async def get_clock() -> dict[str, Any]:
            return {"now": runtime.clock.now()}

        @router.put("/v1/admin/clock", summary="Move the service's clock (development only)")
        async def set_clock(change: ClockChange, principal: PrincipalDep) -> dict[str, Any]:
            if not principal.has(Role.HR_ADMIN):
                raise Forbidden("only hr_admin may move the clock")
            if not isinstance(runtime.clock, SystemClock | ManualClock):
                raise Forbidden("this clock cannot be moved")
            runtime.clock.travel_to(change.now)
            return {"now": runtime.clock.now()}

    return router


class KafkaUnavailable(RuntimeError):
    """The broker did not answer (or refused our credentials) in time."""


@contextlib.asynccontextmanager
async def running(
    app: FastAPI, *, kafka_timeout_s: float = 60.0
) -> AsyncIterator[Runtime[Any, Any, Any]]:
    """Run an app's lifespan (start-up and shutdown) around a block, once Kafka is connected:
    for tests and tools. Raises :class:`KafkaUnavailable` after ``kafka_timeout_s``."""
    async with app.router.lifespan_context(app):
        runtime: Runtime[Any, Any, Any] = app.state.runtime
        # Tools and tests want Kafka too; a served process answers HTTP without waiting for it.
        try:
            await asyncio.wait_for(runtime.kafka_connected.wait(), kafka_timeout_s)
        except TimeoutError:
            raise KafkaUnavailable(
                f"not connected to Kafka within {kafka_timeout_s:.0f}s: {runtime.kafka_error}"
            ) from None
        yield runtime
