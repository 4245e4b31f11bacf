"""The consumer: every topic (group ``reporting``), applied a batch at a time.

Reporting sees everything an organisation does, so it runs the kit's consumer in its positions
mode (:mod:`rhythm_shared.kit.consumer`) rather than with an inbox row and handler per event:
per batch, in ONE transaction, the records below each partition's stored position are skipped,
the rest are projected by :func:`rhythm_reporting.handlers.project_events` with bulk upserts,
unreadable records are dead-lettered to ``rhythm.dlq.reporting``, and the new positions are
stored (``consumer_positions``, per read-model generation). On every partition assignment the
consumer seeks to the stored positions, so an empty database reads every topic from the start.

Facts are keyed by their own ids, so even a duplicate record at a new offset changes nothing.

Replicas of the group (on PostgreSQL) each apply the partitions assigned to them, side by side:
the unit of work takes turns only where batches meet (a batch that changes people or org units
runs alone; others lock the facts they fold, and add to shared counters in key order), and
fences each partition's stored position against a replica that lost it in a rebalance
(:class:`rhythm_reporting.adapters.unit_of_work.SqlReportingUnitOfWork`). A deadlock between
replicas is retried like an unavailable database, never blamed on the batch's records.
"""

from __future__ import annotations

from collections.abc import Sequence

from rhythm_reporting.adapters.unit_of_work import ReportingRuntime, SqlReportingUnitOfWork
from rhythm_reporting.commands import ProjectEvents
from rhythm_reporting.handlers import project_events
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.topics import TOPICS
from rhythm_shared.kit.consumer import ConsumerSpec

GROUP = "reporting"


async def project_batch(uow: SqlReportingUnitOfWork, envelopes: Sequence[Envelope]) -> None:
    await project_events(uow, ProjectEvents(events=tuple(envelopes)))


def spec() -> ConsumerSpec:
    return ConsumerSpec(group=GROUP, topics=list(TOPICS), batch_handler=project_batch)


def consumers(runtime: ReportingRuntime) -> Sequence[ConsumerSpec]:
    return [spec()]
