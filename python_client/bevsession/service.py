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

Inputs are validated with the models of :mod:`bevsession.models` before any I/O; a refused input
raises :class:`~bevsession.errors.InvalidInput` (code ``22023``, as the SQL would), so callers see
one exception type whether Python or PostgreSQL refused it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ValidationError

from .errors import DatabaseError, InvalidInput
from .models import (
    MAX_HISTORY_PAGE,
    MAX_MESSAGE_CHARS,
    MAX_PURGE_BATCH,
    MAX_SIGNALS_PER_TURN,
    MAX_TOUCH_BATCH,
    MIN_RETENTION_MS,
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
    NewMessage,
    PersonaSignal,
    PersonaUpdate,
    PersonaUpdateResult,
    PurgeResult,
    SealKeyCheck,
    SessionPolicy,
    SessionSnapshot,
    SessionStats,
    SignalResult,
    TouchResult,
    ValidateResult,
)
from .transports.base import Identity, Service, Transport, Visitor, Worker

__all__ = ["SessionService"]

M = TypeVar("M", bound=BaseModel)
I = TypeVar("I", bound=BaseModel)  # noqa: E741


def _invalid(exc: ValidationError) -> InvalidInput:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "input"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return InvalidInput(f"{where}: {first['msg']}{more}", code="22023")


def _validated(model: type[I], data: Any) -> I:
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _check_limit(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_HISTORY_PAGE:
        raise InvalidInput(f"{name}: must be between 1 and {MAX_HISTORY_PAGE}", code="22023")
    return value


def _check_content(content: str) -> str:
    if not isinstance(content, str):
        raise InvalidInput("content: is required", code="22023")
    if len(content) > MAX_MESSAGE_CHARS:
        raise InvalidInput(f"content: at most {MAX_MESSAGE_CHARS} characters", code="22023")
    return content


def _session_uuid(session_id: UUID | str) -> UUID:
    if isinstance(session_id, UUID):
        return session_id
    try:
        return UUID(str(session_id))
    except ValueError:
        raise InvalidInput("session_id: must be a UUID", code="22023") from None


def _batch_args(seen_ms: Mapping[UUID, int]) -> dict[str, Any]:
    """``session_ids`` and ``seen_ms`` of one touch or validation batch, checked."""
    if len(seen_ms) > MAX_TOUCH_BATCH:
        raise InvalidInput(f"session_ids: at most {MAX_TOUCH_BATCH} ids per call", code="22023")
    ids = [_session_uuid(sid) for sid in seen_ms]
    stamps = list(seen_ms.values())
    if any(isinstance(ms, bool) or not isinstance(ms, int) for ms in stamps):
        raise InvalidInput("seen_ms: must be integers (ms)", code="22023")
    return {"session_ids": [str(sid) for sid in ids], "seen_ms": stamps}


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
        return await self.call(Visitor(_session_uuid(session_id)), fn, args, model)

    # --- the seed's six operations -------------------------------------------------------
    async def get_session(self, session_id: UUID | str, *, touch: bool = True) -> SessionSnapshot:
        """Get or create the session (and touch ``last_activity_at`` unless ``touch=False``)."""
        return await self._visit(session_id, "get_session", {"touch": touch}, SessionSnapshot)

    async def adopt_session(
        self,
        session_id: UUID | str,
        cookie: Mapping[str, Any],
        *,
        count_cookie_activity: bool = False,
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
        if not isinstance(cookie, Mapping):
            raise InvalidInput(
                "cookie: must be a JSON object (the cookie's SessionData)", code="22023"
            )
        args = {"cookie": dict(cookie), "count_cookie_activity": count_cookie_activity}
        return await self._visit(session_id, "adopt_session", args, AdoptionSnapshot)

    async def update_persona(
        self, session_id: UUID | str, updates: PersonaUpdate | Mapping[str, Any]
    ) -> PersonaUpdateResult:
        """Absolute scores (clamped), pain points merged, questions appended, mode and flags."""
        checked = _validated(PersonaUpdate, updates)
        return await self._visit(
            session_id, "update_persona", {"updates": checked.to_rpc()}, PersonaUpdateResult
        )

    async def record_persona_signal(
        self, session_id: UUID | str, signal: PersonaSignal | Mapping[str, Any]
    ) -> SignalResult:
        """Apply one signal (deltas, pain points, vector) and write its audit row."""
        s = _validated(PersonaSignal, signal)
        args = {
            "signal_type": s.signal_type,
            "signal_text": s.signal_text,
            "signal_strength": s.signal_strength,
            "pain_points_inferred": list(s.pain_points_inferred),
            "score_updates": dict(s.score_updates),
            "vector": s.vector,
            "vector_value": s.vector_value,
        }
        return await self._visit(session_id, "record_persona_signal", args, SignalResult)

    async def add_conversation_message(
        self,
        session_id: UUID | str,
        role: str,
        content: str,
        generation_mode: str | None = None,
        ui_specification: Any = None,
        estimated_read_time: str | None = None,
        pain_points_inferred: Iterable[str] = (),
    ) -> MessageResult:
        """Store one message; the persona snapshot is taken by the database."""
        m = _validated(
            NewMessage,
            {
                "role": role,
                "content": content,
                "generation_mode": generation_mode,
                "ui_specification": ui_specification,
                "estimated_read_time": estimated_read_time,
                "pain_points_inferred": list(pain_points_inferred),
            },
        )
        args = {
            "role": m.role,
            "content": m.content,
            "generation_mode": m.generation_mode,
            "ui_specification": m.ui_specification,
            "estimated_read_time": m.estimated_read_time,
            "pain_points_inferred": list(m.pain_points_inferred),
        }
        return await self._visit(session_id, "add_conversation_message", args, MessageResult)

    async def get_conversation_history(
        self,
        session_id: UUID | str,
        *,
        limit: int = 50,
        before: int | None = None,
        token_budget: int | None = None,
    ) -> HistoryPage:
        """The newest ``limit`` messages older than ``before`` (a ``seq``), oldest first.

        With ``token_budget``, only the newest messages whose stored token counts fit it: the
        window an LLM prompt can take.
        """
        if token_budget is not None and (isinstance(token_budget, bool) or token_budget < 1):
            raise InvalidInput("token_budget: must be at least 1", code="22023")
        args: dict[str, Any] = {
            "history_limit": _check_limit("history_limit", limit),
            "before": before,
        }
        if token_budget is not None:
            args["token_budget"] = token_budget
        return await self._visit(session_id, "get_conversation_history", args, HistoryPage)

    async def get_session_policy(self) -> SessionPolicy:
        """The absolute lifetime and idle timeout the database enforces (as the edge worker)."""
        return await self.call(Worker(), "get_session_policy", {}, SessionPolicy)

    async def clear_session(self, session_id: UUID | str) -> ClearResult:
        """Revoke the session for good (idempotent); its data stays for analytics."""
        return await self._visit(session_id, "clear_session", {}, ClearResult)

    # --- beyond the seed -----------------------------------------------------------------
    async def forget_session(self, session_id: UUID | str) -> ForgetResult:
        """Erase messages, signals and persona; the revoked session row stays as a tombstone."""
        return await self._visit(session_id, "forget_session", {}, ForgetResult)

    async def begin_chat_turn(
        self,
        session_id: UUID | str,
        content: str,
        *,
        signals: Iterable[PersonaSignal | Mapping[str, Any]] = (),
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
        signals: Iterable[PersonaSignal | Mapping[str, Any]] = (),
        history_limit: int = 20,
        generation_mode: str | None = None,
    ) -> ChatTurnBrief:
        """:meth:`begin_chat_turn`, parsed into less: session, persona and the history as who said
        what (no stored message, no persona snapshots): what the edge worker reads per turn."""
        return await self._begin_chat_turn(
            session_id, content, signals, history_limit, generation_mode, ChatTurnBrief
        )

    async def _begin_chat_turn(
        self,
        session_id: UUID | str,
        content: str,
        signals: Iterable[PersonaSignal | Mapping[str, Any]],
        history_limit: int,
        generation_mode: str | None,
        model: type[M],
    ) -> M:
        checked = [_validated(PersonaSignal, s) for s in signals]
        if len(checked) > MAX_SIGNALS_PER_TURN:
            raise InvalidInput(f"signals: at most {MAX_SIGNALS_PER_TURN} signals", code="22023")
        if generation_mode is not None:
            _validated(
                NewMessage, {"role": "user", "content": "", "generation_mode": generation_mode}
            )
        args = {
            "content": _check_content(content),
            "signals": [s.to_rpc() for s in checked],
            "history_limit": _check_limit("history_limit", history_limit),
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

    async def _finish_chat_turn(
        self,
        session_id: UUID | str,
        content: str,
        ui_specification: Any,
        generation_mode: str | None,
        estimated_read_time: str | None,
        model: type[M],
    ) -> M:
        m = _validated(
            NewMessage,
            {
                "role": "assistant",
                "content": content,
                "generation_mode": generation_mode,
                "ui_specification": ui_specification,
                "estimated_read_time": estimated_read_time,
            },
        )
        args = {
            "content": m.content,
            "ui_specification": m.ui_specification,
            "generation_mode": m.generation_mode,
            "estimated_read_time": m.estimated_read_time,
        }
        return await self._visit(session_id, "finish_chat_turn", args, model)

    async def link_session(self, session_id: UUID | str, user_id: UUID | str) -> LinkResult:
        """Attach the session (created if new) and its persona, messages and signals to the
        account *user_id*, in one transaction; idempotent for the same account.

        Call it only with an account you have just verified the visitor's access token for (the
        edge worker's ``POST /api/session/link`` does): *user_id* travels as the call's
        ``linked_user_id`` claim, never as an argument. A session linked to another account
        raises :class:`~bevsession.errors.Conflict` (``PT409``) and changes nothing.
        """
        try:
            account = user_id if isinstance(user_id, UUID) else UUID(str(user_id))
        except ValueError:
            raise InvalidInput("user_id: must be a UUID", code="22023") from None
        identity = Visitor(_session_uuid(session_id), linked_user_id=account)
        return await self.call(identity, "link_session", {}, LinkResult)

    # --- admin and lifecycle ---------------------------------------------------------------
    async def register_seal_keys(self, fingerprints: Mapping[str, str]) -> SealKeyCheck:
        """Record cookie-password fingerprints (as the edge worker, ``session_worker``);
        returns the ids whose password changed."""
        return await self.call(
            Worker(), "register_seal_keys", {"fingerprints": dict(fingerprints)}, SealKeyCheck
        )

    async def admin_session_stats(self) -> SessionStats:
        """Session, persona, message and signal counts (runs as ``service_role``)."""
        return await self.call(Service(), "admin_session_stats", {}, SessionStats)

    async def purge_sessions(self, older_than: timedelta, *, batch: int = 10_000) -> PurgeResult:
        """Retention (``service_role``): delete sessions that never did anything and revoked or
        forgotten ones, inactive / revoked for longer than *older_than* (at least one day).

        At most *batch* sessions of each kind go per call; call again while ``result.more``.
        Pick an age longer than the cookie lifetime, so a deleted revoked id cannot come back.
        """
        if not isinstance(older_than, timedelta):
            raise InvalidInput("older_than_ms: must be a timedelta", code="22023")
        older_than_ms = int(older_than.total_seconds() * 1000)
        if older_than_ms < MIN_RETENTION_MS:
            raise InvalidInput(
                f"older_than_ms: must be at least {MIN_RETENTION_MS} (one day)", code="22023"
            )
        if (
            isinstance(batch, bool)
            or not isinstance(batch, int)
            or not 1 <= batch <= MAX_PURGE_BATCH
        ):
            raise InvalidInput(f"batch: must be between 1 and {MAX_PURGE_BATCH}", code="22023")
        args = {"older_than_ms": older_than_ms, "batch": batch}
        return await self.call(Service(), "purge_sessions", args, PurgeResult)

    async def touch_sessions(self, seen_ms: Mapping[UUID, int]) -> TouchResult:
        """Batched activity (as ``session_worker``) for reads an edge worker answered from
        cookies the database confirmed: *seen_ms* maps each session id to the
        ``last_activity_at`` (ms) the database returned when it confirmed it. Live, unchanged
        sessions are touched; the result lists the ids whose copy is stale (gone, revoked,
        expired, busy or changed since).
        """
        args = _batch_args(seen_ms)
        return await self.call(Worker(), "touch_sessions", args, TouchResult)

    async def validate_sessions(self, seen_ms: Mapping[UUID, int]) -> ValidateResult:
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
