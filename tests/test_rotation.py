"""Rotation drill: change SESSION_PASSWORDS while sessions are live, on the real server.

1. The server runs with ``{"1": old}``; visitors chat and read; their cookies are ``Fe26.2*1*``.
2. It is restarted with ``{"1": old, "2": new}`` (same database): every old cookie still opens the
   same session — data intact — and the first request resends it sealed with the new id
   (``Fe26.2*2*``); writes keep working.
3. It is restarted with ``{"2": new}`` only: the resealed cookies keep working; a cookie still
   sealed with id 1 no longer opens and its holder gets a fresh session — never an error, and
   never the old session's data.
"""

from __future__ import annotations

import json

import aiohttp

from bevsession.local_postgres import LocalPostgres
from bevsession.sealing import Sealer, SealError, unseal_data
from e2e_server import StartServer, Visitor

OLD = "the old cookie password, long enough for iron 0001"
NEW = "the new cookie password, long enough for iron 0002"


def seal_id(cookie: str | None) -> str:
    assert cookie is not None
    return cookie.split("*")[1]


async def test_rotate_session_passwords_while_sessions_are_live(
    pg: LocalPostgres, db_name: str, server_factory: StartServer, http: aiohttp.ClientSession
) -> None:
    dsn = pg.dsn(db_name, user="authenticator")

    async def start(passwords: dict[str, str]) -> Visitor:
        server = await server_factory(
            env={"DATABASE_URL": dsn, "SESSION_PASSWORDS": json.dumps(passwords)},
            database=False, password=None,
        )  # fmt: skip
        return Visitor(http, server)

    # --- 1. before: one password ---------------------------------------------------------------
    probe = await start({"1": OLD})
    server_1 = probe.server
    chatter, reader, sleeper = (Visitor(http, server_1) for _ in range(3))
    chatted = await chatter.chat("I run sales at a craft brewery and need to prove ROI")
    await chatter.chat("We also sell through distributors.")
    read = await reader.session()
    slept = (await sleeper.chat("a visitor who will not come back until id 1 is gone"))["sessionId"]
    for v in (chatter, reader, sleeper):
        assert seal_id(v.cookie) == "1"
    before_rotation = {"chatter": chatter.cookie, "reader": reader.cookie}
    server_1.stop_and_check()

    # --- 2. rotation: both ids open, the new one seals ------------------------------------------
    server_2 = (await start({"1": OLD, "2": NEW})).server
    for v in (chatter, reader):
        v.server = server_2
    summary = await chatter.get("/api/session")
    assert summary.status == 200, summary
    assert summary.json["sessionId"] == chatted["sessionId"], (
        "the old cookie opens the same session"
    )
    assert summary.json["messageCount"] == 4
    resealed = summary.session_cookie()
    assert resealed is not None, "a cookie sealed with an old id is resent with the new one"
    assert resealed.value.startswith("Fe26.2*2*"), resealed.value
    assert (
        unseal_data(resealed.value, password={"2": NEW})["user"]["sessionId"]
        == (chatted["sessionId"])
    )
    with_new = await chatter.get("/api/session")
    assert with_new.status == 200 and with_new.session_cookie() is None, (
        "once resealed, a plain read sends no cookie"
    )
    history = await chatter.get("/api/chat/history")
    assert [m["role"] for m in history.json["messages"]] == ["user", "assistant"] * 2
    turn = await chatter.chat("And what about compliance?")
    assert turn["sessionId"] == chatted["sessionId"] and turn["messageCount"] == 6
    assert seal_id(chatter.cookie) == "2"

    again = await reader.get("/api/session")  # the first request of this visitor after rotation
    assert again.status == 200 and again.json["sessionId"] == read["sessionId"], again
    assert seal_id(reader.cookie) == "2"

    # a request with a pre-rotation copy of the cookie also opens (id 1 is still known)
    copy = await chatter.get("/api/session", cookie=before_rotation["chatter"], keep=False)
    assert copy.status == 200 and copy.json["sessionId"] == chatted["sessionId"], copy
    server_2.stop_and_check()

    # --- 3. after: id 1 dropped -----------------------------------------------------------------
    server_3 = (await start({"2": NEW})).server
    for v in (chatter, reader, sleeper):
        v.server = server_3
    assert (await chatter.session())["sessionId"] == chatted["sessionId"], "resealed: still works"
    assert (await reader.session())["sessionId"] == read["sessionId"]

    for name, old_cookie in (("sleeper", sleeper.cookie), ("chatter", before_rotation["chatter"])):
        assert old_cookie is not None and seal_id(old_cookie) == "1"
        try:
            Sealer({"2": NEW}).unseal(old_cookie)
            raise AssertionError("the test's premise: an id-1 cookie no longer opens")
        except SealError:
            pass
        fresh = await sleeper.get("/api/session", cookie=old_cookie, keep=False)
        assert fresh.status == 200, fresh
        assert fresh.json["sessionId"] not in {slept, chatted["sessionId"]}, (name, fresh)
        assert fresh.json["messageCount"] == 0
        cookie = fresh.session_cookie()
        assert cookie is not None and cookie.value.startswith("Fe26.2*2*"), fresh
        page = await sleeper.get("/api/chat/history", cookie=old_cookie, keep=False)
        assert page.status == 200 and page.json["messages"] == [], "no old data for a dead cookie"
        chat = await sleeper.post("/api/chat", {"message": "hello?"}, cookie=old_cookie, keep=False)
        assert chat.status == 200 and chat.json["sessionId"] not in {slept, chatted["sessionId"]}
    log = server_3.log_text() + server_2.log_text()
    for secret in (OLD, NEW):
        assert secret not in log, "a cookie password reached the log"
