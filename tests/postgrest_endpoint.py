"""A small PostgREST-compatible ``/rest/v1/rpc/<fn>`` endpoint for tests (no PostgREST binary here).

Faithful to /work/shared/reference/postgrest-rpc.md (PostgREST v14 behind Supabase's gateway)
for what supabase-py's ``rpc()`` uses:

- gateway (section 0): ``apikey`` header or ``?apikey=``; missing/unknown key → 401 with the
  gateway's code-less JSON; the Authorization substitution rules (user JWT passes through;
  ``sb_secret_``/``sb_publishable_`` keys become internal service/anon JWTs — signed with the
  legacy secret, or with the platform's own ES256 key when the project has no legacy secret; a
  legacy JWT key becomes the bearer token);
- request parsing: POST with a JSON object body (empty → ``{}``; invalid → 400 PGRST102; other
  content types → 400 PGRST102), GET/HEAD with query parameters as text arguments, other verbs
  → 405 PGRST101; ``Content-Profile``/``Accept-Profile`` schema selection (406 PGRST106);
- function resolution by argument names from ``pg_proc`` (required/optional rules, the single
  unnamed json/jsonb fallback), 404 PGRST202, 300 PGRST203;
- JWT: verified against a JWKS as PostgREST does with Supabase's ``PGRST_JWT_SECRET`` (the legacy
  HS256 secret as an ``oct`` key, plus the public keys of the project's signing keys, ES256 or
  RS256): a token with a ``kid`` is tried only with the key of that id, one without with every
  key that fits its ``alg``; a JWK's own ``alg``/``use`` must fit too. 401 PGRST301 for
  empty/malformed tokens ("Expected 3 parts…", "JWT cryptographic operation failed"), an unknown
  ``alg`` ("Wrong or unsupported encoding algorithm"), no fitting key or a bad signature ("No
  suitable key or wrong key type"); 401 PGRST303 for exp/nbf/iat (30 s leeway) and ``aud``
  (only when configured); ``WWW-Authenticate`` headers; role from the ``role`` claim, ``anon``
  without a token;
- one transaction per request on a connection logged in as ``authenticator``:
  ``BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY|READ WRITE`` (READ ONLY for GET/HEAD and
  non-volatile functions), then ``set_config`` of search_path, the role's own settings
  (``ALTER ROLE … SET``), role, request.jwt.claims, request.method, request.path,
  request.headers, request.cookies — all transaction-local and passed as parameters —, the
  call with named arguments converted by ``json_to_record``, ``COMMIT`` (``ROLLBACK`` on error);
- Supabase Auth's JWKS at ``GET /auth/v1/.well-known/jwks.json``: the public asymmetric keys
  (``signing_keys`` and the platform key; never the legacy secret), no API key needed, what the
  edge worker fetches to verify visitors' access tokens (``jwks_requests`` counts the fetches);
- responses: 204 without Content-Type for void, scalar/composite as one JSON value, SETOF as a
  JSON array; ``response.status`` override; errors as ``{code, message, details, hint}`` with
  ``Proxy-Status`` and PostgREST's SQLSTATE → status table (PTxyz → xyz, 42501 → 401 for anon
  and 403 otherwise, RAISE 'PGRST' with JSON message/detail); connection failures → 503
  PGRST000/PGRST001.

Not covered: OPTIONS/CORS, form-urlencoded and text/xml/octet-stream bodies, arrays of JSON
objects as bodies, VARIADIC, filters/``select``/order/limit on the result, ``Prefer`` (count,
tx, timezone, handling), ``Accept`` negotiation (singular objects, CSV), ``Content-Range`` counts,
``response.headers``, ``db-pre-request``, PostgREST fetching its JWKS from a URL (it is given
as data), the
``details`` of JWT errors, EdDSA/PS* keys, the function-name fuzzy hint, the JWT cache,
schema-cache reloads (it reads ``pg_proc`` on every request), the OpenAPI document at
``/rest/v1/`` (there it only answers 200, or 503 when the database is down).
It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

import asyncpg
import jwt
from aiohttp import web

from bevsession.supabase_keys import SigningKey

__all__ = ["EndpointConfig", "RunningEndpoint", "make_app", "pg_error_status", "run_endpoint"]

JWT_LEEWAY = 30


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
    schemas: tuple[str, ...] = ("public",)
    extra_search_path: tuple[str, ...] = ("public", "extensions")
    anon_role: str = "anon"
    jwt_aud: str | None = None
    pool_max_size: int = 20
    extra: dict[str, Any] = field(default_factory=dict)


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
        include_code: bool = True,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "details": details, "hint": hint}
        if include_code:
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
    detail = getattr(exc, "detail", None)
    if code == "PGRST":  # RAISE sqlstate 'PGRST' with JSON message and detail
        try:
            body = json.loads(message)
            extra = json.loads(detail or "{}")
            status = int(extra["status"])
            return PgrstError(
                status, str(body["code"]), str(body["message"]),
                details=body.get("details"), hint=body.get("hint"),
                headers={str(k): str(v) for k, v in extra.get("headers", {}).items()},
            )  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return PgrstError(
                500, "PGRST121", "Could not parse JSON in the RAISE SQLSTATE 'PGRST' error"
            )
    status = pg_error_status(code, message, anon=anon)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return PgrstError(
        status, code, message, details=detail, hint=getattr(exc, "hint", None), headers=headers
    )


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


# --- function resolution (Plan.hs findProc) -------------------------------------------------
@dataclass(frozen=True)
class Routine:
    schema: str
    name: str
    params: tuple[tuple[str, str], ...]  # (name, type) of input params, in order
    n_defaults: int
    volatile: bool
    returns_set: bool
    returns_void: bool

    @property
    def required(self) -> set[str]:
        return {n for n, _ in self.params[: len(self.params) - self.n_defaults]}

    @property
    def optional(self) -> set[str]:
        return {n for n, _ in self.params[len(self.params) - self.n_defaults :]}

    def matches(self, keys: set[str]) -> bool:
        if not self.params:
            return not keys
        if any(not n for n, _ in self.params):
            return False
        req, opt = self.required, self.optional
        if not opt:
            return keys == req
        if not req:
            return keys <= opt
        return keys - opt == req

    @property
    def single_unnamed_json(self) -> bool:
        return (
            len(self.params) == 1
            and not self.params[0][0]
            and self.params[0][1] in ("json", "jsonb")
        )


ROUTINES_SQL = """
select p.proname, p.provolatile::text as provolatile, p.proretset,
       p.prorettype = 'pg_catalog.void'::regtype as void,
       p.pronargdefaults, p.proargnames, p.proargmodes::text[] as modes,
       array(select format_type(t, null)
             from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) t) as types
from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
where n.nspname = $1 and p.proname = $2 and p.prokind = 'f'
"""


def _routine(schema: str, row: asyncpg.Record) -> Routine:
    types: list[str] = list(row["types"])
    names: list[str] = list(row["proargnames"] or [""] * len(types))
    modes: list[str] = list(row["modes"] or ["i"] * len(types))
    params = tuple(
        (names[i] if i < len(names) else "", types[i])
        for i in range(len(types))
        if modes[i] in ("i", "b", "v")
    )
    return Routine(
        schema, row["proname"], params, row["pronargdefaults"], row["provolatile"] == "v",
        row["proretset"], row["void"],
    )  # fmt: skip


def _not_found(schema: str, fn: str, keys: set[str]) -> PgrstError:
    listed = ", ".join(sorted(keys))
    searched = f"with parameter(s) {listed}" if keys else "without parameters"
    return PgrstError(
        404, "PGRST202",
        f"Could not find the function {schema}.{fn}({listed}) in the schema cache",
        details=f"Searched for the function {schema}.{fn} {searched} or with a single unnamed "
        "json/jsonb parameter, but no matches were found in the schema cache.",
    )  # fmt: skip


def _qi(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- the request handler ---------------------------------------------------------------------
class Endpoint:
    """The aiohttp handler and its connection pool."""

    def __init__(self, config: EndpointConfig) -> None:
        self.config = config
        self.pool: asyncpg.Pool | None = None
        self.requests = 0
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
        key = request.headers.get("apikey") or request.query.get("apikey")
        if not key:
            raise PgrstError(
                401, None, "No API key found in request",
                hint="No `apikey` request header or url param was found.", include_code=False,
            )  # fmt: skip
        cfg = self.config
        known = {cfg.anon_key, cfg.service_key, cfg.publishable_key, cfg.secret_key} - {None}
        if key not in known:
            raise PgrstError(
                401, None, "Invalid API key",
                hint="Double check your Supabase `anon` or `service_role` API key.",
                include_code=False,
            )  # fmt: skip
        auth = request.headers.get("Authorization")
        if auth is not None and not auth.startswith("Bearer sb_"):
            return auth
        if cfg.secret_key is not None and key == cfg.secret_key:
            return "Bearer " + self._internal_jwt("service_role")
        if cfg.publishable_key is not None and key == cfg.publishable_key:
            return "Bearer " + self._internal_jwt("anon")
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
            return {"role": self.config.anon_role}
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return {"role": self.config.anon_role}
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
        if not keys:
            raise fail("PGRST301", "No suitable key or wrong key type")
        claims: dict[str, Any] | None = None
        for jwk in keys:
            try:
                claims = self._decode(token, jwk, alg)
                break
            except (jwt.InvalidSignatureError, jwt.InvalidKeyError):
                continue  # not this key: try the next one
            except jwt.ExpiredSignatureError as exc:
                raise fail("PGRST303", "JWT expired") from exc
            except jwt.ImmatureSignatureError as exc:
                raise fail("PGRST303", "JWT not yet valid") from exc
            except jwt.InvalidAudienceError as exc:
                raise fail("PGRST303", "JWT not in audience") from exc
            except jwt.InvalidIssuedAtError as exc:
                raise fail("PGRST303", "JWT issued at future") from exc
            except jwt.PyJWTError as exc:
                raise fail("PGRST301", "JWT cryptographic operation failed") from exc
        if claims is None:  # jose: "None of the keys was able to decode the JWT"
            raise fail("PGRST301", "No suitable key or wrong key type")
        role = claims.get("role") or self.config.anon_role
        return {**claims, "role": role}

    def _decode(self, token: str, jwk: dict[str, Any], alg: str) -> dict[str, Any]:
        """Verify *token* with one JWK, then its claims (30 s leeway; ``aud`` if configured)."""
        key: Any = jwt.PyJWK(jwk, algorithm=alg).key
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=[alg], leeway=JWT_LEEWAY, audience=self.config.jwt_aud,
            options={"verify_aud": self.config.jwt_aud is not None},
        )  # fmt: skip
        return claims

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        try:
            return await self._handle(request)
        except PgrstError as err:
            return err.response()

    async def auth_jwks(self, request: web.Request) -> web.StreamResponse:
        """``GET /auth/v1/.well-known/jwks.json``: the project's public signing keys."""
        self.jwks_requests += 1
        public = [k for k in self.jwks if k.get("kty") != "oct"]
        return web.json_response({"keys": public}, headers={"Cache-Control": "public, max-age=600"})

    async def root(self, request: web.Request) -> web.StreamResponse:
        """``GET|HEAD /rest/v1/``: PostgREST's root (OpenAPI there; here a DB check only)."""
        try:
            self._gateway_authorization(request)
            assert self.pool is not None
            try:
                await self.pool.fetchval("select 1")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                raise PgrstError(503, "PGRST000", "Database connection error. Retrying the "
                                 "connection.", details=str(exc)) from exc  # fmt: skip
        except PgrstError as err:
            return err.response()
        return web.json_response({})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.method
        if method not in ("GET", "HEAD", "POST"):
            raise PgrstError(405, "PGRST101", "Only GET, HEAD and POST verbs are allowed for RPC")
        claims = self._claims(self._gateway_authorization(request))
        profile_header = "Content-Profile" if method == "POST" else "Accept-Profile"
        profile = request.headers.get(profile_header)
        schema = profile or self.config.schemas[0]
        if schema not in self.config.schemas:
            raise PgrstError(
                406, "PGRST106", "Invalid schema: " + schema,
                hint="Only the following schemas are exposed: " + ", ".join(self.config.schemas),
            )  # fmt: skip
        args = await self._arguments(request)
        fn = request.match_info["fn"]
        assert self.pool is not None
        try:
            async with self.pool.acquire() as conn:
                routine = await self._resolve(conn, schema, fn, set(args))
                return await self._call(conn, request, routine, args, claims, profile)
        except PgrstError:
            raise
        except asyncpg.PostgresError as exc:
            if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.CannotConnectNowError):
                raise PgrstError(
                    503,
                    "PGRST001",
                    "Database client error. Retrying the connection.",
                    details=str(exc),
                ) from exc
            raise _pg_error(exc, anon=claims["role"] == self.config.anon_role) from exc
        except (OSError, asyncpg.InterfaceError, TimeoutError) as exc:
            raise PgrstError(
                503,
                "PGRST000",
                "Database connection error. Retrying the connection.",
                details=str(exc),
            ) from exc

    async def _arguments(self, request: web.Request) -> dict[str, Any]:
        if request.method != "POST":
            return {k: v for k, v in request.query.items() if k != "apikey"}
        ctype = (request.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if ctype != "application/json":
            raise PgrstError(400, "PGRST102", f"Content-Type not acceptable: {ctype}")
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise PgrstError(400, "PGRST102", "Empty or invalid json") from exc
        if not isinstance(body, dict):
            raise PgrstError(400, "PGRST102", "Empty or invalid json")
        return body

    async def _resolve(
        self, conn: asyncpg.Connection, schema: str, fn: str, keys: set[str]
    ) -> Routine:
        rows = await conn.fetch(ROUTINES_SQL, schema, fn)
        routines = [_routine(schema, row) for row in rows]
        found = [r for r in routines if r.matches(keys)]
        if not found:
            found = [r for r in routines if r.single_unnamed_json]
        if not found:
            raise _not_found(schema, fn, keys)
        if len(found) > 1:
            candidates = ", ".join(
                f"{schema}.{fn}({', '.join(f'{n} => {t}' for n, t in r.params)})" for r in found
            )
            raise PgrstError(
                300, "PGRST203",
                "Could not choose the best candidate function between: " + candidates,
                hint="Try renaming the parameters or the function itself in the database so "
                "function overloading can be resolved",
            )  # fmt: skip
        return found[0]

    async def _call(
        self,
        conn: asyncpg.Connection,
        request: web.Request,
        routine: Routine,
        args: dict[str, Any],
        claims: dict[str, Any],
        profile: str | None,
    ) -> web.StreamResponse:
        method = request.method
        read_only = method != "POST" or not routine.volatile
        role = str(claims["role"])
        fn_sql = f"{_qi(routine.schema)}.{_qi(routine.name)}"
        params: list[Any]
        if routine.single_unnamed_json and not routine.matches(set(args)):
            call = f"{fn_sql}($1::{routine.params[0][1]})"
            source = ""
            params = [json.dumps(args)]
        elif method == "POST":
            used = [(n, t) for n, t in routine.params if n in args]
            call = f"{fn_sql}(" + ", ".join(f"{_qi(n)} := _b.{_qi(n)}" for n, _ in used) + ")"
            cols = ", ".join(f"{_qi(n)} {t}" for n, t in used) or '"_dummy" int'
            source = f" from json_to_record($1::json) as _b({cols})"
            params = [json.dumps(args)]
        else:
            used = [(n, t) for n, t in routine.params if n in args]
            call = f"{fn_sql}(" + ", ".join(
                f"{_qi(n)} := ${i}::text::{t}" for i, (n, t) in enumerate(used, start=1)
            ) + ")"  # fmt: skip
            source = ""
            params = [str(args[n]) for n, _ in used]
        if routine.returns_set:
            body = "coalesce(json_agg(_t.r), '[]')::text"
            main = f"select {body} as body, {_RESPONSE_STATUS} from (select {call} as r{source}) _t"  # noqa: S608
        else:
            main = (  # identifiers come from pg_proc and are quoted; values are parameters
                f"select coalesce(to_json(_t.r)::text, 'null') as body, {_RESPONSE_STATUS}"  # noqa: S608
                f" from (select {call} as r{source} offset 0) _t"
            )
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() != "cookie"}
        cookies = SimpleCookie(request.headers.get("Cookie", ""))
        search_path = ", ".join(
            _qi(s) for s in dict.fromkeys((routine.schema, *self.config.extra_search_path))
        )
        mode = "read only" if read_only else "read write"
        async with _transaction(conn, f"begin isolation level read committed {mode}"):
            role_settings = await conn.fetch(_ROLE_SETTINGS_SQL, role)
            await conn.execute(
                "select set_config('search_path', $1, true), set_config('role', $2, true),"
                " set_config('request.jwt.claims', $3, true),"
                " set_config('request.method', $4, true), set_config('request.path', $5, true),"
                " set_config('request.headers', $6, true), set_config('request.cookies', $7, true)",
                search_path, role, json.dumps(claims), method, f"/rpc/{routine.name}",
                json.dumps(headers), json.dumps({k: m.value for k, m in cookies.items()}),
            )  # fmt: skip
            for setting in role_settings:
                await conn.execute("select set_config($1, $2, true)", setting["k"], setting["v"])
            row = await conn.fetchrow(main, *params)
        assert row is not None
        status = int(row["status"]) if row["status"] else None
        out_headers = {"Content-Profile": profile} if profile else {}
        if routine.returns_void:
            return web.Response(status=status or 204, headers=out_headers)
        out_headers["Content-Range"] = "0-0/*" if not routine.returns_set else "*/*"
        if method == "HEAD":
            return web.Response(status=status or 200, headers=out_headers,
                                content_type="application/json", charset="utf-8")  # fmt: skip
        return web.Response(
            status=status or 200, text=row["body"], content_type="application/json",
            charset="utf-8", headers=out_headers,
        )  # fmt: skip


_RESPONSE_STATUS = "nullif(current_setting('response.status', true), '') as status"
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
    """The aiohttp application serving ``/rest/v1/rpc/{fn}``."""
    endpoint = Endpoint(config)
    app = web.Application()
    app.router.add_route("*", "/rest/v1/rpc/{fn}", endpoint.handle)
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
