"""What the sealed cookie carries, and the per-request session state handlers work with.

The cookie has the seed's shape ``{"user": SessionData}`` so a Node iron-session app and this
server can read each other's cookies while routes move over one at a time. It keeps only what
a request needs without the database: ids, timestamps, counters, mode, flags and the persona
summary. Detection histories and messages live in the database (the seed's cookie grew without
bound and iron-session fails past 4096 bytes), so they are dropped when a cookie is resealed.
"""

from __future__ import annotations

import marshal
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bevsession.models import VECTOR_NAMES, PersonaScores
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


# What a persona's summary leaves out (persona_summary), as a ``model_dump`` exclude of
# PersonaScores: detection histories and questions asked (they stay in the database).
PERSONA_LEFT_OUT: dict[str, Any] = {
    "detection_vectors": {f"{name}{HISTORY_SUFFIX}" for name in VECTOR_NAMES},
    "questions_asked": True,
}


def persona_json(persona: PersonaScores) -> dict[str, Any]:
    """The persona's summary as JSON data, dumped once without what the summary drops: the
    cookie's persona and the chat reply's (equals ``persona_summary(persona.model_dump(mode=
    "json"))``)."""
    return persona.model_dump(mode="json", exclude=PERSONA_LEFT_OUT)


def sealed_by_seed(user: dict[str, Any]) -> bool:
    """Whether unsealed SessionData has the seed's shape (detection histories in the persona):
    a Node iron-session app sealed it, since this server never puts histories in a cookie."""
    persona = user.get("persona")
    vectors = persona.get("detection_vectors") if isinstance(persona, dict) else None
    return isinstance(vectors, dict) and any(k.endswith(HISTORY_SUFFIX) for k in vectors)


def new_user(now: int | None = None) -> CookieUser:
    stamp = now_ms() if now is None else now
    return CookieUser(sessionId=uuid.uuid4(), createdAt=stamp, lastActivityAt=stamp)


def arrived(user: CookieUser, now: int) -> CookieUser:
    """*user* as one request's copy, active *now*: its persona is a dict of its own (a marshal
    copy: 2 µs, where a JSON copy costs 5 and deepcopy 10), so a change in place made by a
    handler is a change to this copy only, and "did it change?" can see it."""
    persona = marshal.loads(marshal.dumps(user.persona))  # noqa: S302 (our own bytes)
    return user.model_copy(update={"persona": persona, "lastActivityAt": now})


class SessionState:
    """The session of one request: the cookie's content, and whether the cookie must be
    rewritten.

    Handlers change it only through :meth:`update`, :meth:`restart`, :meth:`clear` (or in place,
    in the persona of :attr:`user`), so "did anything change?" is a comparison with the content
    as it arrived, not something each handler must remember. Where the content came from (the
    sealed cookie, or a copy the read cache holds) and when the database last confirmed it are
    the store's business (``store.py``), not the session's.
    """

    __slots__ = (
        "_arrived", "_loaded", "_loaded_json", "cleared", "cookie_user", "is_new", "rejected",
        "user",
    )  # fmt: skip

    def __init__(self, user: CookieUser, *, loaded: CookieUser | None = None,
                 loaded_json: str | None = None, is_new: bool = False,
                 rejected: str | None = None,
                 cookie_user: dict[str, Any] | None = None) -> None:  # fmt: skip
        """*user*: this request's content (:func:`arrived`: it shares no dict with *loaded*);
        *loaded*: the content as the cookie carried it, never changed (None: a new session, or
        one whose cookie must be rewritten); *loaded_json*: ``content_json(loaded)`` when the
        caller has it already."""
        self.user = user
        self.is_new = is_new
        self.rejected = rejected
        self.cleared = False
        # The SessionData exactly as the sealed cookie carried it (a Node app's persona with its
        # detection histories included): what the session is adopted from when the database has
        # no row for it (public.adopt_session). None when no cookie was unsealed this request.
        self.cookie_user = cookie_user
        self._loaded = loaded
        self._loaded_json = loaded_json
        # *user* while no update() replaced it: then only its persona can differ from *loaded*.
        self._arrived: CookieUser | None = user

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
        loaded = self._loaded
        if loaded is None:
            return True
        if self.user is self._arrived:
            # Not replaced: only its own persona dict can have changed, in place.
            if self.user.persona != loaded.persona:
                return True
        else:
            if self._loaded_json is None:
                self._loaded_json = content_json(loaded)
            if content_json(self.user) != self._loaded_json:
                return True
        return self.user.lastActivityAt - loaded.lastActivityAt >= TOUCH_INTERVAL_MS

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
        self._loaded = self._loaded_json = self._arrived = None

    def clear(self) -> None:
        """The session is over: its cookie is deleted at the end of this request, and this
        worker refuses it from then on (revoke it in the database too, for every worker:
        ``SessionService.clear_session``)."""
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
