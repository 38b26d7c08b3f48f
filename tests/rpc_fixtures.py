"""Fixtures shared by the RPC-layer tests: keys, the test PostgREST endpoint, both transports.

``transport`` is parametrised over ``postgres`` (asyncpg to this test's database), ``supabase``
(supabase-py through tests/postgrest_endpoint.py, on the same database) and ``supabase-live``
(a real Supabase stack from SUPABASE_URL, SUPABASE_ANON_KEY, SUPABASE_SERVICE_ROLE_KEY and
SUPABASE_JWT_SECRET — skipped, saying so, when they are not set).

Test modules import these names explicitly (``from rpc_fixtures import …``) until the root
conftest lists this module in ``pytest_plugins``.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import jwt
import pytest

from bevsession.local_postgres import LocalPostgres
from bevsession.service import SessionService
from bevsession.tokens import TokenMinter
from bevsession.transports.base import Transport
from bevsession.transports.postgres import PostgresTransport
from bevsession.transports.supabase import SupabaseTransport
from postgrest_endpoint import EndpointConfig, RunningEndpoint, run_endpoint

LIVE_ENV = ("SUPABASE_URL", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_JWT_SECRET")
TRANSPORTS = (
    "postgres",
    "supabase",
    pytest.param("supabase-live", marks=pytest.mark.supabase),
)
LOCAL_TRANSPORTS = ("postgres", "supabase")


@dataclass(frozen=True)
class Keys:
    """A project's JWT secret and the legacy anon / service_role API keys signed with it."""

    jwt_secret: str
    anon_key: str
    service_key: str

    @classmethod
    def generate(cls) -> Keys:
        secret = secrets.token_urlsafe(40)
        now = int(time.time())

        def key(role: str) -> str:
            claims = {"iss": "supabase", "role": role, "iat": now, "exp": now + 10 * 365 * 86400}
            return jwt.encode(claims, secret, algorithm="HS256")

        return cls(secret, key("anon"), key("service_role"))


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys.generate()


def endpoint_config(pg: LocalPostgres, db_name: str, keys: Keys) -> EndpointConfig:
    return EndpointConfig(
        dsn=pg.dsn(db_name, user="authenticator"),
        jwt_secret=keys.jwt_secret,
        anon_key=keys.anon_key,
        service_key=keys.service_key,
    )


@pytest.fixture
async def endpoint(pg: LocalPostgres, db_name: str, keys: Keys) -> AsyncIterator[RunningEndpoint]:
    """The PostgREST-compatible endpoint on this test's database."""
    running = await run_endpoint(endpoint_config(pg, db_name, keys))
    try:
        yield running
    finally:
        await running.close()


def live_settings() -> dict[str, str]:
    """The live Supabase settings, or a skip naming what is missing."""
    missing = [name for name in LIVE_ENV if not os.environ.get(name)]
    if missing:
        pytest.skip(f"supabase-live: set {', '.join(missing)} to run against a real Supabase stack")
    return {name: os.environ[name] for name in LIVE_ENV}


async def open_transport(kind: str, request: pytest.FixtureRequest) -> Transport:
    """Open the transport *kind*; local kinds use this test's database."""
    if kind == "supabase-live":
        env = live_settings()
        return await SupabaseTransport.connect(
            env["SUPABASE_URL"],
            anon_key=env["SUPABASE_ANON_KEY"],
            service_key=env["SUPABASE_SERVICE_ROLE_KEY"],
            jwt_secret=env["SUPABASE_JWT_SECRET"],
        )
    if kind == "postgres":
        pg: LocalPostgres = request.getfixturevalue("pg")
        db_name: str = request.getfixturevalue("db_name")
        return await PostgresTransport.connect(pg.dsn(db_name, user="authenticator"))
    if kind == "supabase":
        running: RunningEndpoint = request.getfixturevalue("endpoint")
        test_keys: Keys = request.getfixturevalue("keys")
        return await SupabaseTransport.connect(
            running.url,
            anon_key=test_keys.anon_key,
            service_key=test_keys.service_key,
            minter=TokenMinter(test_keys.jwt_secret),
        )
    raise ValueError(kind)


@pytest.fixture(params=TRANSPORTS)
async def transport(request: pytest.FixtureRequest) -> AsyncIterator[Transport]:
    """Each transport in turn, connected to this test's database (or the live stack)."""
    opened = await open_transport(request.param, request)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(params=LOCAL_TRANSPORTS)
async def local_transport(request: pytest.FixtureRequest) -> AsyncIterator[Transport]:
    """Both transports on this test's local database (for tests that inspect the tables)."""
    opened = await open_transport(request.param, request)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def service(transport: Transport) -> SessionService:
    return SessionService(transport)


@pytest.fixture
def local_service(local_transport: Transport) -> SessionService:
    return SessionService(local_transport)


@pytest.fixture
def is_live(transport: Transport, request: pytest.FixtureRequest) -> bool:
    return "supabase-live" in request.node.callspec.id
