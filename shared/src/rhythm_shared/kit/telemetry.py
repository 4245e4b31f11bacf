"""Traces (OpenTelemetry) and JSON logs that carry the trace id."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes

from rhythm_shared.kit.redaction import RedactCredentials, redact
from rhythm_shared.kit.scrub import format_exception

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class RecordWhenExported(Sampler):
    """Spans are recorded only once something exports them.

    With no exporter, a recorded span per consumed record is pure cost (about twice a
    non-recording one, which is most of a small event's handling). A non-recording span still has
    its trace and span ids: logs carry the trace id, and records a handler publishes carry the
    trace on, so a trace can still be followed through the logs of every service.
    """

    def __init__(self) -> None:
        self.exporting = False
        self._exported = ParentBased(ALWAYS_ON)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if self.exporting:
            return self._exported.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )
        parent = trace.get_current_span(parent_context).get_span_context()
        return SamplingResult(Decision.DROP, None, parent.trace_state)

    def get_description(self) -> str:
        return "RecordWhenExported{ParentBased{root:AlwaysOnSampler}}"


def spans_recorded() -> bool:
    """Whether spans started now would be recorded (something exports them)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        return False
    sampler = provider.sampler
    return not isinstance(sampler, RecordWhenExported) or sampler.exporting


def setup_tracing(
    service_name: str, otlp_endpoint: str | None, exporter: SpanExporter | None = None
) -> TracerProvider:
    """Install a tracer provider once per process; export OTLP when an endpoint is set.

    Spans are recorded from the first exporter on (:class:`RecordWhenExported`)."""
    current = trace.get_tracer_provider()
    provider = current if isinstance(current, TracerProvider) else None
    if provider is None:
        provider = TracerProvider(
            resource=Resource.create({"service.name": service_name}),
            sampler=RecordWhenExported(),
        )
        trace.set_tracer_provider(provider)
    if (otlp_endpoint or exporter is not None) and isinstance(provider.sampler, RecordWhenExported):
        provider.sampler.exporting = True
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = otlp_endpoint.rstrip("/")
        if not endpoint.endswith("/v1/traces"):
            endpoint += "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


class _ScrubbingFormatter(logging.Formatter):
    """Exceptions are rendered without the values they may quote (see :mod:`.scrub`)."""

    def formatException(self, ei: Any) -> str:
        # An exception may quote a URL with a credential in it (a failed webhook call).
        return redact(format_exception(ei))


class PlainFormatter(_ScrubbingFormatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")


class JsonFormatter(_ScrubbingFormatter):
    """One JSON object per line: time, level, logger, event, bound fields, trace and span ids."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(level: str = "INFO", json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactCredentials())
    handler.setFormatter(JsonFormatter() if json_lines else PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka", "sqlalchemy.engine"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
