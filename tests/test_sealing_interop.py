"""Interop with the REAL iron-session 8.0.4 (iron-webcrypto 1.2.1) under Node.

Seals cross in both directions, refusals agree (including iron's own reason for each), and the
Set-Cookie header is the one iron-session sends. Node runs in batches (tests/interop/iron.mjs).
A missing Node or node_modules fails these tests with the fix; they never skip.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bevsession.cookies import (
    CookieOptions,
    CookieTooLarge,
    destroy_cookie_header,
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
