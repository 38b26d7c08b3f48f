"""The running server and the REAL Node iron-session 8.0.4 share cookies, both ways.

The seed app is Next.js with iron-session; routes move to this server one at a time, so a cookie
either side sets must open on the other, with the same password (or rotation map). Node runs in
batches through tests/interop/iron.mjs; a missing Node is a failure with the fix, never a skip.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from e2e_server import (
    COOKIE_NAME,
    PASSWORD,
    RunningServer,
    SetCookie,
    StartServer,
    Visitor,
    db_fetch,
)
from interop.node_iron import ensure_node_modules, run_iron

Iron = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
PASSWORD_A = "rotation password A -- at least 32 characters"
PASSWORD_B = "rotation password B -- at least 32 characters, newer"
TTL = 86400


@pytest.fixture(scope="module")
def iron() -> Iron:
    ensure_node_modules()
    return run_iron


def ok(result: dict[str, Any]) -> Any:
    assert result["ok"], result
    return result["value"]


def single(header: str | list[str]) -> str:
    """iron-session sets its Set-Cookie header as a one-element list."""
    if isinstance(header, list):
        assert len(header) == 1, header
        return header[0]
    return header


def seed_default_persona() -> dict[str, Any]:
    """The seed's DEFAULT_PERSONA_SCORES, detection histories included."""
    return {
        "detection_vectors": {
            "functional_role": None, "functional_role_confidence": 0, "functional_role_history": [],
            "org_type": None, "org_type_confidence": 0, "org_type_history": [],
            "org_size": None, "org_size_confidence": 0, "org_size_history": [],
            "product_focus": None, "product_focus_confidence": 0, "product_focus_history": [],
            "vectors_updated_at": 0,
        },
        "supplier_score": 0, "distributor_score": 0, "craft_score": 0, "mid_sized_score": 0,
        "large_score": 0, "sales_focus_score": 0, "marketing_focus_score": 0,
        "operations_focus_score": 0, "compliance_focus_score": 0,
        "pain_points_detected": [], "pain_points_confidence": {},
        "overall_confidence": 0, "total_interactions": 0,
    }  # fmt: skip


def seed_session(session_id: str) -> dict[str, Any]:
    """What the seed's getSession() stores for a new visitor: ``{"user": SessionData}``."""
    now = time.time_ns() // 1_000_000
    return {
        "user": {
            "sessionId": session_id,
            "createdAt": now,
            "lastActivityAt": now,
            "messageCount": 0,
            "currentMode": "fresh",
            "hasCompletedOnboarding": False,
            "hasBrochure": False,
            "isDataConnected": False,
            "persona": seed_default_persona(),
        }
    }


def node_cookie(iron: Iron, data: dict[str, Any], password: Any) -> str:
    """The cookie value a Node iron-session app's ``session.save()`` sets for *data*."""
    op = {"op": "save", "data": data, "password": password, "cookieName": COOKIE_NAME}
    header = single(ok(iron([{**op, "ttl": TTL, "secure": False}])[0]))
    cookie = SetCookie.parse(header)
    assert cookie.name == COOKIE_NAME and cookie.value.startswith("Fe26.2*"), header
    return cookie.value


async def test_a_cookie_this_server_sets_opens_in_node_iron_session(
    http: aiohttp.ClientSession,
    module_server: RunningServer,
    iron: Iron,
) -> None:
    visitor = Visitor(http, module_server)
    body = await visitor.chat("I run sales at a craft brewery and need to prove ROI")
    sid = body["sessionId"]
    assert visitor.cookie is not None
    unsealed, loaded = iron([
        {"op": "unseal", "seal": visitor.cookie, "password": PASSWORD, "ttl": TTL},
        {"op": "load", "cookie": f"{COOKIE_NAME}={visitor.cookie}", "password": PASSWORD,
         "cookieName": COOKIE_NAME, "ttl": TTL},
    ])  # fmt: skip
    user = ok(unsealed)["user"]
    assert user["sessionId"] == sid
    assert user["messageCount"] == body["messageCount"] == 2
    session = ok(loaded)["session"]
    assert session["user"]["sessionId"] == sid, "getIronSession reads the same session"
    assert ok(loaded)["setCookie"] is None


async def test_the_set_and_delete_headers_are_iron_sessions(
    http: aiohttp.ClientSession,
    module_server: RunningServer,
    iron: Iron,
) -> None:
    visitor = Visitor(http, module_server)
    created = await visitor.get("/api/session")
    ours = created.session_cookie()
    assert ours is not None
    node_save, node_destroy = iron([
        {"op": "save", "data": {"user": {"sessionId": "x"}}, "password": PASSWORD,
         "cookieName": COOKIE_NAME, "ttl": TTL, "secure": False},
        {"op": "destroy", "password": PASSWORD, "cookieName": COOKIE_NAME, "ttl": TTL,
         "secure": False},
    ])  # fmt: skip
    theirs = SetCookie.parse(single(ok(node_save)))
    assert ours.raw.replace(ours.value, "<seal>") == theirs.raw.replace(theirs.value, "<seal>")

    cleared = await visitor.delete("/api/session")
    assert cleared.status == 200, cleared
    deleted = cleared.session_cookie()
    assert deleted is not None
    assert deleted.raw == single(ok(node_destroy)), (
        "clearing deletes the cookie exactly as destroy() does"
    )


async def test_a_cookie_node_iron_session_sealed_with_the_seed_shape_is_accepted(
    http: aiohttp.ClientSession,
    module_server: RunningServer,
    iron: Iron,
) -> None:
    sid = str(uuid.uuid4())
    cookie = node_cookie(iron, seed_session(sid), PASSWORD)
    visitor = Visitor(http, module_server)
    visitor.cookie = cookie
    reply = await visitor.get("/api/session")
    assert reply.status == 200, reply
    assert reply.json["sessionId"] == sid, "the Node session must carry over, not start afresh"
    assert reply.json["messageCount"] == 0
    rows = await db_fetch(
        module_server, "select id from bevsession.sessions where id = $1::uuid", sid
    )
    assert len(rows) == 1, "the carried-over session is now in the database"

    chat = await visitor.chat("We are a regional distributor")
    assert chat["sessionId"] == sid and chat["messageCount"] == 2
    assert (await visitor.session())["sessionId"] == sid

    # and what the server sets now still opens in Node
    assert visitor.cookie is not None
    back = ok(iron([{"op": "unseal", "seal": visitor.cookie, "password": PASSWORD, "ttl": TTL}])[0])
    assert back["user"]["sessionId"] == sid and back["user"]["messageCount"] == 2


async def test_a_node_cookie_under_another_password_is_a_new_visitor(
    http: aiohttp.ClientSession,
    module_server: RunningServer,
    iron: Iron,
) -> None:
    sid = str(uuid.uuid4())
    cookie = node_cookie(iron, seed_session(sid), "not the server's password, 32+ characters")
    reply = await Visitor(http, module_server).get("/api/session", cookie=cookie)
    assert reply.status == 200, reply
    assert reply.json["sessionId"] != sid
    assert reply.session_cookie() is not None


async def test_rotation_opens_an_old_node_cookie_and_reseals_it_with_the_newest_id(
    server_factory: StartServer,
    http: aiohttp.ClientSession,
    iron: Iron,
) -> None:
    server = await server_factory(
        env={"SESSION_PASSWORDS": json.dumps({"1": PASSWORD_A, "2": PASSWORD_B})}, password=None
    )
    sid = str(uuid.uuid4())
    old = node_cookie(iron, seed_session(sid), {"1": PASSWORD_A})
    assert old.startswith("Fe26.2*1*")

    visitor = Visitor(http, server)
    visitor.cookie = old
    reply = await visitor.get("/api/session")
    assert reply.status == 200, reply
    assert reply.json["sessionId"] == sid
    resealed = reply.session_cookie()
    assert resealed is not None, "a cookie under an older password id must be resealed"
    assert resealed.value.startswith("Fe26.2*2*"), resealed.value

    newest_only, oldest_only = iron([
        {"op": "unseal", "seal": resealed.value, "password": {"2": PASSWORD_B}, "ttl": TTL},
        {"op": "unseal", "seal": resealed.value, "password": {"1": PASSWORD_A}, "ttl": TTL},
    ])  # fmt: skip
    assert ok(newest_only)["user"]["sessionId"] == sid
    assert ok(oldest_only) == {}, "iron-session opens a seal of an unknown id as an empty session"

    again = await visitor.get("/api/session")
    assert again.status == 200 and again.json["sessionId"] == sid, again
    assert again.session_cookie() is None, "the resealed cookie is current: nothing to resend"

    # a brand-new session under rotation is sealed with id 2 too
    fresh = await Visitor(http, server).get("/api/session")
    cookie = fresh.session_cookie()
    assert cookie is not None and cookie.value.startswith("Fe26.2*2*"), fresh
