"""PostgREST behind Supabase's gateway, for what supabase-py's ``rpc()`` sends (no PostgREST here).

It covers, as /work/shared/reference/postgrest-rpc.md describes PostgREST v14, exactly the
requests supabase-py 2.34's ``rpc()`` makes for the transport — ``POST /rest/v1/rpc/<fn>`` with
a JSON object of named arguments and the headers ``apikey``, ``Authorization``,
``Content-Profile`` / ``Accept-Profile`` (always the exposed schema, ``public``) — plus the
transport's ``HEAD /rest/v1/`` health check and Supabase Auth's JWKS:

- gateway (section 0): ``apikey`` header; missing/unknown key → 401 with the gateway's
  code-less JSON; the Authorization substitution rules (user JWT passes through;
  ``sb_secret_``/``sb_publishable_`` keys become internal service/anon JWTs — signed with the
  legacy secret, or with the platform's own ES256 key when the project has no legacy secret; a
  legacy JWT key becomes the bearer token);
- JWT: verified against a JWKS as PostgREST does with Supabase's ``PGRST_JWT_SECRET`` (the legacy
  HS256 secret as an ``oct`` key, plus the public keys of the project's signing keys, ES256 or
  RS256): a token with a ``kid`` is tried only with the key of that id, one without with every
  key that fits its ``alg``; a JWK's own ``alg``/``use`` must fit too. 401 PGRST301 for
  empty/malformed tokens ("Expected 3 parts…", "JWT cryptographic operation failed"), an unknown
  ``alg`` ("Wrong or unsupported encoding algorithm"), no fitting key or a bad signature ("No
  suitable key or wrong key type"); 401 PGRST303 for exp/nbf/iat (30 s leeway);
  ``WWW-Authenticate`` headers; role from the ``role`` claim, ``anon`` without a token;
- the call: a body that is no JSON object → 400 PGRST102, a profile other than ``public`` →
  406 PGRST106; the function found by name and argument names in ``pg_proc`` (every required
  parameter given, no unknown one; else 404 PGRST202);
- one transaction per request on a connection logged in as ``authenticator``:
  ``BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY|READ WRITE`` (READ ONLY for non-volatile
  functions), then ``set_config`` of search_path, the role's own settings (``ALTER ROLE … SET``),
  role, request.jwt.claims, request.method, request.path, request.headers — all
  transaction-local and passed as parameters —, the call with named arguments converted by
  ``json_to_record``, ``COMMIT`` (``ROLLBACK`` on error);
- the answer: the function's value as one JSON document (every API function returns jsonb);
  errors as ``{code, message, details, hint}`` with ``Proxy-Status`` and PostgREST's SQLSTATE →
  status table (PTxyz → xyz, 42501 → 401 for anon and 403 otherwise); connection failures →
  503 PGRST000/PGRST001;
- ``HEAD /rest/v1/`` (the transport's ``ping``): 200, or 503 while the database is away;
- Supabase Auth's JWKS at ``GET /auth/v1/.well-known/jwks.json``: the public asymmetric keys
  (``signing_keys`` and the platform key; never the legacy secret), no API key needed, what the
  edge worker fetches to verify visitors' access tokens (``jwks_requests`` counts the fetches).

Nothing else supabase-py could send is served: GET/HEAD calls, other schemas, overloaded or
unnamed parameters, ``Prefer``, ``Accept`` negotiation, filters on the result, set-returning or
void functions. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import jwt
from aiohttp import web

from bevsession.supabase_keys import SigningKey

__all__ = ["EndpointConfig", "RunningEndpoint", "make_app", "pg_error_status", "run_endpoint"]

JWT_LEEWAY = 30
SCHEMA = "public"  # PGRST_DB_SCHEMAS: the one exposed schema
SEARCH_PATH = '"public", "extensions"'  # the schema, then PGRST_DB_EXTRA_SEARCH_PATH
ANON_ROLE = "anon"


@dataclass(frozen=True)
class EndpointConfig:
    """What PostgREST and the gateway are configured with.

    ``jwt_secret`` is the project's legacy HS256 secret (None: a project without one, whose
    gateway signs its internal JWTs with a platform ES256 key of its own); ``signing_keys`` are
    the public JWKs of the project's asymmetric signing keys (what the JWKS at
    ``/auth/v1/.well-known/jwks.json`` lists), e.g. an imported key's ``public_jwk()``.
    """

    dsn: str  # a login as `authenticator`
    jwt_secret: str | None
    anon_key: str | None  # legacy JWT keys ({"role": "anon"} / {"role": "service_role"})
    service_key: str | None
    publishable_key: str | None = None  # new-style sb_publishable_… / sb_secret_… keys
    secret_key: str | None = None
    signing_keys: tuple[dict[str, Any], ...] = ()
    pool_max_size: int = 20


class PgrstError(Exception):
    """An error answered as PostgREST JSON."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        *,
        details: str | None = None,
        hint: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "details": details, "hint": hint}
        if code is not None:  # the gateway's own errors have no code
            self.body = {"code": code, **self.body}
        self.headers = dict(headers or {})
        if code:
            self.headers.setdefault("Proxy-Status", f"PostgREST; error={code}")

    def response(self) -> web.Response:
        return web.Response(
            status=self.status,
            text=json.dumps(self.body),
            content_type="application/json",
            charset="utf-8",
            headers=self.headers,
        )


# --- status mapping (Error.hs pgErrorStatus, v14.17) -----------------------------------------
_PREFIX_STATUS: tuple[tuple[str, int], ...] = (
    ("08", 503), ("09", 500), ("0L", 403), ("0P", 403),
    ("25", 500), ("28", 403), ("2D", 500), ("38", 500), ("39", 500), ("3B", 500), ("40", 500),
    ("53", 503), ("54", 500), ("55", 500), ("57", 500), ("58", 500), ("F0", 500), ("HV", 500),
    ("P0", 500), ("XX", 500),
)  # fmt: skip
_EXACT_STATUS = {
    "23503": 409, "23505": 409, "25006": 405, "53400": 500, "57P01": 503, "P0001": 400,
    "42P01": 404, "42P17": 500,
}  # fmt: skip


def pg_error_status(code: str, message: str, *, anon: bool) -> int:
    """HTTP status PostgREST gives a PostgreSQL error (first match wins, as in Error.hs)."""
    if code in _EXACT_STATUS:
        return _EXACT_STATUS[code]
    if code == "21000":
        return 400 if message.endswith("requires a WHERE clause") else 500
    if code == "22023":
        return 401 if re.fullmatch(r'role ".*" does not exist', message) else 400
    if code == "42883":
        return 406 if message.startswith("function xmlagg(") else 404
    if code == "42501":
        return 401 if anon else 403
    if code.startswith("PT"):
        return int(code[2:]) if code[2:].isdigit() else 500
    for prefix, status in _PREFIX_STATUS:
        if code.startswith(prefix):
            return status
    return 400


def _pg_error(exc: asyncpg.PostgresError, *, anon: bool) -> PgrstError:
    code = str(exc.sqlstate)
    message = str(getattr(exc, "message", None) or (exc.args[0] if exc.args else ""))
    status = pg_error_status(code, message, anon=anon)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return PgrstError(
        status, code, message, details=getattr(exc, "detail", None),
        hint=getattr(exc, "hint", None), headers=headers,
    )  # fmt: skip


def _unavailable(code: str, message: str, exc: BaseException) -> PgrstError:
    return PgrstError(503, code, message, details=str(exc))


# --- JWKS (Auth/Jwt.hs; jose's key matching) ------------------------------------------------
# alg -> (kty, crv) of the keys that can verify it
_KEY_TYPES: dict[str, tuple[str, str | None]] = {
    "HS256": ("oct", None), "HS384": ("oct", None), "HS512": ("oct", None),
    "RS256": ("RSA", None), "RS384": ("RSA", None), "RS512": ("RSA", None),
    "ES256": ("EC", "P-256"), "ES384": ("EC", "P-384"), "ES512": ("EC", "P-521"),
}  # fmt: skip


def _fits(jwk: dict[str, Any], alg: str, kid: object) -> bool:
    """Can *jwk* verify a token of *alg* naming *kid*? Same key type (and curve), the same
    ``kid`` when the token names one, and the JWK's own ``alg``/``use`` when it has them."""
    kty, crv = _KEY_TYPES[alg]
    if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
        return False
    if kid is not None and jwk.get("kid") != kid:
        return False
    return jwk.get("alg", alg) == alg and jwk.get("use", "sig") == "sig"


# --- the function (Plan.hs findProc, for named arguments) --------------------------------------
@dataclass(frozen=True)
class Routine:
    name: str
    params: tuple[tuple[str, str], ...]  # (name, type) of input params, in order
    n_defaults: int
    volatile: bool

    def accepts(self, keys: set[str]) -> bool:
        """Every required parameter given and no unknown one (PostgREST's rule, named params)."""
        names = [n for n, _ in self.params]
        required = set(names[: len(names) - self.n_defaults])
        return required <= keys <= set(names)


ROUTINES_SQL = """
select p.proname, p.provolatile = 'v' as volatile, p.pronargdefaults,
       p.proargnames, p.proargmodes::text[] as modes,
       array(select format_type(t, null)
             from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) t) as types
from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
where n.nspname = $1 and p.proname = $2 and p.prokind = 'f'
"""


def _routine(row: asyncpg.Record) -> Routine:
    types: list[str] = list(row["types"])
    names: list[str] = list(row["proargnames"] or [""] * len(types))
    modes: list[str] = list(row["modes"] or ["i"] * len(types))
    params = tuple((names[i], types[i]) for i in range(len(types)) if modes[i] in ("i", "b"))
    return Routine(row["proname"], params, row["pronargdefaults"], row["volatile"])


def _not_found(fn: str, keys: set[str]) -> PgrstError:
    listed = ", ".join(sorted(keys))
    searched = f"with parameter(s) {listed}" if keys else "without parameters"
    return PgrstError(
        404, "PGRST202",
        f"Could not find the function {SCHEMA}.{fn}({listed}) in the schema cache",
        details=f"Searched for the function {SCHEMA}.{fn} {searched} or with a single unnamed "
        "json/jsonb parameter, but no matches were found in the schema cache.",
    )  # fmt: skip


def _qi(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- the request handler ---------------------------------------------------------------------
class Endpoint:
    """The aiohttp handlers and their connection pool."""

    def __init__(self, config: EndpointConfig) -> None:
        self.config = config
        self.pool: asyncpg.Pool | None = None
        self.jwks_requests = 0
        # The gateway's own key for the JWTs that stand for sb_ keys: the legacy secret, or
        # (a project without one) a platform ES256 key, published in the JWKS like any other.
        self._platform_key = None if config.jwt_secret else SigningKey.generate("ES256")
        self.jwks: list[dict[str, Any]] = list(config.signing_keys)
        if config.jwt_secret is not None:
            raw = config.jwt_secret.encode("utf-8")
            k = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
            self.jwks.append({"kty": "oct", "k": k})
        if self._platform_key is not None:
            self.jwks.append(self._platform_key.public_jwk())

    async def start(self, app: web.Application) -> None:
        self.pool = await asyncpg.create_pool(
            self.config.dsn, min_size=0, max_size=self.config.pool_max_size, timeout=5
        )

    async def stop(self, app: web.Application) -> None:
        if self.pool is not None:
            await self.pool.close()

    # gateway (section 0)
    def _gateway_authorization(self, request: web.Request) -> str | None:
        key = request.headers.get("apikey")
        if not key:
            raise PgrstError(
                401, None, "No API key found in request",
                hint="No `apikey` request header or url param was found.",
            )  # fmt: skip
        cfg = self.config
        known = {cfg.anon_key, cfg.service_key, cfg.publishable_key, cfg.secret_key} - {None}
        if key not in known:
            raise PgrstError(
                401, None, "Invalid API key",
                hint="Double check your Supabase `anon` or `service_role` API key.",
            )  # fmt: skip
        auth = request.headers.get("Authorization")
        if auth is not None and not auth.startswith("Bearer sb_"):
            return auth
        if cfg.secret_key is not None and key == cfg.secret_key:
            return "Bearer " + self._internal_jwt("service_role")
        if cfg.publishable_key is not None and key == cfg.publishable_key:
            return "Bearer " + self._internal_jwt(ANON_ROLE)
        return "Bearer " + key

    def _internal_jwt(self, role: str) -> str:
        now = int(time.time())
        claims = {"iss": "supabase", "role": role, "iat": now, "exp": now + 600}
        if self._platform_key is not None:
            return self._platform_key.sign(claims)
        assert self.config.jwt_secret is not None
        return jwt.encode(claims, self.config.jwt_secret, algorithm="HS256")

    # authentication (section 3)
    def _claims(self, authorization: str | None) -> dict[str, Any]:
        if authorization is None:
            return {"role": ANON_ROLE}
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return {"role": ANON_ROLE}
        token = token.strip()

        def fail(code: str, message: str) -> PgrstError:
            challenge = f'Bearer error="invalid_token", error_description="{message}"'
            return PgrstError(401, code, message, headers={"WWW-Authenticate": challenge})

        if not token:
            raise fail("PGRST301", "Empty JWT is sent in Authorization header")
        parts = token.count(".") + 1
        if parts != 3:
            raise fail("PGRST301", f"Expected 3 parts in JWT; got {parts}")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise fail("PGRST301", "JWT cryptographic operation failed") from exc
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in _KEY_TYPES:
            raise fail("PGRST301", "Wrong or unsupported encoding algorithm")
        keys = [k for k in self.jwks if _fits(k, alg, header.get("kid"))]
        claims: dict[str, Any] | None = None
        for jwk in keys:
            try:
                key: Any = jwt.PyJWK(jwk, algorithm=alg).key
                claims = jwt.decode(
                    token, key, algorithms=[alg], leeway=JWT_LEEWAY, options={"verify_aud": False}
                )
                break
            except (jwt.InvalidSignatureError, jwt.InvalidKeyError):
                continue  # not this key: try the next one
            except jwt.ExpiredSignatureError as exc:
                raise fail("PGRST303", "JWT expired") from exc
            except jwt.ImmatureSignatureError as exc:
                raise fail("PGRST303", "JWT not yet valid") from exc
            except jwt.InvalidIssuedAtError as exc:
                raise fail("PGRST303", "JWT issued at future") from exc
            except jwt.PyJWTError as exc:
                raise fail("PGRST301", "JWT cryptographic operation failed") from exc
        if claims is None:  # jose: "None of the keys was able to decode the JWT"
            raise fail("PGRST301", "No suitable key or wrong key type")
        return {**claims, "role": claims.get("role") or ANON_ROLE}

    async def rpc(self, request: web.Request) -> web.StreamResponse:
        """``POST /rest/v1/rpc/{fn}``: what supabase-py's ``rpc()`` sends."""
        try:
            return await self._rpc(request)
        except PgrstError as err:
            return err.response()

    async def auth_jwks(self, request: web.Request) -> web.StreamResponse:
        """``GET /auth/v1/.well-known/jwks.json``: the project's public signing keys."""
        self.jwks_requests += 1
        public = [k for k in self.jwks if k.get("kty") != "oct"]
        return web.json_response({"keys": public}, headers={"Cache-Control": "public, max-age=600"})

    async def root(self, request: web.Request) -> web.StreamResponse:
        """``HEAD /rest/v1/`` (the transport's ping): PostgREST's root, a DB check only here."""
        try:
            self._gateway_authorization(request)
            assert self.pool is not None
            try:
                await self.pool.fetchval("select 1")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                raise _unavailable(
                    "PGRST000", "Database connection error. Retrying the connection.", exc
                ) from exc
        except PgrstError as err:
            return err.response()
        return web.json_response({})

    async def _rpc(self, request: web.Request) -> web.StreamResponse:
        claims = self._claims(self._gateway_authorization(request))
        schema = request.headers.get("Content-Profile", SCHEMA)
        if schema != SCHEMA:
            raise PgrstError(
                406, "PGRST106", "Invalid schema: " + schema,
                hint="Only the following schemas are exposed: " + SCHEMA,
            )  # fmt: skip
        try:
            args = json.loads(await request.read())
        except ValueError as exc:
            raise PgrstError(400, "PGRST102", "Empty or invalid json") from exc
        if not isinstance(args, dict):
            raise PgrstError(400, "PGRST102", "Empty or invalid json")
        fn = request.match_info["fn"]
        assert self.pool is not None
        try:
            async with self.pool.acquire() as conn:
                rows = await conn.fetch(ROUTINES_SQL, SCHEMA, fn)
                found = [r for r in map(_routine, rows) if r.accepts(set(args))]
                if not found:
                    raise _not_found(fn, set(args))
                return await self._call(conn, request, found[0], args, claims)
        except asyncpg.PostgresError as exc:
            if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.CannotConnectNowError):
                raise _unavailable(
                    "PGRST001", "Database client error. Retrying the connection.", exc
                ) from exc
            raise _pg_error(exc, anon=claims["role"] == ANON_ROLE) from exc
        except (OSError, asyncpg.InterfaceError, TimeoutError) as exc:
            raise _unavailable(
                "PGRST000", "Database connection error. Retrying the connection.", exc
            ) from exc

    async def _call(
        self,
        conn: asyncpg.Connection,
        request: web.Request,
        routine: Routine,
        args: dict[str, Any],
        claims: dict[str, Any],
    ) -> web.StreamResponse:
        used = [(n, t) for n, t in routine.params if n in args]
        call = f"{_qi(SCHEMA)}.{_qi(routine.name)}(" + ", ".join(
            f"{_qi(n)} := _b.{_qi(n)}" for n, _ in used
        ) + ")"  # fmt: skip
        columns = ", ".join(f"{_qi(n)} {t}" for n, t in used) or '"_dummy" int'
        main = (  # identifiers come from pg_proc and are quoted; values are parameters
            f"select coalesce(to_json(_t.r)::text, 'null') from (select {call} as r"  # noqa: S608
            f" from json_to_record($1::json) as _b({columns}) offset 0) _t"
        )
        role = str(claims["role"])
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() != "cookie"}
        mode = "read write" if routine.volatile else "read only"
        async with _transaction(conn, f"begin isolation level read committed {mode}"):
            role_settings = await conn.fetch(_ROLE_SETTINGS_SQL, role)
            await conn.execute(
                "select set_config('search_path', $1, true), set_config('role', $2, true),"
                " set_config('request.jwt.claims', $3, true),"
                " set_config('request.method', 'POST', true), set_config('request.path', $4, true),"
                " set_config('request.headers', $5, true)",
                SEARCH_PATH, role, json.dumps(claims), f"/rpc/{routine.name}", json.dumps(headers),
            )  # fmt: skip
            for setting in role_settings:
                await conn.execute("select set_config($1, $2, true)", setting["k"], setting["v"])
            body = await conn.fetchval(main, json.dumps(args))
        return web.Response(text=body, content_type="application/json", charset="utf-8")


_ROLE_SETTINGS_SQL = """
select split_part(s, '=', 1) as k, substr(s, strpos(s, '=') + 1) as v
from pg_catalog.pg_db_role_setting d, unnest(d.setconfig) s
where d.setrole = (select oid from pg_catalog.pg_roles where rolname = $1)
  and d.setdatabase in (0, (select oid from pg_catalog.pg_database
                            where datname = current_database()))
"""


@contextlib.asynccontextmanager
async def _transaction(conn: asyncpg.Connection, begin: str) -> AsyncIterator[None]:
    await conn.execute(begin)
    try:
        yield
    except BaseException:
        if not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.execute("rollback")
        raise
    await conn.execute("commit")


def make_app(config: EndpointConfig) -> tuple[web.Application, Endpoint]:
    """The aiohttp application: the RPC route, the REST root and Auth's JWKS."""
    endpoint = Endpoint(config)
    app = web.Application()
    app.router.add_post("/rest/v1/rpc/{fn}", endpoint.rpc)
    app.router.add_get("/rest/v1/", endpoint.root)  # and HEAD
    app.router.add_get("/auth/v1/.well-known/jwks.json", endpoint.auth_jwks)
    app.on_startup.append(endpoint.start)
    app.on_cleanup.append(endpoint.stop)
    return app, endpoint


@dataclass
class RunningEndpoint:
    """A started endpoint: its base URL (what supabase-py takes as the project URL)."""

    url: str
    endpoint: Endpoint
    runner: web.AppRunner

    async def close(self) -> None:
        await self.runner.cleanup()


async def run_endpoint(config: EndpointConfig) -> RunningEndpoint:
    """Serve *config* on 127.0.0.1 at a free port."""
    app, endpoint = make_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return RunningEndpoint(f"http://127.0.0.1:{port}", endpoint, runner)
