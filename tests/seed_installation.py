"""A seed installation to import, built exactly as the seed document defines its tables (a helper,
not a test module).

``docs/../seed/session-management-system.md`` ("Database Integration") defines
``user_personas`` and ``conversation_history`` column by column; ``persona_signals`` is only
named there, so it gets the columns ``recordPersonaSignal()`` writes. :func:`fill_realistic`
writes visitors as the seed's Next.js app would leave them (a persona upserted on every request,
messages with persona snapshots, signals), :func:`add_edge_rows` the rows that cannot be stored
as they are, each with the reason the import must count.

``python tests/seed_installation.py DSN MESSAGES`` fills a database with about MESSAGES messages
(for timing ``bevsession import-seed``).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

SCORES = (
    "sales_focus_score", "marketing_focus_score", "operations_focus_score",
    "compliance_focus_score", "supplier_score", "distributor_score", "craft_score",
    "mid_sized_score", "large_score",
)  # fmt: skip


def seed_tables_sql(schema: str = "public") -> str:
    """The seed's three tables, their indexes and RLS, in *schema* (as the seed document says)."""
    return f"""
    create table {schema}.user_personas (
        id                     uuid primary key default gen_random_uuid(),
        user_id                uuid,
        session_id             varchar(255) unique not null,
        sales_focus_score      decimal(3,2) default 0.0,
        marketing_focus_score  decimal(3,2) default 0.0,
        operations_focus_score decimal(3,2) default 0.0,
        compliance_focus_score decimal(3,2) default 0.0,
        supplier_score         decimal(3,2) default 0.0,
        distributor_score      decimal(3,2) default 0.0,
        craft_score            decimal(3,2) default 0.0,
        mid_sized_score        decimal(3,2) default 0.0,
        large_score            decimal(3,2) default 0.0,
        pain_points_detected   text[] default '{{}}',
        pain_points_confidence jsonb default '{{}}',
        overall_confidence     decimal(3,2) default 0.0,
        total_interactions     integer default 0,
        questions_asked        text[] default '{{}}',
        last_updated           timestamptz default now(),
        created_at             timestamptz default now()
    );
    create index idx_up_session_id on {schema}.user_personas (session_id);
    create index idx_up_user_id on {schema}.user_personas (user_id);
    create index idx_up_created_at on {schema}.user_personas (created_at);

    create table {schema}.conversation_history (
        id                   uuid primary key default gen_random_uuid(),
        session_id           varchar(255) not null,
        user_id              uuid,
        message_role         varchar(20) not null,
        message_content      text not null,
        persona_snapshot     jsonb,
        pain_points_inferred text[],
        ui_specification     jsonb,
        generation_mode      varchar(50),
        estimated_read_time  varchar(20),
        created_at           timestamptz default now()
    );
    create index idx_ch_session_messages on {schema}.conversation_history (session_id, created_at);
    create index idx_ch_user_id on {schema}.conversation_history (user_id);
    create index idx_ch_generation_mode on {schema}.conversation_history (generation_mode);

    create table {schema}.persona_signals (
        id                   uuid primary key default gen_random_uuid(),
        session_id           varchar(255) not null,
        user_id              uuid,
        signal_type          varchar(50) not null,
        signal_text          text,
        signal_strength      varchar(20),
        pain_points_inferred text[],
        score_updates        jsonb,
        confidence_before    decimal(3,2),
        confidence_after     decimal(3,2),
        created_at           timestamptz default now()
    );
    create index idx_ps_session_id on {schema}.persona_signals (session_id, created_at);

    alter table {schema}.user_personas enable row level security;
    alter table {schema}.conversation_history enable row level security;
    alter table {schema}.persona_signals enable row level security;
    """


# --- realistic visitors ------------------------------------------------------------------------
ROLES = ("sales", "marketing", "operations", "compliance")
ORG_TYPES = ("supplier", "distributor")
SIZES = ("craft", "mid_sized", "large")
PAIN_POINTS = ("execution_blind_spot", "roi_proof", "compliance_risk", "inventory_visibility")
QUESTIONS = (
    "How do I prove ROI to my distributor?",
    "Which accounts are slipping this quarter?",
    "Can you check our label approvals?",
)
USER_LINES = (
    "I run {role} at a {size} {org}",
    "We need to prove ROI on our field visits",
    "Our reps don't know which accounts to visit first",
    "How does this work for a {size} brewery?",
)


@dataclass
class SeedVisitor:
    """One visitor of the seed app: its rows, and the cookie its browser holds."""

    session_id: str
    created_at: datetime
    last_active: datetime
    persona: dict[str, Any]  # the user_personas row's values
    vectors: dict[str, Any]  # the cookie's detection_vectors (the seed keeps them only there)
    messages: list[dict[str, Any]] = field(default_factory=list)
    flags: dict[str, Any] = field(default_factory=dict)

    def cookie_user(self) -> dict[str, Any]:
        """The SessionData the seed app's cookie holds for this visitor."""
        persona = {
            "detection_vectors": self.vectors,
            **{k: float(self.persona[k]) for k in SCORES},
            "pain_points_detected": self.persona["pain_points_detected"],
            "pain_points_confidence": self.persona["pain_points_confidence"],
            "overall_confidence": float(self.persona["overall_confidence"]),
            "total_interactions": self.persona["total_interactions"],
        }
        last = self.messages[-1] if self.messages else None
        return {
            "sessionId": self.session_id,
            "createdAt": _ms(self.created_at),
            "lastActivityAt": _ms(self.last_active),
            "lastMessageAt": _ms(last["created_at"]) if last else None,
            "messageCount": len(self.messages),
            "lastMessage": last["message_content"] if last else None,
            "currentMode": "returning",
            "hasCompletedOnboarding": True,
            "hasBrochure": bool(self.flags.get("hasBrochure")),
            "isDataConnected": False,
            "persona": persona,
        }


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _snapshot(persona: dict[str, Any], vectors: dict[str, Any]) -> dict[str, Any]:
    """A persona_snapshot as the seed stores it: its PersonaScores at that moment."""
    return {
        "detection_vectors": vectors,
        **{k: float(persona[k]) for k in SCORES},
        "pain_points_detected": persona["pain_points_detected"],
        "pain_points_confidence": persona["pain_points_confidence"],
        "overall_confidence": float(persona["overall_confidence"]),
        "total_interactions": persona["total_interactions"],
    }


def make_visitor(rng: random.Random, now: datetime, messages: int) -> SeedVisitor:
    """A visitor who came a day or two ago and was last seen within the past 20 hours."""
    created = now - timedelta(hours=rng.uniform(26, 44))
    last_active = now - timedelta(hours=rng.uniform(1, 20))
    role, org, size = rng.choice(ROLES), rng.choice(ORG_TYPES), rng.choice(SIZES)
    pains = rng.sample(PAIN_POINTS, rng.randint(0, 3))
    persona: dict[str, Any] = {k: 0.0 for k in SCORES}
    persona[f"{role}_focus_score"] = round(rng.uniform(0.4, 0.95), 2)
    persona[f"{org}_score"] = round(rng.uniform(0.3, 0.9), 2)
    persona[f"{size}_score"] = round(rng.uniform(0.3, 0.9), 2)
    persona.update(
        pain_points_detected=pains,
        pain_points_confidence={p: round(rng.uniform(0.1, 0.8), 2) for p in pains},
        overall_confidence=round(rng.uniform(0.2, 0.7), 2),
        total_interactions=rng.randint(1, 12),
        questions_asked=rng.sample(QUESTIONS, rng.randint(0, 2)),
    )
    detected = _ms(created + timedelta(minutes=5))
    vectors = {
        "functional_role": role, "functional_role_confidence": 0.5,
        "functional_role_history": [
            {"value": role, "confidence": 0.5, "evidence": f"I run {role}", "timestamp": detected}
        ],
        "org_type": org, "org_type_confidence": 0.25, "org_type_history": [
            {"value": org, "confidence": 0.25, "evidence": f"a {org}", "timestamp": detected}
        ],
        "org_size": None, "org_size_confidence": 0, "org_size_history": [],
        "product_focus": None, "product_focus_confidence": 0, "product_focus_history": [],
        "vectors_updated_at": detected,
    }  # fmt: skip
    visitor = SeedVisitor(str(uuid.uuid4()), created, last_active, persona, vectors)
    visitor.flags["hasBrochure"] = rng.random() < 0.3
    span = (last_active - created).total_seconds()
    for i in range(messages):
        at = created + timedelta(seconds=span * (i + 1) / (messages + 1))
        user = i % 2 == 0
        # the persona grows turn by turn; a reply is stored with its turn's snapshot
        grown = {**persona, "total_interactions": i // 2 + 1}
        text = (
            rng.choice(USER_LINES).format(role=role, size=size, org=org)
            if user
            else f"Here is how BevGenie helps a {size} {org} with {rng.choice(PAIN_POINTS)}."
        )
        visitor.messages.append({
            "id": str(uuid.uuid4()),
            "message_role": "user" if user else "assistant",
            "message_content": text,
            "persona_snapshot": _snapshot(grown, vectors),
            "pain_points_inferred": pains[:1] if user else [],
            "ui_specification": None if user else {"type": "insight_page", "sections": [text]},
            "generation_mode": None if user else rng.choice(("fresh", "returning")),
            "estimated_read_time": None if user else "2 min read",
            "created_at": at,
        })  # fmt: skip
    return visitor


async def insert_visitors(
    conn: asyncpg.Connection, visitors: list[SeedVisitor], schema: str = "public"
) -> None:
    """Write the visitors' rows as the seed app would have (COPY-fast, in one transaction)."""
    persona_rows = [
        (v.session_id, *(v.persona[k] for k in SCORES), v.persona["pain_points_detected"],
         json.dumps(v.persona["pain_points_confidence"]), v.persona["overall_confidence"],
         v.persona["total_interactions"], v.persona["questions_asked"], v.last_active, v.created_at)
        for v in visitors
    ]  # fmt: skip
    message_rows = [
        (uuid.UUID(m["id"]), v.session_id, m["message_role"], m["message_content"],
         json.dumps(m["persona_snapshot"]), m["pain_points_inferred"],
         None if m["ui_specification"] is None else json.dumps(m["ui_specification"]),
         m["generation_mode"], m["estimated_read_time"], m["created_at"])
        for v in visitors for m in v.messages
    ]  # fmt: skip
    signal_rows = [
        (v.session_id, "role_mention", f"I run {role}", "medium",
         v.persona["pain_points_detected"][:1], json.dumps({f"{role}_focus_score": 0.25}),
         0.1, round(float(v.persona["overall_confidence"]), 2), v.created_at + timedelta(minutes=5))
        for v in visitors
        for role in [v.vectors["functional_role"]]
    ]  # fmt: skip
    async with conn.transaction():
        await conn.copy_records_to_table(
            "user_personas", schema_name=schema, records=persona_rows,
            columns=["session_id", *SCORES, "pain_points_detected", "pain_points_confidence",
                     "overall_confidence", "total_interactions", "questions_asked",
                     "last_updated", "created_at"],
        )  # fmt: skip
        await conn.copy_records_to_table(
            "conversation_history", schema_name=schema, records=message_rows,
            columns=["id", "session_id", "message_role", "message_content", "persona_snapshot",
                     "pain_points_inferred", "ui_specification", "generation_mode",
                     "estimated_read_time", "created_at"],
        )  # fmt: skip
        await conn.copy_records_to_table(
            "persona_signals", schema_name=schema, records=signal_rows,
            columns=["session_id", "signal_type", "signal_text", "signal_strength",
                     "pain_points_inferred", "score_updates", "confidence_before",
                     "confidence_after", "created_at"],
        )  # fmt: skip


# --- the rows that cannot be stored as they are ---------------------------------------------
@dataclass
class EdgeRows:
    """What the import must report for the edge rows: per table, skipped and adjusted counts."""

    skipped: dict[str, Counter[str]]
    adjusted: dict[str, Counter[str]]
    rows: dict[str, int]  # rows added per table (sessions: distinct session ids)
    braced_id: str  # the canonical id of the session whose seed id is spelled with braces
    clamped_id: str  # the session whose persona has craft_score 9.99


async def add_edge_rows(conn: asyncpg.Connection, schema: str = "public") -> EdgeRows:
    """One session per problem, so each reason's count is exact."""
    now = datetime.now(UTC)
    braced = str(uuid.uuid4())
    clamped = str(uuid.uuid4())
    names = str(uuid.uuid4())
    chatty = str(uuid.uuid4())
    await conn.execute(f"set search_path = {schema}")  # the seed's tables, unqualified
    await conn.execute(
        "insert into user_personas (session_id, sales_focus_score, created_at, last_updated)"
        " values ('visitor-42', 0.5, $1, $1)",
        now - timedelta(hours=3),
    )
    await conn.execute(
        "insert into conversation_history (session_id, message_role, message_content,"
        " created_at) values ('visitor-42', 'user', 'hello', $1), ('visitor-42', 'assistant',"
        " 'hi', $1)",
        now - timedelta(hours=3),
    )
    await conn.execute(
        "insert into persona_signals (session_id, signal_type, signal_text, signal_strength)"
        " values ('visitor-42', 'greeting', 'hello', 'weak')"
    )
    # a session id spelled with braces and upper case: the same uuid, normalised
    await conn.execute(
        "insert into user_personas (session_id, large_score, created_at, last_updated)"
        " values ($1, 0.6, $2, $2)",
        "{" + braced.upper() + "}", now - timedelta(hours=5),
    )  # fmt: skip
    # DECIMAL(3,2) holds 9.99: clamped to 1
    await conn.execute(
        "insert into user_personas (session_id, craft_score, overall_confidence, created_at,"
        " last_updated) values ($1, 9.99, 0.4, $2, $2)",
        clamped, now - timedelta(hours=6),
    )  # fmt: skip
    # pain point names the rules refuse: one normalised, one dropped
    await conn.execute(
        "insert into user_personas (session_id, pain_points_detected, pain_points_confidence,"
        " created_at, last_updated) values ($1, $2, $3, $4, $4)",
        names, ["Execution Blind-Spot", "3-tier", "roi_proof"],
        json.dumps({"Execution Blind-Spot": 0.5, "roi_proof": 0.3}), now - timedelta(hours=7),
    )  # fmt: skip
    # messages: over the limit, an unknown role, a role in capitals, a huge UI spec, a mode
    # with spaces; one session, in this order
    huge_ui = json.dumps({"blocks": ["x" * 1000] * 300})
    await conn.executemany(
        "insert into conversation_history (session_id, message_role, message_content,"
        " ui_specification, generation_mode, created_at) values ($1, $2, $3, $4, $5, $6)",
        [
            (chatty, "user", "y" * 9000, None, None, now - timedelta(hours=2, minutes=5)),
            (chatty, "bot", "I am not a role", None, None, now - timedelta(hours=2, minutes=4)),
            (chatty, "User", "Hello again", None, None, now - timedelta(hours=2, minutes=3)),
            (chatty, "assistant", "A big page", huge_ui, None, now - timedelta(hours=2, minutes=2)),
            (chatty, "assistant", "A fresh take", None, "Fresh Mode", now - timedelta(hours=2)),
        ],
    )  # fmt: skip
    await conn.execute(
        "insert into persona_signals (session_id, signal_type, signal_text, signal_strength,"
        " confidence_before, confidence_after)"
        " values ($1, 'pain_point_mention', 'ROI!', 'huge', 0, 0)",
        chatty,
    )
    await conn.execute("reset search_path")
    return EdgeRows(
        skipped={
            "sessions": Counter(session_id_not_uuid=1),
            "personas": Counter(session_id_not_uuid=1),
            "messages": Counter(session_id_not_uuid=2, unknown_role=1),
            "signals": Counter(session_id_not_uuid=1, unknown_signal_strength=1),
        },
        adjusted={
            "sessions": Counter(session_id_normalised=1),
            "personas": Counter(
                session_id_normalised=1, score_clamped=1, name_normalised=1, name_dropped=1
            ),
            "messages": Counter(
                message_truncated=1,
                role_normalised=1,
                ui_specification_dropped=1,
                name_normalised=1,
            ),
            "signals": Counter(),
        },
        rows={"sessions": 5, "personas": 4, "messages": 7, "signals": 2},
        braced_id=braced,
        clamped_id=clamped,
    )


async def _fill_for_timing(dsn: str, messages: int) -> None:
    """``python tests/seed_installation.py DSN MESSAGES``: seed tables with about MESSAGES
    messages (20 per visitor), for timing ``bevsession import-seed``."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(seed_tables_sql())
        rng = random.Random(7)
        now = datetime.now(UTC)
        started = time.monotonic()
        per_visitor = 20
        for _ in range(0, messages, 20_000):
            visitors = [make_visitor(rng, now, per_visitor) for _ in range(20_000 // per_visitor)]
            await insert_visitors(conn, visitors)
        print(f"filled {messages} messages in {time.monotonic() - started:.1f} s", file=sys.stderr)
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(_fill_for_timing(sys.argv[1], int(sys.argv[2])))
