"""The access matrix: every route of every service x every relationship to one person.

Each service states its access policy as a table (``POLICY``: operation -> relationships) and
maps every HTTP route to the operation it performs (``ROUTES``). This suite holds the services
to their tables:

* every route in a service's OpenAPI document has a row in ``ROUTES``, naming an operation with
  a row in ``POLICY`` (the kit's own routes aside), so a route added without a decision fails;
* for the subject ana (seeded by ``tests/fuzz/fleet.py``: boss <- mgr <- ana, ben, cat, ...; mgr
  heads ana's team, ``head`` the root unit) and a caller in each relationship to her, every
  route is called — reads first, then writes — with ana's ids where it takes ids:

  - the table allows it -> the answer is not 403/404 (nor a server error);
  - the table refuses it -> 403 or 404 (or 422 naming the field that asks too much), or, on a
    route listed in ``FILTERING``, an answer with ana's part left out; either way it shows none
    of ana's private texts (notes, action items, reflections, feedback, private goals, her push
    endpoint).

A call that names none of ana's ids is about the caller: a person is ``self`` to it, an
organisation-wide token holds only its roles.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
import requests

from rhythm_shared.kit.access import KIT_ROUTES, Policy, Relationship, relationships
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.people import PeopleDirectory
from tests.fuzz.fleet import SERVICES, Fleet, Org, bearer, openapi
from tests.isolation.test_isolation import Call, calls, leaked

R = Relationship


@dataclass(frozen=True)
class Caller:
    """Someone in one relationship to ana: who they are and the roles their token carries."""

    who: str
    roles: tuple[str, ...]
    #: What the people directory must say they are to ana (checked, so the seed is right).
    expected: frozenset[Relationship]

    def subject(self, org: Org) -> str:
        return org.employees.get(self.who, f"{org.tag}-{self.who}")

    def principal(self, org: Org) -> Principal:
        return Principal(self.subject(org), org.tenant, frozenset(self.roles))

    def headers(self, org: Org) -> dict[str, str]:
        return bearer(org.tenant, self.subject(org), list(self.roles))


PERSON = ("employee",)
LEAD = ("employee", "manager")

CALLERS = {
    R.SELF: Caller("ana", PERSON, frozenset({R.SELF})),
    # mgr also heads ana's team: both relationships are theirs.
    R.MANAGER: Caller("mgr", LEAD, frozenset({R.MANAGER, R.UNIT_HEAD})),
    R.MANAGER_CHAIN: Caller("boss", LEAD, frozenset({R.MANAGER_CHAIN})),
    R.UNIT_HEAD: Caller("head", LEAD, frozenset({R.UNIT_HEAD})),
    R.HR_ADMIN: Caller("hr", ("hr_admin",), frozenset({R.HR_ADMIN})),
    R.EXECUTIVE: Caller("exec", ("executive",), frozenset({R.EXECUTIVE})),
    R.INTEGRATION: Caller("hris", ("integration",), frozenset({R.INTEGRATION})),
    R.PEER: Caller("cat", PERSON, frozenset({R.PEER})),
}

#: What of ana's is private: no refused caller may read it.
PRIVATE = ("private_goal", "reflection", "notes", "action_item", "feedback", "push_endpoint")


# --- the tables ---------------------------------------------------------------------------


@cache
def access_module(service: str) -> Any:
    """The service's pure access module: ``domain/access.py``, or ``access.py`` beside a
    one-module domain."""
    for name in (f"rhythm_{service}.domain.access", f"rhythm_{service}.access"):
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    raise AssertionError(f"{service} has no access module (domain/access.py or access.py)")


def tables(service: str) -> tuple[Policy, Mapping[tuple[str, str], str]]:
    module = access_module(service)
    return module.POLICY, module.ROUTES


def missing_rows(
    service: str,
    document: Mapping[str, Any],
    policy: Policy,
    routes: Mapping[tuple[str, str], str],
) -> list[str]:
    """What keeps the service's tables from deciding every route it serves."""
    served = {
        (method.upper(), path)
        for path, methods in document.get("paths", {}).items()
        for method in methods
    }
    problems = []
    for route in sorted(served - KIT_ROUTES):
        operation = routes.get(route)
        if operation is None:
            problems.append(f"{service} {route[0]} {route[1]}: no row in ROUTES")
        elif operation not in policy:
            problems.append(f"{service} {route[0]} {route[1]} -> {operation!r}: no row in POLICY")
    undocumented: frozenset[tuple[str, str]] = (
        getattr(access_module(service), "UNDOCUMENTED_ROUTES", frozenset())
        if service in SERVICES
        else frozenset()
    )
    for route in sorted(set(routes) - served - undocumented):
        problems.append(f"{service} {route[0]} {route[1]}: in ROUTES but not served")
    return problems


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_of_the_service_has_a_row_in_its_policy(service: str) -> None:
    policy, routes = tables(service)
    problems = missing_rows(service, openapi(service), policy, routes)
    assert not problems, "\n".join(problems)


def test_a_route_added_without_a_row_fails_the_check() -> None:
    policy = {"read_thing": frozenset({R.SELF})}
    routes = {("GET", "/v1/things/{thing_id}"): "read_thing", ("PUT", "/v1/things"): "put"}
    document: dict[str, Any] = {
        "paths": {
            "/healthz": {"get": {}},
            "/v1/things/{thing_id}": {"get": {}, "delete": {}},
            "/v1/things": {"put": {}},
        }
    }
    assert missing_rows("svc", document, policy, routes) == [
        "svc DELETE /v1/things/{thing_id}: no row in ROUTES",
        "svc PUT /v1/things -> 'put': no row in POLICY",
    ]
    assert missing_rows("svc", {"paths": {}}, policy, routes) == [
        "svc GET /v1/things/{thing_id}: in ROUTES but not served",
        "svc PUT /v1/things: in ROUTES but not served",
    ]


# --- the matrix ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Relations:
    to_ana: dict[Relationship, frozenset[Relationship]]
    to_themselves: dict[Relationship, frozenset[Relationship]]


@pytest.fixture(scope="module")
def relations(fleet: Fleet, org: Org) -> Relations:
    # The relationships as a service's directory holds them: notifications' will do.
    from rhythm_notifications.adapters.db import directory as directory_tables

    runtime = fleet.services["notifications"].runtime

    async def find() -> Relations:
        async with runtime.sessions() as session:
            directory = PeopleDirectory(session, directory_tables, org.tenant)
            to_ana, to_themselves = {}, {}
            for key, caller in CALLERS.items():
                principal = caller.principal(org)
                to_ana[key] = await relationships(directory, principal, org.emp("ana"))
                to_themselves[key] = await relationships(directory, principal, principal.subject)
            return Relations(to_ana, to_themselves)

    found = fleet.run(find())
    assert found.to_ana == {k: c.expected for k, c in CALLERS.items()}, "the seed is not right"
    return found


def ana_ids(org: Org) -> set[str]:
    """Ids that make a call about ana: her own, her goals, check-in, action item, feedback
    received, push subscription, and her team."""
    keys = ("goal_id", "private_goal_id", "checkin_id", "item_id", "feedback_id")
    return {
        org.emp("ana"),
        org.units["team"],
        org.ids["subscription_id"],
        *(org.ids[k] for k in keys),
    }


def private_markers(org: Org) -> set[str]:
    return {marker for what, marker in org.markers.items() if what.startswith(PRIVATE)}


def _renew_webhook(fleet: Fleet, org: Org) -> str:
    response = requests.post(
        f"{fleet.url('notifications')}/v1/webhook-endpoints",
        json={"url": f"https://hr.example.com/hooks/{uuid.uuid4().hex}"},
        headers=CALLERS[R.HR_ADMIN].headers(org),
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


#: Deletes that an allowed caller carries out: each allowed caller gets a fresh one to delete.
RENEW: dict[tuple[str, str, str], tuple[str, Callable[[Fleet, Org], str]]] = {
    ("notifications", "delete", "/v1/webhook-endpoints/{endpoint_id}"): (
        "endpoint_id",
        _renew_webhook,
    ),
}


def matrix_calls(
    service: str, method: str, path: str, org: Org, *, private_goal: bool
) -> list[Call]:
    """The isolation suite's calls (ana's ids in path, query and body), with ana also as the
    person asked for feedback, and the private goal's own key result on the private goal."""
    mapping = {org.emp("ben"): org.emp("ana")}
    if private_goal:
        mapping[org.ids["key_result_id"]] = f"{org.tag}-kr-private_goal"
    return [
        c.replaced(mapping) for c in calls(service, method, path, org, private_goal=private_goal)
    ]


def _goals_refined(
    method: str, path: str, private_goal: bool, rels: frozenset[Relationship]
) -> str | None:
    """The operation goals' use cases refine a route to (rhythm_goals.domain.access says how)."""
    from rhythm_goals.domain import access
    from rhythm_shared.contracts.v1 import OwnerType, Visibility

    if (method, path) == ("post", "/v1/goals"):
        return access.create_operation(OwnerType.PERSON, rels)
    reads = ("/v1/goals/{goal_id}", "/v1/goals/{goal_id}/tree")
    if method == "get" and path in reads and not private_goal:
        return access.read_operation(OwnerType.PERSON, Visibility.TENANT)
    return None


def _unrefined(
    method: str, path: str, private_goal: bool, rels: frozenset[Relationship]
) -> str | None:
    return None


#: Routes whose operation depends on the entity or the caller (the service's module says how).
REFINED: dict[str, Callable[[str, str, bool, frozenset[Relationship]], str | None]] = {
    "goals": _goals_refined,
}

#: Reads that answer a refused caller with ana's part left out (not with 403/404): a goal's
#: history without its progress comments, a list of check-ins without hers.
FILTERING = {
    ("goals", "get", "/v1/goals/{goal_id}/history"),
    ("checkins", "get", "/v1/checkins"),
}

#: Writes that finish what later writes work on (replace key results, archive, complete): last.
FINISHING = {("patch", "/v1/goals/{goal_id}"), ("post", "/v1/goals/{goal_id}/archive")}
FINISHING |= {
    ("post", "/v1/checkins/{checkin_id}/complete"),
    ("post", "/v1/checkins/{checkin_id}/cancel"),
}


def matrix_routes(*, reads: bool) -> list[Any]:
    params = []
    for service in SERVICES:
        for path, methods in openapi(service)["paths"].items():
            for method in methods:
                if (method.upper(), path) in KIT_ROUTES or reads != (method == "get"):
                    continue
                params.append(pytest.param(service, method, path, id=f"{service} {method} {path}"))
    if not reads:
        # People writes last (a deactivation of ana, then her erasure, the very last): the
        # others need her.
        params.sort(
            key=lambda p: (
                p.values[0] == "people",
                (p.values[1], p.values[2]) in FINISHING,
                ":deactivate" in str(p.values[2]) or ":erase" in str(p.values[2]),
                ":erase" in str(p.values[2]),
            )
        )
    return params


def check_route(
    fleet: Fleet, org: Org, relations: Relations, service: str, method: str, path: str
) -> None:
    policy, routes = tables(service)
    operation = routes.get((method.upper(), path))
    assert operation is not None, f"{service} {method.upper()} {path}: no row in ROUTES"
    mine, secrets, write = ana_ids(org), private_markers(org), method != "get"
    renew = RENEW.get((service, method, path))
    failures: list[str] = []
    for private_goal in (False, True) if "{goal_id}" in path else (False,):
        for call in matrix_calls(service, method, path, org, private_goal=private_goal):
            about_ana = any(i in call.text for i in mine)
            held = relations.to_ana if about_ana else relations.to_themselves
            refine = REFINED.get(service, _unrefined)
            may = {
                key: bool(
                    policy.get(
                        refine(method, path, private_goal, held[key]) or operation, frozenset()
                    )
                    & held[key]
                )
                for key in CALLERS
            }
            # Refused callers first: an allowed write may change what the next caller finds.
            for key in sorted(CALLERS, key=lambda k: may[k]):
                caller = CALLERS[key]
                sent = call
                if renew is not None and may[key]:
                    name, make = renew
                    sent = call.replaced({org.ids[name]: make(fleet, org)})
                response = sent.send(fleet, service, caller.headers(org))
                status = response.status_code
                label = (
                    f"{key.value} ({caller.who}) {method.upper()} {sent.path} {sent.query} "
                    f"[{operation}: {'allowed' if may[key] else 'refused'}] -> {status}"
                )
                if status >= 500:
                    failures.append(f"{label}: {response.text[:200]}")
                elif may[key]:
                    if status in (403, 404):
                        failures.append(f"{label}: {response.text[:200]}")
                else:
                    # 422: refused naming the field (a manager_id that is not the manager, a
                    # required id a non-person must give). A 2xx is a filtered answer: for a
                    # call about the caller themselves, or on a route that filters ana's part.
                    filtered = not write and status < 300
                    if filtered and about_ana and (service, method, path) not in FILTERING:
                        failures.append(f"{label}: answered, yet ana's part is not filtered")
                    elif status not in (403, 404, 422) and not filtered:
                        failures.append(f"{label}: neither refused nor filtered")
                    if about_ana and (
                        leaks := leaked(response, sent, secrets, caller.subject(org))
                    ):
                        failures.append(f"{label}: shows ana's {leaks}")
    assert not failures, "\n".join(failures)


@pytest.mark.kafka
@pytest.mark.parametrize(("service", "method", "path"), matrix_routes(reads=True))
def test_every_read_is_allowed_or_refused_as_the_policy_says(
    fleet: Fleet, org: Org, relations: Relations, service: str, method: str, path: str
) -> None:
    check_route(fleet, org, relations, service, method, path)


@pytest.mark.kafka
def test_the_markers_are_readable_by_ana_so_their_absence_means_something(
    fleet: Fleet, org: Org
) -> None:
    ana = CALLERS[R.SELF].headers(org)
    seen = {
        "notes_will": ("checkins", f"/v1/checkins/{org.ids['checkin_id']}"),
        "reflection_wins": ("checkins", f"/v1/checkins/{org.ids['checkin_id']}"),
        "feedback_text": ("checkins", f"/v1/feedback/{org.ids['feedback_id']}"),
        "private_goal_title": ("goals", f"/v1/goals/{org.ids['private_goal_id']}"),
        "push_endpoint": ("notifications", "/v1/push-subscriptions"),
    }
    for what, (service, path) in seen.items():
        response = requests.get(f"{fleet.url(service)}{path}", headers=ana, timeout=30)
        assert response.status_code == 200, (path, response.text)
        assert org.markers[what] in response.text, (what, path, response.text[:300])


@pytest.mark.kafka
@pytest.mark.parametrize(("service", "method", "path"), matrix_routes(reads=False))
def test_every_write_is_allowed_or_refused_as_the_policy_says(
    fleet: Fleet, org: Org, relations: Relations, service: str, method: str, path: str
) -> None:
    check_route(fleet, org, relations, service, method, path)
