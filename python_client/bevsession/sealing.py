"""iron's ``Fe26.2`` seal, byte-compatible with iron-session 8.0.4 / iron-webcrypto 1.2.1.

A cookie sealed by a Node iron-session app opens here and the other way round, so routes
can move from the Next.js seed app to the Python edge worker one at a time.

The format (``~2`` is iron-session's version suffix, outside the MAC)::

    Fe26.2*<id>*<encSalt>*<iv>*<ciphertext>*<expiration>*<hmacSalt>*<hmac>~2

- salts: 32 random bytes as 64 lowercase hex characters, one for encryption, one for the MAC;
- keys: PBKDF2-HMAC-SHA1, 1 iteration, 32 bytes, salt = the UTF-8 bytes of the hex STRING;
- cipher: AES-256-CBC with PKCS#7 padding and a random 16-byte IV;
- MAC: HMAC-SHA256 over ``Fe26.2*id*encSalt*iv*ct*exp``, base64url without padding (43 chars),
  compared as that string in constant time, so a non-canonical last character is rejected;
- expiration: milliseconds since the epoch (empty when ttl is 0), checked with a clock-skew
  allowance; the ttl given to unseal plays no part (as in iron-session).

Everything an unseal can go wrong with raises :class:`SealError` and nothing else; callers
treat every reason alike as "no session". Configuration mistakes (a short password, a bad
id, a negative ttl) are :class:`SealConfigError`, a ``ValueError``, raised when the sealer is
built or data is sealed — never disguised as a bad seal.

Derived-key cache: a browser sends the same cookie on every request until the server reseals
it, and the two PBKDF2 keys of a seal are a pure function of (password, salt), so deriving them
again on every request is waste (about a quarter of an unseal of a small session). Each
:class:`Sealer` therefore keeps a bounded map (password id, MAC salt, encryption salt, IV) →
keys (the prepared MAC key and the AES cipher set up with that IV). Only keys are kept, never
a seal's content, and each unseal still decrypts: a cached seal still goes through every check,
the MAC included, on every unseal. Entries go in only once the MAC has verified (or from
:meth:`Sealer.seal`, for the seal it just made), so forged seals with random salts cannot fill
or churn it. It is bounded (``key_cache_size`` entries) and evicts the least recently used.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
import json
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "DEFAULT_TTL",
    "MIN_PASSWORD_LENGTH",
    "TIMESTAMP_SKEW_SEC",
    "Password",
    "SealConfigError",
    "SealError",
    "SealReason",
    "Sealer",
    "check_passwords",
    "js_length",
    "seal_data",
    "unseal_data",
]

DEFAULT_TTL: Final = 14 * 24 * 3600
"""iron-session's default ttl in seconds (14 days)."""
MIN_PASSWORD_LENGTH: Final = 32
"""iron's minimum, counted as JS does: UTF-16 code units."""
TIMESTAMP_SKEW_SEC: Final = 60
"""iron's clock-skew allowance: a seal counts as expired only this long after its expiration."""

Password = str | Mapping[str, str]
"""One password (sealed under id ``"1"``, as iron-session does) or a rotation map id → password."""

MAC_PREFIX: Final = "Fe26.2"
VERSION_SUFFIX: Final = "~2"
_PASSWORD_ID = re.compile(r"\w+", re.ASCII)
# base64url → standard base64; the bytes base64url lacks become "!", which strict a2b refuses.
_FROM_URL_STRICT = bytes.maketrans(b"-_+/=", b"+/!!!")
_TO_URL = bytes.maketrans(b"+/", b"-_")
_MAX_EXP_DIGITS: Final = 4000  # below int()'s 4300-digit limit; anything longer is far future
_PADDINGS: Final = tuple(bytes((n,)) * n for n in range(17))  # _PADDINGS[n]: n bytes of value n
_DEFAULT_KEY_CACHE_SIZE: Final = 4096

# Randomness for salts and IV: one call per seal. Tests may replace it to build known answers.
_urandom = os.urandom


class SealReason(StrEnum):
    """Why a seal did not open. Every reason means the same to a caller: no session.

    There is no "wrong password" reason: a seal made under the same id with another password and a
    tampered seal fail the same way, at the MAC, and cannot be told apart (that is the point of a
    MAC). A wrong password therefore shows up as ``BAD_MAC``; a seal made under an id this sealer
    does not have shows up as ``UNKNOWN_PASSWORD_ID``.
    """

    MALFORMED = "malformed"
    """Not a ``Fe26.2``/``~2`` seal: wrong shape, prefix, suffix or a non-digit expiration."""
    EXPIRED = "expired"
    UNKNOWN_PASSWORD_ID = "unknown_password_id"  # noqa: S105 (a reason, not a secret)
    BAD_MAC = "bad_mac"
    """Tampered, or sealed with another password under the same id."""
    BAD_PAYLOAD = "bad_payload"
    """The MAC is good but the content is not: base64, IV, padding, UTF-8 or JSON. Only a holder
    of the password can make such a seal; iron-session throws on it, we refuse it."""


class SealError(Exception):
    """A seal that does not open. The only exception :meth:`Sealer.unseal` raises."""

    def __init__(self, reason: SealReason, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason: Final = reason
        self.detail: Final = detail

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}"


class SealConfigError(ValueError):
    """The sealer's configuration is unusable (password too short, bad id, bad ttl)."""


def js_length(text: str) -> int:
    """Length of ``text`` as JavaScript counts it (UTF-16 code units): iron's password minimum."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _check_seconds(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SealConfigError(f"{what} must be a whole number of seconds >= 0")
    return value


def _password_bytes(pid: str, password: object) -> bytes:
    if not isinstance(password, str):
        raise SealConfigError(f"password {pid!r} must be a string")
    length = js_length(password)
    if length < MIN_PASSWORD_LENGTH:
        raise SealConfigError(
            f"password {pid!r} has {length} characters; at least {MIN_PASSWORD_LENGTH} are "
            "required (counted in UTF-16 units, as JavaScript does)"
        )
    try:
        return password.encode("utf-8")
    except UnicodeEncodeError:
        raise SealConfigError(f"password {pid!r} contains a lone surrogate") from None


def _is_decimal_id(pid: str) -> bool:
    return pid.isascii() and pid.isdigit() and (pid == "0" or pid[0] != "0")


def check_passwords(passwords: Mapping[str, object]) -> dict[str, bytes]:
    """iron-session's rules for a password map, the one place they are written: ids are
    ``\\w+`` (ASCII, whole string), passwords strings of at least :data:`MIN_PASSWORD_LENGTH`
    JavaScript characters without lone surrogates, and at least one id is a decimal number (the
    newest such id seals). Returns each password's UTF-8 bytes; raises :class:`SealConfigError`.
    """
    if not isinstance(passwords, Mapping):
        raise SealConfigError("password must be a string or a mapping of id to password")
    if not passwords:
        raise SealConfigError("the password map is empty")
    checked: dict[str, bytes] = {}
    for pid, secret in passwords.items():
        if not isinstance(pid, str) or not _PASSWORD_ID.fullmatch(pid):
            raise SealConfigError(f"password id {pid!r} must be ASCII letters, digits or '_'")
        checked[pid] = _password_bytes(pid, secret)
    if not any(_is_decimal_id(pid) for pid in checked):
        raise SealConfigError("no password id is a decimal number, so none can seal")
    return checked


def _b64url(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_TO_URL).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    """Strict base64url (no padding); raises ``ValueError`` on anything else.

    One ``bytes.translate`` maps the URL alphabet to the standard one and ``+``, ``/`` and ``=``
    (not base64url) to ``!``; ``a2b_base64(strict_mode=True)`` then refuses every byte outside
    the standard alphabet, so anything foreign fails. Cheaper than a separate alphabet check
    (which cost a third of a regex): measured by ``python -m bench.sealing``.
    """
    if len(text) % 4 == 1 or not text.isascii():
        raise ValueError("not base64url")
    raw = text.encode("ascii").translate(_FROM_URL_STRICT)
    return binascii.a2b_base64(raw + b"=" * (-len(raw) % 4), strict_mode=True)


_IPAD: Final = bytes(b ^ 0x36 for b in range(256))
_OPAD: Final = bytes(b ^ 0x5C for b in range(256))
_HmacKey = tuple["hashlib._Hash", "hashlib._Hash"]
"""An HMAC key prepared once: the hash states after the key's inner and outer pad (RFC 2104)."""
_Keys = tuple[_HmacKey, Cipher[modes.CBC]]
"""A seal's derived keys, ready to use: the prepared MAC key and its AES-256-CBC cipher (the
AES key with the seal's own IV; each unseal still starts a new decryption context)."""
_CacheKey = tuple[str, str, str, str]
"""(password id, MAC salt, encryption salt, IV as sealed)."""


def _hmac_key(key: bytes, new: Callable[[bytes], hashlib._Hash]) -> _HmacKey:
    """Prepare ``key`` for :func:`_hmac` with the hash ``new`` (iron uses ``hashlib.sha1`` and
    ``hashlib.sha256``). The pads are as long as the hash's block, which the hash object states
    (64 bytes for both of those, 128 for SHA-512); a longer key is hashed first (RFC 2104)."""
    block = new(b"").block_size
    if len(key) > block:
        key = new(key).digest()
    key = key.ljust(block, b"\0")
    return new(key.translate(_IPAD)), new(key.translate(_OPAD))


def _hmac(key: _HmacKey, data: bytes) -> bytes:
    """HMAC of ``data``: equals ``hmac.digest(key, data, ...)`` (tested), without re-keying.

    The prepared states are only copied, never updated, so concurrent callers cannot disturb
    them. A one-shot ``hmac.digest`` re-keys on every call and costs twice as much.
    """
    inner = key[0].copy()
    inner.update(data)
    outer = key[1].copy()
    outer.update(inner.digest())
    return outer.digest()


def _key(password: _HmacKey, salt: str) -> bytes:
    """iron's key: PBKDF2-HMAC-SHA1 of the password (prepared with SHA-1), 1 iteration, 32 bytes.

    With one iteration PBKDF2 (RFC 8018, 5.2) is ``T1 || T2`` cut to 32 bytes, where
    ``Ti = HMAC(password, salt || INT(i))``. Equals ``hashlib.pbkdf2_hmac("sha1", password,
    salt, 1, 32)`` (tested), in half the time: that re-keys HMAC with the password on each call.
    """
    # surrogatepass: a forged salt may hold anything; it must fail at the MAC, not raise here.
    raw = salt.encode("utf-8", "surrogatepass")
    return (_hmac(password, raw + b"\0\0\0\1") + _hmac(password, raw + b"\0\0\0\2"))[:32]


def _mac_key(password: _HmacKey, salt: str) -> _HmacKey:
    """The MAC key of ``salt``, prepared for HMAC-SHA256."""
    return _hmac_key(_key(password, salt), hashlib.sha256)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
# JSON.stringify writes a lone surrogate as a \udXXX escape; UTF-8 cannot carry it raw.
_ASCII_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)  # JSON.parse refuses NaN


def _to_json(data: Any) -> bytes:
    """``JSON.stringify`` as UTF-8. NaN/Infinity and cycles raise ``ValueError``, other types
    ``TypeError``: data that cannot be sealed is the caller's bug, not a bad seal."""
    text = _ENCODER.encode(data)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _ASCII_ENCODER.encode(data).encode("ascii")


class Sealer:
    """Seals and unseals with one validated password configuration.

    Build it once from the configuration: passwords are checked and encoded here, so a bad
    configuration fails at start-up instead of on the first request.

    Rotation: every id of the map opens; sealing uses the id with the highest numeric value
    (iron-session's ``Math.max`` over the ids), so ``{"1": old, "2": new}`` seals with ``"2"``.
    Ids must match ``^\\w+$``; only ids written as plain decimal numbers take part in choosing the
    sealing id, other ids only open (iron-session cannot seal at all with a non-numeric id in its
    map). A seal with an empty id is looked up as ``"default"``, as iron does.

    Key cache: a browser re-sends the same cookie until the server reseals it, and a seal's two
    PBKDF2 keys depend only on the password and the seal's salts. So the sealer remembers the
    keys of up to ``key_cache_size`` seals (with the AES cipher set up for the seal's IV), keyed
    by (password id, MAC salt, encryption salt, IV): the id fixes the password, as a sealer's
    passwords never change. A seal is remembered once its MAC has verified, or when
    :meth:`seal` made it (the next request presents exactly that seal); a forged seal never
    enters. A remembered seal still passes every check on every unseal, the MAC included, and
    is decrypted every time: only the key derivations and the cipher set-up are skipped. The
    least recently used entry goes first; each takes about 1.2 KB (~5 MB at the default 4096,
    half of it the MAC key's two prepared SHA-256 states). ``key_cache_size=0``
    turns it off. Safe under asyncio; under threads a race can at worst derive keys twice or
    overshoot the bound by an entry per racing thread. Sealing a new cookie for every
    cookieless request (bots) churns the cache; a browser's next request then derives again.
    """

    __slots__ = (
        "_key_cache",
        "_key_cache_size",
        "_local_offset_ms",
        "_passwords",
        "_seal_id",
        "_seal_password",
        "_skew_ms",
        "_ttl",
    )

    def __init__(
        self,
        password: Password,
        *,
        ttl: int = DEFAULT_TTL,
        timestamp_skew_sec: int = TIMESTAMP_SKEW_SEC,
        local_offset_ms: int = 0,
        key_cache_size: int = _DEFAULT_KEY_CACHE_SIZE,
    ) -> None:
        """``ttl`` is the default lifetime in seconds (0 = no expiry); ``timestamp_skew_sec`` how
        long after its expiration a seal still opens; ``local_offset_ms`` is added to this
        machine's clock, like iron's ``localtimeOffsetMsec``; ``key_cache_size`` is how many
        seals' derived keys are remembered (0 = none; see the class docstring)."""
        items = {"1": password} if isinstance(password, str) else password
        passwords = {
            pid: _hmac_key(secret, hashlib.sha1) for pid, secret in check_passwords(items).items()
        }
        decimal_ids = [pid for pid in passwords if _is_decimal_id(pid)]
        self._seal_id: Final = max(decimal_ids, key=lambda pid: (len(pid), pid))
        self._seal_password: Final = passwords[self._seal_id]
        self._passwords: Final = passwords
        self._ttl: Final = _check_seconds(ttl, "ttl (0 = no expiry)")
        self._skew_ms: Final = _check_seconds(timestamp_skew_sec, "timestamp_skew_sec") * 1000
        if not isinstance(local_offset_ms, int) or isinstance(local_offset_ms, bool):
            raise SealConfigError("local_offset_ms must be an int")
        self._local_offset_ms: Final = local_offset_ms
        if not isinstance(key_cache_size, int) or isinstance(key_cache_size, bool):
            raise SealConfigError("key_cache_size must be a whole number >= 0 (0 = no cache)")
        if key_cache_size < 0:
            raise SealConfigError("key_cache_size must be a whole number >= 0 (0 = no cache)")
        self._key_cache_size: Final = key_cache_size
        self._key_cache: Final[OrderedDict[_CacheKey, _Keys]] = OrderedDict()

    @property
    def seal_id(self) -> str:
        """The password id new seals carry."""
        return self._seal_id

    @property
    def key_cache_len(self) -> int:
        """How many seals' derived keys are remembered now (at most ``key_cache_size``)."""
        return len(self._key_cache)

    def _now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self._local_offset_ms

    def _remember(self, cache_key: _CacheKey, keys: _Keys) -> None:
        """Insert into the key cache, evicting the least recently used entries beyond the bound.

        ``OrderedDict.popitem(last=False)`` takes O(1) (popping a plain dict's first key scans
        the holes earlier pops left). Each call is one C operation on str-tuple keys, atomic
        under the GIL; another thread emptying the cache meanwhile is the only race (KeyError).
        """
        cache = self._key_cache
        try:
            while len(cache) >= self._key_cache_size:
                cache.popitem(last=False)
        except KeyError:
            pass
        cache[cache_key] = keys

    def seal(self, data: Any, *, ttl: int | None = None) -> str:
        """Seal ``data`` (anything ``JSON.stringify`` writes the same way) for ``ttl`` seconds.

        Raises ``ValueError``/``TypeError`` for data JSON cannot carry (NaN, Infinity, cycles,
        other objects) and :class:`SealConfigError` for a negative ttl.
        """
        ttl = self._ttl if ttl is None else _check_seconds(ttl, "ttl (0 = no expiry)")
        plaintext = _to_json(data)
        random = _urandom(80)
        enc_salt = random[:32].hex()
        mac_salt = random[32:64].hex()
        iv = random[64:]
        password = self._seal_password
        pad = 16 - len(plaintext) % 16
        aes = algorithms.AES(_key(password, enc_salt))
        encryptor = Cipher(aes, modes.CBC(iv)).encryptor()
        ciphertext = encryptor.update(plaintext + _PADDINGS[pad]) + encryptor.finalize()
        expiration = str(self._now_ms() + ttl * 1000) if ttl else ""
        base = (
            f"{MAC_PREFIX}*{self._seal_id}*{enc_salt}*{_b64url(iv)}*{_b64url(ciphertext)}"
            f"*{expiration}"
        )
        mac_key = _mac_key(password, mac_salt)
        mac = _hmac(mac_key, base.encode("ascii"))
        if self._key_cache_size:  # the next request presents exactly this seal
            cache_key = (self._seal_id, mac_salt, enc_salt, _b64url(iv))
            self._remember(cache_key, (mac_key, Cipher(aes, modes.CBC(iv))))
        return f"{base}*{mac_salt}*{_b64url(mac)}{VERSION_SUFFIX}"

    def unseal(self, sealed: str) -> Any:
        """Open a seal and return its data; raise :class:`SealError` and nothing else.

        Checks run in iron's order: ``~2`` suffix, part count, prefix, expiration, password id,
        MAC, then the content (base64, decryption, UTF-8, JSON). A seal without the ``~2``
        suffix is what iron-session reads as its pre-v6 format; we do not support that format
        and refuse it as ``malformed``. Like iron-session, a seal of ``null`` (or of nothing)
        opens as ``{}``.
        """
        if not isinstance(sealed, str) or not sealed.endswith(VERSION_SUFFIX):
            raise SealError(SealReason.MALFORMED, "not a ~2 seal")
        body = sealed[: -len(VERSION_SUFFIX)]
        if "~" in body:
            raise SealError(SealReason.MALFORMED, "stray '~'")
        parts = body.split("*")
        if len(parts) != 8:
            raise SealError(SealReason.MALFORMED, "incorrect number of sealed components")
        prefix, pid, enc_salt, iv_b64, ct_b64, expiration, mac_salt, mac = parts
        if prefix != MAC_PREFIX:
            raise SealError(SealReason.MALFORMED, "wrong mac prefix")
        if expiration:
            if not (expiration.isascii() and expiration.isdigit()):
                raise SealError(SealReason.MALFORMED, "invalid expiration")
            digits = expiration.lstrip("0")
            if len(digits) <= _MAX_EXP_DIGITS and int(digits or "0") <= (
                self._now_ms() - self._skew_ms
            ):
                raise SealError(SealReason.EXPIRED, "expired seal")
        pid = pid or "default"
        password = self._passwords.get(pid)
        if password is None:
            raise SealError(SealReason.UNKNOWN_PASSWORD_ID, "cannot find password for this id")
        # The keys are a pure function of (password, salt) and the id fixes the password: a hit
        # skips the two derivations (and the cipher set-up), never a check: the MAC below is
        # verified and the content decrypted either way.
        cache = self._key_cache
        cache_key = (pid, mac_salt, enc_salt, iv_b64)
        keys = cache.get(cache_key)
        mac_key = _mac_key(password, mac_salt) if keys is None else keys[0]
        # "*".join(parts[:6]): the body without its last two parts and their two separators
        base = body[: len(body) - len(mac_salt) - len(mac) - 2].encode("utf-8", "surrogatepass")
        expected = _b64url(_hmac(mac_key, base))
        if not (mac.isascii() and hmac.compare_digest(expected, mac)):
            raise SealError(SealReason.BAD_MAC, "bad hmac value")
        try:
            if keys is None:
                iv = _b64url_decode(iv_b64)
                cipher = Cipher(algorithms.AES(_key(password, enc_salt)), modes.CBC(iv))
                if self._key_cache_size:
                    self._remember(cache_key, (mac_key, cipher))
            else:
                cipher = keys[1]
                try:  # noqa: SIM105 (contextlib.suppress costs more than the rest of this branch)
                    cache.move_to_end(cache_key)  # recently used: evicted last
                except KeyError:  # evicted by another thread meanwhile
                    pass
            ciphertext = _b64url_decode(ct_b64)
            decryptor = cipher.decryptor()
            padded = decryptor.update(ciphertext)
            if tail := decryptor.finalize():  # always empty for CBC without padding
                padded += tail
        except ValueError:
            raise SealError(SealReason.BAD_PAYLOAD, "undecryptable content") from None
        pad = padded[-1] if padded else 0
        if not 1 <= pad <= 16 or not padded.endswith(_PADDINGS[pad]):
            raise SealError(SealReason.BAD_PAYLOAD, "bad padding")
        try:
            text = padded[:-pad].decode("utf-8")
        except UnicodeDecodeError:
            raise SealError(SealReason.BAD_PAYLOAD, "content is not UTF-8") from None
        if not text:
            return {}
        try:
            data = _DECODER.decode(text)
        except (ValueError, RecursionError):
            raise SealError(SealReason.BAD_PAYLOAD, "content is not JSON") from None
        return {} if data is None else data


@functools.lru_cache(maxsize=8)
def _cached_sealer(key: str | tuple[tuple[str, str], ...]) -> Sealer:
    return Sealer(key if isinstance(key, str) else dict(key))


def _sealer_for(password: Password) -> Sealer:
    """The module functions build a :class:`Sealer` once per password configuration."""
    if isinstance(password, str):
        return _cached_sealer(password)
    if isinstance(password, Mapping):
        try:
            return _cached_sealer(tuple(password.items()))
        except TypeError:  # unhashable values: build uncached, which raises a clear error
            pass
    return Sealer(password)


def seal_data(data: Any, *, password: Password, ttl: int = DEFAULT_TTL) -> str:
    """iron-session's ``sealData``: seal ``data`` for ``ttl`` seconds (0 = no expiry)."""
    return _sealer_for(password).seal(data, ttl=ttl)


def unseal_data(sealed: str, *, password: Password, ttl: int = DEFAULT_TTL) -> Any:
    """iron-session's ``unsealData``, except that every failure raises :class:`SealError`.

    ``ttl`` is accepted for symmetry and ignored, as in iron-session: the seal's own expiration
    decides. Only ``~2`` seals open: iron-session reads a seal without the suffix as its pre-v6
    format, which we refuse as ``malformed``. A short password still raises
    :class:`SealConfigError`, a configuration error rather than a bad seal.
    """
    del ttl
    return _sealer_for(password).unseal(sealed)
