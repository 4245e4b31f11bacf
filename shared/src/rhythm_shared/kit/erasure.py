"""The end every service's erasure shares, after it has removed its own data about the person."""

from __future__ import annotations

from rhythm_shared.contracts.v1 import EmployeeErased, PersonDataErased
from rhythm_shared.kit.ports import UnitOfWorkPort


async def finish_erasure(uow: UnitOfWorkPort, event: EmployeeErased, *, service: str) -> None:
    """Forget the kit's rows that name the person, report ``PersonDataErased`` in the same
    transaction (a repeated ``EmployeeErased`` is a duplicate for the inbox and reports nothing
    twice), and leave no deleted bytes in the database's log once it commits."""
    await uow.forget_person(event.tenant_id, event.employee_id)
    await uow.publish(
        PersonDataErased(
            tenant_id=event.tenant_id,
            occurred_at=uow.clock.now(),
            employee_id=event.employee_id,
            erasure_id=event.erasure_id,
            service=service,
        )
    )
    uow.compact_after_commit()
