"""HTTP pieces every service uses: the principal, Idempotency-Key, errors, health."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from opentelemetry import trace
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from rhythm_shared.kit.auth import InvalidToken, Principal
from rhythm_shared.kit.errors import DomainError, InvalidInput
from rhythm_shared.kit.runtime import Runtime
from rhythm_shared.kit.uow import UnitOfWork

log = logging.getLogger("rhythm.http")

_bearer = HTTPBearer(auto_error=False, description="A JWT with `sub`, `tenant` and `roles`.")


class Unauthorized(DomainError):
    status_code = 401


def get_runtime(request: Request) -> Runtime[Any, Any, Any]:
    return request.app.state.runtime  # type: ignore[no-any-return]


def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthorized("a bearer token is required")
    try:
        return get_runtime(request).authenticator.decode(credentials.credentials)
    except InvalidToken as exc:
        raise Unauthorized(f"invalid token: {exc}") from exc


RuntimeDep = Annotated[Runtime[Any, Any, Any], Depends(get_runtime)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Retry-safe writes: a repeated key returns the first response, no new effect.",
    ),
]

Action = Callable[[UnitOfWork], Awaitable[tuple[int, Any]]]


async def run_idempotent(
    runtime: Runtime,
    principal: Principal,
    key: str | None,
    fingerprint: Any,
    action: Action,
) -> JSONResponse:
    """Run ``action`` in one transaction; with a key, store its response in the same one."""
    if key is None:
        async with runtime.uow() as uow:
            status, body = await action(uow)
        return JSONResponse(jsonable_encoder(body), status_code=status)
    request_hash = hashlib.sha256(
        json.dumps(jsonable_encoder(fingerprint), sort_keys=True).encode()
    ).hexdigest()
    table = runtime.tables.idempotency
    where = (
        (table.c.tenant_id == principal.tenant)
        & (table.c.principal == principal.subject)
        & (table.c.key == key)
    )

    async def replay() -> JSONResponse | None:
        async with runtime.uow() as uow:
            row = (await uow.session.execute(select(table).where(where))).first()
        if row is None:
            return None
        if row.request_hash != request_hash:
            raise InvalidInput.field(
                "Idempotency-Key", msg="this key was already used for a different request"
            )
        return JSONResponse(
            json.loads(row.response),
            status_code=row.status_code,
            headers={"Idempotent-Replayed": "true"},
        )

    if (stored := await replay()) is not None:
        return stored
    try:
        async with runtime.uow() as uow:
            status, body = await action(uow)
            encoded = jsonable_encoder(body)
            await uow.session.execute(
                table.insert().values(
                    tenant_id=principal.tenant,
                    principal=principal.subject,
                    key=key,
                    request_hash=request_hash,
                    status_code=status,
                    response=json.dumps(encoded),
                    created_at=uow.clock.now(),
                )
            )
    except IntegrityError:
        # The same key raced in concurrently and won: answer with its response.
        if (stored := await replay()) is not None:
            return stored
        raise
    return JSONResponse(encoded, status_code=status)


def _trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def _json_safe(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return None
    return value


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input and fails on NaN/Infinity (which Python's JSON
        # parser accepts): answer the 422 without the input values that are not valid JSON.
        errors = [
            {**e, "input": _json_safe(e["input"])} if "input" in e else e
            for e in jsonable_encoder(exc.errors())
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(InvalidInput)
    async def _invalid(_: Request, exc: InvalidInput) -> JSONResponse:
        return JSONResponse(
            {"detail": [{"loc": list(e.loc), "msg": e.msg, "type": e.type} for e in exc.errors]},
            status_code=422,
        )

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request_failed", extra={"path": request.url.path})
        return JSONResponse(
            {
                "detail": "internal error; the trace id identifies it in the logs",
                "trace_id": _trace_id(),
            },
            status_code=500,
        )
