"""Bearer JWTs with ``sub``, ``tenant`` and ``roles`` claims (RFC 7519, RFC 6750).

Development signs with a shared HS256 secret; production verifies against the identity
provider's JWKS. Either way verification takes a key set, so keys rotate without an outage:
HS256 keys carry ids (``JWT_SECRETS``), a token's ``kid`` header picks one and a token without
``kid`` is tried against each; the JWKS client picks the identity provider's key by ``kid``.
Every query downstream is scoped by the principal's tenant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import jwt


class Role(StrEnum):
    EMPLOYEE = "employee"
    MANAGER = "manager"
    HR_ADMIN = "hr_admin"
    EXECUTIVE = "executive"
    INTEGRATION = "integration"


@dataclass(frozen=True)
class Principal:
    subject: str
    tenant: str
    roles: frozenset[str]

    def has(self, *roles: Role | str) -> bool:
        return any(str(r) in self.roles for r in roles)


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class HmacKey:
    """One HS256 key: ``kid`` names it in a token's header (``None``: ``JWT_SECRET``, no id)."""

    kid: str | None
    secret: str


def issue_token(
    secret: str | HmacKey,
    *,
    tenant: str,
    subject: str,
    roles: list[str],
    now: datetime,
    ttl: timedelta = timedelta(hours=12),
) -> str:
    """A development token signed with the dev secret (or a key of ``JWT_SECRETS``, whose id
    goes in the ``kid`` header)."""
    key = secret if isinstance(secret, HmacKey) else HmacKey(None, secret)
    claims = {
        "sub": subject,
        "tenant": tenant,
        "roles": sorted(set(roles)),
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    headers = {"kid": key.kid} if key.kid else None
    return jwt.encode(claims, key.secret, algorithm="HS256", headers=headers)


#: Clock skew tolerated between the token's issuer and this process when checking ``exp``,
#: ``nbf`` and ``iat`` (RFC 7519 §4.1.4: "some small leeway, usually no more than a few minutes").
LEEWAY = timedelta(seconds=30)


class Authenticator:
    def __init__(
        self,
        secret: str | Sequence[HmacKey],
        *,
        jwks_url: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
    ) -> None:
        self.keys = [HmacKey(None, secret)] if isinstance(secret, str) else list(secret)
        self.audience = audience
        self.issuer = issuer
        self._jwks = jwt.PyJWKClient(jwks_url) if jwks_url else None

    def decode(self, token: str) -> Principal:
        options: Any = {
            "require": ["sub", "exp"],
            "verify_aud": self.audience is not None,
        }
        try:
            if self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token).key
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=["RS256", "ES256"],
                    leeway=LEEWAY,
                    audience=self.audience,
                    issuer=self.issuer,
                    options=options,
                )
            else:
                claims = self._decode_hs256(token, options)
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        tenant = claims.get("tenant")
        roles = claims.get("roles", [])
        if not isinstance(tenant, str) or not tenant:
            raise InvalidToken("token has no tenant claim")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidToken("roles claim must be a list of strings")
        return Principal(subject=str(claims["sub"]), tenant=tenant, roles=frozenset(roles))

    def _decode_hs256(self, token: str, options: Any) -> dict[str, Any]:
        """The token's ``kid`` picks the key (keys without an id are tried too); a token
        without ``kid`` is tried against each key, current first."""
        kid = jwt.get_unverified_header(token).get("kid")
        keys = [k for k in self.keys if kid is None or k.kid in (kid, None)]
        if not keys:
            raise InvalidToken("the token's key id (kid) is not one of this service's keys")
        for key in keys[:-1]:
            try:
                return self._decode_with(token, key.secret, options)
            except jwt.InvalidSignatureError:
                continue  # signed with another key of the set
        return self._decode_with(token, keys[-1].secret, options)

    def _decode_with(self, token: str, secret: str, options: Any) -> dict[str, Any]:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            leeway=LEEWAY,
            audience=self.audience,
            issuer=self.issuer,
            options=options,
        )
        return claims
