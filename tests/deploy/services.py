"""What the deploy tests check the manifests against: the code's services, settings and topics."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping

from rhythm_shared.contracts import topics
from rhythm_shared.contracts.topics import TOPICS, TopicSpec, dlq_spec
from rhythm_shared.kit.settings import ServiceSettings

#: Every Rhythm service and the HTTP port it listens on by default.
SERVICES: dict[str, int] = {
    "goals": 8001,
    "checkins": 8002,
    "notifications": 8003,
    "reporting": 8004,
    "people": 8005,
}
#: The services that consume Kafka; their consumer group is the service name.
CONSUMER_GROUPS = ("goals", "checkins", "notifications", "reporting")
#: The topics each service publishes to (the catalog's publishers); what each reads is its consumer
#: group's subscription (the KEDA triggers, checked against the code's groups).
PUBLISHES: dict[str, set[str]] = {
    "goals": {topics.GOALS, topics.PRIVACY},
    "checkins": {topics.CHECKINS, topics.CADENCE, topics.INTERNAL_PULSE, topics.PRIVACY},
    "notifications": {topics.NOTIFICATIONS, topics.PRIVACY},
    "reporting": {topics.PRIVACY},
    "people": {topics.PEOPLE, topics.KEYS, topics.PRIVACY},
}
#: Consumer groups KEDA does not scale (the service scales on CPU): what each reads. People
#: reads only the services' reports of their part of an erasure, a trickle.
UNSCALED_CONSUMERS: dict[str, set[str]] = {"people": {topics.PRIVACY}}


def settings_class(service: str) -> type[ServiceSettings]:
    """The service's own ``Settings`` when its package is installed, else the kit's."""
    if importlib.util.find_spec(f"rhythm_{service}") is None:
        return ServiceSettings
    for module in (f"rhythm_{service}.settings", f"rhythm_{service}.main"):
        if importlib.util.find_spec(module) is None:
            continue
        cls = getattr(importlib.import_module(module), "Settings", None)
        if isinstance(cls, type) and issubclass(cls, ServiceSettings):
            return cls
    return ServiceSettings


def env_names(service: str) -> set[str]:
    """The environment variables the service reads (unprefixed, upper-cased field names)."""
    fields = settings_class(service).model_fields
    return {
        (field.validation_alias if isinstance(field.validation_alias, str) else name).upper()
        for name, field in fields.items()
    }


def default_port(service: str) -> int | None:
    """The service's default HTTP port from its Settings; None while the package is missing."""
    cls = settings_class(service)
    if cls is ServiceSettings:
        return None
    port = cls.model_fields["http_port"].default
    assert isinstance(port, int)
    return port


def load_settings(service: str, env: Mapping[str, object]) -> ServiceSettings:
    """The service's settings from these environment variables only, validated as at start-up."""
    values = {key.lower(): value for key, value in env.items()}
    return settings_class(service).model_validate(values)


#: The only writable path in the containers (a tmpfs / an emptyDir).
WRITABLE_TMP = "/tmp"  # noqa: S108


def expected_topics() -> dict[str, TopicSpec]:
    """Every topic of the topic map plus every consumer group's dead-letter topic."""
    specs = dict(TOPICS)
    for group in (*CONSUMER_GROUPS, *UNSCALED_CONSUMERS):
        spec = dlq_spec(group)
        specs[spec.name] = spec
    return specs
