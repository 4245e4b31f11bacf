"""What fuzzing found once, pinned: each case answered a 5xx or an unclear 4xx before its fix."""

from __future__ import annotations

import pytest
import requests

from tests.fuzz.fleet import Fleet, Org, bearer

pytestmark = pytest.mark.kafka


def assert_clear_422(response: requests.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert any(field in error["loc"] and error["msg"] for error in detail), detail


def test_a_cadence_policy_scope_id_that_is_not_an_identifier_is_a_422(
    fleet: Fleet, org: Org
) -> None:
    # It was stored, then CadencePolicyChanged (scope_id: Identifier) refused it: a 500.
    response = requests.put(
        f"{fleet.url('checkins')}/v1/cadence/policies/org_unit/W%C3%A5%C3%84%F0%A1%9D%B2",
        json={"rules": []},
        headers=bearer(org.tenant, org.emp("mgr")),
        timeout=30,
    )
    assert_clear_422(response, "scope_id")
