"""Run the outbox relay in its own process and SIGKILL it between publish and mark.

Usage: python -m tests.kit.relay_crash DATABASE_URL BOOTSTRAP TOPIC_PREFIX
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from rhythm_shared.kit.db import create_engine, create_reader_engine
from rhythm_shared.kit.kafka import make_producer
from rhythm_shared.kit.outbox import OutboxRelay
from tests.kit import sample


class RelayKilledBeforeMark(OutboxRelay):
    async def _mark(self, conn: Any, seqs: list[int]) -> None:
        # The records are on the broker (acks=all); the process dies before recording that.
        os.kill(os.getpid(), signal.SIGKILL)


async def main(database_url: str, bootstrap: str, prefix: str) -> None:
    engine = create_engine(database_url)
    producer = make_producer(bootstrap)
    await producer.start()
    relay = RelayKilledBeforeMark(
        engine,
        sample.kit,
        producer,
        topic_prefix=prefix,
        reader=create_reader_engine(database_url, engine),
    )
    await relay.publish_pending()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
