"""Every handler of the people service against the in-memory unit of work: no database, no
broker. What each test asserts is what the handler left behind: state in the fake repositories,
the events it queued, the error it raised."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from people_fakes import FakePeopleUnitOfWork, conforms

from rhythm_people import commands, handlers
from rhythm_people.domain import model
from rhythm_people.domain.erasure import SERVICES, Erased
from rhythm_people.domain.model import Employee, OrgUnit, ProvisionedUser
from rhythm_people.handlers import PeopleRejected, PreconditionFailed, SyncProgress
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import (
    EmployeeDeactivated,
    EmployeeErased,
    OrgUnitUpserted,
    PersonDataErased,
    PersonKeyDestroyed,
    PersonKeyIssued,
)
from rhythm_shared.contracts.v1.privacy import Service
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2
from rhythm_shared.kit import crypto
from rhythm_shared.kit.errors import Conflict, NotFound

T = "acme"


def employee(eid: str, manager: str | None = None, unit: str = "ou-1", **kw: Any) -> Employee:
    fields: dict[str, Any] = {
        "employee_id": eid,
        "email": f"{eid}@acme.example.com",
        "display_name": f"Person {eid}",
        "manager_id": manager,
        "org_unit_id": unit,
        "time_zone": "Europe/Amsterdam",
        "locale": "nl",
        "hired_on": date(2024, 1, 1),
    }
    return Employee(**{**fields, **kw})


def unit(uid: str, parent: str | None = None, head: str | None = None) -> OrgUnit:
    return OrgUnit(org_unit_id=uid, name=f"Unit {uid}", parent_id=parent, head_id=head)


def sync(*items: OrgUnit | Employee, **kw: Any) -> commands.SyncPeople:
    return commands.SyncPeople(
        tenant=T,
        org_units=tuple(i for i in items if isinstance(i, OrgUnit)),
        employees=tuple(i for i in items if isinstance(i, Employee)),
        **kw,
    )


def user(name: str = "ana@acme.example.com", **kw: Any) -> ProvisionedUser:
    fields: dict[str, Any] = {
        "user_name": name,
        "email": name,
        "display_name": "Ana de Vries",
        "time_zone": "Europe/Amsterdam",
        "locale": "nl",
        "active": True,
    }
    return ProvisionedUser(**{**fields, **kw})


async def seeded(*items: OrgUnit | Employee) -> FakePeopleUnitOfWork:
    """A unit of work over a tenant that already holds ``items``, with no events queued."""
    uow = FakePeopleUnitOfWork()
    await handlers.sync_people(conforms(uow), sync(*items))
    uow.events.clear()
    return uow


def types(uow: FakePeopleUnitOfWork) -> list[type[Any]]:
    return [type(e) for e in uow.events]


def test_every_command_and_every_consumed_event_has_its_handler() -> None:
    assert set(handlers.COMMAND_HANDLERS) == set(commands.Command.__subclasses__())
    assert {PersonDataErased: handlers.record_erasure_part} == handlers.EVENT_HANDLERS


# -- sync_people -----------------------------------------------------------------------------------


async def test_a_sync_stores_everyone_and_announces_units_then_keys_then_people() -> None:
    uow = FakePeopleUnitOfWork()
    result = await handlers.sync_people(
        conforms(uow), sync(unit("ou-1"), employee("e-1"), employee("e-2", "e-1"))
    )

    assert (result.created, result.updated, result.unchanged, result.events) == (3, 0, 0, 3)
    assert [(i.kind, i.id, i.outcome) for i in result.items] == [
        ("org_unit", "ou-1", "created"),
        ("employee", "e-1", "created"),
        ("employee", "e-2", "created"),
    ]
    assert types(uow) == [
        OrgUnitUpserted,
        PersonKeyIssued,
        PersonKeyIssued,
        EmployeeUpsertedV2,
        EmployeeUpsertedV2,
    ]
    assert set(await uow.people.employees(T)) == {"e-1", "e-2"}
    assert set(await uow.people.org_units(T)) == {"ou-1"}
    assert set(uow.keys.keys) == {(T, "e-1"), (T, "e-2")}


async def test_a_person_name_rides_sealed_and_opens_with_the_key_issued_for_them() -> None:
    uow = FakePeopleUnitOfWork()
    await handlers.sync_people(conforms(uow), sync(unit("ou-1"), employee("e-1")))

    [issued] = uow.published(PersonKeyIssued)
    [upsert] = uow.published(EmployeeUpsertedV2)
    assert isinstance(issued, PersonKeyIssued)
    assert isinstance(upsert, EmployeeUpsertedV2)
    ids = {"tenant_id": T, "employee_id": "e-1"}
    key = crypto.unwrap(uow.keys.kek(), issued.wrapped_key, key_id=issued.key_id, **ids)
    assert upsert.sealed.key_id == issued.key_id
    assert "Person e-1" not in upsert.model_dump_json()
    assert crypto.unseal(key, upsert.sealed.display_name, field="display_name", **ids) == (
        "Person e-1"
    )


async def test_a_second_upsert_of_a_person_reuses_their_key() -> None:
    uow = await seeded(unit("ou-1"), employee("e-1"))
    key_before = uow.keys.keys[(T, "e-1")]

    await handlers.sync_people(conforms(uow), sync(employee("e-1", display_name="Ana")))

    assert types(uow) == [EmployeeUpsertedV2]
    [upsert] = uow.published(EmployeeUpsertedV2)
    assert isinstance(upsert, EmployeeUpsertedV2)
    assert upsert.sealed.key_id == key_before.key_id
    assert uow.keys.keys[(T, "e-1")] == key_before


async def test_an_unchanged_sync_publishes_nothing() -> None:
    uow = await seeded(unit("ou-1"), employee("e-1"))

    result = await handlers.sync_people(conforms(uow), sync(unit("ou-1"), employee("e-1")))

    assert (result.unchanged, result.events) == (2, 0)
    assert uow.events == []


async def test_a_sync_naming_an_unknown_manager_is_refused_whole_and_writes_nothing() -> None:
    uow = await seeded(unit("ou-1"))

    with pytest.raises(PeopleRejected) as refused:
        await handlers.sync_people(conforms(uow), sync(employee("e-1"), employee("e-2", "e-9")))

    assert [(p.kind, p.index, p.field) for p in refused.value.problems] == [
        ("employee", 1, "manager_id")
    ]
    assert refused.value.errors[0].loc == ("body", "employees", 1, "manager_id")
    assert await uow.people.employees(T) == {}
    assert uow.events == []


async def test_references_resolve_against_the_stored_chains_upward() -> None:
    uow = await seeded(unit("ou-1"), unit("ou-2", "ou-1"), employee("e-1"), employee("e-2", "e-1"))

    # A cycle through stored people: e-1 now reports to e-2, who reports to e-1.
    with pytest.raises(PeopleRejected) as refused:
        await handlers.sync_people(conforms(uow), sync(employee("e-1", "e-2")))
    assert "manager cycle" in refused.value.problems[0].msg

    result = await handlers.sync_people(conforms(uow), sync(employee("e-3", "e-2", unit="ou-2")))
    assert result.created == 1


async def test_a_large_sync_checks_against_the_whole_tenant_and_finds_the_same_problems() -> None:
    many = [employee(f"e-{i:05}") for i in range(handlers.FULL_STATE_THRESHOLD + 1)]
    uow = await seeded(unit("ou-1"))

    result = await handlers.sync_people(conforms(uow), sync(*many))
    assert result.created == len(many)

    with pytest.raises(PeopleRejected):
        await handlers.sync_people(conforms(uow), sync(*many, employee("e-x", "e-none")))


async def test_a_write_older_than_the_stored_version_is_stale_and_changes_nothing() -> None:
    newer, older = datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    uow = FakePeopleUnitOfWork()
    await handlers.sync_people(
        conforms(uow), sync(unit("ou-1"), employee("e-1"), versions={"e-1": newer})
    )
    uow.events.clear()

    result = await handlers.sync_people(
        conforms(uow), sync(employee("e-1", display_name="Old"), versions={"e-1": older})
    )

    assert result.stale == 1
    assert result.items[0].outcome == "stale"
    stored = (await uow.people.employees(T))["e-1"]
    assert stored.employee.display_name == "Person e-1"
    assert stored.source_updated_at == newer
    assert uow.events == []


async def test_an_unchanged_person_with_a_newer_version_stores_only_the_version() -> None:
    later = datetime(2026, 4, 1, tzinfo=UTC)
    uow = await seeded(unit("ou-1"), employee("e-1"))

    await handlers.sync_people(conforms(uow), sync(employee("e-1"), versions={"e-1": later}))

    assert (await uow.people.employees(T))["e-1"].source_updated_at == later
    assert uow.events == []


async def test_a_source_without_heads_keeps_the_head_a_unit_has() -> None:
    uow = await seeded(unit("ou-1", head="e-1"), employee("e-1"))

    await handlers.sync_people(conforms(uow), sync(unit("ou-1"), keep_unit_heads=True))
    assert (await uow.people.org_units(T))["ou-1"].head_id == "e-1"

    await handlers.sync_people(conforms(uow), sync(unit("ou-1")))
    assert (await uow.people.org_units(T))["ou-1"].head_id is None


async def test_progress_hears_the_plan_and_every_write() -> None:
    planned: list[int] = []
    written: list[int] = []
    uow = FakePeopleUnitOfWork()

    await handlers.sync_people(
        conforms(uow),
        sync(unit("ou-1"), employee("e-1")),
        progress=SyncProgress(planned=planned.append, written=written.append),
    )

    assert planned == [4]
    assert sum(written) == 4


# -- one item: upsert_employee, upsert_org_unit ----------------------------------------------------


async def test_upserting_an_employee_answers_created_then_unchanged_with_the_stored_state() -> None:
    uow = await seeded(unit("ou-1"))
    command = commands.UpsertEmployee(
        tenant=T, employee=employee("e-1"), source_updated_at=datetime(2026, 1, 1, tzinfo=UTC)
    )

    outcome, stored = await handlers.upsert_employee(conforms(uow), command)
    assert outcome == "created"
    assert stored.employee == employee("e-1")
    assert stored.source_updated_at == datetime(2026, 1, 1, tzinfo=UTC)

    outcome, _ = await handlers.upsert_employee(conforms(uow), command)
    assert outcome == "unchanged"
    assert types(uow) == [PersonKeyIssued, EmployeeUpsertedV2]


async def test_upserting_an_org_unit_answers_created_then_updated() -> None:
    uow = FakePeopleUnitOfWork()

    created = await handlers.upsert_org_unit(
        conforms(uow), commands.UpsertOrgUnit(tenant=T, org_unit=unit("ou-1"))
    )
    renamed = OrgUnit(org_unit_id="ou-1", name="Platform")
    updated = await handlers.upsert_org_unit(
        conforms(uow), commands.UpsertOrgUnit(tenant=T, org_unit=renamed)
    )

    assert (created, updated) == ("created", "updated")
    assert (await uow.people.org_units(T))["ou-1"].name == "Platform"
    assert types(uow) == [OrgUnitUpserted, OrgUnitUpserted]


# -- deactivate_employee ---------------------------------------------------------------------------


async def test_a_deactivation_is_announced_once_and_a_retry_changes_nothing() -> None:
    uow = await seeded(unit("ou-1"), employee("e-1"))
    effective = datetime(2026, 3, 31, 18, tzinfo=UTC)
    command = commands.DeactivateEmployee(tenant=T, employee_id="e-1", effective_at=effective)

    after, changed = await handlers.deactivate_employee(conforms(uow), command)
    again, changed_again = await handlers.deactivate_employee(conforms(uow), command)

    assert (changed, changed_again) == (True, False)
    assert not after.employee.active
    assert after.deactivated_at == uow.clock.now()
    assert again.deactivated_at == after.deactivated_at
    [event] = uow.events
    assert isinstance(event, EmployeeDeactivated)
    assert (event.employee_id, event.effective_at) == ("e-1", effective)


async def test_deactivating_someone_unknown_is_not_found() -> None:
    uow = FakePeopleUnitOfWork()
    with pytest.raises(NotFound):
        await handlers.deactivate_employee(
            conforms(uow), commands.DeactivateEmployee(tenant=T, employee_id="e-404")
        )


async def test_an_active_upsert_ends_a_deactivation() -> None:
    uow = await seeded(unit("ou-1"), employee("e-1"))
    await handlers.deactivate_employee(
        conforms(uow), commands.DeactivateEmployee(tenant=T, employee_id="e-1")
    )

    await handlers.sync_people(conforms(uow), sync(employee("e-1")))

    stored = (await uow.people.employees(T))["e-1"]
    assert stored.employee.active
    assert stored.deactivated_at is None


# -- SCIM: provision_user, remove_user -------------------------------------------------------------


async def test_a_provisioned_user_joins_their_department_under_their_organization() -> None:
    uow = FakePeopleUnitOfWork()
    command = commands.ProvisionUser(
        tenant=T, user=user(employee_number="e-7", department="Platform", organization="Acme")
    )

    stored, outcome = await handlers.provision_user(conforms(uow), command)

    assert outcome == "created"
    assert stored.employee.employee_id == "e-7"
    assert stored.employee.hired_on == uow.clock.now().date()
    assert stored.identity.user_name == "ana@acme.example.com"
    units = await uow.people.org_units(T)
    platform = units[model.unit_id_for_name("Platform")]
    assert platform.parent_id == model.unit_id_for_name("Acme")
    assert stored.employee.org_unit_id == platform.org_unit_id
    assert types(uow) == [OrgUnitUpserted, OrgUnitUpserted, PersonKeyIssued, EmployeeUpsertedV2]


async def test_a_user_with_no_department_joins_unassigned() -> None:
    uow = FakePeopleUnitOfWork()

    stored, _ = await handlers.provision_user(
        conforms(uow), commands.ProvisionUser(tenant=T, user=user(employee_number="e-1"))
    )

    assert stored.employee.org_unit_id == model.UNASSIGNED_UNIT.org_unit_id


async def test_a_taken_user_name_or_employee_number_is_a_conflict() -> None:
    uow = FakePeopleUnitOfWork()
    await handlers.provision_user(
        conforms(uow), commands.ProvisionUser(tenant=T, user=user(employee_number="e-1"))
    )

    with pytest.raises(Conflict, match="userName"):
        await handlers.provision_user(
            conforms(uow), commands.ProvisionUser(tenant=T, user=user(employee_number="e-2"))
        )
    with pytest.raises(Conflict, match="already exists"):
        await handlers.provision_user(
            conforms(uow),
            commands.ProvisionUser(
                tenant=T, user=user("bo@acme.example.com", employee_number="e-1")
            ),
        )


async def test_replacing_a_user_checks_the_version_named_and_the_version_patched() -> None:
    uow = FakePeopleUnitOfWork()
    stored, _ = await handlers.provision_user(
        conforms(uow), commands.ProvisionUser(tenant=T, user=user(employee_number="e-1"))
    )
    version = model.employee_version(stored)

    def replace(**kw: Any) -> commands.ProvisionUser:
        return commands.ProvisionUser(
            tenant=T, user=user(display_name="Ana V."), employee_id="e-1", **kw
        )

    with pytest.raises(PreconditionFailed):
        await handlers.provision_user(conforms(uow), replace(if_match='W/"other"'))
    with pytest.raises(Conflict, match="changed"):
        await handlers.provision_user(conforms(uow), replace(based_on='W/"other"'))
    after, outcome = await handlers.provision_user(
        conforms(uow), replace(if_match=version, based_on=version)
    )
    assert outcome == "updated"
    assert after.employee.display_name == "Ana V."


async def test_an_inactive_user_is_deactivated() -> None:
    uow = FakePeopleUnitOfWork()

    stored, _ = await handlers.provision_user(
        conforms(uow),
        commands.ProvisionUser(tenant=T, user=user(employee_number="e-1", active=False)),
    )

    assert stored.deactivated_at is not None
    assert types(uow)[-1] is EmployeeDeactivated


async def test_a_removed_user_is_deactivated_and_no_longer_served_over_scim() -> None:
    uow = FakePeopleUnitOfWork()
    await handlers.provision_user(
        conforms(uow), commands.ProvisionUser(tenant=T, user=user(employee_number="e-1"))
    )

    await handlers.remove_user(conforms(uow), commands.RemoveUser(tenant=T, employee_id="e-1"))

    stored = (await uow.people.employees(T))["e-1"]
    assert stored.scim_deleted_at == uow.clock.now()
    assert stored.deactivated_at is not None
    assert await uow.people.scim_users(T, offset=0, limit=10) == (0, [])
    with pytest.raises(NotFound):
        await handlers.remove_user(conforms(uow), commands.RemoveUser(tenant=T, employee_id="e-1"))


async def test_a_user_deleted_over_scim_comes_back_with_their_history() -> None:
    uow = FakePeopleUnitOfWork()
    await handlers.provision_user(
        conforms(uow), commands.ProvisionUser(tenant=T, user=user(employee_number="e-1"))
    )
    await handlers.remove_user(conforms(uow), commands.RemoveUser(tenant=T, employee_id="e-1"))

    stored, _ = await handlers.provision_user(
        conforms(uow), commands.ProvisionUser(tenant=T, user=user(employee_number="e-1"))
    )

    assert stored.scim_deleted_at is None
    assert stored.employee.active


# -- SCIM: provision_group, remove_group -----------------------------------------------------------


async def test_a_provisioned_group_is_an_org_unit_with_its_external_id() -> None:
    uow = FakePeopleUnitOfWork()
    command = commands.ProvisionGroup(tenant=T, name="Platform", external_id="g-1")

    unit_, outcome = await handlers.provision_group(conforms(uow), command)

    assert outcome == "created"
    assert await uow.people.scim_groups(T, offset=0, limit=10) == (1, [(unit_, "g-1")])
    assert types(uow) == [OrgUnitUpserted]
    with pytest.raises(Conflict):
        await handlers.provision_group(conforms(uow), command)


async def test_renaming_a_group_checks_its_version() -> None:
    uow = FakePeopleUnitOfWork()
    created, _ = await handlers.provision_group(
        conforms(uow), commands.ProvisionGroup(tenant=T, name="Platform")
    )
    version = model.org_unit_version(created, None)

    def rename(**kw: Any) -> commands.ProvisionGroup:
        return commands.ProvisionGroup(
            tenant=T, name="Platform Eng", org_unit_id=created.org_unit_id, **kw
        )

    with pytest.raises(PreconditionFailed):
        await handlers.provision_group(conforms(uow), rename(if_match='"nope"'))
    with pytest.raises(Conflict):
        await handlers.provision_group(conforms(uow), rename(based_on='"nope"'))
    renamed, outcome = await handlers.provision_group(conforms(uow), rename(if_match=version))
    assert (renamed.name, outcome) == ("Platform Eng", "updated")


async def test_a_removed_group_is_no_longer_served_but_the_unit_stays() -> None:
    uow = FakePeopleUnitOfWork()
    created, _ = await handlers.provision_group(
        conforms(uow), commands.ProvisionGroup(tenant=T, name="Platform")
    )
    command = commands.RemoveGroup(tenant=T, org_unit_id=created.org_unit_id)

    await handlers.remove_group(conforms(uow), command)

    assert await uow.people.scim_groups(T, offset=0, limit=10) == (0, [])
    assert created.org_unit_id in await uow.people.org_units(T)
    with pytest.raises(NotFound):
        await handlers.remove_group(conforms(uow), command)


# -- erasure ---------------------------------------------------------------------------------------


async def test_an_erasure_destroys_the_key_deletes_the_person_and_announces_it() -> None:
    uow = await seeded(unit("ou-1"), employee("e-1"), employee("e-2", "e-1"))
    key_id = uow.keys.keys[(T, "e-1")].key_id

    state, new = await handlers.erase_employee(
        conforms(uow), commands.EraseEmployee(tenant=T, employee_id="e-1")
    )

    assert new
    assert state.state == "in_progress"
    assert set(state.parts) == {"people"}
    assert state.pending() == [s for s in SERVICES if s != "people"]
    assert uow.keys.keys[(T, "e-1")].wrapped_key is None
    assert "e-1" not in await uow.people.employees(T)
    assert uow.forgotten == [(T, "e-1")]
    assert uow.erasures.withdrawn == [(T, "e-1")]
    assert uow.compacted
    destroyed, erased, reported = uow.events
    assert isinstance(destroyed, PersonKeyDestroyed)
    assert destroyed.key_id == key_id
    assert isinstance(erased, EmployeeErased)
    assert erased.erasure_id == state.erasure_id
    assert isinstance(reported, PersonDataErased)
    assert reported.service == "people"
    assert await uow.erasures.get(T, state.erasure_id) == state


async def test_erasing_a_person_twice_answers_with_the_first_erasure() -> None:
    uow = await seeded(unit("ou-1"), employee("e-1"))
    command = commands.EraseEmployee(tenant=T, employee_id="e-1")
    first, _ = await handlers.erase_employee(conforms(uow), command)
    uow.events.clear()

    again, new = await handlers.erase_employee(conforms(uow), command)

    assert (again, new) == (first, False)
    assert uow.events == []


async def test_erasing_someone_unknown_is_not_found() -> None:
    uow = FakePeopleUnitOfWork()
    with pytest.raises(NotFound):
        await handlers.erase_employee(
            conforms(uow), commands.EraseEmployee(tenant=T, employee_id="e-404")
        )


async def test_an_erased_id_is_never_used_again_but_stays_a_valid_manager() -> None:
    uow = await seeded(unit("ou-1"), employee("e-1"), employee("e-2", "e-1"))
    await handlers.erase_employee(
        conforms(uow), commands.EraseEmployee(tenant=T, employee_id="e-1")
    )

    with pytest.raises(Erased):
        await handlers.sync_people(conforms(uow), sync(employee("e-1")))
    result = await handlers.sync_people(
        conforms(uow), sync(employee("e-2", "e-1", display_name="Bo"))
    )
    assert result.updated == 1


def reported(
    erasure_id: str, service: Service, employee_id: str = "e-1"
) -> Envelope[PersonDataErased]:
    event = PersonDataErased(
        tenant_id=T,
        occurred_at=datetime(2026, 1, 6, tzinfo=UTC),
        employee_id=employee_id,
        erasure_id=erasure_id,
        service=service,
    )
    return Envelope(
        id=f"ev-{service}",
        source=f"/rhythm/{service}",
        type=event.type,
        time=event.occurred_at,
        subject=f"employee/{employee_id}",
        tenant_id=T,
        event=event,
    )


async def test_the_last_service_to_report_its_part_completes_the_erasure() -> None:
    uow = await seeded(unit("ou-1"), employee("e-1"))
    state, _ = await handlers.erase_employee(
        conforms(uow), commands.EraseEmployee(tenant=T, employee_id="e-1")
    )
    others = [s for s in SERVICES if s != "people"]

    for service in others[:-1]:
        await handlers.record_erasure_part(conforms(uow), reported(state.erasure_id, service))
    waiting = await uow.erasures.get(T, state.erasure_id)
    assert waiting is not None
    assert waiting.pending() == [others[-1]]
    assert waiting.completed_at is None

    uow.clock.advance(timedelta(minutes=5))
    await handlers.record_erasure_part(conforms(uow), reported(state.erasure_id, others[-1]))

    done = await uow.erasures.get(T, state.erasure_id)
    assert done is not None
    assert done.state == "completed"
    assert done.completed_at == uow.clock.now()
    assert done.parts[others[0]] == datetime(2026, 1, 6, tzinfo=UTC)


async def test_a_report_of_an_unknown_erasure_or_another_person_is_logged_and_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    uow = await seeded(unit("ou-1"), employee("e-1"))
    state, _ = await handlers.erase_employee(
        conforms(uow), commands.EraseEmployee(tenant=T, employee_id="e-1")
    )

    with caplog.at_level(logging.WARNING, logger="rhythm.people"):
        await handlers.record_erasure_part(conforms(uow), reported("er-unknown", "goals"))
        await handlers.record_erasure_part(
            conforms(uow), reported(state.erasure_id, "goals", employee_id="e-2")
        )

    assert [r.message for r in caplog.records] == ["erasure_part_unknown"] * 2
    after = await uow.erasures.get(T, state.erasure_id)
    assert after is not None
    assert set(after.parts) == {"people"}
