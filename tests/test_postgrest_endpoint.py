"""The PostgREST-compatible test endpoint behaves like PostgREST behind Supabase's gateway.

Checked against /work/shared/reference/postgrest-rpc.md for what supabase-py's ``rpc()`` sends:
gateway key rules, JWT errors (401 PGRST301/PGRST303 with WWW-Authenticate), asymmetric tokens
verified against the project's JWKS (``kid`` and ``alg`` must name a key that fits), the anon
role, the function found by argument names (404 PGRST202), status mapping, READ ONLY for
non-volatile functions, and the request GUCs a function sees.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import jwt
import pytest

from bevsession.local_postgres import LocalPostgres
from bevsession.supabase_keys import SigningKey
from postgrest_endpoint import EndpointConfig, RunningEndpoint, pg_error_status, run_endpoint
from rpc_fixtures import Keys, endpoint_config

PUBLISHABLE = "sb_publishable_test_0123456789"
SECRET = "sb_secret_test_0123456789"

TEST_FUNCTIONS = """
create function public.t_ok() returns jsonb language sql as $$ select '{"ok": true}'::jsonb $$;
create function public.t_null() returns jsonb language sql as 'select null::jsonb';
create function public.t_echo(a integer, b text default 'dflt') returns jsonb language sql
    as $$ select jsonb_build_object('a', a, 'b', b) $$;
create function public.t_request() returns jsonb language sql stable as $$
    select jsonb_build_object(
        'user', current_user,
        'claims', current_setting('request.jwt.claims', true)::jsonb,
        'method', current_setting('request.method', true),
        'path', current_setting('request.path', true),
        'headers', current_setting('request.headers', true)::jsonb,
        'read_only', current_setting('transaction_read_only'),
        'timeout', current_setting('statement_timeout'),
        'search_path', current_setting('search_path'))
$$;
create table public.t_log (x int);
create function public.t_write() returns int language plpgsql
    as $$ begin insert into public.t_log values (1); return 1; end $$;
create function public.t_raise(code text) returns jsonb language plpgsql as $$
    begin raise exception using errcode = code, message = 'raised ' || code; end $$;
do $$ declare f regprocedure; begin
    for f in select p.oid from pg_proc p where p.pronamespace = 'public'::regnamespace
                                           and p.proname like 't\\_%' loop
        execute format('grant execute on function %s to anon, session_visitor, service_role', f);
    end loop;
end $$;
grant all on public.t_log to anon, session_visitor, service_role;
"""


@pytest.fixture
async def ep(
    pg: LocalPostgres, db_name: str, db_dsn: str, keys: Keys
) -> AsyncIterator[RunningEndpoint]:
    conn = await asyncpg.connect(db_dsn)
    try:
        await conn.execute(TEST_FUNCTIONS)
    finally:
        await conn.close()
    base = endpoint_config(pg, db_name, keys)
    config = EndpointConfig(
        dsn=base.dsn, jwt_secret=base.jwt_secret, anon_key=base.anon_key,
        service_key=base.service_key, publishable_key=PUBLISHABLE, secret_key=SECRET,
        signing_keys=keys.public_jwks(),
    )  # fmt: skip
    running = await run_endpoint(config)
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
async def http(ep: RunningEndpoint) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=ep.url + "/rest/v1") as client:
        yield client


def token(keys: Keys, **claims: Any) -> str:
    now = int(time.time())
    payload = {"role": "session_visitor", "iat": now, "exp": now + 60, **claims}
    return jwt.encode(payload, keys.jwt_secret, algorithm="HS256")


def with_auth(keys: Keys, authorization: str) -> dict[str, str]:
    return {"apikey": keys.anon_key, "Authorization": authorization}


def visitor_headers(keys: Keys, **claims: Any) -> dict[str, str]:
    return {"apikey": keys.anon_key, "Authorization": f"Bearer {token(keys, **claims)}"}


# --- gateway -------------------------------------------------------------------------------------
async def test_missing_and_unknown_api_keys(http: httpx.AsyncClient) -> None:
    r = await http.post("/rpc/t_ok", json={})
    assert r.status_code == 401
    assert r.json() == {"message": "No API key found in request",
                        "hint": "No `apikey` request header or url param was found.",
                        "details": None}  # fmt: skip
    r = await http.post("/rpc/t_ok", json={}, headers={"apikey": "nope"})
    assert r.status_code == 401
    assert r.json()["message"] == "Invalid API key"
    assert "code" not in r.json()


async def test_new_style_keys_become_internal_jwts(http: httpx.AsyncClient) -> None:
    # what supabase-py sends with an sb_ key: the key as apikey AND as the bearer token
    secret = {"apikey": SECRET, "Authorization": f"Bearer {SECRET}"}
    r = await http.post("/rpc/t_request", json={}, headers=secret)
    assert r.status_code == 200
    assert r.json()["user"] == "service_role"
    public = {"apikey": PUBLISHABLE, "Authorization": f"Bearer {PUBLISHABLE}"}
    r = await http.post("/rpc/t_request", json={}, headers=public)
    assert r.json()["user"] == "anon"


async def test_user_jwt_passes_the_gateway(http: httpx.AsyncClient, keys: Keys) -> None:
    session_id = str(uuid.uuid4())
    r = await http.post(
        "/rpc/t_request", json={}, headers=visitor_headers(keys, session_id=session_id)
    )
    body = r.json()
    assert body["user"] == "session_visitor"
    assert body["claims"]["session_id"] == session_id
    assert body["claims"]["role"] == "session_visitor"


# --- JWT -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("authorization", "code", "message"),
    [
        ("Bearer", "PGRST301", "Empty JWT is sent in Authorization header"),
        ("Bearer abc", "PGRST301", "Expected 3 parts in JWT; got 1"),
        ("Bearer a.b", "PGRST301", "Expected 3 parts in JWT; got 2"),
    ],
)
async def test_malformed_tokens(
    http: httpx.AsyncClient, keys: Keys, authorization: str, code: str, message: str
) -> None:
    r = await http.post("/rpc/t_ok", json={}, headers=with_auth(keys, authorization))
    assert r.status_code == 401
    assert r.json()["code"] == code
    assert r.json()["message"] == message
    assert r.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert r.headers["Proxy-Status"] == f"PostgREST; error={code}"


async def test_bad_signature_and_expiry(http: httpx.AsyncClient, keys: Keys) -> None:
    forged = jwt.encode({"role": "service_role"}, "y" * 40, algorithm="HS256")
    r = await http.post("/rpc/t_ok", json={}, headers=with_auth(keys, f"Bearer {forged}"))
    assert (r.status_code, r.json()["code"]) == (401, "PGRST301")
    old = token(keys, iat=1000, exp=2000)
    r = await http.post("/rpc/t_ok", json={}, headers=with_auth(keys, f"Bearer {old}"))
    assert (r.status_code, r.json()["code"]) == (401, "PGRST303")
    assert r.json()["message"] == "JWT expired"
    assert 'error_description="JWT expired"' in r.headers["WWW-Authenticate"]
    # within the 30 s leeway an expired token still passes
    recent = token(keys, iat=int(time.time()) - 100, exp=int(time.time()) - 10)
    r = await http.post("/rpc/t_ok", json={}, headers=with_auth(keys, f"Bearer {recent}"))
    assert (r.status_code, r.json()) == (200, {"ok": True})


def signed(key: SigningKey, *, kid: str | None = "same", alg: str | None = None,
           **claims: Any) -> str:  # fmt: skip
    """A visitor token signed with *key*, its header naming ``kid`` (default: the key's own;
    None: no kid) and ``alg`` (default: the key's)."""
    now = int(time.time())
    payload = {"role": "session_visitor", "iat": now, "exp": now + 60, **claims}
    headers = {} if kid is None else {"kid": key.key_id if kid == "same" else kid}
    algorithm = alg or key.algorithm
    return jwt.encode(payload, key.private_key, algorithm=algorithm, headers=headers)


async def test_asymmetric_tokens_are_verified_against_the_jwks(
    http: httpx.AsyncClient, keys: Keys
) -> None:
    """ES256 and RS256 tokens of the project's signing keys pass, with their kid or without
    one (then every key that fits the alg is tried, as PostgREST does)."""
    session_id = str(uuid.uuid4())
    for key in (keys.es256, keys.rs256):
        for kid in ("same", None):
            bearer = f"Bearer {signed(key, kid=kid, session_id=session_id)}"
            r = await http.post(
                "/rpc/t_request", json={}, headers={"apikey": PUBLISHABLE, "Authorization": bearer}
            )
            assert r.status_code == 200, (key.algorithm, kid, r.text)
            assert r.json()["user"] == "session_visitor"
            assert r.json()["claims"]["session_id"] == session_id


@pytest.mark.parametrize(
    "case",
    ["unknown kid", "RS256 under the ES256 kid", "ES256 under the RS256 kid",
     "HS256 under the ES256 kid", "right kid, another key", "no kid, no key of ours",
     "alg none", "unknown alg", "header not JSON"],
)  # fmt: skip
async def test_a_wrong_kid_or_alg_is_refused_as_postgrest_does(
    http: httpx.AsyncClient, keys: Keys, case: str
) -> None:
    es, rs = keys.es256, keys.rs256
    no_key = "No suitable key or wrong key type"
    hs256 = jwt.encode(
        {"role": "service_role"}, keys.jwt_secret, algorithm="HS256", headers={"kid": es.key_id}
    )
    unsecured = jwt.encode({"role": "service_role"}, None, algorithm="none")  # type: ignore[arg-type]
    body = signed(es).split(".", 1)[1]
    tokens: dict[str, Callable[[], tuple[str, str]]] = {
        "unknown kid": lambda: (signed(SigningKey.generate("ES256")), no_key),
        "RS256 under the ES256 kid": lambda: (signed(rs, kid=es.key_id), no_key),
        "ES256 under the RS256 kid": lambda: (signed(es, kid=rs.key_id), no_key),
        "HS256 under the ES256 kid": lambda: (hs256, no_key),
        "right kid, another key": lambda: (signed(SigningKey.generate("ES256", es.key_id)), no_key),
        "no kid, no key of ours": lambda: (signed(SigningKey.generate("ES256"), kid=None), no_key),
        "alg none": lambda: (unsecured, "Wrong or unsupported encoding algorithm"),
        "unknown alg": lambda: (
            _b64({"alg": "XS256", "typ": "JWT"}) + "." + body,
            "Wrong or unsupported encoding algorithm",
        ),
        "header not JSON": lambda: ("bm90IGpzb24." + body, "JWT cryptographic operation failed"),
    }
    token_, message = tokens[case]()
    r = await http.post("/rpc/t_ok", json={}, headers=with_auth(keys, f"Bearer {token_}"))
    assert r.status_code == 401, r.text
    assert r.json() == {"code": "PGRST301", "message": message, "details": None, "hint": None}
    assert r.headers["WWW-Authenticate"] == (
        f'Bearer error="invalid_token", error_description="{message}"'
    )
    assert r.headers["Proxy-Status"] == "PostgREST; error=PGRST301"


def _b64(header: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()


async def test_asymmetric_claims_are_checked_like_any_others(
    http: httpx.AsyncClient, keys: Keys
) -> None:
    old = signed(keys.es256, iat=1000, exp=2000)
    r = await http.post("/rpc/t_ok", json={}, headers=with_auth(keys, f"Bearer {old}"))
    assert (r.status_code, r.json()["code"], r.json()["message"]) == (
        401,
        "PGRST303",
        "JWT expired",
    )


async def test_a_project_without_the_legacy_secret(
    pg: LocalPostgres, db_name: str, keys: Keys
) -> None:
    """Current keys only: HS256 tokens and legacy keys are refused; sb_ keys still become the
    gateway's own JWTs (signed with its platform key) and signing-key tokens pass."""
    running = await run_endpoint(endpoint_config(pg, db_name, keys, "supabase-keys"))
    try:
        async with httpx.AsyncClient(base_url=running.url + "/rest/v1") as client:
            legacy = token(keys, session_id=str(uuid.uuid4()))
            r = await client.post("/rpc/get_session", json={}, headers={
                "apikey": keys.publishable_key, "Authorization": f"Bearer {legacy}"})  # fmt: skip
            assert (r.status_code, r.json()["message"]) == (
                401,
                "No suitable key or wrong key type",
            )
            r = await client.post("/rpc/get_session", json={}, headers={"apikey": keys.anon_key})
            assert (r.status_code, r.json()["message"]) == (401, "Invalid API key")
            r = await client.post("/rpc/admin_session_stats", json={},
                                  headers={"apikey": keys.secret_key})  # fmt: skip
            assert r.status_code == 200, r.text
            me = str(uuid.uuid4())
            r = await client.post("/rpc/get_session", json={}, headers={
                "apikey": keys.publishable_key,
                "Authorization": f"Bearer {signed(keys.es256, session_id=me)}",
            })  # fmt: skip
            assert r.status_code == 200 and r.json()["session"]["session_id"] == me, r.text
    finally:
        await running.close()


async def test_anon_without_a_token_and_unknown_roles(http: httpx.AsyncClient, keys: Keys) -> None:
    # a non-Bearer scheme is "no token": anon
    r = await http.post("/rpc/t_request", json={}, headers=with_auth(keys, "Basic Zm9vOmJhcg=="))
    assert r.json()["user"] == "anon"
    assert r.json()["claims"] == {"role": "anon"}
    # a role claim naming no role: 22023 'role "…" does not exist' → 401
    r = await http.post("/rpc/t_ok", json={}, headers=visitor_headers(keys, role="nobody"))
    assert (r.status_code, r.json()["code"]) == (401, "22023")


# --- resolution ----------------------------------------------------------------------------------
async def test_function_resolution_by_argument_names(http: httpx.AsyncClient, keys: Keys) -> None:
    h = visitor_headers(keys)
    r = await http.post("/rpc/t_echo", json={"a": 1}, headers=h)
    assert r.json() == {"a": 1, "b": "dflt"}
    r = await http.post("/rpc/t_echo", json={"a": 2, "b": None}, headers=h)
    assert r.json() == {"a": 2, "b": None}
    r = await http.post("/rpc/t_echo", json={"b": "x"}, headers=h)
    assert r.status_code == 404
    body = r.json()
    assert body["code"] == "PGRST202"
    assert body["message"] == "Could not find the function public.t_echo(b) in the schema cache"
    assert "single unnamed json/jsonb parameter" in body["details"]
    r = await http.post("/rpc/nope", json={}, headers=h)
    assert (r.status_code, r.json()["code"]) == (404, "PGRST202")
    assert "without parameters" in r.json()["details"]
    r = await http.post("/rpc/t_echo", json={"a": 1, "c": 2}, headers=h)
    assert (r.status_code, r.json()["code"]) == (404, "PGRST202")


# --- responses and status mapping ----------------------------------------------------------------
async def test_the_value_is_one_json_document(http: httpx.AsyncClient, keys: Keys) -> None:
    h = visitor_headers(keys)
    r = await http.post("/rpc/t_ok", json={}, headers=h)
    assert (r.status_code, r.json()) == (200, {"ok": True})
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    r = await http.post("/rpc/t_null", json={}, headers=h)
    assert (r.status_code, r.content) == (200, b"null")


@pytest.mark.parametrize(
    ("sqlstate", "status"),
    [("PT403", 403), ("PT404", 404), ("PT401", 401), ("22023", 400), ("23505", 409),
     ("23503", 409), ("P0001", 400), ("P0002", 500), ("40001", 500), ("57014", 500),
     ("53300", 503), ("42883", 404), ("XX000", 500), ("PTXYZ", 500)],
)  # fmt: skip
async def test_sqlstate_to_http_status(
    http: httpx.AsyncClient, keys: Keys, sqlstate: str, status: int
) -> None:
    r = await http.post("/rpc/t_raise", json={"code": sqlstate}, headers=visitor_headers(keys))
    assert r.status_code == status
    body = r.json()
    assert body["code"] == sqlstate
    assert body["message"] == f"raised {sqlstate}"
    assert set(body) == {"code", "message", "details", "hint"}


def test_status_table_special_cases() -> None:
    assert pg_error_status("42501", "permission denied", anon=True) == 401
    assert pg_error_status("42501", "permission denied", anon=False) == 403
    assert pg_error_status("21000", "DELETE requires a WHERE clause", anon=False) == 400
    assert pg_error_status("21000", "more than one row", anon=False) == 500
    assert pg_error_status("25006", "read-only", anon=False) == 405
    assert pg_error_status("08006", "lost", anon=False) == 503
    assert pg_error_status("57P01", "shutdown", anon=False) == 503
    assert pg_error_status("22P02", "bad input", anon=False) == 400


async def test_permission_denied_is_401_for_anon_403_otherwise(
    http: httpx.AsyncClient, keys: Keys
) -> None:
    r = await http.post("/rpc/get_session", json={}, headers={"apikey": keys.anon_key})
    assert (r.status_code, r.json()["code"]) == (401, "42501")
    assert r.headers["WWW-Authenticate"] == "Bearer"
    r = await http.post("/rpc/admin_session_stats", json={},
                        headers=visitor_headers(keys, session_id=str(uuid.uuid4())))  # fmt: skip
    assert (r.status_code, r.json()["code"]) == (403, "42501")


# --- the transaction -----------------------------------------------------------------------------
async def test_read_only_for_stable_functions(
    http: httpx.AsyncClient, keys: Keys, db_dsn: str
) -> None:
    h = visitor_headers(keys)
    r = await http.post("/rpc/t_write", json={}, headers=h)
    assert (r.status_code, r.json()) == (200, 1)
    r = await http.post("/rpc/t_request", json={}, headers=h)
    assert r.json()["read_only"] == "on"
    conn = await asyncpg.connect(db_dsn)
    try:
        assert await conn.fetchval("select count(*) from public.t_log") == 1
    finally:
        await conn.close()


async def test_request_settings_seen_by_the_function(http: httpx.AsyncClient, keys: Keys) -> None:
    h = {**visitor_headers(keys, session_id="abc"), "X-Thing": "1", "Cookie": "a=b; c=d"}
    r = await http.post("/rpc/t_request", json={}, headers=h)
    body = r.json()
    assert body["method"] == "POST"
    assert body["path"] == "/rpc/t_request"
    assert body["headers"]["x-thing"] == "1"
    assert "cookie" not in body["headers"]
    assert body["timeout"] == "8s"  # ALTER ROLE session_visitor SET statement_timeout
    assert body["search_path"] == '"public", "extensions"'
    # and none of it survives the transaction: a service call sees its own claims only
    r = await http.post("/rpc/t_request", json={}, headers={"apikey": keys.service_key})
    assert r.json()["claims"]["role"] == "service_role"
    assert "session_id" not in r.json()["claims"]


async def test_request_errors(http: httpx.AsyncClient, keys: Keys) -> None:
    h = visitor_headers(keys)
    r = await http.post(
        "/rpc/t_ok", content=b"{nope", headers={**h, "Content-Type": "application/json"}
    )
    assert (r.status_code, r.json()["code"]) == (400, "PGRST102")
    r = await http.post("/rpc/t_ok", content=b"hi", headers={**h, "Content-Type": "text/csv"})
    assert (r.status_code, r.json()["code"]) == (400, "PGRST102")
    r = await http.post("/rpc/t_ok", json={}, headers={**h, "Content-Profile": "bevsession"})
    assert (r.status_code, r.json()["code"]) == (406, "PGRST106")
    r = await http.post("/rpc/t_ok", content=b"", headers=h)
    assert (r.status_code, r.json()["code"]) == (400, "PGRST102")
    r = await http.post("/rpc/t_ok", content=b"[]", headers=h)
    assert (r.status_code, r.json()["code"]) == (400, "PGRST102")
    # what supabase-py sends: both profile headers naming the exposed schema
    profile = {**h, "Content-Profile": "public", "Accept-Profile": "public"}
    r = await http.post("/rpc/t_ok", json={}, headers=profile)
    assert (r.status_code, r.json()) == (200, {"ok": True})


async def test_database_down_is_503(keys: Keys) -> None:
    from bevsession.local_postgres import free_port

    config = EndpointConfig(
        dsn=f"postgresql://authenticator@127.0.0.1:{free_port()}/none", jwt_secret=keys.jwt_secret,
        anon_key=keys.anon_key, service_key=keys.service_key,
    )  # fmt: skip
    running = await run_endpoint(config)
    try:
        async with httpx.AsyncClient(base_url=running.url) as client:
            r = await client.post("/rest/v1/rpc/t_ok", json={}, headers={"apikey": keys.anon_key})
            assert (r.status_code, r.json()["code"]) == (503, "PGRST000")
            r = await client.head("/rest/v1/", headers={"apikey": keys.anon_key})
            assert r.status_code == 503
    finally:
        await running.close()


def test_binds_loopback_only(ep: RunningEndpoint) -> None:
    assert ep.url.startswith("http://127.0.0.1:")
    assert json.dumps(ep.url)  # the base URL supabase-py takes
