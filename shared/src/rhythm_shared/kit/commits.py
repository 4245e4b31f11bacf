"""Committing a consumer's offsets behind its batches, not in front of the next one.

A batch's offsets are committed once its transaction has committed (DESIGN §3); waiting for the
broker's answer before fetching the next batch would leave a consumer that is behind idle for a
round trip a batch. :class:`OffsetCommitter` sends the commit in the background instead while
the consumer is behind (its batches are full): one commit in flight at a time, and the batches
applied meanwhile go together in the next one. A consumer that has caught up waits for its
commit as before: it has nothing else to do, and a quick return to an empty topic would only
make its next batches smaller and its transactions more (on SQLite each one takes the single
writer from the service's other writers). Only offsets of applied records are ever committed,
so nothing is skipped; what a crash leaves uncommitted is read again, and the inbox (or
reporting's stored positions) makes that replay harmless.

A commit that fails (the broker away, the group rebalancing) is retried after a pause for the
partitions still assigned; a partition that went to another member is its new owner's to commit.
While the service stops, each batch waits for its commit again (:meth:`OffsetCommitter.close`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

log = logging.getLogger("rhythm.consumer")


class OffsetCommitter:
    """The offsets of one consumer group's applied batches, committed in the background."""

    def __init__(
        self,
        group: str,
        *,
        on_committed: Callable[[Iterable[TopicPartition]], None] = lambda _: None,
        retry_s: float = 1.0,
    ) -> None:
        self.group = group
        self.on_committed = on_committed
        self.retry_s = retry_s
        self._pending: dict[TopicPartition, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def applied(
        self,
        consumer: AIOKafkaConsumer,
        records: Iterable[ConsumerRecord[Any, Any]],
        *,
        behind: bool = True,
    ) -> None:
        """The batch of ``records`` is applied: commit the offsets after them. Only while the
        consumer is ``behind`` (its batch was full: more records are waiting) does it go on
        before the commit is answered; a consumer that has caught up waits, as it has nothing
        else to do, and leaves the database to the service's other writers meanwhile."""
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            if record.offset >= self._pending.get(tp, 0):
                self._pending[tp] = record.offset + 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._commit(consumer), name=f"commit-{self.group}")
        if self._closing or not behind:
            await self.flush()

    async def flush(self) -> None:
        """Wait until what is pending is committed, or found impossible to commit."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def close(self) -> None:
        """The consumer is stopping: what is pending goes out now, and each batch applied from
        here on waits for its own commit, so a clean stop leaves nothing to read again."""
        self._closing = True
        await self.flush()

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        while self._pending:
            offsets, self._pending = self._pending, {}
            try:
                await consumer.commit(offsets)
            except KafkaError as exc:
                assigned = consumer.assignment()
                kept = {tp: o for tp, o in offsets.items() if tp in assigned}
                for tp, offset in kept.items():
                    self._pending[tp] = max(offset, self._pending.get(tp, 0))
                log.info(
                    "offset_commit_failed",
                    extra={"group": self.group, "error": repr(exc), "retrying": len(kept)},
                )
                if self._closing or not kept:
                    return  # a stop does not wait for the broker: the replay is harmless
                await asyncio.sleep(self.retry_s)
                continue
            self.on_committed(offsets)
