"""Credentials that ride in URLs stay out of logs, traces and other sites' ``Referer`` headers.

Some links must carry a secret: the one-click unsubscribe link of an email (RFC 8058) holds a
signed token in its query string, and an integrator may call an endpoint with ``?code=`` or
``?signature=``. Whoever reads the access log or the traces must not be able to use them, so the
value of every query parameter named like a credential is replaced by ``REDACTED`` in log lines
(:class:`RedactCredentials`, on the handler every log line goes through) and in the URL
attributes of HTTP server spans (:func:`redact_server_span`, OpenTelemetry HTTP semantic
conventions: ``http.target``, ``http.url``, ``url.full``, ``url.query``). :class:`NoReferrer`
keeps a page's URL from being sent to the sites it links to (W3C Referrer Policy).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from opentelemetry.trace import Span
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REDACTED = "REDACTED"

# A parameter named token, code, key, signature, secret or password, alone or as the last part of
# a longer name (access_token, api_key, X-Amz-Signature); its value runs to the next delimiter.
_CREDENTIAL = re.compile(
    r"(?<![\w.-])(?P<name>(?:[\w.-]*[_.-])?(?:token|code|key|signature|sig|secret|password))"
    r"=(?P<value>[^&#;\s\"'<>]+)",
    re.IGNORECASE,
)
_URL_ATTRIBUTES = ("http.target", "http.url", "url.full", "url.query")
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def redact(text: str) -> str:
    """``text`` with the value of every credential-like ``name=value`` replaced by REDACTED."""
    return _CREDENTIAL.sub(rf"\g<name>={REDACTED}", text)


class RedactCredentials(logging.Filter):
    """Rewrites a record before any formatter sees it: its message (uvicorn's access line holds
    the request's path and query) and the string fields bound to it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


def redact_server_span(span: Span, scope: dict[str, Any]) -> None:
    """``server_request_hook`` of the FastAPI instrumentation: it runs after the request's
    attributes are set, so it can overwrite them."""
    attributes = getattr(span, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str):
            span.set_attribute(key, redact(value))


class NoReferrer:
    """``Referrer-Policy: no-referrer`` on every HTTP response, unless a route set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).setdefault("Referrer-Policy", "no-referrer")
            await send(message)

        await self.app(scope, receive, send_with_policy)
