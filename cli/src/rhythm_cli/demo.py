"""The demo organisation and a quarter of its activity, played through the services' public APIs.

About 500 people in a realistic tree (a company, five divisions, teams under team leads), a
tenant-wide cadence policy, goals aligned company → division → person, and then a quarter of
life: check-ins (some on time, some late, some missed; some employee-initiated), goal progress
(some goals go stale), feedback — with the services' clocks moved forward a day at a time.
Teams differ on purpose, so the dashboard has something to say. Everything is seeded from a
fixed random seed, so two demos look alike.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rhythm_shared.kit.auth import issue_token
from rhythm_shared.kit.settings import DEV_JWT_SECRET

TENANT = "acme"
QUARTER_START = date(2026, 7, 1)
QUARTER_END = date(2026, 9, 30)
PLAY_FROM = date(2026, 6, 24)
PLAY_TO = date(2026, 10, 16)  # past the last grace periods, so September's misses show
CEO = "e-0001"
HR = "e-0002"

DIVISIONS = [
    # name, zone, locale, teams, diligence (share of check-ins held), progress habit
    ("Engineering", "Europe/Amsterdam", "nl", 6, 0.92, 0.8),
    ("Sales", "America/New_York", "en", 5, 0.62, 0.5),
    ("Operations", "Asia/Singapore", "en-GB", 4, 0.80, 0.6),
    ("Customer Success", "Europe/London", "en-GB", 4, 0.85, 0.7),
    ("Finance & People", "Europe/Amsterdam", "nl", 3, 0.72, 0.4),
]
FIRST = ["Ana", "Bram", "Chen", "Daan", "Eva", "Femke", "Gijs", "Hana", "Ines", "Joris", "Kim",
         "Lars", "Mila", "Noah", "Olga", "Pim", "Qadir", "Rosa", "Sven", "Tess", "Umar", "Vera",
         "Wout", "Xin", "Yara", "Zeno"]  # fmt: skip
LAST = ["de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "Mulder", "de Boer",
        "Bos", "Peters", "Hendriks", "Dekker", "Brouwer", "Kaya", "Okafor", "Nguyen", "Silva",
        "Khan"]  # fmt: skip


@dataclass
class Person:
    employee_id: str
    name: str
    manager_id: str | None
    unit_id: str
    zone: str
    locale: str
    hired_on: date
    diligence: float = 0.8
    habit: float = 0.6
    goal_id: str | None = None
    reports: list[str] = field(default_factory=list)


@dataclass
class Org:
    units: list[dict[str, Any]]
    people: dict[str, Person]


def generate_org(seed: int = 7) -> Org:
    rng = random.Random(seed)
    units: list[dict[str, Any]] = [
        {"org_unit_id": "ou-acme", "name": "Acme", "parent_id": None, "head_id": CEO}
    ]
    people: dict[str, Person] = {}
    counter = iter(range(1, 10_000))

    def person(manager: str | None, unit: str, zone: str, locale: str, **kw: Any) -> Person:
        eid = f"e-{next(counter):04d}"
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        hired = date(2019, 1, 1) + timedelta(days=rng.randrange(0, 2500))
        p = Person(eid, name, manager, unit, zone, locale, hired, **kw)
        people[eid] = p
        if manager:
            people[manager].reports.append(eid)
        return p

    person(None, "ou-acme", "Europe/Amsterdam", "nl", diligence=0.9)  # the CEO, e-0001
    person(CEO, "ou-acme", "Europe/Amsterdam", "nl", diligence=0.9)  # head of HR, e-0002
    for d, (name, zone, locale, teams, diligence, habit) in enumerate(DIVISIONS, start=1):
        div_unit = f"ou-d{d}"
        head = person(CEO, div_unit, zone, locale, diligence=diligence, habit=habit)
        units.append(
            {
                "org_unit_id": div_unit,
                "name": name,
                "parent_id": "ou-acme",
                "head_id": head.employee_id,
            }
        )
        for t in range(1, teams + 1):
            team_unit = f"ou-d{d}t{t}"
            # Teams differ: a few leads hold the rhythm much better or worse than their division.
            team_diligence = min(0.99, max(0.25, rng.gauss(diligence, 0.12)))
            lead = person(
                head.employee_id, team_unit, zone, locale, diligence=team_diligence, habit=habit
            )
            units.append(
                {
                    "org_unit_id": team_unit,
                    "name": f"{name} {t}",
                    "parent_id": div_unit,
                    "head_id": lead.employee_id,
                }
            )
            for _ in range(rng.randint(17, 24)):
                member = person(
                    lead.employee_id,
                    team_unit,
                    zone,
                    locale,
                    diligence=team_diligence,
                    habit=min(0.95, rng.gauss(habit, 0.15)),
                )
                if rng.random() < 0.03:  # a few new hires during the quarter (ramp-up)
                    member.hired_on = QUARTER_START + timedelta(days=rng.randrange(10, 60))
    return Org(units, people)


def token(subject: str, *roles: str) -> str:
    return issue_token(
        DEV_JWT_SECRET,
        tenant=TENANT,
        subject=subject,
        roles=list(roles),
        now=datetime.now(UTC) - timedelta(days=1),
        ttl=timedelta(days=3650),
    )


def roles_of(org: Org, employee_id: str) -> list[str]:
    roles = ["employee"]
    if org.people[employee_id].reports:
        roles.append("manager")
    if employee_id == CEO:
        roles.append("executive")
    if employee_id == HR:
        roles.append("hr_admin")
    return roles


class Api:
    """The services' HTTP APIs, as the people of the demo organisation call them."""

    def __init__(self, urls: dict[str, str], org: Org) -> None:
        self.urls = urls
        self.org = org
        self.client = httpx.AsyncClient(timeout=60)
        self.gate = asyncio.Semaphore(12)
        self._tokens: dict[str, str] = {}
        self.failures = 0

    def auth(self, subject: str) -> dict[str, str]:
        if subject not in self._tokens:
            if subject == "hr-sync":
                self._tokens[subject] = token(subject, "integration", "hr_admin")
            else:
                self._tokens[subject] = token(subject, *roles_of(self.org, subject))
        return {"Authorization": f"Bearer {self._tokens[subject]}"}

    async def call(
        self,
        method: str,
        service: str,
        path: str,
        subject: str,
        body: Any = None,
        *,
        ok: tuple[int, ...] = (200, 201),
        retry_for_s: float = 0.0,
    ) -> Any:
        deadline = asyncio.get_running_loop().time() + retry_for_s
        while True:
            async with self.gate:
                response = await self.client.request(
                    method, self.urls[service] + path, json=body, headers=self.auth(subject)
                )
            if response.status_code in ok:
                return response.json() if response.content else None
            # Event-carried state arrives a moment later than the write that caused it.
            if asyncio.get_running_loop().time() < deadline and response.status_code in (
                403,
                404,
                409,
                422,
            ):
                await asyncio.sleep(0.5)
                continue
            self.failures += 1
            return None

    async def set_clocks(self, instant: datetime) -> None:
        await asyncio.gather(
            *(
                self.call("PUT", name, "/v1/admin/clock", HR, {"now": instant.isoformat()})
                for name in self.urls
            )
        )

    async def close(self) -> None:
        await self.client.aclose()


async def seed(api: Api, org: Org, console: Console) -> None:
    await api.set_clocks(datetime.combine(PLAY_FROM, datetime.min.time(), UTC))
    ordered = sorted(org.people.values(), key=lambda p: p.employee_id)  # managers come first
    batch = {
        "org_units": org.units,
        "employees": [
            {
                "employee_id": p.employee_id,
                "email": f"{p.employee_id}@acme.example.com",
                "display_name": p.name,
                "manager_id": p.manager_id,
                "org_unit_id": p.unit_id,
                "time_zone": p.zone,
                "locale": p.locale,
                "hired_on": p.hired_on.isoformat(),
            }
            for p in ordered
        ],
    }
    result = await api.call("POST", "people", "/v1/people/employees:batch", "hr-sync", batch)
    if result is None:
        raise RuntimeError("the people service refused the demo organisation (see its log)")
    console.print(f"Seeded {len(org.units)} org units and {len(ordered)} people")
    policy = {
        "rules": [
            {"kind": "monthly", "frequency": "monthly", "grace_days": 5, "lead_time_days": 3},
            {
                "kind": "quarterly_review",
                "frequency": "quarterly",
                "grace_days": 10,
                "lead_time_days": 7,
            },
        ],
        "escalate_after": 2,
        "escalate_to": "skip_level",
        "ramp_up_days": 30,
        "hr_contact_id": HR,
    }
    await api.call(
        "PUT", "checkins", f"/v1/cadence/policies/tenant/{TENANT}", HR, policy, retry_for_s=60
    )
    # Goals: the company's, each division's under it, each person's under their division's.
    company = await api.call(
        "POST",
        "goals",
        "/v1/goals",
        CEO,
        _goal(
            "company",
            TENANT,
            "Double the share of teams with a healthy check-in rhythm",
            None,
            "teams",
            20,
            60,
        ),
        retry_for_s=60,
    )
    company_id = company["goal_id"] if company else None
    division_goal: dict[str, str] = {}
    for d, (name, *_rest) in enumerate(DIVISIONS, start=1):
        unit = f"ou-d{d}"
        head = next(u["head_id"] for u in org.units if u["org_unit_id"] == unit)
        created = await api.call(
            "POST",
            "goals",
            "/v1/goals",
            head,
            _goal(
                "org_unit",
                unit,
                f"{name}: every team lands its quarterly plan",
                company_id,
                "%",
                0,
                100,
            ),
            retry_for_s=60,
        )
        if created:
            division_goal[unit] = created["goal_id"]

    async def personal(p: Person) -> None:
        division = "ou-" + p.unit_id.split("-")[1].split("t")[0] if p.unit_id != "ou-acme" else ""
        created = await api.call(
            "POST",
            "goals",
            "/v1/goals",
            p.employee_id,
            _goal(
                "person",
                p.employee_id,
                f"{p.name.split()[0]}: deliver my part of the plan",
                division_goal.get(division),
                "milestones",
                0,
                6,
            ),
            retry_for_s=60,
        )
        if created:
            p.goal_id = created["goal_id"]

    with _progress(console) as progress:
        task = progress.add_task("Setting goals", total=len(ordered))
        for chunk in _chunks([p for p in ordered if p.unit_id != "ou-acme"], 24):
            await asyncio.gather(*(personal(p) for p in chunk))
            progress.advance(task, len(chunk))


def _goal(
    owner_type: str,
    owner_id: str,
    title: str,
    parent: str | None,
    unit: str,
    start: float,
    target: float,
) -> dict[str, Any]:
    return {
        "owner_type": owner_type,
        "owner_id": owner_id,
        "title": title,
        "kind": "okr",
        "visibility": "tenant",
        "period_start": QUARTER_START.isoformat(),
        "period_end": QUARTER_END.isoformat(),
        "parent_goal_id": parent,
        "update_interval_days": 14,
        "key_results": [
            {
                "key_result_id": "kr-1",
                "unit": unit,
                "start": start,
                "target": target,
                "direction": "increase",
                "weight": 1,
            }
        ],
    }


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@dataclass
class Plan:
    """What each person does on which day: decided up front, so a resumed demo stays the same."""

    checkins: dict[
        date, list[tuple[str, str, str, int]]
    ]  # day -> (employee, initiator, kind, pulse)
    progress: dict[date, list[str]]  # day -> employees recording progress
    feedback: dict[date, list[tuple[str, str, str]]]  # day -> (giver, receiver, kind)


def plan_quarter(org: Org, seed: int = 11) -> Plan:
    rng = random.Random(seed)
    checkins: dict[date, list[tuple[str, str, str, int]]] = {}
    progress: dict[date, list[str]] = {}
    feedback: dict[date, list[tuple[str, str, str]]] = {}
    everyone = [p for p in org.people.values() if p.manager_id]
    for p in everyone:
        for month in (6, 7, 8, 9):
            if p.hired_on > date(2026, month, 1) - timedelta(days=30):
                continue  # still ramping up: nothing owed
            if rng.random() > p.diligence:
                continue  # missed this month
            # June is the month before the quarter: only its last week is played.
            day = date(2026, month, rng.randint(24, 29) if month == 6 else rng.randint(6, 27))
            if rng.random() < 0.12:  # late: just after the month ended, within the grace
                day = date(2026, month + 1, rng.randint(1, 3))
            initiator = "employee" if rng.random() < 0.35 + 0.3 * p.habit else "manager"
            pulse = min(5, max(1, round(rng.gauss(3.2 if p.diligence > 0.7 else 3.8, 0.8))))
            checkins.setdefault(day, []).append((p.employee_id, initiator, "monthly", pulse))
        if rng.random() < p.diligence:
            day = date(2026, 9, rng.randint(14, 29))
            checkins.setdefault(day, []).append((p.employee_id, "manager", "quarterly_review", 3))
        cursor = QUARTER_START + timedelta(days=rng.randint(1, 10))
        while cursor < QUARTER_END:
            progress.setdefault(cursor, []).append(p.employee_id)
            gap = rng.randint(9, 14) if rng.random() < p.habit else rng.randint(16, 40)
            cursor += timedelta(days=gap)
    day = PLAY_FROM
    while day <= PLAY_TO:
        if day.weekday() < 5:
            for _ in range(rng.randint(4, 12)):
                giver, receiver = rng.sample(everyone, 2)
                kind = "praise" if rng.random() < 0.75 else "constructive"
                feedback.setdefault(day, []).append((giver.employee_id, receiver.employee_id, kind))
        day += timedelta(days=1)
    return Plan(checkins, progress, feedback)


async def play_day(api: Api, org: Org, plan: Plan, day: date, rng: random.Random) -> None:
    noon = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=11)
    await api.set_clocks(noon)

    async def checkin(employee_id: str, initiator: str, kind: str, pulse: int) -> None:
        person = org.people[employee_id]
        manager = person.manager_id or CEO
        subject = employee_id if initiator == "employee" else manager
        scheduled = await api.call(
            "POST",
            "checkins",
            "/v1/checkins",
            subject,
            {
                "employee_id": employee_id,
                "scheduled_for": (noon - timedelta(hours=2)).isoformat(),
                "kind": kind,
            },
        )
        if not scheduled:
            return
        discussed = [person.goal_id] if person.goal_id else []
        await api.call(
            "POST",
            "checkins",
            f"/v1/checkins/{scheduled['checkin_id']}/complete",
            manager,
            {
                "held_at": (noon - timedelta(hours=1)).isoformat(),
                "pulse": pulse,
                "goals_discussed": discussed,
            },
        )

    async def record(employee_id: str) -> None:
        person = org.people[employee_id]
        if not person.goal_id:
            return
        elapsed = (day - QUARTER_START).days / (QUARTER_END - QUARTER_START).days
        value = round(max(0.0, min(6.0, 6 * elapsed * rng.uniform(0.5, 1.25))), 1)
        await api.call(
            "POST",
            "goals",
            f"/v1/goals/{person.goal_id}/key-results/kr-1/progress",
            employee_id,
            {"value": value, "confidence": round(rng.uniform(0.4, 0.95), 2)},
        )

    async def give(giver: str, receiver: str, kind: str) -> None:
        await api.call(
            "POST",
            "checkins",
            "/v1/feedback",
            giver,
            {"receiver_id": receiver, "kind": kind, "text": "Thanks for the help!"},
        )

    await asyncio.gather(
        *(checkin(*c) for c in plan.checkins.get(day, [])),
        *(record(e) for e in plan.progress.get(day, [])),
        *(give(*f) for f in plan.feedback.get(day, [])),
    )


def seed_and_play(
    state: dict[str, Any],
    urls: dict[str, str],
    save: Callable[[dict[str, Any]], None],
    check: Callable[[], None],
    console: Console,
) -> dict[str, Any]:
    return asyncio.run(_seed_and_play(state, urls, save, check, console))


async def _seed_and_play(
    state: dict[str, Any],
    urls: dict[str, str],
    save: Callable[[dict[str, Any]], None],
    check: Callable[[], None],
    console: Console,
) -> dict[str, Any]:
    org = generate_org()
    api = Api(urls, org)
    try:
        if not state.get("seeded"):
            await seed(api, org, console)
            state.update(
                seeded=True,
                goals={p.employee_id: p.goal_id for p in org.people.values() if p.goal_id},
            )
            save(state)
        for employee_id, goal_id in state.get("goals", {}).items():
            org.people[employee_id].goal_id = goal_id
        plan = plan_quarter(org)
        day = date.fromisoformat(state.get("day", PLAY_FROM.isoformat()))
        total = (PLAY_TO - PLAY_FROM).days + 1
        if day <= PLAY_TO:
            with _progress(console) as progress:
                task = progress.add_task(
                    "Playing the quarter", total=total, completed=(day - PLAY_FROM).days
                )
                while day <= PLAY_TO:
                    check()
                    progress.update(task, description=f"Playing the quarter: {day:%a %d %b}")
                    await play_day(api, org, plan, day, random.Random(day.toordinal()))
                    day += timedelta(days=1)
                    state["day"] = day.isoformat()
                    save(state)
                    progress.advance(task)
        else:
            await api.set_clocks(datetime.combine(PLAY_TO, datetime.min.time(), UTC))
        if api.failures:
            console.print(f"[yellow]{api.failures} demo requests were refused (see the logs)[/]")
        state["executive_token"] = token(CEO, *roles_of(org, CEO))
        state["period"] = "2026-Q3"
        save(state)
        return state
    finally:
        await api.close()
