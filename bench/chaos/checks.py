"""After each phase: what was produced (read back from the topics) against what the read models
hold, what the notifications service decided and what the SMTP sink received, and the DLQs."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import create_engine, select

from rhythm_notifications.settings import Settings as NotificationsSettings
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.envelope import Envelope, EnvelopeError, from_record
from rhythm_shared.contracts.topics import dlq_topic
from rhythm_shared.contracts.v1 import (
    CadenceEscalated,
    CheckinCompleted,
    CheckinDue,
    CheckinMissed,
    CheckinScheduled,
    EmployeeUpserted,
    FeedbackGiven,
    GoalCreated,
    GoalProgressRecorded,
    GoalStale,
    GoalStatusChanged,
    PersonKeyIssued,
    PulseRecorded,
    PulseSource,
    ReflectionSubmitted,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2
from rhythm_shared.kit import crypto
from rhythm_shared.kit.kafka import DLQ_REASON, client_security
from rhythm_shared.kit.settings import DEV_DATA_KEY_ENCRYPTION_KEY

from .harness import MailSink
from .workload import READERS, HttpLog, Org

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"
GROUP_TOPICS = {
    "goals": (topics.PEOPLE,),
    "checkins": (topics.PEOPLE, topics.GOALS),
    "notifications": (topics.PEOPLE, topics.GOALS, topics.CHECKINS, topics.CADENCE),
    "reporting": (
        topics.PEOPLE,
        topics.GOALS,
        topics.CHECKINS,
        topics.CADENCE,
        topics.NOTIFICATIONS,
        topics.INTERNAL_PULSE,
    ),
}


@dataclass
class Row:
    check: str
    expected: int
    actual: int
    lost: int = 0
    double: int = 0
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.double == 0


# --------------------------------------------------------------------------------------------
# Reading back from Kafka
# --------------------------------------------------------------------------------------------


async def read_all(bootstrap: str, topic: str) -> list[Record]:
    """Every record of ``topic`` from the beginning to its current end (no timeouts guessed)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, **client_security(), enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[Record] = []
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, records in batch.items():
                out.extend(records)
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return out
    finally:
        await consumer.stop()


async def group_lag(bootstrap: str, prefix: str) -> dict[str, int]:
    """Records not yet committed by each consumer group, over the topics it reads."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_security())
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, **client_security(), enable_auto_commit=False
    )
    await admin.start()
    await consumer.start()
    try:
        lag: dict[str, int] = {}
        for group, group_topics in GROUP_TOPICS.items():
            tps = []
            for t in group_topics:
                for p in consumer.partitions_for_topic(f"{prefix}{t}") or await _parts(
                    consumer, f"{prefix}{t}"
                ):
                    tps.append(TopicPartition(f"{prefix}{t}", p))
            ends = await consumer.end_offsets(tps)
            committed = await admin.list_consumer_group_offsets(f"{prefix}{group}")
            lag[group] = sum(
                max(
                    0,
                    ends[tp]
                    - (
                        committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0
                    ),
                )
                for tp in tps
            )
        return lag
    finally:
        await consumer.stop()
        await admin.close()


async def _parts(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


@dataclass
class Produced:
    """Every readable event on the catalog topics, once per ce_id (duplicates collapsed)."""

    events: dict[str, Envelope] = field(default_factory=dict)
    records: int = 0
    unreadable: int = 0
    by_source: Counter[str] = field(default_factory=Counter)

    def of(self, kind: type) -> list[Any]:
        return [e.event for e in self.events.values() if isinstance(e.event, kind)]


async def produced(bootstrap: str, prefix: str, tenant: str) -> Produced:
    out = Produced()
    names = [
        topics.PEOPLE,
        topics.GOALS,
        topics.CHECKINS,
        topics.CADENCE,
        topics.NOTIFICATIONS,
        topics.INTERNAL_PULSE,
        topics.KEYS,
    ]
    for records in await asyncio.gather(*(read_all(bootstrap, f"{prefix}{n}") for n in names)):
        for r in records:
            out.records += 1
            try:
                env = from_record(r.headers or (), r.value)
            except EnvelopeError:
                out.unreadable += 1
                continue
            if env.tenant_id != tenant:
                continue
            if env.id not in out.events:
                out.events[env.id] = env
                out.by_source[env.source] += 1
    return out


# --------------------------------------------------------------------------------------------
# Databases (read directly: SQLite files of the run)
# --------------------------------------------------------------------------------------------


def _sqlite(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    db.execute("PRAGMA busy_timeout=30000")
    return db


def pending_work(workdir: Path) -> dict[str, int]:
    """Outbox rows not yet published, and deliveries still due to be sent."""
    out: dict[str, int] = {}
    for service in ("people", "goals", "checkins", "notifications"):
        path = workdir / f"{service}.db"
        if not path.exists():
            continue
        with _sqlite(path) as db:
            out[f"{service} outbox"] = db.execute(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            ).fetchone()[0]
    path = workdir / "notifications.db"
    if path.exists():
        with _sqlite(path) as db:
            out["deliveries in flight"] = db.execute(
                "SELECT count(*) FROM deliveries WHERE status IN ('pending','claimed','sending')"
                " AND channel = 'email' AND next_attempt_at IS NOT NULL"
            ).fetchone()[0]
    return out


def people_known(workdir: Path, tenant: str) -> dict[str, int]:
    out = {}
    for service, table in (("notifications", "directory_employees"), ("reporting", "employees")):
        path = workdir / f"{service}.db"
        try:
            with _sqlite(path) as db:
                out[service] = db.execute(
                    f"SELECT count(*) FROM {table} WHERE tenant_id = ?", (tenant,)
                ).fetchone()[0]
        except sqlite3.Error:
            out[service] = 0
    return out


# --------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------


def _set_row(check: str, expected: set[str], actual: set[str], note: str = "") -> Row:
    lost = expected - actual
    extra = actual - expected
    if lost and not note:
        note = "missing e.g. " + ", ".join(sorted(lost)[:3])
    if extra:
        note = (note + "; " if note else "") + "unexpected e.g. " + ", ".join(sorted(extra)[:3])
    return Row(
        check, len(expected), len(actual & expected), lost=len(lost), double=len(extra), note=note
    )


def people_names(workdir: Path, tenant: str) -> dict[str, str]:
    """Each employee's display name as the people service holds it: the name of the request it
    applied last."""
    with _sqlite(workdir / "people.db") as db:
        rows = db.execute(
            "SELECT employee_id, display_name FROM employees WHERE tenant_id = ?", (tenant,)
        ).fetchall()
    return dict(rows)


def _data_keys(p: Produced) -> dict[tuple[str, str], bytes]:
    """Each person's data key from rhythm.keys.v1, unwrapped with the development KEK."""
    kek = crypto.load_kek(DEV_DATA_KEY_ENCRYPTION_KEY)
    return {
        (e.tenant_id, e.employee_id): crypto.unwrap(
            kek, e.wrapped_key, tenant_id=e.tenant_id, employee_id=e.employee_id, key_id=e.key_id
        )
        for e in p.of(PersonKeyIssued)
    }


def check_http(p: Produced, log: HttpLog, org: Org, applied: dict[str, str]) -> list[Row]:
    """Accepted HTTP writes each became exactly one event (outbox -> Kafka), none twice.

    ``applied``: each employee's name as the people service holds it (:func:`people_names`)."""
    scheduled = {e.checkin_id for e in p.of(CheckinScheduled)}
    completed = {
        e.checkin_id for e in p.of(CheckinCompleted) if not e.checkin_id.startswith("ck-up-")
    }
    goals = {e.goal_id for e in p.of(GoalCreated) if not e.goal_id.startswith("g-up-")}
    progress = Counter(
        e.goal_id for e in p.of(GoalProgressRecorded) if not e.goal_id.startswith("g-up-")
    )
    want_progress = Counter(log.progress.values())
    latest: dict[str, tuple[Any, str]] = {}
    published: set[tuple[str, str]] = set()
    keys = _data_keys(p)
    for env in p.events.values():
        name: str | None = None
        if isinstance(env.event, EmployeeUpserted):
            name = env.event.display_name
        elif isinstance(env.event, EmployeeUpsertedV2):
            # v2 seals the name: open it as an integrator would, with the key from rhythm.keys.v1.
            key = keys.get((env.event.tenant_id, env.event.employee_id))
            name = (
                crypto.unseal(
                    key,
                    env.event.sealed.display_name,
                    tenant_id=env.event.tenant_id,
                    employee_id=env.event.employee_id,
                    field="display_name",
                )
                if key is not None
                else None
            )
        if name is not None:
            e: Any = env.event
            published.add((e.employee_id, name))
            # Read in partition order (one key, one partition): the last one is what consumers
            # end up with.
            latest[e.employee_id] = (e.occurred_at, name)
    # Strict either way: the people service's name is one a rename we saw accepted sent, and its
    # latest event says that name; and every accepted rename was published.
    renamed_ok = {
        e
        for e, names in log.renamed.items()
        if applied.get(e) in names and latest.get(e, (None, ""))[1] == applied[e]
    }
    accepted = {(e, name) for e, names in log.renamed.items() for name in names}
    rows = [
        _set_row(
            "HTTP check-ins scheduled -> CheckinScheduled", set(log.checkins.values()), scheduled
        ),
        _set_row("HTTP check-ins completed -> CheckinCompleted", log.completed, completed),
        _set_row("HTTP goals -> GoalCreated", set(log.goals.values()), goals),
        Row(
            "HTTP progress -> GoalProgressRecorded",
            sum(want_progress.values()),
            sum(min(progress[g], n) for g, n in want_progress.items()),
            lost=sum(max(0, n - progress[g]) for g, n in want_progress.items()),
            double=sum(max(0, progress[g] - want_progress[g]) for g in progress),
        ),
        _set_row("people seeded -> EmployeeUpserted", set(org.managers), set(latest)),
        _set_row(
            "people renamed -> latest EmployeeUpserted",
            set(log.renamed),
            renamed_ok,
            note=_renamed_note(log, applied, latest, renamed_ok),
        ),
        _set_row(
            "people renames -> EmployeeUpserted each",
            {f"{e}={name}" for e, name in accepted},
            {f"{e}={name}" for e, name in accepted & published},
        ),
    ]
    if log.refused:
        rows.append(
            Row(
                "HTTP writes refused",
                0,
                len(log.refused),
                lost=len(log.refused),
                note=log.refused[0][:120],
            )
        )
    return rows


def _renamed_note(
    log: HttpLog, applied: dict[str, str], latest: dict[str, tuple[Any, str]], ok: set[str]
) -> str:
    wrong = sorted(set(log.renamed) - ok)
    if not wrong:
        return ""
    e = wrong[0]
    return (
        f"e.g. {e}: sent {sorted(log.renamed[e])}, people holds {applied.get(e)!r}, "
        f"latest event {latest.get(e, (None, None))[1]!r}"
    )


def check_reporting(workdir: Path, p: Produced, tenant: str, org: Org) -> list[Row]:
    from rhythm_reporting.adapters import db as rdb
    from rhythm_reporting.domain.projection import TENANT, contributions

    engine = create_engine(f"sqlite:///{workdir / 'reporting.db'}")
    try:
        with engine.connect() as conn:
            gen = conn.execute(
                select(rdb.read_model_generations.c.generation).where(
                    rdb.read_model_generations.c.status == "active"
                )
            ).scalar()

            def rows_of(table: Any) -> list[dict[str, Any]]:
                result = conn.execute(
                    select(table).where(table.c.generation == gen, table.c.tenant_id == tenant)
                )
                return [dict(r._mapping) for r in result]

            facts = {kind: rows_of(table) for kind, (table, _) in rdb.FACT_TABLES.items()}
            employees = rows_of(rdb.employees)
            month = {
                r["month"]: r for r in rows_of(rdb.unit_month_stats) if r["org_unit_id"] == TENANT
            }
            goal_stats = {
                (r["period_start"], r["period_end"]): r
                for r in rows_of(rdb.unit_goal_stats)
                if r["org_unit_id"] == TENANT
            }
            people_row = [r for r in rows_of(rdb.unit_people) if r["org_unit_id"] == TENANT]
    finally:
        engine.dispose()

    completed = {e.checkin_id: e for e in p.of(CheckinCompleted)}
    checkin_ids = {e.checkin_id for e in p.of(CheckinScheduled)} | set(completed)
    feedback = {e.feedback_id for e in p.of(FeedbackGiven)}
    goal_ids = {
        getattr(e.event, "goal_id", "")
        for e in p.events.values()
        if type(e.event).__module__.endswith("goals") and hasattr(e.event, "goal_id")
    }
    obligations = {e.obligation_id for e in [*p.of(CheckinMissed), *p.of(CheckinDue)]}
    obligations |= {e.obligation_id for e in completed.values() if e.obligation_id}
    reflections = {
        f"{e.employee_id}@{e.occurred_at.astimezone(UTC).isoformat()}"
        for e in p.of(ReflectionSubmitted)
    }
    rows = [
        _set_row(
            "reporting: check-in facts", checkin_ids, {r["checkin_id"] for r in facts["checkin"]}
        ),
        _set_row(
            "reporting: completed check-ins",
            set(completed),
            {
                r["checkin_id"]
                for r in facts["checkin"]
                if r["completed"] or r["held_at"] is not None
            },
        ),
        _set_row(
            "reporting: feedback facts", feedback, {r["feedback_id"] for r in facts["feedback"]}
        ),
        _set_row("reporting: goal facts", goal_ids, {r["goal_id"] for r in facts["goal"]}),
        _set_row(
            "reporting: obligation facts",
            obligations,
            {r["obligation_id"] for r in facts["obligation"]},
        ),
        _set_row(
            "reporting: reflection facts",
            reflections,
            {r["reflection_key"] for r in facts["reflection"]},
        ),
        _set_row("reporting: employees", set(org.managers), {r["employee_id"] for r in employees}),
    ]

    # Counts on the tenant row, straight from what was produced (independent of reporting's code).
    def total(column: str) -> int:
        return sum(int(r[column]) for r in month.values())

    # One answer per check-in and per reflection, whether the public event carried it (a tenant
    # that shares pulses) or only the internal pulse topic did (the default).
    answered: set[tuple[object, ...]] = {
        ("c", e.checkin_id) for e in completed.values() if e.pulse is not None
    }
    answered |= {("r", e.employee_id, e.occurred_at) for e in p.of(ReflectionSubmitted) if e.pulse}
    for e in p.of(PulseRecorded):
        if e.source == PulseSource.CHECKIN:
            answered.add(("c", e.checkin_id))
        else:
            answered.add(("r", e.employee_id, e.occurred_at))
    pulses = len(answered)
    for column, want in (
        ("checkins", len(completed)),
        ("feedback_given", len(feedback)),
        ("feedback_received", len(feedback)),
        ("pulse_responses", pulses),
        (
            "missed",
            len(
                {e.obligation_id for e in p.of(CheckinMissed)}
                - {e.obligation_id for e in completed.values()}
            ),
        ),
    ):
        have = total(column)
        rows.append(
            Row(
                f"reporting: tenant {column} (sum)",
                want,
                have,
                lost=max(0, want - have),
                double=max(0, have - want),
            )
        )

    # Every rollup column on the tenant row against the same sums recomputed from the facts.
    recomputed: dict[tuple[str, tuple[Any, ...]], Counter[str]] = defaultdict(Counter)
    for kind, fact_rows in [*facts.items(), ("employee", employees)]:
        for row in fact_rows:
            fact = {k: v for k, v in row.items() if v is not None}
            for c in contributions(kind, fact):
                if c.table in ("unit_month_stats", "unit_goal_stats", "unit_people"):
                    recomputed[(c.table, c.key)].update(c.counts)
    stored: dict[tuple[str, tuple[Any, ...]], dict[str, int]] = {}
    for m, r in month.items():
        stored[("unit_month_stats", (m,))] = r
    for k, r in goal_stats.items():
        stored[("unit_goal_stats", k)] = r
    for r in people_row:
        stored[("unit_people", ())] = r
    over = under = cells = 0
    worst = ""
    for key in set(recomputed) | set(stored):
        want_counts = recomputed.get(key, Counter())
        have_row = stored.get(key, {})
        columns = set(want_counts) | {c for c in have_row if c not in _KEYS}
        for col in columns:
            want, have = int(want_counts.get(col, 0)), int(have_row.get(col, 0) or 0)
            cells += 1
            if have > want:
                over += 1
                worst = worst or f"{key[0]}{key[1]}.{col}: {have} vs {want}"
            elif have < want:
                under += 1
                worst = worst or f"{key[0]}{key[1]}.{col}: {have} vs {want}"
    rows.append(
        Row(
            "reporting: tenant rollups = facts",
            cells,
            cells - over - under,
            lost=under,
            double=over,
            note=worst,
        )
    )
    want_people = len(org.managers)
    have_people = int(people_row[0]["people"]) if people_row else 0
    rows.append(
        Row(
            "reporting: headcount",
            want_people,
            have_people,
            lost=max(0, want_people - have_people),
            double=max(0, have_people - want_people),
        )
    )
    return rows


_KEYS = {"generation", "tenant_id", "org_unit_id", "month", "period_start", "period_end"}
_AT_RISK = {"at_risk", "off_track"}


def expected_emails(
    p: Produced, org: Org
) -> tuple[set[tuple[str, str]], dict[tuple[str, str], set[str]]]:
    """(recipient email, category) pairs that must get exactly one email today, and the
    idempotency-key prefixes of the decisions behind them."""
    pairs: dict[tuple[str, str], set[str]] = defaultdict(set)

    def add(category: str, natural: str, *people: str | None) -> None:
        seen: set[str] = set()
        for person in people:
            if person and person in org.managers and person not in seen:
                seen.add(person)
                pairs[(org.email(person), category)].add(f"{natural}:{person}:")

    for env in p.events.values():
        e = env.event
        if isinstance(e, CheckinMissed):
            add(
                "checkin_missed",
                f"missed:{e.employee_id}:{e.obligation_id}",
                e.employee_id,
                e.manager_id,
            )
        elif isinstance(e, CheckinDue):
            add(
                "checkin_due", f"due:{e.employee_id}:{e.obligation_id}", e.employee_id, e.manager_id
            )
        elif isinstance(e, CheckinScheduled) and e.scheduled_for > e.occurred_at:
            # One logged after it began (the workload's are) is suppressed as expired.
            add(
                "checkin_invitation",
                f"invite:{e.checkin_id}:{e.scheduled_for.isoformat()}",
                e.employee_id,
                e.manager_id,
            )
        elif isinstance(e, FeedbackGiven):
            add("feedback_received", f"feedback:{e.feedback_id}", e.receiver_id)
        elif isinstance(e, GoalStale):
            add("goal_stale", f"stale:{e.goal_id}:{e.last_progress_at.isoformat()}", e.owner_id)
        elif isinstance(e, GoalStatusChanged) and e.to_status.value in _AT_RISK:
            add(
                "goal_at_risk",
                f"at_risk:{e.goal_id}:{e.to_status.value}:{e.occurred_at.isoformat()}",
                org.managers.get(e.owner_id),
            )
        elif isinstance(e, CadenceEscalated):
            add(
                "cadence_escalated",
                f"escalated:{e.employee_id}:{e.obligation_id}:{e.level.value}",
                e.escalated_to_id,
            )
    return set(pairs), pairs


#: Sessions of the notifications service's SMTP pool (its default): at most this many messages
#: are between "sending" (committed right before DATA) and DATA's reply in one process.
SMTP_CONNECTIONS: int = NotificationsSettings.model_fields["smtp_connections"].default
SENDER = "Rhythm <rhythm@localhost.localdomain>"


def check_notifications(
    workdir: Path, p: Produced, org: Org, sink: MailSink, notification_kills: int
) -> list[Row]:
    from rhythm_notifications.adapters.email import message_id

    expected, natural = expected_emails(p, org)
    with _sqlite(workdir / "notifications.db") as db:
        deliveries = db.execute(
            "SELECT idempotency_key, recipient_id, category, channel, status, reason, detail"
            " FROM deliveries"
        ).fetchall()
    keys = {d[0] for d in deliveries}
    mails = sink.snapshot()
    by_id = Counter(m.message_id for m in mails)
    by_pair = Counter((r, m.category) for m in mails for r in m.rcpt)
    received = set(by_pair)
    # Decisions: every (fact, recipient) the routing table names has a delivery row (sent,
    # digested because of the daily cap, or suppressed), whatever happened to the process.
    prefixes = {prefix for s in natural.values() for prefix in s}
    decided = {prefix for prefix in prefixes if any(_keys_with(keys, prefix))}
    emails = [d for d in deliveries if d[3] == "email"]
    sent = {message_id(d[0], SENDER) for d in emails if d[4] == "sent"}
    # Killed during the SMTP hand-over: recorded as failed ("ambiguous"), never resent.
    ambiguous = {message_id(d[0], SENDER) for d in emails if d[4] == "failed" and d[5] == "timeout"}
    failed = [d for d in emails if d[4] == "failed" and d[5] != "timeout"]
    stuck = [d for d in deliveries if d[4] in ("pending", "claimed", "sending") and d[3]]
    in_sink = set(by_id)
    amb_lost = ambiguous - in_sink
    window = SMTP_CONNECTIONS * max(notification_kills, 0)
    amb_pairs = {
        (org.email(d[1]), d[2])
        for d in emails
        if d[4] == "failed" and message_id(d[0], SENDER) in amb_lost
    }
    silent = expected - received - amb_pairs
    extra_pairs = received - expected
    rows = [
        _set_row("notifications: decisions (fact x recipient)", prefixes, decided),
        Row(
            "emails: one per (recipient, category) today",
            len(expected),
            len(received & expected),
            lost=len(silent),
            double=sum(n - 1 for n in by_pair.values() if n > 1) + len(extra_pairs),
            note=(f"missing e.g. {sorted(silent)[:2]}" if silent else "")
            + (f" unexpected e.g. {sorted(extra_pairs)[:2]}" if extra_pairs else ""),
        ),
        Row(
            "emails: same Message-ID twice",
            len(by_id),
            len(by_id),
            double=sum(n - 1 for n in by_id.values() if n > 1),
        ),
        Row(
            "emails: sent deliveries in the sink",
            len(sent),
            len(sent & in_sink),
            lost=len(sent - in_sink),
            double=len(in_sink - sent - ambiguous),
            note="sink messages without a delivery" if in_sink - sent - ambiguous else "",
        ),
        Row(
            "emails: killed mid-hand-over, not sent",
            window,
            len(amb_lost),
            lost=max(0, len(amb_lost) - window),
            note=(
                f"{len(ambiguous)} recorded failed, {len(ambiguous & in_sink)} of them did reach"
                f" the sink (at most once: <= {SMTP_CONNECTIONS}/kill may be lost)"
            )
            if ambiguous
            else "",
        ),
        Row(
            "deliveries stuck (pending/claimed/sending)",
            0,
            len(stuck),
            lost=len(stuck),
            note=f"e.g. {stuck[0][:2]} {stuck[0][4]}" if stuck else "",
        ),
    ]
    if failed:
        rows.append(
            Row("emails failed", 0, len(failed), lost=len(failed), note=str(failed[0][5:])[:110])
        )
    return rows


def _keys_with(keys: set[str], prefix: str) -> Iterable[str]:
    # Keys are <natural>:<recipient>:<channel>; the channel is one of a few values.
    for channel in ("email", "push", "webhook", "-"):
        if f"{prefix}{channel}" in keys:
            yield f"{prefix}{channel}"


async def check_dlq(bootstrap: str, prefix: str, poison: list[tuple[str, str]]) -> list[Row]:
    """Every poison record in the DLQ of every group that reads its topic, with a reason; no
    good record there."""
    rows = []
    for group in ("goals", "checkins", "notifications", "reporting"):
        records = await read_all(bootstrap, f"{prefix}{dlq_topic(group)}")
        want = {pid for pid, topic in poison if group in READERS[topic]}
        found: set[str] = set()
        no_reason = 0
        unexpected: list[str] = []
        for r in records:
            headers = dict(r.headers or ())
            key = (r.key or b"").decode(errors="replace")
            if "/poison/" in key:
                found.add("poison-" + key.rsplit("/", 1)[1])
                if not headers.get(DLQ_REASON):
                    no_reason += 1
            else:
                unexpected.append(
                    f"{key}: {headers.get(DLQ_REASON, b'').decode(errors='replace')[:100]}"
                )
        row = _set_row(f"DLQ rhythm.dlq.{group}: poison with reason", want, found)
        row.double += len(unexpected)
        row.lost += no_reason
        if unexpected:
            row.note = (
                row.note + "; " if row.note else ""
            ) + f"good records dead-lettered: {unexpected[0]}"
        if no_reason:
            row.note += f"; {no_reason} without {DLQ_REASON}"
        dup = len(records) - len(found) - len(unexpected)
        if dup > 0:
            row.note = (
                row.note + "; " if row.note else ""
            ) + f"{dup} poison dead-lettered again (redelivery)"
        rows.append(row)
    return rows
