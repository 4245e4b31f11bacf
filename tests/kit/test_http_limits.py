"""Every service limits what a request may carry before it parses it.

A body over ``HTTP_MAX_BODY_BYTES`` gets a 413 with a JSON ``detail`` from every service, built by
its real app factory: at once when its ``Content-Length`` says so (not one byte read), and at the
limit when it streams in without one (chunked). Bulk endpoints state their own limit in the
OpenAPI document; and every array a request body may hold has a ``maxItems`` there.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from rhythm_shared.kit.auth import issue_token
from rhythm_shared.kit.limits import EXTENSION
from rhythm_shared.kit.settings import DEV_JWT_SECRET

SERVICES = ("goals", "checkins", "notifications", "reporting", "people")
#: A write of each service that takes a JSON body (reporting only reads: the clock endpoint).
WRITES = {
    "goals": ("POST", "/v1/goals"),
    "checkins": ("POST", "/v1/checkins"),
    "notifications": ("POST", "/v1/webhook-endpoints"),
    "reporting": ("PUT", "/v1/admin/clock"),
    "people": ("PUT", "/v1/people/employees/e-1"),
}
KIB = 1024
CHUNK = 16 * KIB


def build(service: str, tmp_path: Path, **settings: Any) -> FastAPI:
    """The service's app from its own factory; no lifespan: nothing here reaches a handler."""
    main = importlib.import_module(f"rhythm_{service}.main")
    return main.build(  # type: ignore[no-any-return]
        main.Settings(
            environment="development",
            database_url=f"sqlite+aiosqlite:///{tmp_path / service}.db",
            log_json=False,
            **settings,
        )
    )


def client(app: FastAPI) -> httpx.AsyncClient:
    token = issue_token(
        DEV_JWT_SECRET, tenant="acme", subject="e-1", roles=["hr_admin"], now=datetime.now(UTC)
    )
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )


class Body:
    """A JSON-ish body of ``size`` bytes, streamed in chunks; counts the chunks the app pulled."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        while sent < self.size:
            self.pulled += 1
            chunk = b" " * min(CHUNK, self.size - sent)
            sent += len(chunk)
            yield chunk


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "larger than this endpoint accepts" in response.json()["detail"]


@pytest.mark.parametrize("service", SERVICES)
async def test_a_declared_oversized_body_is_refused_before_a_byte_is_read(
    service: str, tmp_path: Path
) -> None:
    app = build(service, tmp_path)
    method, path = WRITES[service]
    body = Body(10 * 1024 * KIB)
    async with client(app) as http:
        response = await http.request(
            method, path, content=body, headers={"Content-Length": str(body.size)}
        )
    assert_too_large(response)
    assert body.pulled == 0


@pytest.mark.parametrize("service", SERVICES)
async def test_a_chunked_body_is_cut_off_at_the_limit(service: str, tmp_path: Path) -> None:
    app = build(service, tmp_path)
    method, path = WRITES[service]
    body = Body(64 * 1024 * KIB)  # no Content-Length: Transfer-Encoding: chunked
    async with client(app) as http:
        response = await http.request(method, path, content=body)
    assert_too_large(response)
    assert body.pulled <= 256 * KIB // CHUNK + 1


@pytest.mark.parametrize("service", SERVICES)
async def test_a_body_within_the_limit_reaches_the_service(service: str, tmp_path: Path) -> None:
    app = build(service, tmp_path)
    method, path = WRITES[service]
    async with client(app) as http:
        declared = await http.request(method, path, content=b"{" + b" " * (200 * KIB) + b"}")
        streamed = await http.request(method, path, content=Body(200 * KIB))
    # The service itself answers (a validation error for this filler), not the limit.
    assert declared.status_code == 422, declared.text
    assert streamed.status_code == 422, streamed.text


async def test_the_limit_is_a_setting(tmp_path: Path) -> None:
    app = build("goals", tmp_path, http_max_body_bytes=4 * KIB)
    async with client(app) as http:
        refused = await http.post("/v1/goals", content=b" " * (4 * KIB + 1))
        answered = await http.post("/v1/goals", content=b" " * (4 * KIB))
    assert_too_large(refused)
    assert answered.status_code == 422


async def test_the_people_batch_takes_larger_bodies_and_says_how_large(tmp_path: Path) -> None:
    from rhythm_people.entrypoints.http import MAX_BATCH_BYTES

    app = build("people", tmp_path)
    operation = app.openapi()["paths"]["/v1/people/employees:batch"]["post"]
    assert operation[EXTENSION] == MAX_BATCH_BYTES
    async with client(app) as http:
        big = await http.post(
            "/v1/people/employees:batch", content=Body(MAX_BATCH_BYTES - 2 * CHUNK)
        )
        too_big = Body(MAX_BATCH_BYTES + 10 * CHUNK)
        refused = await http.post("/v1/people/employees:batch", content=too_big)
        single = await http.put("/v1/people/employees/e-1", content=Body(MAX_BATCH_BYTES // 2))
    assert big.status_code == 422, big.text
    assert_too_large(refused)
    assert too_big.pulled <= MAX_BATCH_BYTES // CHUNK + 1
    assert_too_large(single)  # the batch's limit is the batch's only


def _request_arrays(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every array schema reachable from a request body of ``document`` (an OpenAPI 3.1 doc)."""
    schemas = document.get("components", {}).get("schemas", {})
    seen: set[str] = set()

    def walk(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
        if isinstance(node, list):
            for item in node:
                yield from walk(item, where)
            return
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                yield from walk(schemas.get(name), name)
        if node.get("type") == "array":
            yield where, node
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for prop, schema in value.items():
                    yield from walk(schema, f"{where}.{prop}")
            elif key != "$ref":
                yield from walk(value, where)

    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if body:
                yield from walk(body, f"{method.upper()} {path}")


@pytest.mark.parametrize("service", SERVICES)
def test_every_array_in_a_request_body_has_a_maximum_length(service: str, tmp_path: Path) -> None:
    document = build(service, tmp_path).openapi()
    arrays = list(_request_arrays(document))
    unbounded = [where for where, schema in arrays if "maxItems" not in schema]
    assert unbounded == [], f"{service}: request-body arrays without maxItems: {unbounded}"


def test_the_array_walk_finds_the_arrays_it_must_check(tmp_path: Path) -> None:
    # The walk itself must see nested and referenced arrays, or the test above proves nothing.
    found = {where for where, _ in _request_arrays(build("people", tmp_path).openapi())}
    assert {"PeopleBatch.org_units", "PeopleBatch.employees"} <= found
    goals = {where for where, _ in _request_arrays(build("goals", tmp_path).openapi())}
    assert "GoalTemplate.key_results" in goals
