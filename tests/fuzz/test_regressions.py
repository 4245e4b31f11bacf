"""What fuzzing found once, pinned: each case answered a 5xx or an unclear 4xx before its fix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.fuzz.fleet import Fleet, Org, bearer
from tests.kit.test_http_limits import WRITES

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


def test_a_display_name_with_cr_lf_is_a_422_on_the_real_server(fleet: Fleet, org: Org) -> None:
    # It was accepted, and the email headers built from it later aborted a dispatch round.
    response = requests.put(
        f"{fleet.url('people')}/v1/people/employees/{org.emp('ana')}",
        json={
            "email": "ana@acme.example.com",
            "display_name": "Ana\r\nBcc: everyone@acme.example.com",
            "org_unit_id": "ou-x",
            "time_zone": "Europe/Amsterdam",
            "locale": "nl",
            "hired_on": "2023-09-01",
        },
        headers=bearer(org.tenant, "hr-sync", ["integration"]),
        timeout=30,
    )
    assert_clear_422(response, "display_name")


# Reporting takes no bodies outside development (its only write is the development clock).
@pytest.mark.parametrize("service", sorted(set(WRITES) - {"reporting"}))
def test_an_oversized_body_is_a_413_on_the_real_server(
    fleet: Fleet, org: Org, service: str
) -> None:
    # Bodies of any size were read into memory and parsed before a model refused them.
    def chunks() -> Iterator[bytes]:
        for _ in range(64):  # 4 MiB, streamed without a Content-Length (chunked)
            yield b" " * 65_536

    method, path = WRITES[service]
    for body in (b" " * (1024 * 1024), chunks()):
        response = requests.request(
            method,
            f"{fleet.url(service)}{path}",
            data=body,
            headers={**org.auth("mgr", ["hr_admin"]), "Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 413, response.text
        assert "larger than this endpoint accepts" in response.json()["detail"]
