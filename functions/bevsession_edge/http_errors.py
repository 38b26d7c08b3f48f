"""Every error leaves the server as JSON ``{"error": {"code", "message"}}`` (:class:`Error`) with a
4xx/5xx status.

aiohttp's own HTTP exceptions (404, 405, 413 …) and the session layer's errors are turned into
that shape (a database that is down: 503, a session over its chat rate limit: 429, both with
``Retry-After``); anything unexpected becomes a 500 with a generic message and the details go to the
log only — never a traceback or a secret in a response body.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from bevsession.errors import (
    Conflict,
    DatabaseUnavailable,
    InvalidInput,
    NoSessionIdentity,
    PermissionDenied,
    RateLimited,
    SessionError,
    SessionNotFound,
    SessionRevoked,
)

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 2

# Session-layer error → (HTTP status, public code). A database that is down is a 503 the
# caller can retry, never a silent success (the seed logged and ignored write errors).
SESSION_ERROR_STATUS: dict[type[SessionError], tuple[int, str]] = {
    InvalidInput: (400, "invalid_input"),
    NoSessionIdentity: (401, "no_session"),
    SessionRevoked: (401, "session_revoked"),
    PermissionDenied: (403, "forbidden"),
    SessionNotFound: (404, "session_not_found"),
    Conflict: (409, "conflict"),
    RateLimited: (429, "rate_limited"),
    DatabaseUnavailable: (503, "database_unavailable"),
}


class ApiError(Exception):
    """An error a handler raises on purpose; rendered as the JSON error shape."""

    def __init__(self, status: int, code: str, message: str, **headers: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


class ErrorDetail(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    message: str


class Error(BaseModel):
    """Every error response's body; an OpenAPI component like the bodies of api_models.py."""

    model_config = ConfigDict(frozen=True)

    error: ErrorDetail


def error_response(status: int, code: str, message: str, **headers: str) -> web.Response:
    body = Error(error=ErrorDetail(code=code, message=message))
    return web.json_response(text=body.model_dump_json(), status=status, headers=headers or None)


def from_session_error(exc: SessionError) -> web.Response:
    status, code = next(
        (mapped for kind, mapped in SESSION_ERROR_STATUS.items() if isinstance(exc, kind)),
        (503, "database_error"),
    )
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else {}
    if isinstance(exc, RateLimited):  # the database says how long this session must wait
        headers = {"Retry-After": str(exc.retry_after)}
    message = exc.message if status < 500 else "the session store is unavailable; try again shortly"
    return error_response(status, code, message, **headers)


def _http_code(exc: web.HTTPException) -> str:
    return exc.reason.lower().replace(" ", "_").replace("-", "_") if exc.reason else "error"


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Outermost middleware: nothing below it can produce a non-JSON error or a traceback."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, **exc.headers)
    except web.HTTPException as exc:
        if exc.status_code < 400:
            raise  # redirects and 2xx "exceptions" pass through untouched
        headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}}
        return error_response(exc.status_code, _http_code(exc), exc.reason, **headers)
    except SessionError as exc:
        if isinstance(exc, DatabaseUnavailable):
            log.warning("database unavailable during %s %s", request.method, request.path)
        return from_session_error(exc)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal server error")
