"""An upgrade, then a rollback to the previous image: the older image runs on the newer schema
when the steps in between are rollback-safe, and refuses, naming them, when they are not.

Two images are simulated with two script directories: image N holds reporting's migrations,
image N-1 the same without the last revision (its contributor indexes, which PostgreSQL builds
concurrently).
"""

from __future__ import annotations

import ast
import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

import rhythm_reporting
from rhythm_cli.main import app as cli
from rhythm_shared.kit import app as app_module
from rhythm_shared.kit import schema as kit_schema
from rhythm_shared.kit.app import Runtime
from rhythm_shared.kit.db import create_engine
from rhythm_shared.kit.migrations import (
    LINEAGE,
    SchemaIncompatible,
    SchemaState,
    schema_state,
    upgrade_to_head,
)
from rhythm_shared.testing import wait_for
from tests.kit import sample
from tests.kit.test_kit import settings

ROOT = Path(__file__).resolve().parents[2]
REPORTING = Path(rhythm_reporting.__file__).parent / "migrations"
LAST = "0005_contributor_indexes.py"
#: The real head of reporting's migrations, as `rhythm migrate` reports it.
HEAD = max(p.name for p in (REPORTING / "versions").glob("[0-9]*.py")).split("_", 1)[0]


def _image(root: Path, name: str, *, without: str | None = None) -> Path:
    """Image N holds reporting's migrations up to LAST (0005), image N-1 those before it: the
    later real migrations are left out, so the two images stay the same as reporting grows."""
    target = root / name
    shutil.copytree(REPORTING, target, ignore=shutil.ignore_patterns("__pycache__"))
    for script in (target / "versions").glob("[0-9]*.py"):
        if script.name > LAST or script.name == without:
            script.unlink()
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


@pytest.mark.kafka
async def test_a_service_not_migrating_on_start_waits_not_ready_until_the_job_migrates(
    database_url: str, topic_prefix: str, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "SCHEMA_POLL_S", 0.1)
    config = settings(database_url, topic_prefix, kafka_bootstrap)
    app = sample.build(config.model_copy(update={"migrate_on_start": False}))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://sample") as client,
    ):
        runtime: Runtime = app.state.runtime
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {
            "ready": False,
            "checks": {"database": True, "schema": False},
            "schema": "schema at empty, this image needs 0001: run `rhythm migrate`",
        }
        assert runtime.consumers == []
        assert not runtime.kafka_connected.is_set()

        # The Job: `rhythm migrate` against the same database, from another process's engine.
        engine = create_engine(database_url)
        try:
            await upgrade_to_head(engine, sample.MIGRATIONS)
        finally:
            await engine.dispose()

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await wait_for(ready, timeout_s=15)
        await asyncio.wait_for(runtime.kafka_connected.wait(), 60)
        assert [c.group for c in runtime.consumers] == ["sample"]
        assert (await client.get("/readyz")).json()["schema"] == "schema at 0001"


async def test_rhythm_migrate_migrates_then_checks(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    runner = CliRunner()

    behind = await asyncio.to_thread(runner.invoke, cli, ["migrate", "reporting", "--check"])
    assert behind.exit_code == 1, behind.output
    assert f"schema at empty, this image needs {HEAD}" in behind.output

    done = await asyncio.to_thread(runner.invoke, cli, ["migrate", "reporting"])
    assert done.exit_code == 0, done.output
    assert done.output.strip() == f"rhythm reporting: schema at {HEAD}"
    again = await asyncio.to_thread(runner.invoke, cli, ["migrate", "reporting", "--check"])
    assert again.exit_code == 0, again.output


async def test_rhythm_migrate_names_a_schema_it_cannot_run_on(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine, REPORTING)
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    finally:
        await engine.dispose()
    monkeypatch.setenv("DATABASE_URL", database_url)

    result = await asyncio.to_thread(CliRunner().invoke, cli, ["migrate", "reporting"])
    assert result.exit_code == 3
    assert "cannot run on this database: the database is at revision 0099" in result.output
    assert "Traceback" not in result.output


SERVICE_MIGRATIONS = sorted(
    (ROOT / "services").glob("*/src/rhythm_*/migrations/versions/*.py"), key=str
)
#: Operations that remove or change what an older image may use.
CONTRACTING = ("drop_column", "drop_table", "alter_column", "drop_index", "drop_constraint")


def _operations(function: ast.FunctionDef) -> set[str]:
    return {
        node.func.attr
        for node in ast.walk(function)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }


#: The operations of each kit step (rhythm_shared.kit.schema) a migration may call.
KIT_STEPS = {
    node.name: _operations(node)
    for node in ast.parse(Path(kit_schema.__file__).read_text(encoding="utf-8")).body
    if isinstance(node, ast.FunctionDef)
}


@pytest.mark.parametrize("path", SERVICE_MIGRATIONS, ids=lambda p: f"{p.parts[-6]}/{p.name}")
def test_a_migration_that_removes_or_changes_says_whether_it_is_rollback_safe(
    path: Path,
) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    upgrade = next(
        node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "upgrade"
    )
    calls = _operations(upgrade)
    for node in ast.walk(upgrade):  # and those of the kit steps it calls
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            calls |= KIT_STEPS.get(node.func.id, set())
    declared = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    if calls & set(CONTRACTING):
        assert "rollback_safe" in declared, (
            f"{path.name} upgrades with {sorted(calls & set(CONTRACTING))}: declare "
            "rollback_safe (docs/operations-upgrades.md)"
        )
