"""The in-memory unit of work keeps the same rules as the SQL one: the same handlers, run step by
step against both (SQLite and PostgreSQL), leave the same people, units, SCIM views, keys,
erasures and events behind. The handler unit tests (test_handlers.py) stand on this."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from people_fakes import FakePeopleUnitOfWork, conforms
from sqlalchemy import select

from rhythm_people import commands, handlers
from rhythm_people.adapters import keyring
from rhythm_people.adapters.db import kit
from rhythm_people.adapters.unit_of_work import SOURCE, SqlPeopleUnitOfWork
from rhythm_people.domain.model import Employee, OrgUnit, ProvisionedUser
from rhythm_people.domain.ports import PeopleUnitOfWork
from rhythm_people.main import MIGRATIONS, Settings
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.db import create_engine, session_factory
from rhythm_shared.kit.migrations import upgrade_to_head
from rhythm_shared.kit.uow import UnitOfWorkFactory
from rhythm_shared.testing.fakes import EPOCH

T = "acme"
Step = Callable[[PeopleUnitOfWork], Awaitable[Any]]


def _employee(eid: str, manager: str | None = None, **kw: Any) -> Employee:
    fields: dict[str, Any] = {
        "employee_id": eid,
        "email": f"{eid}@acme.example.com",
        "display_name": f"Person {eid}",
        "manager_id": manager,
        "org_unit_id": "ou-1",
        "time_zone": "Europe/Amsterdam",
        "locale": "nl",
        "hired_on": date(2024, 1, 1),
    }
    return Employee(**{**fields, **kw})


def _user(name: str, number: str, **kw: Any) -> ProvisionedUser:
    return ProvisionedUser(
        user_name=name,
        email=name,
        display_name=name.split("@")[0],
        time_zone="UTC",
        locale="en",
        active=True,
        employee_number=number,
        **kw,
    )


def _steps() -> list[Step]:
    root, team = OrgUnit(org_unit_id="ou-1", name="Root"), OrgUnit(org_unit_id="ou-2", name="Team")
    version = datetime(2026, 1, 1, tzinfo=UTC)

    def command(handler: Callable[[PeopleUnitOfWork, Any], Awaitable[Any]], cmd: Any) -> Step:
        return lambda uow: handler(uow, cmd)

    return [
        command(
            handlers.sync_people,
            commands.SyncPeople(
                tenant=T,
                org_units=(root, team.model_copy(update={"parent_id": "ou-1"})),
                employees=(_employee("e-1"), _employee("e-2", "e-1"), _employee("e-3", "e-1")),
                versions={"e-2": version},
            ),
        ),
        command(
            handlers.sync_people,
            commands.SyncPeople(
                tenant=T,
                org_units=(root.model_copy(update={"head_id": "e-1"}),),
                employees=(_employee("e-2", "e-1", display_name="Old"),),
                versions={"e-2": datetime(2025, 1, 1, tzinfo=UTC)},
            ),
        ),
        command(
            handlers.sync_people,
            commands.SyncPeople(
                tenant=T, org_units=(root,), employees=(_employee("e-3"),), keep_unit_heads=True
            ),
        ),
        command(
            handlers.deactivate_employee, commands.DeactivateEmployee(tenant=T, employee_id="e-3")
        ),
        # An inactive upsert keeps when the deactivation began.
        command(
            handlers.sync_people,
            commands.SyncPeople(
                tenant=T, employees=(_employee("e-3", display_name="Three", active=False),)
            ),
        ),
        command(
            handlers.provision_user,
            commands.ProvisionUser(
                tenant=T, user=_user("ana@acme.example.com", "e-4", department="Sales")
            ),
        ),
        command(
            handlers.provision_user,
            commands.ProvisionUser(
                tenant=T, user=_user("e-1@acme.example.com", "e-1", external_id="x-1")
            ),
        ),
        command(handlers.remove_user, commands.RemoveUser(tenant=T, employee_id="e-4")),
        command(
            handlers.provision_group,
            commands.ProvisionGroup(tenant=T, name="Platform", external_id="g-1"),
        ),
        command(
            handlers.provision_group,
            commands.ProvisionGroup(tenant=T, name="Team B", external_id="g-2", org_unit_id="ou-2"),
        ),
        command(handlers.remove_group, commands.RemoveGroup(tenant=T, org_unit_id="ou-2")),
        # An HR write of a unit keeps its SCIM identity (and its SCIM deletion).
        command(
            handlers.sync_people,
            commands.SyncPeople(
                tenant=T, org_units=(OrgUnit(org_unit_id="ou-2", name="Team C", parent_id="ou-1"),)
            ),
        ),
        command(handlers.erase_employee, commands.EraseEmployee(tenant=T, employee_id="e-2")),
    ]


async def _state(uow: PeopleUnitOfWork) -> dict[str, Any]:
    erasure = await uow.erasures.of_person(T, "e-2")
    keys = await uow.keys.stored(T, ["e-1", "e-2", "e-3", "e-4"])
    return {
        "employees": await uow.people.employees(T),
        "org_units": await uow.people.org_units(T),
        "scim_users": await uow.people.scim_users(T, offset=0, limit=100),
        "scim_groups": await uow.people.scim_groups(T, offset=0, limit=100),
        "erased": await uow.erasures.erased_among(T, ["e-1", "e-2"]),
        "erasure": erasure and (erasure.employee_id, erasure.requested_at, erasure.parts),
        "keys": {i: k.wrapped_key is not None for i, k in keys.items()},
    }


async def test_the_fake_unit_of_work_leaves_what_the_sql_one_leaves(database_url: str) -> None:
    settings = Settings(database_url=database_url, environment="development")
    keyring.use_settings(settings)
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine, MIGRATIONS)
        clock, fake_clock = ManualClock(EPOCH), ManualClock(EPOCH)
        factory = UnitOfWorkFactory(
            session_factory(engine), kit, clock, SOURCE, unit_of_work=SqlPeopleUnitOfWork
        )
        fake = FakePeopleUnitOfWork(fake_clock)
        for step in _steps():
            clock.advance(timedelta(minutes=1))
            fake_clock.advance(timedelta(minutes=1))
            async with factory() as sql:
                await step(sql)
            async with fake:
                await step(conforms(fake))
        async with factory() as sql:
            assert await _state(sql) == await _state(conforms(fake))
            rows = await sql.session.execute(
                select(kit.outbox.c.event_type).order_by(kit.outbox.c.seq)
            )
            assert list(rows.scalars()) == [e.type for e in fake.events]
    finally:
        await engine.dispose()
