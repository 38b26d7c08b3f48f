"""Errors aiohttp answers below the application: JSON too, and never an echo of the request.

A request aiohttp's HTTP parser refuses (a request line over 8190 bytes, a header over 16.5 KiB
— ``MAX_HEADER_FIELD_BYTES`` in ``app.py`` —, a malformed request line, bad chunking) never
reaches a route or a middleware, and neither does an error raised outside ``json_errors`` (a
handler timeout, a bug in an outer layer). aiohttp answers these from
``RequestHandler.handle_error`` with a ``text/plain`` body, and for a parser error that body
repeats the start of the offending line — for an oversized ``Cookie`` header, the session
cookie itself, readable by a script even though the cookie is ``HttpOnly`` (the Apache
CVE-2012-0053 pattern). aiohttp offers no hook for this response, so :func:`install` replaces
that one method, process-wide and idempotently: the answer becomes the documented
``{"error": {"code", "message"}}`` with the same status, and the log line says what
was refused without the request's bytes.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web, web_protocol
from aiohttp.http_exceptions import HttpProcessingError

from .http_errors import error_response

log = logging.getLogger(__name__)

_MARK = "_bevsession_json_errors"


def _json_handle_error(
    self: web_protocol.RequestHandler,
    request: web.BaseRequest,
    status: int = 500,
    exc: BaseException | None = None,
    message: str | None = None,
) -> web.StreamResponse:
    """``RequestHandler.handle_error`` with the documented JSON shape and no request echo."""
    if request.writer.output_size > 0:  # as aiohttp: the response is on its way already
        raise ConnectionError("response already started; cannot send an error response")
    if isinstance(exc, HttpProcessingError):
        log.warning(
            "refused a malformed HTTP request from %s: %s %s", request.remote, status,
            type(exc).__name__,
        )  # fmt: skip
        response = error_response(
            status, "bad_request",
            "malformed HTTP request (a line or header over the size limit, or not HTTP/1.x)",
        )  # fmt: skip
    elif status == 504:
        log.warning("request handler timed out: %s %s", request.method, request.path)
        response = error_response(504, "timeout", "the request took too long")
    else:
        log.error(
            "unhandled error outside the handlers in %s %s", request.method, request.path,
            exc_info=exc,
        )  # fmt: skip
        response = error_response(500, "internal_error", "internal server error")
    response.force_close()
    return response


def install() -> None:
    """Make aiohttp's own error answers JSON (once per process; harmless to call again)."""
    handler_class: Any = web_protocol.RequestHandler
    if getattr(handler_class, _MARK, False):
        return
    handler_class.handle_error = _json_handle_error
    setattr(handler_class, _MARK, True)
