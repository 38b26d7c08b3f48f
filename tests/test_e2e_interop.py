"""The running server and the REAL Node iron-session (8.0.4 and 9.0.1) share cookies, both ways.

The seed app is Next.js with iron-session; routes move to this server one at a time, so a cookie
either side sets must open on the other, with the same password (or rotation map). With v9's
``chunk: true`` a session over 4096 bytes lives in ``name.0`` … ``name.3``: this server reads it,
accepts the Cookie header of four full chunks, and expires the chunks whenever it writes or
deletes the cookie (a logout here is a logout in the v9 app). Node runs in batches through
tests/interop/iron.mjs and iron9.mjs; a missing Node is a failure with the fix, never a skip.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from bevsession.cookies import MAX_COOKIE_HEADER
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
        # iron-session's own default cookie options (Secure), as this server's default
        {"op": "save", "data": {"user": {"sessionId": "x"}}, "password": PASSWORD,
         "cookieName": COOKIE_NAME, "ttl": TTL},
        {"op": "destroy", "password": PASSWORD, "cookieName": COOKIE_NAME, "ttl": TTL},
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


# --- iron-session 9.0.1 with chunk: true: sessions over 4096 bytes in name.0 … name.3 ----------
@pytest.fixture(scope="module")
def iron9() -> Iron:
    ensure_node_modules()
    return lambda ops: run_iron(ops, version=9)


V9 = {"password": PASSWORD, "cookieName": COOKIE_NAME, "ttl": TTL, "secure": False, "chunk": True}


def apply_set_cookies(jar: dict[str, str], headers: list[str]) -> dict[str, str]:
    """The browser's cookies after a response's ``Set-Cookie`` headers (``Max-Age=0`` deletes)."""
    jar = dict(jar)
    for raw in headers:
        cookie = SetCookie.parse(raw)
        if cookie.attributes.get("max-age") == "0":
            jar.pop(cookie.name, None)
        else:
            jar[cookie.name] = cookie.value
    return jar


def cookie_header(jar: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in jar.items())


def v9_saved(
    iron9: Iron, make: Callable[[int], dict[str, Any]], sizes: range, chunks: int, *, last: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    """A session a v9 app (``chunk: true``) stores in exactly *chunks* cookies: ``make(n)`` for
    the middle (or, with *last*, the largest) n of *sizes* that gives that many; the session
    and the browser's cookies after ``session.save()``."""
    results = iron9([{"op": "save", "data": make(n), **V9} for n in sizes])
    fitting = [
        (n, ok(r)) for n, r in zip(sizes, results, strict=True)
        if r["ok"] and len(ok(r)) == chunks
    ]  # fmt: skip
    assert fitting, f"no size in {sizes} gives {chunks} chunks"
    n, headers = fitting[-1] if last else fitting[len(fitting) // 2]
    jar = apply_set_cookies({}, headers)
    assert list(jar) == [f"{COOKIE_NAME}.{i}" for i in range(chunks)], list(jar)
    return make(n), jar


def seed_session_with_history(session_id: str, entries: int) -> dict[str, Any]:
    """The seed's cookie after many detections: what makes a v9 app turn ``chunk`` on."""
    data = seed_session(session_id)
    vectors = data["user"]["persona"]["detection_vectors"]
    for i in range(entries):
        vectors[("functional_role_history", "org_type_history")[i % 2]].append(
            {"value": ("sales", "craft_brewery")[i % 2], "confidence": round(0.1 + i / 1000, 3),
             "timestamp": 1_700_000_000_000 + i, "source": f"message {i}: we brew and sell"}
        )  # fmt: skip
    return data


def summary_user(session_id: str) -> dict[str, Any]:
    """The seed's user as this server keeps it in its cookie (no detection histories), so that
    reading it here changes nothing and sends no cookie."""
    user: dict[str, Any] = seed_session(session_id)["user"]
    vectors = user["persona"]["detection_vectors"]
    for key in [k for k in vectors if k.endswith("_history")]:
        del vectors[key]
    return user


@pytest.mark.parametrize("chunks", [2, 3])
async def test_a_session_iron_session_9_split_into_chunks_is_read_here(
    http: aiohttp.ClientSession, module_server: RunningServer, iron9: Iron, chunks: int
) -> None:
    sid = str(uuid.uuid4())
    _, jar = v9_saved(
        iron9, lambda n: seed_session_with_history(sid, n), range(10, 130, 3), chunks, last=False
    )
    assert len(cookie_header(jar)) > 4096 * (chunks - 1)
    reply = await Visitor(http, module_server).get(
        "/api/session", cookie=None, headers={"Cookie": cookie_header(jar)}
    )
    assert reply.status == 200, reply
    assert reply.json["sessionId"] == sid, "the chunked v9 session carries over"
    rows = await db_fetch(
        module_server, "select id from bevsession.sessions where id = $1::uuid", sid
    )
    assert len(rows) == 1

    # The detection histories move to the database: one cookie of ours, every chunk expired.
    ours = reply.session_cookie()
    assert ours is not None and not ours.deletes and len(ours.raw) <= 4096, reply
    expired = {c.name for c in reply.set_cookies if c.deletes}
    assert expired == set(jar), reply
    after = apply_set_cookies(jar, [c.raw for c in reply.set_cookies])
    assert list(after) == [COOKIE_NAME]
    (loaded,) = iron9([{"op": "load", "cookie": cookie_header(after), **V9}])
    assert ok(loaded)["session"]["user"]["sessionId"] == sid, "the v9 app reads our cookie"


async def test_after_a_logout_here_the_iron_session_9_app_sees_no_session(
    http: aiohttp.ClientSession, module_server: RunningServer, iron9: Iron
) -> None:
    """A visitor moves between the v9 app (which keeps a big cart beside the user, in chunks)
    and this server; the logout happens here while the v9 app's chunks are in the browser:
    they must go, or the v9 app reopens the session from them."""
    sid = str(uuid.uuid4())
    user = summary_user(sid)
    cart, jar = v9_saved(
        iron9, lambda n: {"user": user, "cart": "sku-" * n}, range(1500, 3000, 25), 3, last=False
    )
    browser = {"theme": "dark", **jar}
    visitor = Visitor(http, module_server)
    first = await visitor.get("/api/session", cookie=None,
                              headers={"Cookie": cookie_header(browser)})  # fmt: skip
    assert first.status == 200 and first.json["sessionId"] == sid, first
    browser = apply_set_cookies(browser, [c.raw for c in first.set_cookies])
    assert list(browser) == ["theme", COOKIE_NAME], "ours replaces the chunks"

    # The v9 app saves its cart again: the session goes back into chunks.
    (saved,) = iron9([{"op": "save", "data": {"cart": cart["cart"]},
                       "cookie": cookie_header(browser), **V9}])  # fmt: skip
    browser = apply_set_cookies(browser, ok(saved))
    assert list(browser) == ["theme", *jar], browser.keys()
    (before,) = iron9([{"op": "load", "cookie": cookie_header(browser), **V9}])
    assert ok(before)["session"]["user"]["sessionId"] == sid  # what a missed expiry would keep

    cleared = await visitor.delete("/api/session", cookie=None,
                                   headers={"Cookie": cookie_header(browser)})  # fmt: skip
    assert cleared.status == 200, cleared
    assert {c.name for c in cleared.set_cookies if c.deletes} == {COOKIE_NAME, *jar}, cleared
    after = apply_set_cookies(browser, [c.raw for c in cleared.set_cookies])
    assert after == {"theme": "dark"}
    (loaded,) = iron9([{"op": "load", "cookie": cookie_header(after), **V9}])
    assert ok(loaded)["session"] == {}, "the v9 app sees no session after the logout"

    # and the chunks, replayed, are a revoked session here: a new visitor
    replay = await visitor.get("/api/session", cookie=None,
                               headers={"Cookie": cookie_header(jar)})  # fmt: skip
    assert replay.status == 200 and replay.json["sessionId"] != sid, replay


async def test_four_full_chunks_arrive_and_a_longer_cookie_header_is_refused(
    http: aiohttp.ClientSession, module_server: RunningServer, iron9: Iron
) -> None:
    """The largest session v9 stores (four chunks, the last one full) makes a Cookie header of
    about 16 KB, twice aiohttp's default limit of 8190 bytes: it arrives. One past the limit
    the server raised it to does not (a JSON 400, without the cookie in it)."""
    sid = str(uuid.uuid4())
    user = summary_user(sid)
    _, jar = v9_saved(
        iron9, lambda n: {"user": user, "cart": "c" * n}, range(10_900, 12_300, 4), 4, last=True
    )
    header = cookie_header({"theme": "dark", **jar})
    assert len(header) > 16_000, len(header)
    reply = await Visitor(http, module_server).get(
        "/api/session", cookie=None, headers={"Cookie": header}
    )
    assert reply.status == 200 and reply.json["sessionId"] == sid, reply

    # The limit counts the header's name too (aiohttp's parsers: name + value, or the line).
    too_long = header + "; pad=" + "p" * (MAX_COOKIE_HEADER - len(header))
    refused = await Visitor(http, module_server).get(
        "/api/session", cookie=None, headers={"Cookie": too_long}
    )
    assert refused.status == 400, refused
    assert refused.json["error"]["code"] == "bad_request"
    assert "Fe26" not in refused.text


async def test_a_percent_encoded_seal_opens_here_as_in_iron_session_9(
    http: aiohttp.ClientSession, module_server: RunningServer, iron9: Iron
) -> None:
    """iron-session reads cookies through ``cookie.parse``, which percent-decodes them."""
    sid = str(uuid.uuid4())
    seal = node_cookie(iron9, seed_session(sid), PASSWORD)  # v9's session.save(), one cookie
    encoded = urllib.parse.quote(seal, safe="")
    assert encoded != seal and "%2A" in encoded
    (loaded,) = iron9([{"op": "load", "cookie": f"{COOKIE_NAME}={encoded}", **V9}])
    assert ok(loaded)["session"]["user"]["sessionId"] == sid
    reply = await Visitor(http, module_server).get("/api/session", cookie=encoded)
    assert reply.status == 200 and reply.json["sessionId"] == sid, reply
    broken = encoded.replace("%2A", "%2", 1)  # a malformed escape: the value is kept as is
    refused = await Visitor(http, module_server).get("/api/session", cookie=broken)
    assert refused.status == 200 and refused.json["sessionId"] != sid, refused
