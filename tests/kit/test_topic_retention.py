"""``TOPIC_RETENTION_DAYS``: how long each topic a service creates keeps its records.

The topic map's retention is the default (the four history topics, people, goals, check-ins and
cadence, forever); a deployment names the topics it wants shorter, and a service creates them
so on a real broker. A name that is not a Rhythm topic, the compacted keys topic, or a retention
that is not a positive number of days (or -1, forever) is refused with the setting's name.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from pydantic import ValidationError

from rhythm_shared.contracts import topics
from rhythm_shared.kit.app import running
from rhythm_shared.kit.settings import ServiceSettings, explain
from tests.kit import sample
from tests.kit.test_kit import settings as sample_settings

DAY_MS = 24 * 3600 * 1000


def test_the_history_topics_keep_records_forever_unless_told_otherwise() -> None:
    defaults = ServiceSettings(environment="development")
    forever = {name for name, spec in topics.TOPICS.items() if spec.retention_ms == -1}
    assert {topics.PEOPLE, topics.GOALS, topics.CHECKINS, topics.CADENCE} <= forever
    assert all(defaults.topic_spec(spec) == spec for spec in topics.TOPICS.values())


def test_named_topics_get_the_retention_given_in_days() -> None:
    chosen = ServiceSettings(
        environment="development",
        topic_retention_days={topics.GOALS: 730, topics.NOTIFICATIONS: -1, "rhythm.dlq.goals": 14},
    )
    assert chosen.topic_spec(topics.TOPICS[topics.GOALS]).retention_ms == 730 * DAY_MS
    assert chosen.topic_spec(topics.TOPICS[topics.NOTIFICATIONS]).retention_ms == -1
    assert chosen.topic_spec(topics.dlq_spec("goals")).retention_ms == 14 * DAY_MS
    assert chosen.topic_spec(topics.TOPICS[topics.PEOPLE]) == topics.TOPICS[topics.PEOPLE]


def test_the_setting_is_read_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOPIC_RETENTION_DAYS", json.dumps({topics.CHECKINS: 1095}))
    chosen = ServiceSettings(environment="development")
    assert chosen.topic_spec(topics.TOPICS[topics.CHECKINS]).retention_ms == 1095 * DAY_MS


@pytest.mark.parametrize(
    ("retention", "problem"),
    [
        ({"rhythm.gaols.v1": 30}, "'rhythm.gaols.v1' is not a Rhythm topic"),
        ({topics.KEYS: 30}, "'rhythm.keys.v1' is compacted"),
        ({topics.GOALS: 0}, "give a positive number, or -1 (forever)"),
        ({topics.GOALS: -7}, "give a positive number, or -1 (forever)"),
    ],
)
def test_a_retention_that_cannot_be_meant_is_refused_by_name(
    retention: dict[str, float], problem: str
) -> None:
    with pytest.raises(ValidationError) as error:
        ServiceSettings(environment="development", topic_retention_days=retention)
    [line] = explain(error.value)
    assert line.startswith("TOPIC_RETENTION_DAYS: ")
    assert problem in line


@pytest.mark.kafka
async def test_a_service_creates_its_topics_with_the_chosen_retention(
    database_url: str, topic_prefix: str, kafka_bootstrap: str
) -> None:
    base = sample_settings(database_url, topic_prefix, kafka_bootstrap)
    chosen = base.model_copy(
        update={"topic_retention_days": {topics.GOALS: 400, "rhythm.dlq.sample": 3}}
    )
    async with running(sample.build(chosen)) as runtime:
        await asyncio.wait_for(runtime.kafka_connected.wait(), 60)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        names = [
            f"{topic_prefix}{name}"
            for name in (topics.GOALS, topics.PEOPLE, topics.NOTIFICATIONS, "rhythm.dlq.sample")
        ]
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n, {"retention.ms": None}) for n in names]
        )
    finally:
        await admin.close()
    retention = {
        name.removeprefix(topic_prefix): int(entry[1])
        for response in responses
        for (_code, _msg, _type, name, entries) in response.resources
        for entry in entries
        if entry[0] == "retention.ms"
    }
    assert retention == {
        topics.GOALS: 400 * DAY_MS,
        topics.PEOPLE: -1,
        topics.NOTIFICATIONS: 13 * 7 * DAY_MS,
        "rhythm.dlq.sample": 3 * DAY_MS,
    }
