"""Email over SMTP with aiosmtplib: multipart text + HTML, one-click unsubscribe (RFC 8058).

A send is split at the one point that matters for "never twice": everything up to RCPT TO can
fail without the message existing anywhere, so the delivery is only marked ``sending`` (via the
``before_data`` callback, committed) right before DATA, after which the server may own it.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, formataddr, parseaddr

import aiosmtplib
from email_validator import EmailNotValidError, validate_email

from rhythm_notifications.adapters.templates import Rendered
from rhythm_notifications.domain.delivery import Failed, Outcome, Retry, Sent
from rhythm_shared.contracts.v1 import DeliveryFailure


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str  # none | starttls | tls
    username: str | None
    password: str | None
    timeout_s: float
    sender: str  # the From header, "Name <address>"
    connections: int = 4


def message_id(idempotency_key: str, sender: str) -> str:
    """A Message-ID derived from the idempotency key: every copy of one notification carries
    the same id, so a receiving system that de-duplicates on it sees one message."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "rhythm.invalid"
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}@{domain}>"


def build_message(
    rendered: Rendered,
    *,
    sender: str,
    to_name: str,
    to_address: str,
    unsubscribe_url: str,
    idempotency_key: str,
    category: str,
    now: datetime,
    calendar: tuple[str, bytes] | None = None,
) -> EmailMessage:
    """Text and HTML alternatives; with ``calendar`` (method, iCalendar object) also the
    ``text/calendar; method=...`` alternative calendars act on (iMIP, RFC 6047) and the same
    object as an ``invite.ics`` attachment for clients that only offer attachments."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = formataddr((to_name, to_address))
    msg["Subject"] = rendered.subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id(idempotency_key, sender)
    # RFC 8058: one-click unsubscribe is a POST of "List-Unsubscribe=One-Click" to this URL.
    msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    msg["X-Rhythm-Category"] = category
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    if calendar is not None:
        method, ics = calendar
        msg.add_alternative(ics.decode(), subtype="calendar", params={"method": method})
        msg.add_attachment(
            ics, maintype="application", subtype="ics", filename="invite.ics", params={}
        )
    return msg


def check_address(address: str) -> str | None:
    """None if the address can be written to, else why not (syntax only: no DNS here)."""
    try:
        validate_email(address, check_deliverability=False)
        Address(addr_spec=address)
    except (EmailNotValidError, ValueError, IndexError) as exc:
        return str(exc)
    return None


def check_display_name(name: str) -> str | None:
    """None if the name can go in a To header, else why not. A line break there would end the
    header and start another (RFC 5322 header injection); the email library refuses it."""
    bad = next((ch for ch in name if ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F), None)
    if bad is not None:
        return f"the recipient's name holds a control character (U+{ord(bad):04X})"
    return None


def _classify(exc: BaseException, *, after_data: bool) -> Outcome:
    """Map an SMTP error to retry (4xx, connection trouble) or fail (5xx)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        if 500 <= exc.code < 600:
            reason = (
                DeliveryFailure.INVALID_ADDRESS
                if exc.code in (550, 551, 553) or "5.1." in exc.message
                else DeliveryFailure.REJECTED
            )
            return Failed(reason, f"{exc.code} {exc.message}"[:500])
        return Retry(DeliveryFailure.REJECTED, f"{exc.code} {exc.message}"[:500])
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        if 500 <= exc.code < 600:
            return Failed(DeliveryFailure.REJECTED, f"{exc.code} {exc.message}"[:500])
        if not (after_data and exc.code < 400):
            return Retry(DeliveryFailure.PROVIDER_ERROR, f"{exc.code} {exc.message}"[:500])
    if after_data:
        # No final reply to DATA: the server may or may not have taken the message. Not resent:
        # a missing email is a smaller harm than a duplicate (see use_cases/dispatching.py).
        return Failed(DeliveryFailure.TIMEOUT, f"ambiguous, not resent: {exc!r}"[:500])
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return Retry(DeliveryFailure.TIMEOUT, repr(exc)[:500])
    return Retry(DeliveryFailure.UNREACHABLE, repr(exc)[:500])


class SmtpMailer:
    """A small pool of SMTP sessions reused across messages."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(config.connections)

    def _client(self) -> aiosmtplib.SMTP:
        c = self.config
        return aiosmtplib.SMTP(
            hostname=c.host,
            port=c.port,
            use_tls=c.security == "tls",
            start_tls=c.security == "starttls",
            timeout=c.timeout_s,
            tls_context=ssl.create_default_context() if c.security != "none" else None,
        )

    async def _acquire(self) -> aiosmtplib.SMTP:
        while self._idle:
            smtp = self._idle.pop()
            if smtp.is_connected:
                return smtp
        smtp = self._client()
        await smtp.connect()
        if self.config.username:
            await smtp.login(self.config.username, self.config.password or "")
        return smtp

    def _release(self, smtp: aiosmtplib.SMTP, healthy: bool) -> None:
        if healthy and smtp.is_connected:
            self._idle.append(smtp)
        else:
            smtp.close()

    async def send(
        self,
        message: EmailMessage,
        to_address: str,
        before_data: Callable[[], Awaitable[None]],
    ) -> Outcome:
        sender = parseaddr(self.config.sender)[1]
        try:  # before any SMTP command: a message that cannot be written fails only itself
            raw = message.as_bytes(policy=SMTP_POLICY)
        except (ValueError, TypeError, LookupError) as exc:
            return Failed(
                DeliveryFailure.PROVIDER_ERROR, f"the message cannot be written ({exc!r})"[:500]
            )
        async with self._slots:
            smtp: aiosmtplib.SMTP | None = None
            after_data = False
            try:
                smtp = await self._acquire()
                await smtp.mail(sender)
                await smtp.rcpt(to_address)
                await before_data()
                after_data = True
                await smtp.data(raw)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                outcome = _classify(exc, after_data=after_data)
                if smtp is not None:
                    healthy = False
                    if isinstance(exc, aiosmtplib.SMTPResponseException) and smtp.is_connected:
                        try:
                            await smtp.rset()
                            healthy = True
                        except (aiosmtplib.SMTPException, OSError):
                            healthy = False
                    self._release(smtp, healthy)
                return outcome
            except BaseException:
                if smtp is not None:
                    self._release(smtp, False)
                raise
            self._release(smtp, True)
            return Sent()

    async def close(self) -> None:
        while self._idle:
            smtp = self._idle.pop()
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()
