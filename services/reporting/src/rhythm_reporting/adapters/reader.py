"""Dashboard reads: on SQLite, a second engine whose transactions do not take the write lock.

The kit's SQLite engine begins every transaction IMMEDIATE (right for writers). Dashboard reads
only need a consistent snapshot, which a deferred transaction in WAL mode gives without waiting
for, or blocking, the ingest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


@dataclass(frozen=True)
class Reader:
    engine: AsyncEngine

    def connect(self) -> AsyncConnection:
        return self.engine.connect()


def make_reader(write_engine: AsyncEngine, url: str) -> Reader:
    if not url.startswith("sqlite"):
        return Reader(write_engine)
    engine = create_async_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA query_only=1")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA mmap_size=268435456")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    return Reader(engine)
