"""Section 2 — the database ceiling: pgbench on the chat-turn functions vs ``SessionService``.

A chat turn is ``begin_chat_turn`` (one signal, a 20-message history window) then
``finish_chat_turn``, on a visitor drawn at random from many pre-created sessions, with 8 turns
in flight. Three ways, one after the other, each on its own range of visitors:

1. pgbench with ``sql/bench/chat_turn.sql``: the same two statements the postgres transport
   sends (same role, same claims preamble, prepared), 8 clients — PostgreSQL alone;
2. ``SessionService`` on the postgres transport (asyncpg pool of 8), 8 asyncio tasks in this
   process: input validation, the RPC, JSON decoding and the pydantic result models included;
3. ``SessionService`` on the supabase transport, only against a real Supabase stack named by
   the environment (``SUPABASE_URL`` and the project's keys; opt-in, for information: another
   machine, another network). Each turn there is a new visitor's first, so the project's chat
   rate limit stays as it is. Without the variables it says what to set instead of a figure.

Round trips per turn are counted on the wire by :class:`bench.wire.RoundTripRelay` (pgbench's
too, by difference of two runs so its connection start-up does not count); the supabase
transport's as the HTTP requests its client sends (one per RPC on a kept-alive connection).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import statistics
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from bench.env import LIVE_SUPABASE_MISSING, ROOT, Database, live_supabase, pgbench_path, visitor_id
from bench.report import Row, compare
from bench.wire import RoundTripRelay
from bevsession.service import SessionService
from bevsession.transports.postgres import PostgresTransport
from bevsession.transports.supabase import DEFAULT_TIMEOUT

SCRIPT = ROOT / "sql" / "bench" / "chat_turn.sql"
CONCURRENCY = 8
VISITORS = 2000
# The same turn as sql/bench/chat_turn.sql.
USER_TEXT = "We brew craft beer and sell through two distributors."
SIGNAL = {"signal_type": "org_type_mention", "signal_text": "We brew craft beer",
          "signal_strength": "weak", "pain_points_inferred": [],
          "score_updates": {"supplier_score": 0.05}, "vector": "org_type",
          "vector_value": "supplier"}  # fmt: skip
REPLY_TEXT = (
    "Thanks, so far I understand you work with a supplier. Which part of the business do you "
    "own: sales, marketing, operations or compliance?"
)
BASES = {"pgbench": 0, "postgres": 100_000, "count": 300_000}

Turn = Callable[[int], Awaitable[None]]


def service_turn(service: SessionService) -> Turn:
    async def turn(visitor: int) -> None:
        sid = visitor_id(visitor)
        await service.begin_chat_turn(sid, USER_TEXT, signals=[SIGNAL], history_limit=20)
        await service.finish_chat_turn(sid, REPLY_TEXT, generation_mode="fresh")

    return turn


async def turns_per_second(turn: Turn, base: int, seconds: float) -> tuple[float, float]:
    """(turns/s, mean latency in ms) with CONCURRENCY turns in flight, after a warm-up."""
    latencies: list[float] = []

    async def worker(end: float, record: bool) -> None:
        while time.perf_counter() < end:
            start = time.perf_counter()
            await turn(base + random.randint(1, VISITORS))  # noqa: S311
            if record:
                latencies.append(time.perf_counter() - start)

    warm_end = time.perf_counter() + min(1.0, seconds / 3)
    await asyncio.gather(*(worker(warm_end, False) for _ in range(CONCURRENCY)))
    start = time.perf_counter()
    await asyncio.gather(*(worker(start + seconds, True) for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - start
    return len(latencies) / elapsed, statistics.fmean(latencies) * 1e3


async def pgbench(
    db: Database,
    *,
    seconds: int,
    base: int,
    clients: int = CONCURRENCY,
    transactions: int | None = None,
    port: int | None = None,
    script: Path = SCRIPT,
) -> dict[str, float]:
    """Run a pgbench workload (sql/bench/chat_turn.sql by default); tps and mean latency (ms)."""
    cmd = [pgbench_path(db.pg), "-n", "-M", "prepared", "-c", str(clients),
           "-j", str(min(clients, 2)), "-f", str(script), "-D", f"sessions={VISITORS}",
           "-D", f"base={base}", "-h", db.pg.host, "-p", str(port or db.pg.port),
           "-U", "authenticator", db.name]  # fmt: skip
    cmd += ["-t", str(transactions)] if transactions else ["-T", str(seconds)]
    env = {**os.environ, "PGOPTIONS": await db.visitor_options()}
    proc = await asyncio.create_subprocess_exec(
        *cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await proc.communicate()
    text = out.decode()
    if proc.returncode != 0:
        raise RuntimeError(f"pgbench failed: {err.decode().strip() or text}")
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", text)
    latency = re.search(r"latency average = ([\d.]+) ms", text)
    failed = re.search(r"number of failed transactions: (\d+)", text)
    if not tps or not latency:
        raise RuntimeError(f"cannot read pgbench's output:\n{text}")
    if failed and int(failed.group(1)):
        raise RuntimeError(
            f"pgbench: {failed.group(1)} transactions failed:\n{err.decode()[-2000:]}"
        )
    return {"tps": float(tps.group(1)), "latency_ms": float(latency.group(1))}


def fresh_visitor_turn(service: SessionService) -> Turn:
    """A chat turn of a visitor never seen before (begin_chat_turn creates its session)."""

    async def turn(_: int) -> None:
        sid = uuid.uuid4()
        await service.begin_chat_turn(sid, USER_TEXT, signals=[SIGNAL], history_limit=20)
        await service.finish_chat_turn(sid, REPLY_TEXT, generation_mode="fresh")

    return turn


async def live_supabase_rows(seconds: float, pgbench_trips: float) -> list[Row] | None:
    """Turns/s, latency and HTTP requests per turn on the real stack the environment names;
    None when it names none."""
    sent = 0

    async def count(_: httpx.Request) -> None:
        nonlocal sent
        sent += 1

    http = httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, event_hooks={"request": [count]})
    try:
        transport = live_supabase(http_client=http)
        if transport is None:
            return None
        try:
            turn = fresh_visitor_turn(SessionService(transport))
            tps, latency = await turns_per_second(turn, 0, seconds)
            sent = 0
            for _ in range(10):
                await turn(0)
            http_trips = sent / 10
        finally:
            await transport.close()
    finally:
        await http.aclose()
    return [
        compare(f"chat turns/s, SessionService on supabase, live stack ({CONCURRENCY} in flight)",
                tps, "turns/s"),
        compare("chat turn latency, SessionService on supabase, live stack (mean)", latency, "ms"),
        compare("HTTP round trips/turn, supabase transport", http_trips, "trips",
                "pgbench, same statements", pgbench_trips, higher_is_better=False),
    ]  # fmt: skip


async def count_round_trips(turn: Turn, relays: tuple[RoundTripRelay, ...], base: int,
                            m: int = 20) -> list[float]:  # fmt: skip
    """Round trips per turn on each relay, after 3 turns of warm-up (statements prepared)."""
    for i in range(3):
        await turn(base + 1 + i)
    for relay in relays:
        relay.reset()
    for i in range(m):
        await turn(base + 1 + i % 3)
    return [relay.round_trips / m for relay in relays]


async def run(db: Database, seconds: float, notes: list[str]) -> list[Row]:
    await db.create_visitors(1, VISITORS)
    for base in BASES.values():
        await db.create_visitors(base + 1, VISITORS)
    whole = max(1, round(seconds))

    # 1. PostgreSQL alone
    ceiling = await pgbench(db, seconds=whole, base=BASES["pgbench"])

    # 2. SessionService, postgres transport
    pt = await PostgresTransport.connect(db.app_dsn, min_size=CONCURRENCY, max_size=CONCURRENCY)
    try:
        pg_tps, pg_latency = await turns_per_second(
            service_turn(SessionService(pt)), BASES["postgres"], seconds
        )
    finally:
        await pt.close()

    # Round trips per turn, counted on the wire.
    pg_relay = await RoundTripRelay(db.pg.host, db.pg.port).start()
    counted_dsn = f"postgresql://authenticator@127.0.0.1:{pg_relay.port}/{db.name}"
    try:
        pg_relay.reset()
        await pgbench(db, seconds=0, base=BASES["count"], clients=1, transactions=5,
                      port=pg_relay.port)  # fmt: skip
        short = pg_relay.round_trips
        pg_relay.reset()
        await pgbench(db, seconds=0, base=BASES["count"], clients=1, transactions=25,
                      port=pg_relay.port)  # fmt: skip
        pgbench_trips = (pg_relay.round_trips - short) / 20

        pt = await PostgresTransport.connect(counted_dsn, min_size=1, max_size=1)
        try:
            [pg_trips] = await count_round_trips(
                service_turn(SessionService(pt)), (pg_relay,), BASES["count"]
            )
        finally:
            await pt.close()
    finally:
        await pg_relay.close()

    ref = f"pgbench chat_turn.sql, {CONCURRENCY} clients"
    rows = [
        compare(f"chat turns/s, SessionService on postgres ({CONCURRENCY} in flight)", pg_tps,
                "turns/s", ref, ceiling["tps"], aim=0.5),
        compare("chat turn latency, SessionService on postgres (mean)", pg_latency, "ms",
                ref, ceiling["latency_ms"], higher_is_better=False),
        compare("round trips/turn, postgres transport", pg_trips, "trips",
                "pgbench, same statements", pgbench_trips, higher_is_better=False, aim=1.0),
    ]  # fmt: skip
    live = await live_supabase_rows(seconds, pgbench_trips)
    if live is None:
        notes.append(f"supabase transport: {LIVE_SUPABASE_MISSING}")
    return rows + (live or [])
