"""Errors a use case raises, and the HTTP answer each becomes (never a stack trace)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """Also what another tenant's id gets: a 404 never confirms that the id exists."""

    status_code = 404


class Forbidden(DomainError):
    status_code = 403


class Conflict(DomainError):
    status_code = 409


@dataclass(frozen=True)
class FieldError:
    loc: tuple[str | int, ...]
    msg: str
    type: str = "value_error"


class InvalidInput(DomainError):
    """422 with field-level messages, in the same shape as FastAPI's own validation errors."""

    status_code = 422

    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in errors))
        self.errors = list(errors)

    @classmethod
    def field(cls, *loc: str | int, msg: str) -> InvalidInput:
        return cls([FieldError(loc=("body", *loc), msg=msg)])
