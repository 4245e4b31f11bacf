"""Bearer JWTs with ``sub``, ``tenant`` and ``roles`` claims (RFC 7519, RFC 6750).

Development signs with a shared HS256 secret; production verifies against the identity
provider's JWKS. Every query downstream is scoped by the principal's tenant.
"""

from __future__ import annotations

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


def issue_token(
    secret: str,
    *,
    tenant: str,
    subject: str,
    roles: list[str],
    now: datetime,
    ttl: timedelta = timedelta(hours=12),
) -> str:
    """A development token signed with the dev secret."""
    claims = {
        "sub": subject,
        "tenant": tenant,
        "roles": sorted(set(roles)),
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


#: Clock skew tolerated between the token's issuer and this process when checking ``exp``,
#: ``nbf`` and ``iat`` (RFC 7519 §4.1.4: "some small leeway, usually no more than a few minutes").
LEEWAY = timedelta(seconds=30)


class Authenticator:
    def __init__(
        self,
        secret: str,
        *,
        jwks_url: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
    ) -> None:
        self.secret = secret
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
                claims = jwt.decode(
                    token,
                    self.secret,
                    algorithms=["HS256"],
                    leeway=LEEWAY,
                    audience=self.audience,
                    issuer=self.issuer,
                    options=options,
                )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        tenant = claims.get("tenant")
        roles = claims.get("roles", [])
        if not isinstance(tenant, str) or not tenant:
            raise InvalidToken("token has no tenant claim")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidToken("roles claim must be a list of strings")
        return Principal(subject=str(claims["sub"]), tenant=tenant, roles=frozenset(roles))
