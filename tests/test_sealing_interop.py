"""Interop with the REAL iron-session 8.0.4 (iron-webcrypto 1.2.1) and 9.0.1 (iron-webcrypto
2.0.0, cookie 2.0.2) under Node.

Seals cross in both directions, refusals agree (including iron's own reason for each), and the
Set-Cookie header is the one iron-session sends. With iron-session 9's ``chunk: true``, a session
split into ``name.0`` … ``name.3`` is read as v9 reads it, the chunks are expired as v9 expires
them, and Cookie headers are parsed as v9's ``cookie`` package parses them. Node runs in batches
(tests/interop/iron.mjs, iron9.mjs). A missing Node or node_modules fails these tests with the
fix; they never skip.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bevsession.cookies import (
    MAX_COOKIE_HEADER,
    CookieOptions,
    CookieTooLarge,
    destroy_cookie_header,
    expire_cookie_headers,
    parse_cookie_header,
    read_session_cookie,
    set_cookie_header,
)
from bevsession.sealing import Password, Sealer, SealError, SealReason
from interop.fe26_reference import Forge
from interop.node_iron import ensure_node_modules, run_iron

PW = "correct horse battery staple 0123456789"
PW2 = "another password, also long enough!!"
PW10 = "rotation id ten -- 32+ characters long"
ROTATION = {"1": PW, "2": PW2, "10": PW10}
UNICODE_PW = "🍷 Grüße aus dem Weinkeller — 秘密のパスワード"
HOUR_MS = 3_600_000

Iron = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]

# Values whose JSON both sides write and read alike (see the reference on number spellings).
VALUES: dict[str, Any] = {
    "flat": {"sessionId": "6f1c0b7e-2b1d-4a51-9a53-6c0f2d7f8e10", "visits": 3, "ok": True},
    "unicode": {
        "de": "Grüße",
        "ja": "こんにちは",
        "emoji": "🍷🥂🍺",
        "combining": "e\u0301",
        "separators": "\u2028\u2029",
        "controls": "\x00\x1f\x7f",
        "quotes": "\"'\\/",
        "é-key-🍷": None,
    },
    "nested": {
        "persona": {"scores": {"sommelier": 0.8, "distributor": 0.15}, "mode": "auto"},
        "history": [[1, [2, [3, [4, {"deep": [[], {}]}]]]]],
        "numbers": [0, -1, 2**53 - 1, -(2**53) + 1, 0.1, 1.5e300, 2.5e-300, 123456.789],
    },
    "3kb": {"blob": "x" * 3000, "n": list(range(20))},
    "array": [1, "two", None, False, {"three": 3}],
    "string": "just a string",
    "empty": {},
}


@pytest.fixture(scope="module")
def iron() -> Iron:
    ensure_node_modules()
    return run_iron


def value(result: dict[str, Any]) -> Any:
    assert result["ok"], result
    return result["value"]


def python_reason(password: Password, sealed: str) -> SealReason:
    with pytest.raises(SealError) as info:
        Sealer(password).unseal(sealed)
    return info.value.reason


# iron-webcrypto's messages, as our reasons.
IRON_REASONS = {
    "Incorrect number of sealed components": SealReason.MALFORMED,
    "Wrong mac prefix": SealReason.MALFORMED,
    "Invalid expiration": SealReason.MALFORMED,
    "Expired seal": SealReason.EXPIRED,
    "Cannot find password": SealReason.UNKNOWN_PASSWORD_ID,
    "Empty password": SealReason.UNKNOWN_PASSWORD_ID,  # a prototype name reached the lookup
    "Bad hmac value": SealReason.BAD_MAC,
}


def iron_reason(error: str) -> SealReason:
    for message, reason in IRON_REASONS.items():
        if error.startswith(message):
            return reason
    return SealReason.BAD_PAYLOAD  # base64, WebCrypto or JSON.parse errors behind a good MAC


# --- seals cross both ways --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "ttl"),
    [(PW, 86400), (PW, 0), (ROTATION, 3600), (UNICODE_PW, 14 * 24 * 3600)],
    ids=["single", "ttl0", "rotation", "unicode-password"],
)
def test_node_seals_open_in_python(iron: Iron, password: Password, ttl: int) -> None:
    names = list(VALUES)
    results = iron(
        [{"op": "seal", "data": VALUES[n], "password": password, "ttl": ttl} for n in names]
    )
    sealer = Sealer(password)
    for name, result in zip(names, results, strict=True):
        sealed = value(result)
        parts = sealed.removesuffix("~2").split("*")
        assert parts[1] == sealer.seal_id
        assert (parts[5] == "") == (ttl == 0)
        assert sealer.unseal(sealed) == VALUES[name], name


@pytest.mark.parametrize(
    ("password", "ttl"),
    [(PW, 86400), (PW, 0), (ROTATION, 3600), (UNICODE_PW, 14 * 24 * 3600)],
    ids=["single", "ttl0", "rotation", "unicode-password"],
)
def test_python_seals_open_in_node(iron: Iron, password: Password, ttl: int) -> None:
    sealer = Sealer(password, ttl=ttl)
    names = list(VALUES)
    seals = [sealer.seal(VALUES[n]) for n in names]
    results = iron([{"op": "unseal", "seal": s, "password": password} for s in seals])
    for name, result in zip(names, results, strict=True):
        assert value(result) == VALUES[name], name


def test_rotation_across_languages(iron: Iron) -> None:
    old_python = Sealer({"1": PW}).seal({"v": "old"})
    (made,) = iron([{"op": "seal", "data": {"v": "old"}, "password": {"1": PW}}])
    old_node_seal = value(made)
    results = iron(
        [
            {"op": "unseal", "seal": old_python, "password": ROTATION},
            {"op": "seal", "data": {"v": "new"}, "password": ROTATION},
        ]
    )
    assert value(results[0]) == {"v": "old"}
    new_node_seal = value(results[1])
    assert new_node_seal.split("*")[1] == "10" == Sealer(ROTATION).seal_id
    assert Sealer(ROTATION).unseal(old_node_seal) == {"v": "old"}
    assert Sealer({"10": PW10}).unseal(new_node_seal) == {"v": "new"}


def test_null_seals_open_as_empty_object_on_both_sides(iron: Iron) -> None:
    results = iron(
        [
            {"op": "seal", "data": None, "password": PW},
            {"op": "unseal", "seal": Sealer(PW).seal(None), "password": PW},
        ]
    )
    assert Sealer(PW).unseal(value(results[0])) == {}
    assert value(results[1]) == {}


# --- refusals agree ---------------------------------------------------------------------------


def _tamper(sealed: str, index: int, replacement: str) -> str:
    parts = sealed.removesuffix("~2").split("*")
    part = parts[index]
    middle = len(part) // 2
    parts[index] = part[:middle] + replacement + part[middle + 1 :]
    if parts[index] == part:
        parts[index] = part[:middle] + "B" + part[middle + 1 :]
    return "*".join(parts) + "~2"


def _non_canonical_mac(sealed: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    body = sealed.removesuffix("~2")
    last = alphabet.index(body[-1])
    return body[:-1] + alphabet[last | 1] + "~2"


def test_python_refuses_what_node_refuses_with_the_same_reason(iron: Iron) -> None:
    made = iron(
        [
            {"op": "seal", "data": {"x": 1}, "password": PW, "ttl": 3600},
            {"op": "seal", "data": {"x": 1}, "password": PW, "ttl": 1, "nowOffsetMs": -HOUR_MS},
            {"op": "seal", "data": {"x": 1}, "password": ROTATION, "ttl": 3600},
        ]
    )
    node_seal, node_expired, node_rotated = (value(r) for r in made)
    py_seal = Sealer(PW).seal({"x": 1}, ttl=3600)
    py_expired = Sealer(PW, local_offset_ms=-HOUR_MS).seal({"x": 1}, ttl=1)
    cases: dict[str, tuple[str, Password]] = {}
    for origin, sealed, expired in (("node", node_seal, node_expired), ("py", py_seal, py_expired)):
        cases |= {
            f"{origin} tampered mac": (_tamper(sealed, 7, "A"), PW),
            f"{origin} tampered ciphertext": (_tamper(sealed, 4, "A"), PW),
            f"{origin} tampered iv": (_tamper(sealed, 3, "A"), PW),
            f"{origin} tampered enc salt": (_tamper(sealed, 2, "0"), PW),
            f"{origin} tampered mac salt": (_tamper(sealed, 6, "0"), PW),
            f"{origin} tampered expiration": (_tamper(sealed, 5, "9"), PW),
            f"{origin} non-canonical mac": (_non_canonical_mac(sealed), PW),
            f"{origin} wrong password": (sealed, PW2),
            f"{origin} unknown id": (sealed, {"2": PW2}),
            f"{origin} expired": (expired, PW),
            f"{origin} wrong prefix": (sealed.replace("Fe26.2", "Fe26.1"), PW),
            f"{origin} bad expiration": (_tamper(sealed, 5, "x"), PW),
            f"{origin} missing part": (sealed.replace("*", "", 1), PW),
        }
    cases |= {
        "rotated seal, old map": (node_rotated, {"1": PW, "2": PW2}),
        "constructor id": (Forge(PW, id="constructor").seal(), PW),
        "__proto__ id": (Forge(PW, id="__proto__").seal(), PW),
        "expired and unknown id": (_retag(node_expired, "9"), PW),
        "unknown id and bad mac": (Forge(PW, id="9", mac="A" * 43).seal(), PW),
        "bad mac and bad payload": (Forge(PW, ct_b64="!!!!", mac="A" * 43).seal(), PW),
        "bad payload: ct not base64": (Forge(PW, ct_b64="!!!!").seal(), PW),
        "bad payload: not JSON": (Forge(PW, plaintext=b"{nope").seal(), PW),
        "bad payload: bad padding": (Forge(PW, plaintext=b"x" * 16, pad=False).seal(), PW),
    }
    names = list(cases)
    ops: list[dict[str, Any]] = []
    for name in names:
        sealed, password = cases[name]
        ops.append({"op": "unseal", "seal": sealed, "password": password})
        ops.append({"op": "ironUnseal", "seal": sealed, "password": password})
    results = iron(ops)
    for i, name in enumerate(names):
        sealed, password = cases[name]
        session_result, iron_result = results[2 * i], results[2 * i + 1]
        # iron-session gives no session: {} or (for some forgeries) a throw
        assert not session_result["ok"] or session_result["value"] == {}, name
        assert not iron_result["ok"], name
        assert python_reason(password, sealed) is iron_reason(iron_result["error"]), (
            name,
            iron_result["error"],
        )


def _retag(sealed: str, pid: str) -> str:
    parts = sealed.split("*")
    parts[1] = pid
    return "*".join(parts)


def test_python_opens_what_node_opens_at_the_edges(iron: Iron) -> None:
    """Seals iron accepts although iron-session never writes them: empty id, odd expirations."""
    cases: dict[str, tuple[str, Password]] = {
        "empty id as default": (Forge(PW, id="").seal(), {"default": PW, "1": PW2}),
        "leading zeros": (Forge(PW, expiration="0" + "9" * 16).seal(), PW),
        "huge expiration": (Forge(PW, expiration="9" * 400).seal(), PW),
        "non-numeric id": (Forge(PW, id="legacy").seal(), {"legacy": PW, "1": PW2}),
    }
    results = iron([{"op": "unseal", "seal": s, "password": p} for s, p in cases.values()])
    for (name, (sealed, password)), result in zip(cases.items(), results, strict=True):
        assert value(result) == {}, name
        assert Sealer(password).unseal(sealed) == {}, name


# --- the cookie -------------------------------------------------------------------------------


def _split_header(header: str) -> tuple[str, str]:
    name_value, _, _ = header.partition(";")
    return name_value.split("=", 1)[1], header


@pytest.mark.parametrize(
    ("ttl", "secure"), [(86400, True), (0, True), (14 * 24 * 3600, False), (120, True)]
)
def test_set_cookie_header_equals_iron_sessions(iron: Iron, ttl: int, secure: bool) -> None:
    data = {"sessionId": "abc", "visits": 2}
    common = {"password": PW, "cookieName": "bevgenie_session", "ttl": ttl, "secure": secure}
    save, destroy = iron([{"op": "save", "data": data, **common}, {"op": "destroy", **common}])
    (node_header,) = value(save)
    seal, _ = _split_header(node_header)
    options = CookieOptions(ttl=ttl, secure=secure)
    assert set_cookie_header(seal, options) == node_header
    assert Sealer(PW).unseal(seal) == data
    assert value(destroy) == [destroy_cookie_header(options)]


def test_our_cookie_loads_in_iron_session(iron: Iron) -> None:
    data = {"sessionId": "abc", "persona": {"sommelier": 0.9}}
    header = set_cookie_header(Sealer(PW, ttl=86400).seal(data), CookieOptions())
    cookie = header.split(";", 1)[0]
    results = iron(
        [
            {"op": "load", "cookie": cookie, "password": PW, "cookieName": "bevgenie_session"},
            {
                "op": "load",
                "cookie": cookie[:-5] + "AAAA" + cookie[-1],
                "password": PW,
                "cookieName": "bevgenie_session",
            },
        ]
    )
    assert value(results[0]) == {"session": data, "setCookie": None}
    assert value(results[1]) == {"session": {}, "setCookie": None}


def test_size_limit_agrees_with_iron_session(iron: Iron) -> None:
    """Both refuse the same session: the largest JSON that fits is 2847 bytes (ttl 86400)."""

    def data(json_bytes: int) -> dict[str, str]:
        return {"x": "a" * (json_bytes - len('{"x":""}'))}

    common = {"password": PW, "cookieName": "bevgenie_session", "ttl": 86400}
    fits, too_big = iron(
        [{"op": "save", "data": data(2847), **common}, {"op": "save", "data": data(2848), **common}]
    )
    (header,) = value(fits)
    assert len(header) <= 4096
    assert not too_big["ok"] and "Cookie length is too big" in too_big["error"]
    sealer, options = Sealer(PW, ttl=86400), CookieOptions()
    assert len(set_cookie_header(sealer.seal(data(2847)), options)) == len(header)
    with pytest.raises(CookieTooLarge):
        set_cookie_header(sealer.seal(data(2848)), options)


# --- iron-session 9.0.1: the same seal, and sessions split into chunks ------------------------
COOKIE = "bevgenie_session"


@pytest.fixture(scope="module")
def iron9() -> Iron:
    ensure_node_modules()
    return lambda ops: run_iron(ops, version=9)


def _jar(set_cookies: list[str], jar: dict[str, str] | None = None) -> dict[str, str]:
    """A browser's cookies after these ``Set-Cookie`` headers (``Max-Age=0`` deletes)."""
    jar = dict(jar or {})
    for header in set_cookies:
        name, _, rest = header.partition("=")
        cookie_value, *attributes = rest.split("; ")
        if "Max-Age=0" in attributes:
            jar.pop(name, None)
        else:
            jar[name] = cookie_value
    return jar


def _cookie_header(jar: dict[str, str]) -> str:
    return "; ".join(f"{name}={v}" for name, v in jar.items())


def test_iron_session_9_and_python_open_each_others_seals(iron9: Iron) -> None:
    """v9's single-cookie seal is v8's: seals cross both ways, under rotation too. (Sessions
    only: v9's ``sealData`` copies its data with ``{...data}``, so it seals an array as an
    object with keys "0", "1", …; a session is always an object.)"""
    names = [n for n in VALUES if isinstance(VALUES[n], dict)]
    python_seals = [Sealer(ROTATION, ttl=3600).seal(VALUES[n]) for n in names]
    results = iron9(
        [{"op": "seal", "data": VALUES[n], "password": ROTATION, "ttl": 3600} for n in names]
        + [{"op": "unseal", "seal": s, "password": ROTATION} for s in python_seals]
    )
    for name, made, opened in zip(names, results, results[len(names) :], strict=False):
        node_seal = value(made)
        assert node_seal.startswith("Fe26.2*10*") and node_seal.endswith("~2"), node_seal
        assert Sealer(ROTATION).unseal(node_seal) == VALUES[name], name
        assert value(opened) == VALUES[name], name


def test_iron_session_9_writes_one_cookie_as_we_do(iron9: Iron) -> None:
    data = {"sessionId": "abc", "visits": 2}
    common = {"password": PW, "cookieName": COOKIE, "ttl": 86400, "chunk": True}
    save, destroy = iron9([{"op": "save", "data": data, **common}, {"op": "destroy", **common}])
    (node_header,) = value(save)
    seal, _ = _split_header(node_header)
    assert set_cookie_header(seal, CookieOptions()) == node_header
    assert Sealer(PW).unseal(seal) == data
    assert value(destroy) == [destroy_cookie_header(CookieOptions())]


def _padding_for_chunks(iron9: Iron, chunks: int, *, fill: bool) -> tuple[int, list[str]]:
    """Padding (characters) that makes iron-session 9 split ``{"cart": pad}`` into *chunks*
    cookies (the most it allows for that count when *fill*), and its Set-Cookie list."""
    base = len(set_cookie_header("", CookieOptions(name=f"{COOKIE}.0")))
    budget = 4096 - base  # each chunk's share of the seal, as v9 computes it
    target = budget * chunks if fill else budget * (chunks - 1) + budget // 2
    guess = (target - 260) * 3 // 4  # the seal is ~4/3 of the JSON plus ~260 fixed characters
    common = {"password": PW, "cookieName": COOKIE, "ttl": 86400, "chunk": True}
    found: list[tuple[int, list[str]]] = []
    for step in (64, 2):  # coarse, then fine around the best coarse candidate
        pads = [guess + offset for offset in range(-32 * step, 32 * step + 1, step)]
        results = iron9([{"op": "save", "data": {"cart": "c" * pad}, **common} for pad in pads])
        found = [
            (pad, value(r)) for pad, r in zip(pads, results, strict=True)
            if r["ok"] and len(value(r)) == chunks
        ]  # fmt: skip
        assert found, f"no padding around {guess} gives {chunks} chunks"
        guess = found[-1][0] if fill else found[len(found) // 2][0]
    return found[-1] if fill else found[len(found) // 2]


@pytest.mark.parametrize("chunks", [2, 3, 4])
def test_chunks_iron_session_9_writes_are_read_as_one_seal(iron9: Iron, chunks: int) -> None:
    pad, headers = _padding_for_chunks(iron9, chunks, fill=chunks == 4)
    names = [h.split("=", 1)[0] for h in headers]
    assert names == [f"{COOKIE}.{i}" for i in range(chunks)], names
    assert all(len(h) <= 4096 for h in headers)
    jar = _jar(headers)
    incoming = read_session_cookie(_cookie_header(jar), COOKIE)
    assert incoming.chunked and incoming.chunks == tuple(names)
    assert incoming.seal == "".join(jar.values())
    assert Sealer(PW).unseal(incoming.seal) == {"cart": "c" * pad}
    if chunks == 4:  # the largest session v9 stores: the Cookie header the server must accept
        assert 16_000 < len("Cookie: " + _cookie_header(jar)) <= MAX_COOKIE_HEADER

    # A stale name.N beyond the joined ones, a gap, and a whole cookie: as v9 reads them.
    swapped = dict(reversed(list(jar.items())))
    cases = {
        "chunks in another order": _cookie_header(swapped),
        "gap after the first": _cookie_header({k: v for k, v in jar.items() if k != names[1]}),
        "whole cookie wins": _cookie_header({COOKIE: Sealer(PW).seal({"w": 1}), **jar}),
        "empty whole cookie": _cookie_header({COOKIE: "", **jar}),
        "empty first chunk": _cookie_header({**jar, names[0]: ""}),
    }
    loads = iron9(
        [{"op": "load", "cookie": c, "password": PW, "cookieName": COOKIE} for c in cases.values()]
    )
    for (name, header), loaded in zip(cases.items(), loads, strict=True):
        theirs = value(loaded)["session"]
        seal = read_session_cookie(header, COOKIE).seal
        try:
            ours = Sealer(PW).unseal(seal) if seal else {}
        except SealError:
            ours = {}
        assert ours == theirs, name


def test_destroy_expires_the_chunks_as_iron_session_9_does(iron9: Iron) -> None:
    _, headers = _padding_for_chunks(iron9, 3, fill=False)
    jar = _jar(headers)
    with_other = {"other": "1", **jar}
    (destroyed,) = iron9([
        {"op": "destroy", "password": PW, "cookieName": COOKIE, "ttl": 86400, "chunk": True,
         "cookie": _cookie_header(with_other)},
    ])  # fmt: skip
    incoming = read_session_cookie(_cookie_header(with_other), COOKIE)
    options = CookieOptions()
    ours = [destroy_cookie_header(options), *expire_cookie_headers(options, incoming.chunks)]
    assert value(destroyed) == ours
    assert _jar(ours, with_other) == {"other": "1"}


# The cookie package's parseCookie, which iron-session 9 reads every cookie with.
COOKIE_HEADER_EDGES = [
    "",
    "a",
    "a=",
    "=",
    "=b",
    "a=1;b=2",
    "a = 1 ;\tb=\t2\t",
    "a=1; a=2",
    " a=1",
    "a=1;;b=2",
    "a;b=2",
    "a=1;c;b=2",
    'a="quoted"',
    "a=x=y",
    "a=%41%42",
    "a=%",
    "a=%4",
    "a=%zz",
    "a=100%",
    "a=%E2%82%AC",
    "a=%E2%82",
    "a=%C3%A9%C3",
    "a=%ED%A0%80",
    "a=%C0%80",
    "a=%F4%90%80%80",
    "a=%2A1%2Ax",
    "a=x%3Bb=2",
    "__proto__=1; constructor=2",
    "a=é%C3%A9",
    "a=1;  ;b=2",
    f"{COOKIE}.0=x; {COOKIE}.1=y",
]
HEADER_TEXT = st.text(alphabet=st.sampled_from(list('ab=; \t%%0A9FfCe€zé"*.')), max_size=40)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(st.lists(HEADER_TEXT, min_size=1, max_size=1))
def _collect_headers(batch: list[str]) -> None:
    _GENERATED.extend(batch)


_GENERATED: list[str] = []


def test_cookie_header_parsing_agrees_with_the_cookie_package(iron9: Iron) -> None:
    _GENERATED.clear()
    _collect_headers()
    headers = COOKIE_HEADER_EDGES + _GENERATED
    (parsed,) = iron9([{"op": "parseCookie", "headers": headers}])
    for header, theirs in zip(headers, value(parsed), strict=True):
        assert parse_cookie_header(header) == theirs, header
