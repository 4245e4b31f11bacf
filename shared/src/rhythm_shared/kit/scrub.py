"""Exception text fit for logs: the kind of failure and where, never the values that caused it.

A failed write of a 1:1 note must not put the note into the logs. Engines are created with
``hide_parameters`` (SQLAlchemy then prints no bound values), and the log formatters render
every exception through :func:`format_exception`, which replaces the messages of exceptions
known to quote their input — database errors (PostgreSQL's DETAIL repeats the key, SQLite's
the constraint), pydantic's validation errors (``input_value=…``) — by their kind, their SQL
state and, for a statement, the SQL with its placeholders. Frames stay: the code is ours.
"""

from __future__ import annotations

import traceback
from types import TracebackType
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import StatementError

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def safe_message(exc: BaseException) -> str | None:
    """A message for ``exc`` without the values it may quote; None where its own is safe."""
    if isinstance(exc, StatementError):
        orig = exc.orig
        kind = type(orig).__name__ if orig is not None else type(exc).__name__
        code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        state = f" [SQLSTATE {code}]" if code else ""
        statement = " ".join(str(exc.statement or "").split())[:500]
        return f"{kind}{state} (values hidden) in: {statement}"
    if isinstance(exc, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['type']}"
            for e in exc.errors(include_input=False, include_url=False, include_context=False)
        )
        return (
            f"{exc.error_count()} validation error(s) for {exc.title} (values hidden): {problems}"
        )
    module = type(exc).__module__
    if module.startswith(("sqlite3", "asyncpg", "aiosqlite", "psycopg")):
        code = getattr(exc, "sqlstate", None) or getattr(exc, "sqlite_errorname", None)
        return f"{type(exc).__name__}{f' [{code}]' if code else ''} (message hidden)"
    return None


def _scrub(te: traceback.TracebackException, exc: BaseException | None, seen: set[int]) -> None:
    if exc is None or id(te) in seen:
        return
    seen.add(id(te))
    message = safe_message(exc)
    if message is not None:
        # _str is the one field TracebackException formats the message from.
        setattr(te, "_str", message)  # noqa: B010
    te.__notes__ = None
    _scrub_linked(te, exc, seen)


def _scrub_linked(te: traceback.TracebackException, exc: BaseException, seen: set[int]) -> None:
    if te.__cause__ is not None:
        _scrub(te.__cause__, exc.__cause__, seen)
    if te.__context__ is not None:
        _scrub(te.__context__, exc.__context__, seen)
    for child_te, child in zip(
        getattr(te, "exceptions", None) or [], getattr(exc, "exceptions", None) or [], strict=False
    ):
        _scrub(child_te, child, seen)


def format_exception(exc_info: ExcInfo | tuple[None, None, None] | Any) -> str:
    """The traceback of ``exc_info`` as text, with value-carrying messages replaced."""
    _, exc, tb = exc_info
    if exc is None:
        return ""
    te = traceback.TracebackException(type(exc), exc, tb, compact=True)
    _scrub(te, exc, set())
    return "".join(te.format()).rstrip("\n")
