"""The process's key-encryption key (one per deployment, ``DATA_KEY_ENCRYPTION_KEY``).

The composition root loads it when the service starts (:func:`use_settings`), so every route's
unit of work seals with it (:class:`rhythm_people.adapters.repository.SqlKeyStore`).
"""

from __future__ import annotations

from rhythm_shared.kit import crypto
from rhythm_shared.kit.settings import ServiceSettings


class _Keyring:
    kek: bytes | None = None


_KEYRING = _Keyring()


def use_settings(settings: ServiceSettings) -> None:
    """Take the key-encryption key from the service's settings."""
    _KEYRING.kek = crypto.load_kek(settings.data_key_encryption_key.get_secret_value())


def kek() -> bytes:
    if _KEYRING.kek is None:
        raise RuntimeError("no key-encryption key: the people service was not started")
    return _KEYRING.kek
