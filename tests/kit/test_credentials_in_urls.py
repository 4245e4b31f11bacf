"""A credential in a query string (the one-click unsubscribe token, ``?code=``, ``?signature=``)
reaches neither the log lines nor the HTTP spans, and no page sends its URL on as a referrer.

The kit's sample service runs under uvicorn as ``rhythm serve`` runs a service (its access log
on, the kit's JSON logging in charge); requests carry marker credentials; every line written to
stderr and every attribute of every finished span is searched for the markers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from rhythm_shared.kit.redaction import redact
from rhythm_shared.testing import wait_for
from tests.kit import sample

pytestmark = pytest.mark.kafka

MARK = "SECRETMARK"
REQUESTS = [
    ("GET", f"/v1/unsubscribe?token={MARK}1"),
    ("POST", f"/v1/greetings?code={MARK}2&page=2"),
    ("GET", f"/v1/nowhere?view=all&access_token={MARK}3&Signature={MARK}4&api_key={MARK}5"),
    ("GET", f"/v1/nowhere?secret={MARK}6#ignored"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    port = _free_port()
    # A fresh process's uvicorn loggers: another server earlier in the suite may have quietened
    # or disabled them (uvicorn.run(log_level="warning") sets their levels process-wide).
    for name in ("uvicorn", "uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.NOTSET)
        logger.disabled = False
        logger.propagate = True
        logger.handlers.clear()
    # As `rhythm serve` runs it: uvicorn's access log on, the service's logging in charge.
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_config=None)
    )
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return bool(server.started)

    await wait_for(started, timeout_s=60)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_no_credential_from_a_query_string_reaches_the_logs_or_the_spans(
    database_url: str,
    topic_prefix: str,
    kafka_bootstrap: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    exporter = InMemorySpanExporter()
    settings = sample.Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=topic_prefix,
        topic_partitions=1,
        log_json=True,
        run_consumers=False,
    )
    app = sample.build(settings, span_exporter=exporter)  # installs the logging under capsys
    async with serving(app) as base, httpx.AsyncClient(base_url=base) as client:
        for method, url in REQUESTS:
            response = await client.request(method, url)
            assert response.status_code in (401, 404, 405), (url, response.text)
            assert response.headers["referrer-policy"] == "no-referrer"
        log = logging.getLogger("rhythm.test")
        log.info("webhook_called", extra={"url": f"https://hooks.example.com/in?signature={MARK}7"})
        try:
            raise ConnectionError(f"POST https://hooks.example.com/in?token={MARK}8 failed")
        except ConnectionError:
            log.exception("webhook_failed")
    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]

    lines = capsys.readouterr().err.splitlines()
    access = [line for line in lines if "uvicorn.access" in line]
    assert len(access) == len(REQUESTS)
    assert "/v1/unsubscribe?token=REDACTED" in access[0]
    assert "view=all&access_token=REDACTED&Signature=REDACTED&api_key=REDACTED" in access[2]
    assert any("webhook_failed" in line and "in?token=REDACTED" in line for line in lines)
    assert [line for line in lines if MARK in line] == []

    spans = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert len(spans) == len(REQUESTS)
    values = [str(v) for s in spans for v in (s.attributes or {}).values()]
    assert any("token=REDACTED" in v for v in values)
    assert [v for v in values if MARK in v] == []
    assert [s.name for s in spans if MARK in s.name] == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/v1/unsubscribe?token=abc.def-_", "/v1/unsubscribe?token=REDACTED"),
        ("a=1&code=x&b=2", "a=1&code=REDACTED&b=2"),
        ("?X-Amz-Signature=f00&key=k", "?X-Amz-Signature=REDACTED&key=REDACTED"),
        ("?client_secret=s;next", "?client_secret=REDACTED;next"),
        ('"GET /p?password=pw HTTP/1.1" 200', '"GET /p?password=REDACTED HTTP/1.1" 200'),
        (
            "?unicode=1&monkey=2&tokens=3&period=2026-Q3",
            "?unicode=1&monkey=2&tokens=3&period=2026-Q3",
        ),
    ],
)
def test_credential_values_are_redacted_and_other_parameters_kept(text: str, expected: str) -> None:
    assert redact(text) == expected
