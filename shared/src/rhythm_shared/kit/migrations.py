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
