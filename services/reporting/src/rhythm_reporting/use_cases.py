"""Reporting's use cases: project a batch of events into the read model.

The dashboards' questions are answered in :mod:`rhythm_reporting.dashboards`.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from rhythm_reporting import erasure
from rhythm_reporting.adapters import db
from rhythm_reporting.adapters.store import ReadModelStore
from rhythm_reporting.domain.projection import (
    FACT_KINDS,
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
    fact_ref,
    link_completions,
    move_subtree,
    people_of,
    resolve,
)
from rhythm_shared.contracts.base import Event
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
from rhythm_shared.kit.clock import Clock
from rhythm_shared.kit.people import DirectoryProjection

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
    #: People erased by this batch (the ingest truncates SQLite's WAL after the commit).
    erased: int = 0


_DIRECTORY = DirectoryProjection(db.directory)


async def project_events(
    store: ReadModelStore,
    events: Sequence[tuple[str, Event]],
    *,
    kek: bytes | None = None,
    clock: Clock | None = None,
) -> Projected:
    """Apply ``(event id, event)`` pairs, in order, to the store's generation. The caller owns
    the transaction (and stores the consumed positions in it).

    ``kek`` opens the names an upsert v2 carries sealed (without it they project blank)."""
    by_tenant: dict[str, list[tuple[str, Event]]] = defaultdict(list)
    erasures: list[EmployeeErased] = []
    # Keys first: an upsert v2 and the key that opens it come on two topics, in either order
    # within a batch (a key is issued once, so applying it early changes nothing else).
    for _, event in events:
        if isinstance(event, PersonKeyIssued | PersonKeyDestroyed):
            await _DIRECTORY.keys.apply(store.session, event)
    for event_id, event in events:
        by_tenant[event.tenant_id].append((event_id, event))
        # Access decisions read the kit's directory (domain/access.py): same transaction, its
        # one rule, so a late or replayed people event changes nothing there.
        if isinstance(event, EmployeeErased):
            # Reported once: a duplicate finds the tombstone (and a rebuild replays into it).
            if not await _erased(store, event.tenant_id, [event.employee_id]):
                erasures.append(event)
            await _DIRECTORY.apply_employee(store.session, event, event_id)
        elif isinstance(event, PeopleEvent):
            await _DIRECTORY.apply_employee(store.session, event, event_id)
        elif isinstance(event, OrgUnitUpserted):
            await _DIRECTORY.apply_org_unit(store.session, event, event_id)
    facts = rows = 0
    for tenant, tenant_events in by_tenant.items():
        f, r = await _project_tenant(store, tenant, tenant_events, kek)
        facts += f
        rows += r
    for event in erasures:
        await erasure.erase_person(store, event, clock=clock)
    # Facts about an erased person that arrive after the erasure go under a pseudonym too.
    for tenant, tenant_events in by_tenant.items():
        named = {p for _, e in tenant_events for p in _people_named(e)}
        named -= {e.employee_id for e in erasures if e.tenant_id == tenant}
        for person in sorted(await _erased(store, tenant, named)):
            await erasure.pseudonymise(store, tenant, person)
    return Projected(len(events), facts, rows, erased=len(erasures))


def _people_named(event: Event) -> list[str]:
    ref = fact_ref(event, "")
    if ref is None:
        return []
    return [v for c in db.PEOPLE_COLUMNS[ref.kind] if isinstance(v := getattr(event, c, None), str)]


async def _erased(store: ReadModelStore, tenant: str, people: Sequence[str] | set[str]) -> set[str]:
    """Those of ``people`` the directory holds as erased (tombstones)."""
    if not people:
        return set()
    e = db.directory.employees
    found = await store.session.scalars(
        select(e.c.employee_id).where(
            e.c.tenant_id == tenant,
            e.c.employee_id.in_(sorted(people)),
            e.c.erased_at.is_not(None),
        )
    )
    return set(found.all())


async def _display_name(store: ReadModelStore, event: EmployeeUpsertedV2, kek: bytes | None) -> str:
    """The name an upsert v2 carries sealed, opened with the person's key ("" if it won't)."""
    if kek is None:
        return ""
    k = db.directory.keys
    row = (
        await store.session.execute(
            select(k.c.key_id, k.c.wrapped_key).where(
                k.c.tenant_id == event.tenant_id,
                k.c.employee_id == event.employee_id,
                k.c.wrapped_key.is_not(None),
            )
        )
    ).first()
    if row is None:
        return ""
    ids = {"tenant_id": event.tenant_id, "employee_id": event.employee_id}
    try:
        key = crypto.unwrap(kek, row.wrapped_key, key_id=row.key_id, **ids)
        return crypto.unseal(key, event.sealed.display_name, field="display_name", **ids)
    except crypto.Unreadable:
        return ""


async def _project_tenant(
    store: ReadModelStore, tenant: str, events: Sequence[tuple[str, Event]], kek: bytes | None
) -> tuple[int, int]:
    unit_events = [e for _, e in events if isinstance(e, OrgUnitUpserted)]
    people_events: dict[str, list[EmployeeEvent]] = defaultdict(list)
    fact_events: list[tuple[FactRef, Event]] = []
    wanted: dict[str, set[str]] = defaultdict(set)
    # An erased person's org history is gone for good: no later upsert brings it back.
    erased = await _erased(
        store, tenant, {e.employee_id for _, e in events if isinstance(e, PeopleEvent)}
    )
    for event_id, event in events:
        if isinstance(event, EmployeeErased):
            continue
        if isinstance(event, PeopleEvent):
            if event.employee_id in erased:
                continue
            if isinstance(event, EmployeeUpsertedV2):
                name = await _display_name(store, event, kek)
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
    await store.save_units(tenant, list(unit_rows.values()))
    await store.save_versions(tenant, new_versions)
    await store.save_employees(tenant, new_employees.values())
    for kind, changed in changed_facts.items():
        await store.save_facts(kind, tenant, changed)
    by_table: dict[str, list[tuple[str, tuple[Any, ...], dict[str, int]]]] = defaultdict(list)
    for (table, row_tenant, row_key), counts in deltas.nonzero():
        by_table[table].append((row_tenant, row_key, counts))
    for table, table_rows in by_table.items():
        await store.add_to_rollup(table, table_rows)
    return sum(len(c) for c in changed_facts.values()), sum(len(r) for r in by_table.values())
