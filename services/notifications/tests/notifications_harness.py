"""Test doubles that are real servers: an SMTP sink (aiosmtpd) and an HTTP sink (push service
and webhook receiver), plus a handle on the running notifications service."""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select

from rhythm_notifications.adapters import db
from rhythm_notifications.entrypoints.jobs import NotificationsRuntime
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import EmployeeUpserted
from rhythm_shared.kit.auth import issue_token
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.settings import DEV_JWT_SECRET
from rhythm_shared.testing import publish_events, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------------
# SMTP sink
# ---------------------------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    accepted_at: float  # time.time() when the sink answered 250 to DATA


class SinkHandler:
    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.reject_rcpt: set[str] = set()
        self.data_replies: list[str] = []  # replies to give to the next DATA commands
        self.lock = threading.Lock()
        self.on_accept: Callable[[Received], None] | None = None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.reject_rcpt:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            if self.data_replies:
                return self.data_replies.pop(0)
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        # Lines arrive with CRLF (SMTP); compare content with plain newlines.
        parsed = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        received = Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed, time.time())
        with self.lock:
            self.messages.append(received)
        if self.on_accept:
            self.on_accept(received)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if address in m.rcpt_tos]

    def count(self) -> int:
        with self.lock:
            return len(self.messages)


class SmtpSink:
    def __init__(self) -> None:
        self.handler = SinkHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


# ---------------------------------------------------------------------------------------------
# HTTP sink: push service and webhook receiver
# ---------------------------------------------------------------------------------------------


@dataclass
class HttpRequest:
    path: str
    headers: dict[str, str]
    body: bytes
    arrived_at: float = 0.0  # time.time() when the request was read
    answered_at: float = 0.0  # time.time() when the answer was written


@dataclass
class Answer:
    """What a path answers beyond its status: a delay, a body, headers (e.g. Location)."""

    delay_s: float = 0.0
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class HttpSink:
    """Records every POST; answers with the next status queued for its path (default 201).

    A path with a validator answers 400 with the validator's complaint when it has one, as a
    chat platform refuses a payload that is not of its documented shape."""

    requests: list[HttpRequest] = field(default_factory=list)
    replies: dict[str, list[int]] = field(default_factory=dict)
    answers: dict[str, Answer] = field(default_factory=dict)
    validators: dict[str, Callable[[bytes], str | None]] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)
    default_status: int = 201
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def __enter__(self) -> HttpSink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                request = HttpRequest(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time()
                )
                with sink.lock:
                    sink.requests.append(request)
                    queued = sink.replies.get(self.path)
                    status = queued.pop(0) if queued else sink.default_status
                    answer = sink.answers.get(self.path, Answer())
                    validate = sink.validators.get(self.path)
                    complaint = validate(body) if validate else None
                    if complaint is not None:
                        sink.refusals.append(complaint)
                        status, answer = 400, Answer(body=complaint.encode())
                time.sleep(answer.delay_s)
                self.send_response(status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(answer.body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client stopped reading (a size cap)
                    self.wfile.write(answer.body)
                request.answered_at = time.time()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def to(self, path: str) -> list[HttpRequest]:
        with self.lock:
            return [r for r in self.requests if r.path == path]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class BrowserKeys:
    """What a browser holds for one push subscription (RFC 8291)."""

    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    @classmethod
    def new(cls) -> BrowserKeys:
        import os

        return cls(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))

    @property
    def p256dh(self) -> str:
        point = self.private_key.public_key().public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint
        )
        return b64url(point)

    def decrypt(self, body: bytes) -> Any:
        import http_ece

        plain = http_ece.decrypt(
            body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm"
        )
        return json.loads(plain)


def vapid_private_key() -> str:
    from py_vapid import Vapid

    vapid = Vapid()
    vapid.generate_keys()
    number = vapid.private_key.private_numbers().private_value
    return b64url(number.to_bytes(32, "big"))


# ---------------------------------------------------------------------------------------------
# The running service
# ---------------------------------------------------------------------------------------------


def employee(
    tenant: str,
    employee_id: str,
    *,
    manager_id: str | None = None,
    locale: str = "en-GB",
    time_zone: str = "Europe/Amsterdam",
    name: str | None = None,
    email_address: str | None = None,
    active: bool = True,
    occurred_at: Any = None,
) -> EmployeeUpserted:
    from datetime import UTC, datetime

    return EmployeeUpserted(
        tenant_id=tenant,
        occurred_at=occurred_at or datetime(2026, 3, 1, 8, 0, tzinfo=UTC),
        employee_id=employee_id,
        email=email_address or f"{employee_id}@acme.example.com",
        display_name=name or employee_id.replace("-", " ").title(),
        manager_id=manager_id,
        org_unit_id="ou-1",
        time_zone=time_zone,
        locale=locale,
        hired_on=date(2024, 1, 1),
        active=active,
    )


@dataclass
class Service:
    runtime: NotificationsRuntime
    client: httpx.AsyncClient
    tenant: str
    clock: ManualClock
    bootstrap: str
    prefix: str

    def token(self, subject: str, *roles: str, tenant: str | None = None) -> dict[str, str]:
        token = issue_token(
            DEV_JWT_SECRET,
            tenant=tenant or self.tenant,
            subject=subject,
            roles=list(roles) or ["employee"],
            now=datetime.now(UTC),  # verified against the wall clock, not the test's
        )
        return {"Authorization": f"Bearer {token}"}

    async def publish(
        self, events: Sequence[Event], event_ids: Iterable[str] | None = None
    ) -> list[str]:
        return await publish_events(
            self.bootstrap, events, topic_prefix=self.prefix, event_ids=event_ids
        )

    async def rows(self, table: Any, *where: Any) -> list[Any]:
        async with self.runtime.uow() as uow:
            return list((await uow.session.execute(select(table).where(*where))).all())

    async def add_people(self, *people: EmployeeUpserted) -> None:
        await self.publish(people)
        wanted = {p.employee_id for p in people}

        async def arrived() -> bool:
            e = db.directory.employees
            rows = await self.rows(e, e.c.tenant_id == self.tenant)
            return wanted <= {r.employee_id for r in rows}

        await wait_for(arrived, timeout_s=60)

    async def deliveries(self, *where: Any) -> list[Any]:
        return await self.rows(db.deliveries, db.deliveries.c.tenant_id == self.tenant, *where)

    async def wait_deliveries(self, count: int, *where: Any) -> list[Any]:
        async def enough() -> list[Any] | None:
            rows = await self.deliveries(*where)
            return rows if len(rows) >= count else None

        rows: list[Any] = await wait_for(enough, timeout_s=60)
        return rows

    async def dispatch(self) -> int:
        """Run the dispatcher until nothing is due (a test moves the clock, not time)."""
        total = 0
        while handled := await self.runtime.resources.dispatcher.run_once():
            total += handled
        return total

    async def compose_digests(self) -> int:
        return int(await self.runtime.resources.digests.run_once())

    async def dispatch_webhooks(self) -> int:
        """One webhook round, waiting for every request it started to be recorded."""
        dispatcher = self.runtime.resources.webhook_dispatcher
        started = int(await dispatcher.run_once())
        await dispatcher.drain()
        return started

    def later(self, **delta: float) -> None:
        self.clock.advance(timedelta(**delta))


#: The `start_service` fixture: opens a running notifications service.
StartService = Callable[..., contextlib.AbstractAsyncContextManager[Service]]
