"""The session service: the seed's operations as typed async methods, one RPC each.

API shape: one :class:`SessionService` per application (stateless, shared by every request);
every visitor operation takes the ``session_id`` first::

    snapshot = await service.get_session(session_id)
    turn = await service.begin_chat_turn(session_id, text, signals=signals)

Why the id on every call rather than only a handle bound to one session: an aiohttp handler
holds the service from the app, and the session id can change in the middle of a request (a
cookie the database reports as revoked is replaced by a fresh session and the operation retried
once), which reads naturally as ``lambda: service.get_session(state.session_id)``. The id is the
only identity a visitor call carries — the transport turns it into that session's claims and
RLS keys on them — so no method can reach another session's rows whatever else it is given.
Admin work (:meth:`SessionService.admin_session_stats`, :meth:`SessionService.purge_sessions`)
runs as ``service_role``; the edge worker's own calls (touch, validate, seal keys, the policy)
as ``session_worker``.

Inputs are validated before any I/O by pydantic, from each method's annotations (the types of
:mod:`bevsession.arguments`, built on the limits and models the SQL's domains define); a refused
input raises :class:`~bevsession.errors.InvalidInput` (code ``22023``, as the SQL would), so
callers see one exception type whether Python or PostgreSQL refused it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast
from uuid import UUID

from pydantic import BaseModel, SkipValidation, StrictBool, StrictInt, ValidationError

from .arguments import (
    AccountId,
    CookieContent,
    GenerationMode,
    HistoryLimit,
    MessageContent,
    PainPoints,
    PurgeBatch,
    ReadTime,
    RetentionAge,
    SeenMs,
    SessionId,
    SignalJson,
    Signals,
    TokenBudget,
    UpdatesJson,
    validated,
)
from .errors import DatabaseError
from .models import (
    AdoptionSnapshot,
    ChatTurnBegin,
    ChatTurnBrief,
    ChatTurnFinish,
    ChatTurnFinishBrief,
    ClearResult,
    ForgetResult,
    HistoryPage,
    LinkResult,
    MessageResult,
    PersonaSignal,
    PersonaUpdateResult,
    PurgeResult,
    Role,
    SealKeyCheck,
    SessionPolicy,
    SessionRead,
    SessionSnapshot,
    SessionStats,
    SignalResult,
    TouchResult,
    ValidateResult,
)
from .transports.base import Identity, Service, Transport, Visitor, Worker

__all__ = ["SessionService"]

M = TypeVar("M", bound=BaseModel)


def _batch_args(seen_ms: Mapping[UUID, int]) -> dict[str, Any]:
    """``session_ids`` and ``seen_ms`` of one touch or validation batch (a validated ``SeenMs``)."""
    return {"session_ids": [str(sid) for sid in seen_ms], "seen_ms": list(seen_ms.values())}


class SessionService:
    """Every session operation for any visitor, plus admin calls; one RPC per method."""

    __slots__ = ("transport",)

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    async def call(self, identity: Identity, fn: str, args: Mapping[str, Any], model: type[M]) -> M:
        """Run one RPC and parse its JSON into *model* (on the postgres transport straight from
        the JSON text: see :meth:`Transport.call_model`)."""
        try:
            return await self.transport.call_model(fn, args, model, identity=identity)
        except ValidationError as exc:
            # The SQL answered something the models do not describe: a contract mismatch.
            raise DatabaseError(
                f"{fn} returned an unexpected shape: {exc.errors()[0]['msg']}", code="contract"
            ) from exc

    async def _visit(
        self, session_id: UUID | str, fn: str, args: Mapping[str, Any], model: type[M]
    ) -> M:
        # every caller is @validated: session_id is a UUID by now
        return await self.call(Visitor(cast(UUID, session_id)), fn, args, model)

    # --- the seed's six operations -------------------------------------------------------
    @validated
    async def get_session(
        self, session_id: SessionId, *, touch: StrictBool = True
    ) -> SessionSnapshot:
        """Get or create the session (and touch ``last_activity_at`` unless ``touch=False``)."""
        return await self._visit(session_id, "get_session", {"touch": touch}, SessionSnapshot)

    @validated
    async def adopt_session(
        self,
        session_id: SessionId,
        cookie: CookieContent,
        *,
        count_cookie_activity: StrictBool = False,
    ) -> AdoptionSnapshot:
        """``get_session`` for a visitor who arrived with a cookie: when the database has no row
        for the session, it is created from *cookie* (the unsealed ``SessionData``: persona,
        counters, flags, times) instead of defaults, each value validated by the seed rules
        (what they refuse is dropped and counted in ``dropped``); otherwise the database wins.

        ``count_cookie_activity``: the cookie was sealed by another app that shares the visitor
        (the seed's Node app), so its ``lastActivityAt`` is activity the database did not see and
        counts for the idle timeout. Never for a cookie this server sealed: then the database's
        clock decides alone.
        """
        args = {"cookie": cookie, "count_cookie_activity": count_cookie_activity}
        return await self._visit(session_id, "adopt_session", args, AdoptionSnapshot)

    @validated
    async def read_session(self, session_id: SessionId) -> SessionRead:
        """The session and its persona's summary for a read: no lock, no write, nothing
        touched (report the read later: :meth:`touch_sessions` with ``read_at``). ``session``
        is None when the read would need a write: then :meth:`adopt_session`."""
        return await self._visit(session_id, "read_session", {}, SessionRead)

    @validated
    async def update_persona(
        self, session_id: SessionId, updates: UpdatesJson
    ) -> PersonaUpdateResult:
        """Absolute scores (clamped), pain points merged, questions appended, mode and flags."""
        return await self._visit(
            session_id, "update_persona", {"updates": updates}, PersonaUpdateResult
        )

    @validated
    async def record_persona_signal(
        self, session_id: SessionId, signal: SignalJson
    ) -> SignalResult:
        """Apply one signal (deltas, pain points, vector) and write its audit row."""
        # validated into the signal's JSON object, which is the function's argument list
        args = cast(Mapping[str, Any], signal)
        return await self._visit(session_id, "record_persona_signal", args, SignalResult)

    @validated
    async def add_conversation_message(
        self,
        session_id: SessionId,
        role: Role,
        content: MessageContent,
        generation_mode: GenerationMode | None = None,
        ui_specification: Any = None,
        estimated_read_time: ReadTime | None = None,
        pain_points_inferred: PainPoints = (),
    ) -> MessageResult:
        """Store one message; the persona snapshot is taken by the database."""
        args = {
            "role": role,
            "content": content,
            "generation_mode": generation_mode,
            "ui_specification": ui_specification,
            "estimated_read_time": estimated_read_time,
            "pain_points_inferred": list(pain_points_inferred),
        }
        return await self._visit(session_id, "add_conversation_message", args, MessageResult)

    @validated
    async def get_conversation_history(
        self,
        session_id: SessionId,
        *,
        limit: HistoryLimit = 50,
        before: StrictInt | None = None,
        token_budget: TokenBudget | None = None,
    ) -> HistoryPage:
        """The newest ``limit`` messages older than ``before`` (a ``seq``), oldest first.

        With ``token_budget``, only the newest messages whose stored token counts fit it: the
        window an LLM prompt can take.
        """
        args: dict[str, Any] = {"history_limit": limit, "before": before}
        if token_budget is not None:
            args["token_budget"] = token_budget
        return await self._visit(session_id, "get_conversation_history", args, HistoryPage)

    async def get_session_policy(self) -> SessionPolicy:
        """The absolute lifetime and idle timeout the database enforces (as the edge worker)."""
        return await self.call(Worker(), "get_session_policy", {}, SessionPolicy)

    @validated
    async def clear_session(self, session_id: SessionId) -> ClearResult:
        """Revoke the session for good (idempotent); its data stays for analytics."""
        return await self._visit(session_id, "clear_session", {}, ClearResult)

    # --- beyond the seed -----------------------------------------------------------------
    @validated
    async def forget_session(self, session_id: SessionId) -> ForgetResult:
        """Erase messages, signals and persona; the revoked session row stays as a tombstone."""
        return await self._visit(session_id, "forget_session", {}, ForgetResult)

    async def begin_chat_turn(
        self,
        session_id: UUID | str,
        content: str,
        *,
        signals: Sequence[PersonaSignal | Mapping[str, Any]] = (),
        history_limit: int = 20,
        generation_mode: str | None = None,
    ) -> ChatTurnBegin:
        """Create-or-touch, apply *signals*, store the user's message; return what a reply needs."""
        return await self._begin_chat_turn(
            session_id, content, signals, history_limit, generation_mode, ChatTurnBegin
        )

    async def begin_chat_turn_brief(
        self,
        session_id: UUID | str,
        content: str,
        *,
        signals: Sequence[PersonaSignal | Mapping[str, Any]] = (),
        history_limit: int = 20,
        generation_mode: str | None = None,
    ) -> ChatTurnBrief:
        """:meth:`begin_chat_turn`, parsed into less: session, persona and the history as who said
        what (no stored message, no persona snapshots): what the edge worker reads per turn."""
        return await self._begin_chat_turn(
            session_id, content, signals, history_limit, generation_mode, ChatTurnBrief
        )

    @validated
    async def _begin_chat_turn(
        self,
        session_id: SessionId,
        content: MessageContent,
        signals: Signals,
        history_limit: HistoryLimit,
        generation_mode: GenerationMode | None,
        model: SkipValidation[type[M]],
    ) -> M:
        args = {
            "content": content,
            "signals": list(signals),
            "history_limit": history_limit,
            "generation_mode": generation_mode,
        }
        return await self._visit(session_id, "begin_chat_turn", args, model)

    async def finish_chat_turn(
        self,
        session_id: UUID | str,
        content: str,
        *,
        ui_specification: Any = None,
        generation_mode: str | None = None,
        estimated_read_time: str | None = None,
    ) -> ChatTurnFinish:
        """Store the assistant's reply of the turn."""
        return await self._finish_chat_turn(
            session_id, content, ui_specification, generation_mode, estimated_read_time,
            ChatTurnFinish,
        )  # fmt: skip

    async def finish_chat_turn_brief(
        self,
        session_id: UUID | str,
        content: str,
        *,
        ui_specification: Any = None,
        generation_mode: str | None = None,
        estimated_read_time: str | None = None,
    ) -> ChatTurnFinishBrief:
        """:meth:`finish_chat_turn`, parsed into the session only (the stored reply skipped)."""
        return await self._finish_chat_turn(
            session_id, content, ui_specification, generation_mode, estimated_read_time,
            ChatTurnFinishBrief,
        )  # fmt: skip

    @validated
    async def _finish_chat_turn(
        self,
        session_id: SessionId,
        content: MessageContent,
        ui_specification: Any,
        generation_mode: GenerationMode | None,
        estimated_read_time: ReadTime | None,
        model: SkipValidation[type[M]],
    ) -> M:
        args = {
            "content": content,
            "ui_specification": ui_specification,
            "generation_mode": generation_mode,
            "estimated_read_time": estimated_read_time,
        }
        return await self._visit(session_id, "finish_chat_turn", args, model)

    @validated
    async def link_session(self, session_id: SessionId, user_id: AccountId) -> LinkResult:
        """Attach the session (created if new) and its persona, messages and signals to the
        account *user_id*, in one transaction; idempotent for the same account.

        Call it only with an account you have just verified the visitor's access token for (the
        edge worker's ``POST /api/session/link`` does): *user_id* travels as the call's
        ``linked_user_id`` claim, never as an argument. A session linked to another account
        raises :class:`~bevsession.errors.Conflict` (``PT409``) and changes nothing.
        """
        # both are UUIDs by now (@validated)
        identity = Visitor(cast(UUID, session_id), linked_user_id=cast(UUID, user_id))
        return await self.call(identity, "link_session", {}, LinkResult)

    # --- admin and lifecycle ---------------------------------------------------------------
    @validated
    async def register_seal_keys(self, fingerprints: Mapping[str, str]) -> SealKeyCheck:
        """Record cookie-password fingerprints (as the edge worker, ``session_worker``);
        returns the ids whose password changed."""
        return await self.call(
            Worker(), "register_seal_keys", {"fingerprints": dict(fingerprints)}, SealKeyCheck
        )

    async def admin_session_stats(self) -> SessionStats:
        """Session, persona, message and signal counts (runs as ``service_role``)."""
        return await self.call(Service(), "admin_session_stats", {}, SessionStats)

    @validated
    async def purge_sessions(
        self, older_than: RetentionAge, *, batch: PurgeBatch = 10_000
    ) -> PurgeResult:
        """Retention (``service_role``): delete sessions that never did anything and revoked or
        forgotten ones, inactive / revoked for longer than *older_than* (at least one day).

        At most *batch* sessions of each kind go per call; call again while ``result.more``.
        Pick an age longer than the cookie lifetime, so a deleted revoked id cannot come back.
        """
        args = {"older_than_ms": int(older_than.total_seconds() * 1000), "batch": batch}
        return await self.call(Service(), "purge_sessions", args, PurgeResult)

    @validated
    async def touch_sessions(self, seen_ms: SeenMs) -> TouchResult:
        """Batched activity (as ``session_worker``) for reads an edge worker answered from
        cookies the database confirmed: *seen_ms* maps each session id to the
        ``last_activity_at`` (ms) the database returned when it confirmed it. Live, unchanged
        sessions are touched; the result lists the ids whose copy is stale (gone, revoked,
        expired, busy or changed since).
        """
        args = _batch_args(seen_ms)
        return await self.call(Worker(), "touch_sessions", args, TouchResult)

    @validated
    async def validate_sessions(self, seen_ms: SeenMs) -> ValidateResult:
        """Re-check copies an edge worker holds, touching nothing: *seen_ms* maps each session
        id to the ``last_activity_at`` (ms) the database returned when it confirmed it. The
        result lists the ids whose copy is stale (gone, revoked, expired or changed since) and,
        among them, the revoked ones.
        """
        args = _batch_args(seen_ms)
        return await self.call(Worker(), "validate_sessions", args, ValidateResult)

    async def ping(self) -> None:
        """Raise ``DatabaseUnavailable`` unless the database answers."""
        await self.transport.ping()

    async def close(self) -> None:
        await self.transport.close()
