"""HTTP routes of the edge worker (docs/http-api.md): thin handlers over ``SessionService``.

Handlers know HTTP and the session of their request (``sessions.py``: the cookie's content and
its database row); the service knows the RPCs; SQL knows the rules. Where a session was loaded
from and how it is saved (the cookie, the read cache) is the store's business, never theirs.
A session that the database reports as revoked (a replayed cookie after logout) is replaced by
a fresh one and the operation is retried once for the new visitor — never an error page.

The API's routes (:data:`api_routes`) have paths relative to where ``setup`` mounts them
(``/api`` in the ready-made worker); :data:`worker_routes` are the worker's own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from importlib import resources
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from bevsession.errors import Conflict, SessionExpired, SessionNotFound, SessionRevoked
from bevsession.models import DeletedCounts, PersonaScores

from .accounts import verified_account
from .api_models import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    Cleared,
    Forgotten,
    History,
    Linked,
    Metrics,
    SessionSummary,
    Status,
    json_of,
)
from .guards import metrics_allowed
from .http_errors import ApiError
from .keys import DETECTOR, REPLIER, SERVICE, SESSION_STORE, SETTINGS, TRANSPORT
from .openapi import openapi_document
from .session_cookie import SessionState, persona_json, persona_summary, sealed_by_seed
from .sessions import current_session, for_visitor, get_or_adopt, refuse, remember, session_of

log = logging.getLogger(__name__)
# The HTTP API, its paths relative to where it is mounted (setup's api_prefix, "/api" here).
api_routes = web.RouteTableDef()
# The ready-made worker's own routes: probes, counters, the API description, the demo page.
worker_routes = web.RouteTableDef()

SOURCE_HEADER = "X-Session-Source"  # where a read was answered from, when not the database
DEFAULT_HISTORY_LIMIT = 20
REPLY_HISTORY_LIMIT = 20
NO_HISTORY = History(messages=[], next=None)
NOTHING_DELETED = DeletedCounts(messages=0, signals=0, personas=0)


# --- request parsing ------------------------------------------------------------------------
async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, or a 4xx — whatever bytes, charset or nesting arrive.

    JSON on the wire is UTF-8 (RFC 8259), so the body is decoded as UTF-8 whatever ``charset``
    says (aiohttp's ``request.json()`` would look up any charset name and fail with a 500 on an
    unknown one). ``ValueError`` covers invalid JSON, invalid UTF-8 and integers longer than
    Python's digit limit; ``RecursionError`` covers nesting deeper than the parser's stack.
    """
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    raw = await request.read()
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    return body


def validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


_INTEGER = re.compile(r"-?[0-9]{1,20}")


def int_query(
    request: web.Request, name: str, default: int | None, low: int, high: int
) -> int | None:
    """An integer query parameter in [low, high], or *default* when the parameter is absent.

    Strictly a JSON-Schema integer in ASCII digits: ``?before=`` (empty), ``1_000``, `` 3``,
    ``٣`` and ``1e3`` are refused (Python's ``int()`` would take several of them), so what the
    OpenAPI document promises is what the server does.
    """
    raw = request.query.get(name)
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw):
        raise ApiError(400, "invalid_input", f"{name} must be an integer")
    value = int(raw)
    if not low <= value <= high:
        raise ApiError(400, "invalid_input", f"{name} must be between {low} and {high}")
    return value


# --- session helpers ------------------------------------------------------------------------
def cookie_persona(state: SessionState) -> PersonaScores | None:
    """The persona summary the cookie carries, if it is a valid one (a Node app's may not be)."""
    try:
        return PersonaScores.model_validate(state.user.persona) if state.user.persona else None
    except ValidationError:
        return None


def summary(state: SessionState) -> SessionSummary:
    """The session as its cookie keeps it. Built from the cookie's content as it was validated
    on the way in (CookieUser), not validated again: a Node app's cookie is answered as it is."""
    user = state.user
    return SessionSummary.model_construct(
        session_id=user.sessionId,
        created_at=user.createdAt,
        last_activity_at=user.lastActivityAt,
        last_message_at=user.lastMessageAt,
        message_count=user.messageCount,
        current_mode=user.currentMode,
        has_completed_onboarding=user.hasCompletedOnboarding,
        has_brochure=user.hasBrochure,
        is_data_connected=user.isDataConnected,
        user_id=user.userId,
        persona=user.persona or persona_summary(PersonaScores().model_dump(mode="json")),
    )


# --- routes ---------------------------------------------------------------------------------
@api_routes.get("/session")
async def get_session(request: web.Request) -> web.Response:
    current = await current_session(request)
    headers = None if current.source == "database" else {SOURCE_HEADER: current.source}
    return json_of(summary(current.session), headers)


@api_routes.post("/chat")
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
    if state.cookie_user is not None and sealed_by_seed(state.cookie_user):
        # A Node app's cookie may name a session this database has never seen: adopt it first,
        # or the turn would create it with a default persona (one more RPC, only for the seed's
        # cookies: this server's own name sessions it stored before sealing them).
        adopted = await get_or_adopt(request)
        remember(request, adopted.session, persona_json(adopted.persona))
    known = cookie_persona(state)
    signals = request.app[DETECTOR].detect(message, known)

    # The brief results: what this handler reads (session, persona, who said what), parsed
    # straight from the database's JSON text; stored messages and snapshots are skipped.
    begun = await for_visitor(
        request,
        lambda: service.begin_chat_turn_brief(
            state.session_id, message, signals=signals, history_limit=REPLY_HISTORY_LIMIT
        ),
    )
    persona = persona_json(begun.persona)  # dumped once: for the cookie and for the reply
    remember(request, begun.session, persona)
    reply = await request.app[REPLIER].reply(message, begun.persona, begun.history.messages)
    finished = await service.finish_chat_turn_brief(
        state.session_id,
        reply.content,
        ui_specification=reply.ui_specification,
        generation_mode=reply.generation_mode,
        estimated_read_time=reply.estimated_read_time,
    )
    remember(request, finished.session, None)
    return json_of(
        ChatResponse(
            reply=reply.content,
            persona=persona,
            session_id=state.session_id,
            message_count=finished.session.message_count,
        )
    )


@api_routes.get("/chat/history")
async def history(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    limit = int_query(request, "limit", DEFAULT_HISTORY_LIMIT, 1, settings.history_page_max)
    before = int_query(request, "before", None, 1, 2**62)
    token_budget = int_query(request, "tokenBudget", None, 1, 1_000_000)
    state = session_of(request)
    if state.is_new:  # a new visitor has no history; do not create rows for a read
        return json_of(NO_HISTORY)
    try:
        page = await request.app[SERVICE].get_conversation_history(
            state.session_id,
            limit=limit or DEFAULT_HISTORY_LIMIT,
            before=before,
            token_budget=token_budget,
        )
    except (SessionRevoked, SessionExpired) as exc:  # the visitor starts afresh, with no history
        refuse(request, exc)
        return json_of(NO_HISTORY)
    except SessionNotFound:  # a cookie-only session (e.g. made by a Node app): nothing stored
        return json_of(NO_HISTORY)
    return json_of(
        History(messages=[ChatMessage.of(m) for m in page.messages], next=page.next_before)
    )


@api_routes.delete("/session")
async def clear_session(request: web.Request) -> web.Response:
    state = session_of(request)
    if not state.is_new:
        # Already revoked, or never stored (a cookie-only session): nothing left to revoke.
        with contextlib.suppress(SessionRevoked, SessionNotFound):
            await request.app[SERVICE].clear_session(state.session_id)
    state.clear()  # the cookie is deleted, and this worker refuses the session from now on
    return json_of(Cleared(session_id=state.session_id))


@api_routes.delete("/session/data")
async def forget_session(request: web.Request) -> web.Response:
    state = session_of(request)
    deleted = NOTHING_DELETED
    if not state.is_new:
        with contextlib.suppress(SessionNotFound):
            result = await request.app[SERVICE].forget_session(state.session_id)
            deleted = result.deleted
    state.clear()
    return json_of(Forgotten(session_id=state.session_id, deleted=deleted))


@api_routes.post("/session/link")
async def link_session(request: web.Request) -> web.Response:
    """A visitor who signed in: attach this session, its persona, messages and signals to the
    account of the Bearer access token (verified first; a refused token changes nothing)."""
    account = await verified_account(request)  # 501 / 401 / 503 before the session is touched
    state = session_of(request)
    service = request.app[SERVICE]
    try:
        linked = await for_visitor(
            request, lambda: service.link_session(state.session_id, account.user_id)
        )
    except Conflict as exc:
        if exc.code != "PT409":
            raise
        # 401 as for any token this session does not accept; the code tells it from a bad token
        raise ApiError(
            401, "linked_to_another_account",
            "this session is linked to another account: sign in with that account, or clear "
            "the session (DELETE /api/session) to start a new one",
        ) from None  # fmt: skip
    remember(request, linked.session, None)
    return json_of(
        Linked(session_id=linked.session_id, user_id=linked.user_id, linked=linked.linked)
    )


@worker_routes.get("/healthz")
async def healthz(_: web.Request) -> web.Response:
    """The process is up (the counters are at /metrics)."""
    return json_of(Status(status="ok"))


@worker_routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """How many cookies were refused since start, by reason, and what this worker's read cache
    did (hits, misses, batched touches, stale copies dropped): loopback or METRICS_TOKEN only."""
    if not metrics_allowed(request):
        raise ApiError(403, "forbidden", "metrics are for loopback or the METRICS_TOKEN bearer")
    counters = request.app[SESSION_STORE].counters()
    return json_of(Metrics.model_validate(counters))


@worker_routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    await request.app[TRANSPORT].ping()  # DatabaseUnavailable → 503 JSON with Retry-After
    return json_of(Status(status="ready"))


@worker_routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app[SETTINGS]))


@worker_routes.get("/")
async def index(_: web.Request) -> web.Response:
    page = resources.files("bevsession_edge").joinpath("static/index.html").read_text("utf-8")
    return web.Response(text=page, content_type="text/html", charset="utf-8")
