"""The goals access policy as a table: every route has a row, and the rows say what they mean."""

from __future__ import annotations

import pytest

from rhythm_goals.domain import access
from rhythm_goals.main import Settings, build
from rhythm_shared.contracts.v1 import OwnerType, Visibility
from rhythm_shared.kit.access import KIT_ROUTES, Relationship, allowed

R = Relationship
PEOPLE_OVER_A_PERSON = (R.MANAGER, R.MANAGER_CHAIN, R.UNIT_HEAD)


def _served_routes() -> set[tuple[str, str]]:
    app = build(Settings(database_url="sqlite+aiosqlite://", environment="development"))
    paths = app.openapi()["paths"]
    return {(method.upper(), path) for path, methods in paths.items() for method in methods}


def test_every_route_the_service_serves_has_an_operation_with_a_policy_row() -> None:
    served = _served_routes() - KIT_ROUTES
    assert served == set(access.ROUTES)
    assert {op for op in access.ROUTES.values() if op not in access.POLICY} == set()


def test_an_operation_without_a_row_grants_nothing() -> None:
    assert not allowed(access.POLICY, "delete_everything", frozenset(R))


def test_a_private_goal_is_read_by_the_owner_those_above_them_and_hr_but_no_one_else() -> None:
    operation = access.read_operation(OwnerType.PERSON, Visibility.PRIVATE)
    for rel in (R.SELF, *PEOPLE_OVER_A_PERSON, R.HR_ADMIN):
        assert allowed(access.POLICY, operation, frozenset({rel})), rel
    for rel in (R.PEER, R.EXECUTIVE, R.INTEGRATION):
        assert not allowed(access.POLICY, operation, frozenset({rel})), rel


def test_a_tenant_visible_goal_is_read_by_everyone_in_the_tenant() -> None:
    operation = access.read_operation(OwnerType.PERSON, Visibility.TENANT)
    assert all(allowed(access.POLICY, operation, frozenset({rel})) for rel in R)


def test_progress_comments_are_private_even_on_a_tenant_visible_goal() -> None:
    operation = access.comments_operation(OwnerType.PERSON)
    assert allowed(access.POLICY, operation, frozenset({R.MANAGER}))
    assert not allowed(access.POLICY, operation, frozenset({R.PEER}))
    assert not allowed(access.POLICY, operation, frozenset({R.EXECUTIVE}))


@pytest.mark.parametrize(
    "operation",
    [
        access.UPDATE_GOAL,
        access.RECORD_PROGRESS,
        access.CHANGE_STATUS,
        access.ARCHIVE_GOAL,
        access.ALIGN_GOAL,
    ],
)
def test_a_persons_goal_is_changed_by_them_those_above_them_and_hr_only(operation: str) -> None:
    on_person = access.write_operation(operation, OwnerType.PERSON)
    for rel in (R.SELF, *PEOPLE_OVER_A_PERSON, R.HR_ADMIN):
        assert allowed(access.POLICY, on_person, frozenset({rel})), rel
    for rel in (R.PEER, R.EXECUTIVE, R.INTEGRATION):
        assert not allowed(access.POLICY, on_person, frozenset({rel})), rel
    # A company goal is HR's and the executives'.
    on_company = access.write_operation(operation, OwnerType.COMPANY)
    assert allowed(access.POLICY, on_company, frozenset({R.EXECUTIVE}))
    assert not allowed(access.POLICY, on_company, frozenset({R.PEER}))


def test_creating_a_goal_for_someone_else_needs_a_relationship_to_them() -> None:
    assert access.create_operation(OwnerType.PERSON, frozenset({R.SELF})) == "create_goal_for_self"
    for_someone = access.create_operation(OwnerType.PERSON, frozenset({R.PEER}))
    assert not allowed(access.POLICY, for_someone, frozenset({R.PEER}))
    # The body's owner_id says whom; only the directory says whether the caller manages them.
    for rel in (*PEOPLE_OVER_A_PERSON, R.HR_ADMIN):
        assert allowed(access.POLICY, for_someone, frozenset({rel})), rel
    for rel in (R.EXECUTIVE, R.INTEGRATION):
        assert not allowed(access.POLICY, for_someone, frozenset({rel})), rel


def test_unit_goals_are_set_by_heads_above_and_hr_and_company_goals_by_hr_and_executives() -> None:
    unit = access.create_operation(OwnerType.ORG_UNIT, frozenset({R.PEER}))
    assert allowed(access.POLICY, unit, frozenset({R.UNIT_HEAD}))
    assert not allowed(access.POLICY, unit, frozenset({R.PEER}))
    assert not allowed(access.POLICY, access.BULK_CREATE_GOALS, frozenset({R.PEER}))
    company = access.create_operation(OwnerType.COMPANY, frozenset({R.PEER}))
    assert allowed(access.POLICY, company, frozenset({R.EXECUTIVE}))
    assert not allowed(access.POLICY, company, frozenset({R.UNIT_HEAD}))


def test_a_read_is_not_a_write() -> None:
    with pytest.raises(ValueError, match="not a write"):
        access.write_operation(access.READ_GOAL, OwnerType.PERSON)
