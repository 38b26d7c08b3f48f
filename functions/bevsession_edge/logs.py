"""Logging that cannot leak a secret: every record is masked before any handler writes it.

Secrets reach log lines in ways no call site controls: a library may log a DSN with its
password, an exception may carry a sealed cookie. So the handlers of the ``bevsession`` process
get one filter that masks seals, JWTs, keys and passwords in the message and in the formatted
traceback (:func:`bevsession.errors.safe_text`). asyncpg's pool, which logs a traceback on every
failed reconnect while the database is down, gets one line per attempt instead. Requests
aiohttp's HTTP parser refuses are not this module's: ``protocol.py`` answers and logs them,
without the request's bytes.
"""

from __future__ import annotations

import logging

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
