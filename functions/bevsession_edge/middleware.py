"""Session middleware: cookie → session state → (re)sealed cookie when, and only when, it changed.

Only ``/api/`` routes get a session; static pages and probes never unseal, never write a cookie.
The cookie is written from ``on_response_prepare``, the last moment before headers leave, so
streamed and file responses get it too (a long-standing aiohttp-session gap), and handlers
never have to remember to "save".
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace
from typing import Any

from aiohttp import hdrs, web

from bevsession.cookies import CookieTooLarge, destroy_cookie_header, set_cookie_header
from bevsession.sealing import TIMESTAMP_SKEW_SEC

from .keys import COOKIE, SEALER, SETTINGS
from .session_cookie import (
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


def load_session(request: web.Request) -> SessionState:
    app = request.app
    settings = app[SETTINGS]
    user, reason, reseal = open_cookie(request.cookies.get(app[COOKIE].name), app[SEALER])
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
    state = SessionState(user, is_new=False, reseal=reseal)
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
    if state.cleared:
        response.headers.add(hdrs.SET_COOKIE, destroy_cookie_header(options))
        return
    if not state.changed:
        return
    # The cookie lives only as long as the session's absolute lifetime has left: resealing
    # never extends it (activity must not keep a session alive for ever).
    ttl = remaining_seconds(state.user, now=now_ms(), lifetime=request.app[SETTINGS].session_ttl)
    if ttl <= TIMESTAMP_SKEW_SEC:
        return  # all but over: the next request starts a new session anyway
    if ttl < options.ttl:
        options = replace(options, ttl=ttl)
    sealer = request.app[SEALER]
    try:
        header = set_cookie_header(seal_user(state.user, sealer, options.ttl), options)
    except CookieTooLarge:
        # Never expected (histories are not in the cookie); degrade rather than fail the request.
        slim = state.user.model_copy(update={"persona": _slim(state.user.persona)})
        header = set_cookie_header(seal_user(slim, sealer, options.ttl), options)
        log.warning("session cookie over 4096 bytes; resealed without pain point details")
    response.headers.add(hdrs.SET_COOKIE, header)


def _slim(persona: dict[str, Any]) -> dict[str, Any]:
    slim = persona_summary(persona)
    slim.pop("pain_points_confidence", None)
    return slim
