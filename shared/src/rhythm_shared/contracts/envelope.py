"""CloudEvents 1.0, Kafka protocol binding, binary content mode.

Spec: https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/kafka-protocol-binding.md
Attributes travel as ``ce_``-prefixed headers, the body is the event model as JSON, and the
record key is the ordering aggregate (``<tenant>/<entity id>``). W3C ``traceparent`` rides along.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic

from pydantic import ValidationError
from typing_extensions import TypeVar

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


E = TypeVar("E", bound=Event, default=Event, covariant=True)


@dataclass(frozen=True)
class Envelope(Generic[E]):
    """A CloudEvent read from a record, with its typed body: a handler of ``OrgUnitUpserted``
    takes an ``Envelope[OrgUnitUpserted]`` and reads ``envelope.event`` with that type."""

    id: str
    source: str
    type: str
    time: datetime
    subject: str
    tenant_id: str
    event: E
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


#: Bodies larger than this are refused before parsing (a setting of every consumer overrides it).
MAX_RECORD_BYTES = 1024 * 1024
#: Deepest JSON nesting a body may have: Rhythm's events nest three levels; the bound keeps a
#: hostile body from exhausting the parser's recursion.
MAX_JSON_DEPTH = 32

#: The headers the decoder reads: each must appear at most once, as UTF-8 text.
_REQUIRED = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time")
_READ = frozenset((*_REQUIRED, "ce_subject", "ce_tenantid", "content-type", *TRACE_HEADERS))


def _header_map(headers: object) -> dict[str, str]:
    """The headers the decoder reads, as text. Others are ignored, whatever their bytes.

    The usual pair, (lower-case ``str``, ``bytes``), takes the shortest way; anything else is
    checked on the way it is read."""
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise EnvelopeError("headers are not a list of (name, value) pairs")
    out: dict[str, str] = {}
    for item in items:
        if (type(item) is not tuple and not isinstance(item, tuple)) or len(item) != 2:
            raise EnvelopeError("headers are not a list of (name, value) pairs")
        name, raw = item
        if type(name) is not str:
            if isinstance(name, bytes):
                name = name.decode(errors="replace")
            if not isinstance(name, str):
                raise EnvelopeError(f"header name {name!r} is not text")
        if name not in _READ:
            name = name.lower()
            if name not in _READ:
                continue
        if name in out:
            # Two values for one attribute: which one the producer meant cannot be known.
            raise EnvelopeError(f"header {name!r} appears more than once")
        if type(raw) is bytes or isinstance(raw, bytes | bytearray | memoryview):
            try:
                out[name] = bytes(raw).decode()
            except UnicodeDecodeError as exc:
                raise EnvelopeError(f"header {name!r} is not UTF-8") from exc
        elif isinstance(raw, str):
            out[name] = raw
        else:
            raise EnvelopeError(f"header {name!r} has no text value")
    return out


def _depth(value: object) -> int:
    """Nesting depth of parsed JSON, without recursion (a deep value cannot overflow it)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def from_record(
    headers: Iterable[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None] | None,
    value: bytes | None,
    *,
    max_bytes: int = MAX_RECORD_BYTES,
) -> Envelope:
    """Decode a binary-mode CloudEvent; raise :class:`EnvelopeError` saying what is wrong.

    Whatever the record holds (any bytes, any headers, any size or nesting), the result is an
    envelope or an :class:`EnvelopeError`: a record that cannot be decoded is the record's
    fault, never a reason to stop or retry.
    """
    try:
        return _decode(headers, value, max_bytes)
    except EnvelopeError:
        raise
    except Exception as exc:  # decoding is pure: whatever fails, the record is to blame
        raise EnvelopeError(f"undecodable record: {type(exc).__name__}: {exc}"[:500]) from exc


def _decode(headers: object, value: object, max_bytes: int) -> Envelope:
    h = _header_map(headers)
    missing = [a for a in _REQUIRED if a not in h]
    if missing:
        raise EnvelopeError(f"not a CloudEvent: missing headers {', '.join(missing)}")
    if h["ce_specversion"] != SPEC_VERSION:
        raise EnvelopeError(f"unsupported ce_specversion {h['ce_specversion'][:40]!r}")
    for attribute in ("ce_id", "ce_source"):
        # CloudEvents 1.0: id and source are non-empty strings.
        if not h[attribute]:
            raise EnvelopeError(f"{attribute} is empty")
    content_type = h.get("content-type", CONTENT_TYPE)
    if not content_type.startswith(CONTENT_TYPE):
        raise EnvelopeError(f"unsupported content-type {content_type[:80]!r}")
    model = EVENT_TYPES.get(h["ce_type"])
    if model is None:
        raise EnvelopeError(f"unknown ce_type {h['ce_type'][:120]!r}")
    if value is None:
        raise EnvelopeError("record has no body")
    if not isinstance(value, bytes | bytearray | memoryview):
        raise EnvelopeError(f"body is a {type(value).__name__}, not bytes")
    if len(value) > max_bytes:
        # Refused before parsing: parsing is where a large body costs memory and time.
        raise EnvelopeError(f"body of {len(value)} bytes is over the limit of {max_bytes}")
    try:
        time = datetime.fromisoformat(h["ce_time"])
    except ValueError as exc:
        raise EnvelopeError(f"ce_time {h['ce_time'][:60]!r} is not an RFC 3339 time") from exc
    if time.tzinfo is None:
        raise EnvelopeError(f"ce_time {h['ce_time'][:60]!r} has no UTC offset (RFC 3339)")
    body = bytes(value)
    event = _quick_body(model, body)
    if event is None:
        event = _checked_body(h["ce_type"], model, body)
    tenant = h.get("ce_tenantid", event.tenant_id)
    subject = h.get("ce_subject")  # the body's subject only if none came (it is computed)
    if tenant != event.tenant_id:
        raise EnvelopeError("ce_tenantid does not match the body's tenant_id")
    return Envelope(
        id=h["ce_id"],
        source=h["ce_source"],
        type=h["ce_type"],
        time=time,
        subject=event.subject if subject is None else subject,
        tenant_id=tenant,
        event=event,
        trace_headers={k: h[k] for k in TRACE_HEADERS if k in h},
    )


def _quick_body(model: type[Event], body: bytes) -> Event | None:
    """The body as its event, parsed and validated in one pass (pydantic's JSON parser), when
    nothing in it can be a reason the step by step path (:func:`_checked_body`) would refuse:
    no more brackets than the depth allowed, too short for an integer of more digits than
    Python converts. None when it is not valid: the step by step path then says why.

    Whatever this accepts, that path accepts as the same event (tests/kit/test_hostile_decoding);
    it refuses more (invalid UTF-8, unpaired surrogates, control characters: JSON errors here)."""
    digits = sys.get_int_max_str_digits()
    if body.count(b"{") + body.count(b"[") > MAX_JSON_DEPTH or (digits and len(body) >= digits):
        return None
    try:
        return model.model_validate_json(body)
    except ValidationError:
        return None


def _checked_body(event_type: str, model: type[Event], body: bytes) -> Event:
    """The body as its event, step by step, each failure in words: UTF-8, JSON, depth, model."""
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise EnvelopeError(f"body is not UTF-8: invalid byte at {exc.start}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EnvelopeError(f"body is not JSON: {exc.msg} at {exc.pos}") from exc
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise EnvelopeError(f"body is not usable JSON: {exc}"[:200]) from exc
    except RecursionError as exc:
        raise EnvelopeError(f"body nests deeper than {MAX_JSON_DEPTH} levels") from exc
    if _depth(data) > MAX_JSON_DEPTH:
        raise EnvelopeError(f"body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise EnvelopeError(f"body does not match {event_type}: {errors}"[:1000]) from exc
