"""A request body's size is limited before anything parses it.

Every service answers a body over ``HTTP_MAX_BODY_BYTES`` with ``413 Content Too Large``
(RFC 9110 §15.5.14) and a JSON ``detail``, without reading the rest: a declared
``Content-Length`` is checked before the first byte is read, and a body of unknown length
(``Transfer-Encoding: chunked``) is counted as it streams in and cut off at the limit. A route
that takes larger bodies (a bulk import) states its own limit with :func:`body_limit`; the limit
shows in the OpenAPI document as ``x-max-body-bytes``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The OpenAPI extension that carries a route's own limit.
EXTENSION = "x-max-body-bytes"


def body_limit(max_bytes: int) -> dict[str, Any]:
    """``openapi_extra`` for a route whose bodies may be larger than the service's limit."""
    return {EXTENSION: max_bytes}


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a body is (or says it is) over the limit. An HTTPException,
    so that FastAPI's body parsing lets it through and the app answers it as a 413."""

    def __init__(self, max_bytes: int) -> None:
        # The rest of the body stays unread: the connection cannot carry another request.
        super().__init__(413, _detail(max_bytes), headers={"Connection": "close"})


def _detail(max_bytes: int) -> str:
    return f"the request body is larger than this endpoint accepts ({max_bytes} bytes)"


class BodySizeLimit:
    """ASGI middleware: refuse bodies over ``max_bytes``, or over the matched route's own limit.

    The check runs when the application first asks for the body, so the route is known by then
    (the router puts it in the scope) and still not one byte has been read.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        limit: int | None = None
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal limit, received
            if limit is None:
                extra = getattr(scope.get("route"), "openapi_extra", None) or {}
                limit = int(extra.get(EXTENSION, self.max_bytes))
                if declared is not None and declared > limit:
                    raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:
            # Read outside FastAPI's request handling (a middleware, a mounted app).
            if started:
                raise
            await _refuse(send, exc)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before we see it
    return None


async def _refuse(send: Send, exc: BodyTooLarge) -> None:
    body = json.dumps({"detail": exc.detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
