"""``setup(app, settings)``: the sessions on an aiohttp application of one's own.

The application here has its own routes ("remember my mode", "who am I", a logout, its own
health probe) and is served by aiohttp's test server over loopback HTTP against this test's
real database, as a user's app would be: cookies go round, changes reach the database, the
read cache answers the app's own reads, and the HTTP API mounts under a prefix of its choice.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bevsession.local_postgres import LocalPostgres
from bevsession.service import SessionService
from bevsession.transports.postgres import PostgresTransport
from bevsession_edge.app import setup
from bevsession_edge.config import load_settings
from bevsession_edge.keys import SERVICE
from bevsession_edge.session_cookie import persona_json
from bevsession_edge.sessions import current_session, for_visitor, remember, session_of
from e2e_server import PASSWORD

COOKIE = "bevgenie_session"
routes = web.RouteTableDef()


# --- the application's own handlers -----------------------------------------------------------
@routes.get("/mode")
async def get_mode(request: web.Request) -> web.Response:
    """The visitor's mode as the database has it (a repeated read may come from the cache)."""
    current = await current_session(request)
    user = current.session.user
    return web.json_response(
        {"sessionId": str(user.sessionId), "mode": user.currentMode, "source": current.source}
    )


@routes.post("/mode")
async def set_mode(request: web.Request) -> web.Response:
    """Remember the visitor's mode: in the database (the service) and in the cookie."""
    mode = (await request.json())["mode"]
    await current_session(request)  # the visitor's row, created on the first visit
    service = request.app[SERVICE]
    result = await for_visitor(
        request, lambda: service.update_persona(session_of(request).session_id,
                                                {"current_mode": mode}),
    )  # fmt: skip
    remember(request, result.session, persona_json(result.persona))
    return web.json_response({"mode": session_of(request).user.currentMode})


@routes.post("/brochure")
async def brochure(request: web.Request) -> web.Response:
    """A change to the cookie alone (no database call)."""
    session_of(request).update(hasBrochure=True, lastGeneratedBrochureId="b-7")
    return web.json_response({"ok": True})


@routes.get("/whoami")
async def whoami(request: web.Request) -> web.Response:
    """What the cookie says, without the database."""
    user = session_of(request).user
    return web.json_response(
        {"sessionId": str(user.sessionId), "brochure": user.lastGeneratedBrochureId}
    )


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    session = session_of(request)
    await request.app[SERVICE].clear_session(session.session_id)
    session.clear()
    return web.json_response({"ok": True})


@routes.get("/healthz")
async def healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


# --- serving it ------------------------------------------------------------------------------
class Visitor:
    """A browser that keeps its cookie (set by hand: no cookie jar in between)."""

    def __init__(self, http: TestClient[Any, Any]) -> None:
        self.http = http
        self.cookie: str | None = None

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
        headers = kwargs.pop("headers", {})
        if self.cookie:
            headers["Cookie"] = f"{COOKIE}={self.cookie}"
        async with self.http.request(method, path, headers=headers, **kwargs) as resp:
            morsel = resp.cookies.get(COOKIE)
            if morsel is not None:
                self.cookie = morsel.value or None
            is_json = resp.content_type == "application/json"
            return resp.status, (await resp.json() if is_json else await resp.text()), resp


@contextlib.asynccontextmanager
async def own_app(
    pg: LocalPostgres, db_name: str, settings_changed: dict[str, Any] | None = None, **options: Any
) -> AsyncIterator[tuple[TestClient[Any, Any], SessionService]]:
    """The application on *db_name* (its settings changed by *settings_changed*, ``setup`` called
    with *options*), and a service on the same database to look at what it stored."""
    settings = load_settings(
        session_password=PASSWORD,
        database_url=pg.dsn(db_name, user="authenticator"),
        session_touch_flush_seconds=0.1,
        **(settings_changed or {}),
    )
    transport = await PostgresTransport.connect(pg.dsn(db_name, user="authenticator"))
    app = web.Application()
    app.add_routes(routes)
    setup(app, settings, transport=transport, **options)
    try:
        async with TestClient(TestServer(app, host="127.0.0.1"),
                              cookie_jar=aiohttp.DummyCookieJar()) as http:  # fmt: skip
            yield http, SessionService(transport)
    finally:
        await transport.close()


# --- tests -------------------------------------------------------------------------------------
async def test_own_handlers_read_and_change_the_session(pg: LocalPostgres, db_name: str) -> None:
    async with own_app(pg, db_name, routes=False) as (http, service):
        visitor = Visitor(http)
        status, body, _ = await visitor.call("GET", "/mode")
        assert status == 200 and body["mode"] == "fresh" and body["source"] == "database", body
        first_cookie, sid = visitor.cookie, body["sessionId"]
        assert first_cookie is not None, "a new visitor gets a cookie"

        status, body, _ = await visitor.call("POST", "/mode", json={"mode": "returning"})
        assert status == 200 and body == {"mode": "returning"}
        assert visitor.cookie != first_cookie, "the change is sealed into a new cookie"
        stored = await service.get_session(sid, touch=False)
        assert stored.session.current_mode == "returning", "the change reached the database"

        _, body, resp = await visitor.call("GET", "/mode")  # the cookie the change wrote
        assert body == {"sessionId": sid, "mode": "returning", "source": "cache"}
        assert resp.cookies.get(COOKIE) is None, "an unchanged session writes no cookie"

        await visitor.call("POST", "/brochure")  # the cookie alone
        _, body, _ = await visitor.call("GET", "/whoami")
        assert body == {"sessionId": sid, "brochure": "b-7"}, "the cookie went round"

        status, _, resp = await visitor.call("GET", "/healthz")
        assert status == 200 and resp.cookies.get(COOKIE) is None, "probes get no session"
        status, _, _ = await visitor.call("GET", "/api/session")
        assert status == 404, "routes=False: the HTTP API is not mounted"

        old_cookie = visitor.cookie
        status, _, resp = await visitor.call("POST", "/logout")
        assert status == 200 and visitor.cookie is None, "a cleared session's cookie is deleted"
        visitor.cookie = old_cookie  # replayed after the logout
        _, body, _ = await visitor.call("GET", "/whoami")
        assert body["sessionId"] != sid, "a session cleared here is refused"


async def test_the_http_api_mounts_under_a_prefix(pg: LocalPostgres, db_name: str) -> None:
    async with own_app(pg, db_name, api_prefix="/v1/visitors") as (http, service):
        visitor = Visitor(http)
        status, body, _ = await visitor.call("GET", "/v1/visitors/session")
        assert status == 200 and body["messageCount"] == 0, body
        sid = body["sessionId"]

        status, body, _ = await visitor.call(
            "POST", "/v1/visitors/chat", json={"message": "We run a craft brewery."}
        )
        assert status == 200 and body["sessionId"] == sid and body["messageCount"] == 2, body
        _, body, _ = await visitor.call("GET", "/mode")  # the app's own route, same session
        assert body["sessionId"] == sid
        history = await service.get_conversation_history(sid, limit=10)
        assert [m.message_role for m in history.messages] == ["user", "assistant"]

        # The API's own rules hold under its prefix, and only there.
        status, body, _ = await visitor.call("POST", "/v1/visitors/chat", json={"nope": 1})
        assert status == 400 and body["error"]["code"] == "invalid_input", body
        status, body, _ = await visitor.call(
            "DELETE", "/v1/visitors/session", headers={"Origin": "https://evil.example"}
        )
        assert status == 403 and body["error"]["code"] == "forbidden_origin", body
        status, body, resp = await visitor.call("GET", "/no-such-page")
        assert status == 404 and resp.content_type != "application/json", "the app's own 404"
        status, _, _ = await visitor.call("GET", "/api/session")
        assert status == 404, "nothing at the default prefix"


async def test_every_read_asks_the_database_with_the_cache_off(
    pg: LocalPostgres, db_name: str
) -> None:
    off = {"session_read_cache_seconds": 0}
    async with own_app(pg, db_name, off, routes=False) as (http, _):
        visitor = Visitor(http)
        for _ in range(3):
            _, body, _ = await visitor.call("GET", "/mode")
            assert body["source"] == "database", body
        assert uuid.UUID(body["sessionId"])
