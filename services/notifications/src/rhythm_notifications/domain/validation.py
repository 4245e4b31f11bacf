"""What a URL or a key given to the service must look like (errors name the field)."""

from __future__ import annotations

import base64
from urllib.parse import urlparse

from rhythm_shared.kit.errors import InvalidInput


def b64url_len(value: str) -> int:
    try:
        return len(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except ValueError:
        return -1


def check_url(url: str, field_name: str, *, allow_http: bool) -> None:
    parsed = urlparse(url)
    schemes = ("https", "http") if allow_http else ("https",)
    if parsed.scheme not in schemes or not parsed.netloc:
        raise InvalidInput.field(field_name, msg=f"must be an absolute {' or '.join(schemes)} URL")


def check_base_url(url: str, *, allow_http: bool) -> None:
    check_url(url, "app_base_url", allow_http=allow_http)
    parsed = urlparse(url)
    if parsed.query or parsed.fragment:
        raise InvalidInput.field("app_base_url", msg="a base URL takes no query or fragment")


def check_push_keys(p256dh: str, auth: str) -> None:
    # RFC 8291: p256dh is an uncompressed P-256 point (65 bytes), auth a 16-byte secret.
    if b64url_len(p256dh) != 65:
        raise InvalidInput.field("keys", "p256dh", msg="must be a base64url P-256 public key")
    if b64url_len(auth) != 16:
        raise InvalidInput.field("keys", "auth", msg="must be a base64url 16-byte secret")
