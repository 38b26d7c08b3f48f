"""Unit tests of bevsession.cookies: iron-session's Set-Cookie header, byte for byte, and the
Cookie header read as iron-session 9 reads it (chunks, percent-decoding). The same behaviour is
checked against the real iron-session 9 in test_sealing_interop.py."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from bevsession.cookies import (
    MAX_CHUNKS,
    MAX_COOKIE_LENGTH,
    CookieOptions,
    CookieTooLarge,
    IncomingSessionCookie,
    decode_cookie_value,
    destroy_cookie_header,
    expire_cookie_headers,
    parse_cookie_header,
    read_session_cookie,
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


# --- reading: iron-session 9's chunks and the cookie package's parsing ------------------------
NAME = "bevgenie_session"


C0, C1, C2 = (f"{NAME}.{i}" for i in range(3))
In = IncomingSessionCookie


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, In(None)),
        ("", In(None)),
        (f"{NAME}=abc", In("abc")),
        (f"{NAME}=", In(None)),
        (f"other=1; {NAME}=abc; {NAME}=later", In("abc")),  # the first one wins
        # chunks, joined in index order whatever the header's order
        (f"{C1}=cd; {C0}=ab", In("abcd", True, (C0, C1))),
        # the whole cookie wins, but the chunks are still there to expire
        (f"{NAME}=w; {C0}=ab", In("w", False, (C0,))),
        (f"{NAME}=; {C0}=ab", In("ab", True, (C0,))),
        # up to the first gap or empty chunk
        (f"{C0}=ab; {C2}=ef", In("ab", True, (C0, C2))),
        (f"{C0}=ab; {C1}=; {C2}=ef", In("ab", True, (C0, C1, C2))),
        (f"{C1}=cd", In(None, False, (C1,))),
        # at most four; name.4 is nothing of ours
        ("; ".join(f"{NAME}.{i}={i}" for i in range(6)),
         In("0123", True, tuple(f"{NAME}.{i}" for i in range(MAX_CHUNKS)))),
        # percent-decoded values, like cookie.parse
        (f"{NAME}=Fe26.2%2A1%2Ax", In("Fe26.2*1*x")),
        (f"{C0}=a%2A; {C1}=%2Ab", In("a**b", True, (C0, C1))),
        # other names that merely start alike
        (f"{NAME}x=1; {NAME}.00=2; {NAME}.a=3", In(None)),
    ],
)  # fmt: skip
def test_the_session_cookie_is_read_as_iron_session_9_reads_it(
    header: str | None, expected: IncomingSessionCookie
) -> None:
    assert read_session_cookie(header, NAME) == expected


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("plain", "plain"),
        ("%41%42c", "ABc"),
        ("%e2%82%ac!", "€!"),
        ("100%", "100%"),  # a malformed escape leaves the whole value as it is
        ("%4", "%4"),
        ("%zz%41", "%zz%41"),
        ("%41%", "%41%"),
        ("%C3", "%C3"),  # not UTF-8: decodeURIComponent throws, the value stays
        ("%ED%A0%80", "%ED%A0%80"),  # a surrogate
        ("%C0%80", "%C0%80"),  # overlong
        ("é%C3%A9", "éé"),
    ],
)
def test_values_are_percent_decoded_like_decode_uri_component(raw: str, decoded: str) -> None:
    assert decode_cookie_value(raw) == decoded


def test_the_cookie_header_parser_keeps_the_cookie_packages_rules() -> None:
    assert parse_cookie_header("a = 1 ;\tb=\t2\t; c; d=x=y; a=3;;e=\"q\"") == {
        "a": "1", "b": "2", "d": "x=y", "e": '"q"'
    }  # fmt: skip
    assert parse_cookie_header("x") == {} and parse_cookie_header("=v") == {"": "v"}


def test_chunks_are_expired_with_the_cookies_own_attributes() -> None:
    options = CookieOptions(domain="example.com", secure=False)
    assert expire_cookie_headers(options, (f"{NAME}.0", f"{NAME}.3")) == [
        f"{NAME}.0=; Max-Age=0; Domain=example.com; Path=/; HttpOnly; SameSite=Lax",
        f"{NAME}.3=; Max-Age=0; Domain=example.com; Path=/; HttpOnly; SameSite=Lax",
    ]
    assert expire_cookie_headers(options, ()) == []
