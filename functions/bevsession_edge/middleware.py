"""Session middleware: the whole life cycle of a request's session, around the handler.

Load before the handler (``SessionStore.load``: the cookie, or the read cache's copy of it),
end it after the handler when the handler cleared it, save it as the response is prepared
(``SessionStore.save``: a new cookie when, and only when, it changed). The cookie is written
from ``on_response_prepare``, the last moment before headers leave, so streamed and file
responses get it too (a long-standing aiohttp-session gap), and handlers never have to
remember to "save".

Which requests get a session is :class:`SessionPaths`: the ready-made worker gives one to
``/api/`` only; an application of your own (``setup``) to every path but its probes and static
files by default. A request outside them never unseals and never gets a cookie.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .keys import SESSION_STORE
from .store import SESSION_STATE, session_of

log = logging.getLogger(__name__)

__all__ = ["SESSION_PATHS", "SessionPaths", "session_middleware", "session_of", "write_cookie"]

# Paths that never need a session: probes, the API description, static files.
NO_SESSION = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/favicon.ico", "/static/")


@dataclass(frozen=True, slots=True)
class SessionPaths:
    """Which request paths get a session: those starting with one of *prefixes* (None: every
    path), unless they start with one of *excluded*."""

    prefixes: tuple[str, ...] | None = None
    excluded: tuple[str, ...] = NO_SESSION

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str) or path.startswith(self.excluded):
            return False
        return self.prefixes is None or path.startswith(self.prefixes)


SESSION_PATHS = web.AppKey("session_paths", SessionPaths)


@web.middleware
async def session_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path not in request.app[SESSION_PATHS]:
        response: web.StreamResponse = await handler(request)
        return response
    store = request.app[SESSION_STORE]
    session = request[SESSION_STATE] = store.load(request)
    try:
        response = await handler(request)
    finally:
        if session.cleared:  # over: this worker refuses it from now on
            store.end(request, session)
    return response


async def write_cookie(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: the store adds ``Set-Cookie`` for a changed or cleared
    session.

    It must never raise: aiohttp would drop the connection with no response at all. A cookie
    that cannot be written is logged; the response goes out without it.
    """
    try:
        request.app[SESSION_STORE].save(request, response)
    except Exception:
        log.exception("could not write the session cookie for %s %s", request.method, request.path)
