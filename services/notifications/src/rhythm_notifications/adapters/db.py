"""The notifications database: the people directory, preferences, subscriptions, deliveries."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from rhythm_shared.kit.db import BigId, UtcDateTime, define_kit_tables, new_metadata
from rhythm_shared.kit.people import define_directory_tables

metadata = new_metadata()
kit = define_kit_tables(metadata)

Id = String(128)

#: Who people are, to write to them and find their managers: the kit's one directory.
directory = define_directory_tables(metadata)

overdue_checkins = Table(
    "overdue_checkins",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("obligation_id", Id, primary_key=True),
    Column("employee_id", Id, nullable=False),
    Column("manager_id", Id, nullable=False),
    Column("due_at", UtcDateTime, nullable=False),
    Column("missed_at", UtcDateTime, nullable=False),
    comment="Missed check-ins not yet held: what the manager digest counts.",
)
Index("ix_overdue_checkins_manager", overdue_checkins.c.tenant_id, overdue_checkins.c.manager_id)

closed_obligations = Table(
    "closed_obligations",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("obligation_id", Id, primary_key=True),
    Column("closed_at", UtcDateTime, nullable=False, index=True),
    comment="Obligations a check-in has closed: their reminders are no longer sent.",
)

recipient_settings = Table(
    "recipient_settings",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("employee_id", Id, primary_key=True),
    Column("quiet_start", String(5), nullable=True),
    Column("quiet_end", String(5), nullable=True),
    Column("working_days", String(20), nullable=False),
    Column("digest_hour", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    comment="Quiet hours, working days and digest hour, in the person's own time zone.",
)

category_preferences = Table(
    "category_preferences",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("employee_id", Id, primary_key=True),
    Column("category", String(40), primary_key=True),
    Column("channel", String(8), nullable=False),
    Column("mode", String(10), nullable=False),
    Column("unsubscribed_at", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    comment="Channel (email/push/both/none) and delivery mode per person and category.",
)

push_subscriptions = Table(
    "push_subscriptions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", Id, nullable=False),
    Column("employee_id", Id, nullable=False),
    Column("endpoint", String(2048), nullable=False),
    Column("endpoint_hash", String(64), nullable=False),
    Column("p256dh", String(200), nullable=False),
    Column("auth", String(100), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("tenant_id", "endpoint_hash", name="uq_push_subscriptions_endpoint"),
    comment="Web Push subscriptions (RFC 8030); removed when the push service answers 404/410.",
)
Index(
    "ix_push_subscriptions_person", push_subscriptions.c.tenant_id, push_subscriptions.c.employee_id
)

daily_caps = Table(
    "daily_caps",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("recipient_id", Id, primary_key=True),
    Column("category", String(40), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("created_at", UtcDateTime, nullable=False, index=True),
    comment="One message per person, category and local day: the row is the permit.",
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(36), primary_key=True),  # the notification_id in the events
    Column("tenant_id", Id, nullable=False),
    Column("idempotency_key", String(400), nullable=False, unique=True),
    Column("recipient_id", Id, nullable=False),
    Column("category", String(40), nullable=False),
    Column("channel", String(8), nullable=True),  # null when suppressed before a channel
    Column("source_event_id", Id, nullable=False),
    Column("source_type", String(120), nullable=False),
    Column("status", String(12), nullable=False),
    Column("reason", String(40), nullable=True),
    Column("detail", Text, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    # Times a lease ran out on it (its dispatcher died): bounded by DELIVERY_MAX_RECOVERIES.
    Column("recoveries", Integer, nullable=False, default=0, server_default="0"),
    # Due time while pending; lease expiry while claimed/sending (one index serves both).
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("claim_token", String(36), nullable=True),
    Column("payload", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False, index=True),
    Column("sent_at", UtcDateTime, nullable=True),
    comment="Every notification per channel, with its state: pending, sent, failed, suppressed.",
)
Index("ix_deliveries_due", deliveries.c.status, deliveries.c.next_attempt_at)
Index(
    "ix_deliveries_recipient",
    deliveries.c.tenant_id,
    deliveries.c.recipient_id,
    deliveries.c.created_at,
)
Index("ix_deliveries_source", deliveries.c.tenant_id, deliveries.c.source_event_id)

digest_items = Table(
    "digest_items",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", Id, nullable=False),
    Column("recipient_id", Id, nullable=False),
    Column("category", String(40), nullable=False),
    Column("source_event_id", Id, nullable=False),
    Column("due_at", UtcDateTime, nullable=False),
    Column("channels", JSON, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("digest_id", String(36), nullable=True),
    Column("created_at", UtcDateTime, nullable=False, index=True),
    UniqueConstraint(
        "tenant_id", "recipient_id", "category", "source_event_id", name="uq_digest_items_source"
    ),
    comment="Notifications waiting for the recipient's next digest.",
)
Index(
    "ix_digest_items_due",
    digest_items.c.due_at,
    postgresql_where=digest_items.c.digest_id.is_(None),
    sqlite_where=digest_items.c.digest_id.is_(None),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", Id, nullable=False),
    Column("url", String(2048), nullable=False),
    Column("secret", String(100), nullable=False),
    Column("event_types", JSON, nullable=True),  # null: every event type
    Column("description", String(200), nullable=True),
    Column("active", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # A rotation's overlap: the replaced secret also signs deliveries until then.
    Column("previous_secret", String(100), nullable=True),
    Column("previous_secret_until", UtcDateTime, nullable=True),
    comment="Per-tenant HTTP endpoints that receive domain events (Standard Webhooks).",
)
Index("ix_webhook_endpoints_tenant", webhook_endpoints.c.tenant_id)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(64), primary_key=True),  # webhook-id: the same on every retry
    Column("tenant_id", Id, nullable=False),
    Column("endpoint_id", String(36), nullable=False),
    Column("event_id", Id, nullable=False),
    Column("event_type", String(120), nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(12), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("claim_token", String(36), nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("detail", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False, index=True),
    Column("sent_at", UtcDateTime, nullable=True),
    UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_event"),
    comment="Domain events owed to webhook endpoints, retried with backoff.",
)
Index(
    "ix_webhook_deliveries_due", webhook_deliveries.c.status, webhook_deliveries.c.next_attempt_at
)

tenant_settings = Table(
    "tenant_settings",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("app_base_url", String(2048), nullable=True),  # null: APP_BASE_URL
    Column("updated_at", UtcDateTime, nullable=False),
    comment="Per-tenant overrides: the base URL of the app the tenant's people use.",
)

chat_channels = Table(
    "chat_channels",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("kind", String(8), primary_key=True),  # slack | teams (the delivery's channel)
    Column("url", String(2048), nullable=False),
    Column("categories", JSON, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    comment="Per-tenant chat incoming webhooks (Slack, Teams) and the categories posted there.",
)
