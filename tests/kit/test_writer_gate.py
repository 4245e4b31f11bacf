"""The SQLite writer gate: one writer at a time, in arrival order, an urgent writer before the
ones waiting but never twice in a row while one of them waits; a waiter that gives up is
skipped and never keeps the gate."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rhythm_shared.kit.db import create_engine, write_gate
from rhythm_shared.kit.writers import WriterGate, urgent_writes


async def _turns(gate: WriterGate, arrivals: list[tuple[str, bool]]) -> list[str]:
    """The order in which ``arrivals`` (name, urgent), all queued behind a holder, get the gate."""
    order: list[str] = []

    async def writer(name: str, urgent: bool) -> None:
        await gate.acquire(urgent=urgent)
        order.append(name)
        await asyncio.sleep(0)
        gate.release()

    await gate.acquire()
    tasks = []
    for name, urgent in arrivals:
        tasks.append(asyncio.create_task(writer(name, urgent)))
        await asyncio.sleep(0)  # queued in this order
    gate.release()
    await asyncio.gather(*tasks)
    return order


async def test_writers_take_turns_in_arrival_order() -> None:
    assert await _turns(WriterGate(), [("a", False), ("b", False), ("c", False)]) == ["a", "b", "c"]


async def test_an_urgent_writer_goes_before_the_ones_waiting() -> None:
    order = await _turns(WriterGate(), [("chunk", False), ("mark", True)])
    assert order == ["mark", "chunk"]


async def test_urgent_writers_never_starve_the_others() -> None:
    arrivals = [("chunk-1", False), ("chunk-2", False)] + [(f"mark-{i}", True) for i in range(4)]
    order = await _turns(WriterGate(), arrivals)
    # Alternating while both wait: a long transaction is held back by one urgent turn at most.
    assert order == ["mark-0", "chunk-1", "mark-1", "chunk-2", "mark-2", "mark-3"]


async def test_urgent_writers_in_a_row_when_nobody_else_waits() -> None:
    order = await _turns(WriterGate(), [("mark-1", True), ("mark-2", True)])
    assert order == ["mark-1", "mark-2"]


async def test_a_waiter_that_gives_up_is_skipped() -> None:
    gate = WriterGate()
    await gate.acquire()
    quitter = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    after = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    quitter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await quitter
    gate.release()
    await asyncio.wait_for(after, 1)
    gate.release()
    await asyncio.wait_for(gate.acquire(), 1)  # free again


async def test_a_waiter_cancelled_after_its_turn_came_passes_the_gate_on() -> None:
    gate = WriterGate()
    await gate.acquire()
    first = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    second = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    gate.release()  # hands the gate to ``first`` ...
    first.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)  # the gate was not lost with it
    gate.release()


async def test_write_gate_on_sqlite_lets_urgent_transactions_ahead(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gate.db'}")
    order: list[str] = []
    try:

        async def transaction(name: str, urgent: bool) -> None:
            if urgent:
                with urgent_writes():
                    async with write_gate(engine):
                        order.append(name)
            else:
                async with write_gate(engine):
                    order.append(name)

        async with write_gate(engine):
            chunk = asyncio.create_task(transaction("chunk", False))
            await asyncio.sleep(0.01)
            mark = asyncio.create_task(transaction("mark", True))
            await asyncio.sleep(0.01)
            assert order == []
        await asyncio.gather(chunk, mark)
        assert order == ["mark", "chunk"]
    finally:
        await engine.dispose()
