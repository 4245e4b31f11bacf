"""No value a client wrote reaches the logs, even when its write fails in the database.

A greeting whose id and receiver carry markers is written twice: the second write fails on the
primary key (PostgreSQL's DETAIL repeats the key; SQLite's driver and SQLAlchemy would print the
bound values). The service answers 500 and logs the failure — every log line, in JSON and in
plain form, is searched for the markers.
"""

from __future__ import annotations

import io
import logging
import uuid

import httpx
import pytest
from pydantic import BaseModel, Field, ValidationError

from rhythm_shared.kit.app import running
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.scrub import format_exception
from rhythm_shared.kit.telemetry import JsonFormatter, PlainFormatter
from tests.kit import sample
from tests.kit.test_kit import auth, settings

pytestmark = pytest.mark.kafka


async def test_a_failed_write_of_a_marker_puts_no_marker_in_any_log_line(
    database_url: str, topic_prefix: str, kafka_bootstrap: str, tenant: str, clock: ManualClock
) -> None:
    marker = f"NOTE{uuid.uuid4().hex[:10]}MARK"
    buffer = io.StringIO()
    app = sample.build(settings(database_url, topic_prefix, kafka_bootstrap), clock=clock)
    async with running(app):
        root = logging.getLogger()
        handlers = [logging.StreamHandler(buffer), logging.StreamHandler(buffer)]
        handlers[0].setFormatter(JsonFormatter())
        handlers[1].setFormatter(PlainFormatter())
        for h in handlers:
            root.addHandler(h)
        try:
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://sample") as client:
                body = {"greeting_id": f"g-{marker}", "receiver_id": f"r-{marker}"}
                first = await client.post("/v1/greetings", json=body, headers=auth(tenant))
                assert first.status_code == 201
                again = await client.post("/v1/greetings", json=body, headers=auth(tenant))
                assert again.status_code == 500
        finally:
            for h in handlers:
                root.removeHandler(h)
    logged = buffer.getvalue()
    assert "request_failed" in logged  # the failure was logged ...
    assert "IntegrityError" in logged  # ... with its kind ...
    assert marker not in logged  # ... and none of the values


class Note(BaseModel):
    text: str = Field(max_length=5)


def test_validation_errors_are_logged_without_their_input() -> None:
    secret = "SECRET" + uuid.uuid4().hex  # built at run time: the traceback shows source lines
    try:
        Note(text=secret)
    except ValidationError:
        import sys

        text = format_exception(sys.exc_info())
    assert "text: string_too_long" in text
    assert secret not in text


def test_an_exception_chain_is_scrubbed_at_every_link() -> None:
    import sqlite3
    import sys

    secret = "SECRET" + uuid.uuid4().hex

    def fail() -> None:
        try:
            raise sqlite3.IntegrityError(f"UNIQUE constraint failed: {secret}")
        except sqlite3.IntegrityError as exc:
            raise RuntimeError("while writing") from exc

    try:
        fail()
    except RuntimeError:
        text = format_exception(sys.exc_info())
    assert "while writing" in text  # our own message stays
    assert "IntegrityError" in text
    assert secret not in text
