"""Kafka authentication: a service on a SASL_PLAINTEXT SCRAM-SHA-512 listener (``rhythm infra
up --sasl``) publishes and consumes; a client with a wrong password is refused, saying so."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaConnectionError

from rhythm_cli import infra
from rhythm_shared.contracts import topics
from rhythm_shared.kit.app import KafkaUnavailable, running
from rhythm_shared.kit.kafka import client_security, make_producer, why_unreachable
from rhythm_shared.kit.settings import KafkaSecuritySettings
from rhythm_shared.testing import wait_for
from tests.kit import sample
from tests.kit.own_broker import OwnBroker, own_broker
from tests.kit.test_kit import auth, settings

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def scram_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnBroker]:
    directory = tmp_path_factory.mktemp("sasl")
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        own_broker(directory, monkeypatch, sasl=True) as broker,
    ):
        yield broker


def _service(broker: OwnBroker, directory: Path, password: str) -> sample.Settings:
    base = settings(
        f"sqlite+aiosqlite:///{directory / 'sample.db'}",
        f"t{uuid.uuid4().hex[:8]}.",
        broker.bootstrap,
    )
    return base.model_copy(
        update=KafkaSecuritySettings(
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username=infra.KAFKA_SASL_USER,
            kafka_sasl_password=password,
        ).model_dump()
    )


async def test_a_service_publishes_and_consumes_through_a_scram_listener(
    scram_broker: OwnBroker, tmp_path: Path, tenant: str
) -> None:
    config = _service(scram_broker, tmp_path, infra.KAFKA_SASL_PASSWORD)
    app = sample.build(config)
    async with running(app) as runtime:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sample"
        ) as client:
            response = await client.post(
                "/v1/greetings",
                json={"greeting_id": "g-1", "receiver_id": "e-2"},
                headers=auth(tenant),
            )
            assert response.status_code == 201
        # Published by the relay and consumed by the service's own consumer group, both over SASL.
        assert await wait_for(lambda: sample.effect_counts(runtime), timeout_s=60) == {"g-1": 1}
        assert (await client_get_health(app))["broker"]["status"] == "up"

    consumer = AIOKafkaConsumer(
        config.topic(topics.CHECKINS),
        bootstrap_servers=scram_broker.bootstrap,
        auto_offset_reset="earliest",
        **client_security(config),
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000)
        assert sum(len(records) for records in batch.values()) == 1
    finally:
        await consumer.stop()


async def client_get_health(app: object) -> dict[str, dict[str, str]]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://sample",
    ) as client:
        body: dict[str, dict[str, str]] = (await client.get("/healthz")).json()
        return body


async def test_a_client_with_a_wrong_password_is_refused_with_a_clear_error(
    scram_broker: OwnBroker, tmp_path: Path
) -> None:
    config = _service(scram_broker, tmp_path, "not-the-password")
    security = client_security(config)
    producer = make_producer(scram_broker.bootstrap, security)
    with pytest.raises(KafkaConnectionError) as refused:
        await producer.start()
    await producer.stop()
    assert "refused the credentials of user 'rhythm' (SCRAM-SHA-512)" in await why_unreachable(
        scram_broker.bootstrap, security, refused.value
    )
    # A service with that password starts (its API answers) but says why it has no broker.
    with pytest.raises(KafkaUnavailable, match="refused the credentials of user 'rhythm'"):
        async with running(sample.build(config), kafka_timeout_s=10):
            pass


async def test_a_client_without_credentials_is_refused(scram_broker: OwnBroker) -> None:
    producer = make_producer(scram_broker.bootstrap, {"security_protocol": "PLAINTEXT"})
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()


def test_sasl_on_a_storage_formatted_without_scram_users_says_how_to_start_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "meta.properties").write_text("cluster.id=old\n")
    monkeypatch.setattr(infra, "KAFKA_DIR", tmp_path)
    monkeypatch.setattr(infra, "KAFKA_DATA", tmp_path / "data")
    with pytest.raises(infra.InfraError, match="formatted without SCRAM users"):
        infra._format_storage("java", sasl=True)
    infra._format_storage("java", sasl=False)  # the plain listener still starts on it


def test_infra_env_gives_tools_the_sasl_client_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(infra, "RUN_DIR", tmp_path)
    monkeypatch.setattr(infra, "INFRA_ENV", tmp_path / "infra.env")
    lines = infra.write_infra_env("127.0.0.1:9092", postgres=False, sasl=True).read_text()
    env = dict(line.split("=", 1) for line in lines.splitlines())
    settings = KafkaSecuritySettings.model_validate({k.lower(): v for k, v in env.items()})
    assert client_security(settings) == infra.kafka_sasl_security()
