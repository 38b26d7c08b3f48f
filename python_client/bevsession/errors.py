"""One exception hierarchy for every way an RPC can fail, whichever transport carried it.

Both transports report failures with a code: asyncpg with the SQLSTATE of the server's error,
PostgREST with the same SQLSTATE in its error JSON (or one of its own ``PGRSTxxx`` codes, or the
HTTP status when the body is not PostgREST's). One table (:data:`CODE_TABLE`) keyed by that code
decides the Python type, so a caller catches ``SessionRevoked`` or ``DatabaseUnavailable`` and
never needs to know whether HTTP or the PostgreSQL protocol was in between. Each transport maps
its own library's exceptions to a code (``transports/postgres.py``: asyncpg;
``transports/supabase.py``: postgrest and httpx) and leaves Python's own to
:func:`from_python_error`: this module imports no transport library.

Transport failures that never reached SQL get the SQLSTATE PostgreSQL itself uses for them:
``08001`` (could not connect), ``08006`` (connection lost), ``57014`` (timed out).

Messages are made safe before they are stored: URLs with passwords, ``password=…`` pairs and
JWTs are masked, so an exception can be logged or shown without leaking a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

__all__ = [
    "CODE_TABLE",
    "Conflict",
    "DatabaseError",
    "DatabaseUnavailable",
    "InvalidInput",
    "NoSessionIdentity",
    "PermissionDenied",
    "RateLimited",
    "SessionError",
    "SessionExpired",
    "SessionNotFound",
    "SessionRevoked",
    "error_for_code",
    "from_python_error",
    "safe_text",
]


class SessionError(Exception):
    """Base of every RPC failure: ``code`` (SQLSTATE, PGRST code or HTTP status) and a safe text."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        details: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.code: Final = code
        self.message: Final = safe_text(message) or type(self).__name__
        self.details: Final = safe_text(details) if details else None
        self.hint: Final = safe_text(hint) if hint else None
        super().__init__(f"{self.code}: {self.message}")


class SessionRevoked(SessionError):
    """The session was cleared or forgotten; its id is refused for good (PT403)."""


class SessionExpired(SessionError):
    """The session passed its absolute lifetime or its idle timeout (PT410); start a new one."""


class SessionNotFound(SessionError):
    """The operation needs a session that does not exist yet (PT404)."""


class NoSessionIdentity(SessionError):
    """The call carried no usable session identity: no claim, bad or expired JWT (PT401)."""


class InvalidInput(SessionError):
    """An argument was refused by the database's validation (22023, 23514, 22P02, PGRST10x…)."""


class PermissionDenied(SessionError):
    """The identity may not call this function or touch this row (42501, bad API key)."""


class Conflict(SessionError):
    """A concurrent change won (unique violation, serialization failure, deadlock, PT409)."""


class RateLimited(SessionError):
    """The session used up its chat-turn allowance (PT429); retry after ``retry_after`` seconds.

    The database says how long to wait in ``details`` (``retry_after=<seconds>``), so every
    worker and both transports report the same wait without knowing the limit.
    """

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait before the next chat turn (at least 1)."""
        found = _RETRY_AFTER.search(self.details or "")
        return max(1, int(found.group(1))) if found else 1


class DatabaseUnavailable(SessionError):
    """The database could not be reached or is shutting down; nothing was (knowingly) done."""


class DatabaseError(SessionError):
    """Any other database failure: a bug or a schema mismatch, not the caller's fault."""


_RETRY_AFTER = re.compile(r"\bretry_after=(\d{1,9})\b")


# --- the one table -----------------------------------------------------------------------
# Exact codes first, then two-character SQLSTATE classes (see error_for_code).
CODE_TABLE: Final[Mapping[str, type[SessionError]]] = {
    # our own SQLSTATEs (PostgREST turns PTxyz into HTTP xyz)
    "PT401": NoSessionIdentity,
    "PT403": SessionRevoked,
    "PT404": SessionNotFound,
    "PT410": SessionExpired,
    "PT409": Conflict,
    "PT429": RateLimited,
    # invalid input
    "22": InvalidInput,  # class: data exception (22023 invalid_parameter_value, 22P02, 22001…)
    "23502": InvalidInput,  # not_null_violation
    "23514": InvalidInput,  # check_violation
    "P0001": InvalidInput,  # raise_exception without an explicit SQLSTATE
    "PGRST100": InvalidInput,  # bad query parameter
    "PGRST102": InvalidInput,  # invalid body / content type
    "PGRST122": InvalidInput,  # strict Prefer
    "400": InvalidInput,
    "422": InvalidInput,
    # permissions
    "42501": PermissionDenied,  # insufficient_privilege
    "28": PermissionDenied,  # class: invalid authorization specification
    "401": PermissionDenied,  # gateway: missing / invalid API key
    "403": PermissionDenied,
    # identity (JWT refused by PostgREST)
    "PGRST301": NoSessionIdentity,
    "PGRST302": NoSessionIdentity,
    "PGRST303": NoSessionIdentity,
    # conflicts
    "23505": Conflict,  # unique_violation
    "23503": Conflict,  # foreign_key_violation (PostgREST: 409)
    "40001": Conflict,  # serialization_failure
    "40P01": Conflict,  # deadlock_detected
    "409": Conflict,
    # rate limits (PostgREST answers PT429 with HTTP 429; a gateway may too, with no code)
    "429": RateLimited,
    # unavailable
    "08": DatabaseUnavailable,  # class: connection exception
    "53": DatabaseUnavailable,  # class: insufficient resources (too many connections…)
    "57": DatabaseUnavailable,  # class: operator intervention (57P01 shutdown, 57014 timeout…)
    "PGRST000": DatabaseUnavailable,  # PostgREST cannot connect
    "PGRST001": DatabaseUnavailable,  # PostgREST lost its connection
    "PGRST002": DatabaseUnavailable,  # no schema cache yet
    "PGRST003": DatabaseUnavailable,  # PostgREST pool timeout
    "502": DatabaseUnavailable,
    "503": DatabaseUnavailable,
    "504": DatabaseUnavailable,
    "520": DatabaseUnavailable,
}


def error_for_code(
    code: str | None, message: str, *, details: str | None = None, hint: str | None = None
) -> SessionError:
    """The exception for *code*: exact match, then its SQLSTATE class, else ``DatabaseError``."""
    code = code or "unknown"
    cls = CODE_TABLE.get(code)
    if cls is None and len(code) == 5:
        cls = CODE_TABLE.get(code[:2])
    return (cls or DatabaseError)(message, code=code, details=details, hint=hint)


def from_python_error(exc: BaseException) -> SessionError:
    """Map an exception of Python's own (timeouts, refused or lost connections, text that is not
    UTF-8) to a :class:`SessionError`; each transport maps its library's exceptions first and
    hands the rest here, so this module imports no transport library.

    Anything not recognised becomes ``DatabaseError`` with code ``internal``; the caller chains
    the original with ``raise … from exc`` so nothing is lost for debugging.
    """
    if isinstance(exc, SessionError):
        return exc
    if isinstance(exc, UnicodeError):
        # Text that cannot be sent as UTF-8 (a lone surrogate): the caller's input, refused
        # before the database saw it. SQLSTATE 22021: character_not_in_repertoire.
        return InvalidInput(f"text is not valid Unicode: {type(exc).__name__}", code="22021")
    if isinstance(exc, TimeoutError):
        return DatabaseUnavailable(f"timed out: {type(exc).__name__}", code="57014")
    if isinstance(exc, ConnectionRefusedError):
        return DatabaseUnavailable(f"could not connect: {exc}", code="08001")
    if isinstance(exc, OSError):  # ConnectionError and every other socket failure
        return DatabaseUnavailable(f"connection lost: {type(exc).__name__}: {exc}", code="08006")
    return DatabaseError(f"{type(exc).__name__}: {exc}", code="internal")


# --- making texts safe ---------------------------------------------------------------------
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/@\s]*):[^@\s]*@")
_KEYWORD_PASSWORD = re.compile(r"(?i)\b(password|passwd|pwd|secret|apikey|api_key)\s*=\s*\S+")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")
_SUPABASE_KEY = re.compile(r"\bsb_(secret|publishable)_[A-Za-z0-9_\-]+")
_BEARER = re.compile(r"(?i)\bbearer\s+\S+")
# An iron seal (a session cookie): "Fe26.2**…" or an older "Fe26.1**…".
_SEAL = re.compile(r"Fe26\.[12]\*[^\s'\"<>;,]*")
# A private key: a PEM block, or a JWK's private members (d, and RSA's p, q, dp, dq, qi).
_PEM_PRIVATE = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL
)
_JWK_PRIVATE = re.compile(r"""(["'])(d|p|q|dp|dq|qi)\1(\s*:\s*)(["'])[^"']*\4""")


def safe_text(text: str | None) -> str:
    """*text* with credentials masked: URL passwords, ``password=…``, JWTs, Supabase keys,
    sealed cookies, private keys (PEM, a JWK's private members)."""
    if not text:
        return ""
    text = _URL_PASSWORD.sub(r"\1:***@", text)
    text = _KEYWORD_PASSWORD.sub(r"\1=***", text)
    text = _JWT.sub("<jwt>", text)
    text = _SUPABASE_KEY.sub(r"sb_\1_***", text)
    text = _BEARER.sub("Bearer ***", text)
    text = _SEAL.sub("<sealed cookie>", text)
    text = _PEM_PRIVATE.sub("<private key>", text)
    text = _JWK_PRIVATE.sub(r"\1\2\1\3\4***\4", text)
    return text
