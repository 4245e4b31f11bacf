"""Signed one-click unsubscribe tokens (RFC 8058 needs a URL that works without a login).

The token names the tenant, the person, the category and when it expires
(``UNSUBSCRIBE_TOKEN_TTL_DAYS`` after the email was sent), signed with HMAC-SHA256, so a link
can only ever unsubscribe its own recipient from its own category, and only for a while.

Verification takes the current secret and the previous one (``UNSUBSCRIBE_SECRET``,
``UNSUBSCRIBE_SECRET_PREVIOUS``): a rotation keeps every link already sent working until the
previous secret is removed, which the operator does once the links it signed have expired.

Links sent before tokens carried an expiry (three fields, MAC over ``unsubscribe.``) are still
accepted, for as long as the secret that signed them is current or previous: the first
rotation after the upgrade that drops that secret retires them (docs/operations-rotation.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: What each format's MAC covers before the body, so one format can never pass as the other.
_V2 = b"unsubscribe.v2."
_LEGACY = b"unsubscribe."


class BadToken(ValueError):
    pass


class ExpiredToken(BadToken):
    pass


@dataclass(frozen=True)
class UnsubscribeGrant:
    tenant_id: str
    employee_id: str
    category: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, domain: bytes, body: bytes) -> bytes:
    return hmac.new(secret.encode(), domain + body, hashlib.sha256).digest()


def sign_unsubscribe(secret: str, grant: UnsubscribeGrant, *, expires_at: datetime) -> str:
    body = json.dumps(
        [grant.tenant_id, grant.employee_id, grant.category, int(expires_at.timestamp())],
        separators=(",", ":"),
    ).encode()
    return f"{_b64(body)}.{_b64(_mac(secret, _V2, body))}"


def verify_unsubscribe(secrets: Sequence[str], token: str, *, now: datetime) -> UnsubscribeGrant:
    """The grant of a token signed by any of ``secrets``; ``ExpiredToken`` once it expired,
    ``BadToken`` for anything else that is not a token of ours."""
    try:
        body_part, mac_part = token.split(".", 1)
        body = _unb64(body_part)
        mac = _unb64(mac_part)
    except (ValueError, TypeError) as exc:
        raise BadToken("malformed token") from exc
    for secret in secrets:
        if hmac.compare_digest(mac, _mac(secret, _V2, body)):
            fields = _fields(body, 4)
            if now.timestamp() >= fields[3]:
                raise ExpiredToken("expired")
            return UnsubscribeGrant(str(fields[0]), str(fields[1]), str(fields[2]))
        if hmac.compare_digest(mac, _mac(secret, _LEGACY, body)):
            fields = _fields(body, 3)
            return UnsubscribeGrant(str(fields[0]), str(fields[1]), str(fields[2]))
    raise BadToken("bad signature")


def _fields(body: bytes, count: int) -> list[Any]:
    try:
        fields = json.loads(body)
    except ValueError as exc:
        raise BadToken("malformed token") from exc
    if not isinstance(fields, list) or len(fields) != count:
        raise BadToken("malformed token")
    if count == 4 and not isinstance(fields[3], int):
        raise BadToken("malformed token")
    return fields
