"""End to end: the REAL server (``bevsession serve`` in a subprocess) driven over HTTP.

Everything here is written from docs/http-api.md (binding) and docs/rpc-api.md: the session
cookie, the session lifecycle (create, return, chat, clear, forget), refused cookies, the
documented error shapes and codes, and the routes that must never touch a session. Most tests
share one server (``module_server``); each test is a visitor of its own, so they do not
interfere. The database is looked at directly (as superuser) where the API's word is not proof
enough: rows created, revoked, erased.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import pytest

from bevsession.cookies import CookieOptions, set_cookie_header
from bevsession.local_postgres import LocalPostgres
from bevsession.migrations import migrate
from bevsession.sealing import Sealer, SealError, unseal_data
from e2e_server import (
    COOKIE_NAME,
    PASSWORD,
    Reply,
    RunningServer,
    StartServer,
    Visitor,
    db_fetch,
)

ROI_MESSAGE = "I run sales at a craft brewery and need to prove ROI"
SESSION_KEYS = {
    "sessionId", "createdAt", "lastActivityAt", "lastMessageAt", "messageCount", "currentMode",
    "hasCompletedOnboarding", "hasBrochure", "isDataConnected", "persona",
}  # fmt: skip
SCORE_KEYS = {
    "sales_focus_score", "marketing_focus_score", "operations_focus_score",
    "compliance_focus_score", "supplier_score", "distributor_score", "craft_score",
    "mid_sized_score", "large_score",
}  # fmt: skip
PERSONA_KEYS = SCORE_KEYS | {
    "detection_vectors", "pain_points_detected", "pain_points_confidence", "overall_confidence",
    "total_interactions",
}  # fmt: skip
MESSAGE_KEYS = {"id", "role", "content", "createdAt", "generationMode", "uiSpecification"}
DAY_MS = 86_400_000


@pytest.fixture
def visitor(http: aiohttp.ClientSession, module_server: RunningServer) -> Visitor:
    return Visitor(http, module_server)


def new_visitor(http: aiohttp.ClientSession, server: RunningServer) -> Visitor:
    return Visitor(http, server)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def assert_uuid4(value: Any) -> None:
    assert isinstance(value, str), value
    assert uuid.UUID(value).version == 4, value
    assert str(uuid.UUID(value)) == value, "sessionId must be a canonical lower-case uuid"


def assert_no_traceback(reply: Reply) -> None:
    for marker in ("Traceback", 'File "', "asyncpg.", "aiohttp.web_exceptions"):
        assert marker not in reply.text, f"{marker!r} leaked into a response body: {reply}"


def assert_error(reply: Reply, status: int, code: str) -> dict[str, Any]:
    """The documented error shape: ``{"error": {"code", "message"}}``, JSON, no traceback."""
    assert reply.status == status, reply
    assert reply.headers.get("Content-Type", "").startswith("application/json"), reply.headers
    body = reply.json
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"]), body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    assert_no_traceback(reply)
    error: dict[str, Any] = body["error"]
    return error


def unseal_user(seal: str, password: Any = PASSWORD) -> dict[str, Any]:
    data = unseal_data(seal, password=password)
    assert isinstance(data, dict) and set(data) == {"user"}, data
    user: dict[str, Any] = data["user"]
    return user


async def count_rows(server: RunningServer, table: str, session_id: str) -> int:
    assert table in {"sessions", "user_personas", "conversation_history", "persona_signals"}
    column = "id" if table == "sessions" else "session_id"
    rows = await db_fetch(
        server,
        f"select count(*) as n from bevsession.{table} where {column} = $1::uuid",  # noqa: S608
        session_id,
    )
    n: int = rows[0]["n"]
    return n


# --- creating and returning -----------------------------------------------------------------
async def test_first_visit_creates_a_session_and_the_cookie(
    visitor: Visitor,
    module_server: RunningServer,
) -> None:
    before = now_ms()
    reply = await visitor.get("/api/session")
    after = now_ms()
    assert reply.status == 200, reply
    assert reply.headers["Content-Type"].startswith("application/json")
    body = reply.json
    assert set(body) >= SESSION_KEYS, set(body) ^ SESSION_KEYS
    assert_uuid4(body["sessionId"])
    assert body["messageCount"] == 0
    assert body["currentMode"] == "fresh"
    assert body["hasCompletedOnboarding"] is body["hasBrochure"] is body["isDataConnected"] is False
    assert body["lastMessageAt"] is None
    for key in ("createdAt", "lastActivityAt"):
        assert isinstance(body[key], int), (key, body[key])
        assert before - 5000 <= body[key] <= after + 5000, (key, body[key], before, after)
    persona = body["persona"]
    assert set(persona) >= PERSONA_KEYS, PERSONA_KEYS - set(persona)
    assert persona["overall_confidence"] == 0
    assert persona["total_interactions"] == 0
    assert persona["pain_points_detected"] == []
    assert all(persona[k] == 0 for k in SCORE_KEYS)

    cookie = reply.session_cookie()
    assert cookie is not None, f"the first visit must set {COOKIE_NAME}: {reply}"
    assert cookie.attributes.get("httponly") is True, cookie.raw
    assert cookie.attributes.get("samesite") == "Lax", cookie.raw
    assert cookie.attributes.get("path") == "/", cookie.raw
    assert cookie.attributes.get("max-age") == "86340", cookie.raw
    assert cookie.attributes.get("secure") is True, f"Secure by default, also here: {cookie.raw}"
    assert "domain" not in cookie.attributes, cookie.raw
    assert len(cookie.raw) <= 4096
    assert cookie.value.startswith("Fe26.2*1*") and cookie.value.endswith("~2"), cookie.value

    # the seal: the seed's {"user": SessionData}, a 24 h ttl inside, no detection histories
    expiration = int(cookie.value[:-2].split("*")[5])
    assert abs(expiration - (after + DAY_MS)) < 120_000, "the seal must expire in 24 h"
    user = unseal_user(cookie.value)
    assert user["sessionId"] == body["sessionId"]
    assert user["messageCount"] == 0
    assert user["currentMode"] == "fresh"
    assert "persona" in user, user
    vectors = user["persona"].get("detection_vectors", {})
    assert not [k for k in vectors if k.endswith("_history")], f"histories in the cookie: {vectors}"

    # the database row exists (created on first visit), with its persona
    assert await count_rows(module_server, "sessions", body["sessionId"]) == 1
    assert await count_rows(module_server, "user_personas", body["sessionId"]) == 1


async def test_the_set_cookie_header_is_exactly_the_one_iron_session_sends(
    visitor: Visitor,
) -> None:
    reply = await visitor.get("/api/session")
    cookie = reply.session_cookie()
    assert cookie is not None, reply
    expected = set_cookie_header(cookie.value, CookieOptions(name=COOKIE_NAME, secure=True))
    assert cookie.raw == expected


async def test_the_cookie_brings_the_same_session_back_and_a_plain_read_sets_no_cookie(
    visitor: Visitor,
) -> None:
    first = await visitor.session()
    for _ in range(2):
        reply = await visitor.get("/api/session")
        assert reply.status == 200, reply
        assert reply.json["sessionId"] == first["sessionId"]
        assert reply.json["createdAt"] == first["createdAt"]
        assert reply.session_cookie() is None, f"a plain read must not resend the cookie: {reply}"
        assert reply.set_cookies == [], reply


async def test_a_stale_last_activity_is_touched_and_resent(visitor: Visitor) -> None:
    """The cookie is resent when ``lastActivityAt`` is older than the 60 s touch interval."""
    sid = (await visitor.session())["sessionId"]
    assert visitor.cookie is not None
    user = unseal_user(visitor.cookie)
    sealer = Sealer(PASSWORD, ttl=86400)

    recent = {**user, "lastActivityAt": now_ms() - 10_000}
    reply = await visitor.get("/api/session", cookie=sealer.seal({"user": recent}), keep=False)
    assert reply.status == 200 and reply.json["sessionId"] == sid, reply
    assert reply.session_cookie() is None, "10 s old activity is within the touch interval"

    stale_at = now_ms() - 120_000
    stale = {**user, "lastActivityAt": stale_at}
    reply = await visitor.get("/api/session", cookie=sealer.seal({"user": stale}), keep=False)
    assert reply.status == 200 and reply.json["sessionId"] == sid, reply
    cookie = reply.session_cookie()
    assert cookie is not None and not cookie.deletes, f"a stale cookie must be touched: {reply}"
    touched = unseal_user(cookie.value)
    assert touched["sessionId"] == sid
    assert touched["lastActivityAt"] > stale_at + 60_000


# --- chat -------------------------------------------------------------------------------------
async def test_a_chat_turn_changes_the_persona_and_counts_both_messages(visitor: Visitor) -> None:
    sid = (await visitor.session())["sessionId"]
    reply = await visitor.post("/api/chat", {"message": ROI_MESSAGE})
    assert reply.status == 200, reply
    body = reply.json
    assert {"reply", "persona", "sessionId", "messageCount"} <= set(body), body
    assert isinstance(body["reply"], str) and body["reply"].strip()
    assert body["sessionId"] == sid
    # docs/rpc-api.md: every stored message counts (user + assistant), so one turn is +2
    assert body["messageCount"] == 2
    persona = body["persona"]
    vectors = persona["detection_vectors"]
    assert vectors["functional_role"] == "sales", vectors
    assert vectors["org_type"] == "supplier", vectors
    assert vectors["org_size"] == "craft", vectors
    assert "roi_proof" in persona["pain_points_detected"], persona
    assert persona["overall_confidence"] > 0
    assert persona["sales_focus_score"] > 0 and persona["supplier_score"] > 0
    assert persona["craft_score"] > 0

    # a write resends the cookie, which now carries the new counter
    cookie = reply.session_cookie()
    assert cookie is not None and not cookie.deletes, f"a chat turn must reseal: {reply}"
    user = unseal_user(cookie.value)
    assert user["sessionId"] == sid and user["messageCount"] == 2

    summary = await visitor.session()
    assert summary["sessionId"] == sid
    assert summary["messageCount"] == 2
    assert summary["lastMessageAt"] is not None
    assert summary["persona"]["detection_vectors"]["functional_role"] == "sales"
    assert summary["persona"]["overall_confidence"] == persona["overall_confidence"]

    history = await visitor.get("/api/chat/history")
    assert history.status == 200, history
    page = history.json
    assert set(page) >= {"messages", "next"}, page
    assert page["next"] is None
    messages = page["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"], messages
    assert [m["content"] for m in messages] == [ROI_MESSAGE, body["reply"]]
    for m in messages:
        assert set(m) >= MESSAGE_KEYS, MESSAGE_KEYS - set(m)
        uuid.UUID(m["id"])
        assert isinstance(m["createdAt"], int)
    assert messages[0]["createdAt"] <= messages[1]["createdAt"]

    second = await visitor.chat("We also sell through distributors in three states.")
    assert second["messageCount"] == 4
    assert (await visitor.session())["messageCount"] == 4


async def test_a_chat_turn_as_the_first_request_creates_the_session(
    visitor: Visitor,
    module_server: RunningServer,
) -> None:
    reply = await visitor.post("/api/chat", {"message": "hello there"})
    assert reply.status == 200, reply
    assert_uuid4(reply.json["sessionId"])
    assert reply.json["messageCount"] == 2
    assert reply.session_cookie() is not None, "a new session must set the cookie"
    summary = await visitor.session()
    assert summary["sessionId"] == reply.json["sessionId"]
    assert summary["messageCount"] == 2
    assert await count_rows(module_server, "conversation_history", summary["sessionId"]) == 2


async def test_concurrent_turns_of_one_visitor_lose_no_update(
    visitor: Visitor,
    module_server: RunningServer,
) -> None:
    sid = (await visitor.session())["sessionId"]
    cookie = visitor.cookie
    turns = 8
    replies = await asyncio.gather(
        *(
            visitor.post(
                "/api/chat", {"message": f"concurrent message {i}"}, cookie=cookie, keep=False
            )
            for i in range(turns)
        )
    )
    assert [r.status for r in replies] == [200] * turns, replies
    assert {r.json["sessionId"] for r in replies} == {sid}
    assert sorted(r.json["messageCount"] for r in replies)[-1] == 2 * turns
    assert (await visitor.session())["messageCount"] == 2 * turns
    assert await count_rows(module_server, "conversation_history", sid) == 2 * turns
    page = (await visitor.get("/api/chat/history?limit=100")).json
    assert len(page["messages"]) == 2 * turns
    assert sorted(m["content"] for m in page["messages"] if m["role"] == "user") == sorted(
        f"concurrent message {i}" for i in range(turns)
    )


async def test_history_pages_newest_first_with_next_cursor(visitor: Visitor) -> None:
    sent = ["first message", "second message", "third message"]
    replies = [(await visitor.chat(text))["reply"] for text in sent]
    everything = [x for pair in zip(sent, replies, strict=True) for x in pair]

    full = (await visitor.get("/api/chat/history")).json
    assert [m["content"] for m in full["messages"]] == everything
    assert full["next"] is None

    page1 = await visitor.get("/api/chat/history?limit=4")
    assert page1.status == 200, page1
    assert [m["content"] for m in page1.json["messages"]] == everything[2:]
    assert page1.json["next"] is not None
    page2 = await visitor.get(f"/api/chat/history?limit=4&before={page1.json['next']}")
    assert page2.status == 200, page2
    assert [m["content"] for m in page2.json["messages"]] == everything[:2]
    assert page2.json["next"] is None

    # walking back two at a time gives everything once, in order
    pages: list[list[str]] = []
    cursor = None
    for _ in range(10):
        query = "limit=2" + (f"&before={cursor}" if cursor is not None else "")
        page = (await visitor.get(f"/api/chat/history?{query}")).json
        pages.append([m["content"] for m in page["messages"]])
        cursor = page["next"]
        if cursor is None:
            break
    assert [x for p in reversed(pages) for x in p] == everything
    assert [len(p) for p in pages] == [2, 2, 2]

    assert (await visitor.get("/api/chat/history?limit=100")).status == 200
    assert (await visitor.get("/api/chat/history?limit=1")).json["messages"][0]["content"] == (
        everything[-1]
    )


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=101", "limit=-1", "limit=abc", "limit=1.5", "before=abc"]
)
async def test_history_query_out_of_range_is_invalid_input(visitor: Visitor, query: str) -> None:
    await visitor.chat("something to page through")
    reply = await visitor.get(f"/api/chat/history?{query}")
    assert_error(reply, 400, "invalid_input")


async def test_history_of_a_new_visitor_is_empty(visitor: Visitor) -> None:
    reply = await visitor.get("/api/chat/history")
    assert reply.status == 200, reply
    assert reply.json["messages"] == [] and reply.json["next"] is None


# --- clear and forget ---------------------------------------------------------------------------
async def test_clear_revokes_the_session_and_the_old_cookie_is_refused(
    visitor: Visitor,
    module_server: RunningServer,
) -> None:
    sid = (await visitor.chat(ROI_MESSAGE))["sessionId"]
    old = visitor.cookie
    assert old is not None

    reply = await visitor.delete("/api/session")
    assert reply.status == 200, reply
    assert reply.json == {"cleared": True, "sessionId": sid}
    cookie = reply.session_cookie()
    assert cookie is not None and cookie.attributes.get("max-age") == "0", reply
    assert cookie.value == "" and cookie.attributes.get("path") == "/", cookie.raw
    assert visitor.cookie is None

    rows = await db_fetch(
        module_server, "select revoked_at from bevsession.sessions where id = $1::uuid", sid
    )
    assert rows and rows[0]["revoked_at"] is not None, "clear must revoke the session in the db"
    assert await count_rows(module_server, "conversation_history", sid) == 2, (
        "clear keeps data for analytics"
    )

    replay = await visitor.get("/api/session", cookie=old, keep=False)
    assert replay.status == 200, replay
    assert replay.json["sessionId"] != sid
    assert replay.json["messageCount"] == 0
    fresh = replay.session_cookie()
    assert fresh is not None and not fresh.deletes, "a refused cookie gets a fresh session"
    assert unseal_user(fresh.value)["sessionId"] == replay.json["sessionId"]

    history = await visitor.get("/api/chat/history", cookie=old, keep=False)
    assert history.status == 200, history
    assert history.json["messages"] == [], "the old history must not come back"

    chat = await visitor.post("/api/chat", {"message": "hello again"}, cookie=old, keep=False)
    assert chat.status == 200, chat
    assert chat.json["sessionId"] != sid and chat.json["messageCount"] == 2
    assert await count_rows(module_server, "conversation_history", sid) == 2, (
        "nothing written to a revoked session"
    )


async def test_forget_erases_the_visitors_rows(
    visitor: Visitor,
    module_server: RunningServer,
) -> None:
    sid = (await visitor.chat(ROI_MESSAGE))["sessionId"]
    await visitor.chat("Our distributors send us spreadsheets.")
    old = visitor.cookie
    signals = await count_rows(module_server, "persona_signals", sid)
    assert signals > 0
    assert await count_rows(module_server, "conversation_history", sid) == 4

    reply = await visitor.delete("/api/session/data")
    assert reply.status == 200, reply
    assert reply.json == {
        "forgotten": True,
        "sessionId": sid,
        "deleted": {"messages": 4, "signals": signals, "personas": 1},
    }
    cookie = reply.session_cookie()
    assert cookie is not None and cookie.attributes.get("max-age") == "0", reply

    for table in ("conversation_history", "persona_signals", "user_personas"):
        assert await count_rows(module_server, table, sid) == 0, f"{table} rows left after forget"
    rows = await db_fetch(
        module_server,
        "select revoked_at, forgotten_at from bevsession.sessions where id = $1::uuid",
        sid,
    )
    assert rows and rows[0]["forgotten_at"] is not None and rows[0]["revoked_at"] is not None

    history = await visitor.get("/api/chat/history", cookie=old, keep=False)
    assert history.status == 200, history
    assert history.json["messages"] == []
    replay = await visitor.get("/api/session", cookie=old, keep=False)
    assert replay.status == 200, replay
    assert replay.json["sessionId"] != sid and replay.json["messageCount"] == 0


# --- cookies that must not open -----------------------------------------------------------------
def _flip(text: str, index: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    replacement = alphabet[(alphabet.index(text[index]) + 7) % len(alphabet)]
    return text[:index] + replacement + text[index + 1 :]


def _tamper(seal: str, part: int) -> str:
    parts = seal[:-2].split("*")
    parts[part] = _flip(parts[part], len(parts[part]) // 2)
    return "*".join(parts) + "~2"


FOREIGN_PASSWORD = "somebody else's password, also 32+ characters"
BAD_COOKIES = {
    "tampered ciphertext": lambda user, seal: _tamper(seal, 4),
    "tampered iv": lambda user, seal: _tamper(seal, 3),
    "tampered mac": lambda user, seal: _tamper(seal, 7),
    "tampered expiration": lambda user, seal: seal.replace(
        seal[:-2].split("*")[5], str(int(seal[:-2].split("*")[5]) + 1)
    ),
    "unknown password id": lambda user, seal: seal.replace("Fe26.2*1*", "Fe26.2*9*", 1),
    "expired": lambda user, seal: Sealer(PASSWORD, local_offset_ms=-2 * DAY_MS).seal(
        {"user": user}, ttl=86400
    ),
    "foreign password": lambda user, seal: Sealer(FOREIGN_PASSWORD).seal({"user": user}, ttl=86400),
    "garbage": lambda user, seal: "garbage",
    "empty": lambda user, seal: "",
    "shape only": lambda user, seal: "Fe26.2*1*a*b*c*1*d*e~2",
    "stars": lambda user, seal: "Fe26.2*******~2",
    "percent junk": lambda user, seal: "%FF%FE%00",
    "huge": lambda user, seal: "A" * 3500,
    "no suffix": lambda user, seal: seal[:-2],
    # sealed with the right password, but not the seed's shape: still "no session", never a 500
    "sealed list": lambda user, seal: Sealer(PASSWORD).seal([1, 2, 3], ttl=86400),
    "sealed string": lambda user, seal: Sealer(PASSWORD).seal("user", ttl=86400),
    "sealed null user": lambda user, seal: Sealer(PASSWORD).seal({"user": None}, ttl=86400),
    "sealed bad id": lambda user, seal: Sealer(PASSWORD).seal(
        {"user": {**user, "sessionId": "not-a-uuid"}}, ttl=86400
    ),
    "sealed numeric id": lambda user, seal: Sealer(PASSWORD).seal(
        {"user": {**user, "sessionId": 12345}}, ttl=86400
    ),
    "sealed nothing": lambda user, seal: Sealer(PASSWORD).seal({}, ttl=86400),
}


@pytest.mark.parametrize("kind", list(BAD_COOKIES))
async def test_a_cookie_that_does_not_open_is_a_new_visitor(
    http: aiohttp.ClientSession,
    module_server: RunningServer,
    kind: str,
) -> None:
    owner = new_visitor(http, module_server)
    sid = (await owner.chat(ROI_MESSAGE))["sessionId"]
    assert owner.cookie is not None
    bad = BAD_COOKIES[kind](unseal_user(owner.cookie), owner.cookie)
    if kind.startswith("tampered") or kind in {
        "expired",
        "foreign password",
        "unknown password id",
    }:
        with pytest.raises(SealError):
            Sealer(PASSWORD).unseal(bad)  # the test's own premise: this cookie does not open

    stranger = new_visitor(http, module_server)
    reply = await stranger.get("/api/session", cookie=bad)
    assert reply.status == 200, reply
    assert_no_traceback(reply)
    assert reply.json["sessionId"] != sid, "a cookie that does not open must not reach the session"
    assert_uuid4(reply.json["sessionId"])
    assert reply.json["messageCount"] == 0
    cookie = reply.session_cookie()
    assert cookie is not None and not cookie.deletes, f"a new visitor gets a cookie: {reply}"
    assert unseal_user(cookie.value)["sessionId"] == reply.json["sessionId"]

    chat = await stranger.post("/api/chat", {"message": "hi"}, cookie=bad, keep=False)
    assert chat.status == 200, chat
    assert chat.json["sessionId"] != sid and chat.json["messageCount"] == 2
    history = await stranger.get("/api/chat/history", cookie=bad, keep=False)
    assert history.status == 200, history
    assert ROI_MESSAGE not in history.text
    assert (await owner.session())["messageCount"] == 2, "the owner's session is untouched"


# --- errors -------------------------------------------------------------------------------------
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", "invalid_json"),
        ("", "invalid_json"),
        ("[1, 2]", "invalid_json"),
        ('"message"', "invalid_json"),
        ("null", "invalid_json"),
        ("42", "invalid_json"),
        ("{}", "invalid_input"),
        ('{"message": 5}', "invalid_input"),
        ('{"message": null}', "invalid_input"),
        ('{"message": ["hi"]}', "invalid_input"),
        ('{"message": {"text": "hi"}}', "invalid_input"),
        ('{"message": true}', "invalid_input"),
        ('{"message": "hi", "extra": 1}', "invalid_input"),
        ('{"msg": "hi"}', "invalid_input"),
        ('{"message": ""}', "invalid_input"),
        ('{"message": "' + "x" * 4001 + '"}', "invalid_input"),
    ],
    ids=lambda v: v[:30] if isinstance(v, str) else v,
)
async def test_bad_chat_bodies_are_400(visitor: Visitor, body: str, code: str) -> None:
    await visitor.session()
    reply = await visitor.request("POST", "/api/chat", data=body, headers=JSON)
    assert_error(reply, 400, code)
    assert (await visitor.session())["messageCount"] == 0, "a refused message is not stored"


async def test_message_length_boundary_is_4000_characters(visitor: Visitor) -> None:
    reply = await visitor.post("/api/chat", {"message": "x" * 4000})
    assert reply.status == 200, reply
    reply = await visitor.post("/api/chat", {"message": "é" * 4000})
    assert reply.status == 200, "4000 characters, not bytes"
    cookie = reply.session_cookie()
    assert cookie is not None and len(cookie.raw) <= 4096, "the message is not kept in the cookie"
    assert_error(await visitor.post("/api/chat", {"message": "é" * 4001}), 400, "invalid_input")


async def test_json_with_a_charset_is_accepted(visitor: Visitor) -> None:
    reply = await visitor.request(
        "POST", "/api/chat", data='{"message": "hi"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )  # fmt: skip
    assert reply.status == 200, reply


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_chat_without_json_content_type_is_415(
    visitor: Visitor, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    reply = await visitor.request("POST", "/api/chat", data=b'{"message": "hi"}', headers=headers)
    assert_error(reply, 415, "unsupported_media_type")


async def test_a_body_over_one_mebibyte_is_413(visitor: Visitor) -> None:
    body = ('{"message": "' + "x" * (1024 * 1024) + '"}').encode()
    reply = await visitor.request("POST", "/api/chat", data=body, headers=JSON)
    assert_error(reply, 413, "request_entity_too_large")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/session", {"GET", "DELETE"}),
        ("POST", "/api/session", {"GET", "DELETE"}),
        ("PATCH", "/api/session/data", {"DELETE"}),
        ("GET", "/api/session/data", {"DELETE"}),
        ("GET", "/api/chat", {"POST"}),
        ("DELETE", "/api/chat/history", {"GET"}),
        ("POST", "/healthz", {"GET"}),
        ("DELETE", "/", {"GET"}),
    ],
)
async def test_a_wrong_method_is_405_with_allow(
    visitor: Visitor, method: str, path: str, allowed: set[str]
) -> None:
    reply = await visitor.request(method, path, data=b"{}", headers=JSON)
    assert_error(reply, 405, "method_not_allowed")
    allow = {m.strip() for m in reply.headers.get("Allow", "").split(",") if m.strip()}
    assert allowed <= allow, f"Allow: {reply.headers.get('Allow')!r}"
    assert method not in allow


@pytest.mark.parametrize(
    "path", ["/nope", "/api/nope", "/api/session/data/more", "/api", "/static/../etc/passwd"]
)
async def test_an_unknown_route_is_404(visitor: Visitor, path: str) -> None:
    reply = await visitor.get(path)
    assert_error(reply, 404, "not_found")


async def test_the_cookie_stays_small_however_much_the_persona_learns(visitor: Visitor) -> None:
    """Histories live in the database; the cookie keeps a summary that cannot grow past 4096."""
    messages = [
        "I run sales and marketing at a craft brewery, a small independent taproom.",
        "We are also a regional distributor and wholesaler, multi-state, growing fast.",
        "Operations: logistics, inventory, warehouse and supply chain. Compliance: TTB, excise.",
        "We sell beer, wine, spirits, seltzers and kombucha; national and global accounts too.",
        "Pain: no visibility on shelf, prove ROI, chase our distributors, spreadsheets everywhere, "
        "label approvals paperwork, slow-moving velocity.",
    ]
    for _ in range(3):
        for text in messages:
            reply = await visitor.post("/api/chat", {"message": text})
            assert reply.status == 200, reply
            cookie = reply.session_cookie()
            assert cookie is not None and len(cookie.raw) <= 4096, len(cookie.raw if cookie else "")
    persona = (await visitor.session())["persona"]
    assert len(persona["pain_points_detected"]) >= 5, persona["pain_points_detected"]
    assert visitor.cookie is not None
    vectors = unseal_user(visitor.cookie)["persona"].get("detection_vectors", {})
    assert not [k for k in vectors if k.endswith("_history")]


# --- configuration seen from outside ------------------------------------------------------------
async def test_cookie_name_and_ttl_follow_the_configuration(
    server_factory: StartServer, http: aiohttp.ClientSession
) -> None:
    server = await server_factory(env={"SESSION_COOKIE_NAME": "bg_sid", "SESSION_TTL": "3600"})
    visitor = Visitor(http, server, cookie_name="bg_sid")
    reply = await visitor.get("/api/session")
    assert reply.status == 200, reply
    assert reply.session_cookie(COOKIE_NAME) is None, "the configured name replaces the default"
    cookie = reply.session_cookie("bg_sid")
    assert cookie is not None, reply
    assert cookie.attributes.get("max-age") == "3540", cookie.raw
    expiration = int(cookie.value[:-2].split("*")[5])
    assert abs(expiration - (now_ms() + 3_600_000)) < 120_000, "the seal carries the ttl"
    again = await visitor.get("/api/session")
    assert again.json["sessionId"] == reply.json["sessionId"]


async def test_production_cookies_are_secure(
    server_factory: StartServer, http: aiohttp.ClientSession
) -> None:
    server = await server_factory(env={"BEVSESSION_ENV": "production"})
    host_name = "__Host-" + COOKIE_NAME  # no domain configured: no sibling subdomain can set it
    visitor = Visitor(http, server, cookie_name=host_name)
    reply = await visitor.get("/api/session")
    assert reply.status == 200, reply
    assert reply.session_cookie(COOKIE_NAME) is None, reply
    cookie = reply.session_cookie(host_name)
    assert cookie is not None and cookie.attributes.get("secure") is True, reply
    assert cookie.attributes.get("path") == "/" and "domain" not in cookie.attributes, cookie.raw
    assert cookie.raw == set_cookie_header(cookie.value, CookieOptions(name=host_name))
    again = await visitor.get("/api/session")
    assert again.json["sessionId"] == reply.json["sessionId"], "the __Host- cookie is read back"
    assert_error(await Visitor(http, server).get("/nope"), 404, "not_found")


async def test_production_with_a_domain_keeps_the_plain_name(
    server_factory: StartServer, http: aiohttp.ClientSession
) -> None:
    server = await server_factory(
        env={"BEVSESSION_ENV": "production", "SESSION_COOKIE_DOMAIN": "example.com"}
    )
    reply = await Visitor(http, server).get("/api/session")
    cookie = reply.session_cookie(COOKIE_NAME)
    assert cookie is not None, reply
    assert cookie.attributes.get("domain") == "example.com", cookie.raw
    assert cookie.attributes.get("secure") is True, cookie.raw


async def test_plain_http_development_opts_out_of_secure_explicitly(
    server_factory: StartServer, http: aiohttp.ClientSession
) -> None:
    server = await server_factory(env={"SESSION_COOKIE_SECURE": "false"})
    cookie = (await Visitor(http, server).get("/api/session")).session_cookie()
    assert cookie is not None and "secure" not in cookie.attributes, cookie


# --- routes without a session ---------------------------------------------------------------------
@pytest.mark.parametrize("cookie_kind", ["none", "garbage", "valid"])
async def test_public_routes_never_set_a_cookie_or_create_a_session(
    visitor: Visitor,
    module_server: RunningServer,
    cookie_kind: str,
) -> None:
    cookie = {"none": None, "garbage": "garbage"}.get(cookie_kind)
    if cookie_kind == "valid":
        await visitor.session()
        cookie = visitor.cookie
        user = unseal_user(cookie)
        # an old lastActivityAt: even a touch-worthy cookie is not touched by these routes
        cookie = Sealer(PASSWORD).seal(
            {"user": {**user, "lastActivityAt": now_ms() - 3_600_000}}, ttl=86400
        )
    sessions_before = (
        await db_fetch(module_server, "select count(*) as n from bevsession.sessions")
    )[0]["n"]

    health = await visitor.get("/healthz", cookie=cookie, keep=False)
    assert health.status == 200 and health.json["status"] == "ok", health
    assert health.json == {"status": "ok"}, "healthy or not: the counters are at /metrics"
    metrics = await visitor.get("/metrics", cookie=cookie, keep=False)
    assert set(metrics.json) == {"cookieRejections", "readCache"}, metrics
    ready = await visitor.get("/readyz", cookie=cookie, keep=False)
    assert ready.status == 200 and ready.json == {"status": "ready"}, ready
    page = await visitor.get("/", cookie=cookie, keep=False)
    assert page.status == 200, page
    assert page.headers["Content-Type"].startswith("text/html"), page.headers
    for element in ('id="message"', 'id="send"', 'id="log"', 'id="session-id"', "<form"):
        assert element in page.text, f"the chat page lacks {element}"
    spec = await visitor.get("/openapi.json", cookie=cookie, keep=False)
    assert spec.status == 200 and spec.json["openapi"].startswith("3.1"), spec

    for reply in (health, ready, page, spec):
        assert reply.set_cookies == [], f"a public route set a cookie: {reply}"
    sessions_after = (
        await db_fetch(module_server, "select count(*) as n from bevsession.sessions")
    )[0]["n"]
    # other tests of this module run one at a time, so no session appeared meanwhile
    assert sessions_after == sessions_before, "a public route created a session"


# --- the database going away ---------------------------------------------------------------------
async def test_a_database_that_is_down_is_503_and_nothing_is_acknowledged(
    server_factory: StartServer,
    http: aiohttp.ClientSession,
) -> None:
    cluster = LocalPostgres.throwaway_cluster()
    try:
        await migrate(cluster.dsn())
        server = await server_factory(
            env={"DATABASE_URL": cluster.dsn("postgres", user="authenticator")}, database=False
        )
        visitor = Visitor(http, server)
        sid = (await visitor.chat("before the outage"))["sessionId"]

        cluster.stop()
        lost = "during the outage: must not be acknowledged"
        reply = await visitor.post("/api/chat", {"message": lost})
        error = assert_error(reply, 503, "database_unavailable")
        assert "password" not in error["message"].lower()
        retry_after = reply.headers.get("Retry-After")
        assert retry_after is not None and retry_after.isdigit() and int(retry_after) > 0, (
            reply.headers
        )
        # A read may be answered from the cookie while the database is away (docs: only a
        # write must not be acknowledged); if it is, it is this visitor's session, unchanged.
        read = await visitor.get("/api/session")
        if read.status == 200:
            assert read.json["sessionId"] == sid and read.json["messageCount"] == 2, read
            assert read.session_cookie() is None, read
        else:
            assert_error(read, 503, "database_unavailable")
        assert_error(await visitor.get("/api/chat/history"), 503, "database_unavailable")
        cookie_before = visitor.cookie
        cleared = await visitor.delete("/api/session")
        assert_error(cleared, 503, "database_unavailable")
        assert cleared.session_cookie() is None, (
            "a clear that was not stored must not drop the cookie"
        )
        assert visitor.cookie == cookie_before
        ready = await visitor.get("/readyz")
        assert ready.status == 503 and "error" in ready.json, ready
        assert_no_traceback(ready)
        health = await visitor.get("/healthz")
        assert health.status == 200 and health.json["status"] == "ok", "the process is still up"

        cluster.start()
        deadline = time.monotonic() + 20
        while (await visitor.get("/readyz")).status != 200:
            assert time.monotonic() < deadline, (
                "the server did not recover after the database came back"
            )
            await asyncio.sleep(0.1)
        summary = await visitor.session()
        assert summary["sessionId"] == sid
        assert summary["messageCount"] == 2, "the refused turn was not stored"
        history = (await visitor.get("/api/chat/history")).json
        assert lost not in [m["content"] for m in history["messages"]]
        assert (await visitor.chat("after the outage"))["messageCount"] == 4
        assert server.env["SESSION_PASSWORD"] not in server.log_text()
    finally:
        cluster.destroy()


# --- last: what the module's server wrote to its log ----------------------------------------------
async def test_zz_the_log_has_no_secret_and_no_unhandled_error(
    module_server: RunningServer,
) -> None:
    log = module_server.log_text()
    assert PASSWORD not in log, "the session password appeared in the log"
    assert "Fe26.2*" not in log, "a sealed cookie appeared in the log"
    assert "Traceback" not in log, f"an unhandled error was logged:\n{log[-4000:]}"
    assert "internal_error" not in log
