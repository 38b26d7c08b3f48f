"""Supabase access tokens (bevsession.access_tokens) and the settings that configure them.

Real keys and real HTTP: the JWKS is served by a tiny aiohttp server on 127.0.0.1 whose keys a
test can rotate or take down, and the verifier's clock is a test's own, so caching, rotation
and outages are checked without waiting. The route on top (``POST /api/session/link``) is
tests/test_linking.py.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from aiohttp import web

from bevsession.access_tokens import (
    AccessTokenError,
    AccessTokenVerifier,
    JwksUnavailable,
    jwks_url,
    parse_jwks,
)
from bevsession.supabase_keys import SigningKey
from bevsession_edge.config import ConfigError, load_settings
from e2e_server import PASSWORD
from rpc_fixtures import Keys

SECRET = "s" * 40


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class JwksServer:
    """``/auth/v1/.well-known/jwks.json`` on 127.0.0.1: a key list to rotate, an outage switch."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.down = False
        self.requests = 0
        self.headers: list[dict[str, str]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.headers.append(dict(request.headers))
        if self.down:
            return web.json_response({"message": "unavailable"}, status=503)
        return web.json_response({"keys": [k.public_jwk() for k in self.keys]})


@contextlib.asynccontextmanager
async def jwks_server(*keys: SigningKey) -> AsyncIterator[JwksServer]:
    served = JwksServer(*keys)
    app = web.Application()
    app.router.add_get("/auth/v1/.well-known/jwks.json", served.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    served.url = jwks_url(f"http://127.0.0.1:{port}")
    try:
        yield served
    finally:
        await runner.cleanup()


def token(key: SigningKey | str, user: uuid.UUID | None = None, **claims: Any) -> str:
    keys = Keys("", "", "", auth_key=key if isinstance(key, SigningKey) else None)
    return keys.access_token(user or uuid.uuid4(), key=key if isinstance(key, str) else None,
                             **claims)  # fmt: skip


@pytest.fixture(scope="module")
def es256() -> SigningKey:
    return SigningKey.generate("ES256")


@pytest.fixture(scope="module")
def rs256() -> SigningKey:
    return SigningKey.generate("RS256")


# --- parse_jwks ---------------------------------------------------------------------------------
def test_parse_jwks_takes_a_set_a_list_or_one_key(es256: SigningKey, rs256: SigningKey) -> None:
    both = [es256.public_jwk(), rs256.public_jwk()]
    assert parse_jwks(json.dumps({"keys": both})) == tuple(both)
    assert parse_jwks(json.dumps(both)) == tuple(both)
    assert parse_jwks(json.dumps(both[0])) == (both[0],)
    assert parse_jwks({"keys": both}) == tuple(both)


@pytest.mark.parametrize(
    ("jwks", "problem"),
    [
        ("not json", "not JSON"),
        ("[]", "holds no key"),
        ('{"keys": []}', "holds no key"),
        ("[1]", "not a JSON object"),
        ('{"kty": "oct", "k": "c2VjcmV0"}', "private or secret"),
        ('{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}',
         "not an ES256"),
        ('{"kid": "x"}', "has no kty"),
    ],
)  # fmt: skip
def test_parse_jwks_refuses_what_is_not_a_public_signing_key(jwks: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_jwks(jwks)


def test_parse_jwks_refuses_private_keys_and_other_curves(es256: SigningKey) -> None:
    with pytest.raises(ValueError, match=r"key 0 \(kid .*\) holds private or secret"):
        parse_jwks(json.dumps(es256.private_jwk()))
    p384 = {**es256.public_jwk(), "crv": "P-384", "alg": "ES384"}
    with pytest.raises(ValueError, match="not an ES256"):
        parse_jwks(json.dumps(p384))
    broken = {**es256.public_jwk(), "x": "AAAA"}
    with pytest.raises(ValueError, match="not a valid public key"):
        parse_jwks(json.dumps(broken))


# --- verifying with a static JWKS and the legacy secret ----------------------------------------
async def test_es256_rs256_and_hs256_tokens_verify(es256: SigningKey, rs256: SigningKey) -> None:
    verifier = AccessTokenVerifier(jwks=[es256.public_jwk(), rs256.public_jwk()], jwt_secret=SECRET)
    user = uuid.uuid4()
    for key in (es256, rs256, SECRET):
        account = await verifier.verify(token(key, user))
        assert account.user_id == user and account.is_anonymous is False
        assert account.expires_at > time.time()
    anonymous = await verifier.verify(token(es256, user, is_anonymous=True))
    assert anonymous.is_anonymous is True, "anonymous sign-ins are accounts too"


async def test_a_token_without_kid_is_tried_with_every_fitting_key(
    es256: SigningKey, rs256: SigningKey
) -> None:
    other = SigningKey.generate("ES256")
    verifier = AccessTokenVerifier(jwks=[other.public_jwk(), es256.public_jwk()])
    bare = SigningKey("ES256", "unused", es256.private_key)
    claims = {"sub": str(uuid.uuid4()), "aud": "authenticated", "role": "authenticated",
              "exp": int(time.time()) + 60}  # fmt: skip
    no_kid = jwt.encode(claims, bare.private_key, algorithm="ES256")
    assert "kid" not in jwt.get_unverified_header(no_kid)
    assert (await verifier.verify(no_kid)).user_id == uuid.UUID(claims["sub"])


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda k: token(k, exp=int(time.time()) - 60), "expired"),
        (lambda k: token(k, nbf=int(time.time()) + 120), "not_yet_valid"),
        (lambda k: token(k, aud="other"), "audience"),
        (lambda k: token(k, aud=["other", "more"]), "audience"),
        (lambda k: token(k, aud=None), "claims"),
        (lambda k: token(k, sub=None), "claims"),
        (lambda k: token(k, sub="123"), "claims"),
        (lambda k: token(k, role="anon"), "claims"),
        (lambda k: token(k, role=None), "claims"),
        (lambda k: token(SigningKey("ES256", k.key_id, SigningKey.generate().private_key)),
         "signature"),
        (lambda k: token(SigningKey.generate("ES256")), "unknown_key"),
        (lambda k: token(SECRET + "x"), "signature"),
        (lambda k: "a.b", "malformed"),
        (lambda k: "a.b.c", "malformed"),
        (lambda k: "", "malformed"),
        (lambda k: "x" * 20_000 + ".a.b", "malformed"),
    ],
)  # fmt: skip
async def test_refusals_say_why(es256: SigningKey, make: Any, reason: str) -> None:
    verifier = AccessTokenVerifier(jwks=[es256.public_jwk()], jwt_secret=SECRET)
    with pytest.raises(AccessTokenError) as refused:
        await verifier.verify(make(es256))
    assert refused.value.reason == reason, refused.value.message


async def test_clock_skew_within_30_seconds_is_allowed(es256: SigningKey) -> None:
    verifier = AccessTokenVerifier(jwks=[es256.public_jwk()])
    assert await verifier.verify(token(es256, exp=int(time.time()) - 10))
    with pytest.raises(AccessTokenError, match="expired"):
        await verifier.verify(token(es256, exp=int(time.time()) - 45))


async def test_hs256_needs_the_secret_and_never_uses_a_public_key(es256: SigningKey) -> None:
    only_jwks = AccessTokenVerifier(jwks=[es256.public_jwk()])
    with pytest.raises(AccessTokenError) as refused:
        await only_jwks.verify(token(SECRET))
    assert refused.value.reason == "algorithm"
    for alg in ("none", "HS384", "HS512", "ES384", "PS256", "EdDSA"):
        header = {"alg": alg, "typ": "JWT", "kid": es256.key_id}
        parts = (header, {"sub": str(uuid.uuid4())})
        encoded = [base64.urlsafe_b64encode(json.dumps(p).encode()).rstrip(b"=") for p in parts]
        forged = b".".join(encoded).decode() + ".c2ln"
        with pytest.raises(AccessTokenError) as refused:
            await only_jwks.verify(forged)
        assert refused.value.reason == "algorithm", alg


def test_a_verifier_needs_keys_and_a_long_enough_secret(es256: SigningKey) -> None:
    with pytest.raises(ValueError, match="needs a JWKS"):
        AccessTokenVerifier()
    with pytest.raises(ValueError, match="at least 32"):
        AccessTokenVerifier(jwt_secret="short")
    with pytest.raises(ValueError, match="not both"):
        AccessTokenVerifier(jwks=[es256.public_jwk()], jwks_url="http://127.0.0.1:1/x")


# --- the fetched JWKS: cache, rotation, outages --------------------------------------------------
async def test_the_jwks_is_cached_then_fetched_again(es256: SigningKey) -> None:
    clock = Clock()
    async with jwks_server(es256) as served:
        verifier = AccessTokenVerifier(jwks_url=served.url, clock=clock, headers={"apikey": "pk"})
        try:
            for _ in range(3):
                await verifier.verify(token(es256))
            assert served.requests == 1
            assert served.headers[0].get("apikey") == "pk"
            clock.now += 599
            await verifier.verify(token(es256))
            assert served.requests == 1, "still fresh after 599 s"
            clock.now += 2
            await verifier.verify(token(es256))
            assert served.requests == 2, "fetched again after 600 s"
        finally:
            await verifier.close()


async def test_a_key_rotated_in_is_fetched_at_most_once_per_30_seconds(
    es256: SigningKey, rs256: SigningKey
) -> None:
    clock = Clock()
    async with jwks_server(es256) as served:
        verifier = AccessTokenVerifier(jwks_url=served.url, clock=clock)
        try:
            await verifier.verify(token(es256))
            served.keys.append(rs256)  # the project rotates a new key in
            clock.now += 10
            with pytest.raises(AccessTokenError, match="no key"):
                await verifier.verify(token(rs256))
            assert served.requests == 1, "10 s after a fetch, an unknown kid fetches nothing"
            clock.now += 25
            assert await verifier.verify(token(rs256)), "35 s after: fetched, and it verifies"
            assert served.requests == 2
            for _ in range(5):  # made-up kids
                with pytest.raises(AccessTokenError, match="no key"):
                    await verifier.verify(token(SigningKey.generate("ES256")))
            assert served.requests == 2
            served.keys.remove(es256)  # … and the old one out: refused after the next fetch
            clock.now += 601
            with pytest.raises(AccessTokenError, match="no key"):
                await verifier.verify(token(es256))
            assert served.requests == 3
        finally:
            await verifier.close()


async def test_an_outage_keeps_the_last_keys_and_is_not_hammered(es256: SigningKey) -> None:
    clock = Clock()
    async with jwks_server(es256) as served:
        verifier = AccessTokenVerifier(jwks_url=served.url, clock=clock)
        try:
            await verifier.verify(token(es256))
            served.down = True
            clock.now += 700  # stale: a fetch is tried, fails, the old keys still verify
            assert await verifier.verify(token(es256))
            assert served.requests == 2
            for _ in range(3):
                assert await verifier.verify(token(es256))
            assert served.requests == 2, "no second attempt within 30 s"
            served.down = False
            clock.now += 31
            assert await verifier.verify(token(es256))
            assert served.requests == 3
        finally:
            await verifier.close()


async def test_no_jwks_at_all_is_unavailable_not_a_refusal(es256: SigningKey) -> None:
    clock = Clock()
    async with jwks_server(es256) as served:
        served.down = True
        verifier = AccessTokenVerifier(jwks_url=served.url, clock=clock)
        try:
            with pytest.raises(JwksUnavailable):
                await verifier.verify(token(es256))
            with pytest.raises(JwksUnavailable):
                await verifier.verify(token(es256))
            assert served.requests == 1, "an outage is retried after 30 s, not on every request"
            served.down = False
            clock.now += 31
            assert await verifier.verify(token(es256))
        finally:
            await verifier.close()
    unreachable = AccessTokenVerifier(jwks_url="http://127.0.0.1:9/auth/v1/.well-known/jwks.json")
    try:
        with pytest.raises(JwksUnavailable):
            await unreachable.verify(token(es256))
    finally:
        await unreachable.close()


async def test_hs256_tokens_never_fetch_the_jwks(es256: SigningKey) -> None:
    async with jwks_server(es256) as served:
        verifier = AccessTokenVerifier(jwks_url=served.url, jwt_secret=SECRET)
        try:
            assert await verifier.verify(token(SECRET))
            assert served.requests == 0
        finally:
            await verifier.close()


# --- settings ----------------------------------------------------------------------------------
@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SUPABASE_URL", "SUPABASE_JWKS", "SUPABASE_JWT_SECRET", "SUPABASE_ANON_KEY",
                 "SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY", "SUPABASE_SERVICE_ROLE_KEY",
                 "SUPABASE_JWT_SIGNING_KEY", "SUPABASE_JWT_SIGNING_KEY_ID", "BEVSESSION_TRANSPORT",
                 "SESSION_PASSWORDS", "DATABASE_URL"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


BASE = {"SESSION_PASSWORD": PASSWORD, "DATABASE_URL": "postgresql://authenticator@127.0.0.1/x"}


@pytest.mark.usefixtures("clean_env")
def test_settings_choose_what_verifies_access_tokens(es256: SigningKey) -> None:
    assert load_settings(**BASE).account_verifier() is None
    static = load_settings(**BASE, SUPABASE_JWKS=json.dumps({"keys": [es256.public_jwk()]}))
    verifier = static.account_verifier()
    assert verifier is not None and "SUPABASE_JWKS (1 key(s))" in verifier.describe()
    secret = load_settings(**BASE, SUPABASE_JWT_SECRET=SECRET).account_verifier()
    assert secret is not None and secret.describe() == "the legacy JWT secret (HS256)"
    fetched = load_settings(
        **BASE, SUPABASE_URL="https://abc.supabase.co", SUPABASE_PUBLISHABLE_KEY="sb_publishable_x"
    ).account_verifier()
    assert fetched is not None
    assert fetched.describe() == "the JWKS at https://abc.supabase.co/auth/v1/.well-known/jwks.json"
    assert fetched._headers == {"apikey": "sb_publishable_x"}
    # SUPABASE_JWKS wins over fetching (a project behind a proxy, an air-gapped test)
    both = load_settings(
        **BASE, SUPABASE_URL="https://abc.supabase.co", SUPABASE_JWKS=json.dumps(es256.public_jwk())
    ).account_verifier()
    assert (
        both is not None and "SUPABASE_JWKS" in both.describe() and "https" not in both.describe()
    )


@pytest.mark.usefixtures("clean_env")
def test_settings_refuse_a_bad_jwks_or_a_short_secret(es256: SigningKey) -> None:
    with pytest.raises(ConfigError, match=r"SUPABASE_JWKS: key 0 .* private"):
        load_settings(**BASE, SUPABASE_JWKS=json.dumps(es256.private_jwk()))
    with pytest.raises(ConfigError, match="SUPABASE_JWKS: not JSON"):
        load_settings(**BASE, SUPABASE_JWKS="{nope")
    with pytest.raises(ConfigError, match="SUPABASE_JWT_SECRET must have at least 32"):
        load_settings(**BASE, SUPABASE_JWT_SECRET="short")
