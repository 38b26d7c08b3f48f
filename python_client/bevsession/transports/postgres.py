"""asyncpg straight to PostgreSQL, running each RPC the way PostgREST would, in one round trip.

PostgREST runs a call as: ``BEGIN``; ``set_config`` of role, ``request.jwt.claims``,
``request.method``, ``request.path`` (all transaction-local); the function; ``COMMIT``. Here
the same happens in ONE prepared statement, which is its own implicit transaction::

    select public.<fn>(a => $2, …)
    from (select set_config('search_path', 'public, extensions', true),
                 set_config('request.jwt.claims', $1, true),
                 set_config('request.method', 'POST', true),
                 set_config('request.path', '/rpc/<fn>', true)
          offset 0) as pre

The sub-select (kept apart by ``offset 0``; its volatile outputs are never pruned) yields its
row before the outer target list calls the function, so the function sees the claims. The
``is_local`` settings vanish at the implicit commit: nothing leaks to the next call.

The role cannot be switched in the same statement (EXECUTE and RLS would be checked partly as
the login role), so there is one pool per role: each connection logs in as the DSN's user
(``authenticator`` in production) and runs ``SET ROLE`` once when it is opened, then applies
the role's own settings (``ALTER ROLE … SET``, as PostgREST does on each switch). asyncpg's
default release runs ``RESET ALL`` — a second round trip per call, and it would drop those role
settings (it leaves ``role`` itself alone: ``GUC_NO_RESET_ALL``) — so this transport releases
connections without it: every setting a call makes is transaction-local anyway. So a call
costs one round trip once the connection has prepared that statement (the first call per
connection and statement costs one more).

A pooled connection whose server went away while it sat idle (a restart, an idle-connection
kill) is only noticed when used; asyncpg then refuses before sending anything, and that one
case is retried once on a fresh connection. Nothing else is retried: a write whose outcome is
unknown is reported as ``DatabaseUnavailable``, never repeated blindly.

Results: :meth:`PostgresTransport.call` decodes the function's ``jsonb`` with the connection's
codec (``json.loads``); :meth:`PostgresTransport.call_model`, what ``SessionService`` uses, runs
the same statement with ``::text`` after the call and hands that text to pydantic's
``model_validate_json``: one parse, straight into the model, skipping what the model leaves out.

Function and argument names come only from :mod:`bevsession.rpc`; values always travel as
parameters. A pooler in *transaction* mode (PgBouncer, Supavisor :6543) breaks both the
session-level ``SET ROLE`` and prepared statements: use a direct or session-mode connection.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

import asyncpg

from ..errors import (
    DatabaseError,
    PermissionDenied,
    SessionError,
    error_for_code,
    from_python_error,
)
from ..rpc import RpcFunction, check_call
from ..tokens import SERVICE_ROLE, VISITOR_ROLE, WORKER_ROLE, Claims
from .base import Identity, M, Service, Transport, Visitor, Worker

__all__ = ["PostgresTransport", "postgres_error"]

_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
SEARCH_PATH: Final = "public, extensions"  # PostgREST on Supabase: db-schemas + extra-search-path


_ROLE_SETTINGS_SQL: Final = """
select pg_catalog.set_config(split_part(s, '=', 1), substr(s, strpos(s, '=') + 1), false)
from pg_catalog.pg_db_role_setting d, unnest(d.setconfig) s
where d.setrole = (select oid from pg_catalog.pg_roles where rolname = $1)
  and d.setdatabase in (0, (select oid from pg_catalog.pg_database
                            where datname = pg_catalog.current_database()))
"""


# One encoder for every call: ``json.dumps`` with non-default options builds a new one each time.
_json_dumps: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _failed_before_sending(exc: Exception) -> bool:
    """asyncpg refused to send on a connection it already knows is broken."""
    text = str(exc)
    return text.startswith("cannot switch to state") or text == "connection is closed"


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Release without ``RESET ALL``: every setting a call makes is transaction-local."""


def postgres_error(exc: BaseException) -> SessionError:
    """Map what asyncpg raised: a server error by its SQLSTATE, a broken connection as
    ``DatabaseUnavailable``; Python's own exceptions (timeouts, sockets) as everywhere."""
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(exc, asyncpg.PostgresError) and isinstance(sqlstate, str):
        return error_for_code(
            sqlstate,
            getattr(exc, "message", None) or (str(exc.args[0]) if exc.args else ""),
            details=getattr(exc, "detail", None),
            hint=getattr(exc, "hint", None),
        )
    if isinstance(exc, asyncpg.InternalClientError):  # protocol state: the connection broke
        return error_for_code("08006", f"connection lost: {exc}")
    if isinstance(exc, asyncpg.InterfaceError):
        text = str(exc)
        if "connection" in text and ("closed" in text or "lost" in text):
            return error_for_code("08003", text)
        return error_for_code("interface", text)  # no table entry: a DatabaseError
    return from_python_error(exc)


class PostgresTransport(Transport):
    """One asyncpg pool per role; each RPC is one prepared statement (see the module doc)."""

    name = "postgres"

    def __init__(
        self,
        dsn: str,
        *,
        claims: Claims | None = None,
        min_size: int = 1,
        max_size: int = 10,
        command_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        visitor_role: str = VISITOR_ROLE,
        worker_role: str = WORKER_ROLE,
        service_role: str = SERVICE_ROLE,
        service: bool = True,
    ) -> None:
        """*service*: whether admin calls (``service_role``) may be made at all; the edge
        worker passes False and never holds that role."""
        for role in (visitor_role, worker_role, service_role):
            if not _ROLE_NAME.match(role):
                raise ValueError(f"invalid role name {role!r}")
        self._dsn = dsn
        self._claims = claims or Claims()
        self._min_size = min_size
        self._max_size = max_size
        self._command_timeout = command_timeout
        self._connect_timeout = connect_timeout
        self._roles: dict[type, str] = {Visitor: visitor_role, Worker: worker_role}
        if service:
            self._roles[Service] = service_role
        self._pools: dict[type, asyncpg.Pool] = {}
        self._sql: dict[tuple[str, tuple[str, ...], bool], str] = {}
        self._service_claims = _json_dumps(self._claims.service())
        self._worker_claims = _json_dumps({"role": worker_role, "iss": self._claims.issuer})

    # --- lifecycle -------------------------------------------------------------------------
    @classmethod
    async def connect(cls, dsn: str, **kwargs: Any) -> PostgresTransport:
        """Build the transport and open its pools (fails fast on a wrong DSN or role)."""
        transport = cls(dsn, **kwargs)
        try:
            await transport.start()
        except BaseException:
            await transport.close()
            raise
        return transport

    async def start(self) -> None:
        """Open the visitor pool (``min_size`` connections) and the lazy worker (and, when
        allowed, service) pools."""
        try:
            for kind, min_size in ((Visitor, self._min_size), (Worker, 0), (Service, 0)):
                if kind not in self._pools and kind in self._roles:
                    self._pools[kind] = await asyncpg.create_pool(
                        self._dsn,
                        min_size=min_size,
                        max_size=self._max_size,
                        command_timeout=self._command_timeout,
                        timeout=self._connect_timeout,
                        init=self._initialiser(self._roles[kind]),
                        reset=_no_reset,
                        server_settings={"application_name": "bevsession"},
                    )
        except Exception as exc:
            raise postgres_error(exc) from exc

    @staticmethod
    def _initialiser(role: str) -> Any:
        async def init(conn: asyncpg.Connection) -> None:
            # role is checked against _ROLE_NAME; identifiers cannot be parameters.
            await conn.execute(f'set role "{role}"')
            # PostgREST applies the role's own settings (ALTER ROLE … SET statement_timeout) on
            # every switch; the role never changes on this connection, so once is enough.
            await conn.execute(_ROLE_SETTINGS_SQL, role)
            await conn.set_type_codec(
                "jsonb", schema="pg_catalog", encoder=_json_dumps, decoder=json.loads
            )
            await conn.set_type_codec(
                "json", schema="pg_catalog", encoder=_json_dumps, decoder=json.loads
            )

        return init

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.close()

    # --- calls -----------------------------------------------------------------------------
    def statement(self, spec: RpcFunction, names: tuple[str, ...], *, text: bool = False) -> str:
        """The SQL of one call of *spec* with arguments *names* (cached; names are checked).

        ``text``: the result cast to ``text`` (the JSON as PostgreSQL prints it, for
        :meth:`call_model`) instead of decoded by the connection's ``jsonb`` codec.
        """
        key = (spec.name, names, text)
        sql = self._sql.get(key)
        if sql is None:
            call_args = ", ".join(f"{name} => ${i}" for i, name in enumerate(names, start=2))
            settings = [
                f"set_config('search_path', '{SEARCH_PATH}', true)",
                "set_config('request.jwt.claims', $1, true)",
                "set_config('request.method', 'POST', true)",
                f"set_config('request.path', '/rpc/{spec.name}', true)",
            ]
            if spec.read_only:  # PostgREST: non-volatile functions run READ ONLY
                settings.append("set_config('transaction_read_only', 'on', true)")
            cast = "::text" if text else ""
            # Names come from the FUNCTIONS table (check_call), never from the caller.
            sql = (
                f"select public.{spec.name}({call_args}){cast} as result"  # noqa: S608
                f" from (select {', '.join(settings)} offset 0) as pre"
            )
            self._sql[key] = sql
        return sql

    async def call(self, fn: str, args: Mapping[str, Any], *, identity: Identity) -> Any:
        return await self._fetch(fn, args, identity, text=False)

    async def call_model(
        self, fn: str, args: Mapping[str, Any], model: type[M], *, identity: Identity
    ) -> M:
        """The result as text, validated by pydantic-core straight from it (no ``json.loads``,
        no dicts in between; keys *model* does not name are skipped, never built)."""
        result = await self._fetch(fn, args, identity, text=True)
        if result is None:  # SQL null: what the model says about None (a validation error)
            return model.model_validate(None)
        return model.model_validate_json(result)

    async def _fetch(
        self, fn: str, args: Mapping[str, Any], identity: Identity, *, text: bool
    ) -> Any:
        spec = check_call(fn, args)
        names = tuple(name for name in spec.params if name in args)
        sql = self.statement(spec, names, text=text)
        if isinstance(identity, Visitor):
            claims = _json_dumps(
                self._claims.visitor(identity.session_id, linked_user_id=identity.linked_user_id)
            )
        elif isinstance(identity, Worker):
            claims = self._worker_claims
        else:
            claims = self._service_claims
        pool = self._pool(identity)
        values = [args[name] for name in names]
        try:
            try:
                return await pool.fetchval(sql, claims, *values)
            except (asyncpg.InternalClientError, asyncpg.InterfaceError) as exc:
                if not _failed_before_sending(exc):
                    raise
                # A pooled connection whose server went away while it was idle (restart, idle
                # kill) fails before the statement leaves: nothing ran, so once more is safe.
                return await pool.fetchval(sql, claims, *values)
        except Exception as exc:
            raise postgres_error(exc) from exc

    async def ping(self) -> None:
        try:
            await self._pool(Visitor).fetchval("select 1")
        except Exception as exc:
            raise postgres_error(exc) from exc

    def _pool(self, identity: Identity | type) -> asyncpg.Pool:
        kind = identity if isinstance(identity, type) else type(identity)
        if kind not in self._roles:
            raise PermissionDenied(
                "this transport makes no admin calls (opened without service_role)", code="42501"
            )
        pool = self._pools.get(kind)
        if pool is None:
            raise DatabaseError("transport is not started or already closed", code="closed")
        return pool
