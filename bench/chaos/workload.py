"""What a chaos run feeds the platform: an organisation, an upstream event stream, HTTP writes,
duplicates and poison — all remembered, so the checks can say what must have happened."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from rhythm_shared.contracts import topics
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.envelope import to_record
from rhythm_shared.contracts.v1 import (
    CheckinCompleted,
    CheckinKind,
    CheckinMissed,
    Direction,
    EmployeeUpserted,
    FeedbackGiven,
    FeedbackKind,
    GoalCreated,
    GoalKind,
    GoalProgressRecorded,
    Initiator,
    KeyResultSpec,
    OwnerType,
    ReflectionSubmitted,
    Visibility,
)
from rhythm_shared.kit.auth import issue_token
from rhythm_shared.kit.kafka import client_security
from rhythm_shared.kit.settings import DEV_JWT_SECRET

#: The shifted "now" of every service: a Tuesday, 11:00 UTC (working hours, no quiet time).
CLOCK_AT = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
PERIOD = (date(2026, 10, 1), date(2026, 12, 31))
ZONE = "Etc/UTC"
UPSTREAM = "/chaos/upstream"


def token(tenant: str, subject: str, *roles: str) -> str:
    return issue_token(
        DEV_JWT_SECRET,
        tenant=tenant,
        subject=subject,
        roles=list(roles),
        now=datetime.now(UTC) - timedelta(hours=1),
        ttl=timedelta(days=2),
    )


# --------------------------------------------------------------------------------------------
# The organisation
# --------------------------------------------------------------------------------------------


@dataclass
class Org:
    tenant: str
    units: list[dict[str, Any]]
    managers: dict[str, str | None]  # employee -> manager
    unit_of: dict[str, str]
    names: dict[str, str] = field(default_factory=dict)

    @property
    def employees(self) -> list[str]:
        return list(self.managers)

    def email(self, employee_id: str) -> str:
        return f"{employee_id}@{self.tenant}.example.com".lower()

    def reports(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for e, m in self.managers.items():
            if m:
                out.setdefault(m, []).append(e)
        return out

    def body(self, employee_id: str) -> dict[str, Any]:
        return {
            "employee_id": employee_id,
            "email": self.email(employee_id),
            "display_name": self.names[employee_id],
            "manager_id": self.managers[employee_id],
            "org_unit_id": self.unit_of[employee_id],
            "time_zone": ZONE,
            "locale": "en",
            "hired_on": "2025-01-06",
        }


def make_org(tenant: str, size: int, rng: random.Random) -> Org:
    """A root unit with the CEO, divisions of ~200 people, teams of ~10 under team leads."""
    units = [
        {"org_unit_id": "ou-root", "name": "Chaos Inc", "parent_id": None, "head_id": "e-00000"}
    ]
    managers: dict[str, str | None] = {"e-00000": None}
    unit_of = {"e-00000": "ou-root"}
    n = 1
    divisions = max(1, size // 200)
    per_division = (size - 1) // divisions
    for d in range(divisions):
        head = f"e-{n:05d}"
        n += 1
        unit = f"ou-d{d}"
        units.append(
            {"org_unit_id": unit, "name": f"Division {d}", "parent_id": "ou-root", "head_id": head}
        )
        managers[head], unit_of[head] = "e-00000", unit
        left = per_division - 1
        t = 0
        while left > 0:
            lead = f"e-{n:05d}"
            n += 1
            team = f"ou-d{d}t{t}"
            units.append(
                {"org_unit_id": team, "name": f"Team {d}.{t}", "parent_id": unit, "head_id": lead}
            )
            managers[lead], unit_of[lead] = head, team
            left -= 1
            for _ in range(min(left, rng.randint(6, 12))):
                member = f"e-{n:05d}"
                n += 1
                managers[member], unit_of[member] = lead, team
                left -= 1
            t += 1
    org = Org(tenant, units, managers, unit_of)
    org.names = {e: f"Person {e[2:]}" for e in managers}
    return org


# --------------------------------------------------------------------------------------------
# Upstream events and poison
# --------------------------------------------------------------------------------------------


@dataclass
class Outgoing:
    topic: str  # logical topic
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes | None]]
    poison_id: str | None = None


def upstream_events(org: Org, count: int, rng: random.Random, now: datetime) -> list[Outgoing]:
    """CheckinCompleted, FeedbackGiven, goals and their progress, reflections, and one
    CheckinMissed per employee (distinct employees, each with a manager)."""
    t = org.tenant
    people = [e for e, m in org.managers.items() if m]
    out: list[Outgoing] = []

    def add(event: Event, event_id: str) -> None:
        record = to_record(event, source=UPSTREAM, event_id=event_id)
        headers: list[tuple[str, bytes | None]] = [*record.headers]
        out.append(Outgoing(record.topic, record.key, record.value, headers))

    missed_for = rng.sample(people, min(len(people), max(1, count // 12)))
    goals: list[tuple[str, str]] = []
    i = 0
    for e in missed_for:
        i += 1
        add(
            CheckinMissed(
                tenant_id=t,
                occurred_at=now,
                obligation_id=f"ob-{e}-2026-11",
                employee_id=e,
                manager_id=org.managers[e] or "e-00000",
                kind=CheckinKind.MONTHLY,
                period_start=date(2026, 11, 1),
                period_end=date(2026, 11, 30),
                due_at=datetime(2026, 11, 30, 17, tzinfo=UTC),
                consecutive_misses=1,
            ),
            f"up-missed-{e}",
        )
    while len(out) < count:
        i += 1
        roll = rng.random()
        e = rng.choice(people)
        at = now - timedelta(minutes=30) + timedelta(milliseconds=i)
        if roll < 0.40:
            add(
                CheckinCompleted(
                    tenant_id=t,
                    occurred_at=at,
                    checkin_id=f"ck-up-{i}",
                    kind=CheckinKind.MONTHLY,
                    employee_id=e,
                    manager_id=org.managers[e] or "e-00000",
                    held_at=at - timedelta(hours=1),
                    initiated_by=rng.choice([Initiator.EMPLOYEE, Initiator.MANAGER]),
                    pulse=rng.choice([None, 1, 2, 3, 4, 5]),
                    open_action_items=rng.randint(0, 3),
                ),
                f"up-{i}",
            )
        elif roll < 0.65:
            add(
                FeedbackGiven(
                    tenant_id=t,
                    occurred_at=at,
                    feedback_id=f"fb-up-{i}",
                    giver_id=rng.choice([g for g in (org.managers[e], "e-00000") if g and g != e]),
                    receiver_id=e,
                    kind=rng.choice([FeedbackKind.PRAISE, FeedbackKind.CONSTRUCTIVE]),
                    requested=rng.random() < 0.2,
                ),
                f"up-{i}",
            )
        elif roll < 0.75 or not goals:
            goal = f"g-up-{i}"
            goals.append((goal, e))
            add(
                GoalCreated(
                    tenant_id=t,
                    occurred_at=at,
                    goal_id=goal,
                    owner_type=OwnerType.PERSON,
                    owner_id=e,
                    kind=GoalKind.OKR,
                    title=f"Goal {i}",
                    visibility=Visibility.TENANT,
                    period_start=PERIOD[0],
                    period_end=PERIOD[1],
                    update_interval_days=14,
                    key_results=[
                        KeyResultSpec(
                            key_result_id="kr-1",
                            unit="%",
                            start=0,
                            target=100,
                            direction=Direction.INCREASE,
                            weight=1,
                        )
                    ],
                ),
                f"up-{i}",
            )
        elif roll < 0.92:
            goal, owner = rng.choice(goals)
            value = rng.uniform(0, 100)
            add(
                GoalProgressRecorded(
                    tenant_id=t,
                    occurred_at=at,
                    goal_id=goal,
                    key_result_id="kr-1",
                    value=value,
                    goal_progress=value / 100,
                    confidence=rng.uniform(0.3, 1.0),
                    recorded_by=owner,
                ),
                f"up-{i}",
            )
        else:
            add(
                ReflectionSubmitted(
                    tenant_id=t, occurred_at=at, employee_id=e, pulse=rng.choice([None, 2, 3, 4])
                ),
                f"up-{i}",
            )
    rng.shuffle(out)  # CheckinMissed mixed in, not first
    return out


#: Which consumer groups read a topic (so each poison record must reach each of their DLQs).
READERS = {
    topics.PEOPLE: ("goals", "checkins", "notifications", "reporting"),
    topics.GOALS: ("checkins", "notifications", "reporting"),
    topics.CHECKINS: ("notifications", "reporting"),
    topics.CADENCE: ("notifications", "reporting"),
}
_TYPE_OF = {
    topics.PEOPLE: EmployeeUpserted.type,
    topics.GOALS: GoalCreated.type,
    topics.CHECKINS: FeedbackGiven.type,
    topics.CADENCE: CheckinMissed.type,
}
POISON_KINDS = (
    "bad_json",
    "unknown_type",
    "schema_mismatch",
    "missing_headers",
    "non_utf8",
    "deep_nesting",
    "oversized",
    "garbage_headers",
    "wrong_shape",
)
#: The record size cap the chaos run gives every consumer (CONSUMER_MAX_RECORD_BYTES), so an
#: oversized poison record stays under the broker's own limit.
MAX_RECORD_BYTES = 64 * 1024


def hostile(kind: str, tenant: str, topic: str, n: int, now: datetime) -> Outgoing:
    """One record no consumer can apply, of the given kind, keyed ``<tenant>/poison/<n>``."""
    pid = f"poison-{n}"
    headers: list[tuple[str, bytes | None]] = [
        ("ce_specversion", b"1.0"),
        ("ce_id", pid.encode()),
        ("ce_source", b"/chaos/poison"),
        ("ce_type", _TYPE_OF[topic].encode()),
        ("ce_time", now.isoformat().encode()),
        ("ce_subject", b"employee/nobody"),
        ("ce_tenantid", tenant.encode()),
        ("content-type", b"application/json"),
    ]
    fields = {"tenant_id": tenant, "occurred_at": now.isoformat()}
    body: bytes = json.dumps(fields).encode()
    if kind == "bad_json":
        body = b'{"tenant_id": "' + tenant.encode() + b'", "occurred_at": '
    elif kind == "unknown_type":
        headers[3] = ("ce_type", b"rhythm.chaos.unknown.v1")
    elif kind == "schema_mismatch":
        body = json.dumps({**fields, "surprise": 1}).encode()
    elif kind == "missing_headers":
        headers = [("content-type", b"application/json")]
    elif kind == "non_utf8":
        # What a Latin-1 HR export sends: a JSON body whose bytes are not UTF-8.
        body = json.dumps({**fields, "display_name": "José"}, ensure_ascii=False).encode("latin-1")
    elif kind == "deep_nesting":
        depth = 20_000
        body = body[:-1] + b', "x": ' + b"[" * depth + b"]" * depth + b"}"
    elif kind == "oversized":
        body = json.dumps({**fields, "padding": "x" * (MAX_RECORD_BYTES + 1)}).encode()
    elif kind == "garbage_headers":
        variant = (n // len(POISON_KINDS)) % 3
        if variant == 0:
            headers[1] = ("ce_id", b"\xc3\x28" + pid.encode())  # not UTF-8
        elif variant == 1:
            headers.append(("ce_type", b"rhythm.chaos.unknown.v1"))  # a second, different type
        else:
            headers[2] = ("ce_source", None)  # a header without a value
    elif kind == "wrong_shape":
        body = json.dumps([fields]).encode()
    else:
        raise ValueError(f"unknown poison kind {kind!r}")
    key = f"{tenant}/poison/{n}".encode()
    return Outgoing(topic, key, body, headers, poison_id=pid)


def poison(
    tenant: str, count: int, rng: random.Random, now: datetime, start: int = 0
) -> list[Outgoing]:
    return [
        hostile(POISON_KINDS[n % len(POISON_KINDS)], tenant, rng.choice(list(READERS)), n, now)
        for n in range(start, start + count)
    ]


def mix(events: list[Outgoing], bad: list[Outgoing], rng: random.Random) -> list[Outgoing]:
    out = list(events)
    for item in bad:
        out.insert(rng.randrange(len(out) + 1), item)
    return out


class Publisher:
    """Sends records as an upstream would (idempotent producer, acks=all). A send that fails
    (broker restarting) is sent again with the same ce_id: at worst a duplicate, never a loss."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.producer: AIOKafkaProducer | None = None
        self.sent = 0
        self.resent = 0

    async def _producer(self) -> AIOKafkaProducer:
        if self.producer is None:
            self.producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                **client_security(),
                enable_idempotence=True,
                acks="all",
                linger_ms=5,
            )
            await self.producer.start()
        return self.producer

    async def send(
        self, items: list[Outgoing], *, chunk: int = 500, timeout_s: float = 180
    ) -> None:
        for i in range(0, len(items), chunk):
            part = items[i : i + chunk]
            deadline = asyncio.get_running_loop().time() + timeout_s
            while True:
                try:
                    producer = await self._producer()
                    futures = [
                        await producer.send(
                            f"{self.prefix}{o.topic}", o.value, key=o.key, headers=o.headers
                        )
                        for o in part
                    ]
                    await asyncio.gather(*futures)
                    self.sent += len(part)
                    break
                except (KafkaError, OSError, TimeoutError):
                    if asyncio.get_running_loop().time() > deadline:
                        raise
                    self.resent += len(part)
                    await self.close()
                    await asyncio.sleep(1)

    async def close(self) -> None:
        if self.producer is not None:
            # A producer of a dead broker may not stop cleanly; it is dropped either way.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.producer.stop(), 15)
            self.producer = None


# --------------------------------------------------------------------------------------------
# HTTP writes (retried with the same Idempotency-Key through crashes)
# --------------------------------------------------------------------------------------------


@dataclass
class HttpLog:
    checkins: dict[str, str] = field(default_factory=dict)  # request key -> checkin id
    completed: set[str] = field(default_factory=set)  # checkin ids completed (200)
    goals: dict[str, str] = field(default_factory=dict)  # request key -> goal id
    progress: dict[str, str] = field(default_factory=dict)  # request key -> goal id
    #: employee -> every name sent by an accepted rename. Which of them the people service applied
    #: last is its business (two renames of one person may race, one delayed behind a kill), so
    #: the check asks its state, not the order in which our calls happened to return.
    renamed: dict[str, set[str]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    retries: int = 0


class Api:
    def __init__(self, urls: dict[str, str], org: Org) -> None:
        self.urls = urls
        self.org = org
        self.client = httpx.AsyncClient(timeout=30)
        self.log = HttpLog()
        reports = org.reports()
        self._roles = {
            e: ["employee", *(["manager"] if e in reports else [])] for e in org.managers
        }

    def auth(self, subject: str) -> str:
        if subject == "hr-sync":
            return token(self.org.tenant, subject, "integration", "hr_admin")
        return token(self.org.tenant, subject, *self._roles[subject])

    async def call(
        self,
        method: str,
        service: str,
        path: str,
        subject: str,
        body: Any,
        key: str,
        *,
        timeout_s: float = 150,
    ) -> Any:
        """One logical write: retried (same key) through refused connections, 5xx and 409s."""
        headers = {"Authorization": f"Bearer {self.auth(subject)}", "Idempotency-Key": key}
        deadline = asyncio.get_running_loop().time() + timeout_s
        last = ""
        while asyncio.get_running_loop().time() < deadline:
            try:
                response = await self.client.request(
                    method, self.urls[service] + path, json=body, headers=headers
                )
            except httpx.HTTPError as exc:
                last = repr(exc)
            else:
                if response.status_code < 300:
                    return response.json() if response.content else {}
                last = f"{response.status_code} {response.text[:300]}"
                if response.status_code < 500 and response.status_code not in (404, 409, 425, 429):
                    break
            self.log.retries += 1
            await asyncio.sleep(0.5)
        self.log.refused.append(f"{method} {service}{path}: {last}")
        return None

    async def checkin(self, n: int, employee: str, rng: random.Random, now: datetime) -> None:
        manager = self.org.managers[employee] or "e-00000"
        key = f"chaos-ci-{n}"
        created = await self.call(
            "POST", "checkins", "/v1/checkins", manager,
            {"employee_id": employee, "kind": "monthly",
             "scheduled_for": (now - timedelta(hours=2)).isoformat()},
            key,
        )  # fmt: skip
        if not created:
            return
        self.log.checkins[key] = created["checkin_id"]
        done = await self.call(
            "POST", "checkins", f"/v1/checkins/{created['checkin_id']}/complete", manager,
            {"held_at": (now - timedelta(hours=1)).isoformat(), "pulse": rng.randint(1, 5)},
            f"{key}-complete",
        )  # fmt: skip
        if done is not None:
            self.log.completed.add(created["checkin_id"])

    async def goal(self, n: int, owner: str, rng: random.Random) -> None:
        key = f"chaos-goal-{n}"
        created = await self.call(
            "POST", "goals", "/v1/goals", owner,
            {
                "owner_type": "person", "owner_id": owner, "title": f"HTTP goal {n}", "kind": "okr",
                "visibility": "tenant", "period_start": PERIOD[0].isoformat(),
                "period_end": PERIOD[1].isoformat(), "update_interval_days": 14,
                "key_results": [{"key_result_id": "kr-1", "unit": "%", "start": 0, "target": 100,
                                 "direction": "increase", "weight": 1}],
            },
            key,
        )  # fmt: skip
        if not created:
            return
        self.log.goals[key] = created["goal_id"]
        progress = await self.call(
            "POST", "goals", f"/v1/goals/{created['goal_id']}/key-results/kr-1/progress", owner,
            {"value": rng.uniform(0, 100), "confidence": round(rng.uniform(0.3, 0.95), 2)},
            f"{key}-progress",
        )  # fmt: skip
        if progress is not None:
            self.log.progress[f"{key}-progress"] = created["goal_id"]

    async def rename(self, n: int, employees: list[str]) -> None:
        sent = {e: f"Person {e[2:]} (v{n})" for e in employees}
        bodies = []
        for e in employees:
            self.org.names[e] = sent[e]
            bodies.append(self.org.body(e))
        result = await self.call(
            "POST", "people", "/v1/people/employees:batch", "hr-sync",
            {"org_units": [], "employees": bodies},
            f"chaos-rename-{n}",
        )  # fmt: skip
        if result is not None:
            # The names this request sent: another rename may have changed org.names meanwhile.
            for e, name in sent.items():
                self.log.renamed.setdefault(e, set()).add(name)

    async def seed(self) -> None:
        """Through the people API, in batches of at most 1,000 items."""
        people = sorted(self.org.managers)  # managers' ids are lower: they come first
        # Units before their people, heads after them (a head must be a known employee).
        headless = [{**u, "head_id": None} for u in self.org.units]
        bodies: list[dict[str, Any]] = [{"org_units": headless, "employees": []}]
        bodies += [
            {"org_units": [], "employees": [self.org.body(e) for e in people[i : i + 900]]}
            for i in range(0, len(people), 900)
        ]
        bodies.append({"org_units": self.org.units, "employees": []})
        for n, body in enumerate(bodies):
            path = "/v1/people/employees:batch"
            if await self.call("POST", "people", path, "hr-sync", body, f"chaos-seed-{n}") is None:
                raise RuntimeError(
                    f"the people service refused the organisation: {self.log.refused[-1]}"
                )

    async def close(self) -> None:
        await self.client.aclose()
