"""The in-memory people directory of unit tests answers exactly as the SQL one, for the same
events: a handler tested against the fake behaves as it will against the database."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import EmployeeDeactivated, EmployeeUpserted, OrgUnitUpserted
from rhythm_shared.kit.db import create_engine, new_metadata, session_factory
from rhythm_shared.kit.people import SqlPeople, define_directory_tables
from rhythm_shared.kit.ports import Directory, People, UnitOfWorkPort
from rhythm_shared.kit.uow import UnitOfWork
from rhythm_shared.testing.fakes import FakeUnitOfWork, InMemoryPeople

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TENANTS = ("acme", "globex")


def _events(seed: int) -> list[tuple[object, str]]:
    """A random org for two tenants: units in a tree (with a loop now and then), people with
    managers (loops too), moves, deactivations, and late older upserts."""
    rng = random.Random(seed)
    events: list[tuple[object, str]] = []
    at = 0
    for tenant in TENANTS:
        units = [f"ou-{i}" for i in range(rng.randint(1, 8))]
        people = [f"e-{i}" for i in range(rng.randint(1, 25))]
        for i, ou in enumerate(units):
            at += 1
            parent = rng.choice(units[:i]) if i and rng.random() < 0.9 else None
            if 0 < i < len(units) - 1 and rng.random() < 0.05:
                parent = units[-1]  # a loop in the HR data
            head = rng.choice(people) if rng.random() < 0.7 else None
            events.append(
                (
                    OrgUnitUpserted(
                        tenant_id=tenant,
                        occurred_at=T0 + timedelta(minutes=at),
                        org_unit_id=ou,
                        name=f"Unit {ou}",
                        parent_id=parent,
                        head_id=head,
                    ),
                    f"{tenant}-u-{at}",
                )
            )
        for _round in range(3):
            for person in people:
                at += 1
                when = at if rng.random() < 0.9 else max(0, at - 50)  # a late retry now and then
                events.append(
                    (
                        EmployeeUpserted(
                            tenant_id=tenant,
                            occurred_at=T0 + timedelta(minutes=when),
                            employee_id=person,
                            email=f"{person}@{tenant}.example.com",
                            display_name=f"Person {person} {at}",
                            manager_id=rng.choice([None, *(p for p in people if p != person)]),
                            org_unit_id=rng.choice([*units, "ou-gone"]),
                            time_zone="UTC",
                            locale="en",
                            hired_on=date(2024, 1, 1),
                            active=rng.random() < 0.9,
                        ),
                        f"{tenant}-p-{at}",
                    )
                )
                if rng.random() < 0.1:
                    at += 1
                    events.append(
                        (
                            EmployeeDeactivated(
                                tenant_id=tenant,
                                occurred_at=T0 + timedelta(minutes=at),
                                employee_id=rng.choice(people),
                                effective_at=T0 + timedelta(minutes=at + rng.randint(-5, 5)),
                            ),
                            f"{tenant}-d-{at}",
                        )
                    )
    return events


async def _answers(directory: Directory, ids: list[str], units: list[str]) -> list[object]:
    out: list[object] = [await directory.people(ids)]
    for i in ids:
        out += [
            await directory.person(i),
            await directory.manager_of(i),
            await directory.manager_chain(i),
            await directory.direct_reports(i),
            await directory.all_reports(i),
            await directory.unit_heads_above(i),
            await directory.heads_units(i),
        ]
    for u in units:
        out += [
            await directory.org_unit(u),
            await directory.units_upwards(u),
            await directory.unit_heads_upwards(u),
            await directory.subunits(u),
            await directory.child_units(u),
        ]
    out.append(await directory.members(units))
    return out


@pytest.mark.parametrize("seed", range(12))
async def test_the_in_memory_directory_answers_as_the_sql_one(seed: int, tmp_path: object) -> None:
    metadata = new_metadata()
    tables = define_directory_tables(metadata)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/people.db")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    sessions = session_factory(engine)
    fake = InMemoryPeople()
    events = _events(seed)
    try:
        async with sessions() as session, session.begin():
            sql = SqlPeople(session, tables)
            for event, event_id in events:
                for people in (sql, fake):
                    if isinstance(event, OrgUnitUpserted):
                        assert await people.apply_org_unit(event, event_id) is not None
                    else:
                        assert isinstance(event, EmployeeUpserted | EmployeeDeactivated)
                        await people.apply_employee(event, event_id)
            ids = [f"e-{i}" for i in range(27)]
            units = [f"ou-{i}" for i in range(9)]
            for tenant in TENANTS:
                expected = await _answers(sql.directory(tenant), ids, units)
                assert await _answers(fake.directory(tenant), ids, units) == expected
                assert any(expected), "the generated org has people in it"
    finally:
        await engine.dispose()


def test_the_sql_and_in_memory_units_of_work_satisfy_the_same_ports() -> None:
    # Checked by mypy: a handler typed by the ports takes either.
    port: type[UnitOfWorkPort] = UnitOfWork
    fake_port: type[UnitOfWorkPort] = FakeUnitOfWork
    people: type[People] = InMemoryPeople
    sql_people: type[People] = SqlPeople
    assert {port, fake_port, people, sql_people}


async def test_the_fake_unit_of_work_commits_on_a_clean_exit_and_rolls_back_on_error() -> None:
    uow = FakeUnitOfWork()
    async with uow:
        assert await uow.first_time("c", "ev-1")
        assert not await uow.first_time("c", "ev-1")
    assert uow.committed
    with pytest.raises(ValueError, match="refused"):
        async with uow:
            raise ValueError("refused")
    assert uow.rolled_back
    assert not uow.committed


def _envelope(event: object, event_id: str) -> Envelope:
    assert isinstance(event, Event)
    return Envelope(event_id, "/tests", event.type, event.occurred_at, "", event.tenant_id, event)


@pytest.mark.parametrize("seed", range(3))
async def test_reading_ahead_and_writing_behind_change_nothing_the_directory_answers(
    seed: int, database_url: str, tmp_path: object
) -> None:
    """Applying events in batches as the consumer does (rows read ahead in one statement,
    changes written behind in one upsert per table) gives the same changes, and the same
    directory, as reading and writing each event in its own transaction; and a read through the
    directory between two events of a batch sees what the batch wrote so far, as the in-memory
    directory applied in step does."""
    metadata = new_metadata()
    tables = define_directory_tables(metadata)
    events = _events(seed)
    rng = random.Random(seed)
    ids = [f"e-{i}" for i in range(27)]
    units = [f"ou-{i}" for i in range(9)]
    one = create_engine(f"sqlite+aiosqlite:///{tmp_path}/one.db")
    batched = create_engine(database_url)
    try:
        for engine in (one, batched):
            async with engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
        alone: list[object] = []
        for event, event_id in events:
            async with session_factory(one)() as session, session.begin():
                alone.append(await _apply(SqlPeople(session, tables), event, event_id))
        together: list[object] = []
        fake = InMemoryPeople()
        start = 0
        while start < len(events):
            batch = events[start : start + rng.randint(1, 40)]
            start += len(batch)
            read_after = rng.randrange(len(batch))
            async with session_factory(batched)() as session, session.begin():
                people = SqlPeople(session, tables)
                await people.read_ahead([_envelope(e, i) for e, i in batch])
                for n, (event, event_id) in enumerate(batch):
                    together.append(await _apply(people, event, event_id))
                    await _apply(fake, event, event_id)
                    if n == read_after and n < len(batch) - 1:
                        tenant = _tenant(event)
                        expected = await _answers(fake.directory(tenant), ids, units)
                        assert await _answers(people.directory(tenant), ids, units) == expected
        assert together == alone
        answers = []
        for engine in (one, batched):
            async with session_factory(engine)() as session, session.begin():
                directory = SqlPeople(session, tables)
                answers.append(
                    [await _answers(directory.directory(t), ids, units) for t in TENANTS]
                )
        assert answers[1] == answers[0]
    finally:
        await one.dispose()
        await batched.dispose()


async def _apply(people: People, event: object, event_id: str) -> object:
    if isinstance(event, OrgUnitUpserted):
        return await people.apply_org_unit(event, event_id)
    assert isinstance(event, EmployeeUpserted | EmployeeDeactivated)
    return await people.apply_employee(event, event_id)


def _tenant(event: object) -> str:
    assert isinstance(event, Event)
    return event.tenant_id
