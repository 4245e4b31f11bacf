"""The kit's people directory: one last-writer-wins rule, any order of events, one state."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rhythm_shared.contracts.v1 import EmployeeDeactivated, EmployeeUpserted, OrgUnitUpserted
from rhythm_shared.kit.access import Relationship, relationships
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.db import create_engine, new_metadata, session_factory
from rhythm_shared.kit.people import (
    DirectoryProjection,
    PeopleDirectory,
    Person,
    define_directory_tables,
    fold_employee,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TENANT = "acme"


def upsert(at: int, employee: str = "e-1", **over: object) -> EmployeeUpserted:
    fields: dict[str, object] = {
        "tenant_id": TENANT,
        "occurred_at": T0 + timedelta(minutes=at),
        "employee_id": employee,
        "email": f"{employee}@acme.example.com",
        "display_name": f"Person {employee} v{at}",
        "manager_id": None,
        "org_unit_id": "ou-1",
        "time_zone": "Europe/Amsterdam",
        "locale": "nl",
        "hired_on": date(2024, 1, 1),
        "active": True,
    }
    fields.update(over)
    return EmployeeUpserted.model_validate(fields)


def deactivate(at: int, effective: int, employee: str = "e-1") -> EmployeeDeactivated:
    return EmployeeDeactivated(
        tenant_id=TENANT,
        occurred_at=T0 + timedelta(minutes=at),
        employee_id=employee,
        effective_at=T0 + timedelta(minutes=effective),
    )


def unit(at: int, org_unit_id: str, parent: str | None, head: str | None) -> OrgUnitUpserted:
    return OrgUnitUpserted(
        tenant_id=TENANT,
        occurred_at=T0 + timedelta(minutes=at),
        org_unit_id=org_unit_id,
        name=f"Unit {org_unit_id} v{at}",
        parent_id=parent,
        head_id=head,
    )


def fold(events: list[tuple[str, EmployeeUpserted | EmployeeDeactivated]]) -> Person | None:
    state: Person | None = None
    for event_id, event in events:
        state = fold_employee(state, event, event_id)
    return state


# --- the rule -----------------------------------------------------------------------------------

people_events = st.lists(
    st.one_of(
        st.builds(
            lambda at, mgr: upsert(at, manager_id=mgr),
            st.integers(0, 5),
            st.sampled_from([None, "m-1", "m-2"]),
        ),
        st.builds(lambda at, act: upsert(at, active=act), st.integers(0, 5), st.booleans()),
        st.builds(deactivate, st.integers(0, 5), st.integers(0, 10)),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(people_events, st.randoms(use_true_random=False))
def test_any_order_and_any_duplicates_of_people_events_end_in_the_same_state(
    events: list[EmployeeUpserted | EmployeeDeactivated], rnd: random.Random
) -> None:
    numbered = [(f"ev-{i:03d}", e) for i, e in enumerate(events)]
    expected = fold(numbered)
    shuffled = list(numbered)
    rnd.shuffle(shuffled)
    duplicated = shuffled + rnd.sample(shuffled, k=min(2, len(shuffled)))
    rnd.shuffle(duplicated)
    assert fold(shuffled) == expected
    assert fold(duplicated) == expected


def test_a_late_older_upsert_does_not_roll_the_manager_back() -> None:
    newer = ("ev-2", upsert(10, manager_id="m-new"))
    older = ("ev-1", upsert(5, manager_id="m-old"))
    state = fold([newer, older])
    assert state is not None
    assert state.manager_id == "m-new"


def test_a_deactivation_holds_against_older_upserts_and_yields_to_newer_ones() -> None:
    gone = fold([("ev-2", deactivate(10, 10)), ("ev-1", upsert(5))])
    assert gone is not None
    assert gone.known
    assert not gone.active_at(T0 + timedelta(minutes=11))
    back = fold([("ev-2", deactivate(10, 10)), ("ev-3", upsert(12))])
    assert back is not None
    assert back.active_at(T0 + timedelta(minutes=20))


def test_a_deactivation_dated_ahead_takes_effect_on_its_date() -> None:
    state = fold([("ev-1", upsert(0)), ("ev-2", deactivate(1, 60))])
    assert state is not None
    assert state.active_at(T0 + timedelta(minutes=59))
    assert not state.active_at(T0 + timedelta(minutes=60))


def test_events_of_the_same_instant_are_ordered_by_event_id() -> None:
    a = ("ev-a", upsert(3, manager_id="m-a"))
    b = ("ev-b", upsert(3, manager_id="m-b"))
    for order in itertools.permutations([a, b]):
        state = fold(list(order))
        assert state is not None
        assert state.manager_id == "m-b"


# --- on the databases ---------------------------------------------------------------------------

metadata = new_metadata()
tables = define_directory_tables(metadata)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield session_factory(engine)
    await engine.dispose()


async def _apply(
    sessions: async_sessionmaker[AsyncSession],
    events: list[tuple[str, EmployeeUpserted | EmployeeDeactivated | OrgUnitUpserted]],
) -> None:
    projection = DirectoryProjection(tables)
    for event_id, event in events:
        async with sessions() as session, session.begin():
            if isinstance(event, OrgUnitUpserted):
                await projection.apply_org_unit(session, event, event_id)
            else:
                await projection.apply_employee(session, event, event_id)


async def test_the_directory_tables_end_in_the_folded_state_whatever_the_order(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rnd = random.Random(7)
    events: list[tuple[str, EmployeeUpserted | EmployeeDeactivated]] = [
        ("ev-01", upsert(0, manager_id="m-1")),
        ("ev-02", upsert(5, manager_id="m-2")),
        ("ev-03", deactivate(7, 30)),
        ("ev-04", upsert(6, manager_id="m-3", display_name="Late retry")),
        ("ev-05", upsert(9, employee="e-2", manager_id="e-1")),
    ]
    shuffled = list(events)
    rnd.shuffle(shuffled)
    await _apply(sessions, [*shuffled, shuffled[0], shuffled[2]])  # and two duplicates
    async with sessions() as session:
        directory = PeopleDirectory(session, tables, TENANT)
        person = await directory.person("e-1")
        assert person == fold([e for e in events if e[1].employee_id == "e-1"])
        assert person is not None
        assert person.manager_id == "m-3"
        assert person.deactivated_at == T0 + timedelta(minutes=30)


async def test_a_bare_deactivation_is_kept_until_the_person_is_described(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _apply(sessions, [("ev-2", deactivate(10, 10))])
    async with sessions() as session:
        assert await PeopleDirectory(session, tables, TENANT).person("e-1") is None
    await _apply(sessions, [("ev-1", upsert(5))])
    async with sessions() as session:
        person = await PeopleDirectory(session, tables, TENANT).person("e-1")
        assert person is not None
        assert not person.active_at(T0 + timedelta(minutes=10))


async def test_the_directory_answers_chains_reports_units_and_heads(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _apply(
        sessions,
        [
            ("u1", unit(0, "ou-co", None, "ceo")),
            ("u2", unit(0, "ou-eng", "ou-co", "vp")),
            ("u3", unit(0, "ou-team", "ou-eng", "lead")),
            ("u4", unit(0, "ou-other", "ou-co", "other-head")),
            ("p1", upsert(0, "ceo", org_unit_id="ou-co")),
            ("p2", upsert(0, "vp", manager_id="ceo", org_unit_id="ou-eng")),
            ("p3", upsert(0, "lead", manager_id="vp", org_unit_id="ou-team")),
            ("p4", upsert(0, "ana", manager_id="lead", org_unit_id="ou-team")),
            ("p5", upsert(0, "bo", manager_id="lead", org_unit_id="ou-team")),
            # A loop in the HR data: x and y manage each other.
            ("p6", upsert(0, "x", manager_id="y", org_unit_id="ou-other")),
            ("p7", upsert(0, "y", manager_id="x", org_unit_id="ou-other")),
        ],
    )
    async with sessions() as session:
        d = PeopleDirectory(session, tables, TENANT)
        assert await d.manager_chain("ana") == ["lead", "vp", "ceo"]
        assert await d.manager_of("ana") == "lead"
        assert [p.employee_id for p in await d.direct_reports("lead")] == ["ana", "bo"]
        assert await d.all_reports("vp") == ["lead", "ana", "bo"]
        assert await d.subunits("ou-eng") == ["ou-eng", "ou-team"]
        assert await d.unit_heads_above("ana") == ["lead", "vp", "ceo"]
        assert await d.manager_chain("x") == ["y"]
        assert await d.all_reports("x") == ["y"]
        assert [p.employee_id for p in await d.members(["ou-team"])] == ["ana", "bo", "lead"]
        other_tenant = PeopleDirectory(session, tables, "globex")
        assert await other_tenant.person("ana") is None

        def rels_of(caller: str, roles: set[str]) -> Principal:
            return Principal(subject=caller, tenant=TENANT, roles=frozenset(roles))

        assert await relationships(d, rels_of("ana", {"employee"}), "ana") == {Relationship.SELF}
        assert Relationship.MANAGER in await relationships(d, rels_of("lead", {"manager"}), "ana")
        vp = await relationships(d, rels_of("vp", {"manager"}), "ana")
        assert Relationship.MANAGER_CHAIN in vp
        assert Relationship.UNIT_HEAD in vp
        # A manager role over someone they do not manage grants nothing but peer.
        assert await relationships(d, rels_of("bo", {"manager"}), "ana") == {Relationship.PEER}
        # An integration's token does not act as a person, whatever its subject says.
        assert await relationships(d, rels_of("lead", {"integration"}), "ana") == {
            Relationship.INTEGRATION
        }


async def test_a_write_held_back_is_seen_by_any_read_in_its_transaction_and_gone_on_rollback(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Changes are written behind (one upsert per table per transaction), yet every statement
    that names a directory table sees them: the directory's queries, a service's own SQL, raw
    SQL; a rollback writes nothing and forgets what the projection read."""
    e = tables.employees
    projection = DirectoryProjection(tables)
    async with sessions() as session, session.begin():
        await projection.read_ahead(session, [(TENANT, "e-1"), (TENANT, "e-2")])
        await projection.apply_employee(session, upsert(1, "e-1"), "ev-1")
        await projection.apply_org_unit(session, unit(1, "ou-1", None, "e-1"), "ev-u1")
        directory = PeopleDirectory(session, tables, TENANT)
        assert [p.employee_id for p in await directory.members(["ou-1"])] == ["e-1"]
        assert await directory.heads_units("e-1") == ["ou-1"]
        await projection.apply_employee(session, upsert(2, "e-2", manager_id="e-1"), "ev-2")
        reports = select(e.c.employee_id).where(e.c.manager_id == "e-1")
        assert (await session.scalars(reports)).all() == ["e-2"]
        await projection.apply_employee(session, upsert(3, "e-2", manager_id=None), "ev-3")
        assert await session.scalar(text("SELECT count(*) FROM directory_employees")) == 2
        assert (await session.scalars(reports)).all() == []
    with pytest.raises(RuntimeError, match="refused"):
        await _apply_then_refuse(sessions, projection, upsert(4, "e-3"))
    async with sessions() as session, session.begin():
        ids = (await session.scalars(select(e.c.employee_id).order_by(e.c.employee_id))).all()
        assert ids == ["e-1", "e-2"]
        assert (await PeopleDirectory(session, tables, TENANT).person("e-2")) == (
            fold_employee(
                fold_employee(None, upsert(2, "e-2", manager_id="e-1"), "ev-2"),
                upsert(3, "e-2", manager_id=None),
                "ev-3",
            )
        )


async def _apply_then_refuse(
    sessions: async_sessionmaker[AsyncSession],
    projection: DirectoryProjection,
    event: EmployeeUpserted,
) -> None:
    async with sessions() as session, session.begin():
        await projection.apply_employee(session, event, "ev-refused")
        raise RuntimeError("refused")
