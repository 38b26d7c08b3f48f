"""The ``bevsession`` command: ``gen-password``, ``gen-signing-key``, ``migrate``, ``serve``
(refusals, the embedded zero-configuration default, several workers), each run as a real
subprocess."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import asyncpg
import jwt
import pytest

from bevsession.local_postgres import LocalPostgres
from bevsession.migrations import list_migrations
from bevsession.supabase_keys import SigningKey
from e2e_server import (
    PASSWORD,
    RunningServer,
    StartServer,
    Visitor,
    clean_env,
    free_port,
    launch,
)

BEVSESSION = Path(sys.executable).parent / "bevsession"


def bevsession(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    assert BEVSESSION.is_file(), (
        f"the `bevsession` console script is not installed in {BEVSESSION.parent}"
    )
    return subprocess.run(
        [str(BEVSESSION), *args], env=env, cwd=cwd, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A working directory the ``postgres`` OS user can enter (mode 0755 under /tmp)."""
    path = Path(tempfile.mkdtemp(prefix="bevsession-cli-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        _stop_leftover_cluster(path)
        shutil.rmtree(path, ignore_errors=True)


def _embedded_dir(workdir: Path) -> Path:
    return workdir / ".bevsession" / "postgres"


def _postgres_processes(data_dir: Path) -> list[int]:
    """Pids of processes whose command line names *data_dir* (a postmaster of that cluster)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if str(data_dir) in cmdline and "postgres" in cmdline:
                found.append(int(proc.name))
    return found


def _stop_leftover_cluster(workdir: Path) -> None:
    """If a failed test left the embedded cluster running, stop it (by its own pg_ctl)."""
    base = _embedded_dir(workdir)
    if (base / "data" / "postmaster.pid").exists():
        with contextlib.suppress(Exception):
            LocalPostgres(base_dir=base, throwaway=False).stop()


def assert_no_cluster_running(workdir: Path) -> None:
    data_dir = _embedded_dir(workdir) / "data"
    assert not (data_dir / "postmaster.pid").exists(), "the embedded PostgreSQL is still running"
    assert _postgres_processes(data_dir) == [], "a postgres process of the embedded cluster is left"


# --- gen-password -----------------------------------------------------------------------------
def test_gen_password_prints_a_fresh_64_character_password() -> None:
    env = clean_env()
    first = bevsession("gen-password", env=env)
    second = bevsession("gen-password", env=env)
    assert first.returncode == 0, first.stderr
    password = first.stdout.strip()
    assert first.stdout == password + "\n"
    assert re.fullmatch(r"[A-Za-z0-9_-]{64}", password), password
    assert second.stdout.strip() != password


# --- gen-signing-key --------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_gen_signing_key_prints_a_key_to_import(algorithm: str) -> None:
    """The private JWK ``supabase gen signing-key --algorithm …`` prints; it loads as
    SUPABASE_JWT_SIGNING_KEY and signs tokens its public half verifies."""
    proc = bevsession("gen-signing-key", "--algorithm", algorithm, env=clean_env())
    assert proc.returncode == 0, proc.stderr
    jwk = json.loads(proc.stdout)
    assert (jwk["kty"], jwk["alg"], jwk["use"]) == (
        "EC" if algorithm == "ES256" else "RSA", algorithm, "sig"
    )  # fmt: skip
    assert "d" in jwk and uuid.UUID(jwk["kid"])
    assert "Import it into your Supabase project" in proc.stderr and jwk["d"] not in proc.stderr
    key = SigningKey.load(proc.stdout)
    token = key.sign({"role": "session_visitor"})
    public = jwt.PyJWK(key.public_jwk()).key
    assert jwt.decode(token, public, algorithms=[algorithm])["role"] == "session_visitor"
    again = json.loads(bevsession("gen-signing-key", env=clean_env()).stdout)
    assert again["alg"] == "ES256" and again["kid"] != jwk["kid"], "ES256 by default, a new key"


def test_gen_signing_key_as_pem_with_a_chosen_kid() -> None:
    proc = bevsession("gen-signing-key", "--format", "pem", "--kid", "my-key-1", env=clean_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("-----BEGIN PRIVATE KEY-----")
    assert "SUPABASE_JWT_SIGNING_KEY_ID=my-key-1" in proc.stderr
    key = SigningKey.load(proc.stdout, "my-key-1")
    assert (key.algorithm, key.key_id) == ("ES256", "my-key-1")


# --- migrate ----------------------------------------------------------------------------------
async def test_migrate_applies_everything_once(pg: LocalPostgres, template_db: str) -> None:
    versions = [m.version for m in list_migrations()]
    assert versions
    name = await pg.create_database()  # empty: no shim, no migrations
    try:
        env = clean_env(DATABASE_URL=pg.dsn(name))
        first = bevsession("migrate", env=env)
        assert first.returncode == 0, first.stderr
        assert f"applied {len(versions)} migration(s)" in first.stdout, first.stdout
        second = bevsession("migrate", env=env)
        assert second.returncode == 0, second.stderr
        assert "applied 0 migration(s)" in second.stdout, second.stdout
        third = bevsession("migrate", "--database-url", pg.dsn(name), env=clean_env())
        assert third.returncode == 0 and "applied 0 migration(s)" in third.stdout, third

        conn = await asyncpg.connect(pg.dsn(name))
        try:
            recorded = [
                r["version"]
                for r in await conn.fetch(
                    "select version from supabase_migrations.schema_migrations order by version"
                )
            ]
            functions = await conn.fetchval(
                "select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
                "where n.nspname = 'public' and p.proname in ('begin_chat_turn', 'get_session')"
            )
        finally:
            await conn.close()
        assert recorded == sorted(versions)
        assert functions == 2
    finally:
        await pg.drop_database(name)


def test_migrate_without_a_database_url_says_so() -> None:
    proc = bevsession("migrate", env=clean_env())
    assert proc.returncode == 2
    assert "DATABASE_URL" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- serve refuses a bad configuration -----------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SESSION_PASSWORD": "0123456789"}, ["32"]),
        (
            {"BEVSESSION_ENV": "production", "BEVSESSION_PASSWORD_GENERATED": "1",
             "SESSION_PASSWORD": PASSWORD},
            ["generated"],
        ),
        (
            {"BEVSESSION_ENV": "production", "SESSION_COOKIE_SECURE": "false",
             "SESSION_PASSWORD": PASSWORD},
            ["SESSION_COOKIE_SECURE"],
        ),
        ({"BEVSESSION_ENV": "production"}, ["generated"]),  # serve would generate one: refused
        ({"SESSION_PASSWORDS": '{"1": "short"}'}, ["32"]),
        ({"SESSION_PASSWORDS": "not json"}, ["SESSION_PASSWORDS"]),
        ({"BEVSESSION_ENV": "staging", "SESSION_PASSWORD": PASSWORD}, ["BEVSESSION_ENV"]),
        # the sealer's own rules for ids, applied when the configuration is read
        ({"SESSION_PASSWORDS": json.dumps({"1": PASSWORD, "\u00fc2": PASSWORD})},
         ["SESSION_PASSWORDS", "password id"]),
        ({"SESSION_PASSWORDS": json.dumps({"1": PASSWORD, "2\n": PASSWORD})},
         ["SESSION_PASSWORDS", "password id"]),
        ({"SESSION_PASSWORDS": json.dumps({"a": PASSWORD})}, ["SESSION_PASSWORDS", "decimal"]),
    ],
    ids=["short-password", "prod-generated", "prod-insecure", "prod-no-password",
         "short-in-map", "map-not-json", "unknown-env", "unicode-id", "id-with-newline",
         "no-decimal-id"],
)  # fmt: skip
def test_serve_refuses_a_bad_configuration(
    workdir: Path, env: dict[str, str], expected: list[str]
) -> None:
    full = clean_env(DATABASE_URL="postgresql://authenticator@127.0.0.1:1/none", **env)
    proc = bevsession(
        "serve", "--host", "127.0.0.1", "--port", str(free_port()), env=full, cwd=workdir
    )
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    message = proc.stderr
    assert any(line.startswith("bevsession serve:") for line in message.splitlines()), message
    for word in expected:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"
    assert "Traceback" not in message + proc.stdout
    for secret in (PASSWORD, "0123456789"):
        assert secret not in message + proc.stdout, "a refused password is echoed back"
    assert "serving on" not in proc.stdout


SUPABASE_BASE = {"BEVSESSION_TRANSPORT": "supabase", "SUPABASE_URL": "http://127.0.0.1:1",
                 "SESSION_PASSWORD": PASSWORD}  # fmt: skip


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SUPABASE_SECRET_KEY": "sb_secret_x", "SUPABASE_PUBLISHABLE_KEY": "sb_publishable_x"},
         ["SUPABASE_SECRET_KEY needs SUPABASE_JWT_SIGNING_KEY", "gen-signing-key"]),
        ({"SUPABASE_SECRET_KEY": "sb_secret_x", "SUPABASE_JWT_SIGNING_KEY": "{}"},
         ["SUPABASE_PUBLISHABLE_KEY", "SUPABASE_JWT_SIGNING_KEY: "]),
        ({"SUPABASE_SECRET_KEY": "sb_secret_x", "SUPABASE_PUBLISHABLE_KEY": "sb_publishable_x",
          "SUPABASE_JWT_SIGNING_KEY": "-----BEGIN PRIVATE KEY-----\nAA\n-----END PRIVATE KEY-----"},
         ["SUPABASE_JWT_SIGNING_KEY_ID"]),
        ({"SUPABASE_SERVICE_ROLE_KEY": "eyJhbGciOiJIUzI1NiJ9.e30.x"}, ["SUPABASE_JWT_SECRET"]),
        # the worker needs no service key (least privilege): the missing key is the public one
        ({}, ["SUPABASE_PUBLISHABLE_KEY", "SUPABASE_ANON_KEY"]),
    ],
    ids=["secret-key-without-signing-key", "no-publishable-broken-jwk", "pem-without-kid",
         "legacy-without-secret", "no-key-at-all"],
)  # fmt: skip
def test_serve_names_the_missing_supabase_key(
    workdir: Path, env: dict[str, str], expected: list[str]
) -> None:
    proc = bevsession(
        "serve", "--host", "127.0.0.1", "--port", str(free_port()),
        env=clean_env(**SUPABASE_BASE, **env), cwd=workdir,
    )  # fmt: skip
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.startswith("bevsession serve: configuration refused"), proc.stderr
    for words in expected:
        assert words in proc.stderr, f"{words!r} not in {proc.stderr!r}"
    assert "Traceback" not in proc.stderr + proc.stdout
    for secret in ("sb_secret_x", "sb_publishable_x", "eyJhbGciOiJIUzI1NiJ9"):
        assert secret not in proc.stderr, "a key is echoed back"


def test_a_refused_start_leaves_no_embedded_database_running(workdir: Path) -> None:
    """Production with nothing configured: the embedded default starts, the config is refused;
    the cluster started for it must be stopped again, not leaked."""
    proc = bevsession(
        "serve", "--host", "127.0.0.1", "--port", str(free_port()),
        env=clean_env(BEVSESSION_ENV="production"), cwd=workdir, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "generated" in proc.stderr.lower(), proc.stderr
    assert_no_cluster_running(workdir)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"BEVSESSION_ENV": "production", "SESSION_PASSWORD": PASSWORD}, ["DATABASE_URL"]),
        ({"BEVSESSION_ENV": "production"}, ["DATABASE_URL", "generated"]),
        ({"SESSION_PASSWORD": "short"}, ["32"]),
        ({"SESSION_COOKIE_DOMAIN": "not a domain!"}, ["domain"]),
        ({"CLIENT_SESSION_RATE": "fast"}, ["rate"]),
    ],
    ids=["prod-no-database", "prod-nothing", "dev-short-password", "bad-domain", "bad-rate"],
)
def test_a_bad_configuration_is_refused_before_anything_is_started_or_written(
    workdir: Path, env: dict[str, str], expected: list[str]
) -> None:
    """No DATABASE_URL: the embedded default would start; the refusal must come first — no
    cluster, no password file, nothing under the working directory."""
    proc = bevsession(
        "serve", "--host", "127.0.0.1", "--port", str(free_port()),
        env=clean_env(**env), cwd=workdir, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    for word in expected:
        assert word.lower() in proc.stderr.lower(), (word, proc.stderr)
    assert not (workdir / ".bevsession").exists(), "something was started or written first"
    assert "Traceback" not in proc.stderr


# --- serve: the embedded zero-configuration default ----------------------------------------------
async def test_the_embedded_cluster_asks_every_connection_for_a_password(
    workdir: Path, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    server = await launch(
        clean_env(), tmp_path, cwd=workdir, ready_path="/api/session", ready_timeout=60
    )
    try:
        data = _embedded_dir(workdir) / "data"
        port = int((data / "postmaster.pid").read_text().splitlines()[3])
        for user in ("postgres", "authenticator"):
            with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
                await asyncpg.connect(f"postgresql://{user}@127.0.0.1:{port}/postgres")
        secret = (workdir / ".bevsession" / "postgres-superuser-password").read_text().strip()
        assert (
            stat.S_IMODE((workdir / ".bevsession" / "postgres-superuser-password").stat().st_mode)
            == 0o600
        )
        conn = await asyncpg.connect(f"postgresql://postgres:{secret}@127.0.0.1:{port}/postgres")
        await conn.close()
        assert secret not in server.log_text()
        assert (await Visitor(http, server).get("/api/session")).status == 200
    finally:
        assert server.stop() == 0, server.log_text()[-3000:]
    assert_no_cluster_running(workdir)


async def test_serve_with_nothing_configured_runs_the_embedded_default_and_keeps_data(
    workdir: Path,
    tmp_path: Path,
    http: aiohttp.ClientSession,
) -> None:
    env = clean_env()
    assert not {"DATABASE_URL", "SESSION_PASSWORD", "SESSION_PASSWORDS"} & set(env)
    server: RunningServer | None = None
    try:
        server = await launch(
            env, tmp_path, cwd=workdir, ready_path="/api/session", ready_timeout=60
        )
        password_file = workdir / ".bevsession" / "session-password"
        assert password_file.is_file(), "the development password is saved beside the data"
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        assert len(password_file.read_text().strip()) >= 32
        assert (_embedded_dir(workdir) / "data" / "PG_VERSION").is_file(), "data under the cwd"
        assert "development password" in server.log_text(), "the generated password is warned about"
        assert password_file.read_text().strip() not in server.log_text()

        visitor = Visitor(http, server)
        first = await visitor.chat("I run sales at a craft brewery and need to prove ROI")
        cookie = visitor.cookie
        assert cookie is not None and first["messageCount"] == 2

        code = server.stop()
        assert code == 0, f"exit {code} after SIGTERM:\n{server.log_text()[-3000:]}"
        assert_no_cluster_running(workdir)

        server = await launch(
            env, tmp_path, cwd=workdir, ready_path="/api/session", ready_timeout=60
        )
        again = Visitor(http, server)
        again.cookie = cookie
        summary = await again.session()
        assert summary["sessionId"] == first["sessionId"], "the same cookie opens after a restart"
        assert summary["messageCount"] == 2, "the data persisted"
        history = (await again.get("/api/chat/history")).json["messages"]
        assert [m["role"] for m in history] == ["user", "assistant"]

        code = server.stop()
        assert code == 0, f"exit {code} after SIGTERM:\n{server.log_text()[-3000:]}"
        assert_no_cluster_running(workdir)
    finally:
        if server is not None:
            server.stop()


# --- serve: several workers ---------------------------------------------------------------------
async def test_serve_with_two_workers_answers_and_stops_cleanly(
    server_factory: StartServer,
    http: aiohttp.ClientSession,
) -> None:
    server = await server_factory(args=["--workers", "2"])
    visitor = Visitor(http, server)
    sid = (await visitor.session())["sessionId"]
    for i in range(6):  # new connections land on either worker; all share the database
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as fresh:
            reply = await Visitor(fresh, server).get("/api/session", cookie=visitor.cookie)
            assert reply.status == 200 and reply.json["sessionId"] == sid, (i, reply)
    assert server.stop() == 0, server.log_text()[-3000:]
