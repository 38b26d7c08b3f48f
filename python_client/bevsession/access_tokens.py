"""Supabase Auth access tokens, verified before a visitor's session is linked to an account.

A visitor who signs in (Supabase Auth, in the browser) holds an *access token*: a JWT with
``sub`` = the user's id, ``role`` and ``aud`` = ``authenticated``, ``exp``, signed by the
project. ``POST /api/session/link`` sends it as a Bearer token; :class:`AccessTokenVerifier`
checks it here, and only an account it returns is ever put into the claims of a
``link_session`` call (:mod:`bevsession.tokens`) — the database trusts that claim because only
the edge worker can mint it.

What is checked, and how:

- **the signature**, with the key the token names: ES256 or RS256 against the project's JWKS
  (``<SUPABASE_URL>/auth/v1/.well-known/jwks.json``, fetched and cached, or a JWKS given as
  data), HS256 against the legacy JWT secret. Nothing else: ``none``, HS384, PS256, EdDSA… are
  refused, an HS256 token is never checked with a public key (no algorithm confusion), a JWKS
  key is used only for its own key type, curve, ``alg`` and ``use``. A token naming a ``kid``
  is checked with that key only; one without a ``kid`` with every key that fits, as PostgREST
  does.
- **the claims**: ``exp`` (with 30 s of leeway for clock skew, as PostgREST), ``iat``/``nbf`` not
  in the future, ``aud`` containing ``authenticated``, ``role`` = ``authenticated``, ``sub`` a
  UUID. So the project's API keys (no ``sub``), this server's own per-session tokens (role
  ``session_visitor``, no ``aud``; they are signed with a key the same JWKS lists) and tokens of
  other audiences are refused. Anonymous sign-ins (``is_anonymous``) are accepted: their id
  stays the same when the user converts to a permanent account. ``iss`` is not checked: a key
  of the project's own JWKS already says which project signed the token.

The JWKS is cached for ten minutes. A token naming a ``kid`` the cache does not hold (a key the
project has just rotated in) fetches it again, at most once per 30 s, so made-up ``kid``s cannot
turn requests into fetches. If a fetch fails the last keys stay in use; with none at all,
:class:`JwksUnavailable` (the edge worker answers 503). Fetching uses httpx on the event loop,
not PyJWT's ``PyJWKClient`` (which blocks on urllib); PyJWT's ``PyJWK`` builds the keys.

Framework-free, like the rest of ``bevsession``: the aiohttp route is in ``bevsession_edge``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

import httpx
import jwt

__all__ = [
    "ALGORITHMS",
    "AUDIENCE",
    "JWKS_PATH",
    "AccessTokenError",
    "AccessTokenVerifier",
    "Account",
    "JwksUnavailable",
    "jwks_url",
    "parse_jwks",
]

log = logging.getLogger(__name__)

ALGORITHMS: Final = ("ES256", "RS256", "HS256")
AUDIENCE: Final = "authenticated"
ROLE: Final = "authenticated"
JWKS_PATH: Final = "/auth/v1/.well-known/jwks.json"
LEEWAY_SECONDS: Final = 30
JWKS_CACHE_SECONDS: Final = 600.0
JWKS_REFRESH_SECONDS: Final = 30.0
FETCH_TIMEOUT = httpx.Timeout(5.0)
MIN_SECRET_LENGTH: Final = 32
MAX_TOKEN_LENGTH: Final = 16_384

# alg -> (kty, crv) of the keys that can verify it (HS256: the secret, never a JWKS key)
_KEY_TYPES: Final[Mapping[str, tuple[str, str | None]]] = {
    "ES256": ("EC", "P-256"),
    "RS256": ("RSA", None),
}
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "k"})


class AccessTokenError(Exception):
    """The access token is refused (HTTP 401). ``reason`` is a short code for logs and tests;
    the message says why in words, never quoting the token."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason: Final = reason
        self.message: Final = message


class JwksUnavailable(Exception):
    """The project's JWKS cannot be fetched and no earlier copy is at hand (HTTP 503)."""


@dataclass(frozen=True, slots=True)
class Account:
    """Who a verified access token says the visitor is."""

    user_id: UUID
    is_anonymous: bool
    expires_at: int


def jwks_url(supabase_url: str) -> str:
    """The JWKS of a Supabase project: ``<SUPABASE_URL>/auth/v1/.well-known/jwks.json``."""
    return supabase_url.rstrip("/") + JWKS_PATH


def _fits(jwk: Mapping[str, Any], alg: str, kid: object) -> bool:
    """Can *jwk* verify a token of *alg* naming *kid*? Its key type and curve, its own ``alg``
    and ``use`` when it states them, and the same ``kid`` when the token names one."""
    kty, crv = _KEY_TYPES[alg]
    if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
        return False
    if kid is not None and jwk.get("kid") != kid:
        return False
    return bool(jwk.get("alg", alg) == alg and jwk.get("use", "sig") == "sig")


def _usable(jwk: Mapping[str, Any]) -> str | None:
    """Why *jwk* cannot be one of our verification keys, or None when it can."""
    if not isinstance(jwk.get("kty"), str):
        return "has no kty"
    if _PRIVATE_MEMBERS & set(jwk):
        return "holds private or secret key material (give public keys only)"
    if not any(_fits(jwk, alg, None) for alg in _KEY_TYPES):
        return f"is not an ES256 (EC P-256) or RS256 (RSA) signing key (kty {jwk.get('kty')!r})"
    try:
        jwt.PyJWK(dict(jwk))
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return "is not a valid public key"
    return None


def parse_jwks(
    value: str | Mapping[str, Any] | Iterable[Mapping[str, Any]],
) -> tuple[dict[str, Any], ...]:
    """The public keys of a JWKS: ``{"keys": [...]}``, a list of JWKs or one JWK, as JSON text
    or data. Raises ``ValueError`` (naming the problem) for anything that is not a set of
    public ES256/RS256 keys — a private key or a shared secret included."""
    data: Any = value
    if isinstance(value, str):
        try:
            data = json.loads(value)
        except ValueError:
            raise ValueError(
                'not JSON: give a JWKS {"keys": [...]}, a list of JWKs or one JWK'
            ) from None
    if isinstance(data, Mapping) and isinstance(data.get("keys"), list):
        data = data["keys"]
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, list) or not data:
        raise ValueError("holds no key")
    keys: list[dict[str, Any]] = []
    for index, jwk in enumerate(data):
        if not isinstance(jwk, Mapping):
            raise ValueError(f"key {index} is not a JSON object")
        problem = _usable(jwk)
        if problem is not None:
            named = f" (kid {jwk['kid']!r})" if jwk.get("kid") else ""
            raise ValueError(f"key {index}{named} {problem}")
        keys.append(dict(jwk))
    return tuple(keys)


class AccessTokenVerifier:
    """Verifies Supabase access tokens against a JWKS (fetched from *jwks_url*, or given as
    *jwks*) and/or the legacy HS256 *jwt_secret*; at least one of them. See the module doc."""

    def __init__(
        self,
        *,
        jwks: Iterable[Mapping[str, Any]] | None = None,
        jwks_url: str | None = None,
        jwt_secret: str | None = None,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        leeway: int = LEEWAY_SECONDS,
        cache_seconds: float = JWKS_CACHE_SECONDS,
        refresh_seconds: float = JWKS_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if jwks is not None and jwks_url is not None:
            raise ValueError("give the JWKS as data or as a URL, not both")
        if jwks is None and jwks_url is None and jwt_secret is None:
            raise ValueError("an access token verifier needs a JWKS (or its URL) or a JWT secret")
        if jwt_secret is not None and len(jwt_secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"the JWT secret must have at least {MIN_SECRET_LENGTH} characters")
        self._static = parse_jwks(list(jwks)) if jwks is not None else None
        self._url = jwks_url
        self._secret = jwt_secret
        self._headers = dict(headers or {})
        self._http = http_client
        self._owns_http = http_client is None
        self._leeway = leeway
        self._cache_seconds = cache_seconds
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._fetched: tuple[dict[str, Any], ...] | None = None
        self._fetched_at = float("-inf")  # when the cached copy was fetched
        self._tried_at = float("-inf")  # when a fetch was last attempted
        self._lock = asyncio.Lock()
        self.fetches = 0

    def describe(self) -> str:
        """What tokens are verified against, for the start-up log (no secret)."""
        parts = []
        if self._url is not None:
            parts.append(f"the JWKS at {self._url}")
        if self._static is not None:
            parts.append(f"SUPABASE_JWKS ({len(self._static)} key(s))")
        if self._secret is not None:
            parts.append("the legacy JWT secret (HS256)")
        return " and ".join(parts)

    async def close(self) -> None:
        if self._http is not None and self._owns_http:
            await self._http.aclose()
        self._http = None

    # --- verifying -------------------------------------------------------------------------
    async def verify(self, token: str) -> Account:
        """The account *token* proves, or :class:`AccessTokenError` (or, when the keys cannot
        be had at all, :class:`JwksUnavailable`)."""
        if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise AccessTokenError("malformed", "the access token is not a JWT")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AccessTokenError("malformed", "the access token is not a JWT") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS:
            raise AccessTokenError(
                "algorithm", f"the access token's algorithm is not one of {', '.join(ALGORITHMS)}"
            )
        if kid is not None and not isinstance(kid, str):
            raise AccessTokenError("malformed", "the access token's kid is not a string")
        claims = self._decode(token, alg, await self._keys_for(alg, kid))
        return self._account(claims)

    async def _keys_for(self, alg: str, kid: str | None) -> list[Any]:
        if alg == "HS256":
            if self._secret is None:
                raise AccessTokenError(
                    "algorithm", "HS256 access tokens are not accepted: no legacy JWT secret is set"
                )
            return [self._secret]
        keys = [k for k in await self._jwks() if _fits(k, alg, kid)]
        if not keys and kid is not None and self._url is not None:
            # a key the project has just rotated in? (at most one fetch per refresh_seconds)
            keys = [k for k in await self._jwks(refetch=True) if _fits(k, alg, kid)]
        if not keys:
            raise AccessTokenError(
                "unknown_key", "no key of the project's JWKS fits the access token (kid / alg)"
            )
        return [jwt.PyJWK(k, algorithm=alg).key for k in keys]

    def _decode(self, token: str, alg: str, keys: list[Any]) -> dict[str, Any]:
        for key in keys:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token, key, algorithms=[alg], audience=AUDIENCE, leeway=self._leeway,
                    options={"require": ["exp", "sub", "aud"]},
                )  # fmt: skip
                return claims
            except (jwt.InvalidSignatureError, jwt.InvalidKeyError):
                continue  # not this key: try the next one
            except jwt.ExpiredSignatureError:
                raise AccessTokenError("expired", "the access token has expired") from None
            except jwt.ImmatureSignatureError:
                raise AccessTokenError(
                    "not_yet_valid", "the access token is not valid yet"
                ) from None
            except jwt.InvalidAudienceError:
                raise AccessTokenError(
                    "audience", f"the access token is not for the {AUDIENCE!r} audience"
                ) from None
            except jwt.MissingRequiredClaimError as exc:
                raise AccessTokenError(
                    "claims", f"the access token has no {exc.claim!r} claim"
                ) from None
            except jwt.PyJWTError:
                raise AccessTokenError("malformed", "the access token cannot be decoded") from None
        raise AccessTokenError("signature", "the access token's signature does not verify")

    @staticmethod
    def _account(claims: Mapping[str, Any]) -> Account:
        if claims.get("role") != ROLE:
            raise AccessTokenError(
                "claims", f"not a signed-in user's access token (role is not {ROLE!r})"
            )
        sub = claims.get("sub")
        try:
            user_id = UUID(sub) if isinstance(sub, str) else None
        except ValueError:
            user_id = None
        if user_id is None:
            raise AccessTokenError("claims", "the access token's sub is not a user id (a UUID)")
        exp = claims.get("exp")
        return Account(
            user_id=user_id,
            is_anonymous=claims.get("is_anonymous") is True,
            expires_at=int(exp) if isinstance(exp, int | float) else 0,
        )

    # --- the JWKS --------------------------------------------------------------------------
    async def _jwks(self, *, refetch: bool = False) -> tuple[dict[str, Any], ...]:
        """The keys: the static JWKS, or the fetched one — fetched again once it is older than
        ``cache_seconds`` or, with *refetch*, at once; never twice within ``refresh_seconds``."""
        if self._static is not None:
            return self._static
        asked = self._clock()
        if not refetch and self._fresh(asked):
            assert self._fetched is not None
            return self._fetched
        async with self._lock:  # concurrent requests share one fetch
            now = self._clock()
            if self._fetched is not None and (
                self._fetched_at >= asked or (not refetch and self._fresh(now))
            ):
                return self._fetched  # another request fetched it while this one waited
            if now - self._tried_at < self._refresh_seconds:  # tried a moment ago
                if self._fetched is not None:
                    return self._fetched
                raise JwksUnavailable("the project's JWKS could not be fetched; retrying shortly")
            self._tried_at = now
            try:
                self._fetched = await self._fetch()
                self._fetched_at = now
            except JwksUnavailable:
                if self._fetched is None:
                    raise
                log.warning("verifying with the JWKS fetched before, until a fetch succeeds")
            return self._fetched

    def _fresh(self, now: float) -> bool:
        return self._fetched is not None and now - self._fetched_at < self._cache_seconds

    async def _fetch(self) -> tuple[dict[str, Any], ...]:
        assert self._url is not None
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False)
        self.fetches += 1
        try:
            response = await self._http.get(self._url, headers=self._headers)
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("cannot fetch the JWKS from %s: %s", self._url, type(exc).__name__)
            raise JwksUnavailable(
                f"cannot fetch the project's JWKS ({type(exc).__name__})"
            ) from None
        raw = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(raw, list):
            raise JwksUnavailable('the project\'s JWKS is not {"keys": [...]}')
        keys = []
        for jwk in raw:  # a key we cannot use (another type, a malformed one) is skipped
            if isinstance(jwk, dict) and _usable(jwk) is None:
                keys.append(dict(jwk))
        log.debug("fetched the JWKS from %s: %d usable key(s)", self._url, len(keys))
        return tuple(keys)
