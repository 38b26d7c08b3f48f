"""What the sealed cookie carries, and the per-request session state handlers work with.

The cookie has the seed's shape ``{"user": SessionData}`` so a Node iron-session app and this
server can read each other's cookies while routes move over one at a time. It keeps only what
a request needs without the database: ids, timestamps, counters, mode, flags and the persona
summary. Detection histories and messages live in the database (the seed's cookie grew without
bound and iron-session fails past 4096 bytes), so they are dropped when a cookie is resealed.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bevsession.sealing import Sealer, SealError

TOUCH_INTERVAL_MS = 60_000  # resend the cookie for activity alone at most once a minute
HISTORY_SUFFIX = "_history"

Mode = Literal["fresh", "returning", "data_connected"]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class CookieUser(BaseModel):
    """The seed's ``SessionData`` as it travels in the cookie (camelCase, like iron-session)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sessionId: uuid.UUID
    userId: str | None = None
    createdAt: int = Field(ge=0)
    lastActivityAt: int = Field(ge=0)
    lastMessageAt: int | None = None
    messageCount: int = Field(0, ge=0)
    currentMode: Mode = "fresh"
    hasCompletedOnboarding: bool = False
    hasBrochure: bool = False
    isDataConnected: bool = False
    lastGeneratedBrochureId: str | None = None
    lastBrochureGeneratedAt: int | None = None
    persona: dict[str, Any] = Field(default_factory=dict)


def content_json(user: CookieUser) -> str:
    """Everything but the activity stamp, serialised: the basis of "did it change?"."""
    return user.model_dump_json(exclude={"lastActivityAt"})


def persona_summary(persona: dict[str, Any]) -> dict[str, Any]:
    """The persona without detection histories: what the cookie may carry."""
    summary = dict(persona)
    vectors = summary.get("detection_vectors")
    if isinstance(vectors, dict):
        summary["detection_vectors"] = {
            k: v for k, v in vectors.items() if not k.endswith(HISTORY_SUFFIX)
        }
    summary.pop("questions_asked", None)
    return summary


def sealed_by_seed(user: dict[str, Any]) -> bool:
    """Whether unsealed SessionData has the seed's shape (detection histories in the persona):
    a Node iron-session app sealed it, since this server never puts histories in a cookie."""
    persona = user.get("persona")
    vectors = persona.get("detection_vectors") if isinstance(persona, dict) else None
    return isinstance(vectors, dict) and any(k.endswith(HISTORY_SUFFIX) for k in vectors)


def new_user(now: int | None = None) -> CookieUser:
    stamp = now_ms() if now is None else now
    return CookieUser(sessionId=uuid.uuid4(), createdAt=stamp, lastActivityAt=stamp)


class SessionState:
    """The session of one request: the cookie's data and whether the cookie must be rewritten.

    Handlers change it only through :meth:`update`, :meth:`restart` and :meth:`clear`, so
    "did anything change?" is a comparison, not something each handler must remember.
    """

    __slots__ = (
        "_as_loaded", "_loaded", "_loaded_json", "cached", "cleared", "cookie_user", "is_new",
        "rejected", "seen_ms", "user",
    )  # fmt: skip

    def __init__(self, user: CookieUser, *, is_new: bool, rejected: str | None = None,
                 reseal: bool = False, loaded_json: str | None = None,
                 cookie_user: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.user = user
        self.is_new = is_new
        self.rejected = rejected
        self.cleared = False
        # The SessionData exactly as the sealed cookie carried it (a Node app's persona with its
        # detection histories included): what the session is adopted from when the database has
        # no row for it (public.adopt_session). None when no cookie was unsealed this request.
        self.cookie_user = cookie_user
        # When the database last confirmed this content (its last_activity_at, ms): set by an
        # RPC that returned the session, or by the read cache (then ``cached``, from_confirmed).
        self.seen_ms: int | None = None
        self.cached = False
        # What the cookie held when the request arrived (None: the cookie must be written).
        # Kept as JSON too: a handler that changes a nested value in place is still seen.
        self._loaded: CookieUser | None = None if (is_new or reseal) else user
        if self._loaded is None:
            self._loaded_json = ""
        else:  # (``loaded_json``: the caller's ``content_json(user)``, not computed again)
            self._loaded_json = content_json(user) if loaded_json is None else loaded_json
        # This request's own copy of the loaded content while no update() replaced it (only a
        # read-cache session has one: its persona is a separate dict, see from_confirmed).
        self._as_loaded: CookieUser | None = None

    @classmethod
    def from_confirmed(
        cls, loaded: CookieUser, user: CookieUser, *, seen_ms: int, loaded_json: str
    ) -> SessionState:
        """A session from the read cache: *loaded* is the cached content (shared, never
        changed), *user* this request's copy of it with its own persona dict, *loaded_json*
        the cache's ``content_json(loaded)`` (not computed again)."""
        state = cls(loaded, is_new=False, loaded_json=loaded_json)
        state.user = state._as_loaded = user
        state.seen_ms = seen_ms
        state.cached = True
        return state

    @property
    def session_id(self) -> uuid.UUID:
        return self.user.sessionId

    @property
    def loaded(self) -> CookieUser | None:
        """The cookie's content as it arrived (None for a new session or one to reseal)."""
        return self._loaded

    @property
    def changed(self) -> bool:
        if self.cleared:
            return False
        if self._loaded is None:
            return True
        if self.user is self._as_loaded:
            # Not replaced: only its own persona dict can have changed, in place.
            if self.user.persona != self._loaded.persona:
                return True
        elif content_json(self.user) != self._loaded_json:
            return True
        return self.user.lastActivityAt - self._loaded.lastActivityAt >= TOUCH_INTERVAL_MS

    def update(self, **fields: Any) -> None:
        """Replace fields (camelCase names); ``persona`` is reduced to its summary."""
        if "persona" in fields and fields["persona"] is not None:
            fields["persona"] = persona_summary(fields["persona"])
        self.user = self.user.model_copy(update=fields)

    def restart(self, reason: str) -> None:
        """Drop this session (e.g. revoked in the database) and start a fresh one."""
        self.user = new_user()
        self.is_new = True
        self.rejected = reason
        self.cookie_user = None
        self.seen_ms = None
        self.cached = False
        self._loaded = None
        self._loaded_json = ""
        self._as_loaded = None

    def clear(self) -> None:
        """The cookie is deleted at the end of this request."""
        self.cleared = True


def open_cookie(
    value: str | None, sealer: Sealer
) -> tuple[CookieUser | None, str | None, bool, dict[str, Any] | None]:
    """Unseal and validate a cookie: (user, rejection reason, needs reseal with newest id, the
    unsealed SessionData as it was — what a session missing from the database is adopted from).

    Every failure is a reason, never an exception: a tampered, expired or foreign cookie is
    simply no session.
    """
    if not value:
        return None, None, False, None
    try:
        data = sealer.unseal(value)
    except SealError as exc:
        return None, str(exc.reason), False, None
    user = data.get("user") if isinstance(data, dict) else None
    if user is None:
        return None, "empty", False, None
    try:
        parsed = CookieUser.model_validate(user)
    except ValidationError:
        return None, "bad_payload", False, None
    stale_id = not value.startswith(f"Fe26.2*{sealer.seal_id}*")
    vectors = parsed.persona.get("detection_vectors")
    has_history = isinstance(vectors, dict) and any(k.endswith(HISTORY_SUFFIX) for k in vectors)
    if has_history:  # a seed-shaped cookie (Node app): keep the summary only
        parsed = parsed.model_copy(update={"persona": persona_summary(parsed.persona)})
    return parsed, None, stale_id or has_history, user


def expiry_reason(user: CookieUser, *, now: int, lifetime: int, idle_timeout: int) -> str | None:
    """Why a session is over, from the sealed data alone: ``lifetime`` or ``idle`` (or None).

    Two different clocks: the absolute lifetime runs from ``createdAt`` and activity cannot
    extend it; the idle timeout runs from ``lastActivityAt`` (refreshed in the cookie at most
    once per touch interval, so it is exact to about a minute).
    """
    if now - user.createdAt >= lifetime * 1000:
        return "lifetime"
    if idle_timeout and now - user.lastActivityAt >= idle_timeout * 1000:
        return "idle"
    return None


def remaining_seconds(user: CookieUser, *, now: int, lifetime: int, idle_timeout: int = 0) -> int:
    """Seconds until the session ends (rounded up): the ttl a resealed cookie may have.

    Whichever ends first: the absolute lifetime left since ``createdAt``, or the idle timeout
    counted from ``lastActivityAt`` (0 = none). A cookie is resealed as the visitor comes back,
    so the idle part slides with activity, as the seed's 24 h cookie does; the absolute part
    only counts down. Rounded up so that a session sealed within its first second gets exactly
    the configured ttl, and its cookie exactly iron-session's ``Max-Age``.
    """
    left = -((now - user.createdAt - lifetime * 1000) // 1000)
    if idle_timeout:
        left = min(left, -((now - user.lastActivityAt - idle_timeout * 1000) // 1000))
    return left


def seal_user(user: CookieUser, sealer: Sealer, ttl: int) -> str:
    """Seal ``{"user": …}`` exactly as iron-session's ``session.save()`` would."""
    return sealer.seal({"user": user.model_dump(mode="json")}, ttl=ttl)
