"""Section 4 — growth: history latency of one session as the messages table grows to 10^6 rows.

The table is filled straight in SQL as the superuser — one ``INSERT … SELECT generate_series``
per step, spread over many sessions (100 messages each), every row with a realistic persona
snapshot (~1.9 KB of JSON) — to 10^4, 10^5 and 10^6 rows, then ANALYZEd. The session we measure
has 60 messages of its own from the start, so only the table around it grows.

At each size: ``SessionService.get_conversation_history(limit=20)`` through the postgres
transport (the newest 20, what an LLM prompt takes), one call at a time, median of many; and
``EXPLAIN (ANALYZE, BUFFERS)`` of the query underneath (history_page's keyset scan, run as the
visitor so RLS applies) to show that it reads the (session_id, seq) index, not the table.
"""

from __future__ import annotations

import itertools
import json
import statistics
import time
import uuid
from dataclasses import dataclass

import asyncpg

from bench.env import Database
from bench.report import Row, compare
from bevsession.service import SessionService
from bevsession.transports.postgres import PostgresTransport

MESSAGES_PER_SESSION = 100
TARGET_MESSAGES = 60
TARGET = uuid.UUID("00000000-0000-4000-9000-000000000001")
SNAPSHOT_SQL = """
select bevsession.persona_json(
    pg_catalog.jsonb_populate_record(null::bevsession.user_personas, $1::jsonb))
"""

# Fill: sessions for the new rows, then the rows (seq from the identity, spread round robin).
NEW_SESSIONS_SQL = """
insert into bevsession.sessions (id, created_at, last_activity_at)
select ('20000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, now(), now()
from generate_series($1::bigint, $2::bigint) as n
"""
FILL_SQL = """
insert into bevsession.conversation_history (
    session_id, message_role, message_content, persona_snapshot, generation_mode, created_at)
select ('20000000-0000-4000-8000-' || lpad((1 + n % $3)::text, 12, '0'))::uuid,
       (case when n % 2 = 0 then 'user' else 'assistant' end)::bevsession.message_role,
       'message ' || n || ': we brew craft beer and sell through two distributors in three states',
       $4::jsonb,
       case when n % 2 = 1 then 'fresh' end,
       now() - make_interval(secs => ($2 - n)::double precision)
from generate_series($1::bigint, $2::bigint) as n
"""
# What history_page reads (its keyset scan), as the visitor: RLS adds the claim comparison.
EXPLAIN_SQL = """
explain (analyze, buffers, costs off, timing on)
select m.* from bevsession.conversation_history as m
where m.session_id = $1 and ($2::bigint is null or m.seq < $2)
order by m.seq desc
limit 21
"""


@dataclass
class Step:
    rows: int
    fill_seconds: float
    median_ms: float
    p95_ms: float
    plan_line: str
    buffers_line: str


def persona_fixture() -> dict[str, object]:
    """A persona that has seen a few signals: what a snapshot in a real history looks like."""
    detection = {"value": "supplier", "confidence": 0.25, "strength": "medium",
                 "evidence": "We brew craft beer", "detected_at": 1_700_000_000_000}  # fmt: skip
    history = [detection] * 5
    return {
        "id": str(uuid.uuid4()), "session_id": str(TARGET), "supplier_score": 0.35,
        "craft_score": 0.2, "pain_points_detected": ["roi_proof"],
        "pain_points_confidence": {"roi_proof": 0.25}, "overall_confidence": 0.31,
        "total_interactions": 7, "org_type": "supplier", "org_type_confidence": 0.5,
        "org_type_history": history, "org_size": "craft", "org_size_confidence": 0.25,
        "org_size_history": history[:2], "questions_asked": ["What does it cost?"],
        "vectors_updated_at": "2026-11-24T20:00:00Z",
    }  # fmt: skip


async def history_latency(service: SessionService, calls: int) -> tuple[float, float]:
    for _ in range(20):
        await service.get_conversation_history(TARGET, limit=20)
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        page = await service.get_conversation_history(TARGET, limit=20)
        samples.append(time.perf_counter() - start)
    assert len(page.messages) == 20
    samples.sort()
    return statistics.median(samples) * 1e3, samples[int(len(samples) * 0.95) - 1] * 1e3


async def explain(conn: asyncpg.Connection) -> tuple[str, str]:
    """The plan's scan line and its buffers line, as the visitor (RLS on)."""
    async with conn.transaction():
        await conn.execute("set local role session_visitor")
        await conn.execute("select set_config('request.jwt.claims', $1, true)",
                           f'{{"role":"session_visitor","session_id":"{TARGET}"}}')  # fmt: skip
        lines = [r[0] for r in await conn.fetch(EXPLAIN_SQL, TARGET, None)]
    scan = next((i for i, line in enumerate(lines) if "Scan" in line and "messages" in line), 0)
    buffers = next((ln for ln in lines[scan + 1 :] if "Buffers:" in ln), "")
    return lines[scan].strip().lstrip("-> ").strip(), buffers.strip()


async def run(db: Database, sizes: tuple[int, ...], calls: int) -> tuple[list[Row], list[Step]]:
    admin = await asyncpg.connect(db.admin_dsn)
    transport = await PostgresTransport.connect(db.app_dsn, min_size=1, max_size=1)
    service = SessionService(transport)
    steps: list[Step] = []
    try:
        snapshot = await admin.fetchval(SNAPSHOT_SQL, json.dumps(persona_fixture()))
        await service.get_session(TARGET)
        for i in range(TARGET_MESSAGES):
            await service.add_conversation_message(
                TARGET, "user" if i % 2 == 0 else "assistant", f"target message {i}"
            )
        have = TARGET_MESSAGES
        sessions = 0
        for size in sizes:
            first, last = have + 1, size
            want_sessions = max(1, size // MESSAGES_PER_SESSION)
            start = time.perf_counter()
            if want_sessions > sessions:
                await admin.execute(NEW_SESSIONS_SQL, sessions + 1, want_sessions)
                sessions = want_sessions
            if last >= first:
                await admin.execute(FILL_SQL, first, last, sessions, snapshot)
            fill = time.perf_counter() - start
            await admin.execute("analyze bevsession.conversation_history")
            have = max(have, size)
            median, p95 = await history_latency(service, calls)
            plan, buffers = await explain(admin)
            steps.append(Step(size, fill, median, p95, plan, buffers))
    finally:
        await transport.close()
        await admin.close()

    rows: list[Row] = []
    base = steps[0]
    for step in steps:
        ref = None if step is base else f"same @ {base.rows:.0e} rows"
        last = step is steps[-1] and step is not base
        rows.append(
            compare(
                f"history newest 20 @ {step.rows:.0e} rows (median)",
                step.median_ms,
                "ms",
                ref,
                None if ref is None else base.median_ms,
                higher_is_better=False,
                aim=round(1 / 1.5, 2) if last else None,
            )
        )
        rows.append(compare(f"history newest 20 @ {step.rows:.0e} rows (p95)", step.p95_ms,
                            "ms", ref, None if ref is None else base.p95_ms,
                            higher_is_better=False))  # fmt: skip
    for prev, step in itertools.pairwise(steps):
        added = step.rows - prev.rows
        rows.append(compare(f"generate {added:,} message rows (one INSERT…SELECT)",
                            added / step.fill_seconds, "rows/s"))  # fmt: skip
    return rows, steps
