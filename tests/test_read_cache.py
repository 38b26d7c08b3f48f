"""The edge worker's read cache (functions/bevsession_edge/read_cache.py) on a real database.

The contract under test: a repeated read of a cookie the database confirmed is answered from
memory (``X-Session-Source: cache``) and still reaches the database within one flush interval
(activity moves, revocations, expiries and changes made elsewhere are learned); anything done
through this worker (chat, clear, forget) takes effect at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bevsession.local_postgres import LocalPostgres
from bevsession.sealing import Sealer
from bevsession.service import SessionService
from bevsession.transports.base import Transport
from bevsession.transports.postgres import PostgresTransport
from bevsession_edge.app import create_app
from bevsession_edge.config import load_settings
from bevsession_edge.middleware import session_of
from bevsession_edge.read_cache import ReadCache, seal_expiration_ms
from bevsession_edge.session_cookie import new_user
from e2e_server import PASSWORD, free_port

COOKIE = "bevgenie_session"
FLUSH = 0.1  # seconds: short, so a test waits for a flush in well under a second


class Client:
    """A visitor of an in-process app, sending exactly the cookie each call names."""

    def __init__(self, http: TestClient[Any, Any]) -> None:
        self.http = http

    async def get(self, path: str, cookie: str | None) -> tuple[int, dict[str, Any], Any]:
        headers = {"Cookie": f"{COOKIE}={cookie}"} if cookie else {}
        async with self.http.get(path, headers=headers) as resp:
            return resp.status, await resp.json(), resp

    async def session(self, cookie: str | None) -> tuple[dict[str, Any], str | None, str | None]:
        """The summary, the new cookie (if one was set) and where the answer came from."""
        status, body, resp = await self.get("/api/session", cookie)
        assert status == 200, body
        morsel = resp.cookies.get(COOKIE)
        return body, (morsel.value if morsel else None), resp.headers.get("X-Session-Source")

    async def health(self) -> dict[str, Any]:
        """The worker's counters (``/metrics``; ``/healthz`` only says it is up)."""
        status, body, _ = await self.get("/metrics", None)
        assert status == 200
        return body


async def change_in_place(request: web.Request) -> web.Response:
    """A handler that changes a nested value of the session IN PLACE (no update call)."""
    persona = session_of(request).user.persona
    persona.setdefault("detection_vectors", {})["functional_role"] = "compliance"
    return web.json_response({"ok": True})


@contextlib.asynccontextmanager
async def running(pg: LocalPostgres, db_name: str, **overrides: Any) -> AsyncIterator[Client]:
    options: dict[str, Any] = {
        "session_password": PASSWORD,
        "database_url": pg.dsn(db_name, user="authenticator"),
        "session_touch_flush_seconds": FLUSH,
    }
    settings = load_settings(**(options | overrides))
    transport = await PostgresTransport.connect(pg.dsn(db_name, user="authenticator"))
    app = create_app(settings, transport=transport)
    app.router.add_post("/api/test/nested", change_in_place)
    server = TestServer(app, host="127.0.0.1")
    try:
        async with TestClient(server, cookie_jar=aiohttp.DummyCookieJar()) as http:
            yield Client(http)
    finally:
        await transport.close()


@pytest.fixture
async def client(pg: LocalPostgres, db_name: str) -> AsyncIterator[Client]:
    async with running(pg, db_name) as c:
        yield c


@pytest.fixture
async def service(pg: LocalPostgres, db_name: str) -> AsyncIterator[SessionService]:
    """Another writer of the same database (an admin, another worker, another service)."""
    transport = await PostgresTransport.connect(pg.dsn(db_name, user="authenticator"))
    try:
        yield SessionService(transport)
    finally:
        await transport.close()


async def confirmed_cookie(client: Client) -> tuple[str, str]:
    """A new session's cookie, confirmed by the database (the worker now holds it)."""
    body, cookie, source = await client.session(None)
    assert cookie is not None and source is None
    return body["sessionId"], cookie


async def settled_cookie(client: Client) -> tuple[str, str]:
    """A cookie the worker holds and answers from its cache (a new session: its persona was
    created with it and never written, so the flushes call it unchanged)."""
    sid, cookie = await confirmed_cookie(client)
    assert await client_hit(client, cookie)
    return sid, cookie


async def until(check: Any, limit: float = 5.0) -> Any:
    """Poll *check* (async, returns a truthy value when done) for at most *limit* seconds."""
    deadline = time.monotonic() + limit
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(FLUSH / 2)


async def last_activity(owner: asyncpg.Connection, sid: str) -> float:
    value = await owner.fetchval(
        "select extract(epoch from last_activity_at) from bevsession.sessions where id = $1",
        uuid.UUID(sid),
    )
    return float(value)


# --- reads -------------------------------------------------------------------------------------
async def test_a_repeated_read_is_answered_from_the_cache(client: Client) -> None:
    sid, cookie = await confirmed_cookie(client)
    for _ in range(3):
        body, new_cookie, source = await client.session(cookie)
        assert source == "cache" and body["sessionId"] == sid
        assert new_cookie is None, "a read of an unchanged session writes no cookie"
    stats = (await client.health())["readCache"]
    assert stats["hits"] == 3 and stats["entries"] == 1, stats


async def test_cached_reads_still_touch_the_database(
    client: Client, owner: asyncpg.Connection
) -> None:
    sid, cookie = await settled_cookie(client)
    await owner.execute(
        "update bevsession.sessions set last_activity_at = now() - interval '10 minutes'"
        " where id = $1",
        uuid.UUID(sid),
    )
    before = await last_activity(owner, sid)
    _, _, source = await client.session(cookie)
    assert source == "cache"

    async def moved() -> bool:
        return await last_activity(owner, sid) > before + 500

    ok = await until(moved)
    stats = (await client.health())["readCache"]
    assert ok, f"the batched touch must move last_activity_at {stats}"
    assert stats["flushes"] >= 1 and stats["touched"] >= 1, stats


async def client_hit(client: Client, cookie: str) -> bool:
    _, _, source = await client.session(cookie)
    return source == "cache"


async def test_a_revocation_elsewhere_reaches_the_worker_within_a_flush(
    client: Client, service: SessionService
) -> None:
    sid, cookie = await confirmed_cookie(client)
    assert await client_hit(client, cookie)
    await service.clear_session(sid)  # an admin, or another worker

    async def refused() -> bool:
        body, new_cookie, _ = await client.session(cookie)
        return body["sessionId"] != sid and new_cookie is not None

    assert await until(refused, limit=2.0), "the revoked session must be refused"
    health = await client.health()
    assert health["cookieRejections"].get("revoked") == 1, health
    assert health["readCache"]["stale"] >= 1, health


async def test_an_expiry_in_the_database_reaches_the_worker_within_a_flush(
    client: Client, owner: asyncpg.Connection
) -> None:
    sid, cookie = await confirmed_cookie(client)
    assert await client_hit(client, cookie)
    await owner.execute(
        "update bevsession.sessions set last_activity_at = now() - interval '25 hours'"
        " where id = $1",
        uuid.UUID(sid),
    )  # past the 24 hour idle timeout, by the database's clock only

    async def refused() -> bool:
        body, _, _ = await client.session(cookie)
        return body["sessionId"] != sid

    assert await until(refused, limit=2.0)
    assert (await client.health())["cookieRejections"].get("expired_in_database") == 1


async def test_a_change_elsewhere_is_read_again(client: Client, service: SessionService) -> None:
    sid, cookie = await settled_cookie(client)
    await service.update_persona(sid, {"craft_score": 0.7, "current_mode": "returning"})

    async def seen() -> bool:
        body, _, source = await client.session(cookie)
        return source is None and body["currentMode"] == "returning"

    assert await until(seen, limit=2.0), "the change must be read from the database"


async def test_a_change_in_place_on_a_cached_copy_leaves_the_copy_alone(client: Client) -> None:
    _, cookie = await confirmed_cookie(client)
    assert await client_hit(client, cookie)
    headers = {"Cookie": f"{COOKIE}={cookie}"}
    async with client.http.post("/api/test/nested", headers=headers) as resp:
        assert resp.status == 200
        assert resp.cookies.get(COOKIE) is not None, "the in-place change is seen and sealed"
    body, new_cookie, source = await client.session(cookie)  # the OLD cookie again
    assert source == "cache" and new_cookie is None
    vectors = body["persona"].get("detection_vectors", {})
    assert vectors.get("functional_role") != "compliance", "the cached copy must not change"


async def test_a_chat_turn_here_supersedes_every_cached_copy(client: Client) -> None:
    sid, cookie = await confirmed_cookie(client)
    assert await client_hit(client, cookie)
    async with client.http.post(
        "/api/chat",
        json={"message": "We run a craft brewery."},
        headers={"Cookie": f"{COOKIE}={cookie}"},
    ) as resp:
        assert resp.status == 200
    body, _, source = await client.session(cookie)  # the OLD cookie, at once
    assert source is None and body["sessionId"] == sid and body["messageCount"] == 2


async def test_clear_here_refuses_the_old_cookie_at_once(client: Client) -> None:
    sid, cookie = await confirmed_cookie(client)
    assert await client_hit(client, cookie)
    async with client.http.delete("/api/session", headers={"Cookie": f"{COOKIE}={cookie}"}) as r:
        assert r.status == 200
    body, new_cookie, source = await client.session(cookie)
    assert body["sessionId"] != sid and new_cookie is not None and source is None


async def test_disabled_every_read_asks_the_database(pg: LocalPostgres, db_name: str) -> None:
    async with running(pg, db_name, session_read_cache_seconds=0) as client:
        _, cookie = await confirmed_cookie(client)
        for _ in range(3):
            _, _, source = await client.session(cookie)
            assert source is None
        assert "readCache" not in await client.health()


async def test_pending_reads_are_flushed_on_shutdown(
    pg: LocalPostgres, db_name: str, owner: asyncpg.Connection
) -> None:
    async with running(pg, db_name, session_touch_flush_seconds=60) as client:
        sid, cookie = await confirmed_cookie(client)
        await owner.execute(
            "update bevsession.sessions set created_at = created_at - interval '1 minute',"
            " last_activity_at = now() - interval '10 minutes' where id = $1",
            uuid.UUID(sid),
        )
        await owner.execute(
            "update bevsession.user_personas set last_updated = last_updated - interval '1 minute'"
            " where session_id = $1",
            uuid.UUID(sid),
        )
        _, _, source = await client.session(cookie)
        assert source == "cache"
        before = await last_activity(owner, sid)
    assert await last_activity(owner, sid) > before + 500, "shutdown must flush pending reads"


# --- cold reads: a cookie this worker holds no copy of ------------------------------------------
async def row_version(owner: asyncpg.Connection, sid: str) -> tuple[str, float]:
    """The session row's xmin (a new one on every write, lock or update) and its activity."""
    row = await owner.fetchrow(
        "select xmin::text as xmin, extract(epoch from last_activity_at) as at"
        " from bevsession.sessions where id = $1",
        uuid.UUID(sid),
    )
    assert row is not None
    return row["xmin"], float(row["at"])


async def aged(owner: asyncpg.Connection, sid: str) -> None:
    """Move a session's last activity ten minutes back (its creation stays: the cookie's)."""
    await owner.execute(
        "update bevsession.sessions set last_activity_at = now() - interval '10 minutes'"
        " where id = $1",
        uuid.UUID(sid),
    )


@pytest.mark.parametrize("cache_seconds", [0, 60])
async def test_a_cold_read_writes_nothing_and_is_reported_with_the_batch(
    pg: LocalPostgres, db_name: str, owner: asyncpg.Connection, cache_seconds: int
) -> None:
    """A cookie this server sealed, read by a worker that holds no copy of it (the cache off,
    or another worker): one read_session, no lock, no write; the activity reaches the database
    with the batched touch (here: the shutdown's last flush), as a cache hit's does."""
    async with running(pg, db_name) as maker:
        sid, cookie = await confirmed_cookie(maker)
    await aged(owner, sid)
    before = await row_version(owner, sid)
    async with running(
        pg, db_name, session_read_cache_seconds=cache_seconds, session_touch_flush_seconds=60
    ) as client:
        body, new_cookie, source = await client.session(cookie)
        assert source is None and body["sessionId"] == sid and new_cookie is None
        assert await row_version(owner, sid) == before, "a cold read locks and writes nothing"
        if cache_seconds:
            counters = (await client.health())["readCache"]
            assert counters["pending"] == 1 and counters["entries"] == 1, counters
    _, at = await row_version(owner, sid)
    assert at > before[1] + 500, "the read's activity must reach the database with the batch"


async def test_a_cold_read_is_touched_within_a_flush_with_the_cache_off(
    pg: LocalPostgres, db_name: str, owner: asyncpg.Connection
) -> None:
    """Sliding expiry for a visitor who only reads, every read asking the database: the
    activity is at most one flush interval late."""
    async with running(pg, db_name, session_read_cache_seconds=0) as client:
        sid, cookie = await confirmed_cookie(client)
        await aged(owner, sid)
        _, before = await row_version(owner, sid)
        _, _, source = await client.session(cookie)
        assert source is None

        async def moved() -> bool:
            return (await row_version(owner, sid))[1] > before + 500

        assert await until(moved, 2.0), await client.health()
        assert "readCache" not in await client.health()


async def test_a_cold_read_is_kept_in_the_cache_unless_a_writer_has_the_row(
    pg: LocalPostgres, db_name: str, owner: asyncpg.Connection, db_dsn: str
) -> None:
    """A cold read never waits for a writer (it takes no lock); while a transaction holds the
    row it is answered but not kept (the writer's timestamps may be older than the read);
    once the row is free it is kept and the next read is a cache hit."""
    async with running(pg, db_name) as maker:
        sid, cookie = await confirmed_cookie(maker)
    await aged(owner, sid)
    writer = await asyncpg.connect(db_dsn)
    try:
        async with running(pg, db_name) as client:
            lock = writer.transaction()
            await lock.start()
            await writer.execute(
                "select 1 from bevsession.sessions where id = $1 for no key update",
                uuid.UUID(sid),
            )
            for _ in range(2):
                body, _, source = await asyncio.wait_for(client.session(cookie), 5)
                assert source is None and body["sessionId"] == sid, "answered, not kept"
            await lock.rollback()

            # the row keeps the locker's id until a write replaces it: the next flush's touch
            async def kept() -> bool:
                _, _, source = await client.session(cookie)
                return source == "cache"

            assert await until(kept, 3.0), await client.health()
    finally:
        await writer.close()


async def test_a_cookie_sealed_here_whose_session_the_database_lacks_is_adopted(
    pg: LocalPostgres, db_name: str, owner: asyncpg.Connection
) -> None:
    """read_session answers {session: null} for a session without a row; the worker then
    adopts the cookie (its counters and flags), as it did before reads were lock-free."""
    user = new_user().model_copy(update={"messageCount": 3, "hasBrochure": True})
    sealed = Sealer(PASSWORD).seal({"user": user.model_dump(mode="json")}, ttl=86400)
    async with running(pg, db_name) as client:
        body, _, source = await client.session(sealed)
        assert source is None and body["sessionId"] == str(user.sessionId)
        assert body["messageCount"] == 3 and body["hasBrochure"] is True, body
    row = await owner.fetchrow(
        "select message_count, has_brochure from bevsession.sessions where id = $1",
        user.sessionId,
    )
    assert row is not None and row["message_count"] == 3 and row["has_brochure"] is True


# --- the cache itself ----------------------------------------------------------------------------
def test_entries_are_bounded_oldest_first() -> None:
    cache = ReadCache(max_age=60, max_entries=3)
    users = [new_user() for _ in range(5)]
    for i, user in enumerate(users):
        cache.confirm(f"seal-{i}", user, seen_ms=1)
    assert len(cache) == 3
    assert cache.lookup("seal-0") is None and cache.lookup("seal-1") is None
    assert cache.lookup("seal-4") is not None


def test_an_entry_lives_no_longer_than_its_seal_or_max_age() -> None:
    cache = ReadCache(max_age=60, max_entries=10)
    past = int(time.time() * 1000) - 1
    expired_seal = f"Fe26.2*1*salt*iv*ct*{past}*salt*mac~2"
    assert seal_expiration_ms(expired_seal) == past
    cache.confirm(expired_seal, new_user(), seen_ms=1)
    assert cache.lookup(expired_seal) is None
    short = ReadCache(max_age=0.01, max_entries=10)
    short.confirm("seal", new_user(), seen_ms=1)
    time.sleep(0.02)
    assert short.lookup("seal") is None


def test_the_cache_keeps_its_own_copy_of_what_it_confirms() -> None:
    cache = ReadCache(max_age=60, max_entries=10)
    user = new_user().model_copy(update={"persona": {"pain_points_detected": ["compliance"]}})
    cache.confirm("seal", user, seen_ms=1)
    user.persona["pain_points_detected"].append("pricing")  # the confirming request goes on
    entry = cache.lookup("seal")
    assert entry is not None
    assert entry.user.persona == {"pain_points_detected": ["compliance"]}
    assert entry.fresh_user(now=5).persona == {"pain_points_detected": ["compliance"]}


def test_forget_drops_every_copy_of_a_session() -> None:
    cache = ReadCache(max_age=60, max_entries=10)
    user, other = new_user(), new_user()
    cache.confirm("a", user, seen_ms=1)
    cache.confirm("b", user, seen_ms=2)
    cache.confirm("c", other, seen_ms=3)
    cache.read(user.sessionId, 2)
    cache.read(user.sessionId, 1)  # the oldest check is what gets reported
    cache.forget(user.sessionId)
    assert cache.lookup("a") is None and cache.lookup("b") is None
    assert cache.lookup("c") is not None


async def test_a_failed_flush_drops_every_copy_and_keeps_the_reads(
    pg: LocalPostgres, template_db: str
) -> None:
    name = await pg.create_database(template_db)
    transport = await PostgresTransport.connect(pg.dsn(name, user="authenticator"))
    try:
        cache = ReadCache(max_age=60, max_entries=10)
        user = new_user()
        cache.confirm("seal", user, seen_ms=1)
        cache.read(user.sessionId, 1)
        await pg.drop_database(name)  # the database goes away under the worker
        await cache.flush(SessionService(transport))
        assert cache.lookup("seal") is None, "no revocations can be learned: drop every copy"
        assert cache.stats["flushFailures"] == 1
        assert cache.snapshot()["pending"] == 1, "the activity waits for the next flush"
    finally:
        await transport.close()
        await pg.drop_database(name)


# --- revocation holds: every copy re-checked, none served unchecked ----------------------------
async def test_an_unread_copy_is_rechecked_and_dropped_when_revoked_elsewhere(
    client: Client, service: SessionService
) -> None:
    """Nobody reads the copy after the clear: the flush re-checks it all the same."""
    sid, cookie = await settled_cookie(client)
    await service.clear_session(sid)  # another worker, or an admin

    async def dropped() -> bool:
        stats = (await client.health())["readCache"]
        return bool(stats["entries"] == 0 and stats["stale"] >= 1)

    assert await until(dropped, limit=2.0), (await client.health())["readCache"]
    body, new_cookie, source = await client.session(cookie)
    assert body["sessionId"] != sid and new_cookie is not None and source is None


def test_a_copy_not_rechecked_lately_is_not_answered() -> None:
    cache = ReadCache(max_age=60, max_entries=10, validity=0.05)
    user = new_user()
    cache.confirm("seal", user, seen_ms=1)
    assert cache.lookup("seal") is not None
    time.sleep(0.08)  # no flush came: the copy lapses rather than being served unchecked
    assert cache.lookup("seal") is None
    assert cache.stats["lapsed"] == 1


def test_a_copy_counts_as_checked_from_when_its_request_began() -> None:
    cache = ReadCache(max_age=60, max_entries=10, validity=1.0)
    cache.confirm("seal", new_user(), seen_ms=1, checked_at=time.monotonic() - 2.0)
    assert cache.lookup("seal") is None, "a request that began 2 s ago vouches for no more"


def test_a_session_revoked_here_is_never_confirmed_again() -> None:
    """A GET whose get_session ran before a clear may confirm after it: the copy stays out."""
    cache = ReadCache(max_age=60, max_entries=10)
    user = new_user()
    cache.confirm("old", user, seen_ms=1)
    cache.revoke(user.sessionId)
    cache.confirm("late", user, seen_ms=1)  # the in-flight request ends after the clear
    assert cache.lookup("old") is None and cache.lookup("late") is None
    assert user.sessionId in cache.revoked


class Switchable(Transport):
    """The app's transport, switched to one whose server is gone (nothing listens on its port)."""

    name = "switchable"

    def __init__(self, target: Transport) -> None:
        self.target = target

    async def call(self, fn: str, args: Any, *, identity: Any) -> Any:
        return await self.target.call(fn, args, identity=identity)

    async def ping(self) -> None:
        await self.target.ping()

    async def close(self) -> None:
        await self.target.close()


async def test_a_session_cleared_here_is_refused_while_the_database_is_down(
    pg: LocalPostgres, db_name: str
) -> None:
    settings = load_settings(
        session_password=PASSWORD,
        database_url=pg.dsn(db_name, user="authenticator"),
        session_touch_flush_seconds=FLUSH,
    )
    real = await PostgresTransport.connect(pg.dsn(db_name, user="authenticator"))
    gone = PostgresTransport(f"postgresql://authenticator@127.0.0.1:{free_port()}/x", min_size=0,
                             connect_timeout=1.0)  # fmt: skip
    await gone.start()
    switch = Switchable(real)
    app = create_app(settings, transport=switch)
    try:
        async with TestClient(TestServer(app, host="127.0.0.1"),
                              cookie_jar=aiohttp.DummyCookieJar()) as http:  # fmt: skip
            client = Client(http)
            kept_sid, kept = await settled_cookie(client)
            cleared_sid, cleared = await settled_cookie(client)
            forgotten_sid, forgotten = await settled_cookie(client)
            for path, cookie in (("/api/session", cleared), ("/api/session/data", forgotten)):
                async with http.delete(path, headers={"Cookie": f"{COOKIE}={cookie}"}) as resp:
                    assert resp.status == 200
            switch.target = gone  # the database goes away

            async def cookie_only() -> bool:  # the first failed flush drops every copy
                _, _, source = await client.session(kept)
                return source == "cookie"

            assert await until(cookie_only, limit=3.0), "a known visitor is read from the cookie"
            for sid, cookie in ((cleared_sid, cleared), (forgotten_sid, forgotten)):
                status, body, resp = await client.get("/api/session", cookie)
                assert status == 503, (status, body)  # a new visitor while the database is away
                assert resp.headers.get("X-Session-Source") is None
                assert sid not in str(body)
            assert kept_sid != cleared_sid
    finally:
        await real.close()
        await gone.close()
