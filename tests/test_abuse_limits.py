"""Abuse limits: the per-session chat rate limit, bounded sizes, and the retention purge.

- The chat rate limit lives in SQL (``begin_chat_turn`` → PT429), so every worker and both
  transports enforce one allowance per session: ``RateLimited`` from the service on both
  transports, HTTP 429 ``rate_limited`` with ``Retry-After`` from the server — also with two
  worker processes taking concurrent turns of one session.
- Sizes: message length (MAX_MESSAGE_CHARS), history page size (HISTORY_PAGE_MAX) and the
  request body (64 KiB) are refused with 4xx and store nothing.
- No row for a visitor who only loads pages; and ``purge_sessions`` (service_role only; service
  method and ``bevsession purge``) removes sessions that never did anything and old revoked
  tombstones, keeps everything else, skips rows in use, and works in batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from bevsession.errors import InvalidInput, PermissionDenied, RateLimited
from bevsession.local_postgres import LocalPostgres
from bevsession.service import SessionService
from bevsession.transports.base import Visitor as Caller
from bevsession.transports.postgres import PostgresTransport
from e2e_server import StartServer, Visitor, clean_env
from postgrest_endpoint import run_endpoint
from rpc_fixtures import LOCAL_TRANSPORTS, SUPABASE_KINDS, Keys, endpoint_config, open_transport

BEVSESSION = Path(sys.executable).parent / "bevsession"
DAY = timedelta(days=1)


@contextlib.asynccontextmanager
async def database(
    pg: LocalPostgres, template_db: str, *, chat_rate_limit: str | None = None
) -> AsyncIterator[str]:
    """A fresh migrated database, with its chat rate limit set (bevsession.chat_rate_policy, the
    row only service_role and the owner may change) before anyone connects."""
    name = await pg.create_database(template_db)
    try:
        admin = await asyncpg.connect(pg.dsn(name))
        try:
            if chat_rate_limit is not None:
                await admin.execute(
                    "update bevsession.chat_rate_policy set chat_rate_limit = $1", chat_rate_limit
                )
        finally:
            await admin.close()
        yield name
    finally:
        await pg.drop_database(name)


async def superuser(pg: LocalPostgres, name: str) -> asyncpg.Connection:
    conn: asyncpg.Connection = await asyncpg.connect(pg.dsn(name))
    return conn


# --- the chat rate limit: the service, both transports -------------------------------------------
@pytest.mark.parametrize("kind", LOCAL_TRANSPORTS)
async def test_the_rate_limit_is_rate_limited_on_both_transports(
    pg: LocalPostgres, template_db: str, keys: Keys, kind: str
) -> None:
    async with (
        database(pg, template_db, chat_rate_limit="3/minute") as name,
        open_transport(kind, pg, name, keys) as transport,
    ):
        service = SessionService(transport)
        me, other = uuid.uuid4(), uuid.uuid4()
        for i in range(3):
            await service.begin_chat_turn(me, f"turn {i}")
        with pytest.raises(RateLimited) as info:
            await service.begin_chat_turn(me, "one too many")
        assert info.value.code == "PT429"
        assert info.value.retry_after == 20, info.value.details
        assert "at most 3 chat turns per 60 seconds" in info.value.message
        # the other operations are not chat turns; another session has its own allowance
        await service.finish_chat_turn(me, "a reply")
        await service.add_conversation_message(me, "user", "not a turn")
        snapshot = await service.get_session(me)
        assert snapshot.session.message_count == 5, "the refused turn stored nothing"
        for i in range(3):
            await service.begin_chat_turn(other, f"other {i}")


async def test_the_limit_is_shared_by_concurrent_calls(pg: LocalPostgres, template_db: str) -> None:
    """Ten turns of one session at once from ten connections: exactly the allowance passes."""
    async with database(pg, template_db, chat_rate_limit="4/minute") as name:
        dsn = pg.dsn(name, user="authenticator")
        transports = [await PostgresTransport.connect(dsn, max_size=5) for _ in range(2)]
        try:
            me = uuid.uuid4()
            calls = [
                SessionService(transports[i % 2]).begin_chat_turn(me, f"at once {i}")
                for i in range(10)
            ]
            results = await asyncio.gather(*calls, return_exceptions=True)
        finally:
            for t in transports:
                await t.close()
        ok = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, RateLimited)]
        assert (len(ok), len(refused)) == (4, 6), results


# --- the chat rate limit over HTTP, two workers --------------------------------------------------
async def test_http_429_with_retry_after_shared_by_two_workers(
    pg: LocalPostgres, template_db: str, server_factory: StartServer
) -> None:
    async with database(pg, template_db, chat_rate_limit="3/minute") as name:
        server = await server_factory(
            env={"DATABASE_URL": pg.dsn(name, user="authenticator")}, database=False,
            args=["--workers", "2"],
        )  # fmt: skip
        # a new connection per request: the kernel spreads them over both workers
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar()
        ) as http:
            visitor = Visitor(http, server)
            sid = (await visitor.session())["sessionId"]
            cookie = visitor.cookie
            replies = await asyncio.gather(*(
                visitor.post("/api/chat", {"message": f"at once {i}"}, cookie=cookie, keep=False)
                for i in range(6)
            ))  # fmt: skip
            statuses = sorted(r.status for r in replies)
            assert statuses == [200, 200, 200, 429, 429, 429], replies
            for reply in replies:
                if reply.status == 429:
                    error = reply.json["error"]
                    assert error["code"] == "rate_limited", reply
                    assert "chat turns" in error["message"]
                    retry_after = reply.headers.get("Retry-After", "")
                    assert retry_after.isdigit() and 1 <= int(retry_after) <= 20, reply.headers
                    assert reply.session_cookie() is None or not reply.session_cookie().deletes  # type: ignore[union-attr]
                else:
                    assert reply.json["sessionId"] == sid
            page = (await visitor.get("/api/chat/history?limit=100", cookie=cookie)).json
            assert len(page["messages"]) == 6, "three turns stored, the refused ones nothing"
            stranger = Visitor(http, server)
            assert (await stranger.post("/api/chat", {"message": "my own turn"})).status == 200
        admin = await superuser(pg, name)
        try:
            stored = await admin.fetchval(
                "select count(*) from bevsession.conversation_history"
                " where message_content like 'at once %'"
            )
        finally:
            await admin.close()
        assert stored == 3


# --- bounded sizes -------------------------------------------------------------------------------
async def test_message_history_and_body_sizes_are_bounded(
    server_factory: StartServer, http: aiohttp.ClientSession
) -> None:
    server = await server_factory(env={"MAX_MESSAGE_CHARS": "100", "HISTORY_PAGE_MAX": "5"})
    visitor = Visitor(http, server)
    assert (await visitor.post("/api/chat", {"message": "x" * 100})).status == 200
    too_long = await visitor.post("/api/chat", {"message": "x" * 101})
    assert too_long.status == 400 and too_long.json["error"]["code"] == "invalid_input", too_long
    assert "100" in too_long.json["error"]["message"]
    huge = b'{"message": "' + b"y" * (64 * 1024) + b'"}'
    big = await visitor.request(
        "POST", "/api/chat", data=huge, headers={"Content-Type": "application/json"}
    )
    assert big.status == 413 and big.json["error"]["code"] == "request_entity_too_large", big
    assert (await visitor.get("/api/chat/history?limit=5")).status == 200
    page = await visitor.get("/api/chat/history?limit=6")
    assert page.status == 400 and page.json["error"]["code"] == "invalid_input", page
    spec = (await visitor.get("/openapi.json")).json
    chat_schema = spec["components"]["schemas"]["ChatRequest"]["properties"]["message"]
    assert chat_schema["maxLength"] == 100, "the document states the configured limit"
    limit = next(
        p for p in spec["paths"]["/api/chat/history"]["get"]["parameters"] if p["name"] == "limit"
    )
    assert limit["schema"]["maximum"] == 5
    assert (await visitor.session())["messageCount"] == 2, "refused requests stored nothing"


# --- no row for page loads; the purge -------------------------------------------------------------
async def test_page_loads_store_nothing_and_bots_are_purged(
    server_factory: StartServer, http: aiohttp.ClientSession
) -> None:
    server = await server_factory()
    assert server.admin_dsn
    admin = await asyncpg.connect(server.admin_dsn)
    try:

        async def sessions() -> int:
            count: int = await admin.fetchval("select count(*) from bevsession.sessions")
            return count

        crawler = Visitor(http, server)
        for path in ("/", "/healthz", "/readyz", "/openapi.json", "/api/chat/history", "/nope"):
            await crawler.get(path)
        assert await sessions() == 0, "loading pages must not create a session row"

        bot = Visitor(http, server)
        bot_id = (await bot.session())["sessionId"]  # the seed's row per visit
        human = Visitor(http, server)
        human_id = (await human.chat("I run sales at a craft brewery"))["sessionId"]
        assert await sessions() == 2
        await admin.execute(
            "update bevsession.sessions set last_activity_at = now() - interval '40 days'"
        )

        env = clean_env(DATABASE_URL=server.env["DATABASE_URL"])
        proc = await asyncio.to_thread(bevsession_cli, "purge", "--idle-days", "30", env=env)
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        assert report["deleted"]["idle_sessions"] == 1, report
        assert report["deleted"]["revoked_sessions"] == 0, report
        left = [r["id"] for r in await admin.fetch("select id::text from bevsession.sessions")]
        assert left == [human_id], "the bot went, the visitor who chatted stayed"

        again = await bot.get("/api/session")  # the bot comes back with its cookie: no error
        assert again.status == 200 and again.json["sessionId"] == bot_id, again
        kept = await admin.fetchval(
            "select count(*) from bevsession.conversation_history where session_id = $1::uuid",
            human_id,
        )
        assert kept == 2, "the visitor who chatted keeps its messages"
    finally:
        await admin.close()


async def backdate(conn: asyncpg.Connection, session_id: uuid.UUID, column: str, days: int) -> None:
    assert column in {"last_activity_at", "revoked_at", "forgotten_at"}
    await conn.execute(
        f"update bevsession.sessions set {column} = now() - make_interval(days => $2)"  # noqa: S608
        " where id = $1",
        session_id,
        days,
    )


@pytest.mark.parametrize("kind", LOCAL_TRANSPORTS)
async def test_purge_sessions_keeps_what_it_must(
    pg: LocalPostgres, db_name: str, keys: Keys, kind: str
) -> None:
    async with open_transport(kind, pg, db_name, keys) as transport:
        service = SessionService(transport)
        bot, old_bot, chatter, cleared, forgotten, fresh_clear = (uuid.uuid4() for _ in range(6))
        for sid in (bot, old_bot, chatter, cleared, forgotten, fresh_clear):
            await service.get_session(sid)
        for sid in (chatter, cleared, forgotten):
            await service.begin_chat_turn(sid, "hello")
            await service.finish_chat_turn(sid, "hi there")
        await service.clear_session(cleared)
        await service.forget_session(forgotten)
        await service.clear_session(fresh_clear)

        admin = await superuser(pg, db_name)
        try:
            for sid in (old_bot, chatter, cleared, forgotten, fresh_clear):
                await backdate(admin, sid, "last_activity_at", 10)
            await backdate(admin, bot, "last_activity_at", 1)
            for sid in (cleared, forgotten):
                # revoked_at is set once only (a trigger): move it back as the owner, trigger off
                trigger = "sessions_keep_revocation_permanent"
                await admin.execute(f"alter table bevsession.sessions disable trigger {trigger}")
                await backdate(admin, sid, "revoked_at", 10)
                await admin.execute(f"alter table bevsession.sessions enable trigger {trigger}")

            with pytest.raises(InvalidInput):
                await service.purge_sessions(timedelta(hours=23))  # refused before any I/O
            with pytest.raises(PermissionDenied):  # a visitor cannot purge
                await transport.call(
                    "purge_sessions", {"older_than_ms": 7 * 86_400_000},
                    identity=Caller(uuid.uuid4()),
                )  # fmt: skip

            # a row in use by a concurrent request is skipped, not waited for
            async with admin.transaction():
                await admin.execute(
                    "select 1 from bevsession.sessions where id = $1 for no key update", old_bot
                )
                busy = await service.purge_sessions(7 * DAY)
            assert busy.deleted.idle_sessions == 0, busy
            assert busy.deleted.revoked_sessions == 2, busy

            result = await service.purge_sessions(7 * DAY)
            assert result.deleted.idle_sessions == 1 and result.deleted.revoked_sessions == 0
            assert not result.more
            left = {r["id"] for r in await admin.fetch("select id from bevsession.sessions")}
            assert left == {bot, chatter, fresh_clear}, "kept: recent bot, chatter, fresh clear"
            orphans = await admin.fetchval(
                "select (select count(*) from bevsession.conversation_history m where not exists"
                " (select 1 from bevsession.sessions s where s.id = m.session_id))"
                " + (select count(*) from bevsession.user_personas p where not exists"
                " (select 1 from bevsession.sessions s where s.id = p.session_id))"
            )
            assert orphans == 0
            assert busy.deleted.messages == 2, "the cleared session's two messages went with it"
            kept = await admin.fetchval(
                "select count(*) from bevsession.conversation_history where session_id = $1",
                chatter,
            )
            assert kept == 2, "the chatter's messages are untouched"
        finally:
            await admin.close()


async def test_purge_works_in_batches(pg: LocalPostgres, db_name: str, keys: Keys) -> None:
    async with open_transport("postgres", pg, db_name, keys) as transport:
        service = SessionService(transport)
        ids = [uuid.uuid4() for _ in range(5)]
        for sid in ids:
            await service.get_session(sid)
        admin = await superuser(pg, db_name)
        try:
            await admin.execute(
                "update bevsession.sessions set last_activity_at = now() - interval '3 days'"
            )
        finally:
            await admin.close()
        deleted = []
        for _ in range(4):
            result = await service.purge_sessions(2 * DAY, batch=2)
            deleted.append(result.deleted.idle_sessions)
            if not result.more:
                break
        assert deleted == [2, 2, 1]


# --- the command --------------------------------------------------------------------------------
def bevsession_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BEVSESSION), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_purge_command_refusals() -> None:
    short = bevsession_cli(
        "purge", "--idle-days", "1", "--database-url", "postgresql://x@127.0.0.1:1/x",
        env=clean_env(),
    )  # fmt: skip
    assert short.returncode == 2 and "SESSION_TTL" in short.stderr, short
    zero = bevsession_cli("purge", "--idle-days", "0", env=clean_env())
    assert zero.returncode == 2 and "at least 1" in zero.stderr, zero
    nowhere = bevsession_cli("purge", env=clean_env())
    assert nowhere.returncode == 2 and "DATABASE_URL" in nowhere.stderr, nowhere
    down = bevsession_cli(
        "purge", "--database-url", "postgresql://authenticator:hunter2@127.0.0.1:1/x",
        env=clean_env(),
    )  # fmt: skip
    assert down.returncode == 1, down
    assert "DatabaseUnavailable" in down.stderr and "hunter2" not in down.stderr, down.stderr
    for proc in (short, zero, nowhere, down):
        assert "Traceback" not in proc.stderr, proc.stderr


async def test_purge_command_with_a_short_ttl_accepts_one_day(
    pg: LocalPostgres, db_name: str
) -> None:
    env = clean_env(SESSION_TTL="3600", DATABASE_URL=pg.dsn(db_name, user="authenticator"))
    proc = await asyncio.to_thread(bevsession_cli, "purge", "--idle-days", "1", env=env)
    assert proc.returncode == 0, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    assert report == {
        "older_than_days": 1,
        "calls": 1,
        "deleted": {"idle_sessions": 0, "revoked_sessions": 0, "expired_sessions": 0,
                    "personas": 0, "messages": 0, "signals": 0},
    }  # fmt: skip


@pytest.mark.parametrize("kind", SUPABASE_KINDS)
async def test_purge_command_on_a_supabase_project(
    pg: LocalPostgres, db_name: str, keys: Keys, kind: str
) -> None:
    """``purge`` through PostgREST as service_role, with either generation of keys."""
    running = await run_endpoint(endpoint_config(pg, db_name, keys, kind))
    try:
        project = (
            {"SUPABASE_SERVICE_ROLE_KEY": keys.service_key, "SUPABASE_JWT_SECRET": keys.jwt_secret}
            if kind == "supabase"
            else {"SUPABASE_SECRET_KEY": keys.secret_key,
                  "SUPABASE_PUBLISHABLE_KEY": keys.publishable_key,
                  "SUPABASE_JWT_SIGNING_KEY": keys.es256.private_pem(),
                  "SUPABASE_JWT_SIGNING_KEY_ID": keys.es256.key_id}
        )  # fmt: skip
        env = clean_env(SESSION_TTL="3600", SUPABASE_URL=running.url, **project)
        proc = await asyncio.to_thread(bevsession_cli, "purge", "--idle-days", "1", env=env)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["calls"] == 1
        if kind == "supabase-keys":
            del env["SUPABASE_JWT_SIGNING_KEY"], env["SUPABASE_JWT_SIGNING_KEY_ID"]
            missing = await asyncio.to_thread(bevsession_cli, "purge", env=env)
            assert missing.returncode == 2, missing
            assert "needs SUPABASE_JWT_SIGNING_KEY" in missing.stderr, missing.stderr
            assert keys.secret_key not in missing.stderr and "Traceback" not in missing.stderr
    finally:
        await running.close()


# --- the error mapping ---------------------------------------------------------------------------
def test_pt429_maps_to_rate_limited_with_its_wait() -> None:
    from postgrest import APIError

    from bevsession.errors import error_for_code
    from bevsession.transports.postgres import postgres_error
    from bevsession.transports.supabase import from_postgrest_error
    from bevsession_edge.http_errors import from_session_error

    err = error_for_code("PT429", "rate limited: at most 3 chat turns per 60 seconds",
                         details="retry_after=17")  # fmt: skip
    assert isinstance(err, RateLimited) and err.retry_after == 17
    assert isinstance(error_for_code("429", "Too Many Requests"), RateLimited)
    assert error_for_code("429", "no details").retry_after == 1  # type: ignore[attr-defined]
    via_rest = from_postgrest_error(
        APIError({"code": "PT429", "message": "rate limited", "details": "retry_after=5"})
    )
    assert isinstance(via_rest, RateLimited) and via_rest.retry_after == 5
    via_pg = postgres_error(
        asyncpg.PostgresError.new({"C": "PT429", "M": "rate limited", "D": "retry_after=9"})
    )
    assert isinstance(via_pg, RateLimited) and via_pg.retry_after == 9

    response = from_session_error(err)
    assert response.status == 429
    assert response.headers["Retry-After"] == "17"
    assert json.loads(response.text or "")["error"] == {
        "code": "rate_limited",
        "message": "rate limited: at most 3 chat turns per 60 seconds",
    }
