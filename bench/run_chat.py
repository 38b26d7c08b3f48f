"""Section 2, part two — chat turns through ``SessionService`` vs two hand-made references.

pgbench on our own SQL (the first part, :mod:`bench.run_database`) says how close the client
gets to its SQL functions; it cannot say what those functions cost next to doing less. So
three ways of storing a chat turn are measured one after the other, in the same database, with
the same 8 turns in flight for the same duration, on the same number of visitors whose
history was seeded with 18 messages (9 earlier turns) each:

1. ``SessionService`` on the postgres transport (asyncpg pool of 8): ``begin_chat_turn`` (one
   signal, a 20-message history window) then ``finish_chat_turn`` — the turn of the first
   part, and of ``POST /api/chat``; two round trips;
2. the minimal turn: ONE PL/pgSQL function written by hand (``sql/bench/minimal_turn.sql``, in
   its own schema, created here and never by the migrations) that upserts the session, bumps
   its counter, inserts both messages and returns the newest 20 as JSON, called through an
   asyncpg pool of 8 that skips the ``RESET ALL`` on release as our transport does (so it is
   one round trip, not a strawman of two); the reply is decoded from JSON;
3. langchain-postgres' ``PostgresChatMessageHistory`` (psycopg 3, async, a psycopg pool of 8):
   ``aget_messages`` then ``aadd_messages([user, ai])``. It has no window: it reads a
   session's whole history, which grows by two messages per turn over the run (the mean it
   read is reported).

The references log in as the superuser (no role switch, no row-level security): what they
leave out — claims, RLS, persona, signals, rate limit, expiry, input checks, result models —
is the gap. CPU per turn is taken from /proc: PostgreSQL's (the postmaster and every backend,
as the server section does) and this process's (the client library).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_postgres import PostgresChatMessageHistory
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from bench.env import ROOT, Database, postmaster_pid, tree_cpu_seconds, visitor_id
from bench.report import Row, compare
from bench.run_database import CONCURRENCY, REPLY_TEXT, SIGNAL, USER_TEXT
from bevsession.service import SessionService
from bevsession.transports.postgres import PostgresTransport

MINIMAL_SQL = ROOT / "sql" / "bench" / "minimal_turn.sql"
MINIMAL_CALL = "select minimal_turn.chat_turn($1::uuid, $2::text, $3::text)"
LANGCHAIN_SCHEMA = "langchain"
LANGCHAIN_TABLE = "message_store"
SEED_TURNS = 9  # 18 messages of history before the first measured turn
HISTORY_WINDOW = 20

# A turn of one visitor (its number, see bench.env.visitor_id); returns how many history
# messages it read.
Turn = Callable[[int], Awaitable[int]]


@dataclass(frozen=True)
class Figures:
    turns_per_s: float
    latency_ms: float
    db_us: float  # PostgreSQL CPU per turn (postmaster + backends)
    client_us: float  # this process's CPU per turn
    history: float  # history messages read per turn, mean


async def measure(turn: Turn, visitors: int, seconds: float, db_pid: int) -> Figures:
    """*turn* on random visitors 1..*visitors*, CONCURRENCY in flight, after a warm-up."""
    latencies: list[float] = []
    read: list[int] = []

    async def worker(end: float, record: bool) -> None:
        while time.perf_counter() < end:
            start = time.perf_counter()
            n = await turn(random.randint(1, visitors))  # noqa: S311
            if record:
                latencies.append(time.perf_counter() - start)
                read.append(n)

    warm_end = time.perf_counter() + min(1.0, seconds / 3)
    await asyncio.gather(*(worker(warm_end, False) for _ in range(CONCURRENCY)))
    db0, client0 = tree_cpu_seconds([db_pid]), time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(worker(start + seconds, True) for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - start
    db1, client1 = tree_cpu_seconds([db_pid]), time.process_time()
    done = max(1, len(latencies))
    return Figures(
        turns_per_s=len(latencies) / elapsed,
        latency_ms=statistics.fmean(latencies) * 1e3,
        db_us=(db1 - db0) / done * 1e6,
        client_us=(client1 - client0) / done * 1e6,
        history=statistics.fmean(read),
    )


async def settle(db: Database) -> None:
    """``VACUUM (ANALYZE)`` after seeding: each competitor starts on fresh statistics and no
    dead rows, so no autovacuum of its seeding runs (and counts as its CPU) while it is timed."""
    conn = await asyncpg.connect(db.admin_dsn)
    try:
        await conn.execute("vacuum (analyze)")
    finally:
        await conn.close()


async def seed(turn: Turn, visitors: int) -> None:
    """SEED_TURNS turns for each of visitors 1..*visitors*, CONCURRENCY at a time."""
    todo = iter(range(1, visitors + 1))

    async def worker() -> None:
        for n in todo:
            for _ in range(SEED_TURNS):
                await turn(n)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


# --- the three competitors: each seeds its visitors, then yields its turn --------------------
@contextlib.asynccontextmanager
async def session_service(db: Database, visitors: int) -> AsyncIterator[Turn]:
    """Our turn, as POST /api/chat makes it; seeded through the same service calls (the
    sessions are created by their first ``begin_chat_turn``)."""
    pt = await PostgresTransport.connect(db.app_dsn, min_size=CONCURRENCY, max_size=CONCURRENCY)
    service = SessionService(pt)

    async def turn(visitor: int) -> int:
        sid = visitor_id(visitor)
        begin = await service.begin_chat_turn(sid, USER_TEXT, signals=[SIGNAL],
                                              history_limit=HISTORY_WINDOW)  # fmt: skip
        await service.finish_chat_turn(sid, REPLY_TEXT, generation_mode="fresh")
        return len(begin.history.messages)

    try:
        await seed(turn, visitors)
        yield turn
    finally:
        await pt.close()


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's ``RESET ALL`` round trip (as the postgres transport does)."""


@contextlib.asynccontextmanager
async def minimal(db: Database, visitors: int) -> AsyncIterator[Turn]:
    """sql/bench/minimal_turn.sql's one function; seeded by calling it in one statement."""
    conn = await asyncpg.connect(db.admin_dsn)
    try:
        await conn.execute(MINIMAL_SQL.read_text(encoding="utf-8"))
        await conn.execute(
            "select count(minimal_turn.chat_turn(v, $2, $3))"
            " from unnest($1::uuid[]) as v, generate_series(1, $4::int)",
            [visitor_id(n) for n in range(1, visitors + 1)], USER_TEXT, REPLY_TEXT, SEED_TURNS,
        )  # fmt: skip
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(db.admin_dsn, min_size=CONCURRENCY, max_size=CONCURRENCY,
                                     reset=_no_reset)  # fmt: skip

    async def turn(visitor: int) -> int:
        result = await pool.fetchval(MINIMAL_CALL, visitor_id(visitor), USER_TEXT, REPLY_TEXT)
        return len(json.loads(result))

    try:
        yield turn
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def langchain(db: Database, visitors: int) -> AsyncIterator[Turn]:
    """langchain-postgres' chat history, used as its documentation shows (a psycopg 3 async
    connection per history object), on a pool of CONCURRENCY connections; seeded with
    ``aadd_messages`` of 18 messages per visitor."""
    conn = await asyncpg.connect(db.admin_dsn)
    try:
        await conn.execute(f"create schema {LANGCHAIN_SCHEMA}")
    finally:
        await conn.close()
    pool = AsyncConnectionPool(db.admin_dsn, min_size=CONCURRENCY, max_size=CONCURRENCY,
                               kwargs={"options": f"-c search_path={LANGCHAIN_SCHEMA}"},
                               open=False)  # fmt: skip
    await pool.open(wait=True)
    pair: list[BaseMessage] = [HumanMessage(USER_TEXT), AIMessage(REPLY_TEXT)]

    def history(visitor: int, connection: AsyncConnection) -> PostgresChatMessageHistory:
        return PostgresChatMessageHistory(LANGCHAIN_TABLE, str(visitor_id(visitor)),
                                          async_connection=connection)  # fmt: skip

    async def turn(visitor: int) -> int:
        async with pool.connection() as connection:
            chat = history(visitor, connection)
            read = await chat.aget_messages()
            await chat.aadd_messages(pair)
        return len(read)

    try:
        async with pool.connection() as connection:
            await PostgresChatMessageHistory.acreate_tables(connection, LANGCHAIN_TABLE)
        todo = iter(range(1, visitors + 1))

        async def seeder() -> None:
            for n in todo:
                async with pool.connection() as connection:
                    await history(n, connection).aadd_messages(pair * SEED_TURNS)

        await asyncio.gather(*(seeder() for _ in range(CONCURRENCY)))
        yield turn
    finally:
        await pool.close()


async def run(db: Database, seconds: float, visitors: int) -> list[Row]:
    db_pid = postmaster_pid(db.pg)
    figures: dict[str, Figures] = {}
    competitors = (("ours", session_service), ("minimal", minimal), ("langchain", langchain))
    for name, competitor in competitors:
        async with competitor(db, visitors) as turn:
            await settle(db)
            figures[name] = await measure(turn, visitors, seconds, db_pid)
    ours, least, lc = figures["ours"], figures["minimal"], figures["langchain"]
    ref_min = f"minimal turn: 1 PL/pgSQL function via asyncpg, {CONCURRENCY} in flight"
    ref_lc = f"langchain-postgres PostgresChatMessageHistory, {CONCURRENCY} in flight"
    return [
        compare("chat turns/s, SessionService vs minimal turn", ours.turns_per_s, "turns/s",
                ref_min, least.turns_per_s, aim=0.5),
        compare("chat turns/s, SessionService vs langchain-postgres", ours.turns_per_s,
                "turns/s", ref_lc, lc.turns_per_s, aim=2.0),
        compare("chat turn latency, SessionService vs minimal turn (mean)", ours.latency_ms,
                "ms", ref_min, least.latency_ms, higher_is_better=False),
        compare("chat turn latency, SessionService vs langchain-postgres (mean)",
                ours.latency_ms, "ms", ref_lc, lc.latency_ms, higher_is_better=False),
        compare("PostgreSQL CPU per chat turn, SessionService", ours.db_us, "µs", ref_min,
                least.db_us, higher_is_better=False),
        compare("PostgreSQL CPU per chat turn, SessionService vs langchain-postgres",
                ours.db_us, "µs", ref_lc, lc.db_us, higher_is_better=False),
        compare("client CPU per chat turn, SessionService", ours.client_us, "µs", ref_min,
                least.client_us, higher_is_better=False),
        compare("client CPU per chat turn, SessionService vs langchain-postgres",
                ours.client_us, "µs", ref_lc, lc.client_us, higher_is_better=False),
        # For reading the langchain rows: it reads every message, ours a window of 20.
        Row("history messages read per chat turn, langchain-postgres", lc.history,
            "messages", f"SessionService (window of {HISTORY_WINDOW})", ours.history, None,
            None),
    ]  # fmt: skip
