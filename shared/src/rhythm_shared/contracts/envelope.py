"""CloudEvents 1.0, Kafka protocol binding, binary content mode.

Spec: https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/kafka-protocol-binding.md
Attributes travel as ``ce_``-prefixed headers, the body is the event model as JSON, and the
record key is the ordering aggregate (``<tenant>/<entity id>``). W3C ``traceparent`` rides along.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from rhythm_shared.contracts.base import EVENT_TYPES, Event

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
TRACE_HEADERS = ("traceparent", "tracestate")

Headers = list[tuple[str, bytes]]


class EnvelopeError(ValueError):
    """A record that is not a Rhythm CloudEvent we can read; the reason is in the message."""


@dataclass(frozen=True)
class Record:
    """A Kafka record ready to send."""

    topic: str
    key: bytes
    value: bytes
    headers: Headers = field(default_factory=list)


@dataclass(frozen=True)
class Envelope:
    """A CloudEvent read from a record, with its typed body."""

    id: str
    source: str
    type: str
    time: datetime
    subject: str
    tenant_id: str
    event: Event
    trace_headers: dict[str, str] = field(default_factory=dict)


def new_event_id() -> str:
    return str(uuid.uuid4())


def to_record(
    event: Event,
    *,
    source: str,
    event_id: str | None = None,
    trace_headers: Mapping[str, str] | None = None,
) -> Record:
    """Encode ``event`` as a binary-mode CloudEvent on its topic, keyed by its aggregate."""
    headers: Headers = [
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", (event_id or new_event_id()).encode()),
        ("ce_source", source.encode()),
        ("ce_type", event.type.encode()),
        ("ce_time", event.occurred_at.isoformat().encode()),
        ("ce_subject", event.subject.encode()),
        ("ce_tenantid", event.tenant_id.encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]
    for name in TRACE_HEADERS:
        if trace_headers and name in trace_headers:
            headers.append((name, trace_headers[name].encode()))
    return Record(
        topic=event.topic,
        key=event.key.encode(),
        value=event.model_dump_json().encode(),
        headers=headers,
    )


def _header_map(
    headers: Iterable[tuple[str, bytes | str]] | Mapping[str, bytes | str],
) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for name, raw in items:
        try:
            out[name.lower()] = raw.decode() if isinstance(raw, bytes) else str(raw)
        except UnicodeDecodeError as exc:
            raise EnvelopeError(f"header {name!r} is not UTF-8") from exc
    return out


def from_record(
    headers: Iterable[tuple[str, bytes | str]] | Mapping[str, bytes | str], value: bytes | None
) -> Envelope:
    """Decode a binary-mode CloudEvent; raise :class:`EnvelopeError` saying what is wrong."""
    h = _header_map(headers)
    missing = [
        a for a in ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time") if a not in h
    ]
    if missing:
        raise EnvelopeError(f"not a CloudEvent: missing headers {', '.join(missing)}")
    if h["ce_specversion"] != SPEC_VERSION:
        raise EnvelopeError(f"unsupported ce_specversion {h['ce_specversion']!r}")
    content_type = h.get("content-type", CONTENT_TYPE)
    if not content_type.startswith(CONTENT_TYPE):
        raise EnvelopeError(f"unsupported content-type {content_type!r}")
    model = EVENT_TYPES.get(h["ce_type"])
    if model is None:
        raise EnvelopeError(f"unknown ce_type {h['ce_type']!r}")
    if value is None:
        raise EnvelopeError("record has no body")
    try:
        time = datetime.fromisoformat(h["ce_time"])
    except ValueError as exc:
        raise EnvelopeError(f"ce_time {h['ce_time']!r} is not an RFC 3339 time") from exc
    try:
        event = model.model_validate(json.loads(value))
    except json.JSONDecodeError as exc:
        raise EnvelopeError(f"body is not JSON: {exc.msg} at {exc.pos}") from exc
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise EnvelopeError(f"body does not match {h['ce_type']}: {errors}") from exc
    tenant = h.get("ce_tenantid", event.tenant_id)
    if tenant != event.tenant_id:
        raise EnvelopeError("ce_tenantid does not match the body's tenant_id")
    return Envelope(
        id=h["ce_id"],
        source=h["ce_source"],
        type=h["ce_type"],
        time=time,
        subject=h.get("ce_subject", event.subject),
        tenant_id=tenant,
        event=event,
        trace_headers={k: h[k] for k in TRACE_HEADERS if k in h},
    )
