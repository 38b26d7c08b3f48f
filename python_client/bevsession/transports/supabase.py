"""supabase-py's async client calling PostgREST's ``/rest/v1/rpc/<fn>``: the hosted path.

One ``httpx.AsyncClient`` (one connection pool) serves every call; two supabase ``AsyncClient``
objects share it: one built with the public key (publishable, or legacy anon) for visitor calls,
one with the service key (secret, or legacy service_role) for admin calls. A visitor's JWT
travels as a header of that one request — it is set on the request builder that ``rpc()``
returns, whose headers are a fresh copy — and never by ``postgrest.auth()``, which would change
the shared client under concurrent requests of other sessions. Measured on this machine,
building the request this way costs about as much as ``rpc()`` itself (tens of microseconds);
see ``python -m bench.rpc``.

Keys (:mod:`bevsession.supabase_keys`): a current project's keys (``sb_publishable_…``,
``sb_secret_…``) are opaque and go only in the ``apikey`` header — supabase-py would also send
them as ``Authorization: Bearer``, which this transport removes (Supabase's gateway replaces a
missing or ``Bearer sb_…`` Authorization with its own JWT of the key's role; PostgREST alone
would refuse it). So an admin call carries the secret key as ``apikey`` and nothing else, and a
visitor call the publishable key as ``apikey`` and the minted token as its Bearer. Legacy JWT
keys are sent as supabase-py sends them (``apikey`` and Bearer). Visitor tokens are signed with
the imported signing key (ES256/RS256) or the legacy JWT secret (HS256).

POST is never retried here (supabase-py retries only GET/HEAD, and we switch that off too: a
retried write could be applied twice, and a sleeping retry would hold an aiohttp request).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from postgrest import APIError
from supabase import AsyncClient, AsyncClientOptions

from ..errors import (
    DatabaseError,
    PermissionDenied,
    SessionError,
    error_for_code,
    from_python_error,
)
from ..rpc import check_call
from ..supabase_keys import (
    PUBLISHABLE_KEY_PREFIX,
    SECRET_KEY_PREFIX,
    SigningKey,
    SupabaseKeys,
    is_opaque_key,
)
from ..tokens import TokenMinter
from .base import Identity, Transport, Visitor, Worker

__all__ = ["SupabaseTransport", "from_postgrest_error", "rest_error"]

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def from_postgrest_error(error: Any) -> SessionError:
    """Map a ``postgrest.APIError`` (or any object with code/message/details/hint)."""
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or ""
    details = getattr(error, "details", None)
    hint = getattr(error, "hint", None)
    if code is None and "api key" in message.lower():
        code = "401"  # the gateway's own errors carry no code, only the 401 status
    return error_for_code(
        str(code) if code is not None else None,
        message,
        details=details if isinstance(details, str) or details is None else str(details),
        hint=hint if isinstance(hint, str) or hint is None else str(hint),
    )


def rest_error(exc: BaseException) -> SessionError:
    """Map what supabase-py raised: PostgREST's error JSON by its code, httpx's failures as
    ``DatabaseUnavailable`` (timed out, could not connect, connection lost); Python's own
    exceptions as everywhere."""
    if isinstance(exc, APIError):
        return from_postgrest_error(exc)
    if isinstance(exc, httpx.TimeoutException):
        return error_for_code("57014", f"timed out: {type(exc).__name__}")
    if isinstance(exc, httpx.ConnectError):
        return error_for_code("08001", f"could not connect: {exc}")
    if isinstance(exc, httpx.TransportError):
        return error_for_code("08006", f"connection lost: {type(exc).__name__}: {exc}")
    return from_python_error(exc)


class SupabaseTransport(Transport):
    """RPCs through supabase-py on one shared httpx connection pool."""

    name = "supabase"

    def __init__(
        self,
        url: str,
        *,
        service_key: str | None,
        jwt_secret: str | None = None,
        anon_key: str | None = None,
        signing_key: SigningKey | None = None,
        minter: TokenMinter | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_connections: int = 100,
        admin_only: bool = False,
    ) -> None:
        """*service_key*: the secret key (``sb_secret_…``) or the legacy service_role key, for
        admin calls (None: this transport makes none — the edge worker's case); *anon_key*: the
        publishable key (``sb_publishable_…``) or the legacy anon key, the ``apikey`` of every
        visitor and worker call (required: the service key never goes out for those). Visitor
        and worker tokens are minted by *minter*, else with *signing_key*, else with the legacy
        *jwt_secret*. *admin_only*: no visitor or worker call is made (``bevsession purge``),
        so no public key is needed."""
        if service_key is not None and service_key.startswith(PUBLISHABLE_KEY_PREFIX):
            raise ValueError("the service key must be the secret key, not the publishable one")
        if anon_key is not None and (
            anon_key.startswith(SECRET_KEY_PREFIX) or anon_key == service_key
        ):
            raise ValueError("visitor calls must not carry the secret key: give the publishable")
        if anon_key is None and service_key is None:
            raise ValueError("the supabase transport needs the publishable key or a service key")
        if admin_only and service_key is None:
            raise ValueError("an admin-only transport needs the service key")
        if service_key is not None and is_opaque_key(service_key) and anon_key is None \
                and not admin_only:  # fmt: skip
            raise ValueError(
                "a secret key (sb_secret_…) needs the publishable key for visitor calls"
            )
        if minter is None:
            if signing_key is not None:
                minter = TokenMinter(signing_key=signing_key)
            elif jwt_secret is not None:
                minter = TokenMinter(jwt_secret)
            else:
                raise ValueError(
                    "the supabase transport needs a JWT signing key, or the project's legacy "
                    "JWT secret, to mint the visitors' tokens"
                )
        if anon_key is None and not admin_only:
            raise ValueError(
                "visitor calls need the publishable key (sb_publishable_…) or the legacy anon "
                "key: the service key is never sent for them (admin_only=True: none are made)"
            )
        self._minter = minter
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )
        # None: an admin-only transport (bevsession purge); visitor calls are refused, never
        # sent with the service key
        self._visitor_client = None if anon_key is None else self._client(url, anon_key)
        self._service_client = None if service_key is None else self._client(url, service_key)
        self._closed = False

    @classmethod
    def from_keys(
        cls, url: str, keys: SupabaseKeys, *, service: bool = True, **kwargs: Any
    ) -> SupabaseTransport:
        """The transport for keys resolved by :meth:`SupabaseKeys.from_env`; *service* False
        leaves the service key out (no admin call can be made: the edge worker)."""
        return cls(
            url,
            admin_only=keys.public_key is None,
            service_key=keys.service_key if service else None,
            anon_key=keys.public_key,
            jwt_secret=keys.jwt_secret,
            signing_key=keys.signing_key,
            **kwargs,
        )

    def _client(self, url: str, key: str) -> AsyncClient:
        options = AsyncClientOptions(
            httpx_client=self._http,
            postgrest_client_retry=False,
            auto_refresh_token=False,
            persist_session=False,
        )
        client = AsyncClient(url, key, options)
        if is_opaque_key(key):
            # An opaque key is an API key only, never a Bearer token (supabase-py sends both).
            client.options.headers.pop("Authorization", None)
        return client

    @classmethod
    async def connect(cls, url: str, **kwargs: Any) -> SupabaseTransport:
        """Build the transport (no connection is opened until the first call)."""
        return cls(url, **kwargs)

    async def call(self, fn: str, args: Mapping[str, Any], *, identity: Identity) -> Any:
        check_call(fn, args)
        if self._closed:
            raise DatabaseError("transport is closed", code="closed")
        if isinstance(identity, Visitor | Worker):
            if self._visitor_client is None:
                raise PermissionDenied(
                    "this transport has no publishable (anon) key: it makes admin calls only",
                    code="42501",
                )
            builder = self._visitor_client.rpc(fn, dict(args))
            token = (
                self._minter.visitor_token(
                    identity.session_id, linked_user_id=identity.linked_user_id
                )
                if isinstance(identity, Visitor)
                else self._minter.worker_token()
            )
            builder.request.headers["Authorization"] = f"Bearer {token}"
        elif self._service_client is None:
            raise PermissionDenied(
                "this transport makes no admin calls (opened without the service key)",
                code="42501",
            )
        else:
            builder = self._service_client.rpc(fn, dict(args))
        try:
            response = await builder.execute()
        except (APIError, httpx.HTTPError, OSError, UnicodeError) as exc:
            # UnicodeError: an argument JSON cannot carry as UTF-8 (a lone surrogate)
            raise rest_error(exc) from exc
        data = response.data
        # supabase-py gives [] for 204 / an empty body; our functions never return an array.
        return None if data == [] else data

    async def ping(self) -> None:
        """HEAD the REST root with the public key and a worker token; PostgREST answers 503
        while its DB is away.

        There is no health RPC in the API, and calling a real one would do work; the root is
        served from PostgREST's schema cache but refused while PostgREST has no connection.
        """
        client = self._visitor_client or self._service_client
        assert client is not None
        key = client.supabase_key
        if client is self._visitor_client:
            headers = {"apikey": key, "Authorization": f"Bearer {self._minter.worker_token()}"}
        else:
            headers = {"apikey": key} if is_opaque_key(key) else {
                "apikey": key, "Authorization": f"Bearer {key}"}  # fmt: skip
        try:
            response = await self._http.head(str(client.rest_url) + "/", headers=headers)
        except httpx.HTTPError as exc:
            raise rest_error(exc) from exc
        if not response.is_success:
            code = str(response.status_code)
            raise error_for_code(code, response.reason_phrase)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_http:
            await self._http.aclose()
