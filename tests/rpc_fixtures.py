"""Fixtures shared by the RPC-layer tests: keys, the test PostgREST endpoint, both transports.

``transport`` is parametrised over ``postgres`` (asyncpg to this test's database), ``supabase``
(supabase-py through tests/postgrest_endpoint.py, on the same database) and ``supabase-live``
(a real Supabase stack from SUPABASE_URL, SUPABASE_ANON_KEY, SUPABASE_SERVICE_ROLE_KEY and
SUPABASE_JWT_SECRET — skipped, saying so, when they are not set).

The root conftest loads these fixtures (``pytest_plugins``).
"""

from __future__ import annotations

import contextlib
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
from conftest import create_database, drop_database
from postgrest_endpoint import EndpointConfig, RunningEndpoint, run_endpoint

__all__ = [
    "LOCAL_TRANSPORTS",
    "TRANSPORTS",
    "Keys",
    "endpoint",
    "endpoint_config",
    "keys",
    "live_settings",
    "local_service",
    "local_transport",
    "open_transport",
    "service",
    "transport",
]

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


@contextlib.asynccontextmanager
async def open_transport(
    kind: str, pg: LocalPostgres, db_name: str | None, keys: Keys
) -> AsyncIterator[Transport]:
    """Transport *kind* on database *db_name* (local kinds) or the live stack."""
    opened: Transport
    running: RunningEndpoint | None = None
    if kind == "supabase-live":
        env = live_settings()
        opened = await SupabaseTransport.connect(
            env["SUPABASE_URL"],
            anon_key=env["SUPABASE_ANON_KEY"],
            service_key=env["SUPABASE_SERVICE_ROLE_KEY"],
            jwt_secret=env["SUPABASE_JWT_SECRET"],
        )
    elif kind == "postgres":
        assert db_name is not None
        opened = await PostgresTransport.connect(pg.dsn(db_name, user="authenticator"))
    elif kind == "supabase":
        assert db_name is not None
        running = await run_endpoint(endpoint_config(pg, db_name, keys))
        opened = await SupabaseTransport.connect(
            running.url,
            anon_key=keys.anon_key,
            service_key=keys.service_key,
            minter=TokenMinter(keys.jwt_secret),
        )
    else:
        raise ValueError(kind)
    try:
        yield opened
    finally:
        await opened.close()
        if running is not None:
            await running.close()


@pytest.fixture(params=TRANSPORTS)
async def transport(
    request: pytest.FixtureRequest, pg: LocalPostgres, template_db: str, keys: Keys
) -> AsyncIterator[Transport]:
    """Each transport in turn: on a fresh local database, or on the live stack."""
    kind: str = request.param
    if kind == "supabase-live":
        live_settings()
        async with open_transport(kind, pg, None, keys) as opened:
            yield opened
        return
    name = await create_database(pg, template_db)
    try:
        async with open_transport(kind, pg, name, keys) as opened:
            yield opened
    finally:
        await drop_database(pg, name)


@pytest.fixture(params=LOCAL_TRANSPORTS)
async def local_transport(
    request: pytest.FixtureRequest, pg: LocalPostgres, db_name: str, keys: Keys
) -> AsyncIterator[Transport]:
    """Both transports on this test's database (``db_dsn``), for tests that inspect tables."""
    async with open_transport(request.param, pg, db_name, keys) as opened:
        yield opened


@pytest.fixture
def service(transport: Transport) -> SessionService:
    return SessionService(transport)


@pytest.fixture
def local_service(local_transport: Transport) -> SessionService:
    return SessionService(local_transport)
