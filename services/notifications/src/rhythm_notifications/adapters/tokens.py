"""Signed one-click unsubscribe tokens (RFC 8058 needs a URL that works without a login).

The token names the tenant, the person and the category, signed with HMAC-SHA256, so a link can
only ever unsubscribe its own recipient from its own category. It does not expire: an old
email's unsubscribe link must keep working.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass


class BadToken(ValueError):
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


def sign_unsubscribe(secret: str, grant: UnsubscribeGrant) -> str:
    body = json.dumps(
        [grant.tenant_id, grant.employee_id, grant.category], separators=(",", ":")
    ).encode()
    mac = hmac.new(secret.encode(), b"unsubscribe." + body, hashlib.sha256).digest()
    return f"{_b64(body)}.{_b64(mac)}"


def verify_unsubscribe(secret: str, token: str) -> UnsubscribeGrant:
    try:
        body_part, mac_part = token.split(".", 1)
        body = _unb64(body_part)
        mac = _unb64(mac_part)
    except (ValueError, TypeError) as exc:
        raise BadToken("malformed token") from exc
    expected = hmac.new(secret.encode(), b"unsubscribe." + body, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise BadToken("bad signature")
    try:
        tenant, employee, category = json.loads(body)
    except (ValueError, TypeError) as exc:
        raise BadToken("malformed token") from exc
    return UnsubscribeGrant(str(tenant), str(employee), str(category))
