"""Settings of the notifications service (unprefixed environment variables, like every service)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator

from rhythm_shared.kit.settings import ServiceSettings

#: Signs unsubscribe links in development only; refused elsewhere (see below).
DEV_UNSUBSCRIBE_SECRET = "rhythm-dev-unsubscribe-secret-change-me-0123456789"  # noqa: S105

#: Push services of the browsers in use (Chrome/Edge/Opera via FCM, Firefox, Windows, Safari).
KNOWN_PUSH_SERVICES = (
    "fcm.googleapis.com",
    "android.googleapis.com",
    "updates.push.services.mozilla.com",
    "*.push.services.mozilla.com",
    "*.notify.windows.com",
    "web.push.apple.com",
)


class Settings(ServiceSettings):
    service_name: str = "notifications"
    http_port: int = 8003

    # --- email (SMTP) ---
    smtp_host: str = Field("127.0.0.1", description="SMTP server host.")
    smtp_port: int = Field(1025, description="SMTP server port.")
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        "none", description="none, STARTTLS after connecting, or implicit TLS (SMTPS)."
    )
    smtp_username: str | None = Field(None, description="SMTP AUTH user, if the server wants one.")
    smtp_password: SecretStr | None = Field(None, description="SMTP AUTH password.")
    smtp_timeout_s: float = Field(30.0, gt=0, description="SMTP command timeout.")
    smtp_connections: int = Field(8, ge=1, le=64, description="Parallel SMTP sessions.")
    email_from: str = Field(
        "Rhythm <rhythm@localhost.localdomain>", description="From header of every email."
    )
    public_base_url: str = Field(
        "http://127.0.0.1:8003",
        description="Base URL of this service, for unsubscribe links (https in production).",
    )
    app_base_url: str | None = Field(
        None,
        description="Base URL of the app people use, for the links in every message (a tenant "
        "may override it); without it, messages carry no link.",
    )
    unsubscribe_secret: SecretStr = Field(
        SecretStr(DEV_UNSUBSCRIBE_SECRET), description="HMAC key of one-click unsubscribe tokens."
    )
    unsubscribe_secret_previous: SecretStr | None = Field(
        None,
        description="The unsubscribe secret before a rotation: links it signed keep working "
        "until it is removed.",
    )
    unsubscribe_token_ttl_days: float = Field(
        60, gt=0, le=3650, description="Days an unsubscribe link works after its email was sent."
    )

    # --- web push (VAPID, RFC 8292) ---
    vapid_private_key: SecretStr | None = Field(
        None, description="VAPID private key (base64url raw key or PEM); push is off without it."
    )
    vapid_subject: str = Field(
        "mailto:rhythm@localhost.localdomain", description="VAPID `sub` claim (mailto: or URL)."
    )
    push_ttl_s: int = Field(24 * 3600, ge=0, description="How long a push service keeps a message.")
    push_timeout_s: float = Field(10.0, gt=0, description="Push request timeout.")

    # --- outbound webhooks (Standard Webhooks) ---
    webhook_timeout_s: float = Field(10.0, gt=0, description="Webhook request timeout.")
    webhook_max_attempts: int = Field(8, ge=1, description="Attempts before a webhook fails.")
    webhook_retry_base_s: float = Field(5.0, gt=0, description="First webhook retry delay.")

    # --- chat channels (Slack, Teams incoming webhooks; configured per tenant) ---
    chat_timeout_s: float = Field(10.0, gt=0, description="Chat webhook request timeout.")

    # --- outbound requests (webhooks, Web Push and chat; see adapters/outbound.py) ---
    outbound_allow_private: bool = Field(
        False,
        description="Let webhooks, pushes and chat posts reach loopback and private addresses "
        "(local sinks in development and tests; refused in production).",
    )
    outbound_max_response_bytes: int = Field(
        64 * 1024, ge=0, description="Bytes of an endpoint's answer read at most."
    )
    outbound_per_endpoint: int = Field(
        4, ge=1, description="Requests in flight to one endpoint (origin) at a time."
    )
    outbound_concurrency: int = Field(
        64, ge=1, description="Webhook requests in flight per process, over all endpoints."
    )
    push_services: list[str] = Field(
        list(KNOWN_PUSH_SERVICES),
        description="Hosts Web Push endpoints may be at in production ('*.' for subdomains).",
    )

    # --- delivery ---
    delivery_max_attempts: int = Field(5, ge=1, description="Attempts before a delivery fails.")
    delivery_retry_base_s: float = Field(30.0, gt=0, description="First retry delay (doubles).")
    delivery_retry_max_s: float = Field(3600.0, gt=0, description="Longest retry delay.")
    delivery_lease_s: float = Field(
        120.0, gt=0, description="How long a claimed delivery is owned before it is recovered."
    )
    dispatch_batch_size: int = Field(200, ge=1, description="Deliveries claimed per round.")
    dispatch_interval_s: float = Field(0.5, gt=0, description="Dispatcher poll when idle.")
    digest_interval_s: float = Field(30.0, gt=0, description="Digest job poll interval.")
    delivery_max_recoveries: int = Field(
        3, ge=0, description="Lease expiries a delivery survives before it fails."
    )
    notification_max_age_hours: float = Field(
        96,
        gt=0,
        description="A notification whose cause is older than this is suppressed (expired), "
        "never sent late (a replay or an offset reset re-reads old events).",
    )
    history_keep_days: float = Field(
        180, gt=0, description="Days finished deliveries and sent digest items are kept."
    )

    @model_validator(mode="after")
    def _refuse_dev_unsubscribe_secret(self) -> Settings:
        if self.environment == "development":
            return self
        for name, secret in (
            ("UNSUBSCRIBE_SECRET", self.unsubscribe_secret),
            ("UNSUBSCRIBE_SECRET_PREVIOUS", self.unsubscribe_secret_previous),
        ):
            if secret is not None and secret.get_secret_value() == DEV_UNSUBSCRIBE_SECRET:
                raise ValueError(
                    f"{name}: the development secret is refused with "
                    f"ENVIRONMENT={self.environment} (anyone could forge unsubscribe links); "
                    "set it to a random secret of at least 32 bytes (`openssl rand -hex 32`)"
                )
        return self

    @property
    def unsubscribe_secrets(self) -> list[str]:
        """The secrets unsubscribe tokens verify against; the first signs new ones."""
        secrets = [self.unsubscribe_secret.get_secret_value()]
        if self.unsubscribe_secret_previous is not None:
            secrets.append(self.unsubscribe_secret_previous.get_secret_value())
        return secrets

    @model_validator(mode="after")
    def _check_base_urls(self) -> Settings:
        for name, url in (
            ("PUBLIC_BASE_URL", self.public_base_url),
            ("APP_BASE_URL", self.app_base_url),
        ):
            if url is None:
                continue
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{name}: {url!r} is not an absolute http(s) URL")
            if parts.query or parts.fragment:
                raise ValueError(f"{name}: a base URL takes no query or fragment ({url!r})")
            if self.environment == "production" and parts.scheme != "https":
                why = (
                    "one-click unsubscribe (RFC 8058) needs an https URI"
                    if name == "PUBLIC_BASE_URL"
                    else "links in messages must not send people to plain http"
                )
                raise ValueError(
                    f"{name}: {url!r} is refused with ENVIRONMENT=production ({why}); "
                    "set it to the https:// address people reach"
                )
        return self

    @model_validator(mode="after")
    def _refuse_private_outbound_in_production(self) -> Settings:
        if self.environment == "production" and self.outbound_allow_private:
            raise ValueError(
                "OUTBOUND_ALLOW_PRIVATE: webhooks and pushes to private addresses are refused "
                "with ENVIRONMENT=production"
            )
        return self
