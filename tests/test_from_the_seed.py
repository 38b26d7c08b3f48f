"""Coming from the seed: ``bevsession import-seed`` and the first contact of a seed cookie.

A seed installation is built exactly as the seed document defines its tables (plus
``persona_signals``), with realistic visitors and the rows that cannot be stored as they are
(tests/seed_installation.py). It is imported by the real command, twice, and read back through
the real server's HTTP API with cookies sealed by the real iron-session 8.0.4 under Node — the
cookies the seed's visitors hold. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from bevsession.errors import InvalidInput
from bevsession.local_postgres import LocalPostgres
from bevsession.sealing import Sealer
from bevsession.service import SessionService
from e2e_server import (
    COOKIE_NAME,
    PASSWORD,
    RunningServer,
    SetCookie,
    StartServer,
    Visitor,
    clean_env,
    db_fetch,
)
from interop.node_iron import ensure_node_modules, run_iron
from seed_installation import (
    SCORES,
    SeedVisitor,
    add_edge_rows,
    insert_visitors,
    make_visitor,
    seed_tables_sql,
)

Iron = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
BEVSESSION = Path(sys.executable).parent / "bevsession"
TTL = 86400  # the seed's cookie ttl
TABLES = ("sessions", "personas", "messages", "signals")


@pytest.fixture(scope="module")
def iron() -> Iron:
    ensure_node_modules()
    return run_iron


def import_seed(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``bevsession import-seed`` as a real subprocess."""
    return subprocess.run(
        [str(BEVSESSION), "import-seed", *args], env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip


def summary_of(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def node_cookie(iron: Iron, user: dict[str, Any]) -> str:
    """The cookie the seed app's ``session.save()`` sets for this SessionData."""
    op = {"op": "save", "data": {"user": user}, "password": PASSWORD, "cookieName": COOKIE_NAME,
          "ttl": TTL, "secure": False}  # fmt: skip
    result = iron([op])[0]
    assert result["ok"], result
    header = result["value"][0] if isinstance(result["value"], list) else result["value"]
    return SetCookie.parse(header).value


def node_cookies(iron: Iron, users: list[dict[str, Any]]) -> list[str]:
    """Several cookies in one Node run."""
    ops = [
        {"op": "save", "data": {"user": u}, "password": PASSWORD, "cookieName": COOKIE_NAME,
         "ttl": TTL, "secure": False}
        for u in users
    ]  # fmt: skip
    values = []
    for result in iron(ops):
        assert result["ok"], result
        header = result["value"][0] if isinstance(result["value"], list) else result["value"]
        values.append(SetCookie.parse(header).value)
    return values


async def build_seed(dsn: str, visitors: list[SeedVisitor], schema: str = "public") -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        if schema != "public":
            await conn.execute(f"create schema {schema}")
        await conn.execute(seed_tables_sql(schema))
        await insert_visitors(conn, visitors, schema)
        return await add_edge_rows(conn, schema)
    finally:
        await conn.close()


# --- import, twice, and read back over HTTP ----------------------------------------------------
async def test_a_seed_installation_imports_once_and_its_visitors_come_back_over_http(
    server_factory: StartServer, http: aiohttp.ClientSession, iron: Iron
) -> None:
    server = await server_factory()
    assert server.admin_dsn is not None
    rng = random.Random(2026)
    now = datetime.now(UTC)
    visitors = [make_visitor(rng, now, messages=rng.randint(2, 9)) for _ in range(40)]
    edge = await build_seed(server.admin_dsn, visitors)
    env = clean_env(DATABASE_URL=server.admin_dsn)

    # --dry-run: the report of a real run, and nothing written
    dry = summary_of(await asyncio.to_thread(import_seed, "--dry-run", env=env))
    assert dry["dry_run"] is True
    written = await db_fetch(
        server,
        "select (select count(*) from bevsession.sessions) as s,"
        " (select count(*) from bevsession.conversation_history) as m",
    )
    assert (written[0]["s"], written[0]["m"]) == (0, 0), "a dry run writes nothing"

    first_proc = await asyncio.to_thread(import_seed, env=env)
    first = summary_of(first_proc)
    assert {k: v for k, v in first.items() if k not in ("dry_run", "seconds")} == {
        k: v for k, v in dry.items() if k not in ("dry_run", "seconds")
    }, "the dry run reported exactly what the import did"
    assert "import-seed: messages:" in first_proc.stderr, "progress goes to stderr"

    expected_rows = {
        "sessions": len(visitors),
        "personas": len(visitors),
        "messages": sum(len(v.messages) for v in visitors),
        "signals": len(visitors),
    }
    for table in TABLES:
        report = first[table]
        skipped = sum(edge.skipped[table].values())
        assert report["read"] == expected_rows[table] + edge.rows[table], (table, report)
        assert report["skipped"] == dict(edge.skipped[table]), (table, report)
        assert report["adjusted"] == dict(edge.adjusted[table]), (table, report)
        assert report["imported"] == report["read"] - skipped, (table, report)
        assert report["already_imported"] == 0, (table, report)
    assert first["missing_tables"] == [] and first["missing_columns"] == {}

    second_proc = await asyncio.to_thread(import_seed, env=env)
    second = summary_of(second_proc)
    for table in TABLES:
        assert second[table]["imported"] == 0, (table, second[table])
        assert second[table]["already_imported"] == first[table]["imported"], (table, second)
        assert second[table]["skipped"] == first[table]["skipped"], (table, second)
    assert "nothing new to import" in second_proc.stderr, second_proc.stderr
    counts = await db_fetch(
        server,
        "select (select count(*) from bevsession.conversation_history) as m,"
        " (select count(*) from bevsession.user_personas) as p",
    )
    assert counts[0]["m"] == first["messages"]["imported"], "nothing was imported twice"
    assert counts[0]["p"] == first["personas"]["imported"]

    # The seed's visitors come back with the cookies their browsers hold.
    chosen = visitors[:4]
    cookies = node_cookies(iron, [v.cookie_user() for v in chosen])
    for seed_visitor, cookie in zip(chosen, cookies, strict=True):
        visitor = Visitor(http, server)
        visitor.cookie = cookie
        body = await visitor.session()
        assert body["sessionId"] == seed_visitor.session_id, "the imported session, not a new one"
        persona = body["persona"]
        for score in SCORES:
            assert persona[score] == pytest.approx(float(seed_visitor.persona[score])), score
        assert persona["pain_points_detected"] == seed_visitor.persona["pain_points_detected"]
        assert persona["overall_confidence"] == pytest.approx(
            float(seed_visitor.persona["overall_confidence"])
        )
        assert persona["total_interactions"] == seed_visitor.persona["total_interactions"]
        # what the seed kept only in its cookie completes the imported session
        vectors = persona["detection_vectors"]
        assert vectors["functional_role"] == seed_visitor.vectors["functional_role"]
        assert vectors["org_type"] == seed_visitor.vectors["org_type"]
        assert body["currentMode"] == "returning" and body["hasCompletedOnboarding"] is True
        assert body["messageCount"] == len(seed_visitor.messages)

        page = await visitor.get("/api/chat/history?limit=100")
        assert page.status == 200, page
        got = [(m["role"], m["content"]) for m in page.json["messages"]]
        want = [(m["message_role"], m["message_content"]) for m in seed_visitor.messages]
        assert got == want, "the history comes back whole, in the seed's order"
        stamps = [m["createdAt"] for m in page.json["messages"]]
        assert stamps == sorted(stamps)

    # an imported visitor chats on: the turn adds to the imported history
    visitor = Visitor(http, server)
    visitor.cookie = node_cookie(iron, chosen[0].cookie_user())
    turn = await visitor.chat("We also import from Mexico")
    assert turn["sessionId"] == chosen[0].session_id
    assert turn["messageCount"] == len(chosen[0].messages) + 2

    # the edge rows landed as the rules say
    braced = await db_fetch(
        server,
        "select large_score::float8 as s from bevsession.user_personas where session_id = $1",
        uuid.UUID(edge.braced_id),
    )
    assert braced[0]["s"] == 0.6, "a braced, upper-case session id is the same uuid"
    clamped = await db_fetch(
        server,
        "select craft_score::float8 as s from bevsession.user_personas where session_id = $1",
        uuid.UUID(edge.clamped_id),
    )
    assert clamped[0]["s"] == 1.0, "9.99 is clamped to 1"


async def test_import_from_another_database_and_schema_with_columns_missing(
    pg: LocalPostgres, db_dsn: str, owner: asyncpg.Connection
) -> None:
    """--source/--source-schema; a persona_signals table without the usual id and confidence
    columns: defaults apply, the missing columns are reported, equal rows stay two rows."""
    source_db = await pg.create_database()
    try:
        rng = random.Random(11)
        visitors = [make_visitor(rng, datetime.now(UTC), messages=4) for _ in range(5)]
        await build_seed(pg.dsn(source_db), visitors, schema="legacy")
        conn = await asyncpg.connect(pg.dsn(source_db))
        try:
            await conn.execute(
                "alter table legacy.persona_signals drop column id, drop column confidence_before,"
                " drop column confidence_after"
            )
            sid = visitors[0].session_id
            await conn.execute(
                "insert into legacy.persona_signals (session_id, signal_type, signal_text,"
                " signal_strength, created_at)"
                " values ($1, 'twin', 'same', 'weak', '2026-11-20T10:00:00Z'),"
                " ($1, 'twin', 'same', 'weak', '2026-11-20T10:00:00Z')",
                sid,
            )  # fmt: skip
        finally:
            await conn.close()

        env = clean_env(DATABASE_URL=db_dsn)
        args = ("--source", pg.dsn(source_db), "--source-schema", "legacy", "--batch", "7")
        first = summary_of(await asyncio.to_thread(import_seed, *args, env=env))
        assert first["schema"] == "legacy"
        assert first["missing_columns"] == {
            "persona_signals": ["id", "confidence_before", "confidence_after"]
        }
        assert first["signals"]["imported"] == 5 + 2 + 0, first["signals"]  # edge rows skipped
        assert first["messages"]["imported"] == 20 + 4, first["messages"]
        twins = await owner.fetchval(
            "select count(*) from bevsession.persona_signals where signal_type = 'twin'"
        )
        assert twins == 2, "two equal rows without ids are two rows"
        zero = await owner.fetchval(
            "select count(*) from bevsession.persona_signals"
            " where confidence_before = 0 and confidence_after = 0"
        )
        assert zero == first["signals"]["imported"], "absent confidences take their default, 0"

        second = summary_of(await asyncio.to_thread(import_seed, *args, env=env))
        assert all(second[t]["imported"] == 0 for t in TABLES), second
        assert second["signals"]["already_imported"] == first["signals"]["imported"]
    finally:
        await pg.drop_database(source_db)


async def test_an_import_goes_only_where_the_database_does_not_already_decide(
    db_dsn: str, owner: asyncpg.Connection
) -> None:
    """The database wins: a session this server made keeps its own persona and history; a
    forgotten visitor stays forgotten; new seed rows of an imported session come in later."""
    rng = random.Random(5)
    now = datetime.now(UTC)
    native, forgotten, imported = (make_visitor(rng, now, messages=2) for _ in range(3))
    await owner.execute(seed_tables_sql())
    await insert_visitors(owner, [imported])
    env = clean_env(DATABASE_URL=db_dsn)
    summary_of(await asyncio.to_thread(import_seed, env=env))

    await owner.execute("insert into bevsession.sessions (id) values ($1), ($2)",
                        uuid.UUID(native.session_id), uuid.UUID(forgotten.session_id))  # fmt: skip
    await owner.execute(
        "update bevsession.sessions set revoked_at = now(), forgotten_at = now() where id = $1",
        uuid.UUID(forgotten.session_id),
    )
    await insert_visitors(owner, [native, forgotten])
    # the seed app, still running, adds a message to the imported visitor's conversation
    await owner.execute(
        "insert into public.conversation_history (session_id, message_role, message_content)"
        " values ($1, 'user', 'And one more')",
        imported.session_id,
    )

    report = summary_of(await asyncio.to_thread(import_seed, env=env))
    assert report["sessions"]["skipped"] == {"session_exists": 1, "session_revoked": 1}, report
    assert report["personas"]["skipped"] == {"session_exists": 1, "session_revoked": 1}, report
    assert report["messages"]["skipped"] == {"session_exists": 2, "session_revoked": 2}, report
    assert report["messages"]["imported"] == 1, "the imported session's new message comes in"
    counted = await owner.fetchval(
        "select message_count from bevsession.sessions where id = $1",
        uuid.UUID(imported.session_id),
    )
    assert counted == 3
    assert await owner.fetchval(
        "select count(*) from bevsession.conversation_history where session_id = $1",
        uuid.UUID(forgotten.session_id),
    ) == 0, "nothing comes back for a visitor who asked to be forgotten"  # fmt: skip


def test_import_refusals_are_one_clear_line(pg: LocalPostgres) -> None:
    no_url = import_seed(env=clean_env())
    assert no_url.returncode == 2 and "DATABASE_URL" in no_url.stderr, no_url
    down = import_seed(
        "--database-url", "postgresql://owner:hunter2@127.0.0.1:1/x", env=clean_env()
    )
    assert down.returncode == 1 and "cannot connect" in down.stderr, down
    assert "hunter2" not in down.stderr + down.stdout
    bad_batch = import_seed("--batch", "0", env=clean_env(DATABASE_URL=pg.dsn()))
    assert bad_batch.returncode == 2 and "at least 1" in bad_batch.stderr, bad_batch
    big_batch = import_seed("--batch", "50001", env=clean_env(DATABASE_URL=pg.dsn()))
    assert big_batch.returncode == 2 and "at most 50000" in big_batch.stderr, big_batch
    for proc in (no_url, down, bad_batch, big_batch):
        assert "Traceback" not in proc.stderr, proc.stderr


async def test_import_into_an_unmigrated_database_or_from_a_missing_schema_says_what_to_do(
    pg: LocalPostgres, db_dsn: str
) -> None:
    empty = await pg.create_database()
    try:
        proc = await asyncio.to_thread(import_seed, env=clean_env(DATABASE_URL=pg.dsn(empty)))
        assert proc.returncode == 1 and "bevsession migrate" in proc.stderr, proc
    finally:
        await pg.drop_database(empty)
    proc = await asyncio.to_thread(import_seed, "--source-schema", "nowhere",
                                   env=clean_env(DATABASE_URL=db_dsn))  # fmt: skip
    assert proc.returncode == 1 and "no schema 'nowhere'" in proc.stderr, proc
    proc = await asyncio.to_thread(import_seed, env=clean_env(DATABASE_URL=db_dsn))
    assert proc.returncode == 1 and "none of the seed tables" in proc.stderr, proc
    assert "Traceback" not in proc.stderr


# --- first contact: a Node cookie for a session the database has never seen --------------------
def rich_seed_user(session_id: str) -> dict[str, Any]:
    """A seed visitor well into a conversation: a non-default persona, counters and flags."""
    now = int(datetime.now(UTC).timestamp() * 1000)
    return {
        "sessionId": session_id,
        "createdAt": now - 30 * 3600 * 1000,
        "lastActivityAt": now - 3600 * 1000,
        "lastMessageAt": now - 3600 * 1000,
        "messageCount": 7,
        "lastMessage": "We need to prove ROI to our distributors",
        "currentMode": "returning",
        "hasCompletedOnboarding": True,
        "hasBrochure": True,
        "isDataConnected": False,
        "lastGeneratedBrochureId": "brochure-42",
        "persona": {
            "detection_vectors": {
                "functional_role": "sales", "functional_role_confidence": 0.75,
                "functional_role_history": [
                    {"value": "sales", "confidence": 0.5, "strength": "strong",
                     "evidence": "I run sales", "detected_at": now - 20 * 3600 * 1000},
                    {"value": "sales", "confidence": 0.75, "strength": "medium",
                     "evidence": "our sales team", "detected_at": now - 3600 * 1000},
                ],
                "org_type": "supplier", "org_type_confidence": 0.5, "org_type_history": [],
                "org_size": "craft", "org_size_confidence": 0.25, "org_size_history": [],
                "product_focus": None, "product_focus_confidence": 0, "product_focus_history": [],
                "vectors_updated_at": now - 3600 * 1000,
            },
            "sales_focus_score": 0.8, "marketing_focus_score": 0.1, "operations_focus_score": 0,
            "compliance_focus_score": 0, "supplier_score": 0.6, "distributor_score": 0.2,
            "craft_score": 0.7, "mid_sized_score": 0, "large_score": 0,
            "pain_points_detected": ["execution_blind_spot", "roi_proof"],
            "pain_points_confidence": {"execution_blind_spot": 0.5, "roi_proof": 0.25},
            "overall_confidence": 0.58, "total_interactions": 9,
        },
    }  # fmt: skip


def assert_kept(body: dict[str, Any], user: dict[str, Any]) -> None:
    """The Node cookie's persona, counters and flags, as the HTTP API shows them."""
    assert body["sessionId"] == user["sessionId"]
    assert body["createdAt"] == user["createdAt"], "its creation, hence its lifetime, is kept"
    for flag in ("currentMode", "hasCompletedOnboarding", "hasBrochure", "isDataConnected"):
        assert body[flag] == user[flag], flag
    persona = body["persona"]
    want = user["persona"]
    for score in (*SCORES, "overall_confidence"):
        assert persona[score] == pytest.approx(want[score]), score
    assert persona["total_interactions"] == want["total_interactions"]
    assert persona["pain_points_detected"] == want["pain_points_detected"]
    assert persona["pain_points_confidence"] == want["pain_points_confidence"]
    for key in ("functional_role", "functional_role_confidence", "org_type", "org_size"):
        assert persona["detection_vectors"][key] == want["detection_vectors"][key], key


async def test_a_node_cookie_the_database_never_saw_keeps_its_persona_counters_and_flags(
    module_server: RunningServer, http: aiohttp.ClientSession, iron: Iron
) -> None:
    user = rich_seed_user(str(uuid.uuid4()))
    visitor = Visitor(http, module_server)
    visitor.cookie = node_cookie(iron, user)
    body = await visitor.session()
    assert_kept(body, user)
    assert body["messageCount"] == 7
    rows = await db_fetch(
        module_server,
        "select s.message_count, s.last_message, s.last_generated_brochure_id,"
        " p.functional_role_history from bevsession.sessions s"
        " join bevsession.user_personas p on p.session_id = s.id where s.id = $1",
        uuid.UUID(user["sessionId"]),
    )  # fmt: skip
    assert rows[0]["message_count"] == 7 and rows[0]["last_message"] == user["lastMessage"]
    assert rows[0]["last_generated_brochure_id"] == "brochure-42"
    history = json.loads(rows[0]["functional_role_history"])
    assert [h["evidence"] for h in history] == ["I run sales", "our sales team"], (
        "the detection histories the cookie carried are in the database"
    )
    # and from then on the database wins: the cookie this server set, then another Node one
    again = await visitor.session()
    assert again["persona"]["sales_focus_score"] == 0.8
    stale = {**user, "messageCount": 0, "persona": {**user["persona"], "sales_focus_score": 0.1}}
    visitor.cookie = node_cookie(iron, stale)
    assert (await visitor.session())["messageCount"] == 7, "the database has it now: it wins"


async def test_a_chat_turn_as_first_contact_keeps_the_node_cookies_persona(
    module_server: RunningServer, http: aiohttp.ClientSession, iron: Iron
) -> None:
    user = rich_seed_user(str(uuid.uuid4()))
    visitor = Visitor(http, module_server)
    visitor.cookie = node_cookie(iron, user)
    turn = await visitor.chat("Can you help our reps pick accounts?")
    assert turn["sessionId"] == user["sessionId"]
    assert turn["messageCount"] == 7 + 2, "the cookie's count, plus this turn's two messages"
    assert turn["persona"]["sales_focus_score"] >= 0.8, "the turn built on the cookie's persona"
    body = await visitor.session()
    assert body["hasCompletedOnboarding"] is True and body["hasBrochure"] is True
    assert body["currentMode"] == "returning"
    assert body["persona"]["total_interactions"] >= 9


async def test_a_node_cookie_with_values_the_rules_refuse_is_adopted_without_them(
    module_server: RunningServer, http: aiohttp.ClientSession, iron: Iron
) -> None:
    """Validated like any input: what the rules refuse is dropped and counted; never a 500."""
    user = rich_seed_user(str(uuid.uuid4()))
    user["persona"] = {
        **user["persona"], "craft_score": 9.99, "large_score": "lots",
        "pain_points_detected": ["Execution Blind-Spot", "3-tier"],
        "pain_points_confidence": {"Execution Blind-Spot": 0.5},
    }  # fmt: skip
    user["persona"]["detection_vectors"] = {
        **user["persona"]["detection_vectors"],
        "functional_role_history": [{"value": f"role {i}"} for i in range(14)],
    }
    visitor = Visitor(http, module_server)
    visitor.cookie = node_cookie(iron, user)
    reply = await visitor.get("/api/session")
    assert reply.status == 200, reply
    persona = reply.json["persona"]
    assert persona["craft_score"] == 1 and persona["large_score"] == 0
    assert persona["pain_points_detected"] == ["execution_blind_spot"]
    rows = await db_fetch(
        module_server,
        "select jsonb_array_length(functional_role_history) as n from bevsession.user_personas"
        " where session_id = $1",
        uuid.UUID(user["sessionId"]),
    )
    assert rows[0]["n"] == 10, "the newest 10 detections"
    assert "session adopted from its cookie" in module_server.log_text()


async def test_a_node_visitor_active_elsewhere_keeps_the_session_the_database_thinks_idle(
    module_server: RunningServer, http: aiohttp.ClientSession, iron: Iron
) -> None:
    """While both apps run, requests the Node app served are activity too: its cookie's
    lastActivityAt counts. A cookie this server sealed proves nothing the database does not know
    (and a session the database refused stays refused on this worker: see the Security section)."""

    async def idle_in_the_database(session_id: str) -> None:
        await db_fetch(
            module_server,
            "update bevsession.sessions set last_activity_at = now() - interval '25 hours'"
            " where id = $1",
            uuid.UUID(session_id),
        )

    user = rich_seed_user(str(uuid.uuid4()))
    visitor = Visitor(http, module_server)
    visitor.cookie = node_cookie(iron, user)
    assert (await visitor.session())["sessionId"] == user["sessionId"]
    await idle_in_the_database(user["sessionId"])
    visitor.cookie = node_cookie(iron, user)  # the Node app saw the visitor an hour ago
    assert (await visitor.session())["sessionId"] == user["sessionId"]

    other = rich_seed_user(str(uuid.uuid4()))
    stranger = Visitor(http, module_server)
    stranger.cookie = node_cookie(iron, other)
    assert (await stranger.session())["sessionId"] == other["sessionId"]
    # a cookie as this server seals it (no detection histories), not yet in its read cache
    summary = {**other, "lastActivityAt": int(datetime.now(UTC).timestamp() * 1000)}
    summary["persona"] = {**other["persona"], "detection_vectors": {}}
    ours = Sealer(PASSWORD).seal({"user": summary}, ttl=TTL)
    await idle_in_the_database(other["sessionId"])
    fresh = await stranger.get("/api/session", cookie=ours, keep=False)
    assert fresh.json["sessionId"] != other["sessionId"], (
        "our own cookie: the database's clock wins"
    )


# --- the RPC over both transports ----------------------------------------------------------------
async def test_adopt_session_over_the_transport(local_service: SessionService) -> None:
    """``SessionService.adopt_session``: created from the cookie, what the rules changed counted,
    then the database wins; a cookie that is no object is refused before any I/O."""
    user = rich_seed_user(str(uuid.uuid4()))
    user["persona"] = {**user["persona"], "craft_score": 9.99}
    first = await local_service.adopt_session(user["sessionId"], user)
    assert first.created and first.adopted
    assert first.dropped == {"score_clamped": 1}
    assert first.session.message_count == 7 and first.session.current_mode == "returning"
    assert first.persona.craft_score == 1.0
    assert first.persona.detection_vectors.functional_role == "sales"
    assert len(first.persona.detection_vectors.functional_role_history) == 2
    again = await local_service.adopt_session(user["sessionId"], {**user, "messageCount": 0})
    assert not again.created and not again.adopted and again.session.message_count == 7
    with pytest.raises(InvalidInput, match="cookie: must be a JSON object"):
        await local_service.adopt_session(user["sessionId"], [1, 2])  # type: ignore[arg-type]
    other = str(uuid.uuid4())
    with pytest.raises(InvalidInput, match=r"cookie\.sessionId"):
        await local_service.adopt_session(other, user)
