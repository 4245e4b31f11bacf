"""All five services in this process, served over real HTTP, sharing one fresh topic namespace.

Each service runs its real lifespan (`running(app)`: migrations on a fresh SQLite file or the
fresh database given in ``database_urls``, topics, outbox relay, consumers on real Kafka, jobs)
on an event loop in a background thread, and a uvicorn server per service answers on a free
local port. Tests talk to it synchronously over HTTP (schemathesis' `case.call` uses
`requests`), so the services' loop is never the test's.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import importlib
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI
from sqlalchemy import func, select

from rhythm_shared.kit.app import Runtime, running
from rhythm_shared.kit.auth import Role, issue_token

SERVICES = ("people", "goals", "checkins", "notifications", "reporting")
ALL_ROLES = [str(r) for r in Role]

T = TypeVar("T")


class NullMailer:
    """Accepts every email (the fleet has no SMTP server; delivery is not under test here)."""

    async def send(self, message: EmailMessage, to_address: str, before_data: Any) -> Any:
        from rhythm_notifications.domain.delivery import Sent

        await before_data()
        return Sent()

    async def close(self) -> None:
        return None


#: The fleet runs as ``test``, not development (no clock endpoint to fuzz), so with secrets of
#: its own: the development ones are refused outside development.
TEST_SECRETS = {
    "environment": "test",
    "jwt_secret": secrets.token_hex(32),
    "unsubscribe_secret": secrets.token_hex(32),
    "data_key_encryption_key": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
}


@cache
def openapi(service: str) -> dict[str, Any]:
    """The service's OpenAPI document, as its app serves it (no need to start it)."""
    module = importlib.import_module(f"rhythm_{service}.main")
    app = module.build(module.Settings(database_url="sqlite+aiosqlite://", **TEST_SECRETS))
    document: dict[str, Any] = app.openapi()
    return document


def operations(*, reads: bool | None = None) -> list[Any]:
    """pytest params (service, method, path) of every operation of every service's OpenAPI;
    ``reads``: only GETs (True), only writes (False), or all (None)."""
    params = []
    for service in SERVICES:
        for path, methods in openapi(service)["paths"].items():
            for method in methods:
                if reads is None or reads == (method == "get"):
                    label = f"{service} {method.upper()} {path}"
                    params.append(pytest.param(service, method, path, id=label))
    return params


def token(tenant: str, subject: str, roles: list[str] | None = None) -> str:
    return issue_token(
        TEST_SECRETS["jwt_secret"],
        tenant=tenant,
        subject=subject,
        roles=roles or ALL_ROLES,
        now=datetime.now(UTC),  # tokens are checked against the wall clock
    )


def bearer(tenant: str, subject: str, roles: list[str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(tenant, subject, roles)}"}


@dataclass
class Served:
    name: str
    app: FastAPI
    runtime: Runtime
    base_url: str


@dataclass
class Fleet:
    bootstrap: str
    root: Path
    #: Service -> its database; a service not named gets a SQLite file under ``root``.
    database_urls: dict[str, str] = field(default_factory=dict)
    topic_prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}.")
    services: dict[str, Served] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _stop: asyncio.Event | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _error: BaseException | None = None

    # --- life cycle -------------------------------------------------------------------------

    def start(self, timeout_s: float = 240.0) -> None:
        self._thread = threading.Thread(target=self._main, name="rhythm-fleet", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError("the services did not start in time")
        if self._error is not None:
            raise RuntimeError("the services failed to start") from self._error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(60)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def settings(self, name: str) -> Any:
        module = importlib.import_module(f"rhythm_{name}.main")
        return module.Settings(
            database_url=self.database_urls.get(name, f"sqlite+aiosqlite:///{self.root / name}.db"),
            kafka_bootstrap_servers=self.bootstrap,
            kafka_topic_prefix=self.topic_prefix,
            topic_partitions=1,
            **TEST_SECRETS,
            consumer_session_timeout_ms=6000,
            consumer_heartbeat_interval_ms=500,
            relay_poll_interval_s=0.05,
            log_json=False,
            log_level="WARNING",
        )

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with contextlib.AsyncExitStack() as stack:
            servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []
            for name in SERVICES:
                module = importlib.import_module(f"rhythm_{name}.main")
                extra: dict[str, Any] = {"mailer": NullMailer()} if name == "notifications" else {}
                app: FastAPI = module.build(self.settings(name), **extra)
                runtime = await stack.enter_async_context(running(app))
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                # Accepted sockets inherit it: without, every response waits for a delayed ACK.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
                server = uvicorn.Server(
                    uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
                )
                task = asyncio.create_task(server.serve(sockets=[sock]))
                servers.append((server, task))
                self.services[name] = Served(name, app, runtime, f"http://127.0.0.1:{port}")
            for server, _ in servers:
                while not server.started:  # noqa: ASYNC110 (uvicorn offers no event)
                    await asyncio.sleep(0.02)
            self._ready.set()
            await self._stop.wait()
            for server, _ in servers:
                server.should_exit = True
            for _, task in servers:
                with contextlib.suppress(Exception):
                    await task
        with contextlib.suppress(Exception):  # leave no topics behind: they slow the broker down
            await self._delete_topics()

    async def _delete_topics(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            mine = [t for t in await admin.list_topics() if t.startswith(self.topic_prefix)]
            if mine:
                await admin.delete_topics(mine)
        finally:
            await admin.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start a coroutine on the services' loop; the test goes on meanwhile."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 60.0) -> T:
        """Run a coroutine on the services' loop (for database reads of a runtime)."""
        return self.submit(coro).result(timeout_s)

    def url(self, name: str) -> str:
        return self.services[name].base_url

    # --- quiescence --------------------------------------------------------------------------

    def _groups(self) -> dict[str, list[str]]:
        """Consumer group -> the prefixed topics it reads."""
        groups: dict[str, list[str]] = {}
        for name in ("goals", "checkins", "notifications", "reporting"):
            module = importlib.import_module(f"rhythm_{name}.entrypoints.consumers")
            for spec in module.consumers(self.services[name].runtime):
                groups.setdefault(spec.group, []).extend(
                    f"{self.topic_prefix}{t}" for t in spec.topics
                )
        return groups

    async def _unrelayed(self) -> int:
        total = 0
        for served in self.services.values():
            outbox = served.runtime.tables.outbox
            async with served.runtime.sessions() as session:
                total += (
                    await session.execute(
                        select(func.count())
                        .select_from(outbox)
                        .where(outbox.c.published_at.is_(None))
                    )
                ).scalar_one()
        return total

    async def _lagging(self, groups: dict[str, list[str]]) -> list[str]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await consumer.start()
        await admin.start()
        try:
            lagging: list[str] = []
            for group, topics in groups.items():
                parts = []
                for topic in topics:
                    for p in consumer.partitions_for_topic(topic) or ():
                        parts.append(TopicPartition(topic, p))
                ends = await consumer.end_offsets(parts) if parts else {}
                committed = await admin.list_consumer_group_offsets(f"{self.topic_prefix}{group}")
                for tp, end in ends.items():
                    meta = committed.get(tp)
                    if end > 0 and (meta is None or meta.offset < end):
                        lagging.append(f"{group}:{tp.topic}[{tp.partition}] {meta} < {end}")
            return lagging
        finally:
            await admin.close()
            await consumer.stop()

    def settle(self, timeout_s: float = 60.0) -> None:
        """Wait until every outbox is relayed and every group consumed to the end (twice)."""
        groups = self._groups()
        deadline = time.monotonic() + timeout_s
        calm = 0
        last: Any = None
        while time.monotonic() < deadline:
            unrelayed = self.run(self._unrelayed())
            lagging = self.run(self._lagging(groups)) if not unrelayed else ["outbox"]
            last = (unrelayed, lagging)
            calm = calm + 1 if not unrelayed and not lagging else 0
            if calm >= 2:
                return
            time.sleep(0.3)
        raise AssertionError(f"the services did not settle in {timeout_s}s: {last}")


@contextlib.contextmanager
def fleet_running(
    bootstrap: str, root: Path, database_urls: dict[str, str] | None = None
) -> Iterator[Fleet]:
    fleet = Fleet(bootstrap, root, database_urls or {})
    fleet.start()
    try:
        yield fleet
    finally:
        fleet.stop()


# --- a small organisation, created through the services' own APIs ----------------------------


@dataclass
class Org:
    """What one tenant holds: ids (employees, units, and server-made ids) and planted markers."""

    tenant: str
    tag: str
    employees: dict[str, str] = field(default_factory=dict)  # role name -> employee id
    units: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)  # path parameter name -> a real id
    markers: dict[str, str] = field(default_factory=dict)  # what -> unique marker string

    def emp(self, who: str) -> str:
        return self.employees[who]

    def mark(self, what: str) -> str:
        self.markers.setdefault(what, f"ZQ{self.tag}{what.upper()}QZ")
        return self.markers[what]

    def auth(self, who: str, roles: list[str] | None = None) -> dict[str, str]:
        return bearer(self.tenant, self.emp(who), roles)

    @property
    def secrets(self) -> set[str]:
        """Strings another tenant must never read: markers and every id of this tenant."""
        return {
            *self.markers.values(),
            *self.employees.values(),
            *self.units.values(),
            *self.ids.values(),
        }


def _ok(response: requests.Response, what: str) -> Any:
    assert response.status_code < 300, f"{what}: {response.status_code} {response.text}"
    return response.json() if response.content else None


def _find_id(body: Any, *keys: str) -> str:
    for key in keys:
        if isinstance(body, dict) and isinstance(body.get(key), str):
            return str(body[key])
    raise AssertionError(f"no id among {keys} in {body!r}")


def seed_org(fleet: Fleet, tenant: str | None = None) -> Org:
    """boss <- mgr <- ana, ben, cat, dan, eve in two units, goals (one private), a check-in with
    reflection and GROW notes, feedback, preferences, a push subscription and a webhook endpoint.
    Every free text holds a marker unique to this tenant."""
    tag = uuid.uuid4().hex[:8]
    org = Org(tenant=tenant or f"tenant-{tag}", tag=tag)
    for who in ("boss", "mgr", "ana", "ben", "cat", "dan", "eve"):
        org.employees[who] = f"{tag}-{who}"
    org.units = {"root": f"{tag}-ou-root", "team": f"{tag}-ou-team"}
    hr = bearer(org.tenant, f"{tag}-hr", ["hr_admin", "integration"])
    s = requests.Session()

    def emp(who: str, unit: str, manager: str | None) -> dict[str, Any]:
        return {
            "employee_id": org.emp(who),
            "email": f"{org.emp(who)}@example.com",
            "display_name": f"{who.title()} {org.mark('name_' + who)}",
            "manager_id": org.emp(manager) if manager else None,
            "org_unit_id": org.units[unit],
            "time_zone": "Europe/Amsterdam",
            "locale": "en-GB",
            "hired_on": "2020-01-06",
            "active": True,
        }

    people = fleet.url("people")
    _ok(
        s.post(
            f"{people}/v1/people/employees:batch",
            json={
                "org_units": [
                    {"org_unit_id": org.units["root"], "name": f"Root {org.mark('unit_root')}"},
                    {
                        "org_unit_id": org.units["team"],
                        "name": f"Team {org.mark('unit_team')}",
                        "parent_id": org.units["root"],
                        "head_id": org.emp("mgr"),
                    },
                ],
                "employees": [
                    emp("boss", "root", None),
                    emp("mgr", "team", "boss"),
                    *(emp(w, "team", "mgr") for w in ("ana", "ben", "cat", "dan", "eve")),
                ],
            },
            headers=hr,
        ),
        "people batch",
    )
    fleet.settle()

    goals = fleet.url("goals")

    def goal(who: str, what: str, visibility: str) -> str:
        body: dict[str, Any] = {
            "title": f"Goal {org.mark(what + '_title')}",
            "description": f"Why {org.mark(what + '_description')}",
            "kind": "okr",
            "owner_type": "person",
            "owner_id": org.emp(who),
            "period_start": "2026-01-01",
            "period_end": "2026-12-31",
            "visibility": visibility,
            "key_results": [
                {
                    "key_result_id": f"{tag}-kr-{what}",
                    "title": f"KR {org.mark(what + '_kr')}",
                    "start": 0,
                    "target": 100,
                    "unit": "%",
                    "direction": "increase",
                    "weight": 1,
                }
            ],
        }
        created = _ok(
            s.post(f"{goals}/v1/goals", json=body, headers=org.auth(who, ["employee"])), "goal"
        )
        goal_id = _find_id(created, "goal_id", "id")
        _ok(
            s.post(
                f"{goals}/v1/goals/{goal_id}/key-results/{tag}-kr-{what}/progress",
                json={"value": 40, "confidence": 0.6, "comment": org.mark(what + "_comment")},
                headers=org.auth(who, ["employee"]),
            ),
            "progress",
        )
        return goal_id

    org.ids["goal_id"] = goal("ana", "public_goal", "tenant")
    org.ids["private_goal_id"] = goal("ana", "private_goal", "private")
    org.ids["key_result_id"] = f"{tag}-kr-public_goal"
    fleet.settle()  # check-ins learns the goals (notes refer to them)

    checkins = fleet.url("checkins")
    mgr = org.auth("mgr", ["employee", "manager"])
    ana = org.auth("ana", ["employee"])
    checkin = _ok(
        s.post(
            f"{checkins}/v1/checkins",
            json={
                "employee_id": org.emp("ana"),
                "kind": "monthly",
                "scheduled_for": "2026-03-26T14:00:00+01:00",
            },
            headers=mgr,
        ),
        "checkin",
    )
    checkin_id = _find_id(checkin, "checkin_id", "id")
    org.ids["checkin_id"] = checkin_id
    _ok(
        s.put(
            f"{checkins}/v1/checkins/{checkin_id}/reflection",
            json={
                "wins": org.mark("reflection_wins"),
                "challenges": org.mark("reflection_challenges"),
                "help_needed": org.mark("reflection_help"),
                "pulse": 4,
            },
            headers=ana,
        ),
        "reflection",
    )
    _ok(
        s.put(
            f"{checkins}/v1/checkins/{checkin_id}/notes",
            json={
                "goal": org.mark("notes_goal"),
                "reality": org.mark("notes_reality"),
                "options": org.mark("notes_options"),
                "will": org.mark("notes_will"),
                "goals_discussed": [org.ids["goal_id"]],
            },
            headers=mgr,
        ),
        "notes",
    )
    item = _ok(
        s.post(
            f"{checkins}/v1/checkins/{checkin_id}/action-items",
            json={"owner_id": org.emp("ana"), "text": org.mark("action_item")},
            headers=mgr,
        ),
        "action item",
    )
    org.ids["item_id"] = _find_id(item, "item_id", "action_item_id", "id")
    feedback = _ok(
        s.post(
            f"{checkins}/v1/feedback",
            json={
                "kind": "praise",
                "receiver_id": org.emp("ana"),
                "text": org.mark("feedback_text"),
            },
            headers=org.auth("ben", ["employee"]),
        ),
        "feedback",
    )
    org.ids["feedback_id"] = _find_id(feedback, "feedback_id", "id")
    _ok(
        s.post(
            f"{checkins}/v1/feedback/requests",
            json={"from_id": org.emp("ben"), "prompt": org.mark("feedback_prompt")},
            headers=ana,
        ),
        "feedback request",
    )
    _ok(
        s.put(
            f"{checkins}/v1/cadence/policies/tenant/{org.tenant}",
            json={
                "rules": [
                    {
                        "kind": "monthly",
                        "frequency": "monthly",
                        "grace_days": 5,
                        "lead_time_days": 3,
                    }
                ],
                "escalate_after": 2,
                "escalate_to": "skip_level",
                "ramp_up_days": 30,
            },
            headers=hr,
        ),
        "policy",
    )

    notifications = fleet.url("notifications")
    _ok(
        s.put(
            f"{notifications}/v1/preferences",
            json={"digest_hour": 9, "working_days": [1, 2, 3, 4, 5]},
            headers=ana,
        ),
        "preferences",
    )
    sub = _ok(
        s.post(
            f"{notifications}/v1/push-subscriptions",
            json={
                "endpoint": f"https://push.example.net/wpush/v2/{org.mark('push_endpoint')}",
                "keys": {
                    "auth": "tBHItJI5svbpez7KI4CCXg",
                    "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-"
                    "Ts1XbjhazAkj7I99e8QcYP7DkM",
                },
            },
            headers=ana,
        ),
        "push subscription",
    )
    org.ids["subscription_id"] = _find_id(sub, "subscription_id", "id")
    hook = _ok(
        s.post(
            f"{notifications}/v1/webhook-endpoints",
            json={
                "description": org.mark("webhook_description"),
                "event_types": ["rhythm.checkin.missed.v1"],
                "url": f"https://hr.example.com/hooks/{org.mark('webhook_url')}",
            },
            headers=hr,
        ),
        "webhook endpoint",
    )
    org.ids["endpoint_id"] = _find_id(hook, "endpoint_id", "id")
    org.ids["employee_id"] = org.emp("ana")
    org.ids["org_unit_id"] = org.units["team"]
    # Someone who left and was erased, so that an erasure's state can be read.
    zed = f"{tag}-zed"
    _ok(
        s.put(
            f"{people}/v1/people/employees/{zed}",
            json={
                "email": f"{zed}@example.com",
                "display_name": f"Zed {org.mark('name_zed')}",
                "manager_id": org.emp("mgr"),
                "org_unit_id": org.units["team"],
                "time_zone": "Europe/Amsterdam",
                "locale": "en-GB",
                "hired_on": "2020-01-06",
                "active": True,
            },
            headers=hr,
        ),
        "employee to erase",
    )
    erasure = _ok(s.post(f"{people}/v1/people/employees/{zed}:erase", headers=hr), "erase")
    org.ids["erasure_id"] = _find_id(erasure, "erasure_id")
    fleet.settle()
    return org


def add_unit_head(fleet: Fleet, org: Org) -> None:
    """Give the root unit a head who is not in ana's manager chain ("head", reporting to boss),
    so that every relationship of the access policies has someone to hold it."""
    org.employees["head"] = f"{org.tag}-head"
    hr = bearer(org.tenant, f"{org.tag}-hr", ["hr_admin", "integration"])
    people = fleet.url("people")
    _ok(
        requests.put(
            f"{people}/v1/people/employees/{org.emp('head')}",
            json={
                "email": f"{org.emp('head')}@example.com",
                "display_name": f"Head {org.mark('name_head')}",
                "manager_id": org.emp("boss"),
                "org_unit_id": org.units["root"],
                "time_zone": "Europe/Amsterdam",
                "locale": "en-GB",
                "hired_on": "2020-01-06",
                "active": True,
            },
            headers=hr,
            timeout=30,
        ),
        "unit head",
    )
    _ok(
        requests.put(
            f"{people}/v1/people/org-units/{org.units['root']}",
            json={"name": f"Root {org.mark('unit_root')}", "head_id": org.emp("head")},
            headers=hr,
            timeout=30,
        ),
        "root unit head",
    )
    fleet.settle()
