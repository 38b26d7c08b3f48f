"""Unit tests of bevsession.sealing: the Fe26.2 format, rotation, every refusal and its order."""

from __future__ import annotations

import base64
import hashlib
import hmac
import pickle
import random
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bevsession import sealing
from bevsession.sealing import (
    SealConfigError,
    Sealer,
    SealError,
    SealReason,
    js_length,
    seal_data,
    unseal_data,
)
from interop.fe26_reference import ENC_SALT, IV, MAC_SALT, Forge, b64url, decrypt, mac

PW = "correct horse battery staple 0123456789"
PW2 = "another password, also long enough!!"
NOW = 1_700_000_000_000

# Made by iron-webcrypto 1.2.1 (Node 20) from these salts, IV and password, plus iron-session's ~2.
KAT_TTL0 = (
    "Fe26.2*1*00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
    "*ABEiM0RVZneImaq7zN3u_w"
    "*CuSW68yTLD2JbDuzD1zd4MAKl2B6Ji2LACNMmmoVO05InYvuQjRev-futlTnTe_PGUisd4kT3O6MRNJHXU__ww"
    "**ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
    "*Zhg9QG4rRhSN-R808I3uo-aEasWP0VuZG2d2Q8Y-0T4~2"
)
KAT_TTL0_DATA = {"persona": "sommelier", "visits": 3, "note": "Grüße 🍷"}
# Same, password id "20240101", Date.now() = NOW, ttl 86400 s.
KAT_TTL_DAY = (
    "Fe26.2*20240101*00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
    "*ABEiM0RVZneImaq7zN3u_w*LNvjYyxU1m87oCOGdY3b8XfJK-ShjU9OOA31ylX6kjs*1700086400000"
    "*ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
    "*GK9U5I6fe5ut6YLVWcR49m6GU93fpRiwTRz0kOhCkVI~2"
)
KAT_TTL_DAY_DATA = [1, "two", {"three": None}]


@pytest.fixture
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """Every Sealer's clock reads NOW (plus its own local offset)."""
    monkeypatch.setattr(Sealer, "_now_ms", lambda self: NOW + self._local_offset_ms)
    yield NOW


@pytest.fixture
def fixed_random(monkeypatch: pytest.MonkeyPatch) -> None:
    """The KAT salts and IV instead of os.urandom."""
    fixed = bytes.fromhex(ENC_SALT) + bytes.fromhex(MAC_SALT) + IV
    monkeypatch.setattr(sealing, "_urandom", lambda n: fixed[:n])


def reason(sealer: Sealer, sealed: Any) -> SealReason:
    with pytest.raises(SealError) as info:
        sealer.unseal(sealed)
    return info.value.reason


def parts(sealed: str) -> list[str]:
    return sealed.removesuffix("~2").split("*")


# --- known answers ---------------------------------------------------------------------------


def test_known_answer_ttl0_matches_iron_byte_for_byte(fixed_random: None) -> None:
    assert Sealer(PW).seal(KAT_TTL0_DATA, ttl=0) == KAT_TTL0


def test_known_answer_with_expiration(fixed_random: None, frozen_now: int) -> None:
    assert Sealer({"20240101": PW}).seal(KAT_TTL_DAY_DATA, ttl=86400) == KAT_TTL_DAY


def test_known_answers_open() -> None:
    assert Sealer(PW).unseal(KAT_TTL0) == KAT_TTL0_DATA


def test_known_answer_with_expiration_opens_until_expiry_plus_skew(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sealer = Sealer({"20240101": PW})
    exp = NOW + 86400_000
    for now, opens in ((NOW, True), (exp + 59_999, True), (exp + 60_000, False)):
        monkeypatch.setattr(Sealer, "_now_ms", lambda self, now=now: now)
        if opens:
            assert sealer.unseal(KAT_TTL_DAY) == KAT_TTL_DAY_DATA
        else:
            assert reason(sealer, KAT_TTL_DAY) is SealReason.EXPIRED


def test_random_seal_agrees_with_the_reference_implementation() -> None:
    data = {"a": [1, 2], "b": "é"}
    sealed = Sealer(PW).seal(data)
    p = parts(sealed)
    assert p[7] == mac(PW, p[6], "*".join(p[:6]))
    # compact separators and raw UTF-8, as JSON.stringify writes it
    assert decrypt(PW, sealed) == '{"a":[1,2],"b":"é"}'.encode()


def test_layout() -> None:
    before = time.time_ns() // 1_000_000
    sealed = Sealer(PW).seal({"x": 1}, ttl=3600)
    after = time.time_ns() // 1_000_000
    assert sealed.endswith("~2") and sealed.count("~") == 1
    p = parts(sealed)
    assert len(p) == 8
    assert p[0] == "Fe26.2" and p[1] == "1"
    for salt in (p[2], p[6]):
        assert re.fullmatch(r"[0-9a-f]{64}", salt)
    assert p[2] != p[6]
    assert len(base64.urlsafe_b64decode(p[3] + "==")) == 16 and len(p[3]) == 22
    assert re.fullmatch(r"[A-Za-z0-9_-]+", p[4]) and "=" not in sealed
    assert before + 3_600_000 <= int(p[5]) <= after + 3_600_000
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", p[7])


def test_every_seal_is_fresh() -> None:
    sealer = Sealer(PW)
    a, b = sealer.seal({"x": 1}), sealer.seal({"x": 1})
    assert a != b
    assert parts(a)[2] != parts(b)[2] and parts(a)[3] != parts(b)[3]


def test_ttl_zero_means_no_expiration() -> None:
    sealer = Sealer(PW, ttl=0)
    sealed = sealer.seal({"x": 1})
    assert parts(sealed)[5] == ""
    assert Sealer(PW, local_offset_ms=10**15).unseal(sealed) == {"x": 1}


def test_default_ttl_is_fourteen_days(frozen_now: int) -> None:
    assert int(parts(Sealer(PW).seal(1))[5]) == NOW + 14 * 24 * 3600 * 1000
    assert int(parts(seal_data(1, password=PW))[5]) == NOW + 14 * 24 * 3600 * 1000
    assert int(parts(Sealer(PW, ttl=60).seal(1, ttl=120))[5]) == NOW + 120_000


# --- module functions -------------------------------------------------------------------------


def test_module_functions_round_trip_and_ignore_unseal_ttl(frozen_now: int) -> None:
    sealed = seal_data({"n": 1}, password=PW, ttl=10)
    assert unseal_data(sealed, password=PW, ttl=1) == {"n": 1}
    assert unseal_data(sealed, password={"1": PW, "2": PW2}) == {"n": 1}


def test_module_functions_reuse_one_sealer_per_configuration() -> None:
    assert sealing._sealer_for(PW) is sealing._sealer_for(PW)
    assert sealing._sealer_for({"1": PW}) is sealing._sealer_for({"1": PW})


def test_null_and_empty_plaintext_open_as_empty_object() -> None:
    # iron returns null for an empty plaintext and iron-session turns null into {}
    sealer = Sealer(PW)
    assert sealer.unseal(sealer.seal(None)) == {}
    assert sealer.unseal(Forge(PW, plaintext=b"").seal()) == {}
    assert sealer.unseal(Forge(PW, plaintext=b"null").seal()) == {}


def test_scalars_and_arrays_round_trip() -> None:
    sealer = Sealer(PW)
    value: Any
    for value in (0, 1.5, "", "text", True, False, [], [None], {"": {}}):
        assert sealer.unseal(sealer.seal(value)) == value


def test_lone_surrogates_are_escaped_like_json_stringify() -> None:
    sealer = Sealer(PW)
    sealed = sealer.seal({"s": "a\ud800b"})
    assert decrypt(PW, sealed) == b'{"s":"a\\ud800b"}'
    assert sealer.unseal(sealed) == {"s": "a\ud800b"}


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), -float("inf"), {"x": [float("nan")]}]
)
def test_values_json_cannot_carry_are_refused(value: Any) -> None:
    with pytest.raises(ValueError):
        Sealer(PW).seal(value)


def test_circular_and_foreign_values_are_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError):
        Sealer(PW).seal(loop)
    with pytest.raises(TypeError):
        Sealer(PW).seal({"x": object()})


# --- passwords and rotation -------------------------------------------------------------------


def test_single_password_seals_with_id_1() -> None:
    sealer = Sealer(PW)
    assert sealer.seal_id == "1"
    assert parts(sealer.seal({}))[1] == "1"
    assert Sealer({"1": PW}).unseal(sealer.seal({"a": 1})) == {"a": 1}


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        (["1", "5", "10"], "10"),
        (["10", "9"], "10"),  # numeric, not lexicographic
        (["2", "100", "33"], "100"),
        (["0"], "0"),
        (["old", "2", "1"], "2"),  # non-numeric ids only open
        (["07", "3"], "3"),  # "07" is not how JS writes 7
        (["18446744073709551616", "9"], "18446744073709551616"),
    ],
)
def test_rotation_seals_with_the_highest_numeric_id(ids: list[str], expected: str) -> None:
    passwords = {pid: f"{pid:x<40}" for pid in ids}
    sealer = Sealer(passwords)
    assert sealer.seal_id == expected
    sealed = sealer.seal({"k": "v"})
    assert parts(sealed)[1] == expected
    assert Sealer({expected: passwords[expected]}).unseal(sealed) == {"k": "v"}


def test_every_id_of_the_map_opens() -> None:
    old = Sealer({"1": PW}).seal({"v": "old"})
    new_map = {"1": PW, "2": PW2}
    rotated = Sealer(new_map)
    assert rotated.unseal(old) == {"v": "old"}
    assert parts(rotated.seal({}))[1] == "2"
    assert reason(Sealer({"2": PW2}), old) is SealReason.UNKNOWN_PASSWORD_ID


def test_non_numeric_ids_open() -> None:
    sealed = Forge(PW, id="legacy_a").seal()
    assert Sealer({"legacy_a": PW, "1": PW2}).unseal(sealed) == {}


def test_empty_id_is_looked_up_as_default() -> None:
    sealed = Forge(PW, id="").seal()
    assert Sealer({"default": PW, "1": PW2}).unseal(sealed) == {}
    assert reason(Sealer({"1": PW}), sealed) is SealReason.UNKNOWN_PASSWORD_ID


@pytest.mark.parametrize(
    "pid", ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf", "__class__"]
)
def test_prototype_ids_are_just_unknown(pid: str) -> None:
    sealed = Forge(PW, id=pid).seal()
    assert reason(Sealer(PW), sealed) is SealReason.UNKNOWN_PASSWORD_ID
    assert reason(Sealer({"1": PW, "2": PW2}), sealed) is SealReason.UNKNOWN_PASSWORD_ID


def test_wrong_password_under_the_same_id_is_a_bad_mac() -> None:
    sealed = Sealer(PW).seal({"x": 1})
    assert reason(Sealer(PW2), sealed) is SealReason.BAD_MAC


def test_password_length_is_counted_in_utf16_units() -> None:
    assert js_length("a" * 31) == 31
    assert js_length("é" * 31) == 31  # 62 UTF-8 bytes, still 31 JS characters
    assert js_length("🍷" * 16) == 32  # 16 Python characters, 32 JS characters
    Sealer("a" * 32)
    Sealer("🍷" * 16)
    Sealer("🍷" * 15 + "ab")
    for short in ("a" * 31, "é" * 31, "🍷" * 15 + "a", ""):
        with pytest.raises(SealConfigError, match="at least 32"):
            Sealer(short)


def test_unicode_password_opens_what_it_sealed() -> None:
    pw = "🍷 Grüße aus dem Weinkeller — 秘密のパスワード"
    assert Sealer(pw).unseal(Sealer(pw).seal({"x": 1})) == {"x": 1}


def test_short_password_is_a_configuration_error_everywhere() -> None:
    sealed = Sealer(PW).seal({})
    with pytest.raises(SealConfigError):
        seal_data({}, password="short")
    with pytest.raises(SealConfigError):
        unseal_data(sealed, password="short")
    with pytest.raises(SealConfigError):
        Sealer({"1": PW, "2": "short"})
    assert issubclass(SealConfigError, ValueError)
    assert not issubclass(SealConfigError, SealError)


@pytest.mark.parametrize(
    "password",
    [
        {},
        {"": PW},
        {"a-b": PW},
        {"1\n": PW},
        {"é": PW},
        {"1 ": PW},
        {1: PW},
        {"1": 12345678901234567890123456789012345},
        {"1": PW.encode()},
        {"old": PW},  # no id can seal
        {"1": "\ud800" * 40},
        b"x" * 40,
        None,
    ],
)
def test_bad_password_configurations(password: Any) -> None:
    with pytest.raises(SealConfigError):
        Sealer(password)
    with pytest.raises(SealConfigError):
        seal_data({}, password=password)


@pytest.mark.parametrize("ttl", [-1, 1.5, True, "60", None])
def test_bad_ttl(ttl: Any) -> None:
    with pytest.raises(SealConfigError):
        Sealer(PW, ttl=ttl)
    if ttl is not None:  # None means "the sealer's default" in seal()
        with pytest.raises(SealConfigError):
            Sealer(PW).seal({}, ttl=ttl)


def test_bad_skew_and_offset() -> None:
    with pytest.raises(SealConfigError):
        Sealer(PW, timestamp_skew_sec=-1)
    with pytest.raises(SealConfigError):
        Sealer(PW, local_offset_ms=1.5)  # type: ignore[arg-type]


# --- expiration -------------------------------------------------------------------------------


def test_skew_boundary(frozen_now: int) -> None:
    sealer = Sealer(PW)
    at = Forge(PW, expiration=str(NOW - 60_000)).seal()
    just_inside = Forge(PW, expiration=str(NOW - 59_999)).seal()
    assert reason(sealer, at) is SealReason.EXPIRED
    assert sealer.unseal(just_inside) == {}


def test_configurable_skew(frozen_now: int) -> None:
    strict = Sealer(PW, timestamp_skew_sec=0)
    assert reason(strict, Forge(PW, expiration=str(NOW)).seal()) is SealReason.EXPIRED
    assert strict.unseal(Forge(PW, expiration=str(NOW + 1)).seal()) == {}
    lenient = Sealer(PW, timestamp_skew_sec=3600)
    assert lenient.unseal(Forge(PW, expiration=str(NOW - 3_599_999)).seal()) == {}


def test_local_offset_shifts_the_clock_like_iron() -> None:
    past = Sealer(PW, local_offset_ms=-3_600_000)
    sealed = past.seal({"x": 1}, ttl=1)  # expired an hour ago, as seen from now
    assert reason(Sealer(PW), sealed) is SealReason.EXPIRED
    assert past.unseal(sealed) == {"x": 1}


def test_expiration_with_leading_zeros_and_huge_values() -> None:
    sealer = Sealer(PW)
    assert reason(sealer, Forge(PW, expiration="0" * 5000 + "1").seal()) is SealReason.EXPIRED
    assert sealer.unseal(Forge(PW, expiration="9" * 5000).seal()) == {}
    assert sealer.unseal(Forge(PW, expiration="0" + "9" * 20).seal()) == {}
    assert reason(sealer, Forge(PW, expiration="0").seal()) is SealReason.EXPIRED


@pytest.mark.parametrize(
    "expiration",
    [
        "12a",
        "-1",
        " 1",
        "1 ",
        "1\n",
        "1.5",
        "1e20",
        "\uff11\uff12",
        "\u00b2",
        "\u0663",
        "+1",
        "0x10",
    ],
)
def test_non_digit_expirations_are_malformed(expiration: str) -> None:
    sealed = Forge(PW, expiration=expiration).seal()
    assert reason(Sealer(PW), sealed) is SealReason.MALFORMED


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sealed",
    [
        None,
        b"Fe26.2",
        123,
        "",
        "~2",
        "garbage",
        "Fe26.2********~2",
        "Fe26.2*1*a*b*c*d*e~2",
        "Fe26.2*1*a*b*c*d*e*f*g~2",
    ],
)
def test_malformed(sealed: Any) -> None:
    assert reason(Sealer(PW), sealed) is SealReason.MALFORMED


def test_suffix_is_required_and_exact() -> None:
    sealer = Sealer(PW)
    good = sealer.seal({"x": 1})
    body = good.removesuffix("~2")
    for bad in (
        body,
        body + "~",
        body + "~3",
        body + "~02",
        body + "~2 ",
        body + "~2~2",
        body + "2",
    ):
        assert reason(sealer, bad) is SealReason.MALFORMED, bad
    assert reason(sealer, body.replace("*", "~*", 1) + "~2") is SealReason.MALFORMED
    assert reason(sealer, Forge(PW, prefix="Fe26.1").seal()) is SealReason.MALFORMED
    assert reason(sealer, Forge(PW, prefix="fe26.2").seal()) is SealReason.MALFORMED


def replace_part(seal_parts: list[str], index: int, value: str) -> str:
    """The seal made of *seal_parts* with part *index* replaced (and the ``~2`` suffix)."""
    changed = list(seal_parts)
    changed[index] = value
    return "*".join(changed) + "~2"


def test_bad_mac_variants() -> None:
    sealer = Sealer(PW)
    good = sealer.seal({"x": 1})
    p = parts(good)

    def with_part(i: int, value: str) -> str:
        return replace_part(p, i, value)

    flipped = p[7][:5] + ("A" if p[7][5] != "A" else "B") + p[7][6:]
    cases = [
        with_part(7, flipped),
        with_part(7, p[7][:-1]),
        with_part(7, p[7] + "A"),
        with_part(7, ""),
        with_part(7, p[7][:-1] + "é"),
        with_part(7, p[7] + "="),
        with_part(6, p[6].upper()),  # the MAC salt is outside the MAC but keys it
        with_part(6, ""),
        with_part(2, p[2][::-1]),
        with_part(4, p[4][:-2] + ("AA" if p[4][-2:] != "AA" else "BB")),
        with_part(3, p[3][::-1]),
    ]
    for bad in cases:
        assert reason(sealer, bad) is SealReason.BAD_MAC, bad


def test_non_canonical_mac_last_character_is_refused() -> None:
    sealer = Sealer(PW)
    good = sealer.seal({"x": 1})
    p = parts(good)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(p[7][-1])
    assert last & 3 == 0  # canonical: the two unused bits are zero
    for unused in (1, 2, 3):
        other = p[7][:-1] + alphabet[last | unused]
        assert base64.urlsafe_b64decode(other + "=") == base64.urlsafe_b64decode(p[7] + "=")
        bad = "*".join([*p[:7], other]) + "~2"
        assert reason(sealer, bad) is SealReason.BAD_MAC


def test_bad_payload_behind_a_valid_mac() -> None:
    sealer = Sealer(PW)
    cases = {
        "ct not base64": Forge(PW, ct_b64="!!!!"),
        "ct with padding": Forge(PW, ct_b64="AAAAAAAAAAAAAAAAAAAAAA=="),
        "ct length 4k+1": Forge(PW, ct_b64="AAAAA"),
        "ct not whole blocks": Forge(PW, ct_b64=b64url(b"x" * 17)),
        "empty ct": Forge(PW, ct_b64=""),
        "iv too short": Forge(PW, iv_b64=b64url(b"x" * 15)),
        "iv not base64": Forge(PW, iv_b64="%%%%"),
        "bad padding": Forge(PW, plaintext=b"{}" + b"\x00" * 14, pad=False),
        "padding too long": Forge(PW, plaintext=b"{}" + b"\x11" * 14, pad=False),
        "zero padding byte": Forge(PW, plaintext=b"x" * 15 + b"\x00", pad=False),
        "not UTF-8": Forge(PW, plaintext=b'{"a":"\xff"}'),
        "not JSON": Forge(PW, plaintext=b"{'a': 1}"),
        "trailing garbage": Forge(PW, plaintext=b"{} x"),
        "NaN": Forge(PW, plaintext=b'{"a":NaN}'),
        "Infinity": Forge(PW, plaintext=b"-Infinity"),
        "huge integer": Forge(PW, plaintext=b"1" * 5000),
        "deep nesting": Forge(PW, plaintext=b"[" * 100_000 + b"]" * 100_000),
    }
    for name, forge in cases.items():
        assert reason(sealer, forge.seal()) is SealReason.BAD_PAYLOAD, name


def test_check_order(frozen_now: int) -> None:
    sealer = Sealer(PW)
    expired = str(NOW - 3_600_000)

    def detail(sealed: str) -> str:
        with pytest.raises(SealError) as info:
            sealer.unseal(sealed)
        return f"{info.value.reason.value}: {info.value.detail}"

    # part count before prefix
    assert "number of sealed components" in detail("Fe26.1*1*a~2")
    # prefix before expiration
    assert "prefix" in detail(Forge(PW, prefix="Fe26.1", expiration="x").seal())
    assert "prefix" in detail(Forge(PW, prefix="Fe26.1", expiration=expired).seal())
    # expiration before id, MAC and payload
    assert detail(Forge(PW, id="9", expiration=expired).seal()).startswith("expired")
    assert detail(Forge(PW, mac="A" * 43, expiration=expired).seal()).startswith("expired")
    assert detail(Forge(PW, id="9", expiration="z").seal()) == "malformed: invalid expiration"
    # id before MAC
    assert detail(Forge(PW, id="9", mac="A" * 43).seal()).startswith("unknown_password_id")
    # MAC before payload
    assert detail(Forge(PW, ct_b64="!!!!", mac="A" * 43).seal()).startswith("bad_mac")
    assert detail(Forge(PW, plaintext=b"nope", mac_password=PW2).seal()).startswith("bad_mac")


def test_seal_error_is_one_small_exception() -> None:
    with pytest.raises(SealError) as info:
        Sealer(PW).unseal("nope")
    err = info.value
    assert str(err) == "malformed: not a ~2 seal"
    assert err.reason == "malformed"
    clone = pickle.loads(pickle.dumps(err))  # noqa: S301 (our own object)
    assert clone.reason is SealReason.MALFORMED and clone.detail == err.detail
    assert {r.value for r in SealReason} == {
        "malformed",
        "expired",
        "unknown_password_id",
        "bad_mac",
        "bad_payload",
    }


# --- derived-key cache ------------------------------------------------------------------------


@pytest.fixture
def derivations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every PBKDF2 derivation from here on, by salt."""
    calls: list[str] = []
    real = sealing._key

    def counting(password: Any, salt: str) -> bytes:
        calls.append(salt)
        return real(password, salt)

    monkeypatch.setattr(sealing, "_key", counting)
    return calls


def test_key_cache_hit_gives_identical_results(derivations: list[str]) -> None:
    data = {"user": {"id": "abc", "n": [1, 2.5, None]}, "note": "Grüße 🍷"}
    sealed = Sealer(PW).seal(data)
    sealer, uncached = Sealer(PW), Sealer(PW, key_cache_size=0)
    derivations.clear()
    assert sealer.unseal(sealed) == data
    assert len(derivations) == 2 and sealer.key_cache_len == 1
    for _ in range(3):
        assert sealer.unseal(sealed) == data
    assert len(derivations) == 2  # the hits derived nothing
    assert uncached.unseal(sealed) == sealer.unseal(sealed) == data
    assert sealer.unseal(KAT_TTL0) == KAT_TTL0_DATA  # known answer, cold and warm
    assert sealer.unseal(KAT_TTL0) == KAT_TTL0_DATA


def test_seal_seeds_the_cache_with_the_seal_it_made(derivations: list[str]) -> None:
    sealer = Sealer(PW)
    sealed = sealer.seal({"x": 1})
    assert sealer.key_cache_len == 1
    derivations.clear()
    assert sealer.unseal(sealed) == {"x": 1}
    assert derivations == []
    assert Sealer(PW, key_cache_size=0).unseal(sealed) == {"x": 1}


def test_cached_keys_never_skip_the_mac(frozen_now: int) -> None:
    sealer = Sealer(PW)
    good = Forge(PW, plaintext=b'{"a":1}').seal()
    assert sealer.unseal(good) == {"a": 1}
    assert sealer.key_cache_len == 1
    p = parts(good)

    def with_part(i: int, value: str) -> str:
        return replace_part(p, i, value)

    flipped = p[7][:5] + ("A" if p[7][5] != "A" else "B") + p[7][6:]
    same_salts = [
        with_part(7, flipped),
        with_part(7, p[7][:-1] + "B"),  # non-canonical last character
        with_part(4, p[4][::-1]),
        with_part(3, p[3][::-1]),
        with_part(5, str(NOW + 3_600_000)),
        Forge(PW, plaintext=b'{"a":2}', mac="A" * 43).seal(),
        Forge(PW, plaintext=b'{"a":2}', mac_password=PW2).seal(),  # right key, wrong MAC key
        Forge(PW2, plaintext=b'{"a":2}').seal(),  # another password under the same id
    ]
    for bad in same_salts:
        assert parts(bad)[2] == p[2] and parts(bad)[6] == p[6]
        assert reason(sealer, bad) is SealReason.BAD_MAC, bad
    assert sealer.key_cache_len == 1
    assert sealer.unseal(good) == {"a": 1}


def test_cache_never_lends_keys_across_passwords() -> None:
    # Two sealers with different passwords under the same id, seals with the same salts: each
    # sealer's cache holds its own keys, so neither opens the other's seal.
    ours, theirs = Sealer(PW), Sealer(PW2)
    mine, other = Forge(PW, plaintext=b"[1]").seal(), Forge(PW2, plaintext=b"[2]").seal()
    assert parts(mine)[2] == parts(other)[2] and parts(mine)[6] == parts(other)[6]
    for _ in range(2):  # cold, then warm
        assert ours.unseal(mine) == [1] and theirs.unseal(other) == [2]
        assert reason(ours, other) is SealReason.BAD_MAC
        assert reason(theirs, mine) is SealReason.BAD_MAC
    # One sealer, two ids: the id is part of the cache key, so id "1"'s keys never open id "2".
    rotating = Sealer({"1": PW, "2": PW2})
    under_2 = Forge(PW2, id="2", plaintext=b"[2]").seal()
    under_1 = Forge(PW, id="1", plaintext=b"[1]").seal()
    assert rotating.unseal(under_2) == [2]
    assert rotating.unseal(under_1) == [1]
    assert rotating.key_cache_len == 2
    assert rotating.unseal(under_2) == [2] and rotating.unseal(under_1) == [1]
    assert reason(rotating, Forge(PW, id="2").seal()) is SealReason.BAD_MAC
    assert reason(rotating, Forge(PW2, id="1").seal()) is SealReason.BAD_MAC
    # An empty id is "default": the same password, whichever spelling the seal carries.
    default = Sealer({"1": PW2, "default": PW})
    assert default.unseal(Forge(PW, id="", plaintext=b"[3]").seal()) == [3]
    assert default.unseal(Forge(PW, id="default", plaintext=b"[3]").seal()) == [3]
    assert reason(default, Forge(PW2, id="").seal()) is SealReason.BAD_MAC


def test_key_cache_is_bounded_and_evicts_the_least_recently_used(derivations: list[str]) -> None:
    maker = Sealer(PW, key_cache_size=0)
    seals = [maker.seal({"i": i}) for i in range(24)]
    sealer = Sealer(PW, key_cache_size=8)
    for i, sealed in enumerate(seals):  # 3x the bound
        assert sealer.unseal(sealed) == {"i": i}
        assert sealer.key_cache_len == min(i + 1, 8)
    derivations.clear()
    for sealed in seals[-8:]:
        sealer.unseal(sealed)
    assert derivations == []  # the newest 8 are remembered
    sealer.unseal(seals[-8])  # now the most recently used of the 8
    sealer.unseal(seals[0])  # evicts the least recently used: seals[-7]
    assert len(derivations) == 2 and sealer.key_cache_len == 8
    derivations.clear()
    sealer.unseal(seals[-8])
    assert derivations == []
    sealer.unseal(seals[-7])
    assert len(derivations) == 2
    for _ in range(3):  # sealing seeds the cache, within the same bound
        sealer.seal({"x": 1})
    assert sealer.key_cache_len == 8


def test_key_cache_size_zero_disables_it(derivations: list[str]) -> None:
    sealer = Sealer(PW, key_cache_size=0)
    sealed = sealer.seal({"x": 1})
    for _ in range(3):
        assert sealer.unseal(sealed) == {"x": 1}
    assert sealer.key_cache_len == 0
    assert len(derivations) == 2 + 3 * 2


@pytest.mark.parametrize("size", [-1, 1.5, True, "4096", None])
def test_bad_key_cache_size(size: Any) -> None:
    with pytest.raises(SealConfigError):
        Sealer(PW, key_cache_size=size)


def test_refused_seals_never_enter_the_cache(frozen_now: int) -> None:
    sealer = Sealer(PW)
    refused = [
        Forge(PW, enc_salt=f"{i:064x}", mac_salt=f"{i + 1:064x}", mac="A" * 43).seal()
        for i in range(50)
    ]
    refused += [Forge(PW2, enc_salt=f"{i:064x}", mac_salt=f"{i:064x}").seal() for i in range(50)]
    refused += [
        Forge(PW, id="9").seal(),
        Forge(PW, expiration=str(NOW - 3_600_000)).seal(),
        Forge(PW, prefix="Fe26.1").seal(),
        "nope",
    ]
    for bad in refused:
        with pytest.raises(SealError):
            sealer.unseal(bad)
    assert sealer.key_cache_len == 0
    # A seal whose MAC verifies is remembered, even when its content is then refused: only a
    # holder of the password can make one.
    assert reason(sealer, Forge(PW, plaintext=b"nope").seal()) is SealReason.BAD_PAYLOAD
    assert sealer.key_cache_len == 1


def test_key_cache_under_threads() -> None:
    maker = Sealer(PW, key_cache_size=0)
    seals = [(maker.seal({"i": i}), {"i": i}) for i in range(64)]
    sealer = Sealer(PW, key_cache_size=16)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for n in range(400):
                sealed, data = seals[(n * 7 + offset) % len(seals)]
                assert sealer.unseal(sealed) == data
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sealer.key_cache_len <= 16 + len(threads)  # a race may overshoot by one per thread


HASHES = (("sha1", hashlib.sha1), ("sha256", hashlib.sha256), ("sha512", hashlib.sha512))


@pytest.mark.parametrize("length", [0, 1, 55, 56, 63, 64, 65, 127, 128, 129, 450, 3000])
def test_prepared_hmac_equals_the_standard_one(length: int) -> None:
    """SHA-512 (128-byte blocks) too: the pads take their length from the hash object."""
    data = (bytes(range(256)) * (length // 256 + 1))[:length]
    for key in (b"", b"k" * 32, b"k" * 64, b"k" * 65, b"k" * 128, b"k" * 129, bytes(range(200))):
        for name, new in HASHES:
            prepared = sealing._hmac_key(key, new)
            assert sealing._hmac(prepared, data) == hmac.digest(key, data, name)
            assert sealing._hmac(prepared, b"x") == hmac.digest(key, b"x", name)  # unchanged


def test_prepared_hmac_equals_the_standard_one_on_random_keys_of_every_length() -> None:
    rng = random.Random(20261201)
    for length in range(0, 300):
        key = rng.randbytes(length)
        data = rng.randbytes(rng.randrange(0, 300))
        for name, new in HASHES:
            assert sealing._hmac(sealing._hmac_key(key, new), data) == hmac.digest(key, data, name)


def test_pbkdf2_equals_the_standard_one_on_random_passwords() -> None:
    rng = random.Random(20261202)
    for length in range(0, 200):
        password = rng.randbytes(length)
        salt = rng.randbytes(32).hex()
        expected = hashlib.pbkdf2_hmac("sha1", password, salt.encode(), 1, 32)
        assert sealing._key(sealing._hmac_key(password, hashlib.sha1), salt) == expected


@pytest.mark.parametrize(
    ("passwords", "why"),
    [
        ({}, "empty"),
        ({"1": "short"}, "at least 32"),
        ({"\u00fc1": PW, "1": PW}, "password id"),  # \w matches Unicode letters; iron's ids don't
        ({"1\n": PW, "2": PW}, "password id"),  # re.match(r"^\w+$") accepts a trailing newline
        ({"a": PW}, "decimal"),
        ({"1": "\ud800" * 40}, "lone surrogate"),
    ],
)
def test_check_passwords_is_the_one_statement_of_the_rules(
    passwords: dict[str, str], why: str
) -> None:
    with pytest.raises(SealConfigError, match=why):
        sealing.check_passwords(passwords)
    with pytest.raises(SealConfigError, match=why):
        Sealer(passwords)


@pytest.mark.parametrize("password", [PW, PW2, "é" * 32, "x" * 63, "x" * 64, "x" * 65, "🍷" * 50])
def test_key_derivation_equals_pbkdf2(password: str) -> None:
    prepared = sealing._hmac_key(password.encode(), hashlib.sha1)
    for salt in (MAC_SALT, ENC_SALT, "", "x", "\ud800", "é" * 100):
        raw = salt.encode("utf-8", "surrogatepass")
        expected = hashlib.pbkdf2_hmac("sha1", password.encode(), raw, 1, 32)
        assert sealing._key(prepared, salt) == expected
        mac_key = sealing._mac_key(prepared, salt)
        assert sealing._hmac(mac_key, b"base") == hmac.digest(expected, b"base", "sha256")
