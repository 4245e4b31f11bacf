"""Reporting's handlers: the projection of events into the read model (cosmicpython's
message bus is the model).

The ingest sends each batch as one :class:`ProjectEvents` command (``COMMAND_HANDLERS``), so
the facts of thousands of events are loaded and written in bulk. Inside it, the events that
change the people directory or the people's data keys each go to their handler
(``EVENT_HANDLERS``), then every event is folded into the facts (``domain/projection.py``)
and erasures run last. The dashboards' questions are answered in :mod:`rhythm_reporting.queries`.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rhythm_reporting.commands import Command, ProjectEvents
from rhythm_reporting.domain.erasure import SERVICE, pseudonym
from rhythm_reporting.domain.ports import ReportingUnitOfWork
from rhythm_reporting.domain.projection import (
    FACT_KINDS,
    PEOPLE_COLUMNS,
    SUBTREE_ROLLUPS,
    Deltas,
    EmployeeEvent,
    EmployeeVersion,
    Fact,
    FactRef,
    OrgTree,
    apply_employee_event,
    apply_event,
    contributions,
    current_employee,
    decision_slots,
    fact_ref,
    link_completions,
    move_subtree,
    people_of,
    resolve,
)
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import (
    CheckinCompleted,
    EmployeeDeactivated,
    EmployeeErased,
    EmployeeUpserted,
    OrgUnitUpserted,
    PersonKeyDestroyed,
    PersonKeyIssued,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2
from rhythm_shared.kit import crypto
from rhythm_shared.kit.erasure import finish_erasure

PeopleEvent = EmployeeUpserted | EmployeeUpsertedV2 | EmployeeDeactivated


async def _let_others_run() -> None:
    # Projection is CPU work on the event loop: give heartbeats and HTTP requests a turn
    # between its phases, so a big batch never looks like a dead consumer.
    await asyncio.sleep(0)


@dataclass(frozen=True)
class Projected:
    events: int
    facts: int
    rollup_rows: int
    #: People erased by this batch.
    erased: int = 0


# -- the people directory and data keys (one event at a time) ---------------------------------


async def apply_person_key(
    uow: ReportingUnitOfWork, envelope: Envelope[PersonKeyIssued | PersonKeyDestroyed]
) -> None:
    """Keep the person's data key (it opens the names upserts v2 carry), or destroy it."""
    await uow.people.apply_key(envelope.event)


async def apply_employee(
    uow: ReportingUnitOfWork,
    envelope: Envelope[EmployeeUpserted | EmployeeUpsertedV2 | EmployeeDeactivated],
) -> None:
    """Access decisions read the kit's directory (domain/access.py): same transaction, its one
    rule, so a late or replayed people event changes nothing there."""
    await uow.people.apply_employee(envelope.event, envelope.id)


async def apply_org_unit(uow: ReportingUnitOfWork, envelope: Envelope[OrgUnitUpserted]) -> None:
    await uow.people.apply_org_unit(envelope.event, envelope.id)


async def record_erasure(uow: ReportingUnitOfWork, envelope: Envelope[EmployeeErased]) -> None:
    """The directory's tombstone (it also destroys the data key); the read model's part is
    :func:`erase_person`, once the batch's facts are folded."""
    await uow.people.apply_employee(envelope.event, envelope.id)


EVENT_HANDLERS: dict[type[Event], Callable[[ReportingUnitOfWork, Any], Awaitable[None]]] = {
    PersonKeyIssued: apply_person_key,
    PersonKeyDestroyed: apply_person_key,
    EmployeeUpserted: apply_employee,
    EmployeeUpsertedV2: apply_employee,
    EmployeeDeactivated: apply_employee,
    EmployeeErased: record_erasure,
    OrgUnitUpserted: apply_org_unit,
}
#: Handled before the rest of the batch: an upsert v2 and the key that opens it come on two
#: topics, in either order within a batch (a key is issued once, so applying it early changes
#: nothing else).
_KEY_EVENTS = (PersonKeyIssued, PersonKeyDestroyed)


# -- the batch ---------------------------------------------------------------------------------


async def project_events(uow: ReportingUnitOfWork, cmd: ProjectEvents) -> Projected:
    """Apply the batch's events, in order, to the unit of work's read-model generation. The
    caller owns the transaction (and stores the consumed positions in it)."""
    events = cmd.events
    by_tenant: dict[str, list[tuple[str, Event]]] = defaultdict(list)
    erasures: list[EmployeeErased] = []
    for envelope in events:
        if isinstance(envelope.event, _KEY_EVENTS):
            await EVENT_HANDLERS[type(envelope.event)](uow, envelope)
    for envelope in events:
        event = envelope.event
        by_tenant[event.tenant_id].append((envelope.id, event))
        # An erasure is reported once: a duplicate finds the tombstone (a rebuild replays into it).
        if isinstance(event, EmployeeErased) and not await uow.read_model.erased(
            event.tenant_id, [event.employee_id]
        ):
            erasures.append(event)
        handler = EVENT_HANDLERS.get(type(event))
        if handler is not None and not isinstance(event, _KEY_EVENTS):
            await handler(uow, envelope)
    facts = rows = 0
    for tenant, tenant_events in by_tenant.items():
        f, r = await _project_tenant(uow, tenant, tenant_events)
        facts += f
        rows += r
    for erased in erasures:
        await erase_person(uow, erased)
    # Facts about an erased person that arrive after the erasure go under a pseudonym too.
    for tenant, tenant_events in by_tenant.items():
        named = {p for _, e in tenant_events for p in _people_named(e)}
        named -= {e.employee_id for e in erasures if e.tenant_id == tenant}
        for person in sorted(await uow.read_model.erased(tenant, named)):
            await uow.read_model.pseudonymise(tenant, person, pseudonym(tenant, person))
    return Projected(len(events), facts, rows, erased=len(erasures))


COMMAND_HANDLERS: dict[type[Command], Callable[[ReportingUnitOfWork, Any], Awaitable[Any]]] = {
    ProjectEvents: project_events,
}


async def erase_person(uow: ReportingUnitOfWork, event: EmployeeErased) -> None:
    """The read model's part of an erasure (domain/erasure.py); the directory's tombstone is
    :func:`record_erasure`'s."""
    tenant, person = event.tenant_id, event.employee_id
    await uow.read_model.pseudonymise(tenant, person, pseudonym(tenant, person))
    await finish_erasure(uow, event, service=SERVICE)


def _people_named(event: Event) -> list[str]:
    ref = fact_ref(event, "")
    if ref is None:
        return []
    return [v for c in PEOPLE_COLUMNS[ref.kind] if isinstance(v := getattr(event, c, None), str)]


async def _display_name(uow: ReportingUnitOfWork, event: EmployeeUpsertedV2) -> str:
    """The name an upsert v2 carries sealed, opened with the person's key ("" if it won't)."""
    if uow.kek is None:
        return ""
    found = await uow.read_model.data_key(event.tenant_id, event.employee_id)
    if found is None:
        return ""
    key_id, wrapped = found
    ids = {"tenant_id": event.tenant_id, "employee_id": event.employee_id}
    try:
        key = crypto.unwrap(uow.kek, wrapped, key_id=key_id, **ids)
        return crypto.unseal(key, event.sealed.display_name, field="display_name", **ids)
    except crypto.Unreadable:
        return ""


async def _project_tenant(
    uow: ReportingUnitOfWork, tenant: str, events: Sequence[tuple[str, Event]]
) -> tuple[int, int]:
    store = uow.read_model
    unit_events = [e for _, e in events if isinstance(e, OrgUnitUpserted)]
    people_events: dict[str, list[EmployeeEvent]] = defaultdict(list)
    fact_events: list[tuple[FactRef, Event]] = []
    wanted: dict[str, set[str]] = defaultdict(set)
    # An erased person's org history is gone for good: no later upsert brings it back.
    erased = await store.erased(
        tenant, {e.employee_id for _, e in events if isinstance(e, PeopleEvent)}
    )
    for event_id, event in events:
        if isinstance(event, EmployeeErased):
            continue
        if isinstance(event, PeopleEvent):
            if event.employee_id in erased:
                continue
            if isinstance(event, EmployeeUpsertedV2):
                name = await _display_name(uow, event)
                people_events[event.employee_id].append((event, name))
            else:
                people_events[event.employee_id].append((event, None))
            continue
        ref = fact_ref(event, event_id)
        if ref is None:
            continue
        fact_events.append((ref, event))
        wanted[ref.kind].add(ref.key)
        if isinstance(event, CheckinCompleted) and event.obligation_id:
            wanted["obligation"].add(event.obligation_id)

    # 1. The people whose history changes, and every fact attributed through them.
    changed_people = set(people_events)
    versions = await store.load_versions(tenant, changed_people)
    old_employees = await store.load_employees(tenant, changed_people)
    loaded: dict[FactRef, Fact] = {}
    for kind in FACT_KINDS:
        found = await store.load_facts(kind, tenant, wanted[kind])
        if changed_people:
            found.update(await store.load_facts_of_people(kind, tenant, changed_people))
        loaded.update({FactRef(kind, tenant, key): fact for key, fact in found.items()})
    old = {ref: dict(fact) for ref, fact in loaded.items()}

    new_versions: dict[str, list[EmployeeVersion]] = {}
    new_employees: dict[str, Fact] = {}
    for employee_id, history in people_events.items():
        by_start = {v.valid_from: v for v in versions.get(employee_id, [])}
        deactivated = (old_employees.get(employee_id) or {}).get("deactivated_at")
        for event, opened in history:
            deactivated = apply_employee_event(by_start, deactivated, event, display_name=opened)
        new_versions[employee_id] = [by_start[k] for k in sorted(by_start)]
        new_employees[employee_id] = current_employee(
            employee_id, new_versions[employee_id], deactivated
        )
    versions.update(new_versions)

    await _let_others_run()
    # 2. Fold the events into the facts.
    current_facts = loaded
    for ref, event in fact_events:
        apply_event(current_facts, ref, event)
    # Completed check-ins name their obligation: load those not in the batch before linking.
    named = {
        f["obligation_id"]
        for ref, f in current_facts.items()
        if ref.kind == "checkin" and f.get("obligation_id") and f.get("held_at") is not None
    }
    named -= {ref.key for ref in current_facts if ref.kind == "obligation"}
    for key, fact in (await store.load_facts("obligation", tenant, named)).items():
        ref = FactRef("obligation", tenant, key)
        current_facts[ref] = fact
        old[ref] = dict(fact)
    obligations = {ref: f for ref, f in current_facts.items() if ref.kind == "obligation"}
    link_completions(current_facts, obligations)
    current_facts.update(obligations)

    await _let_others_run()
    # 3. Attribute every touched fact to the unit its people were in at the time.
    needed = {p for ref, f in current_facts.items() for p in people_of(ref.kind, f)}
    missing = needed - set(versions)
    if missing:
        versions.update(await store.load_versions(tenant, missing))

    def versions_of(_: str, employee_id: str) -> list[EmployeeVersion]:
        return versions.get(employee_id, [])

    for ref, fact in current_facts.items():
        resolve(ref.kind, tenant, fact, versions_of)

    await _let_others_run()
    # 4. The tree: where rollups of moved units go; then the facts' contributions under it.
    units_needed: set[str] = set()
    for unit_event in unit_events:
        units_needed.update(u for u in (unit_event.org_unit_id, unit_event.parent_id) if u)
    for fact in (*current_facts.values(), *old.values()):
        units_needed.update(v for k, v in fact.items() if k.endswith("unit_id") and v)
    for employee in (*new_employees.values(), *old_employees.values()):
        if employee.get("org_unit_id"):
            units_needed.add(employee["org_unit_id"])
    tree = OrgTree(await store.load_unit_parents(tenant, units_needed))
    deltas = Deltas()
    unit_rows: dict[str, dict[str, Any]] = {}
    moved = [
        e.org_unit_id for e in unit_events if tree.parents.get(e.org_unit_id, "?") != e.parent_id
    ]
    subtree_totals = {
        table: await store.load_unit_rollups(table, tenant, moved) for table in SUBTREE_ROLLUPS
    }
    for unit_event in unit_events:
        unit = unit_event.org_unit_id
        old_parent = tree.parents.get(unit)
        unit_rows[unit] = {
            "org_unit_id": unit,
            "name": unit_event.name,
            "parent_id": unit_event.parent_id,
            "head_id": unit_event.head_id,
            "updated_at": unit_event.occurred_at,
        }
        if unit in tree.parents and old_parent == unit_event.parent_id:
            continue
        old_chain = tree.chain(old_parent)
        tree.set_parent(unit, unit_event.parent_id)
        new_chain = tree.chain(unit_event.parent_id)
        if unit in new_chain:  # a cycle in the HR data: keep the unit a root rather than loop
            tree.set_parent(unit, None)
            new_chain = ()
        for table in SUBTREE_ROLLUPS:
            totals: dict[tuple[Any, ...], dict[str, int]] = {
                k: dict(v) for k, v in subtree_totals[table].get(unit, {}).items()
            }
            for rest, pending in deltas.pending_for_unit(table, tenant, unit).items():
                merged = totals.setdefault(rest, {})
                for column, value in pending.items():
                    merged[column] = merged.get(column, 0) + value
            move_subtree(deltas, tenant, table, unit, totals, old_chain, new_chain)

    changed_facts: dict[str, dict[str, Fact]] = defaultdict(dict)
    for ref, fact in current_facts.items():
        before = old.get(ref)
        if before == fact:
            continue
        for c in contributions(ref.kind, before):
            deltas.add_contribution(tenant, c, tree, -1)
        for c in contributions(ref.kind, fact):
            deltas.add_contribution(tenant, c, tree, +1)
        changed_facts[ref.kind][ref.key] = fact
    for employee_id, employee in new_employees.items():
        for c in contributions("employee", old_employees.get(employee_id)):
            deltas.add_contribution(tenant, c, tree, -1)
        for c in contributions("employee", employee):
            deltas.add_contribution(tenant, c, tree, +1)

    await _let_others_run()
    # 5. Write it all (the caller commits, together with the consumed positions).
    if unit_rows or new_employees:
        await store.org_changed()
    await store.save_units(tenant, list(unit_rows.values()))
    await store.save_versions(tenant, new_versions)
    await store.save_employees(tenant, new_employees.values())
    for kind, changed in changed_facts.items():
        await store.save_facts(kind, tenant, changed)
    by_table: dict[str, list[tuple[str, tuple[Any, ...], dict[str, int]]]] = defaultdict(list)
    for (table, row_tenant, row_key), counts in deltas.nonzero():
        by_table[table].append((row_tenant, row_key, counts))
    for table, table_rows in sorted(by_table.items()):  # tables in one order across replicas
        await store.add_to_rollup(table, table_rows)
    await store.facts_changed(
        tenant,
        {
            slot
            for kind, changed in changed_facts.items()
            for key, fact in changed.items()
            for slot in decision_slots(kind, old.get(FactRef(kind, tenant, key)), fact)
        },
    )
    return sum(len(c) for c in changed_facts.values()), sum(len(r) for r in by_table.values())
