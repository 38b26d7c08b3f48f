"""Fixtures shared by the RPC-layer tests: keys, the test PostgREST endpoint, both transports.

``transport`` is parametrised over
- ``postgres``: asyncpg to this test's database;
- ``supabase``: supabase-py through tests/postgrest_endpoint.py, on the same database, with a
  project's legacy keys (anon / service_role JWT keys, visitor tokens HS256 with the JWT secret);
- ``supabase-keys``: the same with a current project's keys (``sb_publishable_…`` /
  ``sb_secret_…``, visitor tokens ES256 with an imported signing key; the endpoint has no legacy
  secret at all, as a project that revoked it);
- ``supabase-live`` and ``supabase-live-keys``: a real Supabase project, with its legacy keys
  (SUPABASE_URL, SUPABASE_ANON_KEY, SUPABASE_SERVICE_ROLE_KEY, SUPABASE_JWT_SECRET) or its
  current ones (SUPABASE_URL, SUPABASE_PUBLISHABLE_KEY, SUPABASE_SECRET_KEY,
  SUPABASE_JWT_SIGNING_KEY and, unless the JWK has its kid, SUPABASE_JWT_SIGNING_KEY_ID) —
  each skipped, saying which variables are missing, when they are not set.

The root conftest loads these fixtures (``pytest_plugins``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from bevsession.local_postgres import LocalPostgres
from bevsession.service import SessionService
from bevsession.supabase_keys import SigningKey, SupabaseKeys
from bevsession.tokens import TokenMinter
from bevsession.transports.base import Transport
from bevsession.transports.postgres import PostgresTransport
from bevsession.transports.supabase import SupabaseTransport
from postgrest_endpoint import EndpointConfig, RunningEndpoint, run_endpoint

__all__ = [
    "LOCAL_TRANSPORTS",
    "SUPABASE_KINDS",
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

LIVE_ENV = {
    "supabase-live": (
        "SUPABASE_URL", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_JWT_SECRET",
    ),
    "supabase-live-keys": (
        "SUPABASE_URL", "SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY",
        "SUPABASE_JWT_SIGNING_KEY",
    ),
}  # fmt: skip
OPTIONAL_LIVE_ENV = {"supabase-live-keys": ("SUPABASE_JWT_SIGNING_KEY_ID",)}
TRANSPORTS = (
    "postgres",
    "supabase",
    "supabase-keys",
    pytest.param("supabase-live", marks=pytest.mark.supabase),
    pytest.param("supabase-live-keys", marks=pytest.mark.supabase),
)
LOCAL_TRANSPORTS = ("postgres", "supabase", "supabase-keys")
SUPABASE_KINDS = ("supabase", "supabase-keys")  # the endpoint's two kinds of project


@dataclass(frozen=True)
class Keys:
    """A project's keys of both generations.

    Legacy: the JWT secret and the anon / service_role API keys signed with it. Current: a
    publishable and a secret API key (opaque), and private keys imported as JWT signing keys
    (``signing_key`` ES256, the default; ``rs256_key`` RS256). ``auth_key`` is the project's
    own key (ES256), with which Supabase Auth signs its users' access tokens; its JWKS lists it.
    """

    jwt_secret: str
    anon_key: str
    service_key: str
    publishable_key: str = ""
    secret_key: str = ""
    signing_key: SigningKey | None = None
    rs256_key: SigningKey | None = None
    auth_key: SigningKey | None = None

    @classmethod
    def generate(cls) -> Keys:
        secret = secrets.token_urlsafe(40)
        now = int(time.time())

        def key(role: str) -> str:
            claims = {"iss": "supabase", "role": role, "iat": now, "exp": now + 10 * 365 * 86400}
            return jwt.encode(claims, secret, algorithm="HS256")

        return cls(
            secret, key("anon"), key("service_role"),
            publishable_key="sb_publishable_" + secrets.token_urlsafe(24),
            secret_key="sb_secret_" + secrets.token_urlsafe(24),
            signing_key=SigningKey.generate("ES256"),
            rs256_key=SigningKey.generate("RS256"),
            auth_key=SigningKey.generate("ES256"),
        )  # fmt: skip

    @property
    def es256(self) -> SigningKey:
        assert self.signing_key is not None
        return self.signing_key

    @property
    def rs256(self) -> SigningKey:
        assert self.rs256_key is not None
        return self.rs256_key

    def public_jwks(self) -> tuple[dict[str, object], ...]:
        """What the project's JWKS lists for its imported signing keys."""
        return tuple(
            k.public_jwk()
            for k in (self.signing_key, self.rs256_key, self.auth_key)
            if k is not None
        )

    def access_token(
        self, user_id: object, *, key: SigningKey | str | None = None, **claims: object
    ) -> str:
        """A Supabase Auth access token for *user_id*, as Auth issues one: role and aud
        ``authenticated``, one hour; signed with ``auth_key`` (ES256), or another
        :class:`SigningKey`, or HS256 with a secret given as *key*; *claims* override (``None``
        removes one)."""
        now = int(time.time())
        payload: dict[str, object] = {
            "iss": "supabase/auth/v1", "sub": str(user_id), "aud": "authenticated",
            "role": "authenticated", "iat": now, "exp": now + 3600, "session_id": "auth-session",
            "is_anonymous": False, "email": "visitor@example.com",
        }  # fmt: skip
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        signer = self.auth_key if key is None else key
        if isinstance(signer, str):
            return jwt.encode(payload, signer, algorithm="HS256")
        assert signer is not None
        return signer.sign(payload)

    def transport(self, kind: str, url: str, **kwargs: object) -> SupabaseTransport:
        """A supabase transport on *url* with this project's keys of *kind*: ``supabase``
        (legacy) or ``supabase-keys`` (current: ``signing_key=`` may pick another key)."""
        options: dict[str, Any] = dict(kwargs)
        if kind == "supabase":
            options.setdefault("minter", TokenMinter(self.jwt_secret))
            return SupabaseTransport(
                url, anon_key=self.anon_key, service_key=self.service_key, **options
            )
        assert kind == "supabase-keys", kind
        if "minter" not in options:
            options.setdefault("signing_key", self.es256)
        return SupabaseTransport(
            url, anon_key=self.publishable_key, service_key=self.secret_key, **options
        )


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys.generate()


def endpoint_config(
    pg: LocalPostgres, db_name: str, keys: Keys, kind: str = "supabase"
) -> EndpointConfig:
    """The endpoint as a project of *kind*: ``supabase`` — one migrating, which has its legacy
    secret and keys and already the current ones; ``supabase-keys`` — one with only the
    current keys (no legacy secret: HS256 tokens and legacy keys are refused)."""
    current = {
        "publishable_key": keys.publishable_key,
        "secret_key": keys.secret_key,
        "signing_keys": keys.public_jwks(),
    }
    if kind == "supabase-keys":
        return EndpointConfig(
            dsn=pg.dsn(db_name, user="authenticator"), jwt_secret=None, anon_key=None,
            service_key=None, **current,
        )  # fmt: skip
    assert kind == "supabase", kind
    return EndpointConfig(
        dsn=pg.dsn(db_name, user="authenticator"),
        jwt_secret=keys.jwt_secret,
        anon_key=keys.anon_key,
        service_key=keys.service_key,
        **current,
    )


@pytest.fixture
async def endpoint(pg: LocalPostgres, db_name: str, keys: Keys) -> AsyncIterator[RunningEndpoint]:
    """The PostgREST-compatible endpoint on this test's database."""
    running = await run_endpoint(endpoint_config(pg, db_name, keys))
    try:
        yield running
    finally:
        await running.close()


def live_settings(kind: str = "supabase-live") -> dict[str, str]:
    """The live Supabase settings of *kind*, or a skip naming what is missing."""
    missing = [name for name in LIVE_ENV[kind] if not os.environ.get(name)]
    if missing:
        pytest.skip(f"{kind}: set {', '.join(missing)} to run against a real Supabase stack")
    names = (*LIVE_ENV[kind], *OPTIONAL_LIVE_ENV.get(kind, ()))
    return {name: os.environ[name] for name in names if os.environ.get(name)}


@contextlib.asynccontextmanager
async def open_transport(
    kind: str, pg: LocalPostgres, db_name: str | None, keys: Keys
) -> AsyncIterator[Transport]:
    """Transport *kind* on database *db_name* (local kinds) or the live stack."""
    opened: Transport
    running: RunningEndpoint | None = None
    if kind in LIVE_ENV:
        env = live_settings(kind)  # only this generation's variables reach the resolver
        opened = SupabaseTransport.from_keys(env["SUPABASE_URL"], SupabaseKeys.from_env(env))
    elif kind == "postgres":
        assert db_name is not None
        opened = await PostgresTransport.connect(pg.dsn(db_name, user="authenticator"))
    elif kind in SUPABASE_KINDS:
        assert db_name is not None
        running = await run_endpoint(endpoint_config(pg, db_name, keys, kind))
        opened = keys.transport(kind, running.url)
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
    if kind in LIVE_ENV:
        live_settings(kind)
        async with open_transport(kind, pg, None, keys) as opened:
            yield opened
        return
    name = await pg.create_database(template_db)
    try:
        async with open_transport(kind, pg, name, keys) as opened:
            yield opened
    finally:
        await pg.drop_database(name)


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
