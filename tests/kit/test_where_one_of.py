"""``where_one_of``: rows by a chunk of ids, the same answer as ``IN`` on both databases; on
PostgreSQL, a statement planned while its table was empty does not test every row against
every id once the table has filled (faster than autovacuum analyzed it)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import MetaData, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Select

from rhythm_shared.kit.db import create_engine, where_one_of
from rhythm_shared.kit.people import define_directory_tables
from rhythm_shared.testing.plugin import postgres_databases

TENANT = "t-1"
metadata = MetaData()
employees = define_directory_tables(metadata).employees


def _person(i: int, tenant: str = TENANT) -> dict[str, Any]:
    return {
        "tenant_id": tenant, "employee_id": f"e-{i:06d}", "time_zone": "Etc/UTC",
        "locale": "en", "active": True,
    }  # fmt: skip


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


def _by_ids(values: list[str], dialect: Any) -> Select[Any]:
    query = select(employees.c.employee_id).where(employees.c.tenant_id == TENANT)
    return where_one_of(query, employees.c.employee_id, values, dialect)


async def test_the_same_rows_as_in(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        rows = [_person(i) for i in range(1_200)] + [_person(i, "t-2") for i in range(10)]
        await conn.execute(insert(employees), rows)
    wanted = [f"e-{i:06d}" for i in range(0, 2_000, 3)]  # some exist, some do not
    cases = [
        wanted,
        wanted + wanted[:50],  # an id twice is still one row
        ["e-000001"],
        ["nobody"],
        [],
        ["e-000003", "e-000003", "e-000005"],
    ]
    async with engine.connect() as conn:
        dialect = conn.dialect
        for values in cases:
            found = (await conn.execute(_by_ids(values, dialect))).scalars().all()
            expected = (
                (
                    await conn.execute(
                        select(employees.c.employee_id).where(
                            employees.c.tenant_id == TENANT, employees.c.employee_id.in_(values)
                        )
                    )
                )
                .scalars()
                .all()
            )
            assert sorted(found) == sorted(expected)
            assert len(found) == len(set(found))


def _tests_each_row_against_the_list(plan: Any) -> bool:
    """Whether a JSON plan reads ``directory_employees`` rows and tests each against the whole
    list of ids (a filter ``= ANY (ARRAY[...])``): what makes a statement cost rows x ids."""
    stack = [plan]
    while stack:
        node = stack.pop()
        if node.get("Relation Name") == "directory_employees" and "ANY" in node.get("Filter", ""):
            return True
        stack.extend(node.get("Plans", []))
    return False


async def _plan_after_filling(engine: AsyncEngine, sql: str, args: str) -> Any:
    """Prepare ``sql`` on the empty table, make its generic plan, fill the table (100,000
    rows, never analyzed), and return the plan the statement still runs with."""
    async with engine.connect() as conn:
        await conn.execute(text("TRUNCATE directory_employees"))
        await conn.execute(text("ALTER TABLE directory_employees SET (autovacuum_enabled = off)"))
        await conn.commit()
        await conn.execute(text("SET plan_cache_mode = force_generic_plan"))
        await conn.execute(text(f"PREPARE wanted AS {sql}"))
        await conn.execute(text(f"EXECUTE wanted({args})"))
        await conn.execute(
            text(
                "INSERT INTO directory_employees"
                " (tenant_id, employee_id, time_zone, locale, active)"
                " SELECT :tenant, 'e-' || lpad(i::text, 6, '0'), 'Etc/UTC', 'en', true"
                " FROM generate_series(0, 99999) AS i"
            ),
            {"tenant": TENANT},
        )
        explained = await conn.execute(text(f"EXPLAIN (FORMAT JSON) EXECUTE wanted({args})"))
        plan: Any = explained.scalar_one()
        await conn.execute(text("DEALLOCATE wanted"))
        await conn.rollback()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return plan[0]["Plan"]


async def test_postgresql_keeps_an_index_plan_as_the_table_fills() -> None:
    async with postgres_databases() as [url]:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
                dialect = conn.dialect
            ids = [f"e-{i:06d}" for i in range(0, 1_000, 2)]
            literal = "ARRAY[" + ", ".join(f"'{i}'" for i in ids) + "]"
            joined = _by_ids(ids, dialect).compile(dialect=dialect)
            assert "unnest" in joined.string
            # The statement's parameters in order: the ids' array, then the tenant.
            order = [joined.binds[name].value for name in (joined.positiontup or [])]
            assert order == [ids, TENANT]
            plan = await _plan_after_filling(engine, joined.string, f"{literal}, 't-1'")
            # At worst (planned on the empty table) one pass over the tenant's index probing a
            # hash of the ids; once analyzed, one primary-key lookup per id.
            assert not _tests_each_row_against_the_list(plan), plan
            # Control: the expanded IN list that the read-ahead used before, cached the same way,
            # reads the whole tenant (and tests every row against every id) once it has filled.
            listed = (
                select(employees.c.employee_id)
                .where(employees.c.tenant_id == TENANT, employees.c.employee_id.in_(ids))
                .compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
            )
            values = ", ".join(["'t-1'", *(f"'{i}'" for i in ids)])
            plan = await _plan_after_filling(engine, listed.string, values)
            assert _tests_each_row_against_the_list(plan), plan
        finally:
            await engine.dispose()
