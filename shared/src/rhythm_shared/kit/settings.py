"""Settings every service shares, from the environment (12-factor), validated by pydantic."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rhythm_shared.contracts.topics import DAY_MS, DLQ_PREFIX, TOPICS, TopicSpec
from rhythm_shared.kit.auth import HmacKey

#: Signs development tokens only; refused outside development (see the validator below).
DEV_JWT_SECRET = "rhythm-development-secret-change-me-0123456789"  # noqa: S105
#: Wraps per-person data keys in development only (base64url of 32 bytes; refused elsewhere).
DEV_DATA_KEY_ENCRYPTION_KEY = "cmh5dGhtLWRldmVsb3BtZW50LWtlay0wMDAwMDAwMDA"
#: RFC 7518 §3.2: an HS256 key is at least as long as the hash, 256 bits.
MIN_JWT_SECRET_BYTES = 32


def run_dir() -> Path:
    """Where local state lives (SQLite files, broker data): ``$RHYTHM_HOME/.run`` or ``./.run``."""
    import os

    return Path(os.environ.get("RHYTHM_HOME", ".")).resolve() / ".run"


class KafkaSecuritySettings(BaseSettings):
    """How a Kafka client proves who it is and checks who the broker is: every service, the CLI
    and the tools read these (clients are built by ``rhythm_shared.kit.kafka.client_security``)."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How every Kafka client connects (Kafka's security.protocol)."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism with SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password.")
    kafka_ssl_cafile: str | None = Field(
        None, description="CA bundle that signs the brokers' certificates (SSL, SASL_SSL)."
    )
    kafka_ssl_certfile: str | None = Field(
        None, description="Client certificate (PEM) for mutual TLS."
    )
    kafka_ssl_keyfile: str | None = Field(None, description="Key of the client certificate.")

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> KafkaSecuritySettings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together")
        return self


class ServiceSettings(KafkaSecuritySettings):
    """Settings of one service process. Each service subclasses it with its name and port."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    service_name: str = Field("service", description="Name of the service (fixed per service).")
    # Fail closed: a process that was not told where it runs is production.
    environment: Literal["development", "test", "production"] = Field(
        "production",
        description="development allows the development secrets and the clock endpoint.",
    )
    database_url: str = Field(
        "", description="SQLAlchemy async URL; default: a SQLite file under .run/."
    )
    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    kafka_topic_prefix: str = Field(
        "", description="Prefix for every topic name (isolates environments sharing a cluster)."
    )
    topic_partitions: int = Field(12, ge=1, description="Partitions of topics created at start.")
    topic_replication_factor: int = Field(1, ge=1, description="Replication of created topics.")
    topic_retention_days: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "Days a created topic keeps records, by topic name (JSON object; -1: forever); "
            "topics not named keep the topic map's retention."
        ),
    )
    http_host: str = Field("127.0.0.1", description="Address the HTTP API binds to.")
    http_port: int = Field(8000, description="Port of the HTTP API.")
    http_max_body_bytes: int = Field(
        256 * 1024,
        ge=1024,
        description="Largest request body (bytes) before 413; bulk endpoints state their own.",
    )
    data_key_encryption_key: SecretStr = Field(
        SecretStr(DEV_DATA_KEY_ENCRYPTION_KEY),
        description=(
            "Key-encryption key (base64url, 32 bytes) that wraps each person's data key "
            "(crypto-shredding); the same in every service and for integrators who read names."
        ),
    )
    jwt_secret: SecretStr = Field(
        SecretStr(DEV_JWT_SECRET),
        description=f"HS256 secret for bearer tokens, at least {MIN_JWT_SECRET_BYTES} bytes.",
    )
    jwt_secrets: SecretStr | None = Field(
        None,
        description="HS256 key set for rotation, `kid:secret,kid:secret` (current first); "
        "replaces JWT_SECRET.",
    )
    jwt_jwks_url: str | None = Field(None, description="JWKS URL of the identity provider.")
    jwt_audience: str | None = Field(None, description="Expected `aud` claim, if any.")
    jwt_issuer: str | None = Field(None, description="Expected `iss` claim, if any.")
    otel_exporter_otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP endpoint for traces; tracing stays local when unset."
    )
    log_level: str = Field("INFO", description="Log level.")
    log_json: bool = Field(True, description="JSON log lines (false: human-readable).")
    consumer_batch_size: int = Field(500, ge=1, description="Records per consumer batch.")
    consumer_chunk_size: int = Field(
        200,
        ge=1,
        description="Events of a batch applied in one transaction (not for reporting's ingest, "
        "which applies a whole batch).",
    )
    consumer_max_attempts: int = Field(
        3, ge=1, description="Attempts per event before it goes to the dead-letter topic."
    )
    consumer_max_record_bytes: int = Field(
        1024 * 1024,
        ge=1,
        description="Largest record body a consumer parses; a larger one is dead-lettered.",
    )
    consumer_lag_interval_s: float = Field(
        30, gt=0, description="How often consumer-group lag is read from the broker (s)."
    )
    consumer_session_timeout_ms: int = Field(10_000, description="Kafka group session timeout.")
    consumer_heartbeat_interval_ms: int = Field(3_000, description="Kafka heartbeat interval.")
    relay_batch_size: int = Field(500, ge=1, description="Outbox rows published per round.")
    relay_poll_interval_s: float = Field(0.5, gt=0, description="Outbox poll when idle (s).")
    migrate_on_start: bool = Field(
        True,
        description=(
            "Migrate the database at start-up; false: `rhythm migrate <service>` does (a Job), "
            "and the service waits, not ready, while its schema is behind."
        ),
    )
    run_consumers: bool = Field(True, description="Run the Kafka consumers in this process.")
    run_relay: bool = Field(True, description="Run the outbox relay in this process.")
    run_jobs: bool = Field(True, description="Run the timed jobs in this process.")
    outbox_keep_days: float = Field(7, gt=0, description="Days a published outbox row is kept.")
    inbox_keep_days: float = Field(
        30, gt=0, description="Days a consumed event id is kept for de-duplication."
    )
    idempotency_keep_days: float = Field(
        7, gt=0, description="Days an Idempotency-Key answers a retry with the first response."
    )
    audit_keep_days: float = Field(
        365, gt=0, description="Days the audit trail of access to private data is kept."
    )
    housekeeping_interval_s: float = Field(
        600, gt=0, description="How often the kit's tables are pruned (s)."
    )

    @field_validator("topic_retention_days")
    @classmethod
    def _known_topics_and_sane_days(cls, value: dict[str, float]) -> dict[str, float]:
        problems = []
        for name, days in value.items():
            if name not in TOPICS and not name.startswith(DLQ_PREFIX):
                problems.append(
                    f"{name!r} is not a Rhythm topic (one of {', '.join(sorted(TOPICS))} or "
                    f"{DLQ_PREFIX}<group>; without KAFKA_TOPIC_PREFIX)"
                )
            elif name in TOPICS and TOPICS[name].compacted:
                problems.append(
                    f"{name!r} is compacted: it keeps each key's latest record, so a retention "
                    "in days does not apply"
                )
            elif days != -1 and days <= 0:
                problems.append(f"{name!r}: {days} days; give a positive number, or -1 (forever)")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_token_settings(self) -> ServiceSettings:
        problems = []
        secret = self.jwt_secret.get_secret_value()
        if self.jwt_secrets is not None:
            problems.extend(self._key_set_problems(secret))
        elif self.jwt_jwks_url is None and secret == DEV_JWT_SECRET:
            if self.environment != "development":
                problems.append(
                    f"JWT_SECRET: the development secret is refused with "
                    f"ENVIRONMENT={self.environment}; set JWT_SECRET to a random secret of at "
                    f"least {MIN_JWT_SECRET_BYTES} bytes (`openssl rand -hex 32`), or "
                    "JWT_JWKS_URL to your identity provider's JWKS"
                )
        elif len(secret.encode()) < MIN_JWT_SECRET_BYTES:
            problems.append(
                f"JWT_SECRET: {len(secret.encode())} bytes is too short to sign tokens; set it "
                f"to a random secret of at least {MIN_JWT_SECRET_BYTES} bytes "
                "(`openssl rand -hex 32`)"
            )
        if self.jwt_jwks_url is not None:
            url = urlsplit(self.jwt_jwks_url)
            if url.scheme != "https" or not url.hostname:
                problems.append(
                    "JWT_JWKS_URL: the keys that verify tokens must come over https; "
                    "set it to your identity provider's https:// JWKS URL"
                )
            for name, claim, value in (
                ("JWT_AUDIENCE", "aud", self.jwt_audience),
                ("JWT_ISSUER", "iss", self.jwt_issuer),
            ):
                if not value:
                    problems.append(
                        f"{name}: required with JWT_JWKS_URL, so that tokens your identity "
                        f"provider issued for other applications are refused; set it to the "
                        f"`{claim}` claim of Rhythm's tokens"
                    )
        kek = self.data_key_encryption_key.get_secret_value()
        if kek == DEV_DATA_KEY_ENCRYPTION_KEY and self.environment != "development":
            problems.append(
                "DATA_KEY_ENCRYPTION_KEY: the development key-encryption key is refused outside "
                "development; set 32 random bytes, base64url (e.g. `openssl rand -base64 32`)"
            )
        else:
            from rhythm_shared.kit.crypto import InvalidKey, load_kek

            try:
                load_kek(kek)
            except InvalidKey as exc:
                problems.append(f"DATA_KEY_ENCRYPTION_KEY: {exc}")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _key_set_problems(self, secret: str) -> list[str]:
        if secret != DEV_JWT_SECRET:
            return ["JWT_SECRETS: set JWT_SECRET (one key) or JWT_SECRETS (a key set), not both"]
        try:
            keys = parse_jwt_secrets(
                self.jwt_secrets.get_secret_value() if self.jwt_secrets else ""
            )
        except ValueError as exc:
            return [f"JWT_SECRETS: {exc}"]
        problems = []
        for key in keys:
            if key.secret == DEV_JWT_SECRET and self.environment != "development":
                problems.append(
                    f"JWT_SECRETS: key {key.kid!r} is the development secret, refused with "
                    f"ENVIRONMENT={self.environment}; use a random secret of at least "
                    f"{MIN_JWT_SECRET_BYTES} bytes (`openssl rand -hex 32`)"
                )
            elif len(key.secret.encode()) < MIN_JWT_SECRET_BYTES:
                problems.append(
                    f"JWT_SECRETS: key {key.kid!r} has {len(key.secret.encode())} bytes, too short "
                    f"to sign tokens; use a random secret of at least {MIN_JWT_SECRET_BYTES} bytes "
                    "(`openssl rand -hex 32`)"
                )
        return problems

    @property
    def jwt_keys(self) -> list[HmacKey]:
        """The HS256 keys that verify bearer tokens, the signing one first: ``JWT_SECRETS``,
        else ``JWT_SECRET`` as one key without an id."""
        if self.jwt_secrets is not None:
            return parse_jwt_secrets(self.jwt_secrets.get_secret_value())
        return [HmacKey(None, self.jwt_secret.get_secret_value())]

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{run_dir() / (self.service_name + '.db')}"

    def topic_spec(self, spec: TopicSpec) -> TopicSpec:
        """``spec`` with this deployment's retention (``TOPIC_RETENTION_DAYS``), if it names one."""
        days = self.topic_retention_days.get(spec.name)
        if days is None:
            return spec
        return dataclasses.replace(spec, retention_ms=-1 if days == -1 else round(days * DAY_MS))

    def topic(self, name: str) -> str:
        """The physical name of a logical topic from the topic map."""
        return f"{self.kafka_topic_prefix}{name}"


_KID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def parse_jwt_secrets(text: str) -> list[HmacKey]:
    """``kid:secret,kid:secret`` -> keys in that order; ids are unique, secrets not empty."""
    keys: list[HmacKey] = []
    for n, entry in enumerate(text.split(","), start=1):
        kid, colon, secret = entry.strip().partition(":")
        if not colon or not secret:
            raise ValueError(f"entry {n} is not `kid:secret` (entries are separated by commas)")
        if not _KID.fullmatch(kid):
            raise ValueError(f"entry {n}: a key id is 1-64 letters, digits, '.', '_' or '-'")
        if any(k.kid == kid for k in keys):
            raise ValueError(f"key id {kid!r} appears twice")
        keys.append(HmacKey(kid, secret))
    return keys


def explain(error: ValidationError) -> list[str]:
    """One line per refused setting, ``NAME: what is wrong and what to do``, for a person at a
    terminal: no input values (they may be secrets), no stack trace."""
    lines: list[str] = []
    for item in error.errors(include_url=False, include_input=False):
        message = item["msg"].removeprefix("Value error, ")
        name = "_".join(str(part) for part in item["loc"]).upper()
        lines.extend(message.splitlines() if not name else [f"{name}: {message}"])
    return lines
