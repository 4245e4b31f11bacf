"""Every HTTP route that takes a name or a title refuses control characters with a 422 naming
the field, in every service, through the service's real app (generated names, not a list).

Names and titles become email headers, push titles, webhook labels and CSV cells; the shared
value types refuse CR/LF, TAB, C1, line separators and bidi overrides, and every request model
that takes such text uses them. Refused requests end at validation: nothing reaches a handler.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rhythm_shared.kit.auth import issue_token
from rhythm_shared.kit.settings import DEV_JWT_SECRET
from tests.contracts.test_one_line_text import control_characters

Body = Callable[[str], dict[str, Any]]

EMPLOYEE = {
    "email": "ana.devries@acme.example.com",
    "display_name": "Ana de Vries",
    "org_unit_id": "ou-1",
    "time_zone": "Europe/Amsterdam",
    "locale": "nl",
    "hired_on": "2023-09-01",
}
GOAL = {"title": "Cut latency", "period_start": "2026-01-01", "period_end": "2026-03-31"}
KEY_RESULT = {"title": "p95", "unit": "ms", "start": 840, "target": 420, "direction": "decrease"}

#: (service, method, path, body with the name in place, where the 422 must point)
ROUTES: list[tuple[str, str, str, Body, list[str | int]]] = [
    (
        "people",
        "PUT",
        "/v1/people/employees/e-1",
        lambda name: {**EMPLOYEE, "display_name": name},
        ["body", "display_name"],
    ),
    ("people", "PUT", "/v1/people/org-units/ou-1", lambda name: {"name": name}, ["body", "name"]),
    (
        "people",
        "POST",
        "/v1/people/employees:batch",
        lambda name: {"employees": [{"employee_id": "e-1", **EMPLOYEE, "display_name": name}]},
        ["body", "employees", 0, "display_name"],
    ),
    (
        "people",
        "POST",
        "/v1/people/employees:batch",
        lambda name: {"org_units": [{"org_unit_id": "ou-1", "name": name}]},
        ["body", "org_units", 0, "name"],
    ),
    ("goals", "POST", "/v1/goals", lambda name: {**GOAL, "title": name}, ["body", "title"]),
    ("goals", "PATCH", "/v1/goals/g-1", lambda name: {"title": name}, ["body", "title"]),
    (
        "goals",
        "POST",
        "/v1/goals",
        lambda name: {**GOAL, "key_results": [{**KEY_RESULT, "title": name}]},
        ["body", "key_results", 0, "title"],
    ),
    (
        "goals",
        "POST",
        "/v1/goals",
        lambda name: {**GOAL, "key_results": [{**KEY_RESULT, "unit": name}]},
        ["body", "key_results", 0, "unit"],
    ),
    (
        "goals",
        "POST",
        "/v1/goals/bulk",
        lambda name: {"org_unit_id": "ou-1", "template": {**GOAL, "title": name}},
        ["body", "template", "title"],
    ),
    (
        "notifications",
        "POST",
        "/v1/webhook-endpoints",
        lambda name: {"url": "https://hr.example.com/hooks", "description": name},
        ["body", "description"],
    ),
]

letters = st.text(st.characters(categories=("L", "N")), min_size=1, max_size=8)


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FastAPI]:
    directory: Path = tmp_path_factory.mktemp("hostile-text")
    out = {}
    for service in {r[0] for r in ROUTES}:
        main = importlib.import_module(f"rhythm_{service}.main")
        app: FastAPI = main.build(
            main.Settings(
                environment="development",
                database_url=f"sqlite+aiosqlite:///{directory / service}.db",
                log_json=False,
            )
        )
        out[service] = app
    return out


TOKEN = issue_token(
    DEV_JWT_SECRET, tenant="acme", subject="e-1", roles=["hr_admin"], now=datetime.now(UTC)
)


@pytest.mark.parametrize(
    ("service", "method", "path", "body", "loc"),
    ROUTES,
    ids=[f"{r[0]}:{r[1]} {r[2]} {'.'.join(map(str, r[4][1:]))}" for r in ROUTES],
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(before=letters, bad=control_characters, after=letters)
async def test_a_name_with_a_control_character_gets_a_422_naming_the_field(
    apps: dict[str, FastAPI],
    service: str,
    method: str,
    path: str,
    body: Body,
    loc: list[str | int],
    before: str,
    bad: str,
    after: str,
) -> None:
    # No lifespan: a refused request must not need the database to be refused.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=apps[service]),
        base_url="http://test",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as http:
        response = await http.request(method, path, json=body(before + bad + after))
    assert response.status_code == 422, response.text
    refused = [d for d in response.json()["detail"] if "control characters" in d["msg"]]
    assert [d["loc"] for d in refused] == [loc]
