"""Where a request's session comes from and goes to: the sealed cookie.

The shape of aiohttp-session's storages (``load_session`` / ``save_session``): the session
middleware asks the store for the request's session before the handler runs, and the cookie
writer asks it to save the session as the response is prepared. Handlers never call the store
for that; they get the session object (:func:`session_of`) and change it.

:class:`SessionStore` keeps everything in the sealed cookie. ``read_cache.py`` derives
:class:`~.read_cache.CachedSessionStore` from it: the same store with this worker's read cache
in front of the database. The hooks that subclass fills in are the only places the cache is
consulted or informed, so neither the session object, the middleware nor a handler knows
whether there is a cache at all:

- :meth:`SessionStore.open` — where the content of a cookie comes from (a copy the database
  confirmed lately, or the seal itself);
- :meth:`SessionStore.confirmed` — the database just returned this session (``sessions.py``
  tells the store whenever a handler's call did);
- :meth:`SessionStore.answer_read` — may a plain read be answered without the database;
- :meth:`SessionStore.read_later` — the database answered a read without touching the session
  (``read_session``, only when :attr:`SessionStore.reports_reads`): report it later;
- :meth:`SessionStore.end` — the session is over (cleared, forgotten, refused);
- :meth:`SessionStore.kept` / :meth:`SessionStore.written` — the cookie was left as it came, or
  sealed anew.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace
from typing import Any, ClassVar

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
from bevsession.sealing import TIMESTAMP_SKEW_SEC, Sealer

from .config import Settings
from .revocations import RevokedSessions
from .session_cookie import (
    CookieUser,
    SessionState,
    arrived,
    expiry_reason,
    new_user,
    now_ms,
    open_cookie,
    persona_summary,
    remaining_seconds,
    seal_user,
)

log = logging.getLogger(__name__)

__all__ = ["INCOMING", "SESSION_STATE", "SessionStore", "session_of"]

SESSION_STATE = web.RequestKey("session_state", SessionState)
# The session cookie as it arrived: its seal (joined from iron-session 9's chunks if need be)
# and the chunk cookies to expire whenever the cookie is written or deleted.
INCOMING = web.RequestKey("session_cookie_in", IncomingSessionCookie)


def session_of(request: web.Request) -> SessionState:
    """The request's session (the typed accessor handlers use, instead of a raw dict)."""
    return request[SESSION_STATE]


class SessionStore:
    """Sessions kept in the sealed cookie (iron's ``Fe26.2``, as iron-session seals them)."""

    __slots__ = ("cookie", "rejections", "revoked", "sealer", "settings")

    # Whether this store reports reads to the database itself (a batched touch): then a plain
    # read may ask the database without touching the session (read_later). Not here.
    reports_reads: ClassVar[bool] = False

    def __init__(self, settings: Settings, *, revoked: RevokedSessions | None = None) -> None:
        self.settings = settings
        self.sealer = Sealer(settings.passwords(), ttl=settings.session_ttl)
        self.cookie = CookieOptions(
            name=settings.session_cookie_name,
            ttl=settings.session_ttl,
            secure=settings.secure_cookies,
            domain=settings.cookie_domain,
        )
        # Sessions this worker saw end: their cookies are refused, database or not.
        self.revoked = revoked if revoked is not None else RevokedSessions(settings.session_ttl)
        # Why cookies were refused (malformed, bad_mac, expired, …): counted, logged at debug.
        self.rejections: Counter[str] = Counter()

    # --- before the handler ------------------------------------------------------------------
    def load(self, request: web.Request) -> SessionState:
        """The request's session: the cookie's, or a new one when it has none that is usable."""
        incoming = read_session_cookie(request.headers.get(hdrs.COOKIE), self.cookie.name)
        request[INCOMING] = incoming
        now = now_ms()
        session, reason = self.open(request, incoming.seal, now)
        if session is not None:
            return session
        if reason is not None:
            self.count_rejection(reason)
        return SessionState(new_user(now), is_new=True, rejected=reason)

    def open(
        self, request: web.Request, sealed: str | None, now: int
    ) -> tuple[SessionState | None, str | None]:
        """The session *sealed* carries, active *now*, or why there is none (None: no cookie)."""
        user, reason, reseal, unsealed = open_cookie(sealed, self.sealer)
        if user is None:
            return None, reason
        if user.sessionId in self.revoked:
            return None, "revoked"  # seen over here: refused, database or not
        reason = self.expired(user, now)
        if reason is not None:
            return None, reason
        loaded = None if reseal else user  # a stale password id or a seed cookie: write it anew
        return SessionState(arrived(user, now), loaded=loaded, cookie_user=unsealed), None

    def expired(self, user: CookieUser, now: int) -> str | None:
        """Why the sealed data says the session is over (``lifetime``, ``idle``), or None."""
        settings = self.settings
        return expiry_reason(
            user, now=now, lifetime=settings.session_ttl, idle_timeout=settings.session_idle_timeout
        )

    def count_rejection(self, reason: str) -> None:
        """Explain, don't shout: a reason at debug level (never the cookie) and a counter."""
        self.rejections[reason] += 1
        log.debug("session cookie refused (%s); starting a new session", reason)

    # --- while the handler runs ----------------------------------------------------------------
    def confirmed(self, request: web.Request, session: SessionState, seen_ms: int) -> None:
        """The database has just returned *session*'s content (now in ``session.user``), its
        ``last_activity_at`` *seen_ms* (ms, the database's clock). Nothing to do here."""

    def answer_read(self, request: web.Request) -> bool:
        """Whether a plain read of the request's session may be answered without the database
        (and is then counted as one). Never for the cookie alone: the database decides."""
        return False

    def read_later(
        self, request: web.Request, session: SessionState, read_at: int, *, settled: bool
    ) -> None:
        """The database answered a read of *session* (its content now in ``session.user``) at
        *read_at* (ms, its clock) without touching it: report the read with the next batch.
        *settled*: no writer had the row, so the content may count as confirmed at *read_at*.
        Only called when :attr:`reports_reads`."""
        raise NotImplementedError("this store does not report reads")

    def refuse(self, request: web.Request, reason: str) -> None:
        """The database refused the request's session (revoked, expired): count it, end it
        here, and start a fresh session for the visitor."""
        session = session_of(request)
        self.count_rejection(reason)
        self.end(request, session)
        session.restart(reason)

    def end(self, request: web.Request, session: SessionState) -> None:
        """*session* is over (cleared, forgotten, refused by the database): this worker refuses
        its cookies from now on, even while the database is away (revocations.py)."""
        self.revoked.add(session.session_id)

    # --- as the response is prepared ------------------------------------------------------
    def save(self, request: web.Request, response: web.StreamResponse) -> None:
        """Add ``Set-Cookie`` for a changed or cleared session; nothing for an unchanged one."""
        session = request.get(SESSION_STATE)
        if session is None:
            return
        options = self.cookie
        incoming = request[INCOMING]
        if session.cleared:
            response.headers.add(hdrs.SET_COOKIE, destroy_cookie_header(options))
            _expire_chunks(response, options, incoming)
            return
        if not session.changed:
            self.kept(request, session)
            return
        # The cookie lives until the session's first expiry: the idle timeout from this activity
        # (it slides as the visitor comes back, like the seed's cookie) or the absolute lifetime
        # left, which resealing never extends (activity must not keep a session alive for ever).
        settings = self.settings
        ttl = remaining_seconds(session.user, now=now_ms(), lifetime=settings.session_ttl,
                                idle_timeout=settings.session_idle_timeout)  # fmt: skip
        if ttl <= TIMESTAMP_SKEW_SEC:
            return  # all but over: the next request starts a new session anyway
        if ttl < options.ttl:
            options = replace(options, ttl=ttl)
        user = session.user
        sealed = seal_user(user, self.sealer, options.ttl)
        try:
            header = set_cookie_header(sealed, options)
        except CookieTooLarge:
            # Never expected (histories are not in the cookie); degrade rather than fail.
            user = user.model_copy(update={"persona": _slim(user.persona)})
            sealed = seal_user(user, self.sealer, options.ttl)
            header = set_cookie_header(sealed, options)
            log.warning("session cookie over 4096 bytes; resealed without pain point details")
        response.headers.add(hdrs.SET_COOKIE, header)
        _expire_chunks(response, options, incoming)
        self.written(request, session, user, sealed)

    def kept(self, request: web.Request, session: SessionState) -> None:
        """The visitor keeps the cookie it sent (the session did not change)."""

    def written(
        self, request: web.Request, session: SessionState, user: CookieUser, sealed: str
    ) -> None:
        """*sealed* (the content *user*) was sent: the visitor's next request carries it."""

    # --- counters ----------------------------------------------------------------------------
    def counters(self) -> dict[str, Any]:
        """What ``/metrics`` reports of the sessions: refused cookies since start, by reason."""
        return {"cookieRejections": dict(sorted(self.rejections.items()))}


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
