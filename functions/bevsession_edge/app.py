"""Sessions for an aiohttp application: :func:`setup` on one of yours, or :func:`create_app`,
the ready-made edge worker built on it.

Pools and HTTP clients are opened in a cleanup context (and closed there, after in-flight
requests finish on shutdown). Everything a handler needs is typed app state (``web.AppKey``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from bevsession.cookies import MAX_COOKIE_HEADER
from bevsession.service import SessionService
from bevsession.transports.base import Transport
from bevsession.transports.postgres import PostgresTransport
from bevsession.transports.supabase import SupabaseTransport

from .client_limits import CLIENT_LIMITS, ClientLimits, client_limits_middleware
from .config import Settings
from .detection import KeywordSignalDetector, SignalDetector
from .guards import (
    ALLOWED_ORIGINS,
    API_PREFIX,
    METRICS_TOKEN,
    add_security_headers,
    api_guard,
    parse_origins,
)
from .http_errors import json_errors
from .keys import ACCOUNTS, DETECTOR, REPLIER, SERVICE, SESSION_STORE, SETTINGS, TRANSPORT
from .middleware import SESSION_PATHS, SessionPaths, session_middleware, write_cookie
from .rates import GcraLimiter, parse_rate
from .read_cache import CachedSessionStore, ReadCache, touch_flusher
from .replies import ReplyGenerator, TemplateReplyGenerator
from .revocations import RevokedSessions
from .routes import api_routes, worker_routes
from .startup import run_startup_checks
from .store import SessionStore

log = logging.getLogger(__name__)

# Largest request body: a chat message is at most 8000 characters (32 KB of UTF-8) plus JSON.
MAX_BODY_BYTES = 64 * 1024
# Longest header line aiohttp's HTTP parser accepts (its default: 8190 bytes, which a Cookie
# header with iron-session 9's chunks exceeds): four full chunks and a little more, no further.
# The request line keeps aiohttp's 8190 (``max_line_size``). Set through ``handler_args`` so
# every way of serving the app (``bevsession serve``, an AppRunner of your own) gets it.
MAX_HEADER_FIELD_BYTES = MAX_COOKIE_HEADER
# A cached copy is answered only while the database checked it within this many flush
# intervals: one interval, plus as much again for the flush itself to come back.
READ_CACHE_VALIDITY_FLUSHES = 2


async def open_transport(settings: Settings) -> Transport:
    """The transport the settings ask for, connected (fails fast on a wrong DSN or role)."""
    if settings.transport_name() == "supabase":
        assert settings.supabase_url  # checked by Settings, as the keys are
        keys = settings.supabase_keys()
        log.info(
            "supabase transport: %s keys, visitor tokens signed with %s", keys.generation,
            keys.signing_key.algorithm if keys.signing_key else "HS256 (the legacy JWT secret)",
        )  # fmt: skip
        # no service key: the worker's own calls go as session_worker (a minted token)
        return SupabaseTransport.from_keys(settings.supabase_url, keys, service=False)
    assert settings.database_url is not None
    # session_visitor and session_worker only: no service_role pool in a worker
    return await PostgresTransport.connect(settings.database_url.get_secret_value(), service=False)


def setup(
    app: web.Application,
    settings: Settings,
    *,
    transport: Transport | None = None,
    detector: SignalDetector | None = None,
    replier: ReplyGenerator | None = None,
    routes: bool = True,
    api_prefix: str = "/api",
    session_paths: SessionPaths | None = None,
) -> None:
    """Give an aiohttp application of yours these sessions, as ``aiohttp_session.setup(app,
    storage)`` does: the session middleware (after your own middlewares), the cookie writer
    (``on_response_prepare``), the typed state (``SERVICE``, ``SETTINGS``, … in ``keys.py``) and
    the cleanup contexts (the transport's pools, the read cache's flusher).

    Your handlers read and change the visitor's session with ``session_of(request)`` and call
    the database through ``request.app[SERVICE]`` (``sessions.py`` joins the two). *routes*:
    mount the HTTP API (docs/http-api.md) under *api_prefix*, with its Origin guard and JSON
    errors for those paths only. *session_paths*: which requests get a session (default: every
    path but the probes and ``/static/``). *transport*: one you manage yourself (then it is not
    closed here). Call it before the application starts.
    """
    prefix = api_prefix.rstrip("/")
    app[SETTINGS] = settings
    revoked = RevokedSessions(settings.session_ttl)
    # Always the cached store: with SESSION_READ_CACHE_SECONDS=0 it holds no copy, and still
    # reports the reads read_session answered without a touch (one batch per flush interval).
    cache = ReadCache(
        settings.session_read_cache_seconds,
        settings.session_read_cache_entries,
        validity=READ_CACHE_VALIDITY_FLUSHES * settings.session_touch_flush_seconds,
        revoked=revoked,
    )
    store: SessionStore = CachedSessionStore(settings, cache, revoked=revoked)
    app[SESSION_STORE] = store
    app[SESSION_PATHS] = session_paths if session_paths is not None else SessionPaths()
    app[DETECTOR] = detector or KeywordSignalDetector()
    app[REPLIER] = replier or TemplateReplyGenerator()
    app[ALLOWED_ORIGINS] = parse_origins(settings.allowed_origins)
    app[CLIENT_LIMITS] = ClientLimits(
        GcraLimiter(parse_rate(settings.client_session_rate)),
        GcraLimiter(parse_rate(settings.client_chat_rate)),
        settings.trusted_proxy_hops,
        settings.client_address_header,
        chat_path=f"{prefix}/chat",
    )

    async def database(app: web.Application) -> AsyncIterator[None]:
        owned = transport is None
        app[TRANSPORT] = transport if transport is not None else await open_transport(settings)
        app[SERVICE] = SessionService(app[TRANSPORT])
        try:
            await run_startup_checks(app[SERVICE], settings)
        except BaseException:
            if owned:
                await app[TRANSPORT].close()
            raise
        yield
        if owned:
            await app[TRANSPORT].close()

    verifier = settings.account_verifier()
    if verifier is not None:
        app[ACCOUNTS] = verifier
        log.info("linking sessions to accounts: access tokens verified against %s",
                 verifier.describe())  # fmt: skip

        async def close_verifier(app: web.Application) -> None:
            await app[ACCOUNTS].close()

        app.on_cleanup.append(close_verifier)
    elif routes:
        log.info(
            "linking sessions to accounts is not configured (POST %s/session/link answers "
            "501): set SUPABASE_URL, SUPABASE_JWKS or SUPABASE_JWT_SECRET", prefix,
        )  # fmt: skip

    if routes:
        app[API_PREFIX] = f"{prefix}/"
        app.middlewares.append(api_guard)
        app.router.add_routes(
            web.RouteDef(route.method, prefix + route.path, route.handler, route.kwargs)
            for route in api_routes
            if isinstance(route, web.RouteDef)
        )
    app.middlewares.append(session_middleware)
    app.middlewares.append(client_limits_middleware)  # after it: knows whether a cookie was usable
    app.cleanup_ctx.append(database)
    if isinstance(store, CachedSessionStore):
        app.cleanup_ctx.append(touch_flusher)  # after the database: stops (and flushes) first
    app.on_response_prepare.append(write_cookie)


def create_app(
    settings: Settings,
    *,
    transport: Transport | None = None,
    detector: SignalDetector | None = None,
    replier: ReplyGenerator | None = None,
) -> web.Application:
    """Build the edge worker: :func:`setup` on an application of its own, with the HTTP API at
    ``/api`` (sessions for those paths only), the probes, ``/metrics``, ``/openapi.json`` and the
    demo page. Pass *transport* to share one you manage yourself (tests, bench)."""
    app = web.Application(
        middlewares=[json_errors],
        client_max_size=MAX_BODY_BYTES,
        handler_args={"max_field_size": MAX_HEADER_FIELD_BYTES},
    )
    setup(app, settings, transport=transport, detector=detector, replier=replier,
          api_prefix="/api", session_paths=SessionPaths(prefixes=("/api/",)))  # fmt: skip
    if settings.metrics_token is not None:
        app[METRICS_TOKEN] = settings.metrics_token.get_secret_value()
    app.on_response_prepare.append(add_security_headers)
    app.add_routes(worker_routes)
    return app
