"""The contract's ``Email`` answers exactly as pydantic's ``EmailStr``, only faster.

Every consumer decodes every ``EmployeeUpserted``; the common shape of a work address skips
email-validator's full RFC 5322/IDNA path. These properties hold the short cut to the full path:
the same normalised address, or the same refusal, for generated addresses in and around that
shape as well as for arbitrary text.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import EmailStr, TypeAdapter, ValidationError

from rhythm_shared.contracts.v1.values import _SIMPLE_EMAIL, Email

FAST = TypeAdapter(Email)
FULL = TypeAdapter(EmailStr)


def outcome(adapter: TypeAdapter[str], value: object) -> str:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        return f"invalid: {exc.errors()[0]['msg']}"


# Labels near the edges the short cut checks: hyphens, digits, case, length, special-use names.
LABEL = st.one_of(
    st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,8}[A-Za-z0-9])?", fullmatch=True),
    st.sampled_from(["test", "local", "localhost", "invalid", "onion", "arpa", "xn--bcher-kva"]),
    st.sampled_from(["a" * 63, "a" * 64, "ab--cd", "-a", "a-", "123", "COM"]),
)
LOCAL = st.one_of(
    st.from_regex(r"[A-Za-z0-9_%+.-]{1,12}", fullmatch=True),
    st.sampled_from(["x" * 64, "x" * 65, "a..b", ".a", "a.", '"q"', "jürgen", "a b"]),
)
ADDRESS = st.builds(
    lambda local, labels, pad: f"{pad}{local}@{'.'.join(labels)}{pad}",
    LOCAL,
    st.lists(LABEL, min_size=1, max_size=5),
    st.sampled_from(["", " ", "\t"]),
)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(ADDRESS)
@example("Ana.X@ACME.Example.COM")
@example("a@sub.x.TEST")
@example("a@x--y.com")
@example("Ana <ana@x.com>")
@example("x" * 64 + "@" + ".".join(["a" * 63] * 3) + ".com")
def test_generated_addresses_answer_as_emailstr(address: str) -> None:
    assert outcome(FAST, address) == outcome(FULL, address)


@settings(max_examples=300)
@given(st.from_regex(_SIMPLE_EMAIL, fullmatch=True))
def test_every_address_the_short_cut_can_see_answers_as_emailstr(address: str) -> None:
    assert outcome(FAST, address) == outcome(FULL, address)


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=40), st.emails().map(str)))
def test_any_text_answers_as_emailstr(value: str) -> None:
    assert outcome(FAST, value) == outcome(FULL, value)


@pytest.mark.parametrize("value", [5, None, 1.5, ["a@x.com"], {"a": 1}])
def test_what_is_not_a_string_is_refused_as_emailstr_refuses_it(value: object) -> None:
    assert outcome(FAST, value) == outcome(FULL, value)
    assert outcome(FAST, value).startswith("invalid")
