"""Tenant isolation and private notes, table-driven from every service's OpenAPI.

Tenants A and B each hold a small organisation (see ``tests/fuzz/fleet.py``: goals, a private
goal, a check-in with reflection and GROW notes, feedback, preferences, a push subscription, a
webhook endpoint) whose every free text carries a marker unique to the tenant.

For every operation (path x method) of every service, B's principals (every role; one of them
even uses A's employee id as its subject) send the request with A's ids in the path, the query
and the body, and the same request with "ghost" ids of the same shape that exist nowhere:

* no answer to B holds any of A's markers or ids (unless B sent that id itself);
* the answer for A's ids is the answer for ghost ids (same status): a 404 or an empty list,
  never a 403 or anything else that confirms A's data exists;
* after all of B's writes, A reads exactly what it read before.

Inside tenant A, an employee outside a conversation reads no one else's notes: for every read
operation, neither a peer (cat) nor the giver of some feedback (ben) sees check-in reflections,
GROW notes, action items, feedback they are not party to, or a private goal of someone else.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from tests.fuzz.fleet import ALL_ROLES, SERVICES, Fleet, Org, bearer, openapi, operations
from tests.isolation.conftest import Tenants

pytestmark = pytest.mark.kafka


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any

    @property
    def text(self) -> str:
        return f"{self.path}?{urlencode(self.query)} {json.dumps(self.body)}"

    def send(self, fleet: Fleet, service: str, headers: dict[str, str]) -> requests.Response:
        return requests.request(
            self.method,
            f"{fleet.url(service)}{self.path}",
            params=self.query,
            json=self.body if self.method != "get" else None,
            headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
            timeout=30,
        )

    def replaced(self, mapping: dict[str, str]) -> Call:
        """The same call with every occurrence of each key replaced (longest first)."""

        def sub(text: str) -> str:
            for old in sorted(mapping, key=len, reverse=True):
                text = text.replace(old, mapping[old])
            return text

        return Call(
            self.method,
            sub(self.path),
            {k: sub(v) for k, v in self.query.items()},
            json.loads(sub(json.dumps(self.body))),
        )


def ghost(value: str) -> str:
    """An id of the same shape (hex stays hex, digits stay digits) that exists nowhere."""
    out = []
    for ch in value:
        if ch.isdigit():
            out.append(str((int(ch) + 3) % 10))
        elif "a" <= ch <= "f":
            out.append("abcdef"[("abcdef".index(ch) + 2) % 6])
        elif "g" <= ch <= "z":
            out.append(chr(ord("g") + (ord(ch) - ord("g") + 5) % 20))
        else:
            out.append(ch)
    return "".join(out)


def path_values(org: Org, *, private_goal: bool = False) -> dict[str, str]:
    values = dict(org.ids)
    if private_goal:
        values["goal_id"] = org.ids["private_goal_id"]
    values["scope"] = "org_unit"
    values["scope_id"] = org.units["team"]
    values["kind"] = "slack"  # notifications' chat channels: slack or teams
    return values


def query_values(org: Org) -> dict[str, str]:
    ana, team = org.emp("ana"), org.units["team"]
    return {
        "employee_id": ana,
        "owner_id": ana,
        "recipient_id": ana,
        "manager_id": org.emp("mgr"),
        "unit": team,
        "org_unit_id": team,
    }


def body_values(org: Org) -> dict[str, Any]:
    return {
        "employee_id": org.emp("ana"),
        "owner_id": org.emp("ana"),
        "receiver_id": org.emp("ana"),
        "from_id": org.emp("ben"),
        "manager_id": org.emp("mgr"),
        "head_id": org.emp("mgr"),
        "hr_contact_id": org.emp("mgr"),
        "org_unit_id": org.units["team"],
        "parent_id": org.units["root"],
        "parent_goal_id": org.ids["goal_id"],
        "goals_discussed": [org.ids["goal_id"]],
    }


def with_ids(value: Any, ids: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {k: ids[k] if k in ids else with_ids(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [with_ids(v, ids) for v in value]
    return value


def example_body(document: dict[str, Any], operation: dict[str, Any]) -> Any:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    ref = content.get("schema", {}).get("$ref", "")
    component = document.get("components", {}).get("schemas", {}).get(ref.split("/")[-1], {})
    examples = component.get("examples") or [{}]
    return examples[0]


def calls(
    service: str, method: str, path: str, org: Org, *, private_goal: bool = False
) -> list[Call]:
    """The operation with the org's ids in its path: without query, and with every id-like
    query parameter set to the org's ids; writes carry their schema example with the org's ids."""
    document = openapi(service)
    operation = document["paths"][path][method]
    values = path_values(org, private_goal=private_goal)
    names = re.findall(r"{(\w+)}", path)
    missing = [n for n in names if n not in values]
    assert not missing, f"no value for path parameters {missing} of {path}: extend the table"
    concrete = path
    for name in names:
        concrete = concrete.replace(f"{{{name}}}", values[name])
    body = with_ids(example_body(document, operation), body_values(org))
    known = query_values(org)
    query = {
        p["name"]: known[p["name"]]
        for p in operation.get("parameters", [])
        if p["in"] == "query" and p["name"] in known
    }
    result = [Call(method, concrete, {}, body)]
    if query:
        result.append(Call(method, concrete, query, body))
    return result


def leaked(response: requests.Response, call: Call, secrets: set[str], subject: str) -> list[str]:
    """Secrets in the answer that the caller did not send itself (in the call or as subject)."""
    text = response.text
    return sorted(s for s in secrets if s in text and s not in call.text and s != subject)


def b_principals(t: Tenants) -> dict[str, str]:
    """B's principals (every role) by their subject: B's own boss, and A's ana's id."""
    return {"B's boss": t.b.emp("boss"), "B with A's subject": t.a.emp("ana")}


def check_cross_tenant(fleet: Fleet, t: Tenants, service: str, method: str, path: str) -> None:
    a = t.a
    ghosts = {s: ghost(s) for s in a.secrets}
    failures: list[str] = []
    for who, subject in b_principals(t).items():
        headers = bearer(t.b.tenant, subject, ALL_ROLES)
        ghost_headers = bearer(t.b.tenant, ghosts.get(subject, subject), ALL_ROLES)
        for private_goal in (False, True) if "{goal_id}" in path else (False,):
            for call in calls(service, method, path, a, private_goal=private_goal):
                ghost_call = call.replaced(ghosts)
                real = call.send(fleet, service, headers)
                fake = ghost_call.send(fleet, service, ghost_headers)
                if path == "/readyz":
                    continue  # tenantless; and its 503 only says the broker is slow right now
                label = f"{who}: {method.upper()} {call.path} {call.query}"
                if leaks := leaked(real, call, a.secrets, subject):
                    failures.append(f"{label} -> {real.status_code} shows A's {leaks}")
                if real.status_code != fake.status_code:
                    failures.append(
                        f"{label} -> {real.status_code} for A's ids but {fake.status_code} for "
                        f"ids that exist nowhere: {real.text[:300]}"
                    )
                if real.status_code >= 500:
                    failures.append(f"{label} -> {real.status_code}: {real.text[:300]}")
    assert not failures, "\n".join(failures)


def entity_reads(a: Org) -> list[tuple[str, Call]]:
    """Every read of one of A's entities (a GET with path parameters), as A sees it."""
    reads = []
    for service in SERVICES:
        for path, methods in openapi(service)["paths"].items():
            if "get" in methods and "{" in path:
                for private_goal in (False, True) if "{goal_id}" in path else (False,):
                    reads += [
                        (service, c)
                        for c in calls(service, "get", path, a, private_goal=private_goal)
                    ]
    return reads


def read_as_a(fleet: Fleet, a: Org) -> dict[str, tuple[int, Any]]:
    headers = bearer(a.tenant, a.emp("ana"), ALL_ROLES)
    seen = {}
    for service, call in entity_reads(a):
        response = call.send(fleet, service, headers)
        seen[f"{service} {call.path} {call.query}"] = (response.status_code, response.text)
    return seen


@pytest.fixture(scope="module")
def a_before(fleet: Fleet, tenants: Tenants) -> dict[str, tuple[int, Any]]:
    return read_as_a(fleet, tenants.a)


@pytest.mark.parametrize(("service", "method", "path"), operations(reads=True))
def test_tenant_b_reads_nothing_of_tenant_a(
    fleet: Fleet,
    tenants: Tenants,
    a_before: dict[str, tuple[int, Any]],
    service: str,
    method: str,
    path: str,
) -> None:
    check_cross_tenant(fleet, tenants, service, method, path)


def _people_last(params: list[Any]) -> list[Any]:
    # B upserting people with A's ids (its own, legitimately) must not race later writes.
    return sorted(params, key=lambda p: p.values[0] == "people")


@pytest.mark.parametrize(("service", "method", "path"), _people_last(operations(reads=False)))
def test_tenant_b_writes_to_tenant_a_ids_find_nothing_and_show_nothing(
    fleet: Fleet,
    tenants: Tenants,
    a_before: dict[str, tuple[int, Any]],
    service: str,
    method: str,
    path: str,
) -> None:
    check_cross_tenant(fleet, tenants, service, method, path)


def test_tenant_a_reads_the_same_after_everything_tenant_b_did(
    fleet: Fleet, tenants: Tenants, a_before: dict[str, tuple[int, Any]]
) -> None:
    fleet.settle()
    after = read_as_a(fleet, tenants.a)
    changed = [k for k in a_before if a_before[k] != after[k]]
    assert not changed, "\n".join(f"{k}: {a_before[k]} -> {after[k]}" for k in changed)
    assert any(status == 200 for status, _ in a_before.values())


# --- inside tenant A: notes are for the people in the conversation -------------------------

PRIVATE = ("private_goal", "reflection", "notes", "action_item", "push_endpoint")


def private_markers(a: Org, viewer: str) -> set[str]:
    own = {"ben": ("feedback",)}.get(viewer, ())
    kinds = (*PRIVATE, *(("feedback",) if "feedback" not in own else ()))
    return {m for what, m in a.markers.items() if what.startswith(kinds)}


@pytest.mark.parametrize("viewer", ["cat", "ben"])
@pytest.mark.parametrize(("service", "method", "path"), operations(reads=True))
def test_an_employee_never_reads_another_employees_private_notes(
    fleet: Fleet, tenants: Tenants, viewer: str, service: str, method: str, path: str
) -> None:
    a = tenants.a
    secrets = private_markers(a, viewer)
    headers = bearer(a.tenant, a.emp(viewer), ["employee"])
    failures = []
    for private_goal in (False, True) if "{goal_id}" in path else (False,):
        for call in calls(service, method, path, a, private_goal=private_goal):
            response = call.send(fleet, service, headers)
            if path == "/readyz":
                continue  # tenantless; and its 503 only says the broker is slow right now
            if leaks := leaked(response, call, secrets, a.emp(viewer)):
                failures.append(
                    f"{viewer}: GET {call.path} {call.query} -> {response.status_code} shows "
                    f"{leaks}"
                )
            if response.status_code >= 500:
                failures.append(f"{viewer}: GET {call.path} -> {response.status_code}")
    assert not failures, "\n".join(failures)


def test_a_private_goal_is_a_404_to_a_peer_and_readable_by_the_manager_chain(
    fleet: Fleet, tenants: Tenants
) -> None:
    a = tenants.a
    url = f"{fleet.url('goals')}/v1/goals/{a.ids['private_goal_id']}"
    for who, expected in (("cat", 404), ("ana", 200), ("mgr", 200), ("boss", 200)):
        roles = ["employee", "manager"] if who in ("mgr", "boss") else ["employee"]
        response = requests.get(url, headers=bearer(a.tenant, a.emp(who), roles), timeout=30)
        assert response.status_code == expected, (who, response.status_code, response.text)


def test_the_markers_are_there_for_those_entitled_so_their_absence_means_something(
    fleet: Fleet, tenants: Tenants
) -> None:
    a = tenants.a
    ana = bearer(a.tenant, a.emp("ana"), ["employee"])
    hr = bearer(a.tenant, a.emp("boss"), ["hr_admin"])
    seen = {
        "notes_will": ("checkins", f"/v1/checkins/{a.ids['checkin_id']}", ana),
        "reflection_wins": ("checkins", f"/v1/checkins/{a.ids['checkin_id']}", ana),
        "feedback_text": ("checkins", f"/v1/feedback/{a.ids['feedback_id']}", ana),
        "private_goal_title": ("goals", f"/v1/goals/{a.ids['private_goal_id']}", ana),
        "push_endpoint": ("notifications", "/v1/push-subscriptions", ana),
        "webhook_description": ("notifications", "/v1/webhook-endpoints", hr),
    }
    for what, (service, path, headers) in seen.items():
        response = requests.get(f"{fleet.url(service)}{path}", headers=headers, timeout=30)
        assert response.status_code == 200, (path, response.text)
        assert a.markers[what] in response.text, (what, path, response.text[:500])
