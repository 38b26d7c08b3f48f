"""One table maps every transport's failure codes to the same exception types, safely worded."""

from __future__ import annotations

import subprocess
import sys

import asyncpg
import httpx
import pytest
from postgrest import APIError

from bevsession.errors import (
    CODE_TABLE,
    Conflict,
    DatabaseError,
    DatabaseUnavailable,
    InvalidInput,
    NoSessionIdentity,
    PermissionDenied,
    SessionError,
    SessionNotFound,
    SessionRevoked,
    error_for_code,
    from_python_error,
    safe_text,
)
from bevsession.transports.postgres import postgres_error
from bevsession.transports.supabase import from_postgrest_error, rest_error


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("PT401", NoSessionIdentity), ("PT403", SessionRevoked), ("PT404", SessionNotFound),
        ("PT409", Conflict), ("22023", InvalidInput), ("22P02", InvalidInput),
        ("23514", InvalidInput), ("23502", InvalidInput), ("P0001", InvalidInput),
        ("42501", PermissionDenied), ("28P01", PermissionDenied), ("23505", Conflict),
        ("40001", Conflict), ("40P01", Conflict), ("08006", DatabaseUnavailable),
        ("08001", DatabaseUnavailable), ("57P01", DatabaseUnavailable),
        ("57P03", DatabaseUnavailable), ("53300", DatabaseUnavailable),
        ("PGRST000", DatabaseUnavailable), ("PGRST003", DatabaseUnavailable),
        ("PGRST102", InvalidInput), ("PGRST301", NoSessionIdentity),
        ("PGRST303", NoSessionIdentity), ("PGRST202", DatabaseError), ("42883", DatabaseError),
        ("XX000", DatabaseError), ("25006", DatabaseError), ("503", DatabaseUnavailable),
        ("401", PermissionDenied), (None, DatabaseError),
    ],
)  # fmt: skip
def test_code_table(code: str | None, kind: type[SessionError]) -> None:
    err = error_for_code(code, "msg")
    assert type(err) is kind
    assert err.code == (code or "unknown")


def test_every_class_is_a_session_error() -> None:
    assert all(issubclass(kind, SessionError) for kind in CODE_TABLE.values())


def test_postgrest_api_errors() -> None:
    err = from_postgrest_error(APIError({"code": "PT403", "message": "session revoked",
                                         "details": "d", "hint": "h"}))  # fmt: skip
    assert isinstance(err, SessionRevoked)
    assert (err.code, err.message, err.details, err.hint) == ("PT403", "session revoked", "d", "h")
    gateway = from_postgrest_error(APIError({"message": "Invalid API key", "hint": "…"}))
    assert isinstance(gateway, PermissionDenied)
    assert gateway.code == "401"
    proxy = rest_error(APIError({"code": "502", "message": "Bad Gateway", "details": "<html>"}))
    assert isinstance(proxy, DatabaseUnavailable)


def test_asyncpg_errors() -> None:
    revoked = asyncpg.PostgresError.new({"C": "PT403", "M": "session revoked", "D": "detail"})
    err = postgres_error(revoked)
    assert isinstance(err, SessionRevoked)
    assert (err.code, err.details) == ("PT403", "detail")
    shutdown = asyncpg.PostgresError.new({"C": "57P01", "M": "terminating connection"})
    assert isinstance(postgres_error(shutdown), DatabaseUnavailable)
    assert isinstance(postgres_error(asyncpg.ConnectionDoesNotExistError("gone")),
                      DatabaseUnavailable)  # fmt: skip
    assert isinstance(postgres_error(asyncpg.InterfaceError("connection is closed")),
                      DatabaseUnavailable)  # fmt: skip
    assert isinstance(postgres_error(asyncpg.InterfaceError("pool is closing")), DatabaseError)


def test_network_errors() -> None:
    # Python's own, whichever transport met them
    for mapper in (from_python_error, postgres_error, rest_error):
        assert mapper(ConnectionRefusedError(111, "refused")).code == "08001"
        assert mapper(OSError("Multiple exceptions")).code == "08006"
        assert mapper(TimeoutError()).code == "57014"
        for exc in (ConnectionRefusedError(), TimeoutError()):
            assert isinstance(mapper(exc), DatabaseUnavailable)
        unknown = mapper(RuntimeError("boom"))
        assert (type(unknown), unknown.code) == (DatabaseError, "internal")
    # httpx's, met by the supabase transport
    assert rest_error(httpx.ConnectError("refused")).code == "08001"
    assert rest_error(httpx.ReadTimeout("slow")).code == "57014"
    assert rest_error(httpx.RemoteProtocolError("Server disconnected")).code == "08006"
    assert isinstance(rest_error(httpx.ReadError("x")), DatabaseUnavailable)


def test_passes_session_errors_through() -> None:
    err = InvalidInput("x", code="22023")
    assert from_python_error(err) is err
    assert postgres_error(err) is err
    assert rest_error(err) is err


def test_errors_module_imports_no_transport_library() -> None:
    """The hierarchy is shared by both transports; each maps its own library's exceptions."""
    code = (
        "import sys, bevsession.errors;"
        "libraries = ('asyncpg', 'httpx', 'postgrest', 'supabase');"
        "print(sorted(m for m in libraries if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("could not connect to postgresql://app:s3cr3t@db:5432/x", "s3cr3t"),
        ("dsn host=db password=s3cr3t user=app", "s3cr3t"),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJl refused", "eyJyb2xl"),
        ("apikey sb_secret_abcdefghijkl used", "abcdefghijkl"),
        ("Authorization: Bearer abc.def.ghi", "abc.def"),
    ],
)
def test_messages_are_made_safe(text: str, leak: str) -> None:
    assert leak not in safe_text(text)
    err = error_for_code("08006", text, details=text, hint=text)
    assert leak not in str(err)
    assert leak not in (err.details or "") + (err.hint or "")


def test_message_never_empty() -> None:
    assert error_for_code("22023", "").message == "InvalidInput"
