"""SCIM 2.0 resources (RFC 7643) and their mapping to Rhythm's people, with ``scim2-models``.

A User is an employee (its ``id`` the employee id, whichever route created the person), a Group
an org unit. What Rhythm keeps of a User is what it needs: ``userName``, ``displayName``, one
work email, ``timezone``, ``locale``, ``active``, ``externalId`` and of the enterprise extension
``department``, ``organization`` and ``manager``. The schemas served list exactly those; any
other attribute a directory sends (``name``, ``title``, phone numbers) is ignored, as RFC 7644
§3.3 allows for attributes a service provider does not support. Also here: the request
parameters SCIM defines (filters, paging, ``attributes``; RFC 7644 §3.4) and PATCH bodies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field
from scim2_models import (
    AnyExtension,
    AuthenticationScheme,
    Bulk,
    CaseExact,
    ChangePassword,
    ComplexAttribute,
    Extension,
    Meta,
    Patch,
    Reference,
    Required,
    Resource,
    ResourceType,
    ResponseParameters,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
)
from scim2_models import ETag as ETagConfig
from scim2_models import Filter as FilterConfig
from scim2_models.urn import URN

from rhythm_people.domain.model import (
    OrgUnit,
    ProvisionedUser,
    StoredEmployee,
    employee_version,
    org_unit_version,
)

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
USER_KEYS = _COMMON | {"username", "displayname", "emails", "timezone", "locale", "active"}
_ENTERPRISE_KEYS = {"organization", "department", "manager"}
#: The sub-attributes kept of complex attributes (``primary``, ``display`` are ignored).
_SUB_KEYS = {"emails": {"value", "type"}, "manager": {"value", "$ref"}}
GROUP_KEYS = _COMMON | {"displayname"}


def provider_config() -> ServiceProviderConfig:
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


class ScimError(Exception):
    """A request SCIM refuses: its HTTP status and SCIM error type (RFC 7644 §3.12)."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type


# -- request parameters and bodies (RFC 7644 §3.4, §3.5.2) ---------------------------------------


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


def kept(payload: dict[str, Any], core: set[str]) -> dict[str, Any]:
    """The attributes Rhythm reads; others are ignored (RFC 7644 §3.3)."""
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if not _known(key, core):
            continue
        if key.lower() == ENTERPRISE_SCHEMA.lower() and isinstance(value, dict):
            value = {k: _sub_kept(k, v) for k, v in value.items() if k.lower() in _ENTERPRISE_KEYS}
        out[key] = _sub_kept(_root(key)[1], value)
    return out


def response_parameters(query: Mapping[str, Any], model: type[Any]) -> ResponseParameters[Any]:
    """``attributes``/``excludedAttributes`` (RFC 7644 §3.9), from a query string or a search."""
    raw = {
        "attributes": query.get("attributes"),
        "excludedAttributes": query.get("excludedAttributes"),
    }
    return ResponseParameters[model].model_validate({k: v for k, v in raw.items() if v})  # type: ignore[valid-type]


_FILTER = re.compile(r'^\s*([A-Za-z.:0-9]+)\s+eq\s+("(?:[^"\\]|\\.)*")\s*$', re.IGNORECASE)


def criteria(query: Mapping[str, Any], attributes: dict[str, str]) -> dict[str, str]:
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


def page(query: Mapping[str, Any]) -> tuple[int, int]:
    """startIndex (1-based) and count (RFC 7644 §3.4.2.4): out-of-range values are clamped."""

    def number(name: str, default: int) -> int:
        value = query.get(name)
        try:
            return int(value) if value is not None else default
        except ValueError:
            raise ScimError(400, f"{name} must be an integer", "invalidValue") from None

    return max(number("startIndex", 1), 1), min(max(number("count", DEFAULT_COUNT), 0), MAX_COUNT)


# -- Users (RFC 7643 §4.1; RFC 7644 §3.3-§3.6) ---------------------------------------------------


def user_resource(stored: StoredEmployee, base: str) -> Any:
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


def provisioned(user: Any, employee_number: str | None = None) -> ProvisionedUser:
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


def with_display_name(payload: dict[str, Any]) -> dict[str, Any]:
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


def employee_number(payload: dict[str, Any]) -> str | None:
    extension: Any = next(
        (v for k, v in payload.items() if k.lower() == ENTERPRISE_SCHEMA.lower()), {}
    )
    if isinstance(extension, dict):
        number = next((v for k, v in extension.items() if k.lower() == "employeenumber"), None)
        return str(number) if number else None
    return None


USER_FILTERS = {"username": "user_name", "externalid": "external_id", "id": "employee_id"}


def patch_operations(payload: dict[str, Any], core: set[str]) -> dict[str, Any]:
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
            operations.append({**operation, "value": kept(value, core)})
        else:
            operations.append(operation)
    return {**payload, "Operations": operations}


# -- Groups (RFC 7643 §4.2) ----------------------------------------------------------------------


def group_resource(unit: OrgUnit, external_id: str | None, base: str) -> Group:
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


def group_name(group: Group) -> str:
    if not group.display_name:
        raise ScimError(400, "required: displayName", "invalidValue")
    return group.display_name


GROUP_FILTERS = {"displayname": "display_name", "externalid": "external_id", "id": "org_unit_id"}
