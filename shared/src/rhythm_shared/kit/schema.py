"""The kit's tables in every service's migration history: one helper per released step.

Each service's database holds the kit's tables (outbox, inbox, idempotency keys and the audit
trail from :func:`rhythm_shared.kit.db.define_kit_tables`, the people directory from
:func:`rhythm_shared.kit.people.define_directory_tables`), and each service's Alembic migrations
build them by calling these helpers, in their own revisions, instead of copying the DDL.

A migration is history. Each helper creates exactly what its step created when it was released,
and must go on doing so: the databases already migrated hold that result, and a new database has
to reach the same schema through the same steps. A later change to a kit table is a new helper
here, called by a new migration in every service, never an edit of one below.

Steps, and the migrations that call them:

- ``create_kit_tables``: outbox, inbox, idempotency keys (0001 of every service);
- ``add_housekeeping_indexes``: the time columns housekeeping deletes by (0002 of every service);
- ``create_people_directory``: the people directory (checkins 0003, goals 0004, notifications
  0005, reporting 0003);
- ``create_audit_log``: the audit trail (checkins 0003, goals 0004);
- ``add_directory_erasure``: the directory's erasures and per-person keys (checkins 0005, goals
  0005, notifications 0006, reporting 0004).

Each has its ``drop_…`` twin for the downgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rhythm_shared.kit.db import BigId, UtcDateTime


def create_kit_tables() -> None:
    """Outbox, inbox and idempotency keys, as each service's first migration (0001) made them.

    Frozen: 0001 of every service calls it."""
    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("principal", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "principal", "key", name=op.f("pk_idempotency_keys")),
        comment="Responses to writes sent with an Idempotency-Key header.",
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(length=120), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("processed_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_inbox")),
        comment="Consumed event ids per consumer: a duplicate has no second effect.",
    )
    op.create_table(
        "outbox",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("event_type", sa.String(length=120), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("published_at", UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
        comment="Transactional outbox: events committed with their state change, relayed in order.",
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_unpublished",
            ["seq"],
            unique=False,
            postgresql_where=sa.text("published_at IS NULL"),
            sqlite_where=sa.text("published_at IS NULL"),
        )


def drop_kit_tables() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_outbox_unpublished",
            postgresql_where=sa.text("published_at IS NULL"),
            sqlite_where=sa.text("published_at IS NULL"),
        )
    op.drop_table("outbox")
    op.drop_table("inbox")
    op.drop_table("idempotency_keys")


#: The time columns housekeeping deletes by (rhythm_shared.kit.housekeeping), as (index, table,
#: column).
_HOUSEKEEPING_INDEXES = (
    ("ix_outbox_published_at", "outbox", "published_at"),
    ("ix_inbox_processed_at", "inbox", "processed_at"),
    ("ix_idempotency_keys_created_at", "idempotency_keys", "created_at"),
)


def add_housekeeping_indexes() -> None:
    """Indexes on the kit tables' time columns, as 0002 of every service made them. Frozen."""
    for name, table, column in _HOUSEKEEPING_INDEXES:
        op.create_index(name, table, [column], unique=False)


def drop_housekeeping_indexes() -> None:
    for name, table, _ in _HOUSEKEEPING_INDEXES:
        op.drop_index(name, table_name=table)


def create_people_directory() -> None:
    """The people directory's employees and org units, as first released (before erasures and
    keys, :func:`add_directory_erasure`). Frozen."""
    op.create_table(
        "directory_employees",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("employee_id", sa.String(length=128), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("manager_id", sa.String(length=128), nullable=True),
        sa.Column("org_unit_id", sa.String(length=128), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("locale", sa.String(length=35), nullable=False),
        sa.Column("hired_on", sa.Date(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("deactivated_at", UtcDateTime(), nullable=True),
        sa.Column("profile_at", UtcDateTime(), nullable=True),
        sa.Column("profile_event_id", sa.String(length=64), nullable=True),
        sa.Column("deactivation_at", UtcDateTime(), nullable=True),
        sa.Column("deactivation_event_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "employee_id", name=op.f("pk_directory_employees")),
        comment="The people directory: employees as rhythm.people.v1 last said (kit).",
    )
    op.create_index(
        "ix_directory_employees_manager", "directory_employees", ["tenant_id", "manager_id"]
    )
    op.create_index(
        "ix_directory_employees_org_unit", "directory_employees", ["tenant_id", "org_unit_id"]
    )
    op.create_table(
        "directory_org_units",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("org_unit_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("parent_id", sa.String(length=128), nullable=True),
        sa.Column("head_id", sa.String(length=128), nullable=True),
        sa.Column("version_at", UtcDateTime(), nullable=False),
        sa.Column("version_event_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "org_unit_id", name=op.f("pk_directory_org_units")),
        comment="The people directory: org units as rhythm.people.v1 last said (kit).",
    )
    op.create_index(
        "ix_directory_org_units_parent", "directory_org_units", ["tenant_id", "parent_id"]
    )
    op.create_index("ix_directory_org_units_head", "directory_org_units", ["tenant_id", "head_id"])


def drop_people_directory() -> None:
    op.drop_table("directory_org_units")
    op.drop_table("directory_employees")


def create_audit_log() -> None:
    """The audit trail's table (rhythm_shared.kit.db.define_audit_table), as first released.
    Frozen."""
    op.create_table(
        "audit_log",
        sa.Column("seq", BigId, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("actor_id", sa.String(length=128), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
        comment="Who read or was refused private texts, and changes to who may see them (kit).",
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_subject", "audit_log", ["tenant_id", "subject_id", "at"])


def drop_audit_log() -> None:
    op.drop_table("audit_log")


def add_directory_erasure() -> None:
    """The people directory's erasures and its per-person key store (crypto-shredding), as first
    released. Frozen."""
    with op.batch_alter_table("directory_employees", schema=None) as batch_op:
        batch_op.add_column(sa.Column("erased_at", UtcDateTime(), nullable=True))
    op.create_table(
        "directory_keys",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("employee_id", sa.String(length=128), nullable=False),
        sa.Column("key_id", sa.String(length=128), nullable=False),
        sa.Column("wrapped_key", sa.String(length=512), nullable=True),
        sa.Column("destroyed_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "employee_id", name=op.f("pk_directory_keys")),
        comment="Per-person data keys from rhythm.keys.v1, wrapped (kit; crypto-shredding).",
    )


def drop_directory_erasure() -> None:
    op.drop_table("directory_keys")
    with op.batch_alter_table("directory_employees", schema=None) as batch_op:
        batch_op.drop_column("erased_at")
