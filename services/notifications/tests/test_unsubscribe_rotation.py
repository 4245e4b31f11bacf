"""Unsubscribe links expire and survive a secret rotation: a link verifies against the current
and the previous secret (``UNSUBSCRIBE_SECRET``, ``UNSUBSCRIBE_SECRET_PREVIOUS``) until it
expires (``UNSUBSCRIBE_TOKEN_TTL_DAYS``); links sent before tokens expired keep working while
their secret is current or previous. An expired or tampered link gets a clear answer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from notifications_harness import Service, SmtpSink, StartService, employee
from pydantic import ValidationError
from test_preferences import due

from rhythm_notifications.adapters.tokens import (
    BadToken,
    ExpiredToken,
    UnsubscribeGrant,
    sign_unsubscribe,
    verify_unsubscribe,
)
from rhythm_notifications.settings import DEV_UNSUBSCRIBE_SECRET, Settings
from rhythm_shared.kit.settings import explain

OLD, NEW = secrets.token_hex(32), secrets.token_hex(32)
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GRANT = UnsubscribeGrant("acme", "e-1", "checkin_due")
#: What a browser asks for when a person follows a link.
BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def legacy_token(secret: str, tenant: str, employee_id: str, category: str) -> str:
    """A link as emails carried it before tokens expired: three fields, no expiry."""
    body = json.dumps([tenant, employee_id, category], separators=(",", ":")).encode()
    mac = hmac.new(secret.encode(), b"unsubscribe." + body, hashlib.sha256).digest()
    return f"{b64(body)}.{b64(mac)}"


def test_a_token_verifies_with_the_current_or_the_previous_secret_until_it_expires() -> None:
    token = sign_unsubscribe(OLD, GRANT, expires_at=NOW + timedelta(days=60))
    assert verify_unsubscribe([NEW, OLD], token, now=NOW) == GRANT
    assert verify_unsubscribe([NEW, OLD], token, now=NOW + timedelta(days=59)) == GRANT
    with pytest.raises(ExpiredToken):
        verify_unsubscribe([NEW, OLD], token, now=NOW + timedelta(days=60))
    with pytest.raises(BadToken, match="bad signature"):
        verify_unsubscribe([NEW], token, now=NOW)  # the previous secret was removed


def test_a_token_whose_expiry_was_moved_is_refused() -> None:
    token = sign_unsubscribe(NEW, GRANT, expires_at=NOW + timedelta(days=60))
    body, mac = token.split(".")
    fields = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    fields[3] += 365 * 86400
    moved = b64(json.dumps(fields, separators=(",", ":")).encode())
    with pytest.raises(BadToken, match="bad signature"):
        verify_unsubscribe([NEW], f"{moved}.{mac}", now=NOW)


def test_a_link_sent_before_tokens_expired_works_while_its_secret_is_kept() -> None:
    old_link = legacy_token(OLD, "acme", "e-1", "checkin_due")
    assert verify_unsubscribe([OLD], old_link, now=NOW + timedelta(days=3650)) == GRANT
    assert verify_unsubscribe([NEW, OLD], old_link, now=NOW) == GRANT
    with pytest.raises(BadToken, match="bad signature"):
        verify_unsubscribe([NEW], old_link, now=NOW)


def test_one_format_never_passes_as_the_other() -> None:
    # A legacy MAC over a four-field body, or a current MAC over three fields: not a token.
    body = json.dumps(["acme", "e-1", "checkin_due", 0], separators=(",", ":")).encode()
    mac = hmac.new(NEW.encode(), b"unsubscribe." + body, hashlib.sha256).digest()
    with pytest.raises(BadToken, match="malformed"):
        verify_unsubscribe([NEW], f"{b64(body)}.{b64(mac)}", now=NOW)
    short = json.dumps(["acme", "e-1", "checkin_due"], separators=(",", ":")).encode()
    mac = hmac.new(NEW.encode(), b"unsubscribe.v2." + short, hashlib.sha256).digest()
    with pytest.raises(BadToken, match="malformed"):
        verify_unsubscribe([NEW], f"{b64(short)}.{b64(mac)}", now=NOW)


#: Production takes only an https PUBLIC_BASE_URL (RFC 8058).
HTTPS_BASE = "https://rhythm.example.com/notifications"


@pytest.mark.parametrize("environment", ["test", "production"])
def test_the_development_secret_is_refused_as_the_previous_one_outside_development(
    environment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_KEY_ENCRYPTION_KEY", b64(secrets.token_bytes(32)))
    with pytest.raises(ValidationError) as caught:
        Settings(
            environment=environment,
            jwt_secret=NEW,
            unsubscribe_secret=NEW,
            unsubscribe_secret_previous=DEV_UNSUBSCRIBE_SECRET,
            public_base_url=HTTPS_BASE,
        )
    assert explain(caught.value) == [
        f"UNSUBSCRIBE_SECRET_PREVIOUS: the development secret is refused with "
        f"ENVIRONMENT={environment} (anyone could forge unsubscribe links); set it to a random "
        "secret of at least 32 bytes (`openssl rand -hex 32`)"
    ]
    settings = Settings(
        environment=environment, jwt_secret=NEW, unsubscribe_secret=NEW,
        unsubscribe_secret_previous=OLD, public_base_url=HTTPS_BASE,
    )  # fmt: skip
    assert settings.unsubscribe_secrets == [NEW, OLD]


async def one_click(svc: Service, token: str) -> Any:
    return await svc.client.post(
        "/v1/unsubscribe",
        params={"token": token},
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )


async def unsubscribed(svc: Service) -> list[str]:
    prefs = await svc.client.get("/v1/preferences", headers=svc.token("e-1"))
    result: list[str] = prefs.json()["unsubscribed"]
    return result


@pytest.mark.kafka
async def test_links_already_sent_survive_a_rotation_and_expire(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    async with start_service(settings={"unsubscribe_secret": OLD}) as svc:
        await svc.add_people(employee(tenant, "m-1"), employee(tenant, "e-1", manager_id="m-1"))
        await svc.publish([due(tenant)])
        await svc.wait_deliveries(2)
        await svc.dispatch()
        [mail] = smtp_sink.handler.to("e-1@acme.example.com")
        url = urlparse(mail.message["List-Unsubscribe"].strip("<>"))
        [sent] = parse_qs(url.query)["token"]
        sent_at = svc.clock.now()
    old_link = legacy_token(OLD, tenant, "e-1", "checkin_due")

    rotated = {"unsubscribe_secret": NEW, "unsubscribe_secret_previous": OLD}
    async with start_service(consumers=False, settings=rotated) as svc:
        page = await svc.client.get("/v1/unsubscribe", params={"token": sent})
        assert page.status_code == 200
        assert 'name="List-Unsubscribe" value="One-Click"' in page.text
        assert (await svc.client.get("/v1/unsubscribe", params={"token": old_link})).is_success
        done = await one_click(svc, sent)  # RFC 8058 one-click, a link signed before rotating
        assert (done.status_code, done.text) == (200, "Unsubscribed from checkin_due emails.\n")
        assert await unsubscribed(svc) == ["checkin_due"]

        # UNSUBSCRIBE_TOKEN_TTL_DAYS (60) after the email was sent, its link has expired.
        svc.clock.travel_to(sent_at + timedelta(days=60))
        expired = await one_click(svc, sent)
        assert expired.status_code == 410
        assert expired.json()["detail"].startswith("This unsubscribe link has expired.")
        page = await svc.client.get("/v1/unsubscribe", params={"token": sent}, headers=BROWSER)
        assert page.status_code == 410
        assert "<p>This unsubscribe link has expired." in page.text
        assert page.headers["content-type"].startswith("text/html")

    async with start_service(consumers=False, settings={"unsubscribe_secret": NEW}) as svc:
        # The previous secret removed: what it signed, old format or new, is refused.
        fresh = sign_unsubscribe(
            OLD, UnsubscribeGrant(tenant, "e-1", "checkin_due"),
            expires_at=svc.clock.now() + timedelta(days=30),
        )  # fmt: skip
        for token in (fresh, old_link, sent[:-4] + "AAAA", "garbage"):
            refused = await one_click(svc, token)
            assert refused.status_code == 404
            assert refused.json()["detail"].startswith("This unsubscribe link is not valid")
        page = await svc.client.get("/v1/unsubscribe", params={"token": old_link}, headers=BROWSER)
        assert page.status_code == 404
        assert "<p>This unsubscribe link is not valid" in page.text
        api = await svc.client.get("/v1/unsubscribe", params={"token": old_link})
        assert api.status_code == 404
        assert api.json()["detail"].startswith("This unsubscribe link is not valid")
