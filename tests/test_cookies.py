"""Unit tests of bevsession.cookies: iron-session's Set-Cookie header, byte for byte."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from bevsession.cookies import (
    MAX_COOKIE_LENGTH,
    CookieOptions,
    CookieTooLarge,
    destroy_cookie_header,
    set_cookie_header,
)
from bevsession.sealing import Sealer

PW = "correct horse battery staple 0123456789"
SEAL = (
    "Fe26.2*1*00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
    "*ABEiM0RVZneImaq7zN3u_w*LNvjYyxU1m87oCOGdY3b8XfJK-ShjU9OOA31ylX6kjs*1700086400000"
    "*ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
    "*GK9U5I6fe5ut6YLVWcR49m6GU93fpRiwTRz0kOhCkVI~2"
)


def test_save_header_matches_the_reference_string() -> None:
    assert set_cookie_header(SEAL, CookieOptions()) == (
        f"bevgenie_session={SEAL}; Max-Age=86340; Path=/; HttpOnly; Secure; SameSite=Lax"
    )


def test_destroy_header_matches_the_reference_string() -> None:
    assert destroy_cookie_header(CookieOptions()) == (
        "bevgenie_session=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax"
    )


@pytest.mark.parametrize(
    ("ttl", "max_age"), [(86400, 86340), (14 * 24 * 3600, 1209540), (61, 1), (0, 2147483647)]
)
def test_max_age_is_ttl_minus_the_seal_skew(ttl: int, max_age: int) -> None:
    options = CookieOptions(ttl=ttl)
    assert options.max_age == max_age
    assert f"; Max-Age={max_age};" in set_cookie_header(SEAL, options)
    assert "; Max-Age=0;" in destroy_cookie_header(options)


def test_attribute_order_and_optional_attributes() -> None:
    options = CookieOptions(
        name="sid", ttl=3600, domain="example.com", same_site="strict", http_only=False
    )
    assert set_cookie_header("v", options) == (
        "sid=v; Max-Age=3540; Domain=example.com; Path=/; Secure; SameSite=Strict"
    )
    bare = CookieOptions(secure=False, same_site=None, path=None, http_only=False)
    assert set_cookie_header("v", bare) == "bevgenie_session=v; Max-Age=86340"
    dev = CookieOptions(secure=False)
    assert (
        destroy_cookie_header(dev) == "bevgenie_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
    )
    none = CookieOptions(same_site="none")
    assert set_cookie_header("v", none).endswith("; Secure; SameSite=None")


def test_value_is_encoded_like_encode_uri_component() -> None:
    # a seal never needs escaping; anything else is escaped as JS would
    assert set_cookie_header(SEAL, CookieOptions()).startswith(f"bevgenie_session={SEAL};")
    header = set_cookie_header("a b;c=d/é!~*'()", CookieOptions(same_site=None))
    assert header.startswith("bevgenie_session=a%20b%3Bc%3Dd%2F%C3%A9!~*'();")


def test_size_limit_counts_the_whole_header() -> None:
    options = CookieOptions()
    overhead = len(set_cookie_header("", options))
    fits = "x" * (MAX_COOKIE_LENGTH - overhead)
    assert len(set_cookie_header(fits, options)) == MAX_COOKIE_LENGTH
    with pytest.raises(CookieTooLarge) as info:
        set_cookie_header(fits + "x", options)
    assert info.value.size == MAX_COOKIE_LENGTH + 1
    assert info.value.limit == MAX_COOKIE_LENGTH
    assert "4097" in str(info.value) and "4096" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_largest_session_json_that_fits_is_2847_bytes() -> None:
    """The reference's figure for ttl 86400 and these options (a 13-digit expiration)."""
    sealer = Sealer(PW, ttl=86400)
    options = CookieOptions()

    def data(json_bytes: int) -> dict[str, str]:
        return {"x": "a" * (json_bytes - len('{"x":""}'))}

    header = set_cookie_header(sealer.seal(data(2847)), options)
    assert len(header) <= MAX_COOKIE_LENGTH
    with pytest.raises(CookieTooLarge):
        set_cookie_header(sealer.seal(data(2848)), options)


@pytest.mark.parametrize(
    "changes",
    [
        {"name": ""},
        {"name": "a b"},
        {"name": "a;b"},
        {"name": "sé"},
        {"ttl": -1},
        {"ttl": 1},
        {"ttl": 60},
        {"ttl": 1.5},
        {"ttl": True},
        {"path": "/a;b"},
        {"path": "/é"},
        {"domain": "exa mple.com"},
        {"domain": ""},
        {"same_site": "lenient"},
        {"same_site": "none", "secure": False},
    ],
)
def test_invalid_options_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        CookieOptions(**changes)


def test_options_are_frozen() -> None:
    options = CookieOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.ttl = 5  # type: ignore[misc]
    assert dataclasses.replace(options, ttl=0).max_age == 2147483647
