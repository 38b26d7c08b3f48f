"""Concurrent calls of one session never lose an update.

The seed wrote the whole persona from the cookie back to the database, so two requests of one
visitor at the same time overwrote each other. Here each RPC changes the persona atomically in
SQL: 50 signals sent at once from 50 connections must all count. Every call runs exactly as
PostgREST runs it: one transaction, ``set local role session_visitor``, the JWT claims in
``request.jwt.claims``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal
from typing import Any

import asyncpg

CALLS = 50


async def call_as_visitor(conn: asyncpg.Connection, session_id: str, sql: str, *args: Any) -> Any:
    """One RPC the way PostgREST makes it: role switch and claims local to one transaction."""
    claims = json.dumps({"role": "session_visitor", "session_id": session_id})
    async with conn.transaction():
        await conn.execute("set local role session_visitor")
        await conn.execute("select set_config('request.jwt.claims', $1, true)", claims)
        value = await conn.fetchval(sql, *args)
    return json.loads(value) if isinstance(value, str) else value


async def run_at_once(dsn: str, n: int, work: Any) -> list[Any]:
    """Open n connections first, then start all n calls together."""
    conns = [await asyncpg.connect(dsn) for _ in range(n)]
    start = asyncio.Event()

    async def one(i: int, conn: asyncpg.Connection) -> Any:
        await start.wait()
        return await work(i, conn)

    try:
        tasks = [asyncio.create_task(one(i, c)) for i, c in enumerate(conns)]
        await asyncio.sleep(0)
        start.set()
        return await asyncio.gather(*tasks)
    finally:
        await asyncio.gather(*(c.close() for c in conns))


SIGNAL_SQL = "select public.record_persona_signal($1, $2, $3, $4::text[], $5::jsonb, $6, $7)::text"


async def test_concurrent_signals_lose_nothing(db_dsn: str) -> None:
    session_id = str(uuid.uuid4())
    setup = await asyncpg.connect(db_dsn)
    try:
        created = await call_as_visitor(setup, session_id, "select public.get_session()::text")
        assert created["created"] is True
    finally:
        await setup.close()

    def deltas(i: int) -> dict[str, float]:
        # sales: 50 x 0.01 = 0.5 exactly; craft: 50 x 0.03 = 1.5 → clamped to 1;
        # marketing: 0.0003 x (1 + … + 50) = 0.3825 — every call a different amount
        return {
            "sales_focus_score": 0.01,
            "craft_score": 0.03,
            "marketing_focus_score": round(0.0003 * (i + 1), 4),
        }

    async def signal(i: int, conn: asyncpg.Connection) -> Any:
        return await call_as_visitor(
            conn, session_id, SIGNAL_SQL,
            "role_mention", f"signal {i}", "medium", ["roi_proof"], json.dumps(deltas(i)),
            "functional_role", "sales",
        )  # fmt: skip

    results = await run_at_once(db_dsn, CALLS, signal)
    assert len(results) == CALLS

    check = await asyncpg.connect(db_dsn)
    try:
        persona = await check.fetchrow(
            "select * from bevsession.user_personas where session_id = $1", uuid.UUID(session_id)
        )
        assert persona["total_interactions"] == CALLS
        assert persona["sales_focus_score"] == Decimal("0.5000")
        assert persona["craft_score"] == Decimal("1.0000")
        assert persona["marketing_focus_score"] == sum(
            (Decimal(str(deltas(i)["marketing_focus_score"])) for i in range(CALLS)), Decimal(0)
        )
        assert list(persona["pain_points_detected"]) == ["roi_proof"]
        assert persona["functional_role"] == "sales"
        assert len(json.loads(persona["functional_role_history"])) == 10

        audit = await check.fetch(
            "select signal_text, confidence_before, confidence_after"
            " from bevsession.persona_signals where session_id = $1",
            uuid.UUID(session_id),
        )
        assert len(audit) == CALLS
        assert sorted(r["signal_text"] for r in audit) == sorted(
            f"signal {i}" for i in range(CALLS)
        )
        # the calls ran one after another: each saw the confidence the previous one left
        befores = sorted(r["confidence_before"] for r in audit)
        afters = sorted(r["confidence_after"] for r in audit)
        assert befores[0] == 0
        assert sorted([*afters[:-1], Decimal(0)]) == befores
        assert afters[-1] == persona["overall_confidence"]
    finally:
        await check.close()


async def test_concurrent_first_turns_create_one_session(db_dsn: str) -> None:
    """Many first requests of one visitor at once: one creates the session, all succeed."""
    session_id = str(uuid.uuid4())
    n = 20

    async def turn(i: int, conn: asyncpg.Connection) -> Any:
        return await call_as_visitor(
            conn, session_id, "select public.begin_chat_turn($1)::text", f"hello {i}"
        )

    results = await run_at_once(db_dsn, n, turn)
    assert sum(1 for r in results if r["created"]) == 1
    assert max(r["session"]["message_count"] for r in results) == n
    assert sorted(r["session"]["message_count"] for r in results) == list(range(1, n + 1))

    check = await asyncpg.connect(db_dsn)
    try:
        assert await check.fetchval("select count(*) from bevsession.sessions") == 1
        assert await check.fetchval("select count(*) from bevsession.user_personas") == 1
        assert await check.fetchval("select count(*) from bevsession.conversation_history") == n
    finally:
        await check.close()


async def test_a_signal_racing_forget_session_leaves_nothing(db_dsn: str) -> None:
    """forget_session and writers lock the session row first: nothing is written after a forget."""
    session_id = str(uuid.uuid4())
    setup = await asyncpg.connect(db_dsn)
    try:
        await call_as_visitor(setup, session_id, "select public.get_session()::text")
    finally:
        await setup.close()

    async def work(i: int, conn: asyncpg.Connection) -> Any:
        try:
            if i == 10:
                return await call_as_visitor(
                    conn, session_id, "select public.forget_session()::text"
                )
            return await call_as_visitor(
                conn,
                session_id,
                "select public.add_conversation_message('user', $1)::text",
                f"m{i}",
            )
        except asyncpg.PostgresError as exc:
            return exc.sqlstate

    results = await run_at_once(db_dsn, 20, work)
    refused = [r for r in results if r == "PT403"]
    stored = [r for r in results if isinstance(r, dict) and "message" in r]
    assert len(refused) + len(stored) == 19, results

    check = await asyncpg.connect(db_dsn)
    try:
        # whatever got in before the forget was erased by it; nothing got in after it
        assert await check.fetchval("select count(*) from bevsession.conversation_history") == 0
        assert await check.fetchval(
            "select forgotten_at is not null from bevsession.sessions where id = $1",
            uuid.UUID(session_id),
        )
    finally:
        await check.close()
