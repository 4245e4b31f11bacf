"""Bearer-token keys rotate without an outage: a key set verifies tokens of its current and
previous keys (HS256 ``JWT_SECRETS`` with ids, the identity provider's JWKS by ``kid``), while
``JWT_SECRET`` keeps working as a single key and the fail-closed rules hold for every key."""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from rhythm_shared.kit.auth import Authenticator, HmacKey, InvalidToken, issue_token
from rhythm_shared.kit.settings import DEV_JWT_SECRET, ServiceSettings, explain

NEW, OLD = secrets.token_hex(32), secrets.token_hex(32)
STRONG_KEK = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
OURS = ("ENVIRONMENT", "JWT_SECRET", "JWT_SECRETS", "JWT_JWKS_URL", "JWT_AUDIENCE", "JWT_ISSUER")


@pytest.fixture(autouse=True)
def _no_settings_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OURS:
        monkeypatch.delenv(name, raising=False)
    # A key-encryption key of its own: these tests are about the token keys.
    monkeypatch.setenv("DATA_KEY_ENCRYPTION_KEY", STRONG_KEK)


def token(key: str | HmacKey, subject: str = "e-1") -> str:
    return issue_token(key, tenant="t", subject=subject, roles=["employee"], now=datetime.now(UTC))


def refusal(**values: Any) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        ServiceSettings(**values)
    return explain(caught.value)


def test_a_key_set_verifies_tokens_of_the_current_and_the_previous_key() -> None:
    settings = ServiceSettings(environment="production", jwt_secrets=f"k2:{NEW},k1:{OLD}")
    assert settings.jwt_keys == [HmacKey("k2", NEW), HmacKey("k1", OLD)]
    authenticator = Authenticator(settings.jwt_keys)
    current = token(settings.jwt_keys[0], "current")
    assert jwt.get_unverified_header(current)["kid"] == "k2"
    assert authenticator.decode(current).subject == "current"
    assert authenticator.decode(token(HmacKey("k1", OLD), "previous")).subject == "previous"
    # Tokens signed before the key set existed (JWT_SECRET, no kid) are tried against each key.
    assert authenticator.decode(token(OLD, "no kid")).subject == "no kid"


def test_once_the_previous_key_is_dropped_its_tokens_are_refused() -> None:
    authenticator = Authenticator(ServiceSettings(jwt_secrets=f"k2:{NEW}").jwt_keys)
    with pytest.raises(InvalidToken, match=r"key id \(kid\) is not one of this service's keys"):
        authenticator.decode(token(HmacKey("k1", OLD)))
    with pytest.raises(InvalidToken, match="Signature verification failed"):
        authenticator.decode(token(OLD))


def test_the_kid_picks_the_key_and_an_unknown_kid_is_refused() -> None:
    authenticator = Authenticator([HmacKey("k2", NEW), HmacKey("k1", OLD)])
    with pytest.raises(InvalidToken, match="Signature verification failed"):
        authenticator.decode(token(HmacKey("k2", OLD)))  # k2's id, k1's secret: not tried
    with pytest.raises(InvalidToken, match=r"key id \(kid\) is not one of this service's keys"):
        authenticator.decode(token(HmacKey("k9", NEW)))


def test_an_expired_token_of_the_previous_key_is_refused_as_expired() -> None:
    authenticator = Authenticator([HmacKey("k2", NEW), HmacKey("k1", OLD)])
    expired = issue_token(
        HmacKey("k1", OLD), tenant="t", subject="e-1", roles=[],
        now=datetime.now(UTC) - timedelta(hours=2), ttl=timedelta(hours=1),
    )  # fmt: skip
    with pytest.raises(InvalidToken, match="expired"):
        authenticator.decode(expired)


def test_jwt_secret_alone_is_one_key_without_an_id() -> None:
    settings = ServiceSettings(jwt_secret=NEW)
    assert settings.jwt_keys == [HmacKey(None, NEW)]
    authenticator = Authenticator(settings.jwt_keys)
    assert authenticator.decode(token(NEW)).subject == "e-1"
    # A token with an id is still checked against the key that has none.
    assert authenticator.decode(token(HmacKey("any", NEW))).subject == "e-1"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (f"k1{NEW}", "JWT_SECRETS: entry 1 is not `kid:secret` (entries are separated by commas)"),
        (
            f"k1:{NEW},",
            "JWT_SECRETS: entry 2 is not `kid:secret` (entries are separated by commas)",
        ),
        (f"k 1:{NEW}", "JWT_SECRETS: entry 1: a key id is 1-64 letters, digits, '.', '_' or '-'"),
        (f"k1:{NEW},k1:{OLD}", "JWT_SECRETS: key id 'k1' appears twice"),
        (
            f"k1:{NEW},k2:{'x' * 31}",
            "JWT_SECRETS: key 'k2' has 31 bytes, too short to sign tokens; use a random secret "
            "of at least 32 bytes (`openssl rand -hex 32`)",
        ),
    ],
)
def test_a_malformed_or_weak_key_set_is_refused_by_name(value: str, message: str) -> None:
    assert refusal(environment="development", jwt_secrets=value) == [message]


def test_the_development_secret_is_refused_in_a_key_set_outside_development() -> None:
    assert refusal(environment="production", jwt_secrets=f"k1:{NEW},dev:{DEV_JWT_SECRET}") == [
        "JWT_SECRETS: key 'dev' is the development secret, refused with ENVIRONMENT=production; "
        "use a random secret of at least 32 bytes (`openssl rand -hex 32`)"
    ]
    settings = ServiceSettings(environment="development", jwt_secrets=f"dev:{DEV_JWT_SECRET}")
    assert settings.jwt_keys == [HmacKey("dev", DEV_JWT_SECRET)]


def test_jwt_secret_and_jwt_secrets_together_are_refused() -> None:
    assert refusal(jwt_secret=OLD, jwt_secrets=f"k1:{NEW}") == [
        "JWT_SECRETS: set JWT_SECRET (one key) or JWT_SECRETS (a key set), not both"
    ]


def test_rhythm_token_signs_with_the_first_key_of_the_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import typer
    from typer.testing import CliRunner

    from rhythm_cli import serve

    app = typer.Typer()
    app.command("token")(serve.token)  # as rhythm_cli.main wires it
    app.command("serve")(serve.serve)
    args = ["token", "--tenant", "t", "--subject", "e-1", "--role", "employee"]
    monkeypatch.setenv("JWT_SECRETS", f"k2:{NEW},k1:{OLD}")
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    printed = done.stdout.strip()
    assert jwt.get_unverified_header(printed)["kid"] == "k2"
    assert Authenticator([HmacKey("k2", NEW)]).decode(printed).subject == "e-1"

    monkeypatch.setenv("JWT_SECRETS", "k2:short")
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2
    assert "JWT_SECRETS: key 'k2' has 5 bytes, too short" in refused.stderr
    assert refused.exception is None or isinstance(refused.exception, SystemExit)


# --- the identity provider's key set (JWKS, RS256/ES256), fetched over real HTTP -------------


class Jwks:
    """A JWKS endpoint on 127.0.0.1 serving whichever public keys the test publishes."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"keys": jwks.keys}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"

    def publish(self, kid: str, key: Any, algorithm: str) -> None:
        jwk = json.loads(jwt.get_algorithm_by_name(algorithm).to_jwk(key.public_key()))
        self.keys.append({**jwk, "kid": kid, "alg": algorithm, "use": "sig"})


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    served = Jwks()
    yield served
    served.server.shutdown()
    served.server.server_close()


def idp_token(kid: str, key: Any, algorithm: str) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": "e-1", "tenant": "t", "roles": ["employee"], "aud": "rhythm",
        "iss": "https://login.example.com/", "exp": int((now + timedelta(hours=1)).timestamp()),
    }  # fmt: skip
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


def test_a_jwks_with_two_keys_verifies_tokens_of_both(jwks: Jwks) -> None:
    current, previous = (
        ec.generate_private_key(ec.SECP256R1()),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )
    jwks.publish("2026-12", current, "ES256")
    jwks.publish("2026-06", previous, "RS256")
    authenticator = Authenticator(
        [], jwks_url=jwks.url, audience="rhythm", issuer="https://login.example.com/"
    )
    assert authenticator.decode(idp_token("2026-12", current, "ES256")).subject == "e-1"
    assert authenticator.decode(idp_token("2026-06", previous, "RS256")).subject == "e-1"
    # A key the set does not hold, or a known kid over another key, is refused.
    stranger = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidToken, match="Unable to find a signing key"):
        authenticator.decode(idp_token("2025-01", stranger, "ES256"))
    with pytest.raises(InvalidToken, match="Signature verification failed"):
        authenticator.decode(idp_token("2026-12", stranger, "ES256"))
