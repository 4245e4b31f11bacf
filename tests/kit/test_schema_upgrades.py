"""An upgrade, then a rollback to the previous image: the older image runs on the newer schema
when the steps in between are rollback-safe, and refuses, naming them, when they are not.

Two images are simulated with two script directories: image N holds reporting's migrations,
image N-1 the same without the last revision (its contributor indexes, which PostgreSQL builds
concurrently).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

import rhythm_reporting
from rhythm_shared.kit.db import create_engine
from rhythm_shared.kit.migrations import (
    LINEAGE,
    SchemaIncompatible,
    SchemaState,
    schema_state,
    upgrade_to_head,
)

REPORTING = Path(rhythm_reporting.__file__).parent / "migrations"
LAST = "0005_contributor_indexes.py"


def _image(root: Path, name: str, *, without: str | None = None) -> Path:
    target = root / name
    shutil.copytree(REPORTING, target, ignore=shutil.ignore_patterns("__pycache__"))
    if without is not None:
        (target / "versions" / without).unlink()
    return target


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


async def _revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()


async def _indexes(engine: AsyncEngine, table: str) -> set[str]:
    def names(connection: Any) -> set[str]:
        return {str(ix["name"]) for ix in inspect(connection).get_indexes(table)}

    async with engine.connect() as conn:
        return await conn.run_sync(names)


async def test_an_upgrade_then_a_rollback_to_the_previous_image(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    previous = _image(tmp_path, "previous", without=LAST)
    newer = _image(tmp_path, "newer")

    assert await upgrade_to_head(engine, previous) == SchemaState("0004", "0004", "current")
    assert (await schema_state(engine, newer)).describe() == (
        "schema at 0004, this image needs 0005: run `rhythm migrate`"
    )
    assert await upgrade_to_head(engine, newer) == SchemaState("0005", "0005", "current")
    assert "ix_checkin_facts_unit_held" in await _indexes(engine, "checkin_facts")
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            invalid = await conn.execute(text("SELECT count(*) FROM pg_index WHERE NOT indisvalid"))
            assert invalid.scalar() == 0  # every concurrent build finished

    # The rollback: the previous image starts on the newer schema and leaves it as it is.
    assert await schema_state(engine, previous) == SchemaState("0005", "0004", "ahead")
    assert await upgrade_to_head(engine, previous) == SchemaState("0005", "0004", "ahead")
    assert await _revision(engine) == "0005"
    # And the newer image again (a roll forward) finds its own head.
    assert await upgrade_to_head(engine, newer) == SchemaState("0005", "0005", "current")


async def test_a_step_that_is_not_rollback_safe_is_refused_by_older_images(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    previous = _image(tmp_path, "previous")
    contracting = _image(tmp_path, "contracting")
    (contracting / "versions" / "0006_drop_something.py").write_text(
        '"""a contract step: drops an index the previous image still queries by"""\n'
        "from alembic import op\n\n"
        'revision = "0006"\n'
        'down_revision = "0005"\n'
        "rollback_safe = False\n\n\n"
        "def upgrade() -> None:\n"
        '    op.drop_index("ix_checkin_facts_unit_held", table_name="checkin_facts")\n\n\n'
        "def downgrade() -> None:\n"
        "    raise NotImplementedError\n",
        encoding="utf-8",
    )
    await upgrade_to_head(engine, contracting)

    with pytest.raises(SchemaIncompatible, match=r"0006 removed or changed .* \(head 0005\)"):
        await upgrade_to_head(engine, previous)
    with pytest.raises(SchemaIncompatible, match="not rollback-safe"):
        await schema_state(engine, previous)
    assert await _revision(engine) == "0006"


async def test_a_revision_no_image_recorded_is_refused(engine: AsyncEngine, tmp_path: Path) -> None:
    previous = _image(tmp_path, "previous", without=LAST)
    await upgrade_to_head(engine, _image(tmp_path, "newer"))
    async with engine.begin() as conn:  # as if migrated by hand, outside the runner
        await conn.execute(delete(LINEAGE).where(LINEAGE.c.revision == "0005"))

    with pytest.raises(SchemaIncompatible, match="no newer image recorded"):
        await upgrade_to_head(engine, previous)
