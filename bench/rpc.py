"""Latency and round trips per RPC, for both transports: ``python -m bench.rpc [--n 300]``.

Starts a throwaway PostgreSQL with a migrated database (as ``python -m bench`` does), and
measures on this machine:

1. the cost of building a visitor's request (JWT minting, three ways of giving supabase-py a
   per-request token) — no network;
2. per RPC on the postgres transport: median and p95 latency, and round trips (client turns to
   PostgreSQL) counted on the wire by :class:`bench.wire.RoundTripRelay`;
3. the same call done the obvious way (``BEGIN``; ``set_config``…; call; ``COMMIT`` with asyncpg's
   default pool reset) for comparison;
4. per RPC on the supabase transport, latency only, and only against a real Supabase stack the
   environment names (``SUPABASE_URL`` and the project's keys, as the tests' ``supabase-live``
   run); without them it says what to set.

Latency is measured on direct connections; round trips on a second, identical set of
connections through the counting relay (which adds ~40 µs per turn), so neither skews the other.

It prints figures and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import jwt
from supabase import AsyncClient, AsyncClientOptions

from bench.env import LIVE_SUPABASE_MISSING, cluster_context, database, live_supabase
from bench.wire import RoundTripRelay
from bevsession.supabase_keys import SigningKey
from bevsession.tokens import TokenMinter
from bevsession.transports.base import Identity, Service, Transport, Visitor
from bevsession.transports.postgres import PostgresTransport


def micro(label: str, fn: Callable[[], object], n: int = 20000) -> float:
    for _ in range(200):
        fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    per = (time.perf_counter() - start) / n * 1e6
    print(f"  {label:<58} {per:8.1f} µs")
    return per


def request_building() -> None:
    print("\n== building one visitor request (no network) ==")
    jwt_secret = secrets.token_urlsafe(40)  # a project's legacy secret, and its anon key
    anon_key = jwt.encode({"iss": "supabase", "role": "anon"}, jwt_secret, algorithm="HS256")
    minter = TokenMinter(jwt_secret)
    sid = uuid.uuid4()
    micro("mint a visitor JWT (PyJWT HS256)", lambda: minter.visitor_token(sid))
    for algorithm, n in (("ES256", 20000), ("RS256", 2000)):  # an imported signing key
        signer = TokenMinter(signing_key=SigningKey.generate(algorithm))  # type: ignore[arg-type]
        label = f"mint a visitor JWT ({algorithm} signing key)"
        micro(label, lambda m=signer: m.visitor_token(sid), n=n)  # type: ignore[misc]
    cache = {sid: minter.visitor_token(sid)}
    micro("look a cached token up (what a cache would save it for)", lambda: cache.get(sid))
    http = httpx.AsyncClient()
    opts = AsyncClientOptions(httpx_client=http, postgrest_client_retry=False)
    base = AsyncClient("http://127.0.0.1:1", anon_key, opts)
    token = minter.visitor_token(sid)

    def builder_header() -> object:
        b = base.rpc("get_session", {})
        b.request.headers["Authorization"] = f"Bearer {token}"
        return b

    micro("rpc() builder + per-request header (used)", builder_header)
    micro("rpc() builder alone", lambda: base.rpc("get_session", {}))
    micro(
        "postgrest.schema('public').auth(token).rpc() (new client)",
        lambda: base.postgrest.schema("public").auth(token).rpc("get_session", {}),
    )

    def client_per_request() -> object:
        o = AsyncClientOptions(
            httpx_client=http, headers={"Authorization": f"Bearer {token}"},
            postgrest_client_retry=False,
        )  # fmt: skip
        return AsyncClient("http://127.0.0.1:1", anon_key, o).rpc("get_session", {})

    micro("supabase AsyncClient per request on the shared pool", client_per_request, n=2000)


Call = Callable[[int], Awaitable[object]]


async def timed(
    label: str,
    call: Call,
    n: int,
    counted: Call | None = None,
    relays: tuple[RoundTripRelay, ...] = (),
    m: int = 20,
) -> None:
    """Latency of *call* (direct); round trips of *counted* (through *relays*), *m* calls."""
    for i in range(5):
        await call(-1 - i)  # warm up: connections open, statements prepared
    samples = []
    for i in range(n):
        start = time.perf_counter()
        await call(i)
        samples.append(time.perf_counter() - start)
    samples.sort()
    med = statistics.median(samples) * 1e3
    p95 = samples[int(len(samples) * 0.95) - 1] * 1e3
    trips = ""
    if counted is not None:
        for i in range(3):
            await counted(-1 - i)
        for r in relays:
            r.reset()
        for i in range(m):
            await counted(i)
        trips = "round trips/call " + " + ".join(f"{r.round_trips / m:.2f}" for r in relays)
    print(f"  {label:<36} median {med:6.3f} ms   p95 {p95:6.3f} ms   {trips}")


async def rpc_calls(t: Transport, n: int) -> list[tuple[str, Call]]:
    """One callable per RPC; clear_session gets a fresh, existing session on every call."""
    me = Visitor(uuid.uuid4())
    await t.call("get_session", {}, identity=me)
    fresh = [Visitor(uuid.uuid4()) for _ in range(n + 40)]
    for who in fresh:
        await t.call("get_session", {}, identity=who)

    def c(fn: str, args: dict[str, Any], who: Identity = me) -> Call:
        return lambda i: t.call(fn, args, identity=who)

    signal = {"signal_type": "role_mention", "signal_text": "I run sales",
              "signal_strength": "medium", "vector": "functional_role",
              "vector_value": "sales",
              "score_updates": {"sales_focus_score": 0.01}}  # fmt: skip
    turn_signal = {"signal_type": "org", "signal_text": "brewery", "signal_strength": "weak",
                   "vector": "org_type", "vector_value": "supplier"}  # fmt: skip

    def clear(i: int) -> Awaitable[object]:
        return t.call("clear_session", {}, identity=fresh.pop())

    return [
        ("get_session", c("get_session", {"touch": True})),
        ("update_persona", c("update_persona", {"updates": {"craft_score": 0.5}})),
        ("record_persona_signal", c("record_persona_signal", signal)),
        ("add_conversation_message", c("add_conversation_message",
                                       {"role": "user", "content": "hello there"})),
        ("get_conversation_history(20)", c("get_conversation_history", {"history_limit": 20})),
        ("begin_chat_turn(1 signal, 20 hist)", c("begin_chat_turn", {"content": "we brew",
                                                                   "signals": [turn_signal]})),
        ("finish_chat_turn", c("finish_chat_turn", {"content": "reply"})),
        ("clear_session", clear),
        ("admin_session_stats", c("admin_session_stats", {}, Service())),
    ]  # fmt: skip


async def naive(dsn: str, counted_dsn: str, relay: RoundTripRelay, n: int) -> None:
    """The straightforward asyncpg version: explicit transaction, separate statements, RESET ALL."""
    pools = [await asyncpg.create_pool(d, min_size=1, max_size=1) for d in (dsn, counted_dsn)]
    claims = json.dumps({"role": "session_visitor", "session_id": str(uuid.uuid4())})

    def make(pool: asyncpg.Pool) -> Call:
        async def call(i: int) -> object:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("set local role session_visitor")
                await conn.execute(
                    "select set_config('request.jwt.claims', $1, true),"
                    " set_config('request.method', 'POST', true),"
                    " set_config('request.path', '/rpc/get_session', true)",
                    claims,
                )
                return await conn.fetchval("select public.get_session(touch => $1)", True)

        return call

    await timed("get_session (naive asyncpg)", make(pools[0]), n, make(pools[1]), (relay,))
    for pool in pools:
        await pool.close()


async def main(n: int) -> None:
    request_building()
    async with cluster_context() as pg:
        db = await database(pg, "rpc")  # the chat rate limit out of the way, as every section
        pg_relay = await RoundTripRelay(pg.host, pg.port).start()
        direct = db.app_dsn
        counted = f"postgresql://authenticator@127.0.0.1:{pg_relay.port}/{db.name}"

        print(f"\n== baseline: asyncpg 'select 1' on one connection (n={n}) ==")
        c1, c2 = await asyncpg.connect(direct), await asyncpg.connect(counted)
        await timed("select 1", lambda i: c1.fetchval("select 1"), n,
                    lambda i: c2.fetchval("select 1"), (pg_relay,))  # fmt: skip
        await c1.close()
        await c2.close()

        print(f"\n== postgres transport (one connection per role; n={n}) ==")
        print("   round trips: client turns to PostgreSQL, counted on the wire")
        pt = await PostgresTransport.connect(direct, min_size=1, max_size=1)
        pt_counted = await PostgresTransport.connect(counted, min_size=1, max_size=1)
        calls = await rpc_calls(pt, n)
        counted_calls = dict(await rpc_calls(pt_counted, 60))
        for label, call in calls:
            await timed(label, call, n, counted_calls[label], (pg_relay,))
        await pt.close()
        await pt_counted.close()

        print(f"\n== for comparison: the obvious asyncpg way (n={n}) ==")
        await naive(direct, counted, pg_relay, n)
        await pg_relay.close()

    print(f"\n== supabase transport on the stack SUPABASE_URL names (n={n}) ==")
    st = live_supabase()
    if st is None:
        print(f"   {LIVE_SUPABASE_MISSING}")
        return
    try:
        for label, call in await rpc_calls(st, n):
            await timed(label, call, n)
    finally:
        await st.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="calls per RPC (default 300)")
    asyncio.run(main(parser.parse_args().n))
