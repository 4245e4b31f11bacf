"""The read side: the dashboard's questions, answered from the read model.

Each function returns a :class:`Report`: a headline ``summary`` and one table (``rows``, with
``columns`` described), which the HTTP layer renders as JSON or CSV. Definitions live in
:data:`DEFINITIONS` and are shown in the OpenAPI docs and in each report.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine

from rhythm_reporting.adapters.db import OBLIGATION_COUNTS, UNIT_GOAL_COUNTS, UNIT_MONTH_COUNTS
from rhythm_reporting.adapters.queries import MANAGER_COLUMNS, Queries, Row
from rhythm_reporting.domain import access
from rhythm_reporting.domain.metrics import (
    COMPLEMENT_CAP,
    adherence,
    adherence_shares,
    change,
    next_to_hide,
    pct,
    period_shown,
    ratio,
    share,
    shown,
    suppressed,
    too_small,
    total,
)
from rhythm_reporting.domain.periods import Period
from rhythm_reporting.domain.projection import ALL_PERIODS, BASIS_POINTS, TENANT
from rhythm_shared.kit.access import (
    Relationship,
    acts_as_person,
    allowed,
    require,
    role_relationships,
)
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.errors import Forbidden, InvalidInput, NotFound

DEFINITIONS = {
    "cadence-adherence": (
        "Cadence adherence: of the obligations (owed check-ins) due in the period (by due time, "
        "UTC month) that are resolved, the share completed on time (check-in held by the due "
        "time), late (held after it, even after a miss) and missed (declared missed, never "
        "held). Obligations neither held nor missed yet are 'open' and not in the shares. "
        "Change: percentage points against the previous period of the same length. Trend: the "
        "12 months ending with the period. An obligation counts against the unit the employee "
        "was in at its due time."
    ),
    "cadence-adherence-by-unit": (
        "Cadence adherence (as above) for each unit directly below the selected one (below its "
        "only child, when it has just one), each including its whole subtree."
    ),
    "manager-adherence": (
        "Manager adherence: for each manager in the selected unit's subtree (by the manager's "
        "own unit now), the obligations of their direct reports due in the period and the share "
        "missed, late and on time; sorted by the share missed, highest first: leadership sets "
        "the example. A manager is listed only when, in each month of the period, their "
        "obligations came from at least MIN_GROUP_SIZE (5) direct reports or from none, and "
        "the reports of the managers left out, together, are none or that many people."
    ),
    "ownership": (
        "Ownership: the share of check-ins held in the period that the employee initiated "
        "(rather than the manager). Trend: the 12 months ending with the period."
    ),
    "feedback": (
        "Feedback frequency per person: feedback given (and received) by the people of each unit "
        "directly below the selected one (below its only child, when it has just one), divided "
        "by its current headcount and by the months in the period. Praise share: praise among "
        "the feedback given."
    ),
    "goals": (
        "Goal progress distribution: goals whose period overlaps the selected one (withdrawn, "
        "superseded or orphaned goals excluded), by their latest progress in 20 % buckets; "
        "with the average progress and confidence, and how many are at risk, off track or "
        "stale. A goal counts in the unit of its owner (a person's unit when it was created)."
    ),
    "goals-attention": (
        "At-risk and stale goals: goals visible to the tenant whose period overlaps the selected "
        "one and whose status is at_risk or off_track, or that went stale (no progress within "
        "their update interval, as the goals service reported with GoalStale, and none since)."
    ),
    "workload-pulse": (
        "Workload pulse: the 1-5 answers (1 far too little, 3 about right, 5 far too much) given "
        "in completed check-ins and in self-reflections, per month: the number of answers, the "
        "average and the share of 4-5 (too much) and 1-2 (too little). A month is hidden when "
        "fewer than MIN_GROUP_SIZE (5) different people answered (see the small-group rule)."
    ),
    "units": (
        "The org units the caller may look at (executives and HR: the whole tenant, '*'; "
        "unit heads: the units they head and everything below), with current headcounts "
        "(hidden for small groups, and where the headcounts shown would give a small one away)."
    ),
}
SUPPRESSION = (
    "Small groups (MIN_GROUP_SIZE, 5 by default, at least 3): a figure made by fewer than 5 "
    "different people in the period (those whose facts it counts, where they were at the time; "
    "not today's headcount) is hidden: its values and counts are null and suppressed is true. "
    "So that no hidden figure can be worked out from shown ones: when a unit's own people and "
    "its hidden sub-units together are fewer than 5 people, a shown sub-unit is hidden too "
    "(the smallest if one has fewer than 10 people, else the first by id); a hidden unit hides "
    "the units below it; a quarter or year "
    "is shown only when each of its months is shown or empty. A figure is hidden the same way "
    "in every endpoint, export and request. Nobody contributing: zeros are shown."
)


#: Up to this many people, a list is built from the scope's units rather than by walking the
#: tenant-wide ranking index (which pays off only when most rows are in scope).
SMALL_SCOPE = 5_000


@dataclass
class Report:
    metric: str
    scope: dict[str, Any]
    period: dict[str, Any] | None
    summary: dict[str, Any]
    columns: dict[str, str]
    rows: list[dict[str, Any]]
    suppressed: bool = False
    previous_period: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def definition(self) -> str:
        return DEFINITIONS[self.metric]

    def as_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "definition": self.definition,
            "scope": self.scope,
            "period": self.period,
            "previous_period": self.previous_period,
            "suppressed": self.suppressed,
            "summary": self.summary,
            "columns": self.columns,
            "rows": self.rows,
            **self.extra,
        }


@dataclass(frozen=True)
class Scope:
    org_unit_id: str
    name: str
    people: int


def _period_json(period: Period) -> dict[str, Any]:
    return {"label": period.label, "start": period.start, "end": period.end}


async def unit_relationships(
    q: Queries, principal: Principal, unit: str
) -> frozenset[Relationship]:
    """The caller's relationships to an org unit: their organisation-wide roles, and
    ``unit_head`` when, as a person, they head the unit or one above it (in the directory)."""
    rels = set(role_relationships(principal))
    if (
        unit != TENANT
        and acts_as_person(principal)
        and principal.subject in await q.directory.unit_heads_upwards(unit)
    ):
        rels.add(Relationship.UNIT_HEAD)
    return frozenset(rels)


async def visible_roots(q: Queries, principal: Principal) -> list[str]:
    """The tops of what the caller may look at: '*' or the units they head."""
    if allowed(access.POLICY, access.WHOLE_ORGANISATION, frozenset(role_relationships(principal))):
        return [TENANT]
    if not acts_as_person(principal):
        return []
    return await q.directory.heads_units(principal.subject)


async def resolve_scope(q: Queries, principal: Principal, unit: str | None) -> Scope:
    """The unit a request looks at, if the caller may (domain/access.py): executives and HR the
    tenant, unit heads the subtrees of the units they head; anyone else is refused."""
    roots = await visible_roots(q, principal)
    if not roots:
        raise Forbidden("dashboards are for executives, HR and the heads of org units")
    unit = unit or roots[0]
    if unit == TENANT:
        require(
            access.POLICY,
            access.WHOLE_ORGANISATION,
            frozenset(role_relationships(principal)),
            "only executives and HR see the whole tenant",
        )
        name = "Whole organisation"
    else:
        row = await q.unit(unit)
        if row is None:
            raise NotFound(f"org unit {unit!r} not found")
        require(
            access.POLICY,
            "read_dashboard",
            await unit_relationships(q, principal, unit),
            "that org unit is outside your part of the organisation",
        )
        name = row["name"] or unit
    people = (await q.people([unit])).get(unit, 0)
    return Scope(unit, name, people)


def parse_period(label: str | None, default: Period) -> Period:
    if label is None:
        return default
    try:
        return Period.parse(label)
    except ValueError as exc:
        raise InvalidInput.field("period", msg=str(exc)) from exc


# -- small groups (the rule and its argument: domain/metrics.py) --------------------------------


class OrgIndex:
    """The tenant's unit tree and headcounts as now, in memory: children, subtrees, paths from
    the top, and what follows from them alone (memoised: it lives as long as the org does, see
    :func:`org_index`)."""

    def __init__(self, units: Sequence[Row], people: Mapping[str, int]) -> None:
        #: Today's headcount of each unit's subtree (unit_people).
        self.people = dict(people)
        known = {u["org_unit_id"] for u in units}
        self.parent: dict[str, str | None] = {
            u["org_unit_id"]: (u["parent_id"] if u["parent_id"] in known else None) for u in units
        }
        self.kids: dict[str, list[str]] = {TENANT: []}
        for unit in sorted(self.parent):
            self.kids.setdefault(self.parent[unit] or TENANT, []).append(unit)
        self._subtrees: dict[str, list[str]] = {}
        self._unplaced: list[str] | None = None
        #: (node, minimum) -> the node's children whose headcounts are shown (rules 1 and 2).
        self._people_kids: dict[tuple[str, int], frozenset[str]] = {}

    def children(self, unit: str) -> list[str]:
        return self.kids.get(unit, [])

    def subtree(self, unit: str) -> list[str]:
        """The unit and every unit below it (bad data must not loop)."""
        cached = self._subtrees.get(unit)
        if cached is None:
            out, todo, seen = [], [unit], set()
            while todo:
                current = todo.pop()
                if current in seen:
                    continue
                seen.add(current)
                out.append(current)
                todo.extend(self.kids.get(current, []))
            cached = self._subtrees[unit] = sorted(out)
        return cached

    def path(self, unit: str) -> list[str]:
        """'*', the unit's top ancestor, ..., the unit. A cycle's top is no child of '*'."""
        chain: list[str] = []
        current: str | None = unit
        while current is not None and current not in chain:
            chain.append(current)
            current = self.parent.get(current)
        return [TENANT, *reversed(chain)]

    def unplaced(self) -> list[str]:
        """The units under no top unit (in a cycle)."""
        if self._unplaced is None:
            placed = {u for k in self.children(TENANT) for u in self.subtree(k)}
            self._unplaced = [u for u in self.parent if u not in placed]
        return self._unplaced

    def headcount_children(self, node: str, minimum: int) -> frozenset[str]:
        """The children of ``node`` whose headcounts may be shown: rules 1 and 2 on headcounts."""
        key = (node, minimum)
        if key not in self._people_kids:
            people = self.people
            counts = {k: people.get(k, 0) for k in self.children(node)}
            shown = {k for k, n in counts.items() if not too_small(n, minimum)}
            while True:
                residual = people.get(node, 0) - sum(counts[k] for k in shown)
                pick = next_to_hide({k: counts[k] for k in shown}, residual, minimum)
                if pick is None:
                    break
                shown.discard(pick)
            self._people_kids[key] = frozenset(shown)
        return self._people_kids[key]


#: Each reader engine's tenants' orgs as a request last loaded them, with the (generation, org
#: version) they are of: a request whose version is the same uses them, not reloading the org.
_ORGS: WeakKeyDictionary[Engine, dict[str, tuple[tuple[int, int], OrgIndex]]] = WeakKeyDictionary()


async def org_index(q: Queries) -> OrgIndex:
    """The tenant's org as of the request's (generation, org version): kept from an earlier
    request of that version, or read and kept. Every change of the org raises the version in
    its own transaction (store.org_changed), so a kept org is never older than its version."""
    key = (q.g, q.org_version)
    tenants = _ORGS.setdefault(q.conn.sync_engine, {})
    kept = tenants.get(q.tenant)
    if kept is not None and kept[0] == key:
        return kept[1]
    org = OrgIndex(await q.all_units(), await q.all_people())
    # Kept only if no change committed while it was read (PostgreSQL reads each statement's
    # latest commit) and nothing newer is kept already.
    if await q.org_version_now() == key and (kept is None or kept[0] < key):
        tenants[q.tenant] = (key, org)
    return org


@dataclass
class Decisions:
    """What the small-group rule found out about one slot of one family (a month, or a period
    for goals), as of the org version and the slot's number: shared by the requests of those
    (see :class:`SmallGroups`)."""

    #: unit -> (contributors, the cap they were counted up to).
    cells: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: node -> its children shown (rule 2).
    kids: dict[str, frozenset[str]] = field(default_factory=dict)
    #: (node, its shown children) -> the residual, up to ``minimum``.
    residuals: dict[tuple[str, frozenset[str]], int] = field(default_factory=dict)
    #: Monthly families: units with facts that the org does not know.
    unknown: list[str] | None = None
    #: Goals: the units with goals in the period (as the rollups list them).
    listed: list[str] | None = None
    #: Goals: (unit, a nested period) -> owners of goals in one and not the other, up to
    #: ``minimum``.
    apart: dict[tuple[str, str], int] = field(default_factory=dict)


#: Each reader engine's decisions, by (tenant, minimum, family, slot), with the (generation,
#: org version, slot's number) they are of; the most recently used are kept. One holds a few
#: hundred to a few thousand entries (the cells a request looked at and those around them).
KEPT_DECISIONS = 512
_DECISIONS: WeakKeyDictionary[
    Engine, dict[tuple[str, int, str, str], tuple[tuple[int, int, int], Decisions]]
] = WeakKeyDictionary()


class SmallGroups:
    """Which cells one request may show, by the rule in domain/metrics.py.

    A *slot* is a month label for the unit-by-month families (``obligations``, ``checkins``,
    ``pulse``, ``feedback_given``, ``feedback_received``) and a period label for ``goals``.

    A monthly cell's size is read as kept at ingest (exact). Everything counted at request
    time (residuals, goal owners) mostly asks whether a group is small or empty, so those
    counts stop at ``minimum`` people; where rule 2 picks a shown part to hide, goal counts stop
    at ``COMPLEMENT_CAP`` times ``minimum``.

    What it finds out about a slot (:class:`Decisions`) is kept for the requests that come
    after, while the org version and the slot's number (fact_versions: a month's for monthly
    families, the tenant's goals for goals) stay: every change of those facts raises the number
    in its own transaction (store.facts_changed), and a request reads the numbers before the
    facts, so what it adds is of that number or newer, and a newer one is never asked for again.
    """

    def __init__(self, q: Queries, minimum: int) -> None:
        self.q = q
        self.minimum = minimum
        self._org: OrgIndex | None = None
        self._slots: dict[tuple[str, str], Decisions] = {}
        self._managers: dict[str, tuple[dict[str, int], frozenset[str]]] = {}

    async def slots(self, family: str, slots: Sequence[str]) -> list[Decisions]:
        """The decisions of a family's slots: kept from earlier requests of their numbers, or
        new (and kept); the numbers of those not looked at yet read in one statement."""
        wanted = [s for s in dict.fromkeys(slots) if (family, s) not in self._slots]
        if wanted:
            numbered = [ALL_PERIODS] if family == "goals" else wanted
            numbers = dict(zip(numbered, await self.q.versions(family, numbered), strict=True))
            kept = _DECISIONS.setdefault(self.q.conn.sync_engine, {})
            for slot in wanted:
                number = numbers[ALL_PERIODS if family == "goals" else slot]
                key = (self.q.g, self.q.org_version, number)
                name = (self.q.tenant, self.minimum, family, slot)
                found = kept.pop(name, None)
                if found is None or found[0] != key:
                    found = found if found is not None and found[0] > key else (key, Decisions())
                kept[name] = found  # the most recently used are the ones kept
                self._slots[(family, slot)] = found[1] if found[0] == key else Decisions()
            while len(kept) > KEPT_DECISIONS:
                del kept[next(iter(kept))]
        return [self._slots[(family, s)] for s in slots]

    async def slot(self, family: str, slot: str) -> Decisions:
        return (await self.slots(family, [slot]))[0]

    async def org(self) -> OrgIndex:
        if self._org is None:
            self._org = await org_index(self.q)
        return self._org

    async def _cell_units(self, slot: str, unit: str) -> list[str | None]:
        """The units whose goals make a cell, listed: the unit's subtree; for the tenant, every
        unit with goals in the slot (as the rollups list them) and None, goals with no unit."""
        if unit != TENANT:
            return list((await self.org()).subtree(unit))
        d = await self.slot("goals", slot)
        if d.listed is None:
            period = Period.parse(slot)
            d.listed = await self.q.goal_units((period.start, period.end))
        return [*d.listed, None]

    async def _goal_units(self, unit: str) -> list[str | None] | None:
        """The units whose goals make a cell, None for the tenant's cell (every goal counts
        there, with or without a unit: no list of the tenant's units is sent)."""
        return None if unit == TENANT else list((await self.org()).subtree(unit))

    async def _goal_owners(self, slot: str, units: Sequence[str | None] | None, cap: int) -> int:
        period = Period.parse(slot)
        return await self.q.goal_owners((period.start, period.end), units, cap=cap)

    async def contributors(self, family: str, slot: str, unit: str, cap: int | None = None) -> int:
        """A cell's distinct contributors, counted up to ``cap`` (``minimum`` if not given):
        the same answer whatever was counted before. Monthly families read the subtree's size
        kept at ingest; goals count their owners from the facts."""
        cap = cap or self.minimum
        d = await self.slot(family, slot)
        cached = d.cells.get(unit)
        if cached is None or (cached[0] >= cached[1] and cached[1] < cap):
            if family == "goals":
                n = await self._goal_owners(slot, await self._goal_units(unit), cap)
                cached = d.cells[unit] = (n, cap)
            else:  # the exact size, kept at ingest
                n = await self.q.rolled_up_contributors(family, slot, unit)
                cached = d.cells[unit] = (n, n + 1)
        return min(cached[0], cap)

    async def _residual(self, family: str, slot: str, node: str, shown: set[str]) -> int:
        """The people of a cell outside its shown children, up to ``minimum``: the node's own
        facts and its hidden children's subtrees (for the tenant: facts with no unit or in units
        under no top unit, and the hidden top units)."""
        org = await self.org()
        d = await self.slot(family, slot)
        key = (node, frozenset(shown))
        if key not in d.residuals:
            if family == "goals":
                covered = {u for k in shown for u in org.subtree(k)}
                cell = await self._cell_units(slot, node)
                rest = [u for u in cell if u not in covered]
                n = await self._goal_owners(slot, rest, self.minimum)
            else:
                own, hidden = await self._outside(family, slot, node, shown)
                n = await self.q.contributors_outside(family, slot, own, hidden, self.minimum)
            d.residuals[key] = n
        return d.residuals[key]

    async def _outside(
        self, family: str, slot: str, node: str, shown: Collection[str]
    ) -> tuple[list[str | None], list[str]]:
        """Where a monthly cell's residual is: (units whose own facts count, hidden children)."""
        org = await self.org()
        hidden = [k for k in org.children(node) if k not in shown]
        own: list[str | None] = [node]
        if node == TENANT:  # facts under no top unit: in units unknown, in a cycle, or none
            (d,) = await self._read_unknown(family, [slot])
            own = [*(d.unknown or []), *org.unplaced(), None]
        return own, hidden

    async def prepare(
        self, families: Sequence[str], units: Sequence[str], months: Sequence[str]
    ) -> None:
        """Read ahead what rules 1 and 2 ask about the month cells of ``units`` in ``months``:
        level by level down each unit's path, the counts of every open cell's children and its
        residual, for all the cells of a level in a few statements. The rule then finds them
        read; whatever else it asks (rule 2 hiding a shown part) it reads itself, so the answers
        are those of asking cell by cell."""
        if not units:
            return
        org = await self.org()
        paths = [[TENANT] if u == TENANT else org.path(u) for u in units]
        months = sorted(set(months))
        for family in families:
            if family == "goals":
                continue
            await self._read_unknown(family, months)
            await self._read_counts(family, [(TENANT, m) for m in months])
            # The cells shown so far whose children matter: a shown node on some unit's path.
            open_cells = {
                (TENANT, m)
                for m in months
                if not too_small(await self.contributors(family, m, TENANT), self.minimum)
            }
            for depth in range(max(len(p) for p in paths) - 1):
                steps = {(p[depth], p[depth + 1]) for p in paths if len(p) > depth + 1}
                cells = sorted(
                    (node, m)
                    for node in {n for n, _ in steps}
                    for m in months
                    if (node, m) in open_cells
                )
                await self._read_counts(
                    family, [(k, m) for node, m in cells for k in org.children(node)]
                )
                await self._read_residuals(family, cells)
                below = set()
                for node, m in cells:
                    kids = await self._shown_children(family, m, node)
                    for parent, child in steps:
                        if parent == node and child in kids:
                            n = await self.contributors(family, m, child)
                            if not too_small(n, self.minimum):
                                below.add((child, m))
                open_cells = below

    async def _read_unknown(self, family: str, months: Sequence[str]) -> list[Decisions]:
        decisions = await self.slots(family, months)
        wanted = [m for m, d in zip(months, decisions, strict=True) if d.unknown is None]
        if wanted:
            listed = await self.q.unknown_units_with_facts(family, wanted)
            for m, d in zip(months, decisions, strict=True):
                if d.unknown is None:
                    d.unknown = listed.get(m, [])
        return decisions

    async def _read_counts(self, family: str, cells: Sequence[tuple[str, str]]) -> None:
        """Cells' contributors (exact, as kept at ingest), those not read yet, in a few
        statements."""
        months = sorted({m for _, m in cells})
        decisions = dict(zip(months, await self.slots(family, months), strict=True))
        wanted = sorted({c for c in cells if c[0] not in decisions[c[1]].cells})
        counts = await self.q.rolled_up_counts(family, wanted)
        for (unit, month), n in zip(wanted, counts, strict=True):
            decisions[month].cells[unit] = (n, n + 1)

    async def _read_residuals(self, family: str, cells: Sequence[tuple[str, str]]) -> None:
        """Each cell's residual with the children rule 1 shows, in a few statements."""
        org = await self.org()
        keys, parts = [], []
        for node, month in cells:
            shown = {
                k
                for k in org.children(node)
                if not too_small(await self.contributors(family, month, k), self.minimum)
            }
            d = await self.slot(family, month)
            key = (node, frozenset(shown))
            if key not in d.residuals:
                keys.append((d, key))
                parts.append((month, *await self._outside(family, month, node, shown)))
        # Most residuals are units' own facts alone (no hidden sub-unit), and most of those
        # have none: which units do is asked of all of them at once; only those are counted.
        alone = [(month, own) for month, own, hidden in parts if not hidden]
        with_facts = await self.q.own_facts(family, [(u, m) for m, own in alone for u in own])
        counted = [
            (key, part)
            for key, part in zip(keys, parts, strict=True)
            if part[2] or any((u, part[0]) in with_facts for u in part[1])
        ]
        counts = await self.q.outside_counts(family, [p for _, p in counted], self.minimum)
        for d, key in keys:
            d.residuals[key] = 0
        for (d, key), n in zip([k for k, _ in counted], counts, strict=True):
            d.residuals[key] = n

    async def _shown_children(self, family: str, slot: str, node: str) -> frozenset[str]:
        """Rule 2 under a shown cell: its children less the small ones and, while the rest of
        the node is a small group, the smallest shown one (sizes compared up to the cap)."""
        d = await self.slot(family, slot)
        if node in d.kids:
            return d.kids[node]
        org = await self.org()
        if family == "goals":  # the children's owners, in a few statements
            unread = [k for k in org.children(node) if k not in d.cells]
            period = Period.parse(slot)
            owners = await self.q.goal_owner_counts(
                (period.start, period.end), [org.subtree(k) for k in unread], self.minimum
            )
            for k, n in zip(unread, owners, strict=True):
                d.cells[k] = (n, self.minimum)
        counts = {k: await self.contributors(family, slot, k) for k in org.children(node)}
        shown = {k for k, n in counts.items() if not too_small(n, self.minimum)}
        while True:
            residual = await self._residual(family, slot, node, shown)
            if not too_small(residual, self.minimum):
                break
            # Only now do the sizes of the shown parts matter: the smallest below the cap, else
            # the first by id (any part with people in it protects the residual).
            cap = COMPLEMENT_CAP * self.minimum
            sizes = {k: await self.contributors(family, slot, k, cap) for k in shown}
            pick = next_to_hide(sizes, residual, self.minimum)
            if pick is None:
                break
            shown.discard(pick)
        d.kids[node] = frozenset(shown)
        return d.kids[node]

    async def slot_shown(self, family: str, slot: str, unit: str) -> bool:
        """Rules 1 and 2 for one cell: itself and every cell above it, top down."""
        org = await self.org()
        path = [TENANT] if unit == TENANT else org.path(unit)
        for i, node in enumerate(path):
            if too_small(await self.contributors(family, slot, node), self.minimum):
                return False
            if i + 1 < len(path) and path[i + 1] not in await self._shown_children(
                family, slot, node
            ):
                return False
        return True

    async def month(self, families: Sequence[str], unit: str, month: str) -> tuple[bool, bool]:
        """(shown, empty) of a unit's month cell; shown only when shown in every family."""
        ok = [await self.slot_shown(f, month, unit) for f in families]
        people = [await self.contributors(f, month, unit) for f in families]
        return all(ok), not any(people)

    async def period(self, families: Sequence[str], unit: str, period: Period) -> bool:
        """Rule 3: a period is shown when each of its months is shown or empty."""
        return period_shown([await self.month(families, unit, m) for m in period.months])

    async def goals(self, unit: str, period: Period) -> bool:
        """Goals overlap periods: rules 1 and 2 for the period, and against each nested period
        the goals one has and the other lacks come from no one or from ``minimum`` people."""
        if not await self.slot_shown("goals", period.label, unit):
            return False
        d = await self.slot("goals", period.label)
        for other in period.nested():
            if (unit, other.label) not in d.apart:
                outer, inner = (
                    (period, other) if set(other.months) < set(period.months) else (other, period)
                )
                d.apart[(unit, other.label)] = await self.q.goal_owners(
                    (outer.start, outer.end),
                    await self._goal_units(unit),
                    (inner.start, inner.end),
                    cap=self.minimum,
                )
            if too_small(d.apart[(unit, other.label)], self.minimum):
                return False
        return True

    async def headcount(self, unit: str) -> int | None:
        """Today's headcount of a subtree, if shown: rules 1 and 2 on headcounts."""
        org = await self.org()
        people = org.people
        path = [TENANT] if unit == TENANT else org.path(unit)
        for i, node in enumerate(path):
            if too_small(people.get(node, 0), self.minimum):
                return None
            if i + 1 < len(path) and path[i + 1] not in org.headcount_children(node, self.minimum):
                return None
        return people.get(unit, 0)

    async def _managers_in(self, month: str) -> tuple[dict[str, int], frozenset[str]]:
        """Managers' reports in a month and the managers shown: rule 1 on their reports, rule 2
        over the tenant (the reports of hidden managers, with no manager, together). Only
        whether those are a small group matters, so they are read up to ``minimum``."""
        if month not in self._managers:
            teams = await self.q.month_reports(month)
            reports = {m: n for m, n in teams.items() if m is not None}
            shown = {m for m, n in reports.items() if not too_small(n, self.minimum)}
            outside = await self.q.reports_of(month, {None, *reports} - shown, self.minimum)
            while True:
                pick = next_to_hide({m: reports[m] for m in shown}, len(outside), self.minimum)
                if pick is None:
                    break
                shown.discard(pick)
                outside |= await self.q.reports_of(month, {pick}, self.minimum)
            self._managers[month] = (reports, frozenset(shown))
        return self._managers[month]

    async def managers(self, units: Mapping[str, str | None], period: Period) -> set[str]:
        """Those of the managers ``units`` names (each by their unit now) shown: rules 1-3 on
        a manager's reports, and against the manager's
        own unit: the unit's figure less the team's leaves no small group (the head of a team
        is often the rest).

        The people outside a team are at least the unit's contributors less the team, so a
        unit with ``minimum`` more contributors than the team settles it (read for every
        manager at once); only the others count the unit's facts outside the team."""
        org = await self.org()
        ids = sorted(units)
        # Each month's reports and shown managers, read once (a request can list thousands).
        period_months = [(month, *await self._managers_in(month)) for month in period.months]
        months: dict[tuple[str, str], tuple[bool, bool]] = {}
        caps: dict[tuple[str, str], int] = {}  # (unit, month) -> contributors that settle it
        for manager_id in ids:
            unit = units.get(manager_id)
            for month, reports, visible in period_months:
                ok = manager_id in visible
                months[(manager_id, month)] = (ok, reports.get(manager_id, 0) == 0)
                if ok and unit is not None:
                    cap = self.minimum + reports[manager_id]
                    caps[(unit, month)] = max(cap, caps.get((unit, month), 0))
        cells = sorted(caps)
        people = dict(zip(cells, await self.q.rolled_up_counts("obligations", cells), strict=True))
        out = set()
        for manager_id in ids:
            unit = units.get(manager_id)
            shown_months = []
            for month, reports, _ in period_months:
                ok, empty = months[(manager_id, month)]
                if (
                    ok
                    and unit is not None
                    and people[(unit, month)] < self.minimum + reports[manager_id]
                ):
                    rest = await self.q.outside_team(
                        month, org.subtree(unit), manager_id, self.minimum
                    )
                    ok = not too_small(rest, self.minimum)
                shown_months.append((ok, empty))
            if period_shown(shown_months):
                out.add(manager_id)
        return out


#: A tenant's managers of a period, ranked (worst share missed first): each row as
#: MANAGER_COLUMNS and whether the small-group rule shows the manager.
ManagerTable = list[tuple[tuple[Any, ...], bool]]

#: Each reader engine's manager tables as requests last made them, by (tenant, period,
#: minimum), with the (generation, org version, the period's months' obligation numbers) they
#: are of: a request whose numbers are the same uses them. The most recently used are kept.
#: At 200,000 employees one table is 10-40 MiB of the process: a few periods are kept, not all.
KEPT_MANAGER_TABLES = 4
_MANAGERS: WeakKeyDictionary[
    Engine, dict[tuple[str, str, int], tuple[tuple[int, int, tuple[int, ...]], ManagerTable]]
] = WeakKeyDictionary()


async def manager_table(q: Queries, groups: SmallGroups, period: Period) -> ManagerTable:
    """The tenant's managers of ``period`` and who of them is shown, as of the request's
    (generation, org version) and the numbers of the period's months: kept from an earlier
    request of those, or made and kept. Whether a manager is shown does not depend on the
    scope asked for, and everything it is made of changes only with the org (which raises the
    org version) or with the obligations of those months (which raise their numbers, in the
    same transaction: store.facts_changed), so a kept table is never older than its
    numbers."""
    versions = await q.versions("obligations", period.months)
    key = (q.g, q.org_version, versions)
    tables = _MANAGERS.setdefault(q.conn.sync_engine, {})
    name = (q.tenant, period.label, groups.minimum)
    kept = tables.get(name)
    if kept is not None and kept[0] == key:
        tables[name] = tables.pop(name)  # the most recently used are the ones kept
        return kept[1]
    rows = await q.managers(period.label)
    visible = await groups.managers({r[0]: r[1] for r in rows}, period)
    table = [(r, r[0] in visible) for r in rows]
    # Kept only if nothing changed while it was made and nothing newer is kept already.
    now = await q.org_version_now()
    if (*now, await q.versions("obligations", period.months)) == key and (
        kept is None or kept[0] < key
    ):
        tables.pop(name, None)
        tables[name] = (key, table)
        while len(tables) > KEPT_MANAGER_TABLES:
            del tables[next(iter(tables))]
    return table


async def _scope_json(groups: SmallGroups, scope: Scope) -> dict[str, Any]:
    return {
        "org_unit_id": scope.org_unit_id,
        "name": scope.name,
        "people": await groups.headcount(scope.org_unit_id),
    }


def _sum_months(rows: Sequence[Row], unit: str, months: Sequence[str]) -> dict[str, int]:
    wanted = set(months)
    return total(
        (r for r in rows if r["org_unit_id"] == unit and r["month"] in wanted), UNIT_MONTH_COUNTS
    )


def _blank_summary(keys: Sequence[str]) -> dict[str, Any]:
    return dict.fromkeys(keys)


def _hidden(keys: Sequence[str]) -> dict[str, Any]:
    """A hidden cell: no values, no counts."""
    return {**dict.fromkeys(keys), "suppressed": True}


SUPPRESSED_COLUMN = "True when the figures are hidden (a small group; see the definition)."

# -- cadence adherence -------------------------------------------------------------------------

ADHERENCE_COLUMNS = {
    "obligations": "Obligations due.",
    "on_time": "Completed by the due time.",
    "late": "Completed after the due time.",
    "missed": "Missed and never completed.",
    "open": "Neither completed nor missed yet.",
    "on_time_pct": "% of resolved obligations completed on time.",
    "late_pct": "% of resolved obligations completed late.",
    "missed_pct": "% of resolved obligations missed.",
}
OBLIGATIONS = ("obligations",)


def _adherence_row(counts: dict[str, int]) -> dict[str, Any]:
    return {**{c: counts[c] for c in OBLIGATION_COUNTS}, **adherence(counts)}


async def cadence_adherence(q: Queries, scope: Scope, period: Period, minimum: int) -> Report:
    groups = SmallGroups(q, minimum)
    unit = scope.org_unit_id
    previous = period.previous()
    trend_months = period.trend_months()
    months = sorted({*period.months, *previous.months, *trend_months})
    report = Report(
        "cadence-adherence",
        await _scope_json(groups, scope),
        _period_json(period),
        {},
        {"month": "YYYY-MM (UTC).", **ADHERENCE_COLUMNS, "suppressed": SUPPRESSED_COLUMN},
        [],
        previous_period=_period_json(previous),
    )
    keys = [
        *ADHERENCE_COLUMNS,
        "previous_on_time_pct",
        "change_on_time_pp",
        "change_late_pp",
        "change_missed_pp",
    ]
    await groups.prepare(OBLIGATIONS, [unit], months)
    rows = await q.monthly([unit], months)
    if await groups.period(OBLIGATIONS, unit, period):
        counts = _sum_months(rows, unit, period.months)
        now = adherence_shares(counts)
        before: dict[str, float | None] = dict.fromkeys(now)
        if await groups.period(OBLIGATIONS, unit, previous):
            before = adherence_shares(_sum_months(rows, unit, previous.months))
        report.summary = {
            **_adherence_row(counts),
            "previous_on_time_pct": shown(before["on_time_pct"]),
            # From the unrounded shares: rounding first can be a tenth of a point off.
            "change_on_time_pp": change(now["on_time_pct"], before["on_time_pct"]),
            "change_late_pp": change(now["late_pct"], before["late_pct"]),
            "change_missed_pp": change(now["missed_pct"], before["missed_pct"]),
        }
    else:
        report.suppressed = True
        report.summary = _blank_summary(keys)
    for m in trend_months:
        ok, _ = await groups.month(OBLIGATIONS, unit, m)
        values = (
            {**_adherence_row(_sum_months(rows, unit, [m])), "suppressed": False}
            if ok
            else _hidden(list(ADHERENCE_COLUMNS))
        )
        report.rows.append({"month": m, **values})
    return report


async def _breakdown(q: Queries, unit: str) -> list[dict[str, Any]]:
    """The units a table breaks the selection down into: those directly below it — or, while
    there is only one (a tenant with one top unit), the units below that one."""
    children = list(await q.children(unit))
    while len(children) == 1:
        below = list(await q.children(children[0]["org_unit_id"]))
        if not below:
            break
        children = below
    return children


async def cadence_adherence_by_unit(
    q: Queries, scope: Scope, period: Period, minimum: int
) -> Report:
    groups = SmallGroups(q, minimum)
    report = Report(
        "cadence-adherence-by-unit",
        await _scope_json(groups, scope),
        _period_json(period),
        {},
        {
            "org_unit_id": "The unit (its whole subtree).",
            "name": "Its name.",
            "people": "Current headcount of the subtree (null when that is a small group).",
            **ADHERENCE_COLUMNS,
            "suppressed": SUPPRESSED_COLUMN,
        },
        [],
    )
    await groups.prepare(OBLIGATIONS, [scope.org_unit_id], period.months)
    if not await groups.period(OBLIGATIONS, scope.org_unit_id, period):
        report.suppressed = True
        return report
    children = await _breakdown(q, scope.org_unit_id)
    ids = [c["org_unit_id"] for c in children]
    await groups.prepare(OBLIGATIONS, ids, period.months)
    rows = await q.monthly(ids, period.months) if ids else []
    out = []
    for child in children:
        unit = child["org_unit_id"]
        head = {"org_unit_id": unit, "name": child["name"] or unit}
        if await groups.period(OBLIGATIONS, unit, period):
            values = _adherence_row(_sum_months(rows, unit, period.months))
            people = await groups.headcount(unit)
            out.append({**head, "people": people, **values, "suppressed": False})
        else:
            out.append({**head, **_hidden(["people", *ADHERENCE_COLUMNS])})
    out.sort(key=lambda r: (r["suppressed"], -(r["missed_pct"] or 0), r["name"]))
    report.rows = out
    return report


# -- manager adherence -------------------------------------------------------------------------


async def manager_adherence(
    q: Queries, scope: Scope, period: Period, minimum: int, limit: int | None
) -> Report:
    groups = SmallGroups(q, minimum)
    report = Report(
        "manager-adherence",
        await _scope_json(groups, scope),
        _period_json(period),
        {},
        {
            "manager_id": "The manager's employee id.",
            "manager": "The manager's name.",
            "team_size": "Active direct reports now (null when that is a small group).",
            **ADHERENCE_COLUMNS,
            "suppressed": "Always false: hidden managers are left out (see managers_suppressed).",
        },
        [],
    )
    table = await manager_table(q, groups, period)
    if scope.org_unit_id == TENANT:
        rows = table
    else:
        units = set((await groups.org()).subtree(scope.org_unit_id))
        rows = [r for r in table if r[0][1] in units]
    shown_rows = [r for r, shown in rows if shown]
    hidden = len(rows) - len(shown_rows)
    if limit is not None:
        shown_rows = shown_rows[:limit]
    named = [dict(zip(MANAGER_COLUMNS, r, strict=True)) for r in shown_rows]
    names = await q.names(r["manager_id"] for r in named)
    report.rows = [
        {
            "manager_id": r["manager_id"],
            "manager": names.get(r["manager_id"], r["manager_id"]),
            "team_size": None if suppressed(r["team_size"], minimum) else r["team_size"],
            **_adherence_row({c: int(r[c] or 0) for c in OBLIGATION_COUNTS}),
            "suppressed": False,
        }
        for r in named
    ]
    report.summary = {"managers_shown": len(report.rows), "managers_suppressed": hidden}
    return report


# -- ownership ---------------------------------------------------------------------------------

CHECKINS = ("checkins",)


def _ownership_row(counts: dict[str, int]) -> dict[str, Any]:
    return {
        "checkins": counts["checkins"],
        "employee_initiated": counts["checkins_employee_initiated"],
        "employee_initiated_pct": pct(counts["checkins_employee_initiated"], counts["checkins"]),
    }


async def ownership(q: Queries, scope: Scope, period: Period, minimum: int) -> Report:
    groups = SmallGroups(q, minimum)
    unit = scope.org_unit_id
    previous = period.previous()
    trend = period.trend_months()
    columns = {
        "checkins": "Check-ins held.",
        "employee_initiated": "Of which the employee initiated.",
        "employee_initiated_pct": "Share initiated by the employee, %.",
    }
    report = Report(
        "ownership",
        await _scope_json(groups, scope),
        _period_json(period),
        {},
        {"month": "YYYY-MM (UTC).", **columns, "suppressed": SUPPRESSED_COLUMN},
        [],
        previous_period=_period_json(previous),
    )
    months = sorted({*period.months, *previous.months, *trend})
    await groups.prepare(CHECKINS, [unit], months)
    rows = await q.monthly([unit], months)
    if await groups.period(CHECKINS, unit, period):
        now = _sum_months(rows, unit, period.months)
        before_share = None
        if await groups.period(CHECKINS, unit, previous):
            before = _sum_months(rows, unit, previous.months)
            before_share = share(before["checkins_employee_initiated"], before["checkins"])
        now_share = share(now["checkins_employee_initiated"], now["checkins"])
        report.summary = {
            **_ownership_row(now),
            "previous_employee_initiated_pct": shown(before_share),
            "change_pp": change(now_share, before_share),
        }
    else:
        report.suppressed = True
        report.summary = _blank_summary([*columns, "previous_employee_initiated_pct", "change_pp"])
    for m in trend:
        ok, _ = await groups.month(CHECKINS, unit, m)
        values = (
            {**_ownership_row(_sum_months(rows, unit, [m])), "suppressed": False}
            if ok
            else _hidden(list(columns))
        )
        report.rows.append({"month": m, **values})
    return report


# -- feedback ------------------------------------------------------------------------------------

FEEDBACK = ("feedback_given", "feedback_received")


def _feedback_row(counts: dict[str, int], people: int | None, months: int) -> dict[str, Any]:
    # Per person only where the headcount is shown: a rate and its count give the headcount.
    per = (people or 0) * months
    return {
        "feedback_given": counts["feedback_given"],
        "feedback_received": counts["feedback_received"],
        "given_per_person_per_month": ratio(counts["feedback_given"], per),
        "received_per_person_per_month": ratio(counts["feedback_received"], per),
        "praise_pct": pct(counts["feedback_praise"], counts["feedback_given"]),
        "requested_pct": pct(counts["feedback_requested"], counts["feedback_given"]),
    }


FEEDBACK_COLUMNS = {
    "feedback_given": "Feedback given by the unit's people in the period.",
    "feedback_received": "Feedback received by them.",
    "given_per_person_per_month": "Given / headcount / months.",
    "received_per_person_per_month": "Received / headcount / months.",
    "praise_pct": "Share of given feedback that was praise, %.",
    "requested_pct": "Share of given feedback that had been asked for, %.",
}


async def feedback(q: Queries, scope: Scope, period: Period, minimum: int) -> Report:
    groups = SmallGroups(q, minimum)
    report = Report(
        "feedback",
        await _scope_json(groups, scope),
        _period_json(period),
        {},
        {
            "org_unit_id": "The unit (its whole subtree).",
            "name": "Its name.",
            "people": "Current headcount (null when that is a small group).",
            **FEEDBACK_COLUMNS,
            "suppressed": SUPPRESSED_COLUMN,
        },
        [],
    )
    await groups.prepare(FEEDBACK, [scope.org_unit_id], period.months)
    if not await groups.period(FEEDBACK, scope.org_unit_id, period):
        report.suppressed = True
        report.summary = _blank_summary(list(FEEDBACK_COLUMNS))
        return report
    children = await _breakdown(q, scope.org_unit_id)
    ids = [c["org_unit_id"] for c in children]
    await groups.prepare(FEEDBACK, ids, period.months)
    rows = await q.monthly([scope.org_unit_id, *ids], period.months)
    months = len(period.months)
    report.summary = _feedback_row(
        _sum_months(rows, scope.org_unit_id, period.months),
        await groups.headcount(scope.org_unit_id),
        months,
    )
    out = []
    for child in children:
        unit = child["org_unit_id"]
        head = {"org_unit_id": unit, "name": child["name"] or unit}
        if await groups.period(FEEDBACK, unit, period):
            people = await groups.headcount(unit)
            values = _feedback_row(_sum_months(rows, unit, period.months), people, months)
            out.append({**head, "people": people, **values, "suppressed": False})
        else:
            out.append({**head, **_hidden(["people", *FEEDBACK_COLUMNS])})
    out.sort(key=lambda r: (r["suppressed"], r["given_per_person_per_month"] or 0, r["name"]))
    report.rows = out
    return report


# -- goals ---------------------------------------------------------------------------------------

BUCKETS = ["progress_0_20", "progress_20_40", "progress_40_60", "progress_60_80", "progress_80_100"]


async def goals(q: Queries, scope: Scope, period: Period, minimum: int) -> Report:
    groups = SmallGroups(q, minimum)
    report = Report(
        "goals",
        await _scope_json(groups, scope),
        _period_json(period),
        {},
        {
            "bucket": "Progress range.",
            "goals": "Goals with progress in that range.",
            "share_pct": "Share of all counted goals, %.",
        },
        [],
    )
    summary_keys = [
        "goals",
        "average_progress_pct",
        "average_confidence_pct",
        "on_track",
        "at_risk",
        "off_track",
        "achieved",
        "abandoned",
        "stale",
        "at_risk_or_off_track_pct",
        "stale_pct",
    ]
    if not await groups.goals(scope.org_unit_id, period):
        report.suppressed = True
        report.summary = _blank_summary(summary_keys)
        return report
    rows = await q.goals([scope.org_unit_id], period.start, period.end)
    counts = total(rows, UNIT_GOAL_COUNTS)
    n = counts["goals"]
    report.summary = {
        "goals": n,
        "average_progress_pct": pct(counts["progress_bp_sum"], n * BASIS_POINTS),
        "average_confidence_pct": pct(
            counts["confidence_bp_sum"], counts["confidence_n"] * BASIS_POINTS
        ),
        **{
            s: counts[s]
            for s in ("on_track", "at_risk", "off_track", "achieved", "abandoned", "stale")
        },
        "at_risk_or_off_track_pct": pct(counts["at_risk"] + counts["off_track"], n),
        "stale_pct": pct(counts["stale"], n),
    }
    report.rows = [
        {
            "bucket": f"{b.split('_')[1]}-{b.split('_')[2]} %",
            "goals": counts[b],
            "share_pct": pct(counts[b], n),
        }
        for b in BUCKETS
    ]
    return report


async def goals_attention(
    q: Queries, scope: Scope, period: Period, minimum: int, limit: int | None
) -> Report:
    groups = SmallGroups(q, minimum)
    report = Report(
        "goals-attention",
        await _scope_json(groups, scope),
        _period_json(period),
        {},
        {
            "goal_id": "The goal.",
            "title": "Its title.",
            "owner": "Owner (person or unit).",
            "org_unit": "The unit it counts in.",
            "status": "on_track, at_risk, off_track, ...",
            "progress_pct": "Latest progress, %.",
            "confidence_pct": "Latest confidence, %.",
            "last_progress_at": "When progress was last recorded.",
            "stale": "True when the goal went stale.",
            "period_end": "End of the goal's period.",
        },
        [],
    )
    if not await groups.goals(scope.org_unit_id, period):
        report.suppressed = True
        return report
    rows = await q.goals_needing_attention(
        scope.org_unit_id,
        period.start,
        period.end,
        limit or 10_000,
        small=scope.people <= SMALL_SCOPE,
    )
    people = await q.names(r["owner_id"] for r in rows if r["owner_type"] == "person")
    units = await q.unit_names(
        [r["org_unit_id"] for r in rows]
        + [r["owner_id"] for r in rows if r["owner_type"] == "org_unit"]
    )
    report.rows = [
        {
            "goal_id": r["goal_id"],
            "title": r["title"],
            "owner": people.get(r["owner_id"]) or units.get(r["owner_id"]) or r["owner_id"],
            "org_unit": units.get(r["org_unit_id"], r["org_unit_id"]),
            "status": r["status"],
            "progress_pct": pct(r["progress_bp"] or 0, BASIS_POINTS),
            "confidence_pct": None
            if r["confidence_bp"] is None
            else pct(r["confidence_bp"], BASIS_POINTS),
            "last_progress_at": r["last_progress_at"],
            "stale": bool(r["is_stale"]),
            "period_end": r["period_end"],
        }
        for r in rows
    ]
    report.summary = {"goals": len(report.rows)}
    return report


# -- workload pulse -------------------------------------------------------------------------------

PULSE = ("pulse",)
PULSE_COLUMNS = {
    "responses": "Pulse answers.",
    "average": "Average answer (1-5; 3 is about right).",
    "too_much_pct": "Share of answers 4-5, %.",
    "too_little_pct": "Share of answers 1-2, %.",
}


def _pulse_row(counts: dict[str, int]) -> dict[str, Any]:
    n = counts["pulse_responses"]
    return {
        "responses": n,
        "average": ratio(counts["pulse_sum"], n),
        "too_much_pct": pct(counts["pulse_4"] + counts["pulse_5"], n),
        "too_little_pct": pct(counts["pulse_1"] + counts["pulse_2"], n),
        "suppressed": False,
    }


def _average(counts: dict[str, int]) -> float | None:
    n = counts["pulse_responses"]
    return counts["pulse_sum"] / n if n else None


async def workload_pulse(q: Queries, scope: Scope, period: Period, minimum: int) -> Report:
    groups = SmallGroups(q, minimum)
    unit = scope.org_unit_id
    previous = period.previous()
    trend = period.trend_months()
    report = Report(
        "workload-pulse",
        await _scope_json(groups, scope),
        _period_json(period),
        {},
        {"month": "YYYY-MM (UTC).", **PULSE_COLUMNS, "suppressed": SUPPRESSED_COLUMN},
        [],
        previous_period=_period_json(previous),
    )
    months = sorted({*period.months, *previous.months, *trend})
    await groups.prepare(PULSE, [unit], months)
    rows = await q.monthly([unit], months)
    if await groups.period(PULSE, unit, period):
        now = _sum_months(rows, unit, period.months)
        before_average = None
        if await groups.period(PULSE, unit, previous):
            before_average = _average(_sum_months(rows, unit, previous.months))
        report.summary = {
            **{k: v for k, v in _pulse_row(now).items() if k != "suppressed"},
            "previous_average": shown(before_average, 2),
            "change": change(_average(now), before_average),
        }
    else:
        report.suppressed = True
        report.summary = _blank_summary([*PULSE_COLUMNS, "previous_average", "change"])
    for m in trend:
        ok, _ = await groups.month(PULSE, unit, m)
        values = _pulse_row(_sum_months(rows, unit, [m])) if ok else _hidden(list(PULSE_COLUMNS))
        report.rows.append({"month": m, **values})
    return report


# -- the unit picker ------------------------------------------------------------------------------


async def units(q: Queries, principal: Principal, minimum: int) -> Report:
    roots = await visible_roots(q, principal)
    if not roots:
        raise Forbidden("dashboards are for executives, HR and the heads of org units")
    groups = SmallGroups(q, minimum)
    all_units = await q.all_units()
    children: dict[str | None, list[Row]] = {}
    known = {u["org_unit_id"] for u in all_units}
    for u in all_units:
        parent = u["parent_id"] if u["parent_id"] in known else None
        children.setdefault(parent, []).append(u)
    for siblings in children.values():
        siblings.sort(key=lambda u: ((u["name"] or "").lower(), u["org_unit_id"]))
    by_id = {u["org_unit_id"]: u for u in all_units}
    ordered: list[tuple[Row, int]] = []

    def walk(unit: Row, depth: int, seen: set[str]) -> None:
        if unit["org_unit_id"] in seen:
            return
        seen.add(unit["org_unit_id"])
        ordered.append((unit, depth))
        for child in children.get(unit["org_unit_id"], []):
            walk(child, depth + 1, seen)

    seen: set[str] = set()
    starts = children.get(None, []) if TENANT in roots else [by_id[r] for r in roots if r in by_id]
    for start in starts:
        walk(start, 1 if TENANT in roots else 0, seen)
    rows = []
    if TENANT in roots:
        rows.append(
            {
                "org_unit_id": TENANT,
                "name": "Whole organisation",
                "parent_id": None,
                "depth": 0,
                "people": await groups.headcount(TENANT),
            }
        )
    for unit, depth in ordered:
        rows.append(
            {
                "org_unit_id": unit["org_unit_id"],
                "name": unit["name"] or unit["org_unit_id"],
                "parent_id": unit["parent_id"],
                "depth": depth,
                "people": await groups.headcount(unit["org_unit_id"]),
            }
        )
    return Report(
        "units",
        {"org_unit_id": roots[0], "name": "", "people": None},
        None,
        {"units": len(rows)},
        {
            "org_unit_id": "The unit ('*' is the whole organisation).",
            "name": "Its name.",
            "parent_id": "The enclosing unit.",
            "depth": "Depth in the tree shown (0: top).",
            "people": "Current headcount of its subtree (null when that is a small group).",
        },
        rows,
    )
