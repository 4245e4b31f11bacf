"""Who goes first for a single writer: SQLite lets one transaction write at a time, and the
writers of one process queue for it here (``kit.db.write_gate``) rather than in SQLite's busy
handler. Free of any database library, so use cases can mark their writes urgent."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
from collections.abc import Iterator

_URGENT: contextvars.ContextVar[bool] = contextvars.ContextVar("urgent_writes", default=False)


class WriterGate:
    """One writer at a time, in arrival order, except that an urgent writer goes before the
    writers waiting: but never twice in a row while one of them waits, so a stream of urgent
    writes delays a long transaction by at most one turn and never starves it.

    Urgent writes are the short ones something live waits on (an email's 'sending' mark holds
    its SMTP session until it is committed); a consumer's chunk can hold the writer for tens of
    milliseconds, which an urgent write queued behind it and behind the outbox relay paid in
    full."""

    def __init__(self) -> None:
        self._held = False
        self._last_urgent = False
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self, *, urgent: bool = False) -> None:
        if not self._held:
            self._held, self._last_urgent = True, urgent
            return
        turn = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._waiting).append(turn)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self.release()  # handed the gate, then cancelled before taking it: pass it on
            raise

    def release(self) -> None:
        while True:
            urgent = bool(self._urgent) and not (self._last_urgent and self._waiting)
            queue = self._urgent if urgent else self._waiting
            if not queue:
                self._held = False
                return
            turn = queue.popleft()
            if not turn.done():  # a waiter that gave up (cancelled, timed out) is skipped
                self._last_urgent = urgent
                turn.set_result(None)
                return


@contextlib.contextmanager
def urgent_writes() -> Iterator[None]:
    """Transactions opened within go before other waiting writers (see :class:`WriterGate`)."""
    token = _URGENT.set(True)
    try:
        yield
    finally:
        _URGENT.reset(token)


def writes_are_urgent() -> bool:
    """Whether the current task is inside :func:`urgent_writes`."""
    return _URGENT.get()
