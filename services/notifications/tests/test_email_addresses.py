"""The everyday-address shortcut of the email adapter accepts nothing the full checks refuse,
and the To header it writes is the one the standard library's ``Address`` writes."""

from __future__ import annotations

from email.headerregistry import Address

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from hypothesis import given
from hypothesis import strategies as st

from rhythm_notifications.adapters.email import (
    _EVERYDAY_ADDRESS,
    _PLAIN_NAME,
    _checked,
    _everyday,
    _header,
    _recipient,
    check_address,
    check_display_name,
)

everyday_shaped = st.from_regex(_EVERYDAY_ADDRESS, fullmatch=True)
label = st.one_of(
    st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,8}[A-Za-z0-9])?", fullmatch=True),
    st.sampled_from(["xn--p1ai", "xn--zz", "ab--cd", "a" * 63, "a" * 64]),
)
#: Hosts under a special-use name, or with a "--" label, or a long one: the shortcut must refuse
#: them to the full check (which refuses the special-use ones and the over-long ones itself).
near_misses = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join([*labels, tld])}",
    st.from_regex(r"[A-Za-z0-9_+-]{1,70}", fullmatch=True),
    st.lists(label, min_size=1, max_size=4),
    st.sampled_from([*SPECIAL_USE_DOMAIN_NAMES, "TEST", "Local", "com", "xn--p1ai"]),
)


def _agrees_with_the_full_check(address: str) -> None:
    if _everyday(address):
        assert _checked(address) is None, address
    assert (check_address(address) is None) == (_checked(address) is None)


@given(st.one_of(everyday_shaped, st.emails(), st.text(max_size=80)))
def test_the_shortcut_accepts_only_what_the_full_check_accepts(address: str) -> None:
    _agrees_with_the_full_check(address)


@given(near_misses)
def test_near_misses_go_to_the_full_check(address: str) -> None:
    _agrees_with_the_full_check(address)


def test_everyday_addresses_take_the_shortcut_and_special_use_ones_do_not() -> None:
    assert _everyday("ann.lee+rhythm@mail.example.com")
    assert _everyday("o_brien-2@Sub.Example.ORG")
    for address in ["ann@printer.local", "ann@host.TEST", "ann@localhost", "ann@xn--p1ai.com"]:
        assert not _everyday(address)
    assert check_address("ann@printer.local") is not None
    assert not _everyday("a" * 250 + "@example.com")
    assert check_address("a" * 250 + "@example.com") is not None


@given(
    st.one_of(st.from_regex(_PLAIN_NAME, fullmatch=True), st.text(max_size=40)),
    st.one_of(everyday_shaped, st.emails()),
)
def test_the_to_header_is_the_one_address_writes(name: str, address: str) -> None:
    if check_address(address) is not None or check_display_name(name) is not None:
        return  # refused before a message is written
    expected = _header("To", Address(display_name=name, addr_spec=address))
    assert _header("To", _recipient(name, address)) == expected
