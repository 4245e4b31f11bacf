"""Alembic, per service, driven from code: services migrate to head at start-up.

Each service keeps its scripts in ``<package>/migrations`` with an ``env.py`` that calls
:func:`run_env`. On PostgreSQL an advisory lock lets several replicas start at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

_MIGRATION_LOCK = 7_301_000


def alembic_config(script_location: Path, url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


async def upgrade_to_head(engine: AsyncEngine, script_location: Path) -> None:
    def _upgrade(connection: Connection) -> None:
        config = alembic_config(script_location)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
            await connection.commit()
        try:
            await connection.run_sync(_upgrade)
            await connection.commit()
        finally:
            if engine.dialect.name == "postgresql":
                await connection.execute(
                    text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK}
                )
                await connection.commit()


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's ``env.py``."""

    def configure(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    connection: Any = context.config.attributes.get("connection")
    if connection is not None:
        configure(connection)
        return
    if context.is_offline_mode():
        context.configure(
            url=context.config.get_main_option("sqlalchemy.url"),
            target_metadata=target_metadata,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    import asyncio

    from rhythm_shared.kit.db import create_engine

    async def _online() -> None:
        url = context.config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("set sqlalchemy.url (DATABASE_URL) to run migrations")
        engine = create_engine(url)
        async with engine.connect() as conn:
            await conn.run_sync(configure)
            await conn.commit()
        await engine.dispose()

    asyncio.run(_online())


# Steps for the kit's own tables, shared by every service's history. A released step is frozen:
# a later change to the kit tables gets a step of its own.

#: 0002 in every service: the time columns housekeeping deletes by.
HOUSEKEEPING_INDEXES = (
    ("ix_outbox_published_at", "outbox", "published_at"),
    ("ix_inbox_processed_at", "inbox", "processed_at"),
    ("ix_idempotency_keys_created_at", "idempotency_keys", "created_at"),
)


def create_indexes(specs: Sequence[tuple[str, str, str]]) -> None:
    """Plain indexes, one column each, given as (name, table, column)."""
    for name, table, column in specs:
        op.create_index(name, table, [column], unique=False)


def drop_indexes(specs: Sequence[tuple[str, str, str]]) -> None:
    for name, table, _ in specs:
        op.drop_index(name, table_name=table)


def add_housekeeping_indexes() -> None:
    create_indexes(HOUSEKEEPING_INDEXES)


def drop_housekeeping_indexes() -> None:
    drop_indexes(HOUSEKEEPING_INDEXES)


def _utc() -> Any:
    from rhythm_shared.kit.db import UtcDateTime

    return UtcDateTime()


#: The people directory's tables (rhythm_shared.kit.people), as first released.
def create_people_directory() -> None:
    import sqlalchemy as sa

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
        sa.Column("deactivated_at", _utc(), nullable=True),
        sa.Column("profile_at", _utc(), nullable=True),
        sa.Column("profile_event_id", sa.String(length=64), nullable=True),
        sa.Column("deactivation_at", _utc(), nullable=True),
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
        sa.Column("version_at", _utc(), nullable=False),
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


#: The audit trail's table (rhythm_shared.kit.audit), as first released.
def create_audit_log() -> None:
    import sqlalchemy as sa

    from rhythm_shared.kit.db import BigId

    op.create_table(
        "audit_log",
        sa.Column("seq", BigId, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("at", _utc(), nullable=False),
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


#: The people directory's erasure and key store (crypto-shredding), as first released.
def add_directory_erasure() -> None:
    import sqlalchemy as sa

    with op.batch_alter_table("directory_employees", schema=None) as batch_op:
        batch_op.add_column(sa.Column("erased_at", _utc(), nullable=True))
    op.create_table(
        "directory_keys",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("employee_id", sa.String(length=128), nullable=False),
        sa.Column("key_id", sa.String(length=128), nullable=False),
        sa.Column("wrapped_key", sa.String(length=512), nullable=True),
        sa.Column("destroyed_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "employee_id", name=op.f("pk_directory_keys")),
        comment="Per-person data keys from rhythm.keys.v1, wrapped (kit; crypto-shredding).",
    )


def drop_directory_erasure() -> None:
    op.drop_table("directory_keys")
    with op.batch_alter_table("directory_employees", schema=None) as batch_op:
        batch_op.drop_column("erased_at")
