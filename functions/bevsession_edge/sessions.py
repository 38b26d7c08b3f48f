"""A request's session and its database row: what handlers call.

A handler has the session of its request (:func:`session_of`: the cookie's content, which it
reads and changes) and the service (``request.app[SERVICE]``: the RPCs). What joins the two
lives here, below the handlers and above the store, so a request walks one way down: handler →
these functions → the service, with the store told what happened on the way:

- :func:`current_session` — the session as the database has it, for a plain read: one call
  that the store may answer without the database (a copy it confirmed lately), or from the
  cookie while the database is away. The handler learns where the answer came from (to say so
  in a header), never how the store decided;
- :func:`for_visitor` — run a call for the visitor; a session the database refuses (revoked,
  expired) is replaced by a fresh one and the call retried once — never an error page;
- :func:`remember` — copy what the database returned into the cookie.

Why not a method on the session object, as Starlette's ``request.session`` dict would have it:
the session object is the cookie's content only (it is created before any handler runs, and
must not hold a service, a store or a cache); these need all three.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from aiohttp import web

from bevsession.errors import DatabaseUnavailable, SessionExpired, SessionNotFound, SessionRevoked
from bevsession.models import SessionData, SessionRead, SessionSnapshot

from .keys import SERVICE, SESSION_STORE
from .session_cookie import SessionState, persona_json, sealed_by_seed
from .store import session_of

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = [
    "Current",
    "current_session",
    "for_visitor",
    "get_or_adopt",
    "refusal_reason",
    "refuse",
    "remember",
    "session_of",
]


@dataclass(frozen=True, slots=True)
class Current:
    """The session as the database has it, and where that answer came from: ``database`` (one
    RPC just now), ``cache`` (a copy the database confirmed lately) or ``cookie`` (the database
    is away; the sealed data alone)."""

    session: SessionState
    source: Literal["database", "cache", "cookie"]


def remember(request: web.Request, data: SessionData, persona: dict[str, Any] | None) -> None:
    """Copy what the database returned into the cookie's summary (*persona*: persona_json)."""
    session = _copy_into_cookie(request, data, persona)
    # the database's clock: what the store's batched checks compare with
    request.app[SESSION_STORE].confirmed(request, session, data.last_activity_at)


def _copy_into_cookie(
    request: web.Request, data: SessionData, persona: dict[str, Any] | None
) -> SessionState:
    session = session_of(request)
    fields: dict[str, Any] = {
        "createdAt": data.created_at,
        "lastActivityAt": max(data.last_activity_at, session.user.lastActivityAt),
        "lastMessageAt": data.last_message_at,
        "messageCount": data.message_count,
        "currentMode": data.current_mode,
        "hasCompletedOnboarding": data.has_completed_onboarding,
        "hasBrochure": data.has_brochure,
        "isDataConnected": data.is_data_connected,
        "lastGeneratedBrochureId": data.last_generated_brochure_id,
        "lastBrochureGeneratedAt": data.last_brochure_generated_at,
        "userId": str(data.user_id) if data.user_id is not None else None,
    }
    if persona is not None:
        fields["persona"] = persona
    session.update(**fields)
    return session


def refusal_reason(exc: SessionRevoked | SessionExpired) -> str:
    """The rejection counter's name for a session the database refused."""
    return "revoked" if isinstance(exc, SessionRevoked) else "expired_in_database"


def refuse(request: web.Request, exc: SessionRevoked | SessionExpired) -> None:
    """The database refused the request's session: the store ends it and starts a fresh one."""
    request.app[SESSION_STORE].refuse(request, refusal_reason(exc))


async def for_visitor(request: web.Request, operation: Callable[[], Awaitable[T]]) -> T:
    """Run *operation*; if the database refuses the session (revoked, or expired by its absolute
    lifetime or idle timeout), start a fresh session and retry once for the new visitor.

    *operation* creates the session when it is missing (``get_session``, ``begin_chat_turn``), so
    "not found" only happens when the row was deleted under the call (a concurrent retention
    purge): once more recreates it.
    """
    try:
        return await operation()
    except (SessionRevoked, SessionExpired) as exc:
        refuse(request, exc)
        return await operation()
    except SessionNotFound:
        log.debug("session row vanished during the call (purged); retrying once")
        return await operation()


async def get_or_adopt(request: web.Request) -> SessionSnapshot:
    """The visitor's session from the database, created if missing — from the cookie when one
    was unsealed in this request (``adopt_session``: a Node app's visitor keeps the persona,
    counters and flags its cookie carries), otherwise with defaults (``get_session``). Either is
    one RPC; the database wins whenever it has the session (a Node app's cookie also proves the
    activity that app saw, which the idle timeout counts)."""
    session = session_of(request)
    return await for_visitor(request, lambda: _get_or_adopt_once(request, session))


async def _get_or_adopt_once(request: web.Request, session: SessionState) -> SessionSnapshot:
    service = request.app[SERVICE]
    cookie = session.cookie_user  # read at call time: a restarted session has none
    if cookie is None:
        return await service.get_session(session.session_id)
    # The Node app's requests are activity this database did not see; ours are not.
    adopted = await service.adopt_session(
        session.session_id, cookie, count_cookie_activity=sealed_by_seed(cookie)
    )
    if adopted.adopted:
        changed = f"; the seed rules changed {adopted.dropped}" if adopted.dropped else ""
        log.info("session adopted from its cookie%s", changed)
    return adopted


async def _read_or_adopt(request: web.Request) -> SessionSnapshot | SessionRead:
    """A plain read's database call. A cookie this server sealed is read without a lock or a
    write (``read_session``; the store reports the read with its batched touch) unless that
    read would need a write; a new visitor, a seed cookie (its activity counts at once) and
    those go through :func:`get_or_adopt`'s call. One RPC, two only for the rare read that
    needs a write."""
    session = session_of(request)
    service = request.app[SERVICE]

    async def operation() -> SessionSnapshot | SessionRead:
        cookie = session.cookie_user
        if cookie is not None and not sealed_by_seed(cookie):
            read = await service.read_session(session.session_id)
            if read.session is not None:
                return read
        return await _get_or_adopt_once(request, session)

    if not request.app[SESSION_STORE].reports_reads:
        return await get_or_adopt(request)
    return await for_visitor(request, operation)


async def current_session(request: web.Request) -> Current:
    """The visitor's session as the database has it (created if missing), for a read: the
    store's copy when it may answer without the database, else one RPC; while the database is
    away a known visitor is answered from the cookie (a new one: ``DatabaseUnavailable``)."""
    session = session_of(request)
    store = request.app[SESSION_STORE]
    if store.answer_read(request):
        return Current(session, "cache")
    try:
        snap = await _read_or_adopt(request)
    except DatabaseUnavailable:
        if session.is_new:
            raise
        return Current(session, "cookie")  # reads are served from the cookie meanwhile
    if isinstance(snap, SessionRead):
        assert snap.session is not None and snap.persona is not None  # a read that found it
        _copy_into_cookie(request, snap.session, persona_json(snap.persona))
        store.read_later(request, session, snap.read_at, settled=snap.settled)
    else:
        remember(request, snap.session, persona_json(snap.persona))
    return Current(session, "database")
