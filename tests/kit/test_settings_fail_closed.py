"""Settings fail closed: a service not told otherwise runs as production and refuses to start with
a secret or an identity provider it cannot trust, naming the setting and what to do."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from rhythm_notifications.settings import DEV_UNSUBSCRIBE_SECRET
from rhythm_notifications.settings import Settings as NotificationsSettings
from rhythm_shared.kit.auth import Authenticator, InvalidToken, issue_token
from rhythm_shared.kit.settings import DEV_JWT_SECRET, ServiceSettings, explain

STRONG = secrets.token_hex(32)
STRONG_KEK = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
JWKS: dict[str, Any] = {
    "jwt_jwks_url": "https://login.example.com/.well-known/jwks.json",
    "jwt_audience": "rhythm",
    "jwt_issuer": "https://login.example.com/",
}
#: The variables these tests decide themselves (the suite runs as development).
OURS = ("ENVIRONMENT", "JWT_SECRET", "JWT_JWKS_URL", "JWT_AUDIENCE", "JWT_ISSUER")


@pytest.fixture(autouse=True)
def _no_settings_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*OURS, "UNSUBSCRIBE_SECRET"):
        monkeypatch.delenv(name, raising=False)
    # A key-encryption key of its own: the tests below are about the other settings.
    monkeypatch.setenv("DATA_KEY_ENCRYPTION_KEY", STRONG_KEK)


def refusal(**values: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        ServiceSettings(**values)
    return "\n".join(explain(caught.value))


def test_a_service_not_told_where_it_runs_is_production() -> None:
    assert ServiceSettings(jwt_secret=STRONG).environment == "production"


def test_without_settings_a_service_refuses_to_start() -> None:
    assert refusal().startswith("JWT_SECRET: the development secret is refused")


@pytest.mark.parametrize("environment", ["test", "production"])
def test_the_development_jwt_secret_is_refused_outside_development(environment: str) -> None:
    message = refusal(environment=environment, jwt_secret=DEV_JWT_SECRET)
    assert f"JWT_SECRET: the development secret is refused with ENVIRONMENT={environment}" in (
        message
    )
    assert "openssl rand -hex 32" in message


def test_the_development_jwt_secret_is_accepted_in_development() -> None:
    settings = ServiceSettings(environment="development")
    assert settings.jwt_secret.get_secret_value() == DEV_JWT_SECRET


@pytest.mark.parametrize("environment", ["development", "test", "production"])
def test_a_jwt_secret_shorter_than_32_bytes_is_refused(environment: str) -> None:
    message = refusal(environment=environment, jwt_secret="x" * 31)
    assert message.startswith("JWT_SECRET: 31 bytes is too short to sign tokens")
    assert ServiceSettings(environment=environment, jwt_secret="x" * 32)


def test_a_jwks_url_must_be_https() -> None:
    message = refusal(**{**JWKS, "jwt_jwks_url": "http://login.example.com/jwks.json"})
    assert message == (
        "JWT_JWKS_URL: the keys that verify tokens must come over https; "
        "set it to your identity provider's https:// JWKS URL"
    )


@pytest.mark.parametrize(("setting", "claim"), [("jwt_audience", "aud"), ("jwt_issuer", "iss")])
def test_a_jwks_url_needs_an_audience_and_an_issuer(setting: str, claim: str) -> None:
    message = refusal(**{**JWKS, setting: None})
    assert message.startswith(f"{setting.upper()}: required with JWT_JWKS_URL")
    assert f"`{claim}` claim" in message


def test_an_identity_provider_with_audience_and_issuer_needs_no_jwt_secret() -> None:
    assert ServiceSettings(**JWKS).environment == "production"


@pytest.mark.parametrize("environment", ["test", "production"])
def test_the_development_unsubscribe_secret_is_refused_outside_development(
    environment: str,
) -> None:
    with pytest.raises(ValidationError) as caught:
        NotificationsSettings(environment=environment, jwt_secret=STRONG)
    assert explain(caught.value) == [
        f"UNSUBSCRIBE_SECRET: the development secret is refused with ENVIRONMENT={environment} "
        "(anyone could forge unsubscribe links); set it to a random secret of at least 32 bytes "
        "(`openssl rand -hex 32`)"
    ]
    chosen = NotificationsSettings(
        environment=environment,
        jwt_secret=STRONG,
        unsubscribe_secret=STRONG,
        public_base_url="https://rhythm.example.com/notifications",
    )
    assert chosen.environment == environment


def test_the_development_unsubscribe_secret_is_accepted_in_development() -> None:
    settings = NotificationsSettings(environment="development")
    assert settings.unsubscribe_secret.get_secret_value() == DEV_UNSUBSCRIBE_SECRET


@pytest.mark.parametrize(
    ("setting", "why"),
    [
        ("public_base_url", "one-click unsubscribe (RFC 8058) needs an https URI"),
        ("app_base_url", "links in messages must not send people to plain http"),
    ],
)
def test_a_plain_http_base_url_is_refused_in_production(setting: str, why: str) -> None:
    safe: dict[str, Any] = {
        "jwt_secret": STRONG,
        "unsubscribe_secret": STRONG,
        "public_base_url": "https://rhythm.example.com/notifications",
    }
    with pytest.raises(ValidationError) as caught:
        NotificationsSettings(
            environment="production", **{**safe, setting: "http://rhythm.example.com"}
        )
    assert explain(caught.value) == [
        f"{setting.upper()}: 'http://rhythm.example.com' is refused with ENVIRONMENT=production "
        f"({why}); set it to the https:// address people reach"
    ]
    for environment in ("development", "test"):  # local sinks and laptops speak plain http
        assert NotificationsSettings(
            environment=environment, **{**safe, setting: "http://127.0.0.1:8003"}
        )
    assert NotificationsSettings(environment="production", **{**safe, "app_base_url": None})


def test_a_base_url_must_be_an_absolute_url_without_query() -> None:
    for bad, message in (
        ("rhythm.example.com", "APP_BASE_URL: 'rhythm.example.com' is not an absolute http(s) URL"),
        ("https://rhythm.example.com/?tenant=1", "APP_BASE_URL: a base URL takes no query or "
         "fragment ('https://rhythm.example.com/?tenant=1')"),
    ):  # fmt: skip
        with pytest.raises(ValidationError) as caught:
            NotificationsSettings(environment="development", app_base_url=bad)
        assert explain(caught.value) == [message]


def test_rhythm_serve_refuses_an_http_public_base_url_in_production() -> None:
    env = {k: v for k, v in os.environ.items() if k not in OURS}
    env.update(
        JWT_SECRET=STRONG,
        UNSUBSCRIBE_SECRET=STRONG,
        PUBLIC_BASE_URL="http://rhythm.example.com/notifications",
    )
    rhythm = os.path.join(os.path.dirname(sys.executable), "rhythm")
    done = subprocess.run(
        [rhythm, "serve", "notifications"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[:2] == [
        "rhythm notifications cannot start with these settings:",
        "  PUBLIC_BASE_URL: 'http://rhythm.example.com/notifications' is refused with "
        "ENVIRONMENT=production (one-click unsubscribe (RFC 8058) needs an https URI); set it to "
        "the https:// address people reach",
    ]
    assert "Traceback" not in done.stderr


def test_rhythm_serve_names_the_refused_setting_instead_of_a_traceback() -> None:
    env = {k: v for k, v in os.environ.items() if k not in OURS}
    rhythm = os.path.join(os.path.dirname(sys.executable), "rhythm")
    done = subprocess.run(
        [rhythm, "serve", "goals"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[:2] == [
        "rhythm goals cannot start with these settings:",
        "  JWT_SECRET: the development secret is refused with ENVIRONMENT=production; set "
        "JWT_SECRET to a random secret of at least 32 bytes (`openssl rand -hex 32`), or "
        "JWT_JWKS_URL to your identity provider's JWKS",
    ]
    assert "Traceback" not in done.stderr


def test_rhythm_serve_names_a_setting_that_is_not_json_instead_of_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from rhythm_cli.main import app

    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.setenv("TOPIC_RETENTION_DAYS", "rhythm.goals.v1=30")
    done = CliRunner().invoke(app, ["serve", "goals"])
    assert done.exit_code == 2
    assert done.exception is None or isinstance(done.exception, SystemExit)
    assert "rhythm goals cannot start with these settings: " in done.output
    assert "topic_retention_days" in done.output


def _token_expired(ago: timedelta) -> str:
    now = datetime.now(UTC)
    return issue_token(
        STRONG, tenant="t", subject="e-1", roles=["employee"], now=now - timedelta(hours=1),
        ttl=timedelta(hours=1) - ago,
    )  # fmt: skip


def test_a_token_expired_10_seconds_ago_is_accepted_for_clock_skew() -> None:
    principal = Authenticator(STRONG).decode(_token_expired(timedelta(seconds=10)))
    assert principal.subject == "e-1"


def test_a_token_expired_60_seconds_ago_is_refused() -> None:
    with pytest.raises(InvalidToken, match="expired"):
        Authenticator(STRONG).decode(_token_expired(timedelta(seconds=60)))


@pytest.mark.parametrize("environment", ["test", "production"])
def test_the_development_key_encryption_key_is_refused_outside_development(
    environment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATA_KEY_ENCRYPTION_KEY")
    message = refusal(environment=environment, jwt_secret=STRONG)
    assert "DATA_KEY_ENCRYPTION_KEY: the development key-encryption key is refused" in message


def test_a_key_encryption_key_must_be_32_bytes() -> None:
    short = base64.urlsafe_b64encode(b"x" * 16).decode()
    message = refusal(environment="production", jwt_secret=STRONG, data_key_encryption_key=short)
    assert "DATA_KEY_ENCRYPTION_KEY: must be 32 bytes" in message
