"""SCIM 2.0 for identity providers (Entra ID, Okta): Users and Groups under ``/scim/v2``.

RFC 7643 (resources) and RFC 7644 (protocol), with the resource models of ``scim2-models``.
Translate and delegate: a User becomes a :class:`ProvisionedUser` and goes through the same use
case as the HTTP and CSV routes (``sync_people``), so the same events go out. A User's ``id``
is its employee id whichever route created the person; a Group is an org unit.

What Rhythm keeps of a User is what it needs: ``userName``, ``displayName``, one work email,
``timezone``, ``locale``, ``active``, ``externalId`` and of the enterprise extension
``department``, ``organization`` and ``manager``. The schemas served at ``/Schemas`` list
exactly those; any other attribute a directory sends (``name``, ``title``, phone numbers) is
ignored, as RFC 7644 §3.3 allows for attributes a service provider does not support.
Callers need the ``integration`` role; everything is scoped to the token's tenant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import Field, ValidationError
from scim2_models import (
    AnyExtension,
    AuthenticationScheme,
    Bulk,
    CaseExact,
    ChangePassword,
    ComplexAttribute,
    Context,
    Error,
    Extension,
    ListResponse,
    Meta,
    Patch,
    PatchOp,
    Reference,
    Required,
    Resource,
    ResourceType,
    ResponseParameters,
    SCIMException,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
)
from scim2_models import ETag as ETagConfig
from scim2_models import Filter as FilterConfig
from scim2_models.urn import URN

from rhythm_people import access, use_cases
from rhythm_people.domain import (
    OrgUnit,
    ProvisionedUser,
    StoredEmployee,
    employee_version,
    org_unit_version,
)
from rhythm_shared.kit.access import require, role_relationships
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from rhythm_shared.kit.http import PrincipalDep, RuntimeDep

MEDIA_TYPE = "application/scim+json"  # RFC 7644 §3.1
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
#: Page size without ``count``, and the most one page holds (ServiceProviderConfig maxResults).
DEFAULT_COUNT = 100
MAX_COUNT = 1_000

#: Suggested values (RFC 7643 §7 canonicalValues); any IANA zone / BCP 47 tag is accepted.
TIME_ZONES = ["Europe/Amsterdam", "Europe/London", "Europe/Berlin", "America/New_York"]
TIME_ZONES += ["America/Los_Angeles", "Asia/Tokyo", "Asia/Kolkata", "Australia/Sydney", "UTC"]
LOCALES = ["en", "en-US", "en-GB", "nl", "de", "fr", "es", "pt-BR", "ja"]


# -- the resources Rhythm serves (a subset of RFC 7643 §4.1, §4.2 and §4.3) -------------------


class Email(ComplexAttribute):
    """The person's work address: Rhythm writes to one address, served as type ``work``."""

    value: Annotated[str | None, Required.true] = None
    type: str | None = Field(None, examples=["work"])


class Manager(ComplexAttribute):
    value: Annotated[str | None, Required.true, CaseExact.true] = None
    """The manager's User id: their employee id."""

    # The quotes are the reference type's name (RFC 7643 §7 referenceTypes), not a forward ref.
    ref: Reference["User"] | None = Field(  # type: ignore[type-arg]  # noqa: UP037
        None, serialization_alias="$ref", validation_alias="$ref"
    )


class EnterpriseUser(Extension):
    """Enterprise User (RFC 7643 §4.3): the attributes Rhythm maps to its org structure."""

    __schema__ = URN(ENTERPRISE_SCHEMA)

    organization: str | None = None
    """The top-level org unit (matched by id, else by name; created when no unit has it)."""

    department: str | None = None
    """The person's org unit, under ``organization`` when that is given."""

    manager: Manager | None = None


class User(Resource[AnyExtension]):
    """A person: an employee of the tenant."""

    __schema__ = URN(USER_SCHEMA)

    user_name: Annotated[str | None, Uniqueness.server, Required.true] = None
    display_name: Annotated[str | None, Required.true] = None
    emails: Annotated[list[Email] | None, Required.true] = None
    timezone: Annotated[str | None, Required.true] = Field(None, examples=TIME_ZONES)
    locale: Annotated[str | None, Required.true] = Field(None, examples=LOCALES)
    active: Annotated[bool | None, Required.true] = None


class Group(Resource[Any]):
    """An org unit (members are not served: a person's unit is their department)."""

    __schema__ = URN(GROUP_SCHEMA)

    display_name: Annotated[str | None, Required.true] = None


ScimUser = User[EnterpriseUser]
RESOURCE_TYPES = [ResourceType.from_resource(ScimUser), ResourceType.from_resource(Group)]
SCHEMAS = [User.to_schema(), EnterpriseUser.to_schema(), Group.to_schema()]

#: The attributes read from request bodies (SCIM names are case-insensitive, RFC 7643 §2.1).
_COMMON = {"schemas", "id", "externalid", "meta"}
_USER_KEYS = _COMMON | {"username", "displayname", "emails", "timezone", "locale", "active"}
_ENTERPRISE_KEYS = {"organization", "department", "manager"}
#: The sub-attributes kept of complex attributes (``primary``, ``display`` are ignored).
_SUB_KEYS = {"emails": {"value", "type"}, "manager": {"value", "$ref"}}
_GROUP_KEYS = _COMMON | {"displayname"}


def _config() -> ServiceProviderConfig:
    return ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=FilterConfig(supported=True, max_results=MAX_COUNT),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETagConfig(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="OAuth Bearer Token",
                description="A JWT of the integration role for one tenant (Authorization: Bearer)",
                primary=True,
            )
        ],
    )


# -- errors: SCIM bodies (RFC 7644 §3.12) on every answer under /scim/v2 ------------------------


class ScimError(Exception):
    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type


def _error(status: int, detail: str, scim_type: str | None = None) -> Response:
    body = Error(status=status, detail=detail, scim_type=scim_type).model_dump()
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(json.dumps(body), status, headers=headers, media_type=MEDIA_TYPE)


_STATUS: list[tuple[type[DomainError], str | None]] = [
    (use_cases.PreconditionFailed, None),
    (Conflict, "uniqueness"),
    (NotFound, None),
    (Forbidden, None),
    (InvalidInput, "invalidValue"),
]


def _answer(exc: Exception) -> Response:
    if isinstance(exc, ScimError):
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
        raise ScimError(400, "the body is not JSON", "invalidSyntax") from None
    if not isinstance(body, dict):
        raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
    return body


def _root(path: str) -> tuple[str | None, str, str | None]:
    """The schema of a PATCH path or body key (``None``: core), its attribute and its
    sub-attribute (``emails[type eq "work"].value`` -> emails, value), lowercase."""
    lowered = path.lower()
    schema = None
    for urn in (ENTERPRISE_SCHEMA, USER_SCHEMA, GROUP_SCHEMA):
        if lowered.startswith(urn.lower()):
            schema = urn if urn == ENTERPRISE_SCHEMA else None
            lowered = lowered[len(urn) :].lstrip(":")
            break
    match = re.match(r"^([^.\[]*)(?:\[[^\]]*\])?(?:\.(.+))?$", lowered)
    if match is None:
        return schema, lowered, None
    return schema, match.group(1), match.group(2)


def _known(key: str, core: set[str]) -> bool:
    schema, name, sub = _root(key)
    known = (
        (name in _ENTERPRISE_KEYS or name == "") if schema == ENTERPRISE_SCHEMA else name in core
    )
    return known and (sub is None or sub in _SUB_KEYS.get(name, {sub}))


def _sub_kept(name: str, value: Any) -> Any:
    keys = _SUB_KEYS.get(name.lower())
    if keys is None:
        return value
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k.lower() in keys}
    if isinstance(value, list):
        return [_sub_kept(name, v) for v in value]
    if name.lower() == "manager" and isinstance(value, str):
        return {"value": value}  # Entra ID sends the manager as a bare id
    return value


def _kept(payload: dict[str, Any], core: set[str]) -> dict[str, Any]:
    """The attributes Rhythm reads; others are ignored (RFC 7644 §3.3)."""
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if not _known(key, core):
            continue
        if key.lower() == ENTERPRISE_SCHEMA.lower() and isinstance(value, dict):
            value = {k: _sub_kept(k, v) for k, v in value.items() if k.lower() in _ENTERPRISE_KEYS}
        out[key] = _sub_kept(_root(key)[1], value)
    return out


def _parameters(query: Mapping[str, Any], model: type[Any]) -> ResponseParameters[Any]:
    """``attributes``/``excludedAttributes`` (RFC 7644 §3.9), from a query string or a search."""
    raw = {
        "attributes": query.get("attributes"),
        "excludedAttributes": query.get("excludedAttributes"),
    }
    return ResponseParameters[model].model_validate({k: v for k, v in raw.items() if v})  # type: ignore[valid-type]


_FILTER = re.compile(r'^\s*([A-Za-z.:0-9]+)\s+eq\s+("(?:[^"\\]|\\.)*")\s*$', re.IGNORECASE)


def _filter(query: Mapping[str, Any], attributes: dict[str, str]) -> dict[str, str]:
    """``attribute eq "value"`` for the attributes supported (RFC 7644 §3.4.2.2)."""
    text = query.get("filter")
    if not text:
        return {}
    match = _FILTER.match(str(text))
    name = attributes.get(match.group(1).lower()) if match else None
    if match is None or name is None:
        supported = " or ".join(f'{a} eq "…"' for a in attributes)
        raise ScimError(400, f"filters supported: {supported}", "invalidFilter")
    return {name: json.loads(match.group(2))}


def _page(query: Mapping[str, Any]) -> tuple[int, int]:
    """startIndex (1-based) and count (RFC 7644 §3.4.2.4): out-of-range values are clamped."""

    def number(name: str, default: int) -> int:
        value = query.get(name)
        try:
            return int(value) if value is not None else default
        except ValueError:
            raise ScimError(400, f"{name} must be an integer", "invalidValue") from None

    return max(number("startIndex", 1), 1), min(max(number("count", DEFAULT_COUNT), 0), MAX_COUNT)


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
    config = _config()
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
    found = [_resource_type(r, base) for r in RESOURCE_TYPES]
    return _scim(_plain_list(found))


@router.get("/ResourceTypes/{resource_type_id}")
async def resource_type(
    resource_type_id: str, request: Request, principal: PrincipalDep
) -> Response:
    _require(principal)
    for r in RESOURCE_TYPES:
        if r.id == resource_type_id:
            return _scim(_resource_type(r, _base(request)))
    raise ScimError(404, f"no resource type {resource_type_id!r}")


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
    return _scim(_plain_list([_schema(s, base) for s in SCHEMAS]))


@router.get("/Schemas/{schema_id}")
async def schema(schema_id: str, request: Request, principal: PrincipalDep) -> Response:
    _require(principal)
    for s in SCHEMAS:
        if s.id == schema_id:
            return _scim(_schema(s, _base(request)))
    raise ScimError(404, f"no schema {schema_id!r}")


# -- Users (RFC 7643 §4.1; RFC 7644 §3.3-§3.6) ---------------------------------------------------


def _user(stored: StoredEmployee, base: str) -> Any:
    e, identity = stored.employee, stored.identity
    manager = None
    if e.manager_id is not None:
        manager = Manager(value=e.manager_id, ref=f"{base}/Users/{e.manager_id}")
    user = ScimUser(
        id=e.employee_id,
        external_id=identity.external_id,
        # A person no identity provider named goes by their email (so a directory finds them).
        user_name=identity.user_name or e.email,
        display_name=e.display_name,
        emails=[Email(value=e.email, type="work")],
        timezone=e.time_zone,
        locale=e.locale,
        active=e.active,
        meta=Meta(
            resource_type="User",
            location=f"{base}/Users/{e.employee_id}",
            version=employee_version(stored),
        ),
    )
    if identity.department or identity.organization or manager:
        user[EnterpriseUser] = EnterpriseUser(
            department=identity.department, organization=identity.organization, manager=manager
        )
    return user


def _provisioned(user: Any, employee_number: str | None = None) -> ProvisionedUser:
    extension = user[EnterpriseUser] or EnterpriseUser()
    emails = user.emails or []
    work = next((m for m in emails if m.type == "work"), emails[0] if emails else None)
    email = work.value if work is not None and work.value else user.user_name
    missing = [
        name
        for name, value in (
            ("userName", user.user_name),
            ("timezone", user.timezone),
            ("locale", user.locale),
        )
        if not value
    ]
    if missing:
        raise ScimError(400, f"required: {', '.join(missing)}", "invalidValue")
    return ProvisionedUser(
        user_name=user.user_name,
        email=email,
        display_name=user.display_name or user.user_name,
        # Directories write locales with an underscore (en_US); BCP 47 has a hyphen.
        time_zone=user.timezone,
        locale=user.locale.replace("_", "-"),
        active=True if user.active is None else user.active,
        external_id=user.external_id,
        employee_number=employee_number,
        department=extension.department or None,
        organization=extension.organization or None,
        manager_id=extension.manager.value if extension.manager else None,
    )


def _display_name(payload: dict[str, Any]) -> dict[str, Any]:
    """A User without ``displayName`` is shown by its ``name`` (Okta sends only that)."""
    if any(k.lower() == "displayname" and v for k, v in payload.items()):
        return payload
    name = next((v for k, v in payload.items() if k.lower() == "name"), None)
    if isinstance(name, dict):
        shown = name.get("formatted") or " ".join(
            str(p) for p in (name.get("givenName"), name.get("familyName")) if p
        )
        if shown:
            return {**payload, "displayName": shown}
    user_name = next((v for k, v in payload.items() if k.lower() == "username"), None)
    return {**payload, "displayName": user_name} if user_name else payload


def _employee_number(payload: dict[str, Any]) -> str | None:
    extension: Any = next(
        (v for k, v in payload.items() if k.lower() == ENTERPRISE_SCHEMA.lower()), {}
    )
    if isinstance(extension, dict):
        number = next((v for k, v in extension.items() if k.lower() == "employeenumber"), None)
        return str(number) if number else None
    return None


def _user_answer(stored: StoredEmployee, request: Request, status: int, ctx: Context) -> Response:
    base = _base(request)
    user = _user(stored, base)
    body = user.model_dump(
        scim_ctx=ctx, response_parameters=_parameters(request.query_params, ScimUser)
    )
    headers = {"ETag": employee_version(stored)}
    if status == 201:
        headers["Location"] = f"{base}/Users/{stored.employee.employee_id}"
    return _scim(body, status, **headers)


_USER_FILTERS = {"username": "user_name", "externalid": "external_id", "id": "employee_id"}


async def _users(query: Mapping[str, Any], base: str, runtime: Any, tenant: str) -> Response:
    criteria = _filter(query, _USER_FILTERS)
    start, count = _page(query)
    parameters = _parameters(query, ScimUser)
    async with runtime.uow() as uow:
        total, found = await use_cases.find_provisioned_users(
            uow, tenant, offset=start - 1, limit=count, **criteria
        )
    return _list([_user(s, base) for s in found], total, start, parameters, ScimUser)


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
    async with runtime.uow() as uow:
        stored = await use_cases.get_provisioned_user(uow, tenant, user_id)
    return _user_answer(stored, request, 200, Context.RESOURCE_QUERY_RESPONSE)


@router.post("/Users")
async def create_user(request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> Response:
    tenant = _require(principal)
    payload = await _body(request)
    number = _employee_number(payload)
    user = ScimUser.model_validate(
        _kept(_display_name(payload), _USER_KEYS), scim_ctx=Context.RESOURCE_CREATION_REQUEST
    )
    async with runtime.uow() as uow:
        stored, _ = await use_cases.provision_user(uow, tenant, _provisioned(user, number))
    runtime.uow.events_committed.set()  # bulk outbox rows: wake the relay now
    return _user_answer(stored, request, 201, Context.RESOURCE_CREATION_RESPONSE)


@router.put("/Users/{user_id}")
async def replace_user(
    user_id: str, request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    tenant = _require(principal)
    payload = await _body(request)
    user = ScimUser.model_validate(
        _kept(_display_name(payload), _USER_KEYS), scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST
    )
    async with runtime.uow() as uow:
        stored, _ = await use_cases.provision_user(
            uow, tenant, _provisioned(user), employee_id=user_id, if_match=_if_match(request)
        )
    runtime.uow.events_committed.set()
    return _user_answer(stored, request, 200, Context.RESOURCE_REPLACEMENT_RESPONSE)


def _patch_operations(payload: dict[str, Any], core: set[str]) -> dict[str, Any]:
    """The operations on attributes Rhythm keeps; the others are ignored (RFC 7644 §3.3)."""
    operations = []
    for operation in payload.get("Operations") or payload.get("operations") or []:
        if not isinstance(operation, dict):
            raise ScimError(400, "each operation must be an object", "invalidSyntax")
        path, value = operation.get("path"), operation.get("value")
        if isinstance(path, str) and path:
            if _known(path, core):
                _, name, sub = _root(path)
                if sub is None and "value" in operation:
                    operation = {**operation, "value": _sub_kept(name, value)}
                operations.append(operation)
        elif isinstance(value, dict):
            operations.append({**operation, "value": _kept(value, core)})
        else:
            operations.append(operation)
    return {**payload, "Operations": operations}


@router.patch("/Users/{user_id}")
async def patch_user(
    user_id: str, request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    tenant = _require(principal)
    payload = _patch_operations(await _body(request), _USER_KEYS)
    patch = PatchOp[ScimUser].model_validate(payload, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
    async with runtime.uow() as uow:
        current = await use_cases.get_provisioned_user(uow, tenant, user_id)
        user = _user(current, _base(request))
        patch.patch(user)
        stored, _ = await use_cases.provision_user(
            uow, tenant, _provisioned(user), employee_id=user_id, if_match=_if_match(request)
        )
    runtime.uow.events_committed.set()
    return _user_answer(stored, request, 200, Context.RESOURCE_PATCH_RESPONSE)


@router.delete("/Users/{user_id}")
async def delete_user(
    user_id: str, request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    tenant = _require(principal)
    async with runtime.uow() as uow:
        await use_cases.remove_user(uow, tenant, user_id, if_match=_if_match(request))
    runtime.uow.events_committed.set()
    return Response(status_code=204)


# -- Groups: org units (RFC 7643 §4.2) -----------------------------------------------------------


def _group(unit: OrgUnit, external_id: str | None, base: str) -> Group:
    return Group(
        id=unit.org_unit_id,
        external_id=external_id,
        display_name=unit.name,
        meta=Meta(
            resource_type="Group",
            location=f"{base}/Groups/{unit.org_unit_id}",
            version=org_unit_version(unit, external_id),
        ),
    )


def _group_answer(
    unit: OrgUnit, external_id: str | None, request: Request, status: int, ctx: Context
) -> Response:
    base = _base(request)
    body = _group(unit, external_id, base).model_dump(
        scim_ctx=ctx, response_parameters=_parameters(request.query_params, Group)
    )
    headers = {"ETag": org_unit_version(unit, external_id)}
    if status == 201:
        headers["Location"] = f"{base}/Groups/{unit.org_unit_id}"
    return _scim(body, status, **headers)


def _group_name(group: Group) -> str:
    if not group.display_name:
        raise ScimError(400, "required: displayName", "invalidValue")
    return group.display_name


_GROUP_FILTERS = {"displayname": "display_name", "externalid": "external_id", "id": "org_unit_id"}


async def _groups(query: Mapping[str, Any], base: str, runtime: Any, tenant: str) -> Response:
    criteria = _filter(query, _GROUP_FILTERS)
    start, count = _page(query)
    parameters = _parameters(query, Group)
    async with runtime.uow() as uow:
        total, found = await use_cases.find_provisioned_groups(
            uow, tenant, offset=start - 1, limit=count, **criteria
        )
    return _list([_group(u, x, base) for u, x in found], total, start, parameters, Group)


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
    start, count = _page(query)
    criteria = _filter(query, _USER_FILTERS)
    base = _base(request)
    async with runtime.uow() as uow:
        users_total, users = await use_cases.find_provisioned_users(
            uow, tenant, offset=start - 1, limit=count, **criteria
        )
        groups_total, groups = 0, list[tuple[OrgUnit, str | None]]()
        if not criteria:
            groups_total, groups = await use_cases.find_provisioned_groups(
                uow,
                tenant,
                offset=max(start - 1 - users_total, 0),
                limit=count - len(users),
            )
    found = [
        *(
            _user(s, base).model_dump(
                scim_ctx=Context.SEARCH_RESPONSE,
                response_parameters=_parameters(query, ScimUser),
            )
            for s in users
        ),
        *(
            _group(u, x, base).model_dump(
                scim_ctx=Context.SEARCH_RESPONSE, response_parameters=_parameters(query, Group)
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
    async with runtime.uow() as uow:
        unit, external_id = await use_cases.get_provisioned_group(uow, tenant, group_id)
    return _group_answer(unit, external_id, request, 200, Context.RESOURCE_QUERY_RESPONSE)


@router.post("/Groups")
async def create_group(request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> Response:
    tenant = _require(principal)
    group = Group.model_validate(
        _kept(await _body(request), _GROUP_KEYS), scim_ctx=Context.RESOURCE_CREATION_REQUEST
    )
    async with runtime.uow() as uow:
        unit, _ = await use_cases.provision_group(
            uow, tenant, _group_name(group), group.external_id
        )
    runtime.uow.events_committed.set()
    return _group_answer(unit, group.external_id, request, 201, Context.RESOURCE_CREATION_RESPONSE)


@router.put("/Groups/{group_id}")
async def replace_group(
    group_id: str, request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    tenant = _require(principal)
    group = Group.model_validate(
        _kept(await _body(request), _GROUP_KEYS), scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST
    )
    async with runtime.uow() as uow:
        unit, _ = await use_cases.provision_group(
            uow,
            tenant,
            _group_name(group),
            group.external_id,
            org_unit_id=group_id,
            if_match=_if_match(request),
        )
    runtime.uow.events_committed.set()
    return _group_answer(
        unit, group.external_id, request, 200, Context.RESOURCE_REPLACEMENT_RESPONSE
    )


@router.patch("/Groups/{group_id}")
async def patch_group(
    group_id: str, request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    tenant = _require(principal)
    payload = _patch_operations(await _body(request), _GROUP_KEYS)
    patch = PatchOp[Group].model_validate(payload, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
    async with runtime.uow() as uow:
        unit, external_id = await use_cases.get_provisioned_group(uow, tenant, group_id)
        group = _group(unit, external_id, _base(request))
        patch.patch(group)
        unit, _ = await use_cases.provision_group(
            uow,
            tenant,
            _group_name(group),
            group.external_id,
            org_unit_id=group_id,
            if_match=_if_match(request),
        )
    runtime.uow.events_committed.set()
    return _group_answer(unit, group.external_id, request, 200, Context.RESOURCE_PATCH_RESPONSE)


@router.delete("/Groups/{group_id}")
async def delete_group(
    group_id: str, request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    tenant = _require(principal)
    async with runtime.uow() as uow:
        await use_cases.remove_group(uow, tenant, group_id, if_match=_if_match(request))
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
