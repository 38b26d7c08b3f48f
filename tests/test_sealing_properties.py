"""Properties of bevsession.sealing: round trips, tamper evidence, and "SealError or nothing"."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import padding
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from bevsession.sealing import Sealer, SealError, SealReason
from interop.fe26_reference import Forge

PW = "correct horse battery staple 0123456789"
PW2 = "another password, also long enough!!"
SEALER = Sealer({"1": PW, "2": PW2})
NOW = 1_700_000_000_000
JS_SAFE = 2**53 - 1

# JSON values that survive JSON.stringify/JSON.parse as well: integers JS holds exactly, finite
# floats, and text without surrogate code points (a lone one is escaped and round-trips, but a
# Python "pair" of two surrogates comes back as one astral character, as it would in JS).
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-JS_SAFE, JS_SAFE)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(text, children, max_size=6),
    max_leaves=40,
)

# Seals the tamper properties work on: with and without an expiration, and from each id.
SEALS = [
    SEALER.seal({"session": "abc", "n": [1, 2, 3], "t": "Grüße 🍷"}, ttl=0),
    SEALER.seal({"session": "abc"}, ttl=86400),
    Sealer({"1": PW}).seal([], ttl=3600),
]


def unpad(padded: bytes) -> bytes:
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def refused(sealed: Any) -> SealReason:
    with pytest.raises(SealError) as info:
        SEALER.unseal(sealed)
    return info.value.reason


@given(json_values)
@example(None)
@example({"": [{}, [], "", 0, -0.0, 1e-7, 1e21, 5e-324, 1.7976931348623157e308]})
@example("\u2028\u2029\x00\x7f\ufeff")
def test_round_trip(value: Any) -> None:
    # iron-session opens a seal of null as {}
    assert SEALER.unseal(SEALER.seal(value)) == ({} if value is None else value)


@given(st.sampled_from(SEALS), st.data())
def test_any_single_character_change_is_refused(sealed: str, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(sealed) - 1), label="index")
    c = data.draw(st.characters(), label="replacement")
    assume(c != sealed[i])
    refused(sealed[:i] + c + sealed[i + 1 :])


@given(st.sampled_from(SEALS), st.data())
def test_any_single_byte_change_is_refused(sealed: str, data: st.DataObject) -> None:
    raw = bytearray(sealed.encode())
    i = data.draw(st.integers(0, len(raw) - 1), label="index")
    b = data.draw(st.integers(0, 255).filter(lambda b: b != raw[i]), label="byte")
    raw[i] = b
    refused(raw.decode("utf-8", "surrogateescape"))


@given(st.sampled_from(SEALS), st.data())
def test_any_single_character_insertion_or_deletion_is_refused(
    sealed: str, data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(sealed)), label="index")
    if data.draw(st.booleans(), label="insert"):
        changed = sealed[:i] + data.draw(st.characters(), label="char") + sealed[i:]
    else:
        assume(i < len(sealed))
        changed = sealed[:i] + sealed[i + 1 :]
    refused(changed)


def test_every_single_character_change_of_one_seal_is_refused() -> None:
    """Exhaustive over the characters a cookie value can carry, for one seal."""
    sealed = SEALS[1]
    alphabet = [chr(c) for c in range(0x21, 0x7F)]
    for i, original in enumerate(sealed):
        for c in alphabet:
            if c != original:
                with pytest.raises(SealError):
                    SEALER.unseal(sealed[:i] + c + sealed[i + 1 :])


@given(st.text())
@example("Fe26.2*1*******~2")
@example("Fe26.2*constructor*a*b*c**e*f~2")
@example("Fe26.2*__proto__*a*b*c*" + "9" * 5000 + "*e*f~2")
def test_arbitrary_text_only_ever_raises_seal_error(sealed: str) -> None:
    refused(sealed)


component = st.text(max_size=70) | st.from_regex(r"[0-9a-zA-Z_-]{0,70}", fullmatch=True)


@given(st.lists(component, min_size=8, max_size=8), st.sampled_from(["~2", "", "~3"]))
def test_arbitrary_components_only_ever_raise_seal_error(parts: list[str], suffix: str) -> None:
    parts[0] = "Fe26.2"
    refused("*".join(parts) + suffix)


@given(st.binary(max_size=200), st.booleans())
@example(b"", False)
@example(b"\x10" * 16, False)
def test_anything_behind_a_valid_mac_opens_or_is_bad_payload(plaintext: bytes, pad: bool) -> None:
    if not pad:  # raw blocks: whole blocks only, their last byte decides the padding
        plaintext = plaintext[: len(plaintext) // 16 * 16]
    sealed = Forge(PW, plaintext=plaintext, pad=pad).seal()
    try:
        value = SEALER.unseal(sealed)
    except SealError as err:
        assert err.reason is SealReason.BAD_PAYLOAD
    else:
        content = plaintext if pad else unpad(plaintext)
        expected = json.loads(content.decode()) if content else None
        assert value == ({} if expected is None else expected)


@given(st.text(max_size=30))
def test_ids_outside_the_map_are_unknown(pid: str) -> None:
    assume(pid not in ("1", "2", ""))
    sealed = Forge(PW, id=pid).seal()
    reason = refused(sealed)
    assert reason in (SealReason.UNKNOWN_PASSWORD_ID, SealReason.MALFORMED)
    if "*" not in pid and "~" not in pid:
        assert reason is SealReason.UNKNOWN_PASSWORD_ID


@settings(max_examples=200)
@given(st.integers(-(10**6), 10**6), st.integers(0, 600))
def test_expiry_is_exp_le_now_minus_skew(delta: int, skew: int) -> None:
    sealer = Sealer(PW, timestamp_skew_sec=skew)
    sealed = Forge(PW, expiration=str(NOW + delta)).seal()
    sealer_now = Sealer.__dict__["_now_ms"]
    try:
        Sealer._now_ms = lambda self: NOW  # type: ignore[method-assign]
        if NOW + delta <= NOW - skew * 1000:
            with pytest.raises(SealError) as info:
                sealer.unseal(sealed)
            assert info.value.reason is SealReason.EXPIRED
        else:
            assert sealer.unseal(sealed) == {}
    finally:
        Sealer._now_ms = sealer_now  # type: ignore[method-assign]
