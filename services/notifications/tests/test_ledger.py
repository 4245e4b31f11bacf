"""The dispatcher's group commits: a 'sending' mark is committed on its own, never held back by
outcomes (and the events they publish) that arrived in the same moment.

An email holds its SMTP session until its mark is committed, so whatever else that commit does
is time the session spends idle; measured in the end-to-end benchmark, the mark was over half of
a session's time per email."""

from __future__ import annotations

from typing import Any

from notifications_harness import SmtpSink, StartService, employee
from sqlalchemy import event
from test_email_delivery import missed

from rhythm_notifications.adapters import db


class Transactions:
    """What each committed transaction of an engine wrote: marks, outcomes, outbox rows."""

    def __init__(self) -> None:
        self.open: dict[int, set[str]] = {}
        self.committed: list[set[str]] = []

    def attach(self, engine: Any) -> None:
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(self, conn: Any, cursor: Any, sql: str, params: Any, *_: Any) -> None:
        kinds = self.open.setdefault(id(conn.connection.dbapi_connection), set())
        text = sql.lower()
        values = [params] if isinstance(params, dict) else list(params or ())
        if text.startswith("update deliveries"):
            kinds.add("mark" if "sending" in map(str, _flat(values)) else "outcome")
        elif text.startswith("insert into outbox"):
            kinds.add("outbox")

    def _commit(self, conn: Any) -> None:
        kinds = self.open.pop(id(conn.connection.dbapi_connection), set())
        if kinds:
            self.committed.append(kinds)


def _flat(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if isinstance(v, dict):
            out += list(v.values())
        elif isinstance(v, list | tuple):
            out += _flat(list(v))
        else:
            out.append(v)
    return out


async def test_a_sending_mark_is_committed_without_the_outcomes_waiting_beside_it(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    seen = Transactions()
    async with start_service(settings={"smtp_connections": 2}) as svc:
        async with svc.runtime.uow() as uow:
            seen.attach(uow.session.bind.sync_engine)
        reports = [employee(tenant, f"e-{i}", manager_id="m-1") for i in range(12)]
        await svc.add_people(employee(tenant, "m-1"), *reports)
        await svc.publish([missed(tenant, f"e-{i}") for i in range(12)])
        await svc.wait_deliveries(24)  # twelve emails, the manager's first, the rest digested
        seen.committed.clear()
        await svc.dispatch()
        sent = await svc.deliveries(db.deliveries.c.status == "sent")
    assert len(sent) == 13
    assert smtp_sink.handler.count() == 13
    marks = [kinds for kinds in seen.committed if "mark" in kinds]
    outcomes = [kinds for kinds in seen.committed if "outcome" in kinds]
    assert marks
    assert outcomes
    # Every mark went alone: no outcome, no outbox row beside it.
    assert all(kinds == {"mark"} for kinds in marks), seen.committed
