"""Who may see which dashboards: one table, from the caller's relationship to the unit.

Dashboards show aggregates only, so the subject of a request is an org unit, not a person:

* executives and hr_admin see the whole organisation ('*') and every unit;
* a person sees the units they head and everything below them (``unit_head``: head of the unit
  or of a unit above it) — their reports as HR placed them. Managing people in a unit one does
  not head grants nothing here, and neither does the ``manager`` role;
* anyone else (integrations included) sees nothing.

Who heads what comes from the kit's people directory (last writer wins by ``occurred_at``), fed
by reporting's own ingest in the same transaction as the read model — not from the read model's
dimensions, whose history answers "what counted where", not "who may look".
"""

from __future__ import annotations

from collections.abc import Mapping

from rhythm_shared.kit.access import Policy, Relationship

EXECUTIVE = Relationship.EXECUTIVE
HR_ADMIN = Relationship.HR_ADMIN
UNIT_HEAD = Relationship.UNIT_HEAD

#: The whole organisation's figures, over and above ``read_dashboard``.
WHOLE_ORGANISATION = "read_whole_organisation"

POLICY: Policy = {
    "read_dashboard": frozenset({EXECUTIVE, HR_ADMIN, UNIT_HEAD}),
    WHOLE_ORGANISATION: frozenset({EXECUTIVE, HR_ADMIN}),
    # The unit picker: answers with the units the caller may look at (for a unit head, theirs).
    "list_units": frozenset({EXECUTIVE, HR_ADMIN, UNIT_HEAD}),
    # The page itself is static; its data comes through the routes above with the caller's token.
    "open_dashboard_page": frozenset(Relationship),
}

_METRICS = (
    "cadence-adherence",
    "cadence-adherence/by-unit",
    "manager-adherence",
    "ownership",
    "feedback",
    "goals",
    "goals/attention",
    "workload-pulse",
)

#: Every HTTP route -> the operation it performs; the matrix test fails for a route missing here.
ROUTES: Mapping[tuple[str, str], str] = {
    **{("GET", f"/v1/dashboards/{m}"): "read_dashboard" for m in _METRICS},
    **{("GET", f"/v1/dashboards/{m}/export.csv"): "read_dashboard" for m in _METRICS},
    ("GET", "/v1/dashboards/units"): "list_units",
    ("GET", "/v1/dashboards/units/export.csv"): "list_units",
    ("GET", "/dashboard"): "open_dashboard_page",
}
