"""The REAL edge worker as a subprocess, for the end-to-end tests (a helper, not a test module).

``python -m bevsession_edge.cli serve`` runs on 127.0.0.1 with a free port, against a fresh
database cloned from the migrated template and logged in as ``authenticator`` (the login the
server uses in production). Its stdout and stderr go to a file, so a test can grep the log; it is
stopped with SIGTERM and must exit 0 within 15 seconds.

The root conftest loads the fixtures (``pytest_plugins``); test modules import helpers by name
(``tests/`` is on ``sys.path`` because the root conftest lives there)::

    from e2e_server import PASSWORD, Visitor

- ``server_factory``: function-scoped; ``await server_factory(env={...})`` starts one server
  (with its own database unless ``database=False``); all are stopped at the end of the test.
- ``server``: function-scoped, one server with the default configuration.
- ``module_server``: one server (and database) shared by the tests of one module, for tests
  that do not interfere with each other (each test is its own visitor).

:class:`Visitor` is a tiny HTTP client that keeps the session cookie by hand, exactly as a
browser would, so a test can also replay an old cookie or send a forged one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from bevsession.local_postgres import LocalPostgres
from bevsession.supabase_keys import SigningKey

__all__ = ["http", "module_server", "server", "server_factory"]  # the fixtures

PASSWORD = "e2e test password -- long enough for iron 0123456789"
COOKIE_NAME = "bevgenie_session"
APP_LOGIN = "authenticator"
STOP_TIMEOUT = 15.0
READY_TIMEOUT = 30.0

# Inherited variables that would change what the server does; every test sets what it needs.
_CONFIG_VARS = {
    "DATABASE_URL",
    "SESSION_PASSWORD",
    "SESSION_PASSWORDS",
    "SESSION_COOKIE_NAME",
    "SESSION_TTL",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_DOMAIN",
    "SUPABASE_URL",
    "SUPABASE_ANON_KEY",
    "SUPABASE_SERVICE_ROLE_KEY",
    "SUPABASE_JWT_SECRET",
    "SUPABASE_PUBLISHABLE_KEY",
    "SUPABASE_SECRET_KEY",
    "SUPABASE_JWT_SIGNING_KEY",
    "SUPABASE_JWT_SIGNING_KEY_ID",
    "SUPABASE_JWKS",
    "MAX_MESSAGE_CHARS",
    "HISTORY_PAGE_MAX",
    "CLIENT_SESSION_RATE",
    "CLIENT_CHAT_RATE",
    "TRUSTED_PROXY_HOPS",
    "CLIENT_ADDRESS_HEADER",
    "HOST",
    "PORT",
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
}
_KEEP_BEVSESSION = {"BEVSESSION_PG_BINDIR"}  # where the PostgreSQL binaries are: not config

# Visitors who sign in: the signing key of the project's Auth (its public half is the JWKS a
# linking server is given) and its legacy JWT secret. ``linking_env()`` configures a server.
AUTH_KEY = SigningKey.generate("ES256")
AUTH_SECRET = "e2e legacy jwt secret -- at least 32 characters"


def linking_env() -> dict[str, str]:
    """The variables that let a server link sessions (POST /api/session/link)."""
    return {
        "SUPABASE_JWKS": json.dumps({"keys": [AUTH_KEY.public_jwk()]}),
        "SUPABASE_JWT_SECRET": AUTH_SECRET,
    }


def access_token(user_id: object, *, key: SigningKey | None = None, **claims: Any) -> str:
    """A Supabase Auth access token for *user_id*, signed with ``AUTH_KEY`` (or *key*)."""
    now = int(time.time())
    payload = {"sub": str(user_id), "aud": "authenticated", "role": "authenticated",
               "iat": now, "exp": now + 3600, **claims}  # fmt: skip
    return (key or AUTH_KEY).sign(payload)


def clean_env(**overrides: str) -> dict[str, str]:
    """This process's environment without any server configuration, plus *overrides*."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _CONFIG_VARS and not (k.startswith("BEVSESSION_") and k not in _KEEP_BEVSESSION)
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(overrides)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve_command(port: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "bevsession_edge.cli", "serve",
        "--host", "127.0.0.1", "--port", str(port), *extra,
    ]  # fmt: skip


# --- the server process ----------------------------------------------------------------------
def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class RunningServer:
    """One server subprocess; ``stop()`` sends SIGTERM and asserts a clean exit."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    env: dict[str, str]
    db_name: str | None = None
    admin_dsn: str | None = None  # superuser DSN of the server's database (for checks)
    stopped_with: int | None = field(default=None, init=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    @property
    def password(self) -> str | dict[str, str]:
        if "SESSION_PASSWORDS" in self.env:
            loaded: dict[str, str] = json.loads(self.env["SESSION_PASSWORDS"])
            return loaded
        return self.env["SESSION_PASSWORD"]

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then wait; a server that does not exit in time is killed and the test fails."""
        if self.stopped_with is not None:
            return self.stopped_with
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # our own process group, by id
            self.proc.wait(timeout=10)
            self.stopped_with = -9
            pytest.fail(
                f"the server did not exit within {timeout:.0f} s of SIGTERM; log:\n"
                + self.log_text()[-4000:]
            )
        self.stopped_with = code
        # Worker processes (--workers N) are in the same process group; none may outlive it.
        deadline = time.monotonic() + 3
        while _group_alive(self.proc.pid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                pytest.fail("a process of the server's group was still running after it exited")
            time.sleep(0.05)
        return code

    def stop_and_check(self) -> None:
        code = self.stop()
        assert code == 0, (
            f"server exited with {code} after SIGTERM; log:\n{self.log_text()[-4000:]}"
        )


async def wait_until_answers(
    server: RunningServer, path: str = "/healthz", within: float = READY_TIMEOUT
) -> None:
    """Poll ``path`` until it answers 200; fail early (with the log) if the process exits."""
    deadline = time.monotonic() + within
    last_error = "no answer yet"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                pytest.fail(
                    f"the server exited with {server.proc.returncode} before answering {path}; "
                    f"log:\n{server.log_text()[-4000:]}"
                )
            try:
                async with http.get(
                    server.url(path), timeout=aiohttp.ClientTimeout(total=2)
                ) as resp:
                    await resp.read()
                    if resp.status == 200:
                        return
                    last_error = f"HTTP {resp.status}"
            except (TimeoutError, aiohttp.ClientError) as exc:
                last_error = repr(exc)
            await asyncio.sleep(0.05)
    server.stop()
    pytest.fail(
        f"the server did not answer {path} within {within:.0f} s ({last_error}); log:\n"
        + server.log_text()[-4000:]
    )


def _spawn(
    command: Sequence[str], env: Mapping[str, str], log_dir: Path, cwd: Path | None, prefix: str
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start *command* in its own process group, stdout and stderr into a fresh log file."""
    log_path = Path(tempfile.mkstemp(prefix=prefix, suffix=".log", dir=log_dir)[1])
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: workers can be found and reaped
        )
    return proc, log_path


async def launch(
    env: Mapping[str, str],
    log_dir: Path,
    *,
    cwd: Path | None = None,
    args: Sequence[str] = (),
    ready_path: str = "/healthz",
    ready_timeout: float = READY_TIMEOUT,
    db_name: str | None = None,
    admin_dsn: str | None = None,
) -> RunningServer:
    """Start ``bevsession serve`` with exactly *env*; return once ``ready_path`` answers 200."""
    port = free_port()
    proc, log_path = _spawn(serve_command(port, *args), env, log_dir, cwd, f"server-{port}-")
    server = RunningServer(proc, port, log_path, dict(env), db_name, admin_dsn)
    try:
        await wait_until_answers(server, ready_path, ready_timeout)
    except BaseException:
        server.stop()
        raise
    return server


# --- databases -------------------------------------------------------------------------------
StartServer = Callable[..., Awaitable[RunningServer]]


@contextlib.asynccontextmanager
async def server_pool(
    pg: LocalPostgres, template_db: str, log_dir: Path
) -> AsyncIterator[StartServer]:
    """Start servers on demand; stop them all (asserting exit 0) and drop their databases."""
    servers: list[RunningServer] = []
    databases: list[str] = []

    async def start(
        env: Mapping[str, str] | None = None,
        *,
        database: bool = True,
        password: str | None = PASSWORD,
        cwd: Path | None = None,
        args: Sequence[str] = (),
        ready_path: str = "/healthz",
        ready_timeout: float = READY_TIMEOUT,
    ) -> RunningServer:
        """``env`` is added to a clean environment; ``database=False`` leaves DATABASE_URL out,
        ``password=None`` leaves SESSION_PASSWORD out (e.g. to give SESSION_PASSWORDS)."""
        # Every test's traffic comes from 127.0.0.1, so the per-address limits (client_limits.py)
        # would count a whole module's visitors as one client: off unless a test sets them.
        base: dict[str, str] = {
            "BEVSESSION_ENV": "development",
            "CLIENT_SESSION_RATE": "off",
            "CLIENT_CHAT_RATE": "off",
        }
        db_name = admin_dsn = None
        if database:
            db_name = await pg.create_database(template_db)
            databases.append(db_name)
            base["DATABASE_URL"] = pg.dsn(db_name, user=APP_LOGIN)
            admin_dsn = pg.dsn(db_name)
        if password is not None:
            base["SESSION_PASSWORD"] = password
        full_env = clean_env(**{**base, **(env or {})})
        server = await launch(
            full_env,
            log_dir,
            cwd=cwd,
            args=args,
            ready_path=ready_path,
            ready_timeout=ready_timeout,
            db_name=db_name,
            admin_dsn=admin_dsn,
        )
        servers.append(server)
        return server

    try:
        yield start
    finally:
        failures = []
        for server in servers:
            code = server.stop()
            if code != 0:
                failures.append(f"{server.base_url} exited {code}:\n{server.log_text()[-2000:]}")
        for name in databases:
            await pg.drop_database(name)
        assert not failures, "server(s) did not stop cleanly on SIGTERM:\n" + "\n".join(failures)


@pytest.fixture
async def server_factory(
    pg: LocalPostgres, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[StartServer]:
    """``await server_factory(env={...})`` starts a server; all are stopped after the test."""
    async with server_pool(pg, template_db, tmp_path_factory.mktemp("server-logs")) as start:
        yield start


@pytest.fixture
async def server(server_factory: StartServer) -> RunningServer:
    """One server with the default configuration and its own database, for one test."""
    return await server_factory()


@pytest.fixture(scope="module")
async def module_server(
    pg: LocalPostgres, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningServer]:
    """One server shared by a module's tests (each test is a visitor of its own)."""
    async with server_pool(pg, template_db, tmp_path_factory.mktemp("server-logs")) as start:
        yield await start()


# --- an HTTP client that keeps the cookie by hand ----------------------------------------------
@dataclass
class SetCookie:
    """One ``Set-Cookie`` header, parsed: name, value and attributes (lower-cased names)."""

    raw: str
    name: str
    value: str
    attributes: dict[str, str | bool]
    order: list[str]

    @classmethod
    def parse(cls, raw: str) -> SetCookie:
        first, *rest = [part.strip() for part in raw.split(";")]
        name, _, value = first.partition("=")
        attributes: dict[str, str | bool] = {}
        order = []
        for part in rest:
            if not part:
                continue
            key, eq, val = part.partition("=")
            attributes[key.strip().lower()] = val.strip() if eq else True
            order.append(key.strip())
        return cls(raw, name.strip(), value.strip(), attributes, order)

    @property
    def deletes(self) -> bool:
        return self.attributes.get("max-age") == "0" or self.value == ""


@dataclass
class Reply:
    status: int
    headers: Any  # CIMultiDictProxy
    text: str
    set_cookies: list[SetCookie]

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    def session_cookie(self, name: str = COOKIE_NAME) -> SetCookie | None:
        found = [c for c in self.set_cookies if c.name == name]
        assert len(found) <= 1, f"more than one Set-Cookie for {name}: {found}"
        return found[0] if found else None

    def __repr__(self) -> str:
        cookies = [c.raw[:80] for c in self.set_cookies]
        return f"<Reply {self.status} {self.text[:300]!r} set-cookie={cookies}>"


_UNSET: Any = object()


class Visitor:
    """One browser's worth of state: the session cookie, kept and replayed by hand."""

    def __init__(
        self, http: aiohttp.ClientSession, server: RunningServer, cookie_name: str = COOKIE_NAME
    ) -> None:
        self.http = http
        self.server = server
        self.cookie_name = cookie_name
        self.cookie: str | None = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = _UNSET,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        cookie: str | None = _UNSET,
        keep: bool = True,
    ) -> Reply:
        """Send a request with this visitor's cookie (or ``cookie=``, ``None`` for none).

        The reply's session cookie replaces the visitor's (deleted → ``None``) unless
        ``keep=False``.
        """
        send_headers = dict(headers or {})
        value = self.cookie if cookie is _UNSET else cookie
        if value is not None:
            send_headers["Cookie"] = f"{self.cookie_name}={value}"
        if json_body is not _UNSET:
            data = json.dumps(json_body)
            send_headers.setdefault("Content-Type", "application/json")
        async with self.http.request(
            method, self.server.url(path), data=data, headers=send_headers,
            timeout=aiohttp.ClientTimeout(total=30), allow_redirects=False,
        ) as resp:  # fmt: skip
            text = await resp.text(errors="replace")
            reply = Reply(
                resp.status,
                resp.headers,
                text,
                [SetCookie.parse(h) for h in resp.headers.getall("Set-Cookie", [])],
            )
        if keep and (sc := reply.session_cookie(self.cookie_name)) is not None:
            self.cookie = None if sc.deletes else sc.value
        return reply

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any = _UNSET, **kw: Any) -> Reply:
        return await self.request("POST", path, json_body=body, **kw)

    async def delete(self, path: str, **kw: Any) -> Reply:
        return await self.request("DELETE", path, **kw)

    async def chat(self, message: str) -> dict[str, Any]:
        reply = await self.post("/api/chat", {"message": message})
        assert reply.status == 200, reply
        body: dict[str, Any] = reply.json
        return body

    async def session(self) -> dict[str, Any]:
        reply = await self.get("/api/session")
        assert reply.status == 200, reply
        body: dict[str, Any] = reply.json
        return body


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client with no cookie jar of its own (visitors keep cookies by hand)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


async def db_fetch(server: RunningServer, query: str, *args: Any) -> list[asyncpg.Record]:
    """Run a query on the server's database as the superuser (to look at the raw rows)."""
    assert server.admin_dsn, "this server has no test database"
    conn = await asyncpg.connect(server.admin_dsn)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(query, *args)
        return rows
    finally:
        await conn.close()
