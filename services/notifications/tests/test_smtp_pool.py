"""The SMTP pool against a real server (aiosmtpd): sessions are reused, and a session the
server has dropped is replaced at once instead of costing its message a retry."""

from __future__ import annotations

import asyncio

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from notifications_harness import SinkHandler, free_port

from rhythm_notifications.adapters.email import SmtpConfig, SmtpMailer
from rhythm_notifications.domain.delivery import Retry, Sent

MESSAGE = (
    b"From: rhythm@acme.example.com\r\nTo: e-1@acme.example.com\r\n"
    b"Subject: hello\r\nMessage-ID: <m-1@acme.example.com>\r\n\r\nHello\r\n"
)


class ClosesIdleSessions:
    """Answers the second MAIL of any session "421 closing" (an idle timeout, as a server
    reports it at the next command); counts the sessions it saw and the messages it took."""

    def __init__(self) -> None:
        self.mails: dict[int, int] = {}
        self.accepted = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.accepted += 1
        return "250 OK"

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        seen = self.mails[id(session)] = self.mails.get(id(session), 0) + 1
        if seen > 1:
            return "421 4.4.2 idle for too long, closing"
        envelope.mail_from = address
        return "250 OK"


def mailer(port: int, connections: int = 1) -> SmtpMailer:
    return SmtpMailer(
        SmtpConfig(
            host="127.0.0.1",
            port=port,
            security="none",
            username=None,
            password=None,
            timeout_s=10,
            sender="Rhythm <rhythm@acme.example.com>",
            connections=connections,
        )
    )


async def nothing() -> None:
    return None


async def test_the_pool_reuses_one_session_for_many_messages() -> None:
    handler = SinkHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    smtp = mailer(controller.port, connections=2)
    try:
        outcomes = [await smtp.send(MESSAGE, "e-1@acme.example.com", nothing) for _ in range(5)]
    finally:
        await smtp.close()
        controller.stop()
    assert all(isinstance(o, Sent) for o in outcomes)
    assert handler.count() == 5
    assert len(smtp._idle) == 0  # closed


async def test_a_session_the_server_closed_while_idle_is_replaced_without_a_retry() -> None:
    handler = ClosesIdleSessions()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    smtp = mailer(controller.port)
    try:
        outcomes = [await smtp.send(MESSAGE, "e-1@acme.example.com", nothing) for _ in range(3)]
    finally:
        await smtp.close()
        controller.stop()
    assert all(isinstance(o, Sent) for o in outcomes), outcomes
    assert handler.accepted == 3
    assert len(handler.mails) == 3  # each pooled session was turned away once, then replaced


async def test_the_pool_reconnects_after_the_server_dropped_every_session() -> None:
    handler = SinkHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    smtp = mailer(port, connections=2)
    try:
        first = await asyncio.gather(
            *(smtp.send(MESSAGE, "e-1@acme.example.com", nothing) for _ in range(2))
        )
        controller.stop()  # the server goes away with both sessions, and comes back
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        then = await asyncio.gather(
            *(smtp.send(MESSAGE, "e-1@acme.example.com", nothing) for _ in range(2))
        )
    finally:
        await smtp.close()
        controller.stop()
    assert all(isinstance(o, Sent) for o in [*first, *then]), [*first, *then]
    assert handler.count() == 4


class Records:
    """A sink that notes, in order, when RCPT and DATA reach it; ``refuse`` answers RCPT
    "450 try later" for those addresses."""

    def __init__(self, log: list[str], refuse: frozenset[str] = frozenset()) -> None:
        self.log = log
        self.refuse = refuse

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.log.append("rcpt")
        if address in self.refuse:
            return "450 4.2.1 try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.log.append("data")
        return "250 OK"


async def test_the_mark_is_committed_while_rcpt_is_answered_and_data_waits_for_it() -> None:
    log: list[str] = []
    controller = Controller(Records(log), hostname="127.0.0.1", port=free_port())
    controller.start()
    smtp = mailer(controller.port)

    async def slow_mark() -> None:  # a commit slower than MAIL and RCPT together
        log.append("mark asked")
        await asyncio.sleep(0.3)
        log.append("mark committed")

    try:
        outcome = await smtp.send(MESSAGE, "e-1@acme.example.com", slow_mark)
    finally:
        await smtp.close()
        controller.stop()
    assert isinstance(outcome, Sent)
    assert log == ["mark asked", "rcpt", "mark committed", "data"]


async def test_a_recipient_refused_after_the_mark_was_asked_is_retried_once_the_mark_landed() -> (
    None
):
    log: list[str] = []
    handler = Records(log, refuse=frozenset({"e-1@acme.example.com"}))
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    smtp = mailer(controller.port)

    async def slow_mark() -> None:
        await asyncio.sleep(0.3)
        log.append("mark committed")

    try:
        outcome = await smtp.send(MESSAGE, "e-1@acme.example.com", slow_mark)
    finally:
        await smtp.close()
        controller.stop()
    # The outcome is returned (and so recorded) only after the mark: it is what stays.
    assert isinstance(outcome, Retry), outcome
    assert log == ["rcpt", "mark committed"]
