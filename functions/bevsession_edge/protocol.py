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
was refused without the request's bytes. This is the one place parser errors are handled (the
log filter of ``logs.py`` masks secrets in every record and knows nothing of them).

Being process-wide, it is installed by ``bevsession serve`` in each worker before it serves, not
by the app factory: building an app (tests, benchmarks, an application of your own) patches no
server of that process. An application of your own that wants the same answers calls
:func:`install` once at start-up.

Replacing a method of another library is only safe for the versions it was written against:
:func:`install` first checks that aiohttp is within :data:`SUPPORTED` and that the method still
has the signature ours copies, and refuses to start otherwise (a loud start-up error, not a
silently wrong error path). Garbage as the first message of a connection — a TLS handshake on
the plain port, a scanner's probe — is logged at debug level: it is not a request of ours to
warn about. A malformed request later on a connection, or an oversized line, stays a warning.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web, web_protocol
from aiohttp.http_exceptions import BadStatusLine, HttpProcessingError

from .http_errors import error_response

log = logging.getLogger(__name__)

# aiohttp versions whose RequestHandler.handle_error this module was written against.
SUPPORTED = ((3, 11), (4, 0))  # >= 3.11, < 4.0
_PARAMETERS = ("self", "request", "status", "exc", "message")


def _version_tuple(version: str) -> tuple[int, ...]:
    numbers = []
    for part in version.split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit())
        numbers.append(int(digits or 0))
    return tuple(numbers)


def check_compatible(version: str | None = None, method: Callable[..., Any] | None = None) -> None:
    """Raise RuntimeError unless aiohttp's version and ``RequestHandler.handle_error``'s
    signature are the ones this replacement was written against."""
    found = aiohttp.__version__ if version is None else version
    low, high = SUPPORTED
    if not low <= _version_tuple(found) < high:
        raise RuntimeError(
            f"aiohttp {found} is outside the versions protocol.py supports "
            f"(>= {'.'.join(map(str, low))}, < {'.'.join(map(str, high))}): check "
            "RequestHandler.handle_error before widening the range"
        )
    target = web_protocol.RequestHandler.handle_error if method is None else method
    if getattr(target, "__name__", "") == _json_handle_error.__name__:
        return  # already ours
    names = tuple(inspect.signature(target).parameters)
    if names != _PARAMETERS:
        raise RuntimeError(
            f"aiohttp's RequestHandler.handle_error has the signature {names}, not "
            f"{_PARAMETERS}: protocol.py cannot replace it safely"
        )


def _first_message(handler: web_protocol.RequestHandler) -> bool:
    """Whether the refused message is the connection's first (aiohttp counts every message,
    refused ones too)."""
    count = getattr(handler, "_request_count", None)
    return isinstance(count, int) and count <= 1


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
        probe = isinstance(exc, BadStatusLine) and _first_message(self)
        log.log(
            logging.DEBUG if probe else logging.WARNING,
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
    """Make aiohttp's own error answers JSON (once per process; harmless to call again);
    RuntimeError when this aiohttp is not one the replacement fits."""
    handler_class: Any = web_protocol.RequestHandler
    if handler_class.handle_error is _json_handle_error:
        return
    check_compatible()
    handler_class.handle_error = _json_handle_error
