"""Kafka plumbing shared by every service: client security, the producer, topic creation, the
broker's health, dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAlreadyExistsError,
)
from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from prometheus_client import Gauge

from rhythm_shared.contracts.topics import DLQ_PREFIX, TopicSpec, dlq_topic
from rhythm_shared.kit.settings import KafkaSecuritySettings

log = logging.getLogger("rhythm.kafka")

DLQ_REASON = "rhythm_dlq_reason"

BROKER_UP = Gauge(
    "rhythm_broker_up",
    "Whether the Kafka cluster answered the last probe (1) or not (0)",
    ["service"],
)


def client_security(settings: KafkaSecuritySettings | None = None) -> dict[str, Any]:
    """The keyword arguments every aiokafka client (producer, consumer, admin) is built with:
    ``KAFKA_SECURITY_PROTOCOL``, SASL credentials and TLS files; ``None`` reads the environment
    (the CLI and tools, which have no service settings)."""
    s = settings if settings is not None else KafkaSecuritySettings()
    kwargs: dict[str, Any] = {"security_protocol": s.kafka_security_protocol}
    if s.kafka_security_protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = create_ssl_context(
            cafile=s.kafka_ssl_cafile, certfile=s.kafka_ssl_certfile, keyfile=s.kafka_ssl_keyfile
        )
    if s.kafka_security_protocol.startswith("SASL_"):
        assert s.kafka_sasl_password is not None  # the settings' validator insists on both
        kwargs |= {
            "sasl_mechanism": s.kafka_sasl_mechanism,
            "sasl_plain_username": s.kafka_sasl_username,
            "sasl_plain_password": s.kafka_sasl_password.get_secret_value(),
        }
    return kwargs


def broker_security(settings: KafkaSecuritySettings) -> BaseSecurity | None:
    """The same security for FastStream's ``KafkaBroker`` (it takes a security object)."""
    kwargs = client_security(settings)
    protocol = kwargs["security_protocol"]
    ssl_context = kwargs.get("ssl_context")
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=ssl_context, use_ssl=True)
    kinds: dict[str, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
        "PLAIN": SASLPlaintext,
        "SCRAM-SHA-256": SASLScram256,
        "SCRAM-SHA-512": SASLScram512,
    }
    return kinds[kwargs["sasl_mechanism"]](
        kwargs["sasl_plain_username"],
        kwargs["sasl_plain_password"],
        ssl_context=ssl_context,
        use_ssl=protocol == "SASL_SSL",
    )


def make_producer(bootstrap: str, security: Mapping[str, Any] | None = None) -> AIOKafkaProducer:
    """``security``: :func:`client_security`'s kwargs (default: from the environment)."""
    # Idempotent producer with acks=all: a retried send cannot duplicate or reorder a partition.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        **(client_security() if security is None else security),
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
    )


def topic_configs(spec: TopicSpec) -> dict[str, str]:
    """A topic's configuration: its retention, and compaction for the keys topic, whose old
    records must leave the log (an erased person's key among them) soon after they are replaced."""
    if spec.compacted:
        return {
            "retention.ms": str(spec.retention_ms),
            "cleanup.policy": "compact",
            "min.cleanable.dirty.ratio": "0.01",
            "segment.ms": str(10 * 60 * 1000),
            "delete.retention.ms": str(60 * 60 * 1000),
        }
    return {"retention.ms": str(spec.retention_ms)}


async def ensure_topics(
    bootstrap: str,
    specs: Iterable[TopicSpec],
    *,
    prefix: str = "",
    partitions: int | None = None,
    replication: int = 1,
    security: Mapping[str, Any] | None = None,
) -> list[str]:
    """Create the topics that do not exist yet (never left to broker auto-creation)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=30_000,
        **(client_security() if security is None else security),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = {f"{prefix}{s.name}": s for s in specs}
        missing = [
            NewTopic(
                name=name,
                # The override applies to the catalog topics, never to the small DLQ topics.
                num_partitions=(
                    partitions
                    if partitions and not spec.name.startswith(DLQ_PREFIX)
                    else spec.partitions
                ),
                replication_factor=replication,
                topic_configs=topic_configs(spec),
            )
            for name, spec in wanted.items()
            if name not in existing
        ]
        if missing:
            # Another replica may create them first.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            # Creation is asynchronous in the cluster: wait until the metadata shows them.
            for _ in range(100):
                if {t.name for t in missing} <= set(await admin.list_topics()):
                    break
                await asyncio.sleep(0.1)
        return [t.name for t in missing]
    finally:
        await admin.close()


async def broker_reachable(
    bootstrap: str, timeout_s: float = 3.0, security: Mapping[str, Any] | None = None
) -> bool:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(timeout_s * 1000),
        **(client_security() if security is None else security),
    )
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.list_topics(), timeout_s)
        return True
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await admin.close()


async def why_unreachable(bootstrap: str, security: Mapping[str, Any], error: BaseException) -> str:
    """A sentence for a person on why a client could not bootstrap: aiokafka only says "Unable to
    bootstrap" and logs the cause, so connect once more to the first server to learn it."""
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    try:
        conn = await asyncio.wait_for(
            create_conn(host, int(port), request_timeout_ms=5_000, **security), 10
        )
    except (SaslAuthenticationFailed, AuthenticationFailedError) as exc:
        user = security.get("sasl_plain_username")
        mechanism = security.get("sasl_mechanism")
        return (
            f"Kafka at {bootstrap} refused the credentials of user {user!r} ({mechanism}); "
            f"check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD: {exc}"
        )
    except (KafkaError, OSError, TimeoutError, ValueError) as exc:
        return f"Kafka at {bootstrap} does not answer: {type(exc).__name__}: {exc}"
    conn.close()
    return f"Kafka at {bootstrap}: {type(error).__name__}: {error}"


async def send_to_dlq(
    producer: AIOKafkaProducer,
    record: ConsumerRecord[bytes, bytes],
    *,
    group: str,
    reason: str,
    prefix: str = "",
) -> None:
    """Park ``record`` on ``rhythm.dlq.<group>`` unchanged, with why and where it came from."""
    headers = [(k, v) for k, v in (record.headers or ()) if not k.startswith("rhythm_dlq_")]
    headers += [
        (DLQ_REASON, reason[:2000].encode()),
        ("rhythm_dlq_group", group.encode()),
        ("rhythm_dlq_topic", record.topic.encode()),
        ("rhythm_dlq_partition", str(record.partition).encode()),
        ("rhythm_dlq_offset", str(record.offset).encode()),
        ("rhythm_dlq_failed_at", datetime.now(UTC).isoformat().encode()),
    ]
    await producer.send_and_wait(
        f"{prefix}{dlq_topic(group)}", value=record.value, key=record.key, headers=headers
    )
    log.warning(
        "event_dead_lettered",
        extra={
            "group": group,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "reason": reason,
        },
    )


class BrokerMonitor:
    """Probes the cluster every few seconds for the ``rhythm_broker_up`` metric and ``/healthz``.

    Only informative: readiness depends on the service's own database, because writes commit to
    the outbox while Kafka is away and are published when it returns."""

    def __init__(
        self,
        service: str,
        bootstrap: str,
        security: Mapping[str, Any] | None = None,
        *,
        interval_s: float = 5.0,
    ) -> None:
        self.service = service
        self.bootstrap = bootstrap
        self.security = security
        self.interval_s = interval_s
        self.up: bool | None = None  # None: not probed yet
        self.checked_at: datetime | None = None

    async def probe(self) -> bool:
        up = await broker_reachable(self.bootstrap, security=self.security)
        if up != self.up:
            log.log(
                logging.INFO if up else logging.WARNING,
                "broker_up" if up else "broker_down",
                extra={"bootstrap": self.bootstrap},
            )
        self.up, self.checked_at = up, datetime.now(UTC)
        BROKER_UP.labels(self.service).set(1 if up else 0)
        return up

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):
                await self.probe()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)

    def state(self) -> dict[str, Any]:
        status = "unknown" if self.up is None else ("up" if self.up else "down")
        return {
            "status": status,
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
        }
