"""Reads answered from cookies the database confirmed: each worker's read cache.

Why: a visitor's browser sends the same sealed cookie on every request until the server
reseals it, and a page that polls ``GET /api/session`` would otherwise pay one unseal and one
RPC per request — the database, not this worker, would set the pace of every read. So a
worker remembers, for a short while (``SESSION_READ_CACHE_SECONDS``), the cookies whose
content the database has just confirmed (an RPC returned that session), and answers a repeated
read of one of them from memory: no unseal, no round trip.

The database still sees every read, batched: the ids read since the last flush go to
``public.touch_sessions`` once per ``SESSION_TOUCH_FLUSH_SECONDS`` (one call per worker, not
one per request). That call moves ``last_activity_at`` forward and answers which copies are
stale — the session is gone, revoked, expired, being written, or changed since the check —
and those are dropped, so the next read of them is a full ``get_session`` again. A revocation
made elsewhere therefore reaches this worker within one flush interval; one made here (clear,
forget, a refused session) is dropped at once. Writes never use the cache.

Every flush also re-checks every other copy the worker holds (``public.validate_sessions``,
touching nothing), and a copy is answered only while the database has checked it within
``validity`` seconds (twice the flush interval): the time a copy counts as checked is when the
request that confirmed it began, or when the flush that covered it began — never later than
the database's own look. So a revocation made anywhere stops every worker's copies within that
bound, whether or not anyone read them; a flush that is late or fails lets the copies lapse
instead of serving them unchecked. Ids a flush reports revoked are remembered
(:mod:`.revocations`): never confirmed again, never answered from the cookie.

If a flush fails, revocations cannot be learned: every copy is dropped and reads go back to
one RPC each (and to the cookie alone while the database is away, as before).

How it plugs in: :class:`CachedSessionStore` is the session store (``store.py``) with this cache
in front. The session middleware's store consults the cache when it loads a session (a cookie
held here needs no unseal) and informs it when the database confirmed a session, when a cookie
was kept or written, and when a session ended; ``sessions.current_session`` asks it whether a
plain read may be answered from the copy, and tells it of a cold read the database answered
without touching the session (``read_session``): reported with the next flush, and kept as a
copy when no writer had the row. Handlers never see it: with ``SESSION_READ_CACHE_SECONDS=0``
it holds no copy and only reports those reads, and every handler reads the same. A copy is
dropped as soon as this worker learns that the database holds other content for its session (a
chat turn or a link made here, or a read that found the session changed): every copy of that
session goes, and the next read asks the database.

Keys are the exact sealed strings, inserted only after the seal opened or was made here, so an
entry can never answer for a cookie that would not open; the seal's own expiration is kept and
checked on every hit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import marshal
import math
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar
from uuid import UUID

from aiohttp import web

from bevsession.errors import SessionError
from bevsession.models import MAX_TOUCH_BATCH
from bevsession.service import SessionService

from .config import Settings
from .keys import SERVICE, SESSION_STORE, SETTINGS
from .revocations import RevokedSessions
from .session_cookie import CookieUser, SessionState, content_json, now_ms
from .store import INCOMING, SessionStore, session_of

log = logging.getLogger(__name__)

__all__ = [
    "READ_CACHE_COUNTERS",
    "CachedSessionStore",
    "Confirmed",
    "ReadCache",
    "touch_flusher",
]


# What /healthz reports (besides maxAgeSeconds): two sizes, then counters since start.
READ_CACHE_COUNTERS = (
    "entries", "pending", "hits", "misses", "flushes", "touched", "validated", "stale",
    "lapsed", "flushFailures",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Confirmed:
    """A cookie whose content the database confirmed, and when (its ``last_activity_at``, ms)."""

    user: CookieUser
    seen_ms: int
    until: float  # time.monotonic() after which the cookie must be checked again
    seal_expires_ms: int | None  # the seal's own expiration (None: sealed without one)
    content_json: str  # session_cookie.content_json(user): what "did it change?" compares with
    persona_blob: bytes  # the persona, marshalled (built here, never read from outside)

    def fresh_user(self, now: int) -> CookieUser:
        """The cookie's content for one request, active *now*. Its persona is a new dict (a
        marshal copy: 2 µs, where a JSON copy costs 5 and deepcopy 10), so a handler that
        changes it in place cannot change what the cache answers for this seal."""
        persona = marshal.loads(self.persona_blob)  # noqa: S302 (our own bytes, made in confirm)
        return self.user.model_copy(update={"persona": persona, "lastActivityAt": now})


def seal_expiration_ms(sealed: str) -> int | None:
    """The expiration field of an iron seal (ms), or None when it has none or is unreadable."""
    parts = sealed.split("*", 6)
    field = parts[5] if len(parts) == 7 else ""
    return int(field) if field.isascii() and field.isdigit() and len(field) < 20 else None


class ReadCache:
    """Confirmed cookies of this worker, and the reads not yet reported to the database."""

    __slots__ = (
        "_by_seal", "_by_session", "_checked", "_pending", "max_age", "max_entries", "revoked",
        "stats", "validity",
    )  # fmt: skip

    def __init__(
        self,
        max_age: float,
        max_entries: int,
        *,
        validity: float = 2.0,
        revoked: RevokedSessions | None = None,
    ) -> None:
        self.max_age = max_age
        self.max_entries = max_entries
        # A copy is answered only while the database checked its session this recently.
        self.validity = validity
        self.revoked = revoked if revoked is not None else RevokedSessions(max(max_age, 1.0))
        # Oldest first. An OrderedDict: a plain dict's first key after many pops from the front
        # is found by scanning the holes they left (3 µs per eviction at 10,000 entries, where
        # every cold read evicts one; 0.3 µs here).
        self._by_seal: OrderedDict[str, Confirmed] = OrderedDict()
        self._by_session: dict[UUID, set[str]] = {}
        # time.monotonic() when the database last looked at each held session (at the latest)
        self._checked: dict[UUID, float] = {}
        self._pending: dict[UUID, int] = {}
        self.stats: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._by_seal)

    @property
    def holds_copies(self) -> bool:
        """False with ``max_age`` 0 (``SESSION_READ_CACHE_SECONDS=0``): every read asks the
        database, and the reads it answers without a touch are still reported in batches."""
        return self.max_age > 0

    # --- lookups ---------------------------------------------------------------------------
    def lookup(self, sealed: str) -> Confirmed | None:
        """The confirmed content of *sealed*, if it is still fresh and the seal not expired."""
        entry = self._by_seal.get(sealed)
        if entry is None:
            self.stats["misses"] += 1
            return None
        now = time.monotonic()
        if now >= entry.until or (
            entry.seal_expires_ms is not None and now_ms() >= entry.seal_expires_ms
        ):
            self._drop(sealed, entry.user.sessionId)
            self.stats["misses"] += 1
            return None
        if now - self._checked.get(entry.user.sessionId, -math.inf) > self.validity:
            # Not re-checked lately (a flush late or failing): ask the database instead.
            self.stats["lapsed"] += 1
            self.stats["misses"] += 1
            return None
        self.stats["hits"] += 1
        return entry

    def confirm(
        self, sealed: str, user: CookieUser, seen_ms: int, checked_at: float | None = None
    ) -> None:
        """Remember that the database confirmed *user*, the content of *sealed*, at *seen_ms*;
        *checked_at* (``time.monotonic()``, default now) is no later than the database's look:
        the start of the request that asked it. A session this worker knows revoked is never
        remembered (a request that began before the clear may confirm after it)."""
        if user.sessionId in self.revoked or not self.holds_copies:
            return
        checked = time.monotonic() if checked_at is None else checked_at
        if sealed in self._by_seal:
            self._drop(sealed, self._by_seal[sealed].user.sessionId)
        while len(self._by_seal) >= self.max_entries:  # oldest first (insertion order)
            oldest = next(iter(self._by_seal))
            self._drop(oldest, self._by_seal[oldest].user.sessionId)
        blob = marshal.dumps(user.persona)
        # The cache's own copy: the request that confirmed it may still hold the persona dict
        # (a streamed response confirms at prepare, before its handler is done).
        own = user.model_copy(update={"persona": marshal.loads(blob)})  # noqa: S302 (ours)
        entry = Confirmed(
            own,
            seen_ms,
            time.monotonic() + self.max_age,
            seal_expiration_ms(sealed),
            content_json(own),
            blob,
        )
        self._by_seal[sealed] = entry
        self._by_session.setdefault(user.sessionId, set()).add(sealed)
        self._checked[user.sessionId] = max(self._checked.get(user.sessionId, -math.inf), checked)

    def read(self, session_id: UUID, seen_ms: int) -> None:
        """A read answered from a copy confirmed at *seen_ms*: report it with the next flush."""
        seen = self._pending.get(session_id)
        if seen is None or seen_ms < seen:  # the oldest check decides
            self._pending[session_id] = seen_ms

    # --- invalidation ----------------------------------------------------------------------
    def supersede(self, user: CookieUser) -> None:
        """The database holds *user*'s content for its session now: if a copy of the session
        holds other content, every copy goes (as :meth:`forget`), pending reads included."""
        seals = self._by_session.get(user.sessionId)
        if not seals:
            return
        current = content_json(user)
        if any(self._by_seal[sealed].content_json != current for sealed in seals):
            self.forget(user.sessionId)

    def forget(self, session_id: UUID) -> None:
        """Drop every copy of one session (revoked, cleared, refused or changed)."""
        for sealed in self._by_session.pop(session_id, ()):
            self._by_seal.pop(sealed, None)
        self._checked.pop(session_id, None)
        self._pending.pop(session_id, None)

    def revoke(self, session_id: UUID) -> None:
        """The session is over (cleared, forgotten, refused): drop it and never take it back."""
        self.revoked.add(session_id)
        self.forget(session_id)

    def clear(self) -> None:
        """Drop every copy (a flush failed: revocations can no longer be learned)."""
        self._by_seal.clear()
        self._by_session.clear()
        self._checked.clear()

    def _drop(self, sealed: str, session_id: UUID) -> None:
        self._by_seal.pop(sealed, None)
        seals = self._by_session.get(session_id)
        if seals is not None:
            seals.discard(sealed)
            if not seals:
                del self._by_session[session_id]
                self._checked.pop(session_id, None)

    # --- the batched touch -----------------------------------------------------------------
    async def flush(self, service: SessionService) -> None:
        """Report the reads since the last flush, re-check every other copy held, and drop what
        the database calls stale (remembering the revoked ones).

        Only the reads pending when it starts: reads that arrive while it waits go with the
        next flush (one round of calls per interval, however busy the worker is). The copies
        that pass count as checked when the flush began.
        """
        started = time.monotonic()
        pending, self._pending = self._pending, {}
        items = list(pending.items())
        stale: set[UUID] = set()
        for start in range(0, len(items), MAX_TOUCH_BATCH):
            batch = dict(items[start : start + MAX_TOUCH_BATCH])
            try:
                result = await service.touch_sessions(batch)
            except SessionError as exc:
                for session_id, seen in items[start:]:  # keep the activity for the next flush
                    self.read(session_id, seen)
                self._failed(exc)
                return
            self.stats["touched"] += result.touched
            stale.update(result.stale)
        held = [(sid, seen) for sid, seen in self._held().items() if sid not in stale]
        revoked: list[UUID] = []
        passed: list[UUID] = [sid for sid, _ in items if sid not in stale]
        for start in range(0, len(held), MAX_TOUCH_BATCH):
            batch = dict(held[start : start + MAX_TOUCH_BATCH])
            try:
                checked = await service.validate_sessions(batch)
            except SessionError as exc:
                self._failed(exc)
                return
            self.stats["validated"] += checked.valid
            bad = set(checked.stale)
            stale.update(bad)
            revoked.extend(checked.revoked)
            passed.extend(sid for sid in batch if sid not in bad)
        if items or held:
            self.stats["flushes"] += 1
        self.stats["stale"] += len(stale)
        for session_id in stale:
            self.forget(session_id)
        for session_id in revoked:
            self.revoke(session_id)
        for session_id in passed:
            if session_id in self._by_session and session_id not in stale:
                self._checked[session_id] = max(self._checked.get(session_id, -math.inf), started)

    def _held(self) -> dict[UUID, int]:
        """Every session this worker holds a copy of, with its oldest confirmation (ms)."""
        held: dict[UUID, int] = {}
        for entry in self._by_seal.values():
            sid = entry.user.sessionId
            seen = held.get(sid)
            if seen is None or entry.seen_ms < seen:
                held[sid] = entry.seen_ms
        return held

    def _failed(self, exc: SessionError) -> None:
        self.stats["flushFailures"] += 1
        self.clear()  # cannot learn revocations: every read asks the database again
        log.warning("read cache flush failed (%s); dropped every cached cookie", exc)

    def snapshot(self) -> dict[str, int | float]:
        """``/healthz``'s ``readCache``: the sizes and :data:`READ_CACHE_COUNTERS`."""
        figures: dict[str, int | float] = {"maxAgeSeconds": self.max_age}
        sizes = {"entries": len(self._by_seal), "pending": len(self._pending)}
        for name in READ_CACHE_COUNTERS:
            figures[name] = sizes[name] if name in sizes else self.stats[name]
        return figures


@dataclass(slots=True)
class Visit:
    """What the cache-aware store knows of one request's session besides its content."""

    # time.monotonic() when the request began: no later than any look the database takes for
    # it, so what it confirms counts as checked from then.
    began: float
    copy: Confirmed | None = None  # the copy the session was loaded from (no unseal)
    # (session id, its last_activity_at in ms) as the database last returned it to this request
    confirmed: tuple[UUID, int] | None = None

    def seen_ms(self, session: SessionState) -> int | None:
        """When the database last confirmed *session*'s content, if it did in this request."""
        confirmed = self.confirmed
        if confirmed is None or confirmed[0] != session.session_id:
            return None
        return confirmed[1]

    def copy_of(self, session: SessionState) -> Confirmed | None:
        """The copy *session* was loaded from (None once the session was restarted)."""
        copy = self.copy
        return copy if copy is not None and copy.user.sessionId == session.session_id else None


VISIT = web.RequestKey("read_cache_visit", Visit)


class CachedSessionStore(SessionStore):
    """The sealed-cookie store with this worker's read cache in front of the database.

    It consults the cache when it loads a session (a cookie it holds a confirmed copy of needs
    no unseal, and a plain read of it no database call) and informs it when the database
    confirmed a session or a cookie was written or ended. Everything else — handlers, the
    session object, the middleware — is the same with or without it.
    """

    __slots__ = ("cache",)

    reports_reads: ClassVar[bool] = True

    def __init__(
        self, settings: Settings, cache: ReadCache, *, revoked: RevokedSessions | None = None
    ) -> None:
        super().__init__(settings, revoked=revoked if revoked is not None else cache.revoked)
        self.cache = cache

    def load(self, request: web.Request) -> SessionState:
        request[VISIT] = Visit(time.monotonic())
        return super().load(request)

    def open(
        self, request: web.Request, sealed: str | None, now: int
    ) -> tuple[SessionState | None, str | None]:
        copy = self.cache.lookup(sealed) if sealed and self.cache.holds_copies else None
        if copy is None:
            return super().open(request, sealed, now)
        reason = self.expired(copy.user, now)  # a confirmed cookie: no unseal needed
        if reason is not None:
            return None, reason
        visit = request[VISIT]
        visit.copy = copy
        visit.confirmed = (copy.user.sessionId, copy.seen_ms)
        session = SessionState(
            copy.fresh_user(now), loaded=copy.user, loaded_json=copy.content_json
        )
        return session, None

    def confirmed(self, request: web.Request, session: SessionState, seen_ms: int) -> None:
        request[VISIT].confirmed = (session.session_id, seen_ms)
        # A copy of other content predates what the database holds now (a chat turn, a link
        # made here): every copy of the session goes, and the next read asks the database.
        self.cache.supersede(session.user)

    def read_later(
        self, request: web.Request, session: SessionState, read_at: int, *, settled: bool
    ) -> None:
        # Reported as a cache hit is: with the next flush's touch_sessions, seen at read_at.
        if settled:
            self.confirmed(request, session, read_at)
        else:  # a writer had the row: keep no copy of what it may be changing
            self.cache.supersede(session.user)
        self.cache.read(session.session_id, read_at)

    def answer_read(self, request: web.Request) -> bool:
        session = session_of(request)
        copy = request[VISIT].copy_of(session)
        if copy is None:
            return False
        # The read is reported to the database with this worker's next batched touch.
        self.cache.read(session.session_id, copy.seen_ms)
        return True

    def end(self, request: web.Request, session: SessionState) -> None:
        super().end(request, session)
        self.cache.revoke(session.session_id)

    def kept(self, request: web.Request, session: SessionState) -> None:
        # The database has just confirmed the cookie as it is: later reads need not ask it.
        # (a copy the cache already holds needs no confirming)
        visit = request[VISIT]
        seen_ms, loaded, sealed = visit.seen_ms(session), session.loaded, request[INCOMING].seal
        if seen_ms is not None and loaded is not None and sealed and visit.copy_of(session) is None:
            self.cache.confirm(sealed, loaded, seen_ms, visit.began)

    def written(
        self, request: web.Request, session: SessionState, user: CookieUser, sealed: str
    ) -> None:
        visit = request[VISIT]
        seen_ms = visit.seen_ms(session)
        if seen_ms is not None:  # the next request will send this seal
            self.cache.confirm(sealed, user, seen_ms, visit.began)

    def counters(self) -> dict[str, Any]:
        if not self.cache.holds_copies:  # the cache is off: /metrics shows no read cache
            return super().counters()
        return super().counters() | {"readCache": self.cache.snapshot()}


async def touch_flusher(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: flush every ``SESSION_TOUCH_FLUSH_SECONDS`` while the app runs, and once
    more on shutdown (registered after the database context, so it stops first)."""
    store = app[SESSION_STORE]
    if not isinstance(store, CachedSessionStore):
        yield
        return
    cache = store.cache
    service, interval = app[SERVICE], app[SETTINGS].session_touch_flush_seconds

    async def loop() -> None:
        # Fixed rate: a flush that took d seconds is followed by the next one after interval - d
        # (at once if it took longer), so copies are re-checked every interval, not every
        # interval + d.
        due = time.monotonic()
        while True:
            due += interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due = max(due, time.monotonic() - interval)
            try:
                await cache.flush(service)
            except Exception:  # never let the flusher die: the next interval tries again
                log.exception("read cache flush raised")

    task = asyncio.create_task(loop(), name="bevsession-touch-flusher")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(cache.flush(service), timeout=max(interval, 1.0))
