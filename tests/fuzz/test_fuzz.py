"""Schemathesis over every operation of every service's OpenAPI: never a 5xx, every 4xx clear.

The five services run together on real Kafka (fresh SQLite databases and topic namespace, see
``fleet.py``) with a small organisation seeded through their APIs. Each operation is fuzzed with
a bearer token that holds every role (so requests get past authorisation) in three runs:
positive data, positive data with the path parameters set to ids that exist (so handlers reach
their rules, not only their 404s), and negative data (what the schema forbids: must be a 4xx).

Bounded: ``RHYTHM_FUZZ_EXAMPLES`` examples per operation and run (default 20), derandomized so a
failure in CI reproduces locally. Nothing is excluded: the development clock endpoint is not
mounted outside ``environment=development`` and ``/metrics`` is not part of the OpenAPI.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import CheckContext
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.fuzz.fleet import Fleet, Org, bearer, openapi, operations

MAX_EXAMPLES = int(os.environ.get("RHYTHM_FUZZ_EXAMPLES", "20"))

# schemathesis' own strategies trip this Hypothesis deprecation; it is not about these tests.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")


@cache
def schema(service: str) -> OpenApiSchema:
    return schemathesis.openapi.from_dict(openapi(service))


def no_server_error(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """Never a 5xx; except the readiness probe, whose 503 means "not ready" (broker away)."""
    if case.operation.path == "/readyz" and response.status_code == 503:
        return None
    assert response.status_code < 500, f"{response.status_code}: {response.content[:500]!r}"
    return None


def clear_client_error(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """A 4xx says what is wrong: JSON with a non-empty ``detail`` (text, or field errors each
    with a location and a message), and never a stack trace."""
    if not 400 <= response.status_code < 500:
        return None
    text = response.content.decode("utf-8", "replace")
    assert "Traceback" not in text, f"stack trace in a {response.status_code}: {text[:500]}"
    try:
        body = json.loads(text)
    except ValueError:
        status = response.status_code
        raise AssertionError(f"{status} without a JSON body: {text[:300]!r}") from None
    assert isinstance(body, dict), f"{response.status_code} body is not an object: {text[:300]}"
    detail = body.get("detail")
    if isinstance(detail, str):
        assert detail.strip(), f"{response.status_code} with an empty detail"
        return None
    assert isinstance(detail, list), f"{response.status_code} without a detail: {text[:300]}"
    assert detail, f"{response.status_code} with an empty list of errors"
    for error in detail:
        assert isinstance(error, dict), f"field error is not an object: {error!r}"
        assert isinstance(error.get("msg"), str), f"no msg: {error!r}"
        assert error["msg"].strip(), f"empty msg: {error!r}"
        assert isinstance(error.get("loc"), list), f"no loc: {error!r}"
    return None


def fuzz(strategy: Any, call: Callable[[Case[Any]], None], max_examples: int) -> None:
    @settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Case[Any]) -> None:
        call(case)

    run()


@pytest.mark.kafka
@pytest.mark.parametrize(("service", "method", "path"), operations())
def test_an_operation_never_fails_on_the_server_and_every_4xx_says_why(
    fleet: Fleet, org: Org, service: str, method: str, path: str
) -> None:
    operation = schema(service)[path][method.upper()]
    base_url = fleet.url(service)
    session = requests.Session()

    def call(case: Case[Any]) -> None:
        headers = bearer(org.tenant, org.emp("mgr"))
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
        case.validate_response(
            response,
            checks=[no_server_error, clear_client_error],
            headers=headers,
        )

    names = [p.name for p in operation.path_parameters]
    known = {name: org.ids[name] for name in names if name in org.ids}
    fuzz(operation.as_strategy(GenerationMode.POSITIVE), call, MAX_EXAMPLES)
    if known:
        fuzz(
            operation.as_strategy(GenerationMode.POSITIVE, path_parameters=known),
            call,
            MAX_EXAMPLES,
        )
    with contextlib.suppress(Unsatisfiable):  # nothing to break: no parameters, no body
        fuzz(operation.as_strategy(GenerationMode.NEGATIVE), call, MAX_EXAMPLES // 2 or 1)
