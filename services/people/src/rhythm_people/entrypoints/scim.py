"""SCIM 2.0 for identity providers (Entra ID, Okta): Users and Groups under ``/scim/v2``.

RFC 7644 (protocol); the resources and their mapping are :mod:`rhythm_people.adapters.scim`.
Translate and delegate: a User becomes a :class:`ProvisionedUser` in a ``ProvisionUser``
command and goes through the same handler as the HTTP and CSV routes (``sync_people``), so the
same events go out. Callers need the ``integration`` role; everything is scoped to the token's
tenant.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError
from scim2_models import (
    Context,
    Error,
    ListResponse,
    Meta,
    PatchOp,
    ResourceType,
    SCIMException,
)

from rhythm_people import commands, handlers, queries
from rhythm_people.adapters import scim
from rhythm_people.domain import access
from rhythm_people.domain.model import (
    OrgUnit,
    StoredEmployee,
    employee_version,
    org_unit_version,
)
from rhythm_shared.kit.access import require, role_relationships
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from rhythm_shared.kit.http import PrincipalDep, RuntimeDep

MEDIA_TYPE = "application/scim+json"  # RFC 7644 §3.1


# -- errors: SCIM bodies (RFC 7644 §3.12) on every answer under /scim/v2 ------------------------


def _error(status: int, detail: str, scim_type: str | None = None) -> Response:
    body = Error(status=status, detail=detail, scim_type=scim_type).model_dump()
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(json.dumps(body), status, headers=headers, media_type=MEDIA_TYPE)


_STATUS: list[tuple[type[DomainError], str | None]] = [
    (handlers.PreconditionFailed, None),
    (Conflict, "uniqueness"),
    (NotFound, None),
    (Forbidden, None),
    (InvalidInput, "invalidValue"),
]


def _answer(exc: Exception) -> Response:
    if isinstance(exc, scim.ScimError):
        return _error(exc.status, exc.detail, exc.scim_type)
    if isinstance(exc, SCIMException):
        return _error(exc.status, exc.detail, exc.scim_type or None)
    if isinstance(exc, ValidationError):
        first = Error.from_validation_error(exc.errors()[0])
        return _error(400, first.detail or str(exc), first.scim_type or "invalidValue")
    if isinstance(exc, RequestValidationError):
        return _error(400, "; ".join(str(e.get("msg")) for e in exc.errors()), "invalidValue")
    if isinstance(exc, DomainError):
        scim_type = next((t for kind, t in _STATUS if isinstance(exc, kind)), None)
        status = 400 if isinstance(exc, InvalidInput) else exc.status_code
        return _error(status, exc.message, scim_type)
    raise exc


class ScimRoute(APIRoute):
    """Answers every failure of a SCIM route, authentication included, as a SCIM Error."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                return _answer(exc)

        return route


router = APIRouter(prefix="/scim/v2", tags=["scim"], route_class=ScimRoute, include_in_schema=False)


def _require(principal: Principal) -> str:
    require(
        access.POLICY,
        "provision_over_scim",
        frozenset(role_relationships(principal)),
        "SCIM provisioning is for the integration role",
    )
    return principal.tenant


def _scim(body: dict[str, Any], status: int = 200, **headers: str) -> Response:
    return Response(json.dumps(body), status, headers=headers or None, media_type=MEDIA_TYPE)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + router.prefix


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise scim.ScimError(400, "the body is not JSON", "invalidSyntax") from None
    if not isinstance(body, dict):
        raise scim.ScimError(400, "the body must be a JSON object", "invalidSyntax")
    return body


def _list(resources: list[Any], total: int, start: int, parameters: Any, model: Any) -> Response:
    page = ListResponse[model](
        total_results=total, start_index=start, items_per_page=len(resources), resources=resources
    )
    return _scim(page.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=parameters))


def _if_match(request: Request) -> str | None:
    return request.headers.get("if-match")


# -- discovery (RFC 7644 §4) --------------------------------------------------------------------


@router.get("/ServiceProviderConfig")
async def service_provider_config(request: Request, principal: PrincipalDep) -> Response:
    _require(principal)
    config = scim.provider_config()
    config.meta = Meta(resource_type="ServiceProviderConfig", location=str(request.url))
    return _scim(config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


def _resource_type(resource_type: ResourceType, base: str) -> dict[str, Any]:
    resource_type = resource_type.model_copy(
        update={
            "meta": Meta(
                resource_type="ResourceType", location=f"{base}/ResourceTypes/{resource_type.id}"
            )
        }
    )
    return resource_type.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)


@router.get("/ResourceTypes")
async def resource_types(request: Request, principal: PrincipalDep) -> Response:
    _require(principal)
    base = _base(request)
    found = [_resource_type(r, base) for r in scim.RESOURCE_TYPES]
    return _scim(_plain_list(found))


@router.get("/ResourceTypes/{resource_type_id}")
async def resource_type(
    resource_type_id: str, request: Request, principal: PrincipalDep
) -> Response:
    _require(principal)
    for r in scim.RESOURCE_TYPES:
        if r.id == resource_type_id:
            return _scim(_resource_type(r, _base(request)))
    raise scim.ScimError(404, f"no resource type {resource_type_id!r}")


def _schema(schema: Any, base: str) -> dict[str, Any]:
    schema = schema.model_copy(
        update={"meta": Meta(resource_type="Schema", location=f"{base}/Schemas/{schema.id}")}
    )
    return schema.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)  # type: ignore[no-any-return]


def _plain_list(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": len(resources),
        "startIndex": 1,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


@router.get("/Schemas")
async def schemas(request: Request, principal: PrincipalDep) -> Response:
    _require(principal)
    base = _base(request)
    return _scim(_plain_list([_schema(s, base) for s in scim.SCHEMAS]))


@router.get("/Schemas/{schema_id}")
async def schema(schema_id: str, request: Request, principal: PrincipalDep) -> Response:
    _require(principal)
    for s in scim.SCHEMAS:
        if s.id == schema_id:
            return _scim(_schema(s, _base(request)))
    raise scim.ScimError(404, f"no schema {schema_id!r}")


def _user_answer(stored: StoredEmployee, request: Request, status: int, ctx: Context) -> Response:
    base = _base(request)
    user = scim.user_resource(stored, base)
    body = user.model_dump(
        scim_ctx=ctx,
        response_parameters=scim.response_parameters(request.query_params, scim.ScimUser),
    )
    headers = {"ETag": employee_version(stored)}
    if status == 201:
        headers["Location"] = f"{base}/Users/{stored.employee.employee_id}"
    return _scim(body, status, **headers)


async def _users(query: Mapping[str, Any], base: str, runtime: Any, tenant: str) -> Response:
    criteria = scim.criteria(query, scim.USER_FILTERS)
    start, count = scim.page(query)
    parameters = scim.response_parameters(query, scim.ScimUser)
    async with runtime.uow.read() as session:
        total, found = await queries.provisioned_users(
            session, tenant, offset=start - 1, limit=count, **criteria
        )
    return _list(
        [scim.user_resource(s, base) for s in found], total, start, parameters, scim.ScimUser
    )


@router.get("/Users")
async def list_users(request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> Response:
    return await _users(request.query_params, _base(request), runtime, _require(principal))


@router.post("/Users/.search")
async def search_users(request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> Response:
    # A SearchRequest names its fields as the query parameters do (RFC 7644 §3.4.3).
    tenant = _require(principal)
    return await _users(await _body(request), _base(request), runtime, tenant)


@router.get("/Users/{user_id}")
async def get_user(
    user_id: str, request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    tenant = _require(principal)
    async with runtime.uow.read() as session:
        stored = await queries.provisioned_user(session, tenant, user_id)
    return _user_answer(stored, request, 200, Context.RESOURCE_QUERY_RESPONSE)


@router.post("/Users")
async def create_user(request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> Response:
    tenant = _require(principal)
    payload = await _body(request)
    number = scim.employee_number(payload)
    user = scim.ScimUser.model_validate(
        scim.kept(scim.with_display_name(payload), scim.USER_KEYS),
        scim_ctx=Context.RESOURCE_CREATION_REQUEST,
    )
    command = commands.ProvisionUser(tenant=tenant, user=scim.provisioned(user, number))
    async with runtime.uow() as uow:
        stored, _ = await handlers.provision_user(uow, command)
    runtime.uow.events_committed.set()  # bulk outbox rows: wake the relay now
    return _user_answer(stored, request, 201, Context.RESOURCE_CREATION_RESPONSE)


@router.put("/Users/{user_id}")
async def replace_user(
    user_id: str, request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    tenant = _require(principal)
    payload = await _body(request)
    user = scim.ScimUser.model_validate(
        scim.kept(scim.with_display_name(payload), scim.USER_KEYS),
        scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST,
    )
    command = commands.ProvisionUser(
        tenant=tenant, user=scim.provisioned(user), employee_id=user_id, if_match=_if_match(request)
    )
    async with runtime.uow() as uow:
        stored, _ = await handlers.provision_user(uow, command)
    runtime.uow.events_committed.set()
    return _user_answer(stored, request, 200, Context.RESOURCE_REPLACEMENT_RESPONSE)


@router.patch("/Users/{user_id}")
async def patch_user(
    user_id: str, request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    tenant = _require(principal)
    payload = scim.patch_operations(await _body(request), scim.USER_KEYS)
    patch = PatchOp[scim.ScimUser].model_validate(payload, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
    async with runtime.uow.read() as session:
        current = await queries.provisioned_user(session, tenant, user_id)
    user = scim.user_resource(current, _base(request))
    patch.patch(user)
    command = commands.ProvisionUser(
        tenant=tenant,
        user=scim.provisioned(user),
        employee_id=user_id,
        if_match=_if_match(request),
        based_on=employee_version(current),
    )
    async with runtime.uow() as uow:
        stored, _ = await handlers.provision_user(uow, command)
    runtime.uow.events_committed.set()
    return _user_answer(stored, request, 200, Context.RESOURCE_PATCH_RESPONSE)


@router.delete("/Users/{user_id}")
async def delete_user(
    user_id: str, request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    tenant = _require(principal)
    command = commands.RemoveUser(tenant=tenant, employee_id=user_id, if_match=_if_match(request))
    async with runtime.uow() as uow:
        await handlers.remove_user(uow, command)
    runtime.uow.events_committed.set()
    return Response(status_code=204)


# -- Groups: org units (RFC 7643 §4.2) -----------------------------------------------------------


def _group_answer(
    unit: OrgUnit, external_id: str | None, request: Request, status: int, ctx: Context
) -> Response:
    base = _base(request)
    body = scim.group_resource(unit, external_id, base).model_dump(
        scim_ctx=ctx, response_parameters=scim.response_parameters(request.query_params, scim.Group)
    )
    headers = {"ETag": org_unit_version(unit, external_id)}
    if status == 201:
        headers["Location"] = f"{base}/Groups/{unit.org_unit_id}"
    return _scim(body, status, **headers)


async def _groups(query: Mapping[str, Any], base: str, runtime: Any, tenant: str) -> Response:
    criteria = scim.criteria(query, scim.GROUP_FILTERS)
    start, count = scim.page(query)
    parameters = scim.response_parameters(query, scim.Group)
    async with runtime.uow.read() as session:
        total, found = await queries.provisioned_groups(
            session, tenant, offset=start - 1, limit=count, **criteria
        )
    return _list(
        [scim.group_resource(u, x, base) for u, x in found], total, start, parameters, scim.Group
    )


@router.get("/Groups")
async def list_groups(request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> Response:
    return await _groups(request.query_params, _base(request), runtime, _require(principal))


@router.post("/Groups/.search")
async def search_groups(request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> Response:
    tenant = _require(principal)
    return await _groups(await _body(request), _base(request), runtime, tenant)


@router.post("/.search")
async def search_all(request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> Response:
    """Users, then Groups, as one list (RFC 7644 §3.4.3 at the root); a filter is on Users."""
    tenant = _require(principal)
    query = await _body(request)
    start, count = scim.page(query)
    criteria = scim.criteria(query, scim.USER_FILTERS)
    base = _base(request)
    async with runtime.uow.read() as session:
        users_total, users = await queries.provisioned_users(
            session, tenant, offset=start - 1, limit=count, **criteria
        )
        groups_total, groups = 0, list[tuple[OrgUnit, str | None]]()
        if not criteria:
            groups_total, groups = await queries.provisioned_groups(
                session,
                tenant,
                offset=max(start - 1 - users_total, 0),
                limit=count - len(users),
            )
    found = [
        *(
            scim.user_resource(s, base).model_dump(
                scim_ctx=Context.SEARCH_RESPONSE,
                response_parameters=scim.response_parameters(query, scim.ScimUser),
            )
            for s in users
        ),
        *(
            scim.group_resource(u, x, base).model_dump(
                scim_ctx=Context.SEARCH_RESPONSE,
                response_parameters=scim.response_parameters(query, scim.Group),
            )
            for u, x in groups
        ),
    ]
    body = _plain_list(found) | {"totalResults": users_total + groups_total, "startIndex": start}
    return _scim(body)


@router.get("/Groups/{group_id}")
async def get_group(
    group_id: str, request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    tenant = _require(principal)
    async with runtime.uow.read() as session:
        unit, external_id = await queries.provisioned_group(session, tenant, group_id)
    return _group_answer(unit, external_id, request, 200, Context.RESOURCE_QUERY_RESPONSE)


@router.post("/Groups")
async def create_group(request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> Response:
    tenant = _require(principal)
    group = scim.Group.model_validate(
        scim.kept(await _body(request), scim.GROUP_KEYS), scim_ctx=Context.RESOURCE_CREATION_REQUEST
    )
    command = commands.ProvisionGroup(
        tenant=tenant, name=scim.group_name(group), external_id=group.external_id
    )
    async with runtime.uow() as uow:
        unit, _ = await handlers.provision_group(uow, command)
    runtime.uow.events_committed.set()
    return _group_answer(unit, group.external_id, request, 201, Context.RESOURCE_CREATION_RESPONSE)


@router.put("/Groups/{group_id}")
async def replace_group(
    group_id: str, request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    tenant = _require(principal)
    group = scim.Group.model_validate(
        scim.kept(await _body(request), scim.GROUP_KEYS),
        scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST,
    )
    command = commands.ProvisionGroup(
        tenant=tenant,
        name=scim.group_name(group),
        external_id=group.external_id,
        org_unit_id=group_id,
        if_match=_if_match(request),
    )
    async with runtime.uow() as uow:
        unit, _ = await handlers.provision_group(uow, command)
    runtime.uow.events_committed.set()
    return _group_answer(
        unit, group.external_id, request, 200, Context.RESOURCE_REPLACEMENT_RESPONSE
    )


@router.patch("/Groups/{group_id}")
async def patch_group(
    group_id: str, request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    tenant = _require(principal)
    payload = scim.patch_operations(await _body(request), scim.GROUP_KEYS)
    patch = PatchOp[scim.Group].model_validate(payload, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
    async with runtime.uow.read() as session:
        current, external_id = await queries.provisioned_group(session, tenant, group_id)
    group = scim.group_resource(current, external_id, _base(request))
    patch.patch(group)
    command = commands.ProvisionGroup(
        tenant=tenant,
        name=scim.group_name(group),
        external_id=group.external_id,
        org_unit_id=group_id,
        if_match=_if_match(request),
        based_on=org_unit_version(current, external_id),
    )
    async with runtime.uow() as uow:
        unit, _ = await handlers.provision_group(uow, command)
    runtime.uow.events_committed.set()
    return _group_answer(unit, group.external_id, request, 200, Context.RESOURCE_PATCH_RESPONSE)


@router.delete("/Groups/{group_id}")
async def delete_group(
    group_id: str, request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    tenant = _require(principal)
    command = commands.RemoveGroup(tenant=tenant, org_unit_id=group_id, if_match=_if_match(request))
    async with runtime.uow() as uow:
        await handlers.remove_group(uow, command)
    return Response(status_code=204)


# -- everything else under /scim/v2: a SCIM 404, or 405 on the read-only discovery endpoints -----

_DISCOVERY = {"serviceproviderconfig", "resourcetypes", "schemas"}


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def not_served(rest: str, request: Request, principal: PrincipalDep) -> Response:
    _require(principal)
    first = rest.split("/", 1)[0].lower()
    if first in _DISCOVERY:
        return _error(405, f"{request.method} is not allowed on /{rest}: discovery is read-only")
    return _error(404, f"nothing is served at /scim/v2/{rest}")
