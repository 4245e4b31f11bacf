"""Per-person data keys (crypto-shredding): seal a person's name and address on events.

* A **data key** is 32 random bytes per person, made by the people service.
* It travels wrapped by the **key-encryption key** (``DATA_KEY_ENCRYPTION_KEY``, 32 bytes, the
  same in every service): ``rkw1.<base64url(nonce ‖ AES-256-GCM(kek, data key))>``.
* A personal value is sealed with the person's data key:
  ``rsk1.<key_id>.<base64url(nonce ‖ AES-256-GCM(data key, value))>``. The associated data binds
  the value to its tenant, person and field, so a sealed value copied into another person's or
  another field's place does not open.

Destroying every copy of a person's data key makes every sealed value of theirs unreadable,
wherever it was retained (a topic's log, a backup, an integrator's copy of the records).
"""

from __future__ import annotations

import base64
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SEALED_PREFIX = "rsk1."
WRAPPED_PREFIX = "rkw1."
_NONCE = 12


class InvalidKey(ValueError):
    pass


class Unreadable(ValueError):
    """A sealed value that does not open with the key given (wrong key, field or person)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_kek(text: str) -> bytes:
    """The key-encryption key from its setting (base64url or base64 of 32 bytes)."""
    try:
        key = _unb64(text.strip().replace("+", "-").replace("/", "_"))
    except (ValueError, TypeError) as exc:
        raise InvalidKey("not base64: set 32 random bytes, base64-encoded") from exc
    if len(key) != 32:
        raise InvalidKey(f"must be 32 bytes (256 bits), base64-encoded; got {len(key)} bytes")
    return key


def new_data_key() -> bytes:
    return secrets.token_bytes(32)


def new_key_id() -> str:
    return f"k-{secrets.token_hex(8)}"


def _aad(*parts: str) -> bytes:
    return "\x1f".join(parts).encode()


def wrap(kek: bytes, data_key: bytes, *, tenant_id: str, employee_id: str, key_id: str) -> str:
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(kek).encrypt(nonce, data_key, _aad("key", tenant_id, employee_id, key_id))
    return WRAPPED_PREFIX + _b64(nonce + sealed)


def unwrap(kek: bytes, wrapped: str, *, tenant_id: str, employee_id: str, key_id: str) -> bytes:
    if not wrapped.startswith(WRAPPED_PREFIX):
        raise Unreadable("not a wrapped key")
    raw = _unb64(wrapped[len(WRAPPED_PREFIX) :])
    try:
        return AESGCM(kek).decrypt(
            raw[:_NONCE], raw[_NONCE:], _aad("key", tenant_id, employee_id, key_id)
        )
    except InvalidTag as exc:
        raise Unreadable("the key does not unwrap with this key-encryption key") from exc


def seal(
    data_key: bytes, value: str, *, key_id: str, tenant_id: str, employee_id: str, field: str
) -> str:
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(data_key).encrypt(
        nonce, value.encode(), _aad("value", tenant_id, employee_id, field)
    )
    return f"{SEALED_PREFIX}{key_id}.{_b64(nonce + sealed)}"


def is_sealed(value: str | None) -> bool:
    return value is not None and value.startswith(SEALED_PREFIX)


def key_id_of(sealed: str) -> str:
    return sealed[len(SEALED_PREFIX) :].split(".", 1)[0]


def unseal(data_key: bytes, sealed: str, *, tenant_id: str, employee_id: str, field: str) -> str:
    if not is_sealed(sealed):
        raise Unreadable("not a sealed value")
    _, body = sealed[len(SEALED_PREFIX) :].split(".", 1)
    raw = _unb64(body)
    try:
        plain = AESGCM(data_key).decrypt(
            raw[:_NONCE], raw[_NONCE:], _aad("value", tenant_id, employee_id, field)
        )
    except InvalidTag as exc:
        raise Unreadable("the value does not open with this key") from exc
    return plain.decode()
