"""Spans are recorded only when something exports them; the trace id travels either way."""

from __future__ import annotations

import io
import json
import logging

import pytest
from aiokafka import ConsumerRecord
from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from rhythm_shared.contracts import topics
from rhythm_shared.kit import consumer
from rhythm_shared.kit.telemetry import JsonFormatter, RecordWhenExported

PARENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{PARENT_TRACE}-b7ad6b7169203331-01"


def _consume_one(provider: TracerProvider) -> tuple[bool, dict[str, str], dict[str, str]]:
    """What the consumer does per record: a span under the record's trace context, a log line
    and a record published from inside it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("rhythm.test.tracing")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        tracer = provider.get_tracer("test")
        parent = propagate.extract({"traceparent": TRACEPARENT})
        with tracer.start_as_current_span(
            "t process", context=parent, kind=SpanKind.CONSUMER
        ) as span:
            log.info("handled")
            published: dict[str, str] = {}
            propagate.inject(published)
            recording = span.is_recording()
    finally:
        log.removeHandler(handler)
    return recording, json.loads(stream.getvalue()), published


def test_with_no_exporter_spans_are_not_recorded_but_logs_and_records_carry_the_trace() -> None:
    provider = TracerProvider(sampler=RecordWhenExported())
    recording, line, published = _consume_one(provider)
    assert not recording
    assert line["trace_id"] == PARENT_TRACE
    assert line["span_id"] not in ("", "0" * 16)
    assert published["traceparent"].split("-")[1] == PARENT_TRACE


def test_once_an_exporter_is_added_spans_are_recorded_and_exported() -> None:
    sampler = RecordWhenExported()
    provider = TracerProvider(sampler=sampler)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sampler.exporting = True
    recording, line, published = _consume_one(provider)
    assert recording
    assert line["trace_id"] == PARENT_TRACE
    assert published["traceparent"].split("-")[1] == PARENT_TRACE
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["t process"]
    assert format(spans[0].context.trace_id, "032x") == PARENT_TRACE


async def _nothing(uow: object, envelopes: object) -> None:
    return None


@pytest.mark.parametrize("recorded", [False, True])
def test_a_consumed_record_carries_its_trace_into_logs_and_published_records(
    recorded: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per record, the consumer opens a span only when spans are recorded; either way what the
    handler logs and publishes belongs to the record's trace."""
    monkeypatch.setattr(consumer, "spans_recorded", lambda: recorded)
    provider = TracerProvider(sampler=RecordWhenExported())
    monkeypatch.setattr(consumer, "tracer", provider.get_tracer("test"))
    record = ConsumerRecord(
        topics.PEOPLE, 0, 7, 0, 0, b"acme/e-1", b"{}", None, 0, 0,
        [("traceparent", TRACEPARENT.encode())],
    )  # fmt: skip
    spec = consumer.ConsumerSpec("test", [topics.PEOPLE], batch_handler=_nothing)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("rhythm.test.tracing")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        with consumer.EventConsumer(spec, object, None)._span(record):
            log.info("handled")
            published: dict[str, str] = {}
            propagate.inject(published)
    finally:
        log.removeHandler(handler)
    assert json.loads(stream.getvalue())["trace_id"] == PARENT_TRACE
    assert published["traceparent"].split("-")[1] == PARENT_TRACE
