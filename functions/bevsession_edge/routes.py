"""HTTP routes of the edge worker (docs/http-api.md): thin handlers over ``SessionService``.

Handlers know HTTP and the session state; the service knows the RPCs; SQL knows the rules.
A session that the database reports as revoked (a replayed cookie after logout) is replaced by
a fresh one and the operation is retried once for the new visitor — never an error page.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bevsession.errors import DatabaseUnavailable, SessionNotFound, SessionRevoked
from bevsession.models import PersonaScores, SessionData

from .http_errors import ApiError
from .keys import DETECTOR, REPLIER, SERVICE, SETTINGS, TRANSPORT
from .middleware import session_of
from .openapi import openapi_document
from .session_cookie import SessionState, persona_summary

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
T = TypeVar("T")

DEFAULT_HISTORY_LIMIT = 20
REPLY_HISTORY_LIMIT = 20


# --- request parsing ------------------------------------------------------------------------
class ChatRequest(BaseModel):
    """``POST /api/chat`` body; unknown keys are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", strict=True)
    message: str = Field(min_length=1)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        body = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    return body


def validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


def int_query(
    request: web.Request, name: str, default: int | None, low: int, high: int
) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_input", f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, "invalid_input", f"{name} must be between {low} and {high}")
    return value


# --- session helpers ------------------------------------------------------------------------
def remember(state: SessionState, session: SessionData, persona: PersonaScores | None) -> None:
    """Copy what the database returned into the cookie's summary."""
    fields: dict[str, Any] = {
        "createdAt": session.created_at,
        "lastActivityAt": max(session.last_activity_at, state.user.lastActivityAt),
        "lastMessageAt": session.last_message_at,
        "messageCount": session.message_count,
        "currentMode": session.current_mode,
        "hasCompletedOnboarding": session.has_completed_onboarding,
        "hasBrochure": session.has_brochure,
        "isDataConnected": session.is_data_connected,
        "lastGeneratedBrochureId": session.last_generated_brochure_id,
        "lastBrochureGeneratedAt": session.last_brochure_generated_at,
    }
    if persona is not None:
        fields["persona"] = persona.model_dump(mode="json")
    state.update(**fields)


async def for_visitor(state: SessionState, operation: Callable[[], Awaitable[T]]) -> T:
    """Run *operation*; if the database says the session is revoked, start fresh and retry once."""
    try:
        return await operation()
    except SessionRevoked:
        log.debug("session refused by the database as revoked; starting a new session")
        state.restart("revoked")
        return await operation()


def summary(state: SessionState) -> dict[str, Any]:
    user = state.user
    persona = user.persona or persona_summary(PersonaScores().model_dump(mode="json"))
    return {
        "sessionId": str(user.sessionId),
        "createdAt": user.createdAt,
        "lastActivityAt": user.lastActivityAt,
        "lastMessageAt": user.lastMessageAt,
        "messageCount": user.messageCount,
        "currentMode": user.currentMode,
        "hasCompletedOnboarding": user.hasCompletedOnboarding,
        "hasBrochure": user.hasBrochure,
        "isDataConnected": user.isDataConnected,
        "persona": persona,
    }


# --- routes ---------------------------------------------------------------------------------
@routes.get("/api/session")
async def get_session(request: web.Request) -> web.Response:
    state = session_of(request)
    service = request.app[SERVICE]
    try:
        snap = await for_visitor(state, lambda: service.get_session(state.session_id))
    except DatabaseUnavailable:
        if state.is_new:
            raise
        # Reads are served from the cookie while the database is away.
        return web.json_response(summary(state), headers={"X-Session-Source": "cookie"})
    remember(state, snap.session, snap.persona)
    return web.json_response(summary(state))


@routes.post("/api/chat")
async def chat(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    body = await read_json_object(request)
    try:
        chat_request = ChatRequest.model_validate(body)
    except ValidationError as exc:
        raise ApiError(400, "invalid_input", validation_message(exc)) from None
    message = chat_request.message
    if not message.strip():
        raise ApiError(400, "invalid_input", "message must not be blank")
    if len(message) > settings.max_message_chars:
        raise ApiError(
            400, "invalid_input", f"message is longer than {settings.max_message_chars} characters"
        )
    state = session_of(request)
    service = request.app[SERVICE]
    known = PersonaScores.model_validate(state.user.persona) if state.user.persona else None
    signals = request.app[DETECTOR].detect(message, known)

    begun = await for_visitor(
        state,
        lambda: service.begin_chat_turn(
            state.session_id, message, signals=signals, history_limit=REPLY_HISTORY_LIMIT
        ),
    )
    remember(state, begun.session, begun.persona)
    reply = await request.app[REPLIER].reply(message, begun.persona, begun.history.messages)
    finished = await service.finish_chat_turn(
        state.session_id,
        reply.content,
        ui_specification=reply.ui_specification,
        generation_mode=reply.generation_mode,
        estimated_read_time=reply.estimated_read_time,
    )
    remember(state, finished.session, None)
    return web.json_response(
        {
            "reply": reply.content,
            "persona": persona_summary(begun.persona.model_dump(mode="json")),
            "sessionId": str(state.session_id),
            "messageCount": finished.session.message_count,
        }
    )


@routes.get("/api/chat/history")
async def history(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    limit = int_query(request, "limit", DEFAULT_HISTORY_LIMIT, 1, settings.history_page_max)
    before = int_query(request, "before", None, 1, 2**62)
    state = session_of(request)
    if state.is_new:  # a new visitor has no history; do not create rows for a read
        return web.json_response({"messages": [], "next": None})
    try:
        page = await request.app[SERVICE].get_conversation_history(
            state.session_id, limit=limit or DEFAULT_HISTORY_LIMIT, before=before
        )
    except SessionRevoked:  # a replayed cookie: the visitor starts afresh, with no history
        state.restart("revoked")
        return web.json_response({"messages": [], "next": None})
    except SessionNotFound:  # a cookie-only session (e.g. made by a Node app): nothing stored
        return web.json_response({"messages": [], "next": None})
    return web.json_response(
        {
            "messages": [
                {
                    "id": str(m.id),
                    "role": m.message_role,
                    "content": m.message_content,
                    "createdAt": m.created_at,
                    "generationMode": m.generation_mode,
                    "uiSpecification": m.ui_specification,
                }
                for m in page.messages
            ],
            "next": page.next_before,
        }
    )


@routes.delete("/api/session")
async def clear_session(request: web.Request) -> web.Response:
    state = session_of(request)
    if not state.is_new:
        # Already revoked, or never stored (a cookie-only session): nothing left to revoke.
        with contextlib.suppress(SessionRevoked, SessionNotFound):
            await request.app[SERVICE].clear_session(state.session_id)
    state.clear()
    return web.json_response({"cleared": True, "sessionId": str(state.session_id)})


@routes.delete("/api/session/data")
async def forget_session(request: web.Request) -> web.Response:
    state = session_of(request)
    deleted = {"messages": 0, "signals": 0, "personas": 0}
    if not state.is_new:
        with contextlib.suppress(SessionNotFound):
            result = await request.app[SERVICE].forget_session(state.session_id)
            deleted = result.deleted.model_dump()
    state.clear()
    return web.json_response(
        {"forgotten": True, "sessionId": str(state.session_id), "deleted": deleted}
    )


@routes.get("/healthz")
async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    await request.app[TRANSPORT].ping()  # DatabaseUnavailable → 503 JSON with Retry-After
    return web.json_response({"status": "ready"})


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app[SETTINGS]))


@routes.get("/")
async def index(_: web.Request) -> web.Response:
    page = resources.files("bevsession_edge").joinpath("static/index.html").read_text("utf-8")
    return web.Response(text=page, content_type="text/html", charset="utf-8")
