"""Who may do what in the check-ins service: one table, by the caller's relationship to the person.

Relationships come from the people directory and the token only
(:func:`rhythm_shared.kit.access.relationships`); ids named in a request never widen them. The
subject of each operation is:

* check-ins, reviews, their texts and action items: the check-in's employee. For one check-in,
  ``MANAGER`` is the manager of that conversation (:func:`to_checkin`): the employee's manager
  in the directory when it was scheduled, following the directory while it is open; after it
  was held, the manager who held it. A directory manager who was not in that conversation counts
  as ``MANAGER_CHAIN`` for it (above the employee, not in the room).
* feedback: the receiver and, for reading, either of its two people (``SELF`` to either);
* a feedback request: the person asked (``from_id``);
* obligations: the employee who owes them;
* cadence policies and tenant settings: nobody in particular (tenant-wide: roles decide;
  for ``list_cadence_policies`` a person who manages someone in the directory is ``MANAGER``).

Executives see aggregates (reporting); nothing here grants them an individual's data.
"""

from __future__ import annotations

from collections.abc import Mapping

from rhythm_shared.kit import access as kit_access
from rhythm_shared.kit.access import Policy, Relationship
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.ports import Directory

R = Relationship

#: Anyone in the tenant acting as a person, other than the subject themselves.
SOMEONE_ELSE = frozenset({R.MANAGER, R.MANAGER_CHAIN, R.UNIT_HEAD, R.PEER})
PARTICIPANTS = frozenset({R.SELF, R.MANAGER})

POLICY: Policy = {
    # Check-ins and reviews.
    "schedule_checkin": PARTICIPANTS,
    "reschedule_checkin": PARTICIPANTS,
    "cancel_checkin": PARTICIPANTS,
    "list_checkins": frozenset({R.SELF, R.MANAGER, R.MANAGER_CHAIN, R.HR_ADMIN}),
    # That a check-in exists, when, and its state: not what was said.
    "read_checkin": frozenset({R.SELF, R.MANAGER, R.MANAGER_CHAIN, R.HR_ADMIN}),
    # Reflection, pulse, GROW notes, free notes and action items (their text).
    "read_checkin_texts": PARTICIPANTS,
    # A review's texts where the tenant set reviews_visible_to_manager_chain.
    "read_shared_review_texts": frozenset({R.SELF, R.MANAGER, R.MANAGER_CHAIN}),
    "prepare_checkin": PARTICIPANTS,
    "submit_reflection": frozenset({R.SELF}),
    "record_notes": PARTICIPANTS,
    "add_action_item": PARTICIPANTS,
    "set_action_item_done": PARTICIPANTS,
    "complete_checkin": PARTICIPANTS,
    # Feedback: anyone to anyone else; its text is for its two people only.
    "give_feedback": SOMEONE_ELSE,
    "read_feedback": frozenset({R.SELF}),
    "list_feedback": frozenset({R.SELF}),
    "request_feedback": SOMEONE_ELSE,
    "list_feedback_requests": frozenset({R.SELF}),
    # Cadence.
    "list_obligations": frozenset({R.SELF, R.MANAGER, R.MANAGER_CHAIN, R.HR_ADMIN}),
    "set_cadence_policy": frozenset({R.HR_ADMIN}),
    "list_cadence_policies": frozenset({R.HR_ADMIN, R.EXECUTIVE, R.MANAGER}),
    "set_tenant_settings": frozenset({R.HR_ADMIN}),
}

#: Every HTTP route -> the operation it performs; the matrix test fails for a route missing here.
ROUTES: Mapping[tuple[str, str], str] = {
    ("POST", "/v1/checkins"): "schedule_checkin",
    ("GET", "/v1/checkins"): "list_checkins",
    ("PUT", "/v1/checkins/settings"): "set_tenant_settings",
    ("GET", "/v1/checkins/{checkin_id}"): "read_checkin",
    ("PATCH", "/v1/checkins/{checkin_id}"): "reschedule_checkin",
    ("POST", "/v1/checkins/{checkin_id}/cancel"): "cancel_checkin",
    ("GET", "/v1/checkins/{checkin_id}/preparation"): "prepare_checkin",
    ("PUT", "/v1/checkins/{checkin_id}/reflection"): "submit_reflection",
    ("PUT", "/v1/checkins/{checkin_id}/notes"): "record_notes",
    ("POST", "/v1/checkins/{checkin_id}/action-items"): "add_action_item",
    ("PUT", "/v1/checkins/action-items/{item_id}"): "set_action_item_done",
    ("POST", "/v1/checkins/{checkin_id}/complete"): "complete_checkin",
    ("POST", "/v1/feedback"): "give_feedback",
    ("GET", "/v1/feedback"): "list_feedback",
    ("POST", "/v1/feedback/requests"): "request_feedback",
    ("GET", "/v1/feedback/requests"): "list_feedback_requests",
    ("GET", "/v1/feedback/{feedback_id}"): "read_feedback",
    ("PUT", "/v1/cadence/policies/{scope}/{scope_id}"): "set_cadence_policy",
    ("GET", "/v1/cadence/policies"): "list_cadence_policies",
    ("GET", "/v1/cadence/obligations"): "list_obligations",
}


def to_checkin(
    rels: frozenset[Relationship], caller: str, *, as_person: bool, checkin_manager_id: str
) -> frozenset[Relationship]:
    """The caller's relationships to one check-in, from their relationships to its employee:
    ``MANAGER`` is the manager of that conversation (see the module docstring)."""
    out = set(rels)
    if as_person and caller == checkin_manager_id and R.SELF not in out:
        out.discard(R.PEER)
        out.add(R.MANAGER)
    elif R.MANAGER in out:
        out.discard(R.MANAGER)
        out.add(R.MANAGER_CHAIN)
    return frozenset(out)


def text_operation(*, review: bool, shared_with_chain: bool) -> str:
    """Which row of the table decides whether a check-in's texts are shown."""
    return "read_shared_review_texts" if review and shared_with_chain else "read_checkin_texts"


async def relationships(
    directory: Directory, principal: Principal, subject_id: str | None
) -> frozenset[Relationship]:
    """The kit's :func:`~rhythm_shared.kit.access.relationships`, for any directory of the
    tenant (the SQL one or the in-memory one of unit tests)."""
    return await kit_access.relationships(directory, principal, subject_id)
