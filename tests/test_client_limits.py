"""Bots pay: per-client-address limits at the edge (functions/bevsession_edge/client_limits.py).

The flood the issue measured — 40 cookieless ``POST /api/chat`` of 3,900 characters, each
storing a session, a persona and two messages — now stops at the address's allowance of new
sessions (``CLIENT_SESSION_RATE``, 20/minute by default): the rest are 429 with
``Retry-After``, store nothing and get no cookie. Behind proxies the address comes from
``X-Forwarded-For`` only when ``TRUSTED_PROXY_HOPS`` says so.
"""

from __future__ import annotations

import time

import aiohttp
import pytest

from bevsession_edge.config import Settings
from bevsession_edge.rates import GcraLimiter, Rate, parse_rate
from e2e_server import StartServer, Visitor, db_fetch

# more than 3,900 characters; each request sends the first 3,900
MESSAGE = "We are a craft brewery looking at distribution in three states. " * 62


async def test_a_cookieless_chat_flood_stops_at_the_address_allowance(
    server_factory: StartServer, http: aiohttp.ClientSession
) -> None:
    defaults = {
        "CLIENT_SESSION_RATE": Settings.model_fields["client_session_rate"].default,
        "CLIENT_CHAT_RATE": Settings.model_fields["client_chat_rate"].default,
    }
    assert defaults == {"CLIENT_SESSION_RATE": "20/minute", "CLIENT_CHAT_RATE": "60/minute"}
    server = await server_factory(env=defaults)  # the test servers turn them off otherwise
    assert len(MESSAGE[:3900]) == 3900
    statuses = []
    started = time.monotonic()
    for _ in range(40):
        reply = await Visitor(http, server).post("/api/chat", {"message": MESSAGE[:3900]})
        statuses.append(reply.status)
        if reply.status == 429:
            assert reply.json["error"]["code"] == "rate_limited"
            assert int(reply.headers["Retry-After"]) >= 1
            assert reply.session_cookie() is None, "a refused newcomer gets no cookie"
    # a burst of 20, then one new session per 3 s: on a loaded machine the loop may take long
    # enough for one or two more
    refilled = int((time.monotonic() - started) // 3)
    passed = statuses.count(200)
    assert 20 <= passed <= 20 + refilled and statuses.count(429) == 40 - passed, statuses
    sessions = await db_fetch(server, "select count(*) as n from bevsession.sessions")
    messages = await db_fetch(server, "select count(*) as n from bevsession.conversation_history")
    assert (sessions[0]["n"], messages[0]["n"]) == (passed, 2 * passed), "refused: nothing stored"


async def test_new_sessions_are_limited_but_a_known_visitor_goes_on(
    server_factory: StartServer, http: aiohttp.ClientSession
) -> None:
    server = await server_factory(env={"CLIENT_SESSION_RATE": "3/minute"})
    known = Visitor(http, server)
    await known.session()
    for _ in range(2):
        assert (await Visitor(http, server).get("/api/session")).status == 200
    refused = await Visitor(http, server).get("/api/session")
    assert refused.status == 429 and refused.session_cookie() is None, refused
    assert (await known.get("/api/session")).status == 200, "a visitor with a cookie is no newcomer"


async def test_chat_turns_are_limited_per_address(
    server_factory: StartServer, http: aiohttp.ClientSession
) -> None:
    server = await server_factory(env={"CLIENT_CHAT_RATE": "3/minute"})
    visitor = Visitor(http, server)
    await visitor.session()
    for _ in range(3):
        await visitor.chat("hello")
    refused = await visitor.post("/api/chat", {"message": "hello"})
    assert refused.status == 429, refused
    assert "address" in refused.json["error"]["message"]


async def test_the_forwarded_address_counts_only_behind_a_trusted_proxy(
    server_factory: StartServer, http: aiohttp.ClientSession
) -> None:
    direct = await server_factory(env={"CLIENT_SESSION_RATE": "2/minute"})
    proxied = await server_factory(
        env={"CLIENT_SESSION_RATE": "2/minute", "TRUSTED_PROXY_HOPS": "1"}
    )
    spoofed = [
        (await Visitor(http, direct).get(
            "/api/session", headers={"X-Forwarded-For": f"198.51.100.{i}"})).status
        for i in range(3)
    ]  # fmt: skip
    assert spoofed == [200, 200, 429], "a header a client writes is not its address"
    distinct = [
        (await Visitor(http, proxied).get(
            "/api/session", headers={"X-Forwarded-For": f"203.0.113.9, 198.51.100.{i}"})).status
        for i in range(3)
    ]  # fmt: skip
    assert distinct == [200, 200, 200], "behind one trusted proxy: the address it saw counts"
    same = [
        (await Visitor(http, proxied).get(
            "/api/session", headers={"X-Forwarded-For": f"10.9.9.{i}, 198.51.100.77"})).status
        for i in range(3)
    ]  # fmt: skip
    assert same == [200, 200, 429], "what the client put left of the proxy's entry is ignored"


def test_rates_parse_as_the_database_writes_them() -> None:
    assert parse_rate("20/minute") == Rate(20, 60.0)
    assert parse_rate("10/10s") == Rate(10, 10.0)
    assert parse_rate(" 5 / hour ") == Rate(5, 3600.0)
    assert parse_rate("off").off
    for bad in ("", "fast", "0/minute", "5/0s", "5/25h", "-1/minute"):
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_the_limiter_allows_a_burst_then_one_per_interval() -> None:
    limiter = GcraLimiter(Rate(3, 3.0), max_keys=2)
    assert [limiter.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", now=0.0) == pytest.approx(1.0)
    assert limiter.take("a", now=1.0) == 0.0, "one more after period/N"
    limiter.take("b", now=1.0)
    limiter.take("c", now=1.0)  # beyond max_keys: the oldest address is forgotten
    assert limiter.take("a", now=1.0) == 0.0
