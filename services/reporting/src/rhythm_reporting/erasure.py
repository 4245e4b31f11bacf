"""Erasure (GDPR Art. 17, issue 14): reports keep their counts, nothing names the person.

On ``EmployeeErased``, in the transaction of the batch that carries it (with the stored
positions), for every read-model generation:

* the person's facts (obligations, check-ins, reflections, feedback given and received, goals
  they own) move to a pseudonymous id, ``erased-<hash of tenant, id and a random salt kept
  nowhere>``: every count and rollup stays as it was (their rows among the small-group rule's
  contributors move to the same id), and nobody can tell whose they were; the titles of goals
  they owned are blanked;
* their org history and current row move to the same id with the name blanked, so a later
  rebuild of a fact still attributes it to the unit they were in;
* the kit's directory keeps the id as a tombstone and destroys their data key; published outbox
  rows and stored answers that name them go;
* ``PersonDataErased(service="reporting")`` goes out through the kit's outbox (the relay
  publishes it), once: a duplicate ``EmployeeErased`` finds the tombstone and reports nothing.

The person's id remains where it is the id of others' facts (the manager of someone's check-in,
the head of a unit), as in every service. On SQLite the ingest runs
``PRAGMA wal_checkpoint(TRUNCATE)`` after the batch commits (see entrypoints/consumers.py).
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import delete, or_, update

from rhythm_reporting.adapters import db
from rhythm_reporting.adapters.store import ReadModelStore
from rhythm_shared.contracts.envelope import new_event_id, to_record
from rhythm_shared.contracts.v1 import EmployeeErased, PersonDataErased
from rhythm_shared.kit.clock import Clock, SystemClock

SERVICE = "reporting"


def pseudonym(tenant: str, employee_id: str) -> str:
    """A fresh id for the person's facts; the salt is forgotten, so nothing maps it back."""
    salt = secrets.token_bytes(16)
    digest = hashlib.sha256(b"\x1f".join([tenant.encode(), employee_id.encode(), salt]))
    return f"erased-{digest.hexdigest()[:24]}"


async def pseudonymise(store: ReadModelStore, tenant: str, person: str) -> str:
    """Move what the read model holds of ``person`` (every generation) to a pseudonymous id."""
    session = store.session
    alias = pseudonym(tenant, person)
    for kind, (table, _) in db.FACT_TABLES.items():
        for column in db.PEOPLE_COLUMNS[kind]:
            where = [table.c.tenant_id == tenant, table.c[column] == person]
            values: dict[str, str | None] = {column: alias}
            if kind == "goal":
                where.append(table.c.owner_type == "person")
                # A goal of their own may say something of them: its title goes with the name.
                values["title"] = None
            await session.execute(update(table).where(*where).values(values))
    # The contributors the small-group rule counts: the same person, under the same alias.
    c = db.unit_contributors
    await session.execute(
        update(c).where(c.c.tenant_id == tenant, c.c.person_id == person).values(person_id=alias)
    )
    v, e = db.employee_versions, db.employees
    await session.execute(
        update(v)
        .where(v.c.tenant_id == tenant, v.c.employee_id == person)
        .values(employee_id=alias, display_name="")
    )
    await session.execute(
        update(e)
        .where(e.c.tenant_id == tenant, e.c.employee_id == person)
        .values(employee_id=alias, display_name=None)
    )
    return alias


async def erase_person(
    store: ReadModelStore, event: EmployeeErased, *, clock: Clock | None = None
) -> None:
    """The read model's part of an erasure (the directory's tombstone is applied by the caller)."""
    tenant, person = event.tenant_id, event.employee_id
    await pseudonymise(store, tenant, person)
    await _forget_kit_rows(store, tenant, person)
    report = PersonDataErased(
        tenant_id=tenant,
        occurred_at=(clock or SystemClock()).now(),
        employee_id=person,
        erasure_id=event.erasure_id,
        service=SERVICE,
    )
    event_id = new_event_id()
    record = to_record(report, source=SERVICE, event_id=event_id, trace_headers={})
    await store.session.execute(
        db.kit.outbox.insert().values(
            event_id=event_id,
            topic=record.topic,
            key=record.key.decode(),
            event_type=report.type,
            headers=[[k, v.decode()] for k, v in record.headers],
            payload=record.value.decode(),
            created_at=report.occurred_at,
        )
    )


async def _forget_kit_rows(store: ReadModelStore, tenant: str, person: str) -> None:
    """Published events and stored answers that name the person (a LIKE on the id is broad —
    ``e-1`` also matches ``e-10`` — which only deletes a published row or a replay early)."""
    like = f"%{_escape_like(person)}%"
    o, i = db.kit.outbox, db.kit.idempotency
    await store.session.execute(
        delete(o).where(
            o.c.published_at.is_not(None),
            or_(o.c.payload.like(like, escape="\\"), o.c.key.like(like, escape="\\")),
        )
    )
    await store.session.execute(
        delete(i).where(
            i.c.tenant_id == tenant,
            or_(i.c.principal == person, i.c.response.like(like, escape="\\")),
        )
    )


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
