"""Session lifetime and the edge cases users of other session libraries keep hitting.

Each test names the complaint it guards against. The app is the real one (``create_app``) on a
real database, served over loopback HTTP by aiohttp's test server; extra routes are added only
where a test needs a handler shape the API does not have (streamed and file responses, an
in-place nested change).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bevsession.local_postgres import LocalPostgres
from bevsession.sealing import Sealer
from bevsession.service import SessionService
from bevsession.transports.postgres import PostgresTransport
from bevsession_edge.app import create_app
from bevsession_edge.config import load_settings
from bevsession_edge.middleware import session_of
from bevsession_edge.startup import fingerprint
from e2e_server import PASSWORD, StartServer, clean_env, free_port, serve_command

COOKIE = "bevgenie_session"
THIS_FILE = Path(__file__).read_bytes()
HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- an in-process server with a few extra routes ---------------------------------------------
async def stream(request: web.Request) -> web.StreamResponse:
    """Changes the session, then streams: the cookie must still be written."""
    session_of(request).update(hasBrochure=True)
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    for chunk in (b"one ", b"two ", b"three"):
        await response.write(chunk)
    await response.write_eof()
    return response


async def brochure_file(request: web.Request) -> web.StreamResponse:
    """Changes the session, then answers with a file."""
    session_of(request).update(lastGeneratedBrochureId="b-1")
    return web.FileResponse(Path(__file__))


async def nested(request: web.Request) -> web.Response:
    """Changes a nested value IN PLACE (no update call): must still count as a change."""
    persona = session_of(request).user.persona
    persona.setdefault("detection_vectors", {})["functional_role"] = "compliance"
    return web.json_response({"ok": True})


async def read_only(request: web.Request) -> web.Response:
    return web.json_response({"sessionId": str(session_of(request).session_id)})


@contextlib.asynccontextmanager
async def app_client(
    pg: LocalPostgres, db_name: str, **overrides: Any
) -> AsyncIterator[TestClient[Any, Any]]:
    """The real app on *db_name* with the extra routes, settings changed by *overrides*."""
    settings = load_settings(
        session_password=PASSWORD,
        database_url=pg.dsn(db_name, user="authenticator"),
        **overrides,
    )
    transport = await PostgresTransport.connect(pg.dsn(db_name, user="authenticator"))
    app = create_app(settings, transport=transport)
    app.router.add_get("/api/test/stream", stream)
    app.router.add_get("/api/test/file", brochure_file)
    app.router.add_post("/api/test/nested", nested)
    app.router.add_get("/api/test/read", read_only)
    # No cookie jar: every test sends exactly the cookie it means to.
    server = TestServer(app, host="127.0.0.1")
    try:
        async with TestClient(server, cookie_jar=aiohttp.DummyCookieJar()) as test_client:
            yield test_client
    finally:
        await transport.close()


@pytest.fixture
async def client(pg: LocalPostgres, db_name: str) -> AsyncIterator[TestClient[Any, Any]]:
    async with app_client(pg, db_name) as test_client:
        yield test_client


@pytest.fixture
async def uncached_client(pg: LocalPostgres, db_name: str) -> AsyncIterator[TestClient[Any, Any]]:
    """Every read asks the database (``SESSION_READ_CACHE_SECONDS=0``)."""
    async with app_client(pg, db_name, session_read_cache_seconds=0) as test_client:
        yield test_client


def sealed(user: dict[str, Any], *, ttl: int = 86400) -> str:
    return Sealer(PASSWORD).seal({"user": user}, ttl=ttl)


def cookie_user(created_ago_ms: int, active_ago_ms: int) -> dict[str, Any]:
    now = now_ms()
    return {
        "sessionId": str(uuid.uuid4()),
        "createdAt": now - created_ago_ms,
        "lastActivityAt": now - active_ago_ms,
        "messageCount": 0,
        "currentMode": "fresh",
        "hasCompletedOnboarding": False,
        "hasBrochure": False,
        "isDataConnected": False,
        "persona": {},
    }


def set_cookie(resp: Any) -> str | None:
    headers = [h for h in resp.headers.getall("Set-Cookie", []) if h.startswith(f"{COOKIE}=")]
    assert len(headers) <= 1, headers
    return headers[0] if headers else None


def seal_of(header: str) -> str:
    return header.split(";", 1)[0].split("=", 1)[1]


def max_age(header: str) -> int:
    found = re.search(r"Max-Age=(\d+)", header)
    assert found, header
    return int(found.group(1))


async def get_session(
    client: TestClient[Any, Any], cookie: str | None
) -> tuple[dict[str, Any], str | None]:
    headers = {"Cookie": f"{COOKIE}={cookie}"} if cookie else {}
    async with client.get("/api/session", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json(), set_cookie(resp)


async def rejections(client: TestClient[Any, Any]) -> dict[str, int]:
    async with client.get("/metrics") as resp:
        body: dict[str, int] = (await resp.json())["cookieRejections"]
        return body


# --- two expiries, both enforced -----------------------------------------------------------
async def test_absolute_lifetime_cannot_be_extended_by_activity(
    client: TestClient[Any, Any],
) -> None:
    """aiohttp-session and Starlette users confuse max-age with idle timeout; we keep both."""
    user = cookie_user(created_ago_ms=31 * DAY_MS, active_ago_ms=60_000)  # active a minute ago
    body, header = await get_session(client, sealed(user))
    assert body["sessionId"] != user["sessionId"], "a session past 30 days must not be served"
    assert header is not None
    assert (await rejections(client)).get("lifetime") == 1


async def test_idle_timeout_ends_a_quiet_session(client: TestClient[Any, Any]) -> None:
    user = cookie_user(created_ago_ms=26 * HOUR_MS, active_ago_ms=25 * HOUR_MS)  # idle 25 h > 24 h
    body, _ = await get_session(client, sealed(user))
    assert body["sessionId"] != user["sessionId"]
    assert (await rejections(client)).get("idle") == 1


async def test_a_session_active_every_day_outlives_a_day_as_the_seeds_does(
    client: TestClient[Any, Any], db_dsn: str
) -> None:
    """The seed's cookie is saved on every request with a 24 h ttl, so its lifetime slides: a
    session created 30 h ago and active an hour ago is still the same session, in the cookie and
    in the database, and its resealed cookie lives another 24 h."""
    first, header = await get_session(client, None)
    assert header is not None
    sid = first["sessionId"]
    conn = await asyncpg.connect(db_dsn)
    try:
        await conn.execute(
            "update bevsession.sessions set created_at = now() - interval '30 hours',"
            " last_activity_at = now() - interval '1 hour' where id = $1",
            uuid.UUID(sid),
        )
    finally:
        await conn.close()
    user = cookie_user(created_ago_ms=30 * HOUR_MS, active_ago_ms=HOUR_MS)
    user["sessionId"] = sid
    again, resealed = await get_session(client, sealed(user))
    assert again["sessionId"] == sid, "30 h old and active an hour ago: the same session"
    assert again["createdAt"] <= now_ms() - 30 * HOUR_MS + 60_000, "its creation did not move"
    assert resealed is not None, "the activity is written back into the cookie"
    assert max_age(resealed) == 86400 - 60, "the cookie slides: another 24 h from now"
    assert not await rejections(client)


async def test_the_cookie_lives_until_whichever_expiry_ends_first(
    client: TestClient[Any, Any], db_dsn: str
) -> None:
    """Max-Age is the idle timeout from now, or the absolute lifetime left when that is sooner."""
    first, header = await get_session(client, None)
    assert header is not None and max_age(header) == 86400 - 60  # the idle timeout (24 h) first
    conn = await asyncpg.connect(db_dsn)
    try:
        await conn.execute(
            "update bevsession.sessions set created_at = now() - interval '29 days 14 hours'"
            " where id = $1",
            uuid.UUID(first["sessionId"]),
        )
    finally:
        await conn.close()
    user = cookie_user(created_ago_ms=29 * DAY_MS + 14 * HOUR_MS, active_ago_ms=5 * 60_000)
    user["sessionId"] = first["sessionId"]
    again, resealed = await get_session(client, sealed(user))
    assert again["sessionId"] == first["sessionId"]
    assert resealed is not None
    left = 10 * 3600 - 60  # 30 days less 29 days 14 hours, less iron's skew
    assert left - 5 <= max_age(resealed) <= left, resealed


async def test_a_session_within_both_limits_is_served(client: TestClient[Any, Any]) -> None:
    first, header = await get_session(client, None)
    assert header is not None
    again, _ = await get_session(client, seal_of(header))
    assert again["sessionId"] == first["sessionId"]


async def test_resealing_never_extends_the_cookie_past_the_absolute_lifetime(
    pg: LocalPostgres, db_name: str, db_dsn: str
) -> None:
    """The cookie's Max-Age counts down from creation; activity does not push it back.

    Here with a 24 h absolute lifetime and no idle timeout, so the absolute one decides."""
    async with app_client(pg, db_name, session_ttl=86400, session_idle_timeout=0) as client:
        await _resealing_counts_down(client, db_dsn)


async def _resealing_counts_down(client: TestClient[Any, Any], db_dsn: str) -> None:
    body, header = await get_session(client, None)
    assert header is not None and max_age(header) == 86400 - 60  # iron-session's arithmetic
    # Age the session by ten hours, in the cookie and in the database alike.
    user = cookie_user(created_ago_ms=10 * HOUR_MS, active_ago_ms=5 * 60_000)
    user["sessionId"] = body["sessionId"]
    conn = await asyncpg.connect(db_dsn)
    try:
        await conn.execute(
            "update bevsession.sessions set created_at = now() - interval '10 hours' where id = $1",
            uuid.UUID(body["sessionId"]),
        )
    finally:
        await conn.close()
    async with client.post(
        "/api/chat",
        json={"message": "we are a distributor"},
        headers={"Cookie": f"{COOKIE}={sealed(user)}"},
    ) as resp:
        assert resp.status == 200, await resp.text()
        resealed = set_cookie(resp)
        assert (await resp.json())["sessionId"] == body["sessionId"]
    assert resealed is not None
    left = 14 * 3600 - 60
    assert left - 5 <= max_age(resealed) <= left, resealed


async def test_the_database_enforces_the_expiries_too(
    uncached_client: TestClient[Any, Any], db_dsn: str
) -> None:
    """A cookie that looks fine (it was just resealed) cannot outlive the database's clock.

    Here every read asks the database; with the read cache on, the refusal arrives with the
    next batched touch instead (tests/test_read_cache.py).
    """
    client = uncached_client
    body, header = await get_session(client, None)
    assert header is not None
    conn = await asyncpg.connect(db_dsn)
    try:
        await conn.execute(
            "update bevsession.sessions set last_activity_at = now() - interval '25 hours'"
            " where id = $1",
            uuid.UUID(body["sessionId"]),
        )
    finally:
        await conn.close()
    again, new_header = await get_session(client, seal_of(header))
    assert again["sessionId"] != body["sessionId"], "the database refused it (PT410): fresh session"
    assert new_header is not None
    assert (await rejections(client)).get("expired_in_database") == 1


# --- streamed and file responses get their cookie ------------------------------------------
async def test_a_streamed_response_still_writes_the_changed_session(
    client: TestClient[Any, Any],
) -> None:
    async with client.get("/api/test/stream") as resp:
        assert resp.status == 200
        assert await resp.text() == "one two three"
        header = set_cookie(resp)
    assert header is not None, "StreamResponse lost the session cookie"
    assert Sealer(PASSWORD).unseal(seal_of(header))["user"]["hasBrochure"] is True


async def test_a_file_response_still_writes_the_changed_session(
    client: TestClient[Any, Any],
) -> None:
    async with client.get("/api/test/file") as resp:
        assert resp.status == 200
        assert (await resp.read()) == THIS_FILE
        header = set_cookie(resp)
    assert header is not None, "FileResponse lost the session cookie"
    assert Sealer(PASSWORD).unseal(seal_of(header))["user"]["lastGeneratedBrochureId"] == "b-1"


# --- Set-Cookie only when something changed -------------------------------------------------
async def test_a_plain_read_sends_no_cookie_but_a_nested_change_does(
    client: TestClient[Any, Any],
) -> None:
    _, header = await get_session(client, None)
    assert header is not None
    cookie = {"Cookie": f"{COOKIE}={seal_of(header)}"}
    async with client.get("/api/test/read", headers=cookie) as resp:
        assert resp.status == 200
        assert set_cookie(resp) is None, "an unchanged session must not be resent"
    async with client.post("/api/test/nested", headers=cookie) as resp:
        assert resp.status == 200
        changed = set_cookie(resp)
    assert changed is not None, "an in-place change of a nested value was missed"
    persona = Sealer(PASSWORD).unseal(seal_of(changed))["user"]["persona"]
    assert persona["detection_vectors"]["functional_role"] == "compliance"


# --- a rejected cookie is explained, not shouted -------------------------------------------
async def test_rejections_are_logged_at_debug_without_the_cookie_and_counted(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    good = sealed(cookie_user(60_000, 1000))
    forged = good[:-5] + ("A" if good[-5] != "A" else "B") + good[-4:]
    foreign = Sealer("another password, 32 characters or more").seal({"user": {}}, ttl=600)
    with caplog.at_level(logging.DEBUG, logger="bevsession_edge"):
        for cookie in (forged, foreign, "not-a-seal"):
            await get_session(client, cookie)
    counts = await rejections(client)
    assert (
        counts.get("bad_mac", 0) >= 1
        and counts.get("unknown_password_id", 0) + counts.get("bad_mac", 0) >= 2
    )
    assert counts.get("malformed") == 1
    refused = [r for r in caplog.records if "session cookie refused" in r.getMessage()]
    assert len(refused) == 3 and all(r.levelno == logging.DEBUG for r in refused)
    text = caplog.text
    for secret in (PASSWORD, forged, foreign, "Fe26.2*"):
        assert secret not in text


async def test_production_refuses_a_password_that_changed_under_a_known_id(
    server_factory: StartServer, pg: LocalPostgres
) -> None:
    """A password regenerated on every start would log everyone out: refused at start-up."""
    first = await server_factory(env={"BEVSESSION_ENV": "production"})
    assert first.db_name is not None
    first.stop_and_check()
    env = clean_env(
        BEVSESSION_ENV="production",
        DATABASE_URL=pg.dsn(first.db_name, user="authenticator"),
        SESSION_PASSWORD="a brand new password that nobody has seen before",
    )
    proc = await asyncio.create_subprocess_exec(
        *serve_command(free_port()),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    log = output.decode()
    assert proc.returncode == 2, log
    assert "differs from the one this database saw first" in log
    assert "Traceback" not in log
    assert "brand new password" not in log and PASSWORD not in log


async def test_fingerprints_are_stable_and_reveal_nothing() -> None:
    assert fingerprint(PASSWORD) == fingerprint(PASSWORD)
    assert fingerprint(PASSWORD) != fingerprint(PASSWORD + "x")
    assert PASSWORD not in fingerprint(PASSWORD) and len(fingerprint(PASSWORD)) == 64


# --- history for an LLM: a token budget -----------------------------------------------------
async def test_history_with_a_token_budget_over_http(client: TestClient[Any, Any]) -> None:
    _, header = await get_session(client, None)
    assert header is not None
    cookie = seal_of(header)
    for text in ("I lead sales at a national distributor", "we need to prove ROI to suppliers"):
        async with client.post(
            "/api/chat", json={"message": text}, headers={"Cookie": f"{COOKIE}={cookie}"}
        ) as resp:
            assert resp.status == 200
            cookie = seal_of(set_cookie(resp) or f"x={cookie}")
    async with client.get(
        "/api/chat/history?limit=50", headers={"Cookie": f"{COOKIE}={cookie}"}
    ) as resp:
        everything = (await resp.json())["messages"]
    assert len(everything) == 4
    newest = everything[-1]
    budget = newest["tokenCount"] + everything[-2]["tokenCount"]
    async with client.get(
        f"/api/chat/history?tokenBudget={budget}", headers={"Cookie": f"{COOKIE}={cookie}"}
    ) as resp:
        page = await resp.json()
    assert [m["id"] for m in page["messages"]] == [everything[-2]["id"], newest["id"]]
    assert page["next"] is not None
    async with client.get(
        "/api/chat/history?tokenBudget=0", headers={"Cookie": f"{COOKIE}={cookie}"}
    ) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_input"


async def test_token_counts_follow_the_documented_rule(service: SessionService) -> None:
    session_id = uuid.uuid4()
    await service.get_session(session_id)
    for text in ("", "x" * 40, "y" * 41):
        await service.add_conversation_message(session_id, "user", text or " ")
    page = await service.get_conversation_history(session_id)
    assert [m.token_count for m in page.messages] == [5, 14, 15]  # ceil(chars / 4) + 4
    assert page.tokens == 34
    budget = await service.get_conversation_history(session_id, token_budget=29)
    assert [m.message_content for m in budget.messages] == ["x" * 40, "y" * 41]
    assert budget.tokens == 29 and budget.next_before == budget.messages[0].seq
