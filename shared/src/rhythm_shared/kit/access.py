"""Who the caller is to the person a request is about, from the token and the people directory.

Each service states its access policy as one table (``domain/access.py``): operation ->
the relationships that may perform it. This module gives the vocabulary and the one way to
find a caller's relationships, so every service decides the same way:

* identity comes from the token (``sub``, ``tenant``); relationships come from the directory
  only — an id named in a request body never widens access;
* the organisation-wide functions (hr_admin, executive, integration) come from token roles;
* a role never widens a person's reach: a token with role ``manager`` for someone who manages
  nobody grants nothing over anyone. A token carrying only organisation-wide roles (say, an
  integration's) does not act as a person at all — the roles narrow what it may do.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from rhythm_shared.kit.auth import Principal, Role
from rhythm_shared.kit.errors import Forbidden
from rhythm_shared.kit.ports import Directory


class Relationship(StrEnum):
    SELF = "self"
    #: The subject's manager in the directory.
    MANAGER = "manager"
    #: Anyone above the direct manager in the subject's manager chain (skip-level and up).
    MANAGER_CHAIN = "manager_chain"
    #: Head of the subject's unit or of a unit above it.
    UNIT_HEAD = "unit_head"
    HR_ADMIN = "hr_admin"
    #: Executives see aggregates; a policy grants them no individual's private data.
    EXECUTIVE = "executive"
    INTEGRATION = "integration"
    #: Anyone else in the tenant.
    PEER = "peer"


PERSON_ROLES = frozenset({Role.EMPLOYEE.value, Role.MANAGER.value})

#: A policy: operation name -> the relationships that may perform it.
Policy = Mapping[str, frozenset[Relationship]]


def acts_as_person(principal: Principal) -> bool:
    return bool(principal.roles & PERSON_ROLES)


def role_relationships(principal: Principal) -> set[Relationship]:
    rels: set[Relationship] = set()
    if principal.has(Role.HR_ADMIN):
        rels.add(Relationship.HR_ADMIN)
    if principal.has(Role.EXECUTIVE):
        rels.add(Relationship.EXECUTIVE)
    if principal.has(Role.INTEGRATION):
        rels.add(Relationship.INTEGRATION)
    return rels


async def relationships(
    directory: Directory, principal: Principal, subject_id: str | None
) -> frozenset[Relationship]:
    """Every relationship of the caller to ``subject_id`` (an employee id of the tenant), or
    to nobody in particular when ``subject_id`` is None (tenant-wide operations)."""
    if directory.tenant_id != principal.tenant:
        raise ValueError("the directory and the principal are of different tenants")
    rels = role_relationships(principal)
    if subject_id is None or not acts_as_person(principal):
        return frozenset(rels)
    caller = principal.subject
    if caller == subject_id:
        rels.add(Relationship.SELF)
        return frozenset(rels)
    chain = await directory.manager_chain(subject_id)
    if chain and chain[0] == caller:
        rels.add(Relationship.MANAGER)
    elif caller in chain:
        rels.add(Relationship.MANAGER_CHAIN)
    if caller in await directory.unit_heads_above(subject_id):
        rels.add(Relationship.UNIT_HEAD)
    if not rels & {Relationship.MANAGER, Relationship.MANAGER_CHAIN, Relationship.UNIT_HEAD}:
        rels.add(Relationship.PEER)
    return frozenset(rels)


def allowed(policy: Policy, operation: str, rels: frozenset[Relationship]) -> bool:
    """Whether any of ``rels`` may perform ``operation``; an operation without a row is
    refused (a route added without a policy row grants nothing)."""
    return bool(policy.get(operation, frozenset()) & rels)


def require(policy: Policy, operation: str, rels: frozenset[Relationship], message: str) -> None:
    if not allowed(policy, operation, rels):
        raise Forbidden(message)


#: The kit's own routes, the same in every service and about no person: liveness, readiness,
#: the event catalog, the development clock, and the audit trail (hr_admin, checked where it is
#: served). A service's ``ROUTES`` lists every other route it serves.
KIT_ROUTES = frozenset(
    {
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/asyncapi.json"),
        ("GET", "/v1/admin/clock"),
        ("PUT", "/v1/admin/clock"),
        ("GET", "/v1/audit"),
    }
)
