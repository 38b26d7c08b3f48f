"""Sessions this worker knows to be over: never confirmed again, never served from a cookie.

Why: the database refuses a revoked session for good, but a worker also answers some reads
without asking it — from its read cache, and from the cookie alone while the database is away.
A session this worker saw cleared, forgotten or refused (or that a flush reported revoked) is
remembered here, so that

- a request that began before the clear and confirms the session afterwards cannot put the
  copy back into the read cache (``ReadCache.confirm`` asks first), and
- the cookie of such a session is a refused cookie (reason ``revoked``) even while the
  database cannot be reached.

Entries live as long as a cookie naming them can still open (the absolute session lifetime),
and at most ``max_entries`` are kept, oldest dropped first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from uuid import UUID

__all__ = ["RevokedSessions"]

DEFAULT_MAX_ENTRIES = 100_000  # about 10 MB: a uuid, a float and the dict's overhead each


class RevokedSessions:
    """A bounded set of session ids this worker must refuse, each for *lifetime* seconds."""

    __slots__ = ("_until", "lifetime", "max_entries")

    def __init__(self, lifetime: float, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.lifetime = lifetime
        self.max_entries = max_entries
        self._until: OrderedDict[UUID, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._until)

    def __contains__(self, session_id: object) -> bool:
        if not isinstance(session_id, UUID):
            return False
        until = self._until.get(session_id)
        if until is None:
            return False
        if time.monotonic() >= until:  # no cookie naming it can still open
            del self._until[session_id]
            return False
        return True

    def add(self, session_id: UUID) -> None:
        """Refuse *session_id* from now on (for the session lifetime)."""
        self._until.pop(session_id, None)
        self._until[session_id] = time.monotonic() + self.lifetime
        while len(self._until) > self.max_entries:
            self._until.popitem(last=False)
