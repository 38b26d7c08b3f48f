"""Cross-site writes refused, security headers, /healthz vs /metrics, log and protocol hygiene.

(functions/bevsession_edge/guards.py, logs.py, protocol.py), in-process and against the real
server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bevsession.local_postgres import LocalPostgres
from bevsession.transports.postgres import PostgresTransport
from bevsession_edge import protocol
from bevsession_edge.app import create_app
from bevsession_edge.config import load_settings
from bevsession_edge.guards import normalise_origin, parse_origins
from bevsession_edge.logs import RedactSecrets
from e2e_server import PASSWORD, StartServer, Visitor


@pytest.fixture
async def client(pg: LocalPostgres, db_name: str) -> AsyncIterator[TestClient[Any, Any]]:
    settings = load_settings(
        session_password=PASSWORD,
        database_url=pg.dsn(db_name, user="authenticator"),
        allowed_origins="https://app.example.com",
    )
    transport = await PostgresTransport.connect(pg.dsn(db_name, user="authenticator"))
    try:
        app = create_app(settings, transport=transport)
        async with TestClient(TestServer(app, host="127.0.0.1"),
                              cookie_jar=aiohttp.DummyCookieJar()) as http:  # fmt: skip
            yield http
    finally:
        await transport.close()


# --- Origin and Fetch Metadata --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 200),  # no browser headers: curl, a server-side client
        ({"Sec-Fetch-Site": "same-origin"}, 200),
        ({"Origin": "SELF"}, 200),  # this server's own origin
        ({"Origin": "https://app.example.com"}, 200),  # ALLOWED_ORIGINS
        ({"Origin": "https://app.example.com:443"}, 200),  # the same origin, default port
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Origin": "https://evil.example"}, 403),
        ({"Origin": "null"}, 403),  # a sandboxed frame or a file: page
        ({"Origin": "https://sub.app.example.com"}, 403),  # same site, another origin
    ],
)
async def test_state_changing_requests_from_another_origin_are_refused(
    client: TestClient[Any, Any], headers: dict[str, str], status: int
) -> None:
    sent = {k: (f"http://{client.host}:{client.port}" if v == "SELF" else v)
            for k, v in headers.items()}  # fmt: skip
    async with client.post("/api/chat", json={"message": "hello"}, headers=sent) as resp:
        assert resp.status == status, await resp.text()
        if status == 403:
            assert (await resp.json())["error"]["code"] == "forbidden_origin"
            assert "Set-Cookie" not in resp.headers, "a refused request starts no session"
    async with client.delete("/api/session", headers=sent) as resp:
        assert resp.status == status


async def test_reads_are_not_origin_checked(client: TestClient[Any, Any]) -> None:
    headers = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    async with client.get("/api/session", headers=headers) as resp:
        assert resp.status == 200  # a read changes nothing; CORS keeps the answer from the page


def test_origins_are_normalised() -> None:
    assert normalise_origin("HTTPS://App.Example.com:443/") == "https://app.example.com"
    assert normalise_origin("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert normalise_origin("null") is None and normalise_origin("https://x/path") is None
    assert parse_origins("https://a.example, http://b.example:8080") == {
        "https://a.example", "http://b.example:8080"
    }  # fmt: skip
    with pytest.raises(ValueError):
        parse_origins("a.example")


# --- headers, /healthz, /metrics ------------------------------------------------------------------
async def test_the_page_is_sent_with_security_headers(client: TestClient[Any, Any]) -> None:
    async with client.get("/") as resp:
        assert resp.status == 200
        csp = resp.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/api/session", "/nope", "/openapi.json"):
        async with client.get(path) as resp:
            assert resp.headers["X-Content-Type-Options"] == "nosniff", path
            assert resp.headers["Referrer-Policy"] == "same-origin", path


async def test_healthz_says_healthy_and_nothing_more(client: TestClient[Any, Any]) -> None:
    async with client.get("/healthz") as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ok"}
    async with client.get("/metrics") as resp:  # the counters, to a loopback peer
        assert resp.status == 200
        assert set(await resp.json()) == {"cookieRejections", "readCache"}


async def test_metrics_need_loopback_or_the_token(
    server_factory: StartServer, http: aiohttp.ClientSession
) -> None:
    server = await server_factory(env={"METRICS_TOKEN": "a-metrics-token-for-the-test"})
    visitor = Visitor(http, server)
    refused = await visitor.get("/metrics")
    assert refused.status == 403, refused
    bearer = {"Authorization": "Bearer a-metrics-token-for-the-test"}
    ok = await visitor.get("/metrics", headers=bearer)
    assert ok.status == 200 and "readCache" in ok.json, ok


# --- logs.py: asyncpg's pool records read before they are rewritten -------------------------------
def test_a_pool_record_is_read_before_it_is_rewritten() -> None:
    secret = "postgresql://authenticator:hunter2-secret@127.0.0.1/db"
    try:
        raise ConnectionRefusedError(f"could not connect to {secret}")
    except ConnectionRefusedError as exc:
        record = logging.LogRecord(
            "asyncpg.pool", logging.WARNING, __file__, 1,
            "error while reconnecting to %s", (secret,), (type(exc), exc, exc.__traceback__),
        )  # fmt: skip
    RedactSecrets().filter(record)
    line = record.getMessage()
    assert "%s" not in line, line
    assert line.startswith("error while reconnecting to"), line
    assert "hunter2-secret" not in line, line
    assert "ConnectionRefusedError" in line


# --- protocol.py: checked at install; probes at debug ---------------------------------------------
def test_the_protocol_patch_checks_aiohttp_before_installing() -> None:
    protocol.check_compatible()  # the installed aiohttp fits
    with pytest.raises(RuntimeError, match="aiohttp"):
        protocol.check_compatible(version="4.0.0")

    def other(self: Any, request: Any) -> None: ...

    with pytest.raises(RuntimeError, match="signature"):
        protocol.check_compatible(method=other)


async def test_a_tls_probe_is_logged_at_debug_only(
    server_factory: StartServer,
) -> None:
    server = await server_factory()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40)  # a ClientHello
    await writer.drain()
    await reader.read()
    writer.close()
    await asyncio.sleep(0.2)
    assert "malformed HTTP request" not in server.log_text(), server.log_text()[-2000:]
