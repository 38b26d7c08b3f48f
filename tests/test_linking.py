"""Visitors who sign in: ``POST /api/session/link`` on the real app, on every local transport.

The app (``create_app``) runs in-process on 127.0.0.1 over this test's real PostgreSQL, once per
transport, each configured as a deployment would be:

- ``postgres``: asyncpg; access tokens verified against ``SUPABASE_JWKS`` (the project's public
  keys, given as JSON) and, HS256, ``SUPABASE_JWT_SECRET``;
- ``supabase`` (a project that still has its legacy keys): supabase-py through the PostgREST
  endpoint; the JWKS fetched from ``<SUPABASE_URL>/auth/v1/.well-known/jwks.json`` (served by
  the endpoint) and HS256 with ``SUPABASE_JWT_SECRET``;
- ``supabase-keys`` (current keys only, no legacy secret): the JWKS fetched; HS256 refused.

Access tokens are signed as Supabase Auth signs them, with real keys generated for the run
(``Keys.auth_key``, ES256; the RS256 key; the legacy secret), and forged ones with keys the
project never published. Every refusal is checked against the database: nothing changed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization

from bevsession.errors import Conflict, InvalidInput, NoSessionIdentity, SessionRevoked
from bevsession.local_postgres import LocalPostgres
from bevsession.service import SessionService
from bevsession.supabase_keys import SigningKey
from bevsession.tokens import TokenMinter
from bevsession.transports.base import Transport, Visitor
from bevsession.transports.postgres import PostgresTransport
from bevsession_edge.app import create_app
from bevsession_edge.config import load_settings
from bevsession_edge.keys import ACCOUNTS
from e2e_server import COOKIE_NAME, PASSWORD
from postgrest_endpoint import RunningEndpoint, run_endpoint
from rpc_fixtures import LOCAL_TRANSPORTS, SUPABASE_KINDS, Keys, endpoint_config

CONFIG_VARS = (
    "SESSION_PASSWORDS", "DATABASE_URL", "SUPABASE_URL", "SUPABASE_ANON_KEY",
    "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_JWT_SECRET", "SUPABASE_PUBLISHABLE_KEY",
    "SUPABASE_SECRET_KEY", "SUPABASE_JWT_SIGNING_KEY", "SUPABASE_JWT_SIGNING_KEY_ID",
    "SUPABASE_JWKS", "BEVSESSION_TRANSPORT", "SESSION_COOKIE_NAME", "SESSION_TTL",
    "BEVSESSION_PASSWORD_GENERATED",
)  # fmt: skip
LINK = "/api/session/link"


# --- the app, per transport ------------------------------------------------------------------
class Browser:
    """One browser: keeps the session cookie by hand, as a browser would."""

    def __init__(self, http: TestClient[Any, Any]) -> None:
        self.http = http
        self.cookie: str | None = None

    async def request(
        self, method: str, path: str, *, body: Any = None, headers: Mapping[str, str] = {}
    ) -> tuple[int, Any, Any]:
        send = dict(headers)
        if self.cookie is not None:
            send["Cookie"] = f"{COOKIE_NAME}={self.cookie}"
        async with self.http.request(method, path, json=body, headers=send) as resp:
            text = await resp.text()
            morsel = resp.cookies.get(COOKIE_NAME)
            if morsel is not None:
                self.cookie = morsel.value or None
            data = json.loads(text) if text else None
            return resp.status, data, resp.headers

    async def chat(self, message: str) -> dict[str, Any]:
        status, body, _ = await self.request("POST", "/api/chat", body={"message": message})
        assert status == 200, body
        return dict(body)

    async def session(self) -> dict[str, Any]:
        status, body, _ = await self.request("GET", "/api/session")
        assert status == 200, body
        return dict(body)

    async def link(self, token: str | None, *, scheme: str = "Bearer") -> tuple[int, Any, Any]:
        headers = {} if token is None else {"Authorization": f"{scheme} {token}".rstrip()}
        return await self.request("POST", LINK, headers=headers)


@dataclass
class Site:
    """The running app of one transport, and what a test needs to look behind it."""

    kind: str
    keys: Keys
    http: TestClient[Any, Any]
    admin_dsn: str
    endpoint: RunningEndpoint | None = None
    browsers: list[Browser] = field(default_factory=list)

    def browser(self) -> Browser:
        browser = Browser(self.http)
        self.browsers.append(browser)
        return browser

    @property
    def has_legacy_secret(self) -> bool:
        return self.kind in ("postgres", "supabase")

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(query, *args)
            return rows
        finally:
            await conn.close()

    async def accounts(self, session_id: str) -> dict[str, list[str | None]]:
        """The user_id of every row of one session, per table."""
        found: dict[str, list[str | None]] = {}
        for table, key, order in (
            ("sessions", "id", "id"), ("user_personas", "session_id", "id"),
            ("conversation_history", "session_id", "seq"), ("persona_signals", "session_id", "id"),
        ):  # fmt: skip
            rows = await self.fetch(
                f"select user_id::text from bevsession.{table} where {key} = $1 order by {order}",  # noqa: S608
                uuid.UUID(session_id),
            )
            found[table] = [r["user_id"] for r in rows]
        return found

    async def snapshot(self) -> list[str]:
        """Every row of the four tables (sessions without last_activity_at, which a read may
        move): what "nothing changed" is compared with."""
        rows = await self.fetch(
            """
            select 's ' || (to_jsonb(s) - 'last_activity_at')::text as row
            from bevsession.sessions s
            union all select 'p ' || to_jsonb(p)::text from bevsession.user_personas p
            union all select 'm ' || to_jsonb(m)::text from bevsession.conversation_history m
            union all select 'g ' || to_jsonb(g)::text from bevsession.persona_signals g
            order by 1
            """
        )
        return [r["row"] for r in rows]


def settings_for(kind: str, keys: Keys, dsn: str, url: str | None, **extra: str) -> dict[str, str]:
    base = {"SESSION_PASSWORD": PASSWORD, "BEVSESSION_ENV": "development"}
    if kind == "postgres+url":
        assert url is not None
        return {**base, "DATABASE_URL": dsn, "SUPABASE_URL": url, **extra}
    if kind == "postgres":
        jwks = json.dumps({"keys": list(keys.public_jwks())})
        return {**base, "DATABASE_URL": dsn, "SUPABASE_JWKS": jwks,
                "SUPABASE_JWT_SECRET": keys.jwt_secret, **extra}  # fmt: skip
    assert url is not None
    common = {**base, "BEVSESSION_TRANSPORT": "supabase", "SUPABASE_URL": url}
    if kind == "supabase":
        return {**common, "SUPABASE_ANON_KEY": keys.anon_key,
                "SUPABASE_SERVICE_ROLE_KEY": keys.service_key,
                "SUPABASE_JWT_SECRET": keys.jwt_secret, **extra}  # fmt: skip
    return {**common, "SUPABASE_PUBLISHABLE_KEY": keys.publishable_key,
            "SUPABASE_SECRET_KEY": keys.secret_key,
            "SUPABASE_JWT_SIGNING_KEY": json.dumps(keys.es256.private_jwk()), **extra}  # fmt: skip


@contextlib.asynccontextmanager
async def running(
    kind: str,
    pg: LocalPostgres,
    db_name: str,
    keys: Keys,
    monkeypatch: pytest.MonkeyPatch,
    **extra: str,
) -> AsyncIterator[Site]:
    for name in CONFIG_VARS:
        monkeypatch.delenv(name, raising=False)
    dsn = pg.dsn(db_name, user="authenticator")
    endpoint: RunningEndpoint | None = None
    transport: Transport
    if kind == "postgres":
        transport = await PostgresTransport.connect(dsn)
    elif kind == "postgres+url":  # the endpoint serves only the JWKS here
        endpoint = await run_endpoint(endpoint_config(pg, db_name, keys, "supabase-keys"))
        transport = await PostgresTransport.connect(dsn)
    else:
        endpoint = await run_endpoint(endpoint_config(pg, db_name, keys, kind))
        transport = keys.transport(kind, endpoint.url)
    try:
        env = settings_for(kind, keys, dsn, endpoint.url if endpoint else None, **extra)
        app = create_app(load_settings(**env), transport=transport)
        server = TestServer(app, host="127.0.0.1")
        async with TestClient(server, cookie_jar=aiohttp.DummyCookieJar()) as http:
            yield Site(kind, keys, http, pg.dsn(db_name), endpoint)
    finally:
        await transport.close()
        if endpoint is not None:
            await endpoint.close()


@pytest.fixture(params=LOCAL_TRANSPORTS)
async def site(
    request: pytest.FixtureRequest,
    pg: LocalPostgres,
    db_name: str,
    keys: Keys,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Site]:
    async with running(request.param, pg, db_name, keys, monkeypatch) as opened:
        yield opened


def every_account(stored: Mapping[str, list[str | None]]) -> set[str | None]:
    """The distinct user_ids of :meth:`Site.accounts`' rows."""
    return {account for accounts in stored.values() for account in accounts}


# --- tokens ------------------------------------------------------------------------------------
def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hs256_with(secret: bytes, header: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
    """An HS256 JWT made by hand (PyJWT refuses to use a public key as an HMAC secret)."""
    signing_input = ".".join(
        _b64(json.dumps(dict(part), separators=(",", ":")).encode()) for part in (header, payload)
    )
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def unsigned(header: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
    """A JWT with no signature (alg "none")."""

    def part(value: Mapping[str, Any]) -> str:
        return _b64(json.dumps(dict(value), separators=(",", ":")).encode())

    return f"{part(header)}.{part(payload)}."


def claims_for(user_id: uuid.UUID, **override: Any) -> dict[str, Any]:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": "supabase/auth/v1", "sub": str(user_id), "aud": "authenticated",
        "role": "authenticated", "iat": now, "exp": now + 3600,
    }  # fmt: skip
    payload.update(override)
    return payload


def refused_tokens(keys: Keys, user_id: uuid.UUID) -> dict[str, str]:
    """Access tokens that must be refused (401), by what is wrong with them."""
    auth = keys.auth_key
    assert auth is not None
    now = int(time.time())
    impostor = SigningKey.generate("ES256")  # never published in the project's JWKS
    forged = SigningKey("ES256", auth.key_id, impostor.private_key)  # …under the real kid
    public_pem = auth.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    own_visitor_token = TokenMinter(signing_key=keys.es256).visitor_token(uuid.uuid4())
    return {
        "expired": keys.access_token(user_id, iat=now - 7200, exp=now - 120),
        "not yet valid": keys.access_token(user_id, nbf=now + 600),
        "forged (another key under the project's kid)": forged.sign(claims_for(user_id)),
        "unknown kid": impostor.sign(claims_for(user_id)),
        "alg none": unsigned({"alg": "none", "typ": "JWT"}, claims_for(user_id)),
        "alg none with the project's kid": unsigned(
            {"alg": "none", "typ": "JWT", "kid": auth.key_id}, claims_for(user_id)
        ),
        "HS256 signed with the public key's PEM (algorithm confusion)": hs256_with(
            public_pem, {"alg": "HS256", "typ": "JWT", "kid": auth.key_id}, claims_for(user_id)
        ),
        "HS256 signed with the public JWK (algorithm confusion)": hs256_with(
            json.dumps(auth.public_jwk()).encode(),
            {"alg": "HS256", "typ": "JWT"},
            claims_for(user_id),
        ),
        "HS256 with a wrong secret": keys.access_token(user_id, key="x" * 48),
        "HS384": jwt.encode(claims_for(user_id), keys.jwt_secret, algorithm="HS384"),
        "RS256 header on the ES256 key's kid": jwt.encode(
            claims_for(user_id),
            keys.rs256.private_key,
            algorithm="RS256",
            headers={"kid": auth.key_id},
        ),
        "another audience": keys.access_token(user_id, aud="somewhere-else"),
        "no audience": keys.access_token(user_id, aud=None),
        "no sub": keys.access_token(user_id, sub=None),
        "sub is not a uuid": keys.access_token(user_id, sub="visitor@example.com"),
        "role anon": keys.access_token(user_id, role="anon"),
        "role service_role": keys.access_token(user_id, role="service_role"),
        "no exp": keys.access_token(user_id, exp=None),
        "this server's own per-session token": own_visitor_token,
        "the project's legacy anon key": keys.anon_key,
        "the project's legacy service_role key": keys.service_key,
        "a publishable key": keys.publishable_key,
        "not a JWT": "not-a-jwt",
        "a JWT with a bad signature": keys.access_token(user_id)[:-6] + "AAAAAA",
        "a truncated JWT": keys.access_token(user_id).rsplit(".", 1)[0],
    }


# --- linking ------------------------------------------------------------------------------------
async def test_a_visitor_who_signs_in_links_the_session_and_its_history(site: Site) -> None:
    user = uuid.uuid4()
    browser = site.browser()
    await browser.chat("I run sales at a craft brewery and we need to prove ROI")
    await browser.chat("we are a distributor too")
    before = await browser.session()
    assert before["userId"] is None
    stored = await site.accounts(before["sessionId"])
    assert every_account(stored) == {None}

    status, body, _ = await browser.link(site.keys.access_token(user))
    assert status == 200, body
    assert body["sessionId"] == before["sessionId"] and body["userId"] == str(user)
    stored = await site.accounts(before["sessionId"])
    assert body["linked"] == {
        "sessions": 1, "personas": 1,
        "messages": len(stored["conversation_history"]),
        "signals": len(stored["persona_signals"]),
    }  # fmt: skip
    assert body["linked"]["messages"] == 4 and body["linked"]["signals"] >= 1
    assert every_account(stored) == {str(user)}, stored

    # the cookie keeps working, and shows the account
    after = await browser.session()
    assert after["sessionId"] == before["sessionId"] and after["userId"] == str(user)
    await browser.chat("one more question about compliance")
    stored = await site.accounts(before["sessionId"])
    assert len(stored["conversation_history"]) == 6
    assert every_account(stored) == {str(user)}, "rows written after linking inherit it"

    # linking again with the same account is a no-op
    status, body, _ = await browser.link(site.keys.access_token(user))
    assert status == 200, body
    assert body["linked"] == {"sessions": 0, "personas": 0, "messages": 0, "signals": 0}


async def test_a_first_request_that_links_creates_the_session(site: Site) -> None:
    user = uuid.uuid4()
    browser = site.browser()
    status, body, _ = await browser.link(site.keys.access_token(user))
    assert status == 200, body
    assert body["linked"] == {"sessions": 1, "personas": 1, "messages": 0, "signals": 0}
    assert browser.cookie is not None
    summary = await browser.session()
    assert summary["sessionId"] == body["sessionId"] and summary["userId"] == str(user)


async def test_rs256_access_tokens_verify_against_the_jwks(site: Site) -> None:
    user = uuid.uuid4()
    browser = site.browser()
    await browser.chat("hello")
    status, body, _ = await browser.link(site.keys.access_token(user, key=site.keys.rs256))
    assert status == 200, body
    assert body["userId"] == str(user)


async def test_legacy_hs256_access_tokens_need_the_legacy_secret(site: Site) -> None:
    user = uuid.uuid4()
    browser = site.browser()
    await browser.chat("hello")
    summary = await browser.session()
    before = await site.snapshot()
    status, body, headers = await browser.link(
        site.keys.access_token(user, key=site.keys.jwt_secret)
    )
    if site.has_legacy_secret:
        assert status == 200, body
        assert body["userId"] == str(user)
        stored = await site.accounts(summary["sessionId"])
        assert every_account(stored) == {str(user)}
    else:  # a project that revoked its legacy secret: nothing verifies HS256
        assert status == 401, body
        assert body["error"]["code"] == "invalid_token"
        assert "WWW-Authenticate" in headers
        assert await site.snapshot() == before


async def test_sessions_of_several_browsers_link_to_one_account(site: Site) -> None:
    user = uuid.uuid4()
    laptop, phone, tablet = site.browser(), site.browser(), site.browser()
    await laptop.chat("I handle compliance for a mid-sized brewery")
    await phone.chat("me again, from my phone")
    ids = []
    for browser in (laptop, phone, tablet):
        status, body, _ = await browser.link(site.keys.access_token(user))
        assert status == 200, body
        ids.append(body["sessionId"])
    assert len(set(ids)) == 3, "each browser keeps its own session"
    rows = await site.fetch(
        "select id::text from bevsession.sessions where user_id = $1 order by id", user
    )
    assert sorted(ids) == [r["id"] for r in rows]
    for browser, sid in zip((laptop, phone, tablet), ids, strict=True):
        summary = await browser.session()
        assert summary["sessionId"] == sid and summary["userId"] == str(user)
    messages = await site.fetch(
        "select count(*) as n from bevsession.conversation_history where user_id = $1", user
    )
    assert messages[0]["n"] == 4, "both chatting browsers' messages belong to the account"


async def test_another_accounts_token_on_a_linked_session_is_refused(site: Site) -> None:
    owner, intruder = uuid.uuid4(), uuid.uuid4()
    browser = site.browser()
    await browser.chat("I run sales")
    status, _, _ = await browser.link(site.keys.access_token(owner))
    assert status == 200
    before = await site.snapshot()

    status, body, _ = await browser.link(site.keys.access_token(intruder))
    assert status == 401, body
    assert body["error"]["code"] == "linked_to_another_account"
    assert await site.snapshot() == before, "a refused link changes nothing"
    summary = await browser.session()
    assert summary["userId"] == str(owner)
    stored = await site.accounts(summary["sessionId"])
    assert every_account(stored) == {str(owner)}
    assert not await site.fetch("select 1 from bevsession.sessions where user_id = $1", intruder)


async def test_refused_access_tokens_are_401_and_change_nothing(site: Site) -> None:
    user = uuid.uuid4()
    browser = site.browser()
    await browser.chat("I run sales at a craft brewery")
    summary = await browser.session()
    cookie = browser.cookie
    before = await site.snapshot()

    cases: dict[str, tuple[str | None, str]] = {
        name: (token, "Bearer") for name, token in refused_tokens(site.keys, user).items()
    }
    cases["no Authorization header"] = (None, "Bearer")
    cases["an empty Bearer"] = ("", "Bearer")
    cases["Basic credentials"] = ("dXNlcjpwYXNz", "Basic")
    cases["a valid token, but as Basic"] = (site.keys.access_token(user), "Basic")
    if not site.has_legacy_secret:
        cases["HS256 with the right secret, but no legacy secret here"] = (
            site.keys.access_token(user, key=site.keys.jwt_secret), "Bearer"
        )  # fmt: skip
    for name, (token, scheme) in cases.items():
        status, body, headers = await browser.link(token, scheme=scheme)
        assert status == 401, (name, body)
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, name
        assert body["error"]["code"] in ("invalid_token", "missing_token"), (name, body)
        assert headers.get("WWW-Authenticate", "").startswith("Bearer realm="), name
        assert token is None or not token or token not in json.dumps(body), name
        assert browser.cookie == cookie, f"{name}: the cookie was not replaced"
    assert await site.snapshot() == before, "no refused token changed anything"

    # the session is untouched and still works
    again = await browser.session()
    assert again["sessionId"] == summary["sessionId"] and again["userId"] is None
    await browser.chat("still here")

    # a new visitor with a refused token: no session row is created
    count = await site.fetch("select count(*) as n from bevsession.sessions")
    stranger = site.browser()
    for token in refused_tokens(site.keys, user).values():
        status, _, _ = await stranger.link(token)
        assert status == 401
    after = await site.fetch("select count(*) as n from bevsession.sessions")
    assert after[0]["n"] == count[0]["n"]
    assert not await site.fetch("select 1 from bevsession.sessions where user_id = $1", user)


async def test_a_replayed_revoked_cookie_links_a_fresh_session(site: Site) -> None:
    user = uuid.uuid4()
    browser = site.browser()
    await browser.chat("then I log out")
    old_id = (await browser.session())["sessionId"]
    old_cookie = browser.cookie
    status, _, _ = await browser.request("DELETE", "/api/session")
    assert status == 200
    browser.cookie = old_cookie  # a replayed cookie of the revoked session
    status, body, _ = await browser.link(site.keys.access_token(user))
    assert status == 200, body
    assert body["sessionId"] != old_id, "the revoked session is never linked"
    assert body["linked"]["sessions"] == 1
    stored = await site.accounts(old_id)
    assert every_account(stored) == {None}
    assert (await browser.session())["sessionId"] == body["sessionId"]


@pytest.mark.parametrize("kind", ["postgres+url", *SUPABASE_KINDS])
async def test_the_jwks_is_fetched_once_and_cached(
    kind: str, pg: LocalPostgres, db_name: str, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The JWKS of <SUPABASE_URL>/auth/v1/.well-known/jwks.json, on either transport (postgres
    with SUPABASE_URL set for Auth only, as with Supabase Auth in front of your own database)."""
    async with running(kind, pg, db_name, keys, monkeypatch) as site:
        await _fetched_once_and_cached(site)


async def _fetched_once_and_cached(site: Site) -> None:
    assert site.endpoint is not None
    endpoint = site.endpoint.endpoint
    assert endpoint.jwks_requests == 0, "nothing is fetched before a token needs it"
    for _ in range(3):
        status, _, _ = await site.browser().link(site.keys.access_token(uuid.uuid4()))
        assert status == 200
    assert endpoint.jwks_requests == 1
    # made-up kids do not turn requests into fetches
    for _ in range(5):
        status, _, _ = await site.browser().link(
            SigningKey.generate("ES256").sign(claims_for(uuid.uuid4()))
        )
        assert status == 401
    assert endpoint.jwks_requests == 1, "within 30 s of a fetch, an unknown kid fetches nothing"
    verifier = site.http.app[ACCOUNTS]
    assert verifier.fetches == 1


async def test_linking_not_configured_is_501(
    pg: LocalPostgres, db_name: str, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(
        "postgres", pg, db_name, keys, monkeypatch, SUPABASE_JWKS="", SUPABASE_JWT_SECRET=""
    ) as site:
        assert ACCOUNTS not in site.http.app
        browser = site.browser()
        await browser.chat("hello")
        before = await site.snapshot()
        status, body, _ = await browser.link(keys.access_token(uuid.uuid4()))
        assert status == 501, body
        assert body["error"]["code"] == "linking_not_configured"
        assert "SUPABASE_JWKS" in body["error"]["message"]
        assert await site.snapshot() == before


# --- the RPC itself, on every transport (a real Supabase project too, when configured) ---------
async def test_the_service_links_a_session_and_refuses_another_account(
    service: SessionService,
) -> None:
    session_id, account, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    signal = {"signal_type": "role_mention", "signal_text": "I run sales",
              "signal_strength": "strong", "score_updates": {"sales_focus_score": 0.3}}  # fmt: skip
    await service.begin_chat_turn(session_id, "I run sales", signals=[signal])
    await service.finish_chat_turn(session_id, "Welcome.")

    with pytest.raises(NoSessionIdentity) as no_account:
        # the account only ever travels as the claim the service mints, never as an argument
        await service.transport.call("link_session", {}, identity=Visitor(session_id))
    assert no_account.value.code == "PT401" and "no account identity" in no_account.value.message

    linked = await service.link_session(session_id, account)
    assert (linked.session_id, linked.user_id, linked.session.user_id) == (
        session_id, account, account
    )  # fmt: skip
    assert linked.linked.model_dump() == {
        "sessions": 1, "personas": 1, "messages": 2, "signals": 1
    }  # fmt: skip
    assert linked.created is False

    again = await service.link_session(session_id, account)
    assert again.linked.model_dump() == {"sessions": 0, "personas": 0, "messages": 0, "signals": 0}

    with pytest.raises(Conflict) as conflict:
        await service.link_session(session_id, other)
    assert conflict.value.code == "PT409"
    assert "linked to another account" in conflict.value.message
    snap = await service.get_session(session_id, touch=False)
    assert snap.session.user_id == account

    with pytest.raises(InvalidInput, match="user_id: must be a UUID"):
        await service.link_session(session_id, "someone@example.com")
    await service.clear_session(session_id)
    with pytest.raises(SessionRevoked):
        await service.link_session(session_id, account)
