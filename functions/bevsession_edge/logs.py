"""Logging that cannot leak a secret: every record is masked before any handler writes it.

Secrets reach log lines in ways no call site controls: aiohttp's HTTP parser puts the raw bytes
of an over-long request line or ``Cookie`` header (a sealed session cookie) into the exception it
logs at ERROR with a traceback; a library may log a DSN with its password. So the handlers of the
``bevsession`` process get one filter that masks seals, JWTs, keys and passwords in the message
and in the formatted traceback (:func:`bevsession.errors.safe_text`), and turns aiohttp's
"Error handling request" for a malformed request — a client's mistake, not ours — into one
WARNING line without the raw bytes. asyncpg's pool, which logs a traceback on every failed
reconnect while the database is down, gets one line per attempt instead.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

from bevsession.errors import safe_text

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_TRACEBACKS = logging.Formatter()


class RedactSecrets(logging.Filter):
    """Mask secrets in each record (message, arguments, traceback); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._mask(record)
        except Exception:  # a filter must never break logging; the handler reports bad records
            return True
        return True

    def _mask(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        if record.name == "aiohttp.server" and isinstance(exc, HttpProcessingError):
            # The parser's message holds the request's raw bytes: keep only the status.
            record.msg = "refused a malformed HTTP request (%s %s)"
            record.args = (exc.code, type(exc).__name__)
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            return
        if record.name == "asyncpg.pool" and exc is not None and record.levelno <= logging.WARNING:
            # While the database is down asyncpg retries its pool floor and logs a traceback
            # each time; the outage is already reported (503s, /readyz): one line is enough.
            message = safe_text(record.getMessage())  # read before msg and args are replaced
            record.msg = "%s (%s: %s)"
            record.args = (message, type(exc).__name__, safe_text(str(exc)))
            record.exc_info = None
            record.exc_text = None
            return
        message = record.getMessage()
        masked = safe_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = safe_text(_TRACEBACKS.formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = safe_text(record.exc_text)
        if record.stack_info:
            record.stack_info = safe_text(record.stack_info)


def configure_logging(level: str) -> None:
    """Root logging at *level*, every handler behind :class:`RedactSecrets`."""
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), format=LOG_FORMAT)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
