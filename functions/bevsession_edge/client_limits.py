"""Per-client-address limits at the edge: new sessions and chat turns cost the sender.

Why: the database limits chat turns per *session*, and a client without a cookie gets a new
session on every request, so a bot that never keeps its cookie paid nothing (measured: 40
cookieless ``POST /api/chat`` of 3,900 characters, all 40 answered 200 in 0.2 s, each storing
a session, a persona and two messages). Here each worker also counts, per client address,

- **new sessions** (``CLIENT_SESSION_RATE``, default ``20/minute``): a request without a usable
  cookie that would store a session — ``GET /api/session`` and ``POST /api/chat``;
- **chat turns** (``CLIENT_CHAT_RATE``, default ``60/minute``): every ``POST /api/chat``.

Beyond either the request is refused before any database call: 429 ``rate_limited`` with
``Retry-After``. ``POST /api/chat`` without a cookie is *allowed* (an API client or a page of
another app may start with a message) but pays both: one new session and one turn.

The algorithm is the database's (GCRA): a burst of N, then one per period/N; one timestamp per
address, the oldest dropped first beyond ``max_addresses``. The counts are per worker process
(``bevsession serve --workers N`` lets an address through up to N times as often); the
per-session limit in the database stays the one shared by every worker.

The address is the peer's, unless ``TRUSTED_PROXY_HOPS`` says how many proxies of yours stand
in front: then it is taken from ``CLIENT_ADDRESS_HEADER`` (``X-Forwarded-For``), that many
entries from the right — what your nearest proxy saw — never from a header alone a client
could write.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from aiohttp import hdrs, web

from .http_errors import ApiError
from .rates import GcraLimiter
from .store import SESSION_STATE

__all__ = ["CLIENT_LIMITS", "ClientLimits", "client_address", "client_limits_middleware"]


@dataclass(slots=True)
class ClientLimits:
    """The two per-address limits and how to find the address."""

    sessions: GcraLimiter
    chat: GcraLimiter
    trusted_hops: int = 0
    address_header: str = "X-Forwarded-For"
    chat_path: str = "/api/chat"  # where the HTTP API's chat turn is mounted (setup's api_prefix)


CLIENT_LIMITS = web.AppKey("client_limits", ClientLimits)


def client_address(request: web.Request, trusted_hops: int, header: str) -> str:
    """The client's address: the peer's, or with *trusted_hops* proxies of yours in front the
    entry that many from the right of *header* (the peer's when the header is too short)."""
    peer = request.remote or "unknown"
    if trusted_hops <= 0:
        return peer
    entries = [e.strip() for v in request.headers.getall(header, []) for e in v.split(",")]
    entries = [e for e in entries if e]
    if len(entries) < trusted_hops:
        return peer
    return entries[-trusted_hops]


def _refuse(wait: float, what: str) -> ApiError:
    seconds = max(1, int(wait + 0.999))
    return ApiError(
        429, "rate_limited",
        f"too many {what} from this address; retry in {seconds} s",
        **{hdrs.RETRY_AFTER: str(seconds)},
    )  # fmt: skip


def charge(request: web.Request, *, new_session: bool, chat_turn: bool) -> None:
    """Take a new session and/or a chat turn from the client's allowance, or raise a 429."""
    limits = request.app.get(CLIENT_LIMITS)
    if limits is None:
        return
    address = client_address(request, limits.trusted_hops, limits.address_header)
    now = time.monotonic()
    if chat_turn and (wait := limits.chat.take(address, now)):
        raise _refuse(wait, "chat turns")
    if new_session and (wait := limits.sessions.take(address, now)):
        raise _refuse(wait, "new sessions")


@web.middleware
async def client_limits_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Charge the requests that start a session or take a chat turn (after the session
    middleware, which knows whether the cookie named a usable session).

    Every request of a new visitor that gets a session (``/api/`` in the ready-made worker; see
    ``middleware.SessionPaths``), but a ``DELETE``, hands out a session cookie, so each is a new
    session, whatever its answer; a refused one hands out none.
    """
    state = request.get(SESSION_STATE)
    limits = request.app.get(CLIENT_LIMITS)
    if state is not None and limits is not None:
        chat_turn = request.method == hdrs.METH_POST and request.path == limits.chat_path
        new_session = state.is_new and request.method != hdrs.METH_DELETE
        if chat_turn or new_session:
            try:
                charge(request, new_session=new_session, chat_turn=chat_turn)
            except ApiError:
                if state.is_new:
                    del request[SESSION_STATE]  # no cookie for a refused newcomer
                raise
    response: web.StreamResponse = await handler(request)
    return response
