"""The supabase transport: supabase-py on one shared httpx pool, the visitor JWT per request.

Runs against tests/postgrest_endpoint.py on this test's database, once per kind of project:
``supabase`` (legacy keys: anon / service_role JWT keys, HS256 tokens with the JWT secret) and
``supabase-keys`` (current keys: ``sb_publishable_…`` / ``sb_secret_…``, tokens signed with an
imported ES256 signing key; the endpoint has no legacy secret, as a project that revoked it).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from bench.wire import RoundTripRelay

from bevsession import rpc
from bevsession.errors import NoSessionIdentity, PermissionDenied
from bevsession.local_postgres import LocalPostgres
from bevsession.supabase_keys import SigningKey
from bevsession.tokens import Claims, TokenMinter
from bevsession.transports.base import Service, Visitor, Worker
from bevsession.transports.supabase import SupabaseTransport
from postgrest_endpoint import RunningEndpoint, run_endpoint
from rpc_fixtures import SUPABASE_KINDS, Keys, endpoint_config


@pytest.fixture(params=SUPABASE_KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
async def endpoint(
    pg: LocalPostgres, db_name: str, keys: Keys, kind: str
) -> AsyncIterator[RunningEndpoint]:
    """The endpoint as a project of this test's kind (overrides rpc_fixtures' legacy one)."""
    running = await run_endpoint(endpoint_config(pg, db_name, keys, kind))
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
async def transport(
    endpoint: RunningEndpoint, keys: Keys, kind: str
) -> AsyncIterator[SupabaseTransport]:
    t = keys.transport(kind, endpoint.url)
    try:
        yield t
    finally:
        await t.close()


def api_keys(keys: Keys, kind: str) -> tuple[str, str]:
    """(the visitor calls' apikey, the service calls' apikey) of a project of *kind*."""
    if kind == "supabase":
        return keys.anon_key, keys.service_key
    return keys.publishable_key, keys.secret_key


def verify(keys: Keys, kind: str, token: str) -> dict[str, Any]:
    """A visitor token's claims, verified as the project does."""
    if kind == "supabase":
        claims: dict[str, Any] = jwt.decode(token, keys.jwt_secret, algorithms=["HS256"])
        return claims
    assert jwt.get_unverified_header(token) == {
        "alg": "ES256", "kid": keys.es256.key_id, "typ": "JWT"
    }  # fmt: skip
    return keys.es256.verify(token)


async def test_one_shared_http_pool(transport: SupabaseTransport) -> None:
    http = transport._http
    assert transport._visitor_client.postgrest.session is http
    assert transport._service_client.postgrest.session is http


async def test_token_is_per_request_not_shared(
    transport: SupabaseTransport, keys: Keys, kind: str
) -> None:
    """Concurrent calls of two sessions never see each other's token; shared headers stay put."""
    seen: list[tuple[str, str | None]] = []

    async def spy(request: httpx.Request) -> None:
        authorization = request.headers.get("Authorization")
        token = authorization.removeprefix("Bearer ") if authorization else None
        claims = verify(keys, kind, token) if token and token.count(".") == 2 else {}
        seen.append((request.url.path, claims.get("session_id")))

    transport._http.event_hooks["request"].append(spy)
    a, b = Visitor(uuid.uuid4()), Visitor(uuid.uuid4())
    calls = [transport.call("get_session", {}, identity=who) for who in (a, b) * 10]
    results = await asyncio.gather(*calls)
    for who, result in zip((a, b) * 10, results, strict=True):
        assert result["session"]["session_id"] == str(who.session_id)
    assert {sid for _, sid in seen} == {str(a.session_id), str(b.session_id)}
    public, service = api_keys(keys, kind)
    for client, key in ((transport._visitor_client, public),
                        (transport._service_client, service)):  # fmt: skip
        if kind == "supabase":
            assert client.postgrest.headers["Authorization"] == f"Bearer {key}"
        else:  # an opaque key is never a Bearer token
            assert "Authorization" not in client.postgrest.headers
    await transport.call("admin_session_stats", {}, identity=Service())
    assert seen[-1][1] is None  # the service call carried the service key, not a visitor token


async def test_visitor_calls_use_the_public_api_key(
    transport: SupabaseTransport, keys: Keys, kind: str
) -> None:
    keys_sent: list[str] = []

    async def spy(request: httpx.Request) -> None:
        keys_sent.append(request.headers["apikey"])

    transport._http.event_hooks["request"].append(spy)
    await transport.call("get_session", {}, identity=Visitor(uuid.uuid4()))
    await transport.call("admin_session_stats", {}, identity=Service())
    assert keys_sent == list(api_keys(keys, kind))


async def test_current_keys_go_in_apikey_only_and_the_token_as_bearer(
    pg: LocalPostgres, db_name: str, keys: Keys
) -> None:
    """supabase-facts.md: an ``sb_`` key is an API key, not a JWT: an admin call carries the
    secret key as ``apikey`` and no Authorization (the gateway adds the service_role JWT); a
    visitor call the publishable key as ``apikey`` and its minted token as the Bearer. With
    the ES256 and the RS256 signing key."""
    kind = "supabase-keys"
    endpoint = await run_endpoint(endpoint_config(pg, db_name, keys, kind))
    try:
        await _check_current_headers(endpoint, keys, kind)
    finally:
        await endpoint.close()


async def _check_current_headers(endpoint: RunningEndpoint, keys: Keys, kind: str) -> None:
    sent: list[tuple[str | None, str | None]] = []

    async def spy(request: httpx.Request) -> None:
        sent.append((request.headers.get("apikey"), request.headers.get("Authorization")))

    for signing_key in (keys.es256, keys.rs256):
        t = keys.transport(kind, endpoint.url, signing_key=signing_key)
        t._http.event_hooks["request"].append(spy)
        try:
            me = uuid.uuid4()
            snap = await t.call("get_session", {}, identity=Visitor(me))
            assert snap["session"]["session_id"] == str(me)
            await t.call("admin_session_stats", {}, identity=Service())
            await t.call("validate_sessions", {"session_ids": [], "seen_ms": []},
                         identity=Worker())  # fmt: skip
            await t.ping()
        finally:
            await t.close()
        (visitor_key, bearer), (service_key, none), (worker_key, worker_bearer), (
            ping_key, ping_bearer) = sent[-4:]  # fmt: skip
        # the secret key goes out for the admin call only: the worker's own calls and the ping
        # carry the publishable key and a session_worker token
        assert (visitor_key, service_key, worker_key, ping_key) == (
            keys.publishable_key, keys.secret_key, keys.publishable_key, keys.publishable_key
        )  # fmt: skip
        assert none is None
        for auth in (worker_bearer, ping_bearer):
            assert auth is not None and auth.startswith("Bearer ")
            assert signing_key.verify(auth.removeprefix("Bearer "))["role"] == "session_worker"
        assert bearer is not None and bearer.startswith("Bearer ")
        token = bearer.removeprefix("Bearer ")
        header = jwt.get_unverified_header(token)
        assert (header["alg"], header["kid"]) == (signing_key.algorithm, signing_key.key_id)
        assert signing_key.verify(token)["session_id"] == str(me)


async def test_one_http_round_trip_per_rpc(
    endpoint: RunningEndpoint, keys: Keys, kind: str
) -> None:
    port = int(endpoint.url.rsplit(":", 1)[1])
    relay = await RoundTripRelay("127.0.0.1", port).start()
    t = keys.transport(kind, f"http://127.0.0.1:{relay.port}")
    try:
        me = Visitor(uuid.uuid4())
        await t.call("get_session", {}, identity=me)
        relay.reset()
        for _ in range(10):
            await t.call("get_session", {}, identity=me)
        assert relay.round_trips == 10
    finally:
        await t.close()
        await relay.close()


async def test_void_is_none(
    transport: SupabaseTransport, db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgREST answers 204 for void; supabase-py turns that into []; the transport into None."""
    conn = await asyncpg.connect(db_dsn)
    try:
        await conn.execute(
            "create function public.t_void() returns void language sql as 'select';"
            "grant execute on function public.t_void() to session_visitor"
        )
    finally:
        await conn.close()
    monkeypatch.setitem(rpc.FUNCTIONS, "t_void", rpc.RpcFunction("t_void"))  # type: ignore[index]
    assert await transport.call("t_void", {}, identity=Visitor(uuid.uuid4())) is None


def _refused_minters(keys: Keys, kind: str) -> dict[str, tuple[TokenMinter, str]]:
    """Minters whose tokens the project of *kind* refuses, with PostgREST's code for each."""
    expired = Claims(clock=lambda: 0.0)  # expired in 1970
    if kind == "supabase":
        return {
            "another secret": (TokenMinter("x" * 40), "PGRST301"),
            "expired": (TokenMinter(keys.jwt_secret, expired), "PGRST303"),
        }
    es256 = keys.es256
    impostor = SigningKey.generate("ES256", es256.key_id)  # the right kid, another key
    wrong_alg = SigningKey("RS256", es256.key_id, keys.rs256.private_key)  # kid of an EC key
    return {
        "unknown kid": (TokenMinter(signing_key=SigningKey.generate("ES256")), "PGRST301"),
        "right kid, another key": (TokenMinter(signing_key=impostor), "PGRST301"),
        "RS256 under an ES256 kid": (TokenMinter(signing_key=wrong_alg), "PGRST301"),
        "the legacy secret, revoked": (TokenMinter(keys.jwt_secret), "PGRST301"),
        "expired": (TokenMinter(claims=expired, signing_key=es256), "PGRST303"),
    }


async def test_expired_or_foreign_tokens_are_no_identity(
    endpoint: RunningEndpoint, keys: Keys, kind: str
) -> None:
    for name, (minter, code) in _refused_minters(keys, kind).items():
        t = keys.transport(kind, endpoint.url, minter=minter)
        try:
            with pytest.raises(NoSessionIdentity) as info:
                await t.call("get_session", {}, identity=Visitor(uuid.uuid4()))
            assert info.value.code == code, name
        finally:
            await t.close()


async def test_a_wrong_api_key_is_permission_denied(
    endpoint: RunningEndpoint, keys: Keys, kind: str
) -> None:
    if kind == "supabase":
        t = SupabaseTransport(
            endpoint.url, anon_key="not-a-key", service_key="not-a-key-either",
            minter=TokenMinter(keys.jwt_secret),
        )  # fmt: skip
    else:
        t = SupabaseTransport(
            endpoint.url, anon_key="sb_publishable_not_this", service_key="sb_secret_nor_this",
            signing_key=keys.es256,
        )  # fmt: skip
    try:
        with pytest.raises(PermissionDenied) as info:
            await t.call("get_session", {}, identity=Visitor(uuid.uuid4()))
        assert info.value.code == "401"
        assert info.value.message == "Invalid API key"
    finally:
        await t.close()


async def test_needs_a_jwt_secret(keys: Keys) -> None:
    with pytest.raises(ValueError, match="JWT secret"):
        SupabaseTransport("http://127.0.0.1:1", service_key=keys.service_key)
    with pytest.raises(ValueError, match="at least 32"):
        SupabaseTransport("http://127.0.0.1:1", service_key=keys.service_key, jwt_secret="short")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"service_key": "sb_secret_x"}, "publishable"),  # a secret key and no publishable key
        ({"service_key": "sb_secret_x", "anon_key": "sb_publishable_x"}, "signing key"),
        ({"service_key": "sb_publishable_x", "anon_key": "sb_publishable_x"}, "secret key"),
        ({"service_key": "sb_secret_x", "anon_key": "sb_secret_x"}, "publishable"),
    ],
)
async def test_current_keys_are_checked(
    keys: Keys, arguments: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SupabaseTransport("http://127.0.0.1:1", **arguments)  # type: ignore[arg-type]
    assert SupabaseTransport(
        "http://127.0.0.1:1", service_key="sb_secret_x", anon_key="sb_publishable_x",
        signing_key=keys.es256,
    )  # fmt: skip


async def test_closed_transport_refuses(transport: SupabaseTransport) -> None:
    await transport.close()
    await transport.close()  # idempotent
    from bevsession.errors import DatabaseError

    with pytest.raises(DatabaseError):
        await transport.call("get_session", {}, identity=Visitor(uuid.uuid4()))
