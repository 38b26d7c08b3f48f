"""HTTP routes of the edge worker (docs/http-api.md): thin handlers over ``SessionService``.

Handlers know HTTP and the session state; the service knows the RPCs; SQL knows the rules.
A session that the database reports as revoked (a replayed cookie after logout) is replaced by
a fresh one and the operation is retried once for the new visitor — never an error page.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, TypeVar

from aiohttp import web
from pydantic import ValidationError

from bevsession.errors import (
    Conflict,
    DatabaseUnavailable,
    SessionExpired,
    SessionNotFound,
    SessionRevoked,
)
from bevsession.models import DeletedCounts, PersonaScores, SessionData, SessionSnapshot

from .accounts import verified_account
from .api_models import (
    PERSONA_LEFT_OUT,
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
from .keys import DETECTOR, REPLIER, SERVICE, SETTINGS, TRANSPORT
from .middleware import REJECTIONS, drop_session, forget_cached, revoke_here, session_of
from .openapi import openapi_document
from .read_cache import READ_CACHE, read_cache_of
from .session_cookie import SessionState, persona_summary, sealed_by_seed

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
T = TypeVar("T")

FROM_CACHE = {"X-Session-Source": "cache"}
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
def persona_json(persona: PersonaScores) -> dict[str, Any]:
    """The persona's summary as JSON data, dumped once without what the summary drops: the
    cookie's persona and the chat reply's (equals ``persona_summary(persona.model_dump(mode=
    "json"))``)."""
    return persona.model_dump(mode="json", exclude=PERSONA_LEFT_OUT)


def remember(state: SessionState, session: SessionData, persona: dict[str, Any] | None) -> None:
    """Copy what the database returned into the cookie's summary (*persona*: persona_json)."""
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
        "userId": str(session.user_id) if session.user_id is not None else None,
    }
    if persona is not None:
        fields["persona"] = persona
    state.update(**fields)
    state.seen_ms = session.last_activity_at  # the database's clock: what touch_sessions compares


async def for_visitor(request: web.Request, operation: Callable[[], Awaitable[T]]) -> T:
    """Run *operation*; if the database refuses the session (revoked, or expired by its absolute
    lifetime or idle timeout), start a fresh session and retry once for the new visitor.

    *operation* creates the session when it is missing (``get_session``, ``begin_chat_turn``), so
    "not found" only happens when the row was deleted under the call (a concurrent retention
    purge): once more recreates it.
    """
    try:
        return await operation()
    except (SessionRevoked, SessionExpired) as exc:
        drop_session(request, refusal_reason(exc))
        return await operation()
    except SessionNotFound:
        log.debug("session row vanished during the call (purged); retrying once")
        return await operation()


async def get_or_adopt(request: web.Request) -> SessionSnapshot:
    """The visitor's session from the database, created if missing — from the cookie when one
    was unsealed in this request (``adopt_session``: a Node app's visitor keeps the persona,
    counters and flags its cookie carries), otherwise with defaults (``get_session``). Either is
    one RPC; the database wins whenever it has the session (a Node app's cookie also proves the
    activity that app saw, which the idle timeout counts)."""
    state = session_of(request)
    service = request.app[SERVICE]

    async def operation() -> SessionSnapshot:
        cookie = state.cookie_user  # read at call time: a restarted session has none
        if cookie is None:
            return await service.get_session(state.session_id)
        # The Node app's requests are activity this database did not see; ours are not.
        adopted = await service.adopt_session(
            state.session_id, cookie, count_cookie_activity=sealed_by_seed(cookie)
        )
        if adopted.adopted:
            changed = f"; the seed rules changed {adopted.dropped}" if adopted.dropped else ""
            log.info("session adopted from its cookie%s", changed)
        return adopted

    return await for_visitor(request, operation)


def refusal_reason(exc: SessionRevoked | SessionExpired) -> str:
    """The rejection counter's name for a session the database refused."""
    return "revoked" if isinstance(exc, SessionRevoked) else "expired_in_database"


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
@routes.get("/api/session")
async def get_session(request: web.Request) -> web.Response:
    state = session_of(request)
    if state.cached and state.seen_ms is not None:
        # A cookie the database confirmed lately (read_cache.py): answer from it; the read is
        # reported to the database with this worker's next batched touch.
        request.app[READ_CACHE].read(state.session_id, state.seen_ms)
        return json_of(summary(state), FROM_CACHE)
    try:
        snap = await get_or_adopt(request)
    except DatabaseUnavailable:
        if state.is_new:
            raise
        # Reads are served from the cookie while the database is away.
        return json_of(summary(state), {"X-Session-Source": "cookie"})
    remember(state, snap.session, persona_json(snap.persona))
    return json_of(summary(state))


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
    if state.cookie_user is not None and sealed_by_seed(state.cookie_user):
        # A Node app's cookie may name a session this database has never seen: adopt it first,
        # or the turn would create it with a default persona (one more RPC, only for the seed's
        # cookies: this server's own name sessions it stored before sealing them).
        adopted = await get_or_adopt(request)
        remember(state, adopted.session, persona_json(adopted.persona))
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
    forget_cached(request)  # this worker's copies of the session predate the turn
    persona = persona_json(begun.persona)  # dumped once: for the cookie and for the reply
    remember(state, begun.session, persona)
    reply = await request.app[REPLIER].reply(message, begun.persona, begun.history.messages)
    finished = await service.finish_chat_turn_brief(
        state.session_id,
        reply.content,
        ui_specification=reply.ui_specification,
        generation_mode=reply.generation_mode,
        estimated_read_time=reply.estimated_read_time,
    )
    remember(state, finished.session, None)
    return json_of(
        ChatResponse(
            reply=reply.content,
            persona=persona,
            session_id=state.session_id,
            message_count=finished.session.message_count,
        )
    )


@routes.get("/api/chat/history")
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
        drop_session(request, refusal_reason(exc))
        return json_of(NO_HISTORY)
    except SessionNotFound:  # a cookie-only session (e.g. made by a Node app): nothing stored
        return json_of(NO_HISTORY)
    return json_of(
        History(messages=[ChatMessage.of(m) for m in page.messages], next=page.next_before)
    )


@routes.delete("/api/session")
async def clear_session(request: web.Request) -> web.Response:
    state = session_of(request)
    if not state.is_new:
        # Already revoked, or never stored (a cookie-only session): nothing left to revoke.
        with contextlib.suppress(SessionRevoked, SessionNotFound):
            await request.app[SERVICE].clear_session(state.session_id)
    revoke_here(request)
    state.clear()
    return json_of(Cleared(session_id=state.session_id))


@routes.delete("/api/session/data")
async def forget_session(request: web.Request) -> web.Response:
    state = session_of(request)
    deleted = NOTHING_DELETED
    if not state.is_new:
        with contextlib.suppress(SessionNotFound):
            result = await request.app[SERVICE].forget_session(state.session_id)
            deleted = result.deleted
    revoke_here(request)
    state.clear()
    return json_of(Forgotten(session_id=state.session_id, deleted=deleted))


@routes.post("/api/session/link")
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
    forget_cached(request)
    remember(state, linked.session, None)
    return json_of(
        Linked(session_id=linked.session_id, user_id=linked.user_id, linked=linked.linked)
    )


@routes.get("/healthz")
async def healthz(_: web.Request) -> web.Response:
    """The process is up (the counters are at /metrics)."""
    return json_of(Status(status="ok"))


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """How many cookies were refused since start, by reason, and what this worker's read cache
    did (hits, misses, batched touches, stale copies dropped): loopback or METRICS_TOKEN only."""
    if not metrics_allowed(request):
        raise ApiError(403, "forbidden", "metrics are for loopback or the METRICS_TOKEN bearer")
    rejections = dict(sorted(request.app[REJECTIONS].items()))
    cache = read_cache_of(request.app)
    snapshot = cache.snapshot() if cache is not None else None
    return json_of(Metrics(cookie_rejections=rejections, read_cache=snapshot))


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    await request.app[TRANSPORT].ping()  # DatabaseUnavailable → 503 JSON with Retry-After
    return json_of(Status(status="ready"))


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app[SETTINGS]))


@routes.get("/")
async def index(_: web.Request) -> web.Response:
    page = resources.files("bevsession_edge").joinpath("static/index.html").read_text("utf-8")
    return web.Response(text=page, content_type="text/html", charset="utf-8")
