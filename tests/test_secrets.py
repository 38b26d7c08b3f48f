"""No secret in a log line or a response body, whatever happens, at DEBUG log level.

The real server (a subprocess, ``BEVSESSION_LOG_LEVEL=debug``) is driven through a whole
scenario — new visitor, chat turns, the rate limit (429), history, a tampered cookie, a header
too large for the HTTP parser, bad JSON, wrong routes and methods, clear and a replayed cookie,
forget — once on the postgres transport (with a password in ``DATABASE_URL`` and a database
outage in the middle: 503s and answers from the cookie) and once on the supabase transport
(the PostgREST-compatible test endpoint, with a project's legacy keys — JWT secret, service
key, anon key — and with its current ones — secret and publishable keys, an ES256 signing key —
and per-request visitor JWTs minted by the server). Then the captured log and every response
body are searched for the session password, the DSN password, the JWT secret, the keys (the
signing key's private number too), any JWT and any ``Fe26.2*`` seal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest

from bevsession.local_postgres import LocalPostgres
from bevsession.migrations import migrate
from bevsession_edge.app import MAX_HEADER_FIELD_BYTES
from e2e_server import COOKIE_NAME, Reply, RunningServer, StartServer, Visitor
from postgrest_endpoint import run_endpoint
from rpc_fixtures import Keys, endpoint_config


def secret_password() -> str:
    return "session-secret-" + secrets.token_urlsafe(32)


class Recorder:
    """Every reply of the scenario, to search their bodies afterwards."""

    def __init__(self) -> None:
        self.replies: list[tuple[str, Reply]] = []

    def keep(self, what: str, reply: Reply) -> Reply:
        self.replies.append((what, reply))
        return reply


async def scenario(http: aiohttp.ClientSession, server: RunningServer, rec: Recorder) -> None:
    """Everything a visitor (or an attacker) does; statuses are checked only loosely here."""
    v = Visitor(http, server)
    rec.keep("session", await v.get("/api/session"))
    for i in range(2):
        rec.keep("chat", await v.post("/api/chat", {"message": f"I run sales at a brewery {i}"}))
    limited = rec.keep("chat over the limit", await v.post("/api/chat", {"message": "one more"}))
    assert limited.status == 429 and limited.json["error"]["code"] == "rate_limited", limited
    rec.keep("history", await v.get("/api/chat/history?limit=5"))
    rec.keep("bad limit", await v.get("/api/chat/history?limit=abc"))
    assert v.cookie is not None
    tampered = v.cookie[:-10] + ("A" if v.cookie[-10] != "A" else "B") + v.cookie[-9:]
    rec.keep("tampered", await v.get("/api/session", cookie=tampered, keep=False))
    too_long = "x" * (MAX_HEADER_FIELD_BYTES + 1)  # past what the HTTP parser takes
    rec.keep("huge header", await v.get("/api/session", cookie=v.cookie + too_long, keep=False))
    rec.keep("huge line", await v.get("/api/chat/history?limit=" + "9" * 9000, keep=False))
    as_json = {"Content-Type": "application/json"}
    rec.keep("bad json", await v.request("POST", "/api/chat", data=b"{nope", headers=as_json))
    rec.keep("deep json", await v.request("POST", "/api/chat", data=b"[" * 50_000, headers=as_json))
    rec.keep("not found", await v.get("/api/nope"))
    rec.keep("wrong method", await v.request("PUT", "/api/session"))
    rec.keep("readyz", await v.get("/readyz"))
    rec.keep("openapi", await v.get("/openapi.json"))
    old = v.cookie
    rec.keep("clear", await v.delete("/api/session"))
    rec.keep("replay", await v.get("/api/session", cookie=old, keep=False))
    w = Visitor(http, server)
    rec.keep("other chat", await w.post("/api/chat", {"message": "we are a distributor"}))
    rec.keep("forget", await w.delete("/api/session/data"))


def assert_nothing_leaked(server: RunningServer, rec: Recorder, secrets_: dict[str, str]) -> None:
    log = server.log_text()
    assert "DEBUG" in log, "the server did not log at DEBUG level: the test would prove nothing"
    for name, value in secrets_.items():
        assert value not in log, f"the {name} is in the server log"
    assert "Fe26.2*" not in log and "Fe26.1*" not in log, "a sealed cookie is in the server log"
    assert "eyJ" not in log, "a JWT (a key or a visitor token) is in the server log"
    assert "Traceback" not in log, f"an unhandled error was logged:\n{log[-3000:]}"
    for what, reply in rec.replies:
        for name, value in secrets_.items():
            assert value not in reply.text, f"the {name} is in the body of {what}: {reply}"
        assert "Fe26.2*" not in reply.text and "Fe26.1*" not in reply.text, (what, reply)
        assert "eyJ" not in reply.text, f"a JWT is in the body of {what}: {reply}"
        assert "Traceback" not in reply.text, f"a traceback is in the body of {what}: {reply}"
        assert reply.status < 500 or reply.json["error"]["code"] == "database_unavailable", (
            what, reply,
        )  # fmt: skip
    assert len(rec.replies) >= 18


@contextlib.asynccontextmanager
async def own_cluster() -> AsyncIterator[LocalPostgres]:
    cluster = await asyncio.to_thread(LocalPostgres.throwaway_cluster)
    try:
        await migrate(cluster.dsn())
        admin = await asyncpg.connect(cluster.dsn())
        try:
            await admin.execute(
                "update bevsession.chat_rate_policy set chat_rate_limit = '2/minute'"
            )
        finally:
            await admin.close()
        yield cluster
    finally:
        await asyncio.to_thread(cluster.destroy)


async def test_postgres_transport_leaks_nothing_even_through_an_outage(
    server_factory: StartServer, http: aiohttp.ClientSession
) -> None:
    password = secret_password()
    dsn_password = "dsn-secret-" + secrets.token_urlsafe(16)
    async with own_cluster() as cluster:
        # trust authentication ignores the password, so it can be anything: only its trail matters
        dsn = f"postgresql://authenticator:{dsn_password}@127.0.0.1:{cluster.port}/postgres"
        server = await server_factory(
            env={"DATABASE_URL": dsn, "SESSION_PASSWORD": password,
                 "BEVSESSION_LOG_LEVEL": "debug"},
            database=False, password=None,
        )  # fmt: skip
        rec = Recorder()
        await scenario(http, server, rec)

        # the database goes away and comes back, while a known visitor keeps coming
        v = Visitor(http, server)
        rec.keep("before outage", await v.post("/api/chat", {"message": "hello"}))
        await asyncio.to_thread(cluster.stop)
        rec.keep("down: chat", await v.post("/api/chat", {"message": "while down"}))
        rec.keep("down: read", await v.get("/api/session"))
        rec.keep("down: history", await v.get("/api/chat/history"))
        rec.keep("down: readyz", await v.get("/readyz"))
        rec.keep("down: newcomer", await Visitor(http, server).get("/api/session"))
        await asyncio.to_thread(cluster.start)
        deadline = time.monotonic() + 20
        while (await v.get("/readyz")).status != 200:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        rec.keep("after outage", await v.post("/api/chat", {"message": "back again"}))
        assert [r.status for w, r in rec.replies if w.startswith("down: ")][:1] == [503]

        assert_nothing_leaked(
            server, rec,
            {"session password": password, "DSN password": dsn_password},
        )  # fmt: skip


@pytest.fixture
async def endpoint_db(pg: LocalPostgres, template_db: str) -> AsyncIterator[str]:
    name = await pg.create_database(template_db)
    admin = await asyncpg.connect(pg.dsn(name))
    try:
        await admin.execute("update bevsession.chat_rate_policy set chat_rate_limit = '2/minute'")
    finally:
        await admin.close()
    try:
        yield name
    finally:
        await pg.drop_database(name)


async def test_supabase_transport_leaks_no_key_no_token(
    pg: LocalPostgres,
    endpoint_db: str,
    server_factory: StartServer,
    http: aiohttp.ClientSession,
) -> None:
    keys = Keys.generate()
    running = await run_endpoint(endpoint_config(pg, endpoint_db, keys))
    try:
        password = secret_password()
        server = await server_factory(
            env={
                "BEVSESSION_TRANSPORT": "supabase",
                "SUPABASE_URL": running.url,
                "SUPABASE_SERVICE_ROLE_KEY": keys.service_key,
                "SUPABASE_ANON_KEY": keys.anon_key,
                "SUPABASE_JWT_SECRET": keys.jwt_secret,
                "SESSION_PASSWORD": password,
                "BEVSESSION_LOG_LEVEL": "debug",
            },
            database=False, password=None,
        )  # fmt: skip
        rec = Recorder()
        await scenario(http, server, rec)
        assert_nothing_leaked(
            server, rec,
            {
                "session password": password,
                "JWT secret": keys.jwt_secret,
                "service key": keys.service_key,
                "anon key": keys.anon_key,
            },
        )  # fmt: skip
    finally:
        await running.close()


async def test_supabase_transport_with_current_keys_leaks_nothing(
    pg: LocalPostgres,
    endpoint_db: str,
    server_factory: StartServer,
    http: aiohttp.ClientSession,
) -> None:
    keys = Keys.generate()
    running = await run_endpoint(endpoint_config(pg, endpoint_db, keys, "supabase-keys"))
    try:
        password = secret_password()
        jwk = keys.es256.private_jwk()
        server = await server_factory(
            env={
                "BEVSESSION_TRANSPORT": "supabase",
                "SUPABASE_URL": running.url,
                "SUPABASE_SECRET_KEY": keys.secret_key,
                "SUPABASE_PUBLISHABLE_KEY": keys.publishable_key,
                "SUPABASE_JWT_SIGNING_KEY": json.dumps(jwk),
                "SESSION_PASSWORD": password,
                "BEVSESSION_LOG_LEVEL": "debug",
            },
            database=False, password=None,
        )  # fmt: skip
        rec = Recorder()
        await scenario(http, server, rec)
        assert "supabase transport: current keys, visitor tokens signed with ES256" in (
            server.log_text()
        )
        assert_nothing_leaked(
            server, rec,
            {
                "session password": password,
                "secret key": keys.secret_key,
                "publishable key": keys.publishable_key,
                "signing key": jwk["d"],
            },
        )  # fmt: skip
    finally:
        await running.close()


def test_the_log_filter_masks_what_a_library_might_log() -> None:
    """The filter of every server log handler, on the texts that could carry a secret."""
    import logging

    from bevsession_edge.logs import RedactSecrets

    seal = "Fe26.2*1*" + "a" * 64 + "*iv*ct*1800000000000*" + "b" * 64 + "*mac~2"
    texts = {
        "dsn": "connect to postgresql://authenticator:hunter2@db:5432/x failed",
        "pair": "password=hunter2 host=db",
        "jwt": "token eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJl",
        "seal": f"cookie {COOKIE_NAME}={seal}; other=1",
        "sb key": "apikey sb_secret_hunter2 and sb_publishable_hunter2",
        "pem": "key -----BEGIN PRIVATE KEY-----\nhunter2\n-----END PRIVATE KEY----- end",
        "jwk": '{"kty": "EC", "d": "hunter2", "x": "pub"} and {\'d\': \'hunter2\'}',
    }
    for name, text in texts.items():
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", (text,), None)
        assert RedactSecrets().filter(record) is True
        out = record.getMessage()
        for leak in ("hunter2", "eyJyb2xl", "Fe26.2*"):
            assert leak not in out, (name, out)
    try:
        raise RuntimeError(f"boom with {seal}")
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    RedactSecrets().filter(record)
    assert record.exc_text and "Fe26.2*" not in record.exc_text and "boom" in record.exc_text
