"""Publish the contract: one JSON Schema per event type and an AsyncAPI 3.0 document.

Everything here is generated from the registered models (``EVENT_TYPES``) and the topic map, so
the published contract cannot drift from the code. Services can serve :func:`asyncapi_document`
at runtime; ``rhythm contracts export`` writes the files.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema

from rhythm_shared.contracts import v1
from rhythm_shared.contracts.base import EVENT_TYPES, Event, Identifier
from rhythm_shared.contracts.envelope import CONTENT_TYPE, SPEC_VERSION, to_record
from rhythm_shared.contracts.topics import TOPICS

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: Base of each schema's ``$id``; a URN, so the id does not pretend to be a fetchable URL.
SCHEMA_ID_BASE = "urn:rhythm:schema:"
ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
#: Version of the published contract document (the catalog), not of any service.
CONTRACT_VERSION = "1.0.0"

_HEADERS_SCHEMA = "CloudEventHeaders"
#: The Identifier pattern without anchors, taken from the type so the two cannot drift apart.
_ID_PATTERN = (
    str(TypeAdapter(Identifier).json_schema()["pattern"]).removeprefix("^").removesuffix("$")
)


def catalog_events() -> list[type[Event]]:
    """Every registered event type, ordered by topic (as in ``TOPICS``), then by definition."""
    order = {topic: i for i, topic in enumerate(TOPICS)}
    for event in EVENT_TYPES.values():
        if event.topic not in order:
            raise ValueError(f"{event.type} is on {event.topic!r}, which is not in TOPICS")
    return sorted(EVENT_TYPES.values(), key=lambda event: order[event.topic])


def schema_id(event_type: str) -> str:
    """The ``$id`` of a type's JSON Schema: ``urn:rhythm:schema:rhythm.goal.created.v1``."""
    return f"{SCHEMA_ID_BASE}{event_type}"


def schema_filename(event_type: str) -> str:
    return f"{event_type}.schema.json"


def event_schema(model: type[Event]) -> dict[str, Any]:
    """A self-contained JSON Schema (draft 2020-12) of one event type's body."""
    body = model.model_json_schema()
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": schema_id(model.type),
        "title": model.__name__,
        # Non-validating annotations (``x-`` keywords are ignored by validators) for integrators.
        "x-cloudevents-type": model.type,
        "x-kafka-topic": model.topic,
        "x-kafka-key": f"<tenant_id>/<{model.entity_field}>",
        **{k: v for k, v in body.items() if k != "title"},
    }


def _channel_id(topic: str) -> str:
    # ``rhythm.goals.v1`` -> ``goals``, ``rhythm.internal.pulse.v1`` -> ``internalPulse``:
    # channel ids are map keys and references, keep them plain.
    first, *rest = topic.split(".")[1:-1]
    return first + "".join(part.capitalize() for part in rest)


def _words(name: str) -> str:
    # ``GoalProgressRecorded`` -> ``Goal progress recorded``.
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).capitalize()


def _summary(model: type[Event]) -> str:
    return (model.__doc__ or model.__name__).strip().splitlines()[0]


def _headers_schema() -> dict[str, Any]:
    """The CloudEvents 1.0 Kafka binary-mode headers every record carries."""
    return {
        "type": "object",
        "title": "CloudEvents binary-mode headers",
        "description": "CloudEvents 1.0 attributes as Kafka headers (binary content mode); "
        "W3C trace context rides along.",
        "properties": {
            "ce_specversion": {"const": SPEC_VERSION, "description": "CloudEvents version."},
            "ce_id": {
                "type": "string",
                "minLength": 1,
                "description": "Unique event id; consumers de-duplicate on it (at-least-once).",
            },
            "ce_source": {
                "type": "string",
                "pattern": r"^/rhythm/[a-z_]+$",
                "description": "The publishing service: /rhythm/<service>.",
            },
            "ce_type": {
                "type": "string",
                "pattern": r"^rhythm\.[a-z_]+\.[a-z_]+\.v[0-9]+$",
                "description": "rhythm.<thing>.<past-tense>.v<N>; selects the body schema.",
            },
            "ce_time": {
                "type": "string",
                "format": "date-time",
                "description": "When it happened (RFC 3339); the same instant as occurred_at.",
            },
            "ce_subject": {
                "type": "string",
                "pattern": rf"^[a-z_]+/{_ID_PATTERN}$",
                "description": "The entity the event is about: <entity>/<id>, e.g. employee/e-42.",
            },
            "ce_tenantid": {
                "type": "string",
                "pattern": rf"^{_ID_PATTERN}$",
                "description": "Tenant extension attribute; equals the body's tenant_id.",
            },
            "content-type": {"const": CONTENT_TYPE, "description": "The body is JSON."},
            "traceparent": {
                "type": "string",
                "pattern": r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                "description": "W3C trace context of the change that caused the event.",
            },
            "tracestate": {"type": "string", "description": "W3C trace state, if any."},
        },
        "required": [
            "ce_specversion",
            "ce_id",
            "ce_source",
            "ce_type",
            "ce_time",
            "ce_subject",
            "ce_tenantid",
            "content-type",
        ],
    }


def _message(model: type[Event], publisher: str | None) -> dict[str, Any]:
    name = model.__name__
    examples = []
    for i, example in enumerate(model.model_json_schema().get("examples", [])):
        record = to_record(
            model.model_validate(example),
            source=v1.source_of(publisher or "people"),
            # Deterministic ids keep the generated files stable between runs.
            event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{schema_id(model.type)}#{i}")),
        )
        examples.append(
            {
                "name": f"{name}Example{i + 1}" if i else f"{name}Example",
                "headers": {k: v.decode() for k, v in record.headers},
                "payload": example,
            }
        )
    return {
        "name": name,
        "title": _words(name),
        "summary": _summary(model),
        "description": (model.__doc__ or "").strip()
        + f"\n\nCloudEvents type `{model.type}`; record key `<tenant_id>/<{model.entity_field}>`.",
        "contentType": CONTENT_TYPE,
        "headers": {
            "type": "object",
            "allOf": [
                {"$ref": f"#/components/schemas/{_HEADERS_SCHEMA}"},
                {
                    "properties": {
                        "ce_type": {"const": model.type},
                        "ce_subject": {"pattern": rf"^{model.entity}/{_ID_PATTERN}$"},
                    }
                },
            ],
        },
        "payload": {"$ref": f"#/components/schemas/{name}"},
        "correlationId": {
            "description": "W3C trace context linking the event to the change that caused it.",
            "location": "$message.header#/traceparent",
        },
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "pattern": rf"^{_ID_PATTERN}/{_ID_PATTERN}$",
                    "description": f"<tenant_id>/<{model.entity_field}>: the {model.entity}'s "
                    "events share a partition and stay in order.",
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "examples": examples,
        "x-cloudevents-type": model.type,
    }


@cache
def _build_asyncapi() -> dict[str, Any]:
    events = catalog_events()
    # One shared definition per nested model/enum, referenced from components.
    _, defs = models_json_schema(
        [(model, "validation") for model in events],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = {_HEADERS_SCHEMA: _headers_schema(), **defs.get("$defs", {})}

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic, spec in TOPICS.items():
        on_topic = [model for model in events if model.topic == topic]
        if not on_topic:
            continue
        channel = _channel_id(topic)
        publisher = v1.PUBLISHERS.get(topic)
        consumers = v1.CONSUMERS.get(topic, ())
        for model in on_topic:
            messages[model.__name__] = _message(model, publisher)
        who = f" Published by {publisher}" if publisher else ""
        if topic in v1.SHARED_TOPICS:
            who = " Published by every service (each its own part)"
        who += f"; consumed by {', '.join(consumers)}." if consumers else "."
        topic_config: dict[str, Any] = {"retention.ms": spec.retention_ms}
        channels[channel] = {
            "address": topic,
            "title": topic,
            "description": spec.description + who,
            "messages": {
                m.__name__: {"$ref": f"#/components/messages/{m.__name__}"} for m in on_topic
            },
            "bindings": {
                "kafka": {
                    "topic": topic,
                    "partitions": spec.partitions,
                    "topicConfiguration": topic_config,
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }
        # Operations must reference the channel's own messages (AsyncAPI 3.0).
        refs = [{"$ref": f"#/channels/{channel}/messages/{m.__name__}"} for m in on_topic]
        if publisher or topic in v1.SHARED_TOPICS:
            operations[f"send{channel[:1].upper()}{channel[1:]}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{channel}"},
                "title": f"Publish on {topic}",
                "summary": f"{publisher or 'Every service'} publishes these events on {topic}.",
                "messages": refs,
            }
        if consumers:
            operations[f"receive{channel[:1].upper()}{channel[1:]}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{channel}"},
                "title": f"Consume {topic}",
                "summary": f"Consumed by {', '.join(consumers)}; each group has a dead-letter "
                "topic rhythm.dlq.<group>.",
                "messages": refs,
            }

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Rhythm events",
            "version": CONTRACT_VERSION,
            "description": (
                "Rhythm's integration events on Kafka. Envelope: CloudEvents 1.0, Kafka binding, "
                "binary content mode (ce_* headers, JSON body). Record key: <tenant>/<entity id> "
                "of the aggregate whose order matters. Delivery is at least once: de-duplicate on "
                "ce_id. Bodies carry ids, kinds, times, scores and counts, never the text of "
                "conversations. A breaking change is a new type (…v2), never an edit."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def asyncapi_document(servers: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every registered event (a fresh copy, safe to modify).

    ``servers`` is an AsyncAPI servers map, e.g. ``{"local": {"host": "127.0.0.1:9092",
    "protocol": "kafka"}}``; a running service passes its own brokers.
    """
    document = copy.deepcopy(_build_asyncapi())
    if not servers:
        return document
    # Keep the conventional key order: asyncapi, info, servers, channels, ...
    head = {key: document.pop(key) for key in ("asyncapi", "info")}
    return {**head, "servers": {name: dict(spec) for name, spec in servers.items()}, **document}


def _write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def export_contracts(directory: Path) -> list[Path]:
    """Write ``<ce_type>.schema.json`` per event type, ``asyncapi.json`` and (with PyYAML)
    ``asyncapi.yaml`` into ``directory``; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = [
        _write_json(directory / schema_filename(model.type), event_schema(model))
        for model in catalog_events()
    ]
    document = asyncapi_document()
    written.append(_write_json(directory / "asyncapi.json", document))
    try:
        import yaml
    except ImportError:  # optional: JSON is the canonical form
        return written
    yaml_path = directory / "asyncapi.yaml"
    yaml_path.write_text(
        yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    written.append(yaml_path)
    return written
