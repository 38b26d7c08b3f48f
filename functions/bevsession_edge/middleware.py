"""Session middleware: cookie → session state → (re)sealed cookie when, and only when, it changed.

Only ``/api/`` routes get a session; static pages and probes never unseal, never write a cookie.
The cookie is written from ``on_response_prepare``, the last moment before headers leave, so
streamed and file responses get it too (a long-standing aiohttp-session gap), and handlers
never have to remember to "save".
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import replace
from typing import Any

from aiohttp import hdrs, web

from bevsession.cookies import (
    CookieOptions,
    CookieTooLarge,
    IncomingSessionCookie,
    destroy_cookie_header,
    expire_cookie_headers,
    read_session_cookie,
    set_cookie_header,
)
from bevsession.sealing import TIMESTAMP_SKEW_SEC

from .keys import COOKIE, SEALER, SETTINGS
from .read_cache import read_cache_of
from .revocations import REVOKED
from .session_cookie import (
    CookieUser,
    SessionState,
    expiry_reason,
    new_user,
    now_ms,
    open_cookie,
    persona_summary,
    remaining_seconds,
    seal_user,
)

log = logging.getLogger(__name__)

SESSION_STATE = web.RequestKey("session_state", SessionState)
# The session cookie as it arrived: its seal (joined from iron-session 9's chunks if need be)
# and the chunk cookies to expire whenever the cookie is written or deleted.
INCOMING = web.RequestKey("session_cookie_in", IncomingSessionCookie)
# When the request began (time.monotonic()): no later than any look the database takes for it,
# so what it confirms counts as checked from then (read_cache.py).
BEGAN = web.RequestKey("session_began", float)
SESSION_PREFIX = "/api/"
# Why cookies were refused (malformed, bad_mac, expired, …): counted, logged at debug level.
REJECTIONS = web.AppKey("cookie_rejections", Counter[str])


def session_of(request: web.Request) -> SessionState:
    """The typed accessor handlers use (instead of a raw dict)."""
    return request[SESSION_STATE]


@web.middleware
async def session_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith(SESSION_PREFIX):
        request[SESSION_STATE] = load_session(request)
    response: web.StreamResponse = await handler(request)
    return response


def count_rejection(app: web.Application, reason: str) -> None:
    """Explain, don't shout: a reason at debug level (never the cookie) and a counter."""
    app[REJECTIONS][reason] += 1
    log.debug("session cookie refused (%s); starting a new session", reason)


def drop_session(request: web.Request, reason: str) -> None:
    """The database refused this session (revoked, expired): count it, forget this worker's
    cached copies of it, and start a fresh session for the visitor."""
    count_rejection(request.app, reason)
    revoke_here(request)
    session_of(request).restart(reason)


def forget_cached(request: web.Request) -> None:
    """Drop this worker's cached copies of the request's session (cleared, forgotten, refused)."""
    cache = read_cache_of(request.app)
    if cache is not None:
        cache.forget(session_of(request).session_id)


def revoke_here(request: web.Request) -> None:
    """The request's session is over (cleared, forgotten, refused by the database): this worker
    drops its copies and refuses the session's cookies from now on, even while the database is
    away (revocations.py)."""
    session_id = session_of(request).session_id
    request.app[REVOKED].add(session_id)
    cache = read_cache_of(request.app)
    if cache is not None:
        cache.revoke(session_id)


def load_session(request: web.Request) -> SessionState:
    app = request.app
    request[BEGAN] = time.monotonic()
    settings = app[SETTINGS]
    incoming = read_session_cookie(request.headers.get(hdrs.COOKIE), app[COOKIE].name)
    request[INCOMING] = incoming
    sealed = incoming.seal
    cache = read_cache_of(app)
    confirmed = cache.lookup(sealed) if cache is not None and sealed else None
    if confirmed is not None:  # a cookie the database confirmed lately: no unseal needed
        user: CookieUser | None = confirmed.user
        reason, reseal, unsealed = None, False, None
    else:
        user, reason, reseal, unsealed = open_cookie(sealed, app[SEALER])
        if user is not None and user.sessionId in app[REVOKED]:
            user, reason = None, "revoked"  # seen over here: refused, database or not
    now = now_ms()
    if user is not None:
        reason = expiry_reason(
            user, now=now, lifetime=settings.session_ttl, idle_timeout=settings.session_idle_timeout
        )
        if reason is not None:
            user = None
    if user is None:
        if reason is not None:
            count_rejection(app, reason)
        return SessionState(new_user(now), is_new=True, rejected=reason)
    if confirmed is not None:
        return SessionState.from_confirmed(user, confirmed.fresh_user(now),
                                           seen_ms=confirmed.seen_ms,
                                           loaded_json=confirmed.content_json)  # fmt: skip
    state = SessionState(user, is_new=False, reseal=reseal, cookie_user=unsealed)
    state.update(lastActivityAt=now)
    return state


async def write_cookie(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: add ``Set-Cookie`` for a changed or cleared session.

    It must never raise: aiohttp would drop the connection with no response at all. A cookie
    that cannot be written is logged; the response goes out without it.
    """
    try:
        _write_cookie(request, response)
    except Exception:
        log.exception("could not write the session cookie for %s %s", request.method, request.path)


def _write_cookie(request: web.Request, response: web.StreamResponse) -> None:
    state = request.get(SESSION_STATE)
    if state is None:
        return
    options = request.app[COOKIE]
    incoming = request[INCOMING]
    if state.cleared:
        response.headers.add(hdrs.SET_COOKIE, destroy_cookie_header(options))
        _expire_chunks(response, options, incoming)
        return
    cache = read_cache_of(request.app)
    if not state.changed:
        # The database has just confirmed the cookie as it is: later reads need not ask it.
        sealed = incoming.seal
        seen_ms, loaded = state.seen_ms, state.loaded
        # (a copy the cache already holds, ``cached``, needs no confirming)
        if cache is not None and seen_ms is not None and loaded is not None and sealed \
                and not state.cached:  # fmt: skip
            cache.confirm(sealed, loaded, seen_ms, request[BEGAN])
        return
    # The cookie lives until the session's first expiry: the idle timeout from this activity
    # (it slides as the visitor comes back, like the seed's cookie) or the absolute lifetime
    # left, which resealing never extends (activity must not keep a session alive for ever).
    settings = request.app[SETTINGS]
    ttl = remaining_seconds(state.user, now=now_ms(), lifetime=settings.session_ttl,
                            idle_timeout=settings.session_idle_timeout)  # fmt: skip
    if ttl <= TIMESTAMP_SKEW_SEC:
        return  # all but over: the next request starts a new session anyway
    if ttl < options.ttl:
        options = replace(options, ttl=ttl)
    sealer = request.app[SEALER]
    user = state.user
    sealed = seal_user(user, sealer, options.ttl)
    try:
        header = set_cookie_header(sealed, options)
    except CookieTooLarge:
        # Never expected (histories are not in the cookie); degrade rather than fail the request.
        user = state.user.model_copy(update={"persona": _slim(state.user.persona)})
        sealed = seal_user(user, sealer, options.ttl)
        header = set_cookie_header(sealed, options)
        log.warning("session cookie over 4096 bytes; resealed without pain point details")
    response.headers.add(hdrs.SET_COOKIE, header)
    _expire_chunks(response, options, incoming)
    if cache is not None and state.seen_ms is not None:  # the next request will send this seal
        cache.confirm(sealed, user, state.seen_ms, request[BEGAN])


def _expire_chunks(
    response: web.StreamResponse, options: CookieOptions, incoming: IncomingSessionCookie
) -> None:
    """Expire iron-session 9's chunk cookies the request carried: left behind, a v9 app would
    reopen the session from them (after a logout here) or join them to stale parts."""
    for header in expire_cookie_headers(options, incoming.chunks):
        response.headers.add(hdrs.SET_COOKIE, header)


def _slim(persona: dict[str, Any]) -> dict[str, Any]:
    slim = persona_summary(persona)
    slim.pop("pain_points_confidence", None)
    return slim
