"""The supabase transport: supabase-py on one shared httpx pool, the visitor JWT per request.

Runs against tests/postgrest_endpoint.py on this test's database.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import jwt
import pytest
from bench.wire import RoundTripRelay

from bevsession import rpc
from bevsession.errors import NoSessionIdentity, PermissionDenied
from bevsession.tokens import Claims, TokenMinter
from bevsession.transports.base import Service, Visitor
from bevsession.transports.supabase import SupabaseTransport
from postgrest_endpoint import RunningEndpoint
from rpc_fixtures import Keys


@pytest.fixture
async def transport(endpoint: RunningEndpoint, keys: Keys) -> AsyncIterator[SupabaseTransport]:
    t = await SupabaseTransport.connect(
        endpoint.url, anon_key=keys.anon_key, service_key=keys.service_key,
        minter=TokenMinter(keys.jwt_secret),
    )  # fmt: skip
    try:
        yield t
    finally:
        await t.close()


async def test_one_shared_http_pool(transport: SupabaseTransport) -> None:
    http = transport._http
    assert transport._visitor_client.postgrest.session is http
    assert transport._service_client.postgrest.session is http


async def test_token_is_per_request_not_shared(
    transport: SupabaseTransport, keys: Keys, endpoint: RunningEndpoint
) -> None:
    """Concurrent calls of two sessions never see each other's token; shared headers stay put."""
    seen: list[tuple[str, str | None]] = []

    async def spy(request: httpx.Request) -> None:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        claims = jwt.decode(token, keys.jwt_secret, algorithms=["HS256"])
        seen.append((request.url.path, claims.get("session_id")))

    transport._http.event_hooks["request"].append(spy)
    a, b = Visitor(uuid.uuid4()), Visitor(uuid.uuid4())
    calls = [transport.call("get_session", {}, identity=who) for who in (a, b) * 10]
    results = await asyncio.gather(*calls)
    for who, result in zip((a, b) * 10, results, strict=True):
        assert result["session"]["session_id"] == str(who.session_id)
    assert {sid for _, sid in seen} == {str(a.session_id), str(b.session_id)}
    for client, key in ((transport._visitor_client, keys.anon_key),
                        (transport._service_client, keys.service_key)):  # fmt: skip
        assert client.postgrest.headers["Authorization"] == f"Bearer {key}"
    await transport.call("admin_session_stats", {}, identity=Service())
    assert seen[-1][1] is None  # the service call carried the service key, not a visitor token


async def test_visitor_calls_use_the_public_api_key(
    transport: SupabaseTransport, keys: Keys
) -> None:
    keys_sent: list[str] = []

    async def spy(request: httpx.Request) -> None:
        keys_sent.append(request.headers["apikey"])

    transport._http.event_hooks["request"].append(spy)
    await transport.call("get_session", {}, identity=Visitor(uuid.uuid4()))
    await transport.call("admin_session_stats", {}, identity=Service())
    assert keys_sent == [keys.anon_key, keys.service_key]


async def test_one_http_round_trip_per_rpc(endpoint: RunningEndpoint, keys: Keys) -> None:
    port = int(endpoint.url.rsplit(":", 1)[1])
    relay = await RoundTripRelay("127.0.0.1", port).start()
    t = SupabaseTransport(
        f"http://127.0.0.1:{relay.port}", anon_key=keys.anon_key, service_key=keys.service_key,
        minter=TokenMinter(keys.jwt_secret),
    )  # fmt: skip
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


async def test_expired_or_foreign_tokens_are_no_identity(
    endpoint: RunningEndpoint, keys: Keys
) -> None:
    cases: list[tuple[TokenMinter, str]] = [
        (TokenMinter("x" * 40), "PGRST301"),  # signed with another secret
        (TokenMinter(keys.jwt_secret, Claims(clock=lambda: 0.0)), "PGRST303"),  # expired in 1970
    ]
    for minter, code in cases:
        t = SupabaseTransport(
            endpoint.url, anon_key=keys.anon_key, service_key=keys.service_key, minter=minter
        )
        try:
            with pytest.raises(NoSessionIdentity) as info:
                await t.call("get_session", {}, identity=Visitor(uuid.uuid4()))
            assert info.value.code == code
        finally:
            await t.close()


async def test_a_wrong_api_key_is_permission_denied(endpoint: RunningEndpoint, keys: Keys) -> None:
    t = SupabaseTransport(
        endpoint.url, anon_key="not-a-key", service_key="not-a-key-either",
        minter=TokenMinter(keys.jwt_secret),
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


async def test_closed_transport_refuses(transport: SupabaseTransport) -> None:
    await transport.close()
    await transport.close()  # idempotent
    from bevsession.errors import DatabaseError

    with pytest.raises(DatabaseError):
        await transport.call("get_session", {}, identity=Visitor(uuid.uuid4()))
