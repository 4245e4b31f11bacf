"""Email over SMTP with aiosmtplib: multipart text + HTML, one-click unsubscribe (RFC 8058).

A send is split at the one point that matters for "never twice": everything up to RCPT TO can
fail without the message existing anywhere, and after DATA the server may own it, so DATA waits
until the delivery's ``sending`` mark (the ``before_data`` callback) is committed. The commit
runs while MAIL and RCPT are answered, so a send costs the longer of the two, not their sum.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import hashlib
import re
import secrets
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr

import aiosmtplib
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

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
    connections: int = 8


def message_id(idempotency_key: str, sender: str) -> str:
    """A Message-ID derived from the idempotency key: every copy of one notification carries
    the same id, so a receiving system that de-duplicates on it sees one message."""
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}@{_domain(sender)}>"


@functools.lru_cache(maxsize=16)
def _domain(sender: str) -> str:
    """The domain of the From header's address (parsed once per sender, not per email)."""
    return parseaddr(sender)[1].rpartition("@")[2] or "rhythm.invalid"


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
) -> bytes:
    """The message as it goes over SMTP (RFC 5322, CRLF): text and HTML alternatives; with
    ``calendar`` (method, iCalendar object) also the ``text/calendar; method=...`` alternative
    calendars act on (iMIP, RFC 6047) and the same object as an ``invite.ics`` attachment for
    clients that only offer attachments.

    Written directly rather than through ``EmailMessage``, whose header parsing and refolding
    was half of the dispatcher's time per email; headers that need encoding still go through
    the standard library's SMTP policy (RFC 2047 encoded words, folding)."""
    headers = [
        _header("From", sender),
        _header("To", _recipient(to_name, to_address)),
        _header("Subject", rendered.subject),
        _header("Date", format_datetime(now)),
        _header("Message-ID", message_id(idempotency_key, sender)),
        # RFC 8058: one-click unsubscribe is a POST of "List-Unsubscribe=One-Click" to this URL.
        _uri_header("List-Unsubscribe", f"<{unsubscribe_url}>"),
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
        "Auto-Submitted: auto-generated\r\n",  # RFC 3834: no auto-replies, please
        _header("X-Rhythm-Category", category),
        "MIME-Version: 1.0\r\n",
    ]
    alternatives = [_text_part("plain", rendered.text), _text_part("html", rendered.html)]
    if calendar is None:
        body = _multipart("alternative", alternatives)
    else:
        method, ics = calendar
        if not method.isalpha():
            raise ValueError(f"not an iTIP method: {method!r}")
        alternatives.append(_text_part("calendar", ics.decode(), f'; method="{method}"'))
        attachment = (
            b"Content-Type: application/ics\r\n"
            b'Content-Disposition: attachment; filename="invite.ics"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(ics).replace(b"\n", b"\r\n")
        )
        body = _multipart("mixed", [_multipart("alternative", alternatives), attachment])
    return "".join(headers).encode("ascii") + body


#: RFC 5322: lines SHOULD stay within 78 characters and MUST within 998.
_FOLD_AT = 78
_MAX_LINE = 998


def _plain(value: str) -> bool:
    """Printable ASCII that needs no RFC 2047 encoding (nor looks like an encoded word)."""
    return value.isascii() and value.isprintable() and "=?" not in value


def _header(name: str, value: str | Address) -> str:
    """One header line: as it is when it is short printable ASCII, else folded and encoded by
    the SMTP policy (an address's name quoted or encoded as a whole, RFC 5322 and 2047)."""
    text = str(value)
    if _plain(text) and len(name) + 2 + len(text) <= _FOLD_AT:
        return f"{name}: {text}\r\n"
    return str(SMTP_POLICY.header_factory(name, value).fold(policy=SMTP_POLICY))


#: A display name that ``Address`` prints as it is (none of RFC 5322's specials, no encoding).
_PLAIN_NAME = re.compile(r"[A-Za-z0-9 '-]*")


def _recipient(name: str, address: str) -> str | Address:
    """The To header's value: ``Name <address>`` as ``Address`` would print it when both are
    plain and it fits on one line, else the ``Address`` (quoted, encoded and folded by the
    policy). Parsing an address again for the header was ~25 us an email."""
    if (
        len(name) + len(address) <= _FOLD_AT - 8
        and _PLAIN_NAME.fullmatch(name)
        and _everyday(address)
    ):
        return f"{name} <{address}>" if name else address
    return Address(display_name=name, addr_spec=address)


def _uri_header(name: str, value: str) -> str:
    """A header holding a URI (RFC 2369): never folded or encoded, since an encoded word in
    it is no URI any more; a URI too long for one line is an error."""
    if not _plain(value) or len(name) + 2 + len(value) > _MAX_LINE:
        raise ValueError(f"{name} cannot be written as one line of printable ASCII")
    return f"{name}: {value}\r\n"


def _text_part(subtype: str, text: str, params: str = "") -> bytes:
    """A UTF-8 text part: 7bit when it is short-lined ASCII, else quoted-printable."""
    lines = text.encode("utf-8").splitlines()
    data = b"\r\n".join(lines) + b"\r\n"
    if data.isascii() and max(map(len, lines), default=0) <= _FOLD_AT:
        cte = "7bit"
    else:
        cte = "quoted-printable"
        data = binascii.b2a_qp(data, istext=True)
    head = (
        f'Content-Type: text/{subtype}; charset="utf-8"{params}\r\n'
        f"Content-Transfer-Encoding: {cte}\r\n\r\n"
    )
    return head.encode("ascii") + data


def _multipart(subtype: str, parts: list[bytes]) -> bytes:
    """RFC 2046 multipart; the boundary is random and checked against the parts."""
    boundary = f"=_{secrets.token_hex(16)}".encode("ascii")
    while any(boundary in part for part in parts):  # pragma: no cover - 2**-128 per part
        boundary = f"=_{secrets.token_hex(16)}".encode("ascii")
    delimiter = b"--" + boundary
    return (
        b'Content-Type: multipart/' + subtype.encode("ascii") + b'; boundary="' + boundary
        + b'"\r\n\r\n'
        + b"".join(delimiter + b"\r\n" + part + b"\r\n" for part in parts)
        + delimiter + b"--\r\n"
    )  # fmt: skip


#: An address of the everyday shape: letters, digits and ``_+-`` in dot-separated atoms before
#: the @, and after it two or more hostname labels (no ``--`` in them) ending in a top-level
#: label of letters. Every such address within RFC 5321's 254 characters, outside the special-use
#: names, passes both checks below (tests/test_email_addresses.py generates them to hold that),
#: so it skips them: they were ~60 us of the dispatcher's time per email.
_EVERYDAY_ADDRESS = re.compile(
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def _everyday(address: str) -> bool:
    if len(address) > 254 or _EVERYDAY_ADDRESS.fullmatch(address) is None:
        return False
    domain = address.rpartition("@")[2].lower()
    return "--" not in domain and not any(
        domain == d or domain.endswith("." + d) for d in SPECIAL_USE_DOMAIN_NAMES
    )


def check_address(address: str) -> str | None:
    """None if the address can be written to, else why not (syntax only: no DNS here)."""
    return None if _everyday(address) else _checked(address)


def _checked(address: str) -> str | None:
    """The full check: email_validator's syntax rules, then the standard library's parser."""
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
        self._sender = parseaddr(config.sender)[1]  # the envelope's MAIL FROM

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

    async def _connect(self) -> aiosmtplib.SMTP:
        smtp = self._client()
        await smtp.connect()
        if self.config.username:
            await smtp.login(self.config.username, self.config.password or "")
        return smtp

    async def _start_mail(self, sender: str) -> aiosmtplib.SMTP:
        """A session whose MAIL command was accepted: a pooled one if the server still has it,
        else a new one. A server that closed an idle session (a 421 or a dropped connection,
        seen only at the next command) costs a new connection now, not the message a retry."""
        while self._idle:
            smtp = self._idle.pop()
            if not smtp.is_connected:
                continue
            try:
                await smtp.mail(sender)
                return smtp
            except aiosmtplib.SMTPResponseException as exc:
                if exc.code != aiosmtplib.SMTPStatus.domain_unavailable:
                    self._idle.append(smtp)  # the session is fine; the answer is the message's
                    raise
                smtp.close()
            except (aiosmtplib.SMTPServerDisconnected, OSError):
                smtp.close()
        smtp = await self._connect()
        try:
            await smtp.mail(sender)
        except BaseException:
            self._release(smtp, False)
            raise
        return smtp

    def _release(self, smtp: aiosmtplib.SMTP, healthy: bool) -> None:
        if healthy and smtp.is_connected:
            self._idle.append(smtp)
        else:
            smtp.close()

    async def send(
        self,
        message: bytes,
        to_address: str,
        before_data: Callable[[], Awaitable[None]],
    ) -> Outcome:
        async with self._slots:
            # Started inside the slot: at most ``connections`` marks are ever committed and
            # not yet answered by DATA, whatever fails in between.
            marked = asyncio.ensure_future(before_data())
            smtp: aiosmtplib.SMTP | None = None
            after_data = False
            try:
                smtp = await self._start_mail(self._sender)
                await smtp.rcpt(to_address)
                await marked
                after_data = True
                await smtp.data(message)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                outcome = _classify(exc, after_data=after_data)
                # Refused before DATA: the mark still lands first, so the outcome (recorded
                # after it) is what stays; a claim lost meanwhile is the outcome's to notice.
                with contextlib.suppress(Exception):
                    await marked
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
                marked.cancel()
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
