"""Hostile cookies and requests (hypothesis), against the real app on a real database.

The app is ``bevsession_edge.app.create_app`` served in-process by aiohttp's ``TestServer`` on
127.0.0.1 (real HTTP, real asyncpg transport, this test's own migrated database) — no mock —
with aiohttp's own error answers made JSON as ``bevsession serve`` makes them in each worker.
Hypothesis runs in a worker thread and sends each request through the test's event loop, where
the server lives.

What is thrown at it:

- cookies: a real victim's seal truncated, bit-flipped, re-encoded (percent, standard base64,
  quoted, case-swapped, padded), oversized, duplicated next to junk, spliced with another seal,
  split into iron-session 9's chunks (reordered, with gaps, spliced), and plain random text;
- requests: random JSON (deeply nested, huge numbers, NaN, NUL and lone-surrogate escapes),
  random bytes, odd content types and charsets, random query strings, every route and method.

What must hold for every single response: never a 5xx, never a traceback in the body, errors in
the documented JSON shape, and never the victim's session or data unless the cookie really is
the victim's (it unseals with the server's password to the victim's session id).

Examples per test: ``BEVSESSION_FUZZ_EXAMPLES`` (default 400); derandomized, so a failure is
reproducible, unless ``BEVSESSION_FUZZ_RANDOM=1``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from aiohttp import DummyCookieJar, hdrs, web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_protocol import RequestHandler
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bevsession.cookies import read_session_cookie
from bevsession.errors import InvalidInput
from bevsession.local_postgres import LocalPostgres
from bevsession.sealing import Sealer, SealError
from bevsession.service import SessionService
from bevsession.transports.postgres import PostgresTransport
from bevsession_edge import protocol
from bevsession_edge.app import MAX_HEADER_FIELD_BYTES, create_app
from bevsession_edge.config import load_settings
from bevsession_edge.logs import RedactSecrets
from e2e_server import COOKIE_NAME, PASSWORD
from rpc_fixtures import LOCAL_TRANSPORTS, Keys, open_transport

T = TypeVar("T")

EXAMPLES = int(os.environ.get("BEVSESSION_FUZZ_EXAMPLES", "400"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=os.environ.get("BEVSESSION_FUZZ_RANDOM") != "1",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CONFIG_VARS = (
    "SESSION_PASSWORDS", "SUPABASE_URL", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY",
    "SUPABASE_JWT_SECRET", "SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY",
    "SUPABASE_JWT_SIGNING_KEY", "SUPABASE_JWT_SIGNING_KEY_ID", "SUPABASE_JWKS",
    "BEVSESSION_TRANSPORT",
    "SESSION_COOKIE_NAME", "SESSION_TTL",
    "MAX_MESSAGE_CHARS", "HISTORY_PAGE_MAX", "BEVSESSION_PASSWORD_GENERATED",
)  # fmt: skip
TRACEBACK_MARKERS = ("Traceback", 'File "', "asyncpg.", "aiohttp.web_exceptions", "Error:")
SEALER = Sealer(PASSWORD)


# --- the in-process server -------------------------------------------------------------------
@contextlib.asynccontextmanager
async def serve(
    pg: LocalPostgres,
    db_name: str,
    monkeypatch: pytest.MonkeyPatch,
    customize: Callable[[web.Application], None] | None = None,
) -> AsyncIterator[TestClient[Any, Any]]:
    """The real app on 127.0.0.1 over this test's database, cookies kept by hand."""
    for name in CONFIG_VARS:
        monkeypatch.delenv(name, raising=False)
    dsn = pg.dsn(db_name, user="authenticator")
    settings_ = load_settings(
        SESSION_PASSWORD=PASSWORD, DATABASE_URL=dsn, BEVSESSION_ENV="development"
    )
    # aiohttp's own answers as `bevsession serve` makes them in each worker (protocol.install);
    # process-wide, so undone after the test: monkeypatch puts aiohttp's method back.
    monkeypatch.setattr(RequestHandler, "handle_error", RequestHandler.handle_error)
    protocol.install()
    transport = await PostgresTransport.connect(dsn, max_size=10)
    app = create_app(settings_, transport=transport)
    if customize is not None:
        customize(app)
    test_client: TestClient[Any, Any] = TestClient(
        TestServer(app, host="127.0.0.1"), cookie_jar=DummyCookieJar()
    )
    await test_client.start_server()
    try:
        yield test_client
    finally:
        await test_client.close()
        await transport.close()


@pytest.fixture
async def client(
    pg: LocalPostgres, db_name: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[TestClient[Any, Any]]:
    async with serve(pg, db_name, monkeypatch) as test_client:
        yield test_client


@dataclass
class Answer:
    status: int
    headers: Any
    text: str
    set_cookies: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"<Answer {self.status} {self.text[:200]!r}>"


async def send(
    client: TestClient[Any, Any],
    method: str,
    path: str,
    *,
    cookie_header: str | None = None,
    body: bytes | None = None,
    content_type: str | None = None,
) -> Answer:
    headers: dict[str, str] = {}
    if cookie_header is not None:
        headers[hdrs.COOKIE] = cookie_header
    if content_type is not None:
        headers[hdrs.CONTENT_TYPE] = content_type
    async with client.request(method, path, data=body, headers=headers) as resp:
        raw = await resp.read()
        return Answer(
            resp.status,
            resp.headers,
            raw.decode("utf-8", errors="replace"),
            resp.headers.getall(hdrs.SET_COOKIE, []),
        )


def in_loop(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    """Run *coro* on the server's loop from the hypothesis thread."""
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)


@dataclass
class Victim:
    """A real visitor whose session and words must never reach anyone else."""

    cookie: str
    session_id: str
    secret: str
    message_count: int


async def make_victim(client: TestClient[Any, Any]) -> Victim:
    secret = f"victim-secret-{uuid.uuid4().hex}"
    body = json.dumps({"message": f"I run sales at a craft brewery; {secret}"}).encode()
    reply = await send(client, "POST", "/api/chat", body=body, content_type="application/json")
    assert reply.status == 200, reply
    cookie = next(
        c.split(";", 1)[0].split("=", 1)[1]
        for c in reply.set_cookies
        if c.startswith(COOKIE_NAME + "=")
    )
    data = json.loads(reply.text)
    return Victim(cookie, data["sessionId"], secret, data["messageCount"])


def opens_as(cookie_header: str | None, session_id: str) -> bool:
    """Does the server, reading this header, find a cookie that really is *session_id*'s seal?
    (It reads it as iron-session 9 does: ``cookie.parse`` rules, percent-decoding, chunks.)"""
    seal = read_session_cookie(cookie_header, COOKIE_NAME).seal
    if not seal:
        return False
    try:
        data = SEALER.unseal(seal)
    except SealError:
        return False
    user = data.get("user") if isinstance(data, dict) else None
    return isinstance(user, dict) and user.get("sessionId") == session_id


def check_answer(
    answer: Answer, *, method: str, path: str, victim: Victim, victim_allowed: bool
) -> None:
    """What must hold for every response, whatever was sent."""
    assert answer.status < 500, answer
    for marker in TRACEBACK_MARKERS:
        assert marker not in answer.text, f"{marker!r} in a response body: {answer}"
    if answer.status >= 400 and method != "HEAD":  # HEAD: the same headers, no body
        assert answer.headers.get(hdrs.CONTENT_TYPE, "").startswith("application/json"), answer
        error = json.loads(answer.text)
        assert set(error) == {"error"} and set(error["error"]) >= {"code", "message"}, answer
    if not victim_allowed:
        assert victim.secret not in answer.text, f"the victim's words leaked: {answer}"
        assert victim.session_id not in answer.text, f"the victim's session leaked: {answer}"
        for header in answer.set_cookies:
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if name != COOKIE_NAME or not value:
                continue
            user = SEALER.unseal(value)["user"]
            assert user["sessionId"] != victim.session_id, (
                f"resealed the victim's session: {answer}"
            )
    if (method, path) == ("GET", "/api/session") and answer.status == 200:
        summary = json.loads(answer.text)
        assert (summary["sessionId"] == victim.session_id) == victim_allowed, answer


async def victim_is_intact(client: TestClient[Any, Any], victim: Victim) -> None:
    answer = await send(
        client, "GET", "/api/session", cookie_header=f"{COOKIE_NAME}={victim.cookie}"
    )
    assert answer.status == 200, answer
    summary = json.loads(answer.text)
    assert summary["sessionId"] == victim.session_id
    assert summary["messageCount"] == victim.message_count, "a hostile request wrote to the victim"
    texts, before = [], ""
    for _ in range(100):  # page back to the first message, which holds the secret
        page = await send(
            client, "GET", f"/api/chat/history?limit=100{before}",
            cookie_header=f"{COOKIE_NAME}={victim.cookie}",
        )  # fmt: skip
        assert page.status == 200, page
        texts.append(page.text)
        cursor = json.loads(page.text)["next"]
        if cursor is None:
            break
        before = f"&before={cursor}"
    assert victim.secret in "".join(texts), "the victim's history lost its first message"


# --- hostile cookies ---------------------------------------------------------------------------
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
COOKIE_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=";,"),
    max_size=300,
)


def flip(seal: str, index: int, replacement: str) -> str:
    index %= len(seal)
    if seal[index] == replacement:
        replacement = "A" if replacement != "A" else "B"
    return seal[:index] + replacement + seal[index + 1 :]


def std_base64(seal: str) -> str:
    return seal.replace("-", "+").replace("_", "/")


def swap_part(seal: str, other: str, part: int) -> str:
    mine, theirs = seal.split("*"), other.split("*")
    if part < min(len(mine), len(theirs)):
        mine[part] = theirs[part]
    return "*".join(mine)


@st.composite
def hostile_cookie_headers(draw: st.DrawFn, seal: str, other_seal: str) -> str:
    """A ``Cookie`` header built from the victim's real seal (and a second visitor's)."""
    kind = draw(
        st.sampled_from([
            "truncated", "bit flip", "many flips", "percent", "std base64", "quoted",
            "case swap", "padded", "oversized", "duplicate", "spliced", "random", "fe26 shape",
            "empty parts", "reversed", "decoded part", "chunks",
        ])
    )  # fmt: skip
    value: str
    if kind == "chunks":  # iron-session 9's name.0 … name.3, cut, shuffled, spliced
        cuts = sorted(draw(st.lists(st.integers(1, len(seal) - 1), max_size=4, unique=True)))
        parts = [seal[i:j] for i, j in zip([0, *cuts], [*cuts, len(seal)], strict=True)]
        if draw(st.booleans()):
            parts = draw(st.permutations(parts))
        if len(parts) > 1 and draw(st.booleans()):
            parts[draw(st.integers(0, len(parts) - 1))] = draw(
                st.sampled_from(["", other_seal[: len(seal) // 2], urllib.parse.quote(parts[0])])
            )
        pairs = [f"{COOKIE_NAME}.{i}={part}" for i, part in enumerate(parts)]
        if draw(st.booleans()):
            pairs.insert(0, f"{COOKIE_NAME}=" + draw(st.sampled_from(["", "x", seal[:10]])))
        return "; ".join(draw(st.permutations(pairs)) if draw(st.booleans()) else pairs)
    if kind == "truncated":
        value = seal[: draw(st.integers(0, len(seal) - 1))]
    elif kind == "bit flip":
        value = flip(seal, draw(st.integers(0, len(seal) - 1)), draw(st.sampled_from(B64URL)))
    elif kind == "many flips":
        value = seal
        for index in draw(st.lists(st.integers(0, len(seal) - 1), min_size=2, max_size=12)):
            value = flip(value, index, draw(st.sampled_from(B64URL + "*~.")))
    elif kind == "percent":
        value = urllib.parse.quote(seal, safe=draw(st.sampled_from(["", "*", "~", "*~"])))
    elif kind == "std base64":
        value = std_base64(seal)
    elif kind == "quoted":
        value = f'"{seal}"' if draw(st.booleans()) else f'"{seal}'
    elif kind == "case swap":
        value = seal.swapcase() if draw(st.booleans()) else seal.upper()
    elif kind == "padded":
        value = seal + draw(st.sampled_from(["=", "==", "~2", "*", "%00", "\\", " x"]))
    elif kind == "oversized":
        value = (seal * draw(st.integers(2, 7)))[: draw(st.integers(4097, 7000))]
    elif kind == "duplicate":
        junk = draw(COOKIE_TEXT)
        first, second = (junk, seal[:-3]) if draw(st.booleans()) else (seal[:-3], junk)
        return f"{COOKIE_NAME}={first}; {COOKIE_NAME}={second}"
    elif kind == "spliced":
        value = swap_part(seal, other_seal, draw(st.integers(2, 7)))
    elif kind == "random":
        value = draw(COOKIE_TEXT)
    elif kind == "fe26 shape":
        parts = draw(st.lists(st.text(alphabet=B64URL, max_size=40), min_size=6, max_size=6))
        value = "Fe26.2*1*" + "*".join(parts) + draw(st.sampled_from(["~2", "", "~3"]))
    elif kind == "empty parts":
        parts = seal.split("*")
        parts[draw(st.integers(1, len(parts) - 1))] = ""
        value = "*".join(parts)
    elif kind == "reversed":
        value = seal[::-1]
    else:  # "decoded part": a part replaced by its own base64 decoding, re-encoded oddly
        parts = seal.split("*")
        index = draw(st.integers(2, min(7, len(parts) - 1)))
        raw = parts[index] + "=" * (-len(parts[index]) % 4)
        try:
            decoded = base64.urlsafe_b64decode(raw)
        except ValueError:
            decoded = raw.encode()
        parts[index] = base64.b64encode(decoded).decode()
        value = "*".join(parts)
    prefix = draw(st.sampled_from(["", "other=1; ", "a=b;", "bevgenie=x; "]))
    return f"{prefix}{COOKIE_NAME}={value}"


ROUTES = [
    ("GET", "/api/session"),
    ("GET", "/api/chat/history"),
    ("POST", "/api/chat"),
    ("DELETE", "/api/session"),
    ("DELETE", "/api/session/data"),
]


async def test_hostile_cookies_never_reach_the_victim(client: TestClient[Any, Any]) -> None:
    loop = asyncio.get_running_loop()
    victim = await make_victim(client)
    other = await make_victim(client)  # a second real seal to splice parts from
    seen: dict[str, int] = {}

    @FUZZ
    @given(
        header=hostile_cookie_headers(victim.cookie, other.cookie),
        route=st.sampled_from(ROUTES),
        message=st.text(min_size=1, max_size=40),
    )
    def probe(header: str, route: tuple[str, str], message: str) -> None:
        method, path = route
        allowed = opens_as(header, victim.session_id)
        if allowed and method == "DELETE":
            return  # a cookie that really is the victim's may clear the victim: not this test
        body = json.dumps({"message": message}).encode() if method == "POST" else None
        answer = in_loop(
            loop,
            send(client, method, path, cookie_header=header, body=body,
                 content_type="application/json" if body else None),
        )  # fmt: skip
        if allowed and method == "POST" and answer.status == 200:
            victim.message_count += 2  # the victim's own cookie, re-encoded: a real turn
        check_answer(answer, method=method, path=path, victim=victim, victim_allowed=allowed)
        key = f"{answer.status}{' (victim cookie, re-encoded)' if allowed else ''}"
        seen[key] = seen.get(key, 0) + 1

    await asyncio.to_thread(probe)
    await victim_is_intact(client, victim)
    print(f"hostile cookies: {EXAMPLES} examples, statuses {seen}")


# --- hostile requests ----------------------------------------------------------------------------
JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=50)
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
NASTY_BODIES = [
    b"[" * 20_000,                                    # nesting deeper than Python's recursion
    b'{"message": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
    b'{"message": ' + b"9" * 5_000 + b"}",            # an integer past int_max_str_digits
    b'{"message": "\\ud800"}',                       # a lone surrogate
    b'{"message": "hi \\udfff there"}',
    b'{"message": "nul \\u0000 inside"}',
    b'{"message": NaN}',
    b'{"message": Infinity}',
    b'{"message": "\xff\xfe not utf-8"}',
    b"\xef\xbb\xbf" + b'{"message": "bom"}',
    b'{"message": "' + "é".encode() * 4001 + b'"}',
    b'{"message": "' + b"x" * 70_000 + b'"}',         # over the 64 KiB body limit
    b"",
    b"null",
    b'"\\u0000"',
]  # fmt: skip
CONTENT_TYPES = [
    "application/json", "application/json; charset=utf-8", "application/json; charset=utf-16",
    "application/json; charset=latin-1", "application/json; charset=foo",
    "application/json; charset=rot13", "application/json; charset=idna",
    "application/json; charset=", "application/json;;", "text/plain", "application/jsonx",
    "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", None,
]  # fmt: skip
QUERY_VALUES = st.one_of(
    st.text(max_size=20),
    st.integers(-(10**25), 10**25).map(str),
    st.sampled_from(
        ["", "0", "-1", "1e3", "0x10", "\u0661\u0662", "\uff15", "9" * 2000, "NaN", " 3", "3 "]
    ),
)
PATHS = [
    "/api/session", "/api/session/data", "/api/chat", "/api/chat/history", "/healthz",
    "/readyz", "/openapi.json", "/", "/api/", "/api/session/", "/nope", "/api/chat/history/x",
    "/%2e%2e/etc/passwd", "/api/session%00", "/api//session", "/api/chat/../session",
]  # fmt: skip
METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS", "HEAD"]


@st.composite
def hostile_requests(draw: st.DrawFn) -> tuple[str, str, bytes | None, str | None]:
    if draw(st.integers(0, 9)) < 7:  # mostly the documented routes, so bodies reach handlers
        method, path = draw(
            st.sampled_from(
                [
                    *ROUTES,
                    ("POST", "/api/chat"),
                    ("POST", "/api/chat"),
                    ("GET", "/readyz"),
                    ("GET", "/openapi.json"),
                ]
            )
        )
    else:
        method, path = draw(st.sampled_from(METHODS)), draw(st.sampled_from(PATHS))
    if draw(st.booleans()):
        query = draw(
            st.dictionaries(st.sampled_from(["limit", "before", "x", "limit[]"]), QUERY_VALUES,
                            max_size=3)
        )  # fmt: skip
        if query:
            path += "?" + urllib.parse.urlencode(query)
    source = draw(st.sampled_from(["none", "json", "nasty", "bytes", "message"]))
    body: bytes | None
    if source == "none":
        body = None
    elif source == "json":
        body = json.dumps(draw(JSON_VALUES)).encode()
    elif source == "nasty":
        body = draw(st.sampled_from(NASTY_BODIES))
    elif source == "bytes":
        body = draw(st.binary(max_size=200))
    else:
        extra = draw(st.dictionaries(st.text(max_size=8), JSON_LEAVES, max_size=2))
        body = json.dumps({"message": draw(st.text(max_size=60)), **extra}).encode()
    return method, path, body, draw(st.sampled_from(CONTENT_TYPES))


async def test_random_requests_never_fail_the_server(client: TestClient[Any, Any]) -> None:
    loop = asyncio.get_running_loop()
    victim = await make_victim(client)
    visitor = await make_victim(client)  # a cookie of its own, not the victim's
    seen: dict[str, int] = {}

    @FUZZ
    @given(request=hostile_requests(), who=st.sampled_from(["nobody", "visitor", "junk"]))
    def probe(request: tuple[str, str, bytes | None, str | None], who: str) -> None:
        method, path, body, content_type = request
        header = {
            "nobody": None,
            "visitor": f"{COOKIE_NAME}={visitor.cookie}",
            "junk": f"{COOKIE_NAME}={victim.cookie[:40]}",
        }[who]
        if who == "visitor" and method == "DELETE":
            header = None  # keep the visitor alive for the next examples
        answer = in_loop(
            loop, send(client, method, path, cookie_header=header, body=body,
                       content_type=content_type),
        )  # fmt: skip
        check_answer(
            answer, method=method, path=path.split("?")[0], victim=victim, victim_allowed=False
        )
        seen[str(answer.status)] = seen.get(str(answer.status), 0) + 1

    await asyncio.to_thread(probe)
    await victim_is_intact(client, victim)
    print(f"hostile requests: {EXAMPLES} examples, statuses {seen}")


@pytest.mark.parametrize("body", NASTY_BODIES, ids=lambda b: repr(b[:24]))
@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=foo"])
async def test_each_nasty_body_is_a_4xx(
    client: TestClient[Any, Any], body: bytes, content_type: str
) -> None:
    """The bodies that broke naive JSON handling, each one on its own (no shrinking needed)."""
    answer = await send(client, "POST", "/api/chat", body=body, content_type=content_type)
    assert 400 <= answer.status < 500, answer
    error = json.loads(answer.text)["error"]
    assert error["code"] in {"invalid_json", "invalid_input", "request_entity_too_large"}, answer
    for marker in TRACEBACK_MARKERS:
        assert marker not in answer.text, answer


async def test_malformed_http_is_json_and_never_echoes_the_cookie(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Over the limits in one header (``MAX_HEADER_FIELD_BYTES``: 16.5 KiB, room for iron-session
    9's four chunks) or the request line (8190 bytes): aiohttp's HTTP parser refuses it before
    any route or middleware. Its own answer would repeat the start of the line — the HttpOnly
    session cookie, readable by a script (CVE-2012-0053) — and its log the same bytes with a
    traceback. Ours: the documented JSON error, no echo, one log line without the bytes."""
    caplog.handler.addFilter(RedactSecrets())
    caplog.set_level(logging.DEBUG)
    victim = await make_victim(client)
    seal = victim.cookie
    over = MAX_HEADER_FIELD_BYTES + 1
    attempts = [
        ("/api/session", f"{COOKIE_NAME}={seal}{'A' * over}"),
        ("/api/session", f"{COOKIE_NAME}={seal}; pad={'B' * over}"),
        ("/api/chat/history?limit=" + "9" * 9000, f"{COOKIE_NAME}={seal}"),
    ]
    for path, header in attempts:
        answer = await send(client, "GET", path, cookie_header=header)
        assert answer.status == 400, answer
        check_answer(answer, method="GET", path="-", victim=victim, victim_allowed=False)
        assert json.loads(answer.text)["error"]["code"] == "bad_request", answer
        assert "Fe26" not in answer.text and seal[:40] not in answer.text, answer
    assert "Fe26" not in caplog.text, "a sealed cookie reached the log"
    assert "Traceback" not in caplog.text, caplog.text
    refused = [r for r in caplog.records if "malformed HTTP request" in r.getMessage()]
    assert len(refused) == len(attempts), [r.getMessage() for r in caplog.records]
    assert all(r.levelname == "WARNING" and not r.exc_info for r in refused)


async def test_a_failure_outside_the_error_middleware_is_json_too(
    pg: LocalPostgres, db_name: str, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """A bug in a layer outside ``json_errors`` reaches aiohttp's own 500: still JSON."""

    @web.middleware
    async def broken(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("X-Break") == "yes":
            raise RuntimeError("a bug outside the error middleware")
        response: web.StreamResponse = await handler(request)
        return response

    def customize(app: web.Application) -> None:
        app.middlewares.insert(0, broken)  # outermost, outside json_errors

    async with serve(pg, db_name, monkeypatch, customize) as test_client:
        async with test_client.get("/healthz", headers={"X-Break": "yes"}) as resp:
            status, text = resp.status, await resp.text()
            content_type = resp.headers.get("Content-Type", "")
        assert status == 500, text
        assert content_type.startswith("application/json"), content_type
        assert json.loads(text) == {
            "error": {"code": "internal_error", "message": "internal server error"}
        }
        assert "a bug outside the error middleware" in caplog.text, "the details go to the log"
        async with test_client.get("/healthz") as resp:
            assert resp.status == 200


# --- the library, below HTTP: text PostgreSQL cannot store ----------------------------------------
@pytest.mark.parametrize("kind", LOCAL_TRANSPORTS)
@pytest.mark.parametrize("text", ["lone \ud800 surrogate", "nul \x00 inside", "\udfff"])
async def test_unstorable_text_is_invalid_input_on_both_transports(
    pg: LocalPostgres, db_name: str, keys: Keys, kind: str, text: str
) -> None:
    """Not a 5xx-shaped ``DatabaseError``: the caller's text is refused as ``InvalidInput``."""
    async with open_transport(kind, pg, db_name, keys) as transport:
        service = SessionService(transport)
        me = uuid.uuid4()
        with pytest.raises(InvalidInput):
            await service.begin_chat_turn(me, text)
        await service.get_session(me)
        with pytest.raises(InvalidInput):
            await service.add_conversation_message(me, "user", text)
        assert (await service.get_session(me)).session.message_count == 0
